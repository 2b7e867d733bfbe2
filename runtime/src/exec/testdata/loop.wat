;; Spins forever without calling the host.
(module
  (func (export "_start")
    (loop $spin (br $spin))))
