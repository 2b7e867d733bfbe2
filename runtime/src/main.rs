//! The `weir` binary.

fn main() -> std::process::ExitCode {
    // Errors of libraries (every task exit is one, inside wasmtime) must not capture a stack
    // backtrace each: that costs more than running a small task. Panics keep theirs
    // (`RUST_BACKTRACE`); `RUST_LIB_BACKTRACE=1` turns error backtraces back on for debugging.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet, so nothing reads the environment concurrently.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    weir::cli::main()
}
