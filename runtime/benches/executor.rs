//! Executor benchmark: start-to-outcome latency of a trivial WASI command, warm (module cached in
//! memory) and from zero (artifact on disk only), the raw instantiate+call cost of wasmtime
//! for comparison, and the process RSS around it.
//!
//! Attempts are started the way the engine starts them: from a task on the executor's own
//! runtime (where the engine's run drivers live). The warm case is also measured from a caller
//! on another runtime, to show what the cross-thread hand-off costs. The per-attempt `/weir`
//! directories come from a pool on the work directory's file system; the attempts are measured
//! with the work directory on the temporary directory's file system, and on tmpfs
//! (`/dev/shm`) when there is one.
//!
//! Run with `cargo bench -p weir-runtime --bench executor`; prints a table.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use weir::exec::{Executor, ExecutorConfig, ExitStatus, Invocation, ModuleLoads};
use weir::modules::BlobStore;

const WARM_ITERATIONS: usize = 20_000;
const COLD_ITERATIONS: usize = 2_000;
const WARMUP: usize = 1_000;

const TRIVIAL: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;

/// Latencies of one executor, and what it loaded.
struct Measured {
    warm: Vec<Duration>,
    warm_other_runtime: Vec<Duration>,
    cold: Vec<Duration>,
    loads: ModuleLoads,
}

/// RSS of the process around the first executor, in KiB.
struct Rss {
    before: u64,
    created: u64,
    after_runs: u64,
}

fn main() {
    let rss_before = rss_kib();
    let caller = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a caller runtime");
    let wasm = wat::parse_str(TRIVIAL).expect("valid WAT");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());

    let temp = tempfile::tempdir().expect("a temporary directory");
    let mut rss = None;
    let (on_disk, allocator) = measure(&caller, &wasm, temp.path(), threads, |created, after| {
        rss = Some(Rss {
            before: rss_before,
            created,
            after_runs: after,
        })
    });
    let shm = Path::new("/dev/shm");
    let on_tmpfs = shm.is_dir().then(|| {
        let dir = tempfile::tempdir_in(shm).expect("a directory in /dev/shm");
        measure(&caller, &wasm, dir.path(), threads, |_, _| {}).0
    });
    let raw = raw_instantiate_and_call(&wasm);

    println!();
    println!(
        "weir executor benchmark — {}",
        chrono::Utc::now().to_rfc3339()
    );
    println!(
        "machine: {threads} CPUs, {}; allocator: {allocator}; attempts started from the executor's runtime, as the engine does",
        cpu_model()
    );
    println!();
    println!(
        "{:<62} {:>7} {:>10} {:>10} {:>10}",
        "measurement", "n", "p50", "p99", "mean"
    );
    let disk = file_system_of(temp.path());
    row(
        &format!("warm, work dir on {disk}: start + await outcome"),
        &on_disk.warm,
    );
    row(
        "  same, caller on another runtime (+ 2 thread wake-ups)",
        &on_disk.warm_other_runtime,
    );
    row(
        &format!("from zero, work dir on {disk}: artifact on disk"),
        &on_disk.cold,
    );
    if let Some(tmpfs) = &on_tmpfs {
        row(
            "warm, work dir on tmpfs: start + await outcome",
            &tmpfs.warm,
        );
        row(
            "from zero, work dir on tmpfs: artifact on disk",
            &tmpfs.cold,
        );
    }
    row(
        "raw wasmtime: instantiate + call `_start` (reused InstancePre)",
        &raw,
    );
    println!();
    let loads = on_disk.loads;
    println!(
        "module loads ({disk} run): {} from memory, {} from disk, {} from the blob store, {} compiled",
        loads.memory_hits, loads.from_disk, loads.from_blob_artifact, loads.compiled
    );
    if let Some(rss) = rss {
        println!(
            "RSS: {} KiB before the executor, {} KiB after creating it, {} KiB after {} runs \
             (module cache evicted, 0 instances alive)",
            rss.before,
            rss.created,
            rss.after_runs,
            WARMUP + 2 * WARM_ITERATIONS + COLD_ITERATIONS
        );
    }
}

