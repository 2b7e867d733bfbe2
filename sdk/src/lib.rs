//! Write Weir tasks in Rust.
//!
//! A Weir task is a plain WASI preview 1 command. The runtime passes the task's resolved
//! `parameters` as arguments, its identity in `WEIR_*` environment variables and everything
//! else (job parameters, trigger payload, arrived files, upstream task values) in the JSON file
//! named by `WEIR_CONTEXT`; the task appends its own task values to `WEIR_OUTPUT`.
//! This crate wraps that ABI:
//!
//! - [`run`] loads the [`Context`], runs your function and turns its result into the exit
//!   code (0 = success);
//! - [`Context`] gives the arguments, [`Context::param`], [`Context::trigger`],
//!   [`Context::files`], [`Context::value_of`] and [`Context::set_value`];
//! - [`Output`] writes task values for a task that needs nothing else.
//!
//! A complete task (`src/bin/count.rs`, built with
//! `cargo build --release --target wasm32-wasip1`):
//!
//! ```no_run
//! use weir_sdk::Context;
//!
//! type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;
//!
//! fn main() {
//!     weir_sdk::run(count)
//! }
//!
//! fn count(ctx: &mut Context) -> Result<()> {
//!     // The job passes `parameters: ["{{job.parameters.region}}"]`.
//!     let region = ctx.args().first().map(String::as_str).unwrap_or("all");
//!     // A value that the upstream task `ingest` set with `ctx.set_value("rows", n)`.
//!     let rows = ctx
//!         .value_of("ingest", "rows")
//!         .and_then(|v| v.as_u64())
//!         .ok_or("upstream task \"ingest\" set no numeric value \"rows\"")?;
//!     println!("run {} of {}: {rows} rows for region {region}", ctx.run_id(), ctx.job_name());
//!     for file in ctx.files() {
//!         println!("arrived: {} ({} bytes)", file.path, file.size);
//!     }
//!     ctx.set_value("counted", rows)?;
//!     Ok(())
//! }
//! ```
#![deny(missing_docs)]

mod context;
mod document;
mod error;
mod output;

pub use context::Context;
pub use document::{FileInfo, UpstreamTask};
pub use error::Error;
pub use output::{MAX_VALUE_BYTES, MAX_VALUE_KEY_CHARS, Output};

use std::fmt::Display;
use std::io::Write;

/// Exit code when the context cannot be loaded.
pub const EXIT_CONTEXT_ERROR: i32 = 2;

/// Exit code when the task function returns an error.
pub const EXIT_TASK_ERROR: i32 = 1;

/// Runs a task: loads the [`Context`] (on failure prints why to stderr and exits with
/// [`EXIT_CONTEXT_ERROR`]), calls `task`, and exits with 0 when it returns `Ok`, or prints
/// `error: <e>` to stderr and exits with [`EXIT_TASK_ERROR`] when it returns `Err(e)`.
pub fn run<E: Display>(task: impl FnOnce(&mut Context) -> Result<(), E>) -> ! {
    let code = run_loaded(Context::load(), task);
    // Best effort: there is nowhere left to report a failed flush.
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

/// The body of [`run`], returning the exit code.
fn run_loaded<E: Display>(
    loaded: Result<Context, Error>,
    task: impl FnOnce(&mut Context) -> Result<(), E>,
) -> i32 {
    let mut ctx = match loaded {
        Ok(ctx) => ctx,
        Err(e) => {
            eprintln!("error: cannot load the weir task context: {e}");
            return EXIT_CONTEXT_ERROR;
        }
    };
    match task(&mut ctx) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            EXIT_TASK_ERROR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::sync::Mutex;

    /// Held by every test that changes the process environment.
    static ENV_LOCK: Mutex<()> = Mutex::new(());

    /// Sets `vars` in the process environment, runs [`Context::load`], and removes them again.
    pub(crate) fn load_with_process_env<'a>(
        vars: impl IntoIterator<Item = (&'a str, &'a OsStr)> + Clone,
    ) -> Result<Context, Error> {
        let _guard = ENV_LOCK
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // SAFETY: every test that changes the process environment holds ENV_LOCK; the other
        // tests only read it through std, which synchronizes with set_var, and no foreign code
        // reads it.
        unsafe {
            for (name, value) in vars.clone() {
                std::env::set_var(name, value);
            }
        }
        let loaded = Context::load();
        // SAFETY: as above.
        unsafe {
            for (name, _) in vars {
                std::env::remove_var(name);
            }
        }
        loaded
    }

    fn unloadable() -> Result<Context, Error> {
        Err(Error::MissingEnv {
            name: "WEIR_CONTEXT",
        })
    }

    #[test]
    fn a_context_error_exits_2_without_running_the_task() {
        let mut ran = false;
        let code = run_loaded(unloadable(), |_| {
            ran = true;
            Ok::<(), String>(())
        });
        assert_eq!(code, EXIT_CONTEXT_ERROR);
        assert!(!ran);
    }

    #[test]
    fn the_task_result_is_the_exit_code() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("context.json"), "{}").unwrap();
        let context = dir.path().join("context.json");
        let output = dir.path().join("output.jsonl");
        let vars = [
            ("WEIR_TASK_KEY", OsStr::new("t")),
            ("WEIR_JOB_ID", OsStr::new("")),
            ("WEIR_JOB_NAME", OsStr::new("j")),
            ("WEIR_RUN_ID", OsStr::new("1")),
            ("WEIR_TASK_RUN_ID", OsStr::new("2")),
            ("WEIR_ATTEMPT", OsStr::new("0")),
            ("WEIR_TRIGGER_TYPE", OsStr::new("onetime")),
            ("WEIR_CONTEXT", context.as_os_str()),
            ("WEIR_OUTPUT", output.as_os_str()),
        ];
        let load = || load_with_process_env(vars);
        assert_eq!(run_loaded(load(), |_| Ok::<(), String>(())), 0);
        let code = run_loaded(load(), |ctx| {
            ctx.set_value("seen", ctx.task_key().to_string())
                .map_err(|e| e.to_string())?;
            Err("boom".to_string())
        });
        assert_eq!(code, EXIT_TASK_ERROR);
        let written = std::fs::read_to_string(dir.path().join("output.jsonl")).unwrap();
        assert_eq!(written, "{\"key\":\"seen\",\"value\":\"t\"}\n");
    }
}
