//! The executor: starts attempts on its own tokio runtime and turns how they ended into an
//! [`Outcome`].

use super::cache::{ModuleCache, ModuleLoads};
use super::engine::{self, EpochTicker};
use super::logs::LogPipe;
use super::sandbox::{self, TaskState};
use super::upload::{ModuleError, UploadCheck};
use super::workdir::WorkDir;
use super::{ExecutorConfig, ExitStatus, Invocation, Outcome, values};
use crate::modules::BlobStore;
use crate::store::TaskLogs;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, Semaphore};
use tracing::Instrument;
use wasmtime::{Engine, Linker, Store, Trap, WasmBacktrace};
use wasmtime_wasi::I32Exit;

/// Runs task attempts as sandboxed WASI preview 1 commands.
///
/// Dropping the executor shuts its task runtime down: attempts still running are dropped (their
/// instances freed, their directories removed) and their outcome handles resolve with a
/// cancellation error.
pub struct Executor {
    shared: Arc<Shared>,
    allocator: &'static str,
    handle: tokio::runtime::Handle,
    runtime: Option<tokio::runtime::Runtime>,
    _ticker: EpochTicker,
}

/// What running attempts share.
struct Shared {
    config: ExecutorConfig,
    work: WorkDir,
    engine: Engine,
    cache: Arc<ModuleCache>,
    upload: UploadCheck,
    slots: Semaphore,
    alive: AtomicUsize,
    mounts: OnceLock<super::MountPolicy>,
}

/// Stops a running attempt.
#[derive(Clone)]
pub struct CancelHandle {
    signal: Arc<CancelSignal>,
}

struct CancelSignal {
    canceled: AtomicBool,
    notify: Notify,
}

impl CancelHandle {
    fn new() -> CancelHandle {
        CancelHandle {
            signal: Arc::new(CancelSignal {
                canceled: AtomicBool::new(false),
                notify: Notify::new(),
            }),
        }
    }

    /// Stops the attempt at once; its outcome becomes `Canceled` (unless it had already
    /// ended).
    pub fn cancel(&self) {
        self.signal.canceled.store(true, Ordering::SeqCst);
        self.signal.notify.notify_waiters();
    }

    /// Resolves once [`CancelHandle::cancel`] was called.
    async fn canceled(&self) {
        let notified = self.signal.notify.notified();
        tokio::pin!(notified);
        // Registered before the flag is read, so a cancel in between is not missed.
        notified.as_mut().enable();
        if self.signal.canceled.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

/// A started attempt.
pub struct Attempt {
    /// Stops it.
    pub cancel: CancelHandle,
    /// Resolves when it ended (awaitable from any runtime).
    pub outcome: tokio::task::JoinHandle<Outcome>,
}

impl Executor {
    /// Builds the engine and the task runtime, and empties `work_dir` of leftovers.
    pub fn new(config: ExecutorConfig, blobs: Arc<BlobStore>) -> anyhow::Result<Arc<Executor>> {
        anyhow::ensure!(
            config.max_instances >= 1,
            "max_instances is 0: expected at least 1 instance slot"
        );
        let work = WorkDir::open(&config.work_dir, config.max_instances as usize)?;
        let built = engine::build(&config)?;
        let mut linker = Linker::new(&built.engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut TaskState| {
            &mut state.wasi
        })
        .map_err(|e| anyhow::anyhow!("cannot link WASI preview 1: {e:#}"))?;
        let upload = UploadCheck::new(&built.engine, &linker);
        let cache = Arc::new(ModuleCache::new(
            built.engine.clone(),
            linker,
            built.hash,
            &config.cache_dir,
            blobs,
        )?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.threads.max(1))
            .thread_name("weir-task")
            // Timers only: tasks have no network, and without an I/O driver idle workers park
            // on a futex, which is cheaper to wake than the driver's eventfd.
            .enable_time()
            .build()
            .map_err(|e| anyhow::anyhow!("cannot start the task runtime: {e}"))?;
        let handle = runtime.handle().clone();
        handle.spawn(sweep_idle_modules(
            Arc::downgrade(&cache),
            config.idle_module_ttl,
        ));
        let ticker = EpochTicker::start(&built.engine)?;
        tracing::info!(
            allocator = built.allocator,
            max_instances = config.max_instances,
            threads = config.threads.max(1),
            "wasm executor ready"
        );
        Ok(Arc::new(Executor {
            shared: Arc::new(Shared {
                slots: Semaphore::new(config.max_instances as usize),
                config,
                work,
                engine: built.engine,
                cache,
                upload,
                alive: AtomicUsize::new(0),
                mounts: OnceLock::new(),
            }),
            allocator: built.allocator,
            handle,
            runtime: Some(runtime),
            _ticker: ticker,
        }))
    }

    /// Starts an attempt; returns at once.
    pub fn start(&self, inv: Invocation) -> Attempt {
        let (cancel, outcome) = self.spawn(inv, |outcome| outcome);
        Attempt { cancel, outcome }
    }

    /// Starts an attempt and calls `then` with its outcome on the task runtime when it ends
    /// (one thread hop less than awaiting the handle from another runtime); returns at once.
    pub fn start_then(
        &self,
        inv: Invocation,
        then: impl FnOnce(Outcome) + Send + 'static,
    ) -> CancelHandle {
        self.spawn(inv, then).0
    }

    fn spawn<T: Send + 'static>(
        &self,
        inv: Invocation,
        then: impl FnOnce(Outcome) -> T + Send + 'static,
    ) -> (CancelHandle, tokio::task::JoinHandle<T>) {
        let cancel = CancelHandle::new();
        let shared = self.shared.clone();
        let signal = cancel.clone();
        let span = tracing::debug_span!(
            "weir.exec.attempt",
            attempt.id = %inv.attempt_id,
            module = %inv.digest
        );
        let handle = self
            .handle
            .spawn(async move { then(shared.run(inv, signal).await) }.instrument(span));
        (cancel, handle)
    }

    /// Validates and compiles an uploaded module whose sha256 digest is `digest`, caching its
    /// artifact on local disk (blocking: call it from `spawn_blocking`). Returns the artifact,
    /// for the blob store under [`Executor::engine_hash`].
    pub fn prepare_upload(&self, digest: &str, wasm: &[u8]) -> Result<Bytes, ModuleError> {
        self.shared.upload.prepare(&self.shared.cache, digest, wasm)
    }

    /// The runtime attempts run on. The engine runs its run drivers there too: an attempt
    /// started from a task on this runtime is a same-thread hand-off, where a start from another
    /// runtime costs two cross-thread wake-ups (about 60 µs on a small VM).
    pub fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    /// Instances alive right now.
    pub fn instances_alive(&self) -> usize {
        self.shared.alive.load(Ordering::SeqCst)
    }

    /// Restricts the mounts of every later attempt to `policy` (set once; later calls are
    /// ignored). Without it, mounts are not restricted (tests, embedded use).
    pub fn set_mount_policy(&self, policy: super::MountPolicy) {
        let _ = self.shared.mounts.set(policy);
    }

    /// The instance allocator in use: `"pooling"`, or `"on-demand"` when the pool's address
    /// space could not be reserved.
    pub fn allocator(&self) -> &'static str {
        self.allocator
    }

