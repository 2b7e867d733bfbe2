;; Traps with an integer division by zero in a named function.
(module
  (func $divide (export "_start")
    (drop (i32.div_s (i32.const 1) (i32.const 0)))))