/// Runs the warm and from-zero attempts on an executor whose directories live under `base`;
/// `rss` gets the RSS after creating the executor and after the runs.
fn measure(
    caller: &tokio::runtime::Runtime,
    wasm: &[u8],
    base: &Path,
    threads: usize,
    rss: impl FnOnce(u64, u64),
) -> (Measured, &'static str) {
    let blobs = Arc::new(
        BlobStore::open(&format!("file://{}", base.join("objects").display()))
            .expect("the blob store opens"),
    );
    let config = ExecutorConfig {
        work_dir: base.join("work"),
        cache_dir: base.join("cache"),
        max_instances: 64,
        max_memory_mb: 256,
        log_limit_bytes: 1 << 20,
        threads,
        idle_module_ttl: Duration::from_secs(3600),
    };
    let executor = Executor::new(config, blobs.clone()).expect("the executor starts");
    let rss_created = rss_kib();
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(wasm))
    );
    let artifact = executor
        .prepare_upload(&digest, wasm)
        .expect("the module prepares");
    caller.block_on(async {
        blobs
            .put_wasm(&digest, wasm.to_vec().into())
            .await
            .expect("wasm stored");
        blobs
            .put_artifact(executor.engine_hash(), &digest, artifact)
            .await
            .expect("artifact stored");
    });

    let invocation = move |id: usize| Invocation {
        digest: digest.clone(),
        attempt_id: id.to_string(),
        args: vec!["bench".into()],
        env: vec![("WEIR_TASK_KEY".into(), "bench".into())],
        context: serde_json::json!({"job": {"id": 1}}),
        preopens: Vec::new(),
        memory_limit_bytes: 64 << 20,
        timeout: Some(Duration::from_secs(30)),
    };
    // Like the engine: a task on the executor's runtime starts attempts and awaits them.
    let on_task_runtime = |n: usize, evict: bool| -> Vec<Duration> {
        let ex = executor.clone();
        let inv = invocation.clone();
        caller
            .block_on(executor.runtime().spawn(async move {
                let mut samples = Vec::with_capacity(n);
                for i in 0..n {
                    if evict {
                        ex.evict_modules(Duration::ZERO);
                    }
                    let started = Instant::now();
                    let outcome = ex.start(inv(i)).outcome.await.expect("the attempt ends");
                    samples.push(started.elapsed());
                    assert_eq!(outcome.status, ExitStatus::Success);
                }
                samples
            }))
            .expect("the benchmark task ends")
    };
    on_task_runtime(WARMUP, false);
    let warm = on_task_runtime(WARM_ITERATIONS, false);
    let cold = on_task_runtime(COLD_ITERATIONS, true);
    let warm_other_runtime: Vec<Duration> = (0..WARM_ITERATIONS)
        .map(|i| {
            let started = Instant::now();
            let outcome = caller
                .block_on(executor.start(invocation(i)).outcome)
                .expect("the attempt ends");
            assert_eq!(outcome.status, ExitStatus::Success);
            started.elapsed()
        })
        .collect();
    let loads = executor.module_loads();
    assert_eq!(loads.compiled, 0, "the run path never compiled");
    executor.evict_modules(Duration::ZERO);
    assert_eq!(executor.instances_alive(), 0);
    rss(rss_created, rss_kib());
    (
        Measured {
            warm,
            warm_other_runtime,
            cold,
            loads,
        },
        executor.allocator(),
    )
}

/// wasmtime alone, configured like the executor's engine, on the same trivial module: the
/// floor under the executor's own work (sandbox directory, WASI context, logs, scheduling).
fn raw_instantiate_and_call(wasm: &[u8]) -> Vec<Duration> {
    use wasmtime::{Config, Engine, InstanceAllocationStrategy, Linker, Module, Store};
    use wasmtime_wasi::p1::{self, WasiP1Ctx};

    let mut config = Config::new();
    config
        .epoch_interruption(true)
        .allocation_strategy(InstanceAllocationStrategy::pooling());
    let engine = Engine::new(&config).expect("a pooling engine");
    let module = Module::from_binary(&engine, wasm).expect("the module compiles");
    let mut linker: Linker<WasiP1Ctx> = Linker::new(&engine);
    p1::add_to_linker_async(&mut linker, |ctx| ctx).expect("WASI links");
    let pre = linker.instantiate_pre(&module).expect("the module links");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let once = || {
        let started = Instant::now();
        runtime.block_on(async {
            let mut store = Store::new(&engine, wasmtime_wasi::WasiCtxBuilder::new().build_p1());
            store.set_epoch_deadline(1);
            store.epoch_deadline_async_yield_and_update(1);
            let instance = pre
                .instantiate_async(&mut store)
                .await
                .expect("instantiates");
            let start = instance
                .get_typed_func::<(), ()>(&mut store, "_start")
                .expect("exports _start");
            start.call_async(&mut store, ()).await.expect("runs");
        });
        started.elapsed()
    };
    for _ in 0..WARMUP {
        once();
    }
    (0..WARM_ITERATIONS).map(|_| once()).collect()
}

fn row(name: &str, samples: &[Duration]) {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |pct: usize| sorted[(sorted.len() * pct / 100).min(sorted.len() - 1)];
    let mean = sorted.iter().sum::<Duration>() / sorted.len() as u32;
    println!(
        "{:<62} {:>7} {:>10} {:>10} {:>10}",
        name,
        sorted.len(),
        micros(at(50)),
        micros(at(99)),
        micros(mean)
    );
}

fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// VmRSS of this process in KiB (0 where /proc is unavailable).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// The type of the file system holding `path` (the longest matching mount point in
/// /proc/mounts), e.g. "ext4".
fn file_system_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let _device = fields.next()?;
            let mount_point = PathBuf::from(fields.next()?);
            let kind = fields.next()?;
            path.starts_with(&mount_point)
                .then(|| (mount_point.components().count(), kind.to_string()))
        })
        .max()
        .map_or_else(|| "disk".to_string(), |(_, kind)| kind)
}
