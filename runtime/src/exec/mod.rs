//! The wasm executor: runs one task attempt as a WASI preview 1 command in a sandbox.
//!
//! One `wasmtime::Engine` per process with the pooling allocator (falling back to on-demand
//! allocation where the address space is short) and epoch interruption; compiled modules are
//! cached on disk and as `InstancePre`s in memory (evicted when idle); every attempt gets a
//! fresh `Store` with its memory limit. Tasks run on their own tokio runtime, so a busy task
//! cannot starve the API or the engine.

use crate::store::TaskLogs;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// Executor settings.
#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Where per-attempt `/weir` directories are created (emptied at start).
    pub work_dir: PathBuf,
    /// Where compiled artifacts are cached.
    pub cache_dir: PathBuf,
    /// Instances that may run at once; more attempts wait for a slot.
    pub max_instances: u32,
    /// Upper bound of any task's `memory_limit_mb`.
    pub max_memory_mb: u32,
    /// Bytes of stdout and of stderr kept per attempt before the truncation mark.
    pub log_limit_bytes: usize,
    /// Threads of the task runtime (default: the number of CPUs).
    pub threads: usize,
    /// How long an unused module stays instantiated-ready in memory.
    pub idle_module_ttl: Duration,
}

/// A directory of the host preopened in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// Host directory (must exist).
    pub host: PathBuf,
    /// Absolute guest path.
    pub guest: String,
    /// Read-only?
    pub read_only: bool,
}

/// One attempt to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// `sha256:<hex>` of the module.
    pub digest: String,
    /// Unique name of this attempt's `/weir` directory (the task run id).
    pub attempt_id: String,
    /// argv: the task key, then the resolved parameters.
    pub args: Vec<String>,
    /// Environment (the `WEIR_*` variables and the task's `env`), without `WEIR_CONTEXT` and
    /// `WEIR_OUTPUT`, which the executor sets.
    pub env: Vec<(String, String)>,
    /// Written to `/weir/context.json`.
    pub context: serde_json::Value,
    /// The job's mounts (and `/input` for a local file-arrival trigger).
    pub preopens: Vec<Preopen>,
    /// Linear memory limit in bytes.
    pub memory_limit_bytes: u64,
    /// Attempt time limit.
    pub timeout: Option<Duration>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ExitStatus {
    /// Exit code 0 (or `_start` returned) and valid task values.
    Success,
    /// Non-zero exit, trap, memory limit, invalid task values, missing mount, ...
    Failed {
        /// Lowercase, specific message (e.g. "exited with code 3", "memory limit of 64 MiB
        /// exceeded", "wasm trap: integer divide by zero").
        message: String,
        /// The exit code, when the command exited.
        exit_code: Option<i32>,
    },
    /// Stopped at its time limit.
    TimedOut,
    /// Stopped by [`CancelHandle::cancel`].
    Canceled,
}

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub status: ExitStatus,
    /// Task values written to `WEIR_OUTPUT` (last write of a key wins).
    pub values: BTreeMap<String, serde_json::Value>,
    /// Captured stdout and stderr.
    pub logs: TaskLogs,
    /// Wall time from instantiation to exit.
    pub duration: Duration,
}

mod cache;
mod engine;
mod executor;
mod logs;
pub mod mounts;
mod sandbox;
#[cfg(test)]
mod tests;
mod upload;
mod values;
mod workdir;

pub use cache::ModuleLoads;
pub use executor::{Attempt, CancelHandle, Executor};
pub use mounts::MountPolicy;
pub use upload::ModuleError;
