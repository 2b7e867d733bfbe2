//! WASI commands used by the tests: fixed ones from `testdata/`, parametrized ones generated.

pub(super) const EMPTY: &str = include_str!("../testdata/empty.wat");
pub(super) const LOOP: &str = include_str!("../testdata/loop.wat");
pub(super) const SLEEP: &str = include_str!("../testdata/sleep.wat");
pub(super) const MEMORY_BOMB: &str = include_str!("../testdata/memory_bomb.wat");
pub(super) const DIVIDE: &str = include_str!("../testdata/divide.wat");
pub(super) const FLOOD: &str = include_str!("../testdata/flood.wat");
pub(super) const ECHO: &str = include_str!("../testdata/echo.wat");
pub(super) const ESCAPE: &str = include_str!("../testdata/escape.wat");

/// A command that exits with `code` through `proc_exit`.
pub(super) fn exit(code: i32) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $proc_exit (i32.const {code}))))"#
    )
}

/// A command that writes `content` to `path` under the preopen with file descriptor `dir_fd`
/// (3 is `/weir`, 4 the first mount), then exits with `code`. When opening fails it exits
/// with the errno; when writing fails it traps.
pub(super) fn write_file(dir_fd: u32, path: &str, content: &[u8], code: i32) -> String {
    assert!(
        content.len() <= 3 * 65536,
        "the guest holds 192 KiB of content"
    );
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 4)
  (data (i32.const 1024) "{path}")
  (data (i32.const 65536) "{content}")
  (func (export "_start")
    (local $errno i32)
    ;; oflags 1 = create; the opened fd lands at 40
    (local.set $errno (call $path_open (i32.const {dir_fd}) (i32.const 0) (i32.const 1024)
      (i32.const {path_len}) (i32.const 1) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0)
      (i32.const 40)))
    (if (local.get $errno) (then (call $proc_exit (local.get $errno))))
    (i32.store (i32.const 16) (i32.const 65536))
    (i32.store (i32.const 20) (i32.const {content_len}))
    (if (call $fd_write (i32.load (i32.const 40)) (i32.const 16) (i32.const 1) (i32.const 32))
      (then unreachable))
    (call $proc_exit (i32.const {code}))))"#,
        path = escape(path.as_bytes()),
        path_len = path.len(),
        content = escape(content),
        content_len = content.len(),
    )
}

/// A command that writes task value lines to `/weir/output.jsonl`, then exits with `code`.
pub(super) fn values(lines: &str, code: i32) -> String {
    write_file(3, "output.jsonl", lines.as_bytes(), code)
}

/// Bytes as a WAT string body.
fn escape(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}
