;; Probes the sandbox: exits 1 if ../../../../etc/passwd opens from /weir (fd 3), 2 if a
;; second preopen (fd 4) exists, else 0.
(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "../../../../etc/passwd")
  (func (export "_start")
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 1024) (i32.const 22)
          (i32.const 0) (i64.const 0x1fffffff) (i64.const 0x1fffffff) (i32.const 0) (i32.const 40)))
      (then (call $proc_exit (i32.const 1))))
    (if (i32.eqz (call $fd_prestat_get (i32.const 4) (i32.const 64)))
      (then (call $proc_exit (i32.const 2))))
    (call $proc_exit (i32.const 0))))