    /// Hex digest of the engine's precompile compatibility hash: compiled artifacts are kept
    /// per engine hash, locally and in the blob store.
    pub fn engine_hash(&self) -> &str {
        self.shared.cache.engine_hash()
    }

    /// How modules were loaded since the executor started.
    pub fn module_loads(&self) -> ModuleLoads {
        self.shared.cache.loads()
    }

    /// Modules held ready in memory.
    pub fn modules_cached(&self) -> usize {
        self.shared.cache.len()
    }

    /// Drops the in-memory modules unused for at least `idle_for` (all of them for
    /// `Duration::ZERO`); returns how many. The background sweep does this with
    /// `idle_module_ttl`.
    pub fn evict_modules(&self, idle_for: Duration) -> usize {
        self.shared.cache.evict_idle(idle_for)
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Never blocks, so the executor may be dropped inside another runtime.
            runtime.shutdown_background();
        }
    }
}

async fn sweep_idle_modules(cache: Weak<ModuleCache>, ttl: Duration) {
    let period = (ttl / 2).clamp(Duration::from_millis(50), Duration::from_secs(60));
    loop {
        tokio::time::sleep(period).await;
        let Some(cache) = cache.upgrade() else { return };
        let evicted = cache.evict_idle(ttl);
        if evicted > 0 {
            tracing::debug!(evicted, "evicted idle modules");
        }
    }
}

/// Counts an instance as alive while it exists.
struct AliveGuard<'a>(&'a AtomicUsize);

impl<'a> AliveGuard<'a> {
    fn new(counter: &'a AtomicUsize) -> AliveGuard<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        AliveGuard(counter)
    }
}

impl Drop for AliveGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How the attempt itself ended, before logs are collected.
struct Ended {
    status: ExitStatus,
    values: BTreeMap<String, serde_json::Value>,
}

impl Ended {
    fn failed(message: String) -> Ended {
        Ended {
            status: ExitStatus::Failed {
                message,
                exit_code: None,
            },
            values: BTreeMap::new(),
        }
    }

    fn without_values(status: ExitStatus) -> Ended {
        Ended {
            status,
            values: BTreeMap::new(),
        }
    }
}

impl Shared {
    async fn run(&self, inv: Invocation, cancel: CancelHandle) -> Outcome {
        let stdout = LogPipe::new(self.config.log_limit_bytes);
        let stderr = LogPipe::new(self.config.log_limit_bytes);
        let instantiated = OnceLock::new();
        let ended = tokio::select! {
            biased;
            () = cancel.canceled() => Ended::without_values(ExitStatus::Canceled),
            ended = self.attempt(&inv, &stdout, &stderr, &instantiated) => ended,
        };
        let (stdout, stdout_cut) = stdout.text();
        let (stderr, stderr_cut) = stderr.text();
        tracing::debug!(status = ?ended.status, "attempt ended");
        Outcome {
            status: ended.status,
            values: ended.values,
            logs: TaskLogs {
                stdout,
                stderr,
                truncated: stdout_cut || stderr_cut,
            },
            duration: instantiated.get().map(Instant::elapsed).unwrap_or_default(),
        }
    }

