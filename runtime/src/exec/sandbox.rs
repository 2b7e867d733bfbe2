//! What one attempt sees: its WASI context (argv, env, preopens, captured
//! stdio, no network) and its memory limit.

use super::Invocation;
use super::logs::LogPipe;
use super::workdir::AttemptDir;
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

/// Guest path of the per-attempt directory.
const WEIR_DIR: &str = "/weir";
/// Guest path of the context file (`WEIR_CONTEXT`).
const CONTEXT_PATH: &str = "/weir/context.json";
/// Guest path of the task values file (`WEIR_OUTPUT`).
const OUTPUT_PATH: &str = "/weir/output.jsonl";

/// The data of an attempt's `Store`.
pub(crate) struct TaskState {
    pub(crate) wasi: WasiP1Ctx,
    pub(crate) limiter: MemoryLimiter,
}

impl TaskState {
    /// State around a WASI context, with a memory limit in bytes.
    pub(crate) fn new(wasi: WasiP1Ctx, memory_limit_bytes: u64) -> TaskState {
        TaskState {
            wasi,
            limiter: MemoryLimiter::new(memory_limit_bytes),
        }
    }
}

/// [`StoreLimits`] for one WASI command, remembering whether a memory growth was refused so a
/// failure can be reported as what it most likely is: the memory limit.
pub(crate) struct MemoryLimiter {
    limits: StoreLimits,
    refused: bool,
}

impl MemoryLimiter {
    fn new(memory_limit_bytes: u64) -> MemoryLimiter {
        let bytes = usize::try_from(memory_limit_bytes).unwrap_or(usize::MAX);
        MemoryLimiter {
            limits: StoreLimitsBuilder::new()
                .memory_size(bytes)
                .instances(1)
                .memories(1)
                .tables(1)
                .build(),
            refused: false,
        }
    }

    /// Whether a memory growth was refused during the attempt.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if !allowed {
            self.refused = true;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, error: wasmtime::Error) -> wasmtime::Result<()> {
        self.refused = true;
        self.limits.memory_grow_failed(error)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

/// The WASI context of an attempt: argv, env, `/weir`, the mounts, captured stdout and stderr,
/// empty stdin, no network, nothing inherited from the host.
pub(crate) fn wasi_context(
    invocation: &Invocation,
    dir: &AttemptDir,
    stdout: &LogPipe,
    stderr: &LogPipe,
) -> Result<WasiP1Ctx, String> {
    let mut builder = WasiCtxBuilder::new();
    builder
        .args(&invocation.args)
        .envs(&invocation.env)
        .env("WEIR_CONTEXT", CONTEXT_PATH)
        .env("WEIR_OUTPUT", OUTPUT_PATH)
        .stdout(stdout.clone())
        .stderr(stderr.clone())
        .allow_tcp(false)
        .allow_udp(false)
        .allow_ip_name_lookup(false);
    builder
        .preopened_dir(dir.path(), WEIR_DIR, FsPerms::ReadWrite)
        .map_err(|e| format!("cannot open the attempt directory: {e:#}"))?;
    for preopen in &invocation.preopens {
        if preopen.guest == WEIR_DIR || preopen.guest.starts_with("/weir/") {
            return Err(format!(
                "mount path {:?} is reserved for Weir's own directory",
                preopen.guest
            ));
        }
        if !preopen.host.is_dir() {
            return Err(format!(
                "mount source {:?} does not exist",
                preopen.host.display().to_string()
            ));
        }
        let perms = if preopen.read_only {
            FsPerms::ReadOnly
        } else {
            FsPerms::ReadWrite
        };
        builder
            .preopened_dir(&preopen.host, &preopen.guest, perms)
            .map_err(|e| {
                format!(
                    "mount source {:?} cannot be opened: {e:#}",
                    preopen.host.display().to_string()
                )
            })?;
    }
    Ok(builder.build_p1())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limiter_remembers_a_refused_growth() {
        let mut limiter = MemoryLimiter::new(2 << 16);
        assert!(limiter.memory_growing(0, 1 << 16, None).unwrap());
        assert!(!limiter.refused());
        assert!(!limiter.memory_growing(1 << 16, 3 << 16, None).unwrap());
        assert!(limiter.refused());
        assert_eq!(limiter.instances(), 1);
    }
}
