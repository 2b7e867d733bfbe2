;; Writes 100 times 4096 bytes of `x` to stdout, then exits 0.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (local $n i32)
    (memory.fill (i32.const 4096) (i32.const 120) (i32.const 4096))
    (i32.store (i32.const 16) (i32.const 4096))
    (i32.store (i32.const 20) (i32.const 4096))
    (loop $write
      (if (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 32))
        (then unreachable))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $write (i32.lt_u (local.get $n) (i32.const 100))))))