    /// One attempt; dropping the future (cancel) frees the instance and the directory.
    async fn attempt(
        &self,
        inv: &Invocation,
        stdout: &LogPipe,
        stderr: &LogPipe,
        instantiated: &OnceLock<Instant>,
    ) -> Ended {
        // Locals drop in reverse order: the store (and its instance) first, then the alive
        // count, then the directory, then the slot.
        let Ok(_slot) = self.slots.acquire().await else {
            return Ended::failed("the executor is shutting down".into());
        };
        let mut dir = match self.work.create(&inv.context) {
            Ok(dir) => dir,
            Err(message) => return Ended::failed(message),
        };
        let pre = match self.cache.get(&inv.digest).await {
            Ok(pre) => pre,
            Err(message) => return Ended::failed(message),
        };
        // The job's mounts are checked again when they are opened: a symlink may have changed
        // since the job was stored. `/input` is the file-arrival trigger's own directory.
        let checked;
        let inv = match self.mounts.get() {
            Some(policy) => {
                let mut copy = inv.clone();
                for p in copy.preopens.iter_mut().filter(|p| p.guest != "/input") {
                    match policy.check(&p.host) {
                        Ok(resolved) => p.host = resolved,
                        Err(message) => return Ended::failed(message),
                    }
                }
                checked = copy;
                &checked
            }
            None => inv,
        };
        let wasi = match sandbox::wasi_context(inv, &dir, stdout, stderr) {
            Ok(wasi) => wasi,
            Err(message) => return Ended::failed(message),
        };
        let _alive = AliveGuard::new(&self.alive);
        // The engine's memories never grow past `max_memory_mb`, so neither does the limit.
        let memory_limit = inv
            .memory_limit_bytes
            .min(u64::from(self.config.max_memory_mb) << 20);
        let mut store = Store::new(&self.engine, TaskState::new(wasi, memory_limit));
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        instantiated.get_or_init(Instant::now);
        let run = async {
            let instance = pre.instantiate_async(&mut store).await?;
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        let result = match inv.timeout {
            Some(limit) => match tokio::time::timeout(limit, run).await {
                Ok(result) => result,
                Err(_) => return Ended::without_values(ExitStatus::TimedOut),
            },
            None => run.await,
        };
        // The guest ran to its end: no host call of it is in flight, the slot can be reused.
        dir.finished();
        let memory_refused = store.data().limiter.refused();
        let status = exit_status(result, memory_refused, memory_limit);
        let values = values::read(&dir.output_file());
        match (status, values) {
            (ExitStatus::Success, Ok(values)) => Ended {
                status: ExitStatus::Success,
                values,
            },
            (ExitStatus::Success, Err(message)) => Ended {
                status: ExitStatus::Failed {
                    message,
                    exit_code: Some(0),
                },
                values: BTreeMap::new(),
            },
            // Values of a failed attempt are kept when valid, best effort.
            (status, values) => Ended {
                status,
                values: values.unwrap_or_default(),
            },
        }
    }
}

/// Classifies how `_start` (or the instantiation) ended.
fn exit_status(
    result: wasmtime::Result<()>,
    memory_refused: bool,
    memory_limit_bytes: u64,
) -> ExitStatus {
    let error = match result {
        Ok(()) => return ExitStatus::Success,
        Err(error) => error,
    };
    let exit_code = error.downcast_ref::<I32Exit>().map(|exit| exit.0);
    if exit_code == Some(0) {
        return ExitStatus::Success;
    }
    let message = if memory_refused {
        memory_message(memory_limit_bytes)
    } else if let Some(code) = exit_code {
        format!("exited with code {code}")
    } else {
        let trace = error.downcast_ref::<WasmBacktrace>();
        let place = trace
            .and_then(|trace| trace.frames().first())
            .map(|frame| {
                let name = match frame.func_name() {
                    Some(name) => format!("`{name}`"),
                    None => format!("function {}", frame.func_index()),
                };
                match frame.module_offset() {
                    Some(offset) => format!(" (in {name} at offset {offset:#x})"),
                    None => format!(" (in {name})"),
                }
            })
            .unwrap_or_default();
        match error.downcast_ref::<Trap>() {
            Some(trap) => format!("{trap}{place}"),
            None => {
                // The backtrace, when attached, is the outermost context: skip it.
                let cause: Vec<String> = error
                    .chain()
                    .skip(usize::from(trace.is_some()))
                    .map(|e| e.to_string())
                    .collect();
                format!("task aborted: {}{place}", cause.join(": "))
            }
        }
    };
    ExitStatus::Failed { message, exit_code }
}

fn memory_message(limit_bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if limit_bytes.is_multiple_of(MIB) {
        format!("memory limit of {} MiB exceeded", limit_bytes / MIB)
    } else {
        format!("memory limit of {limit_bytes} bytes exceeded")
    }
}
