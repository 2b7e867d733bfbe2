//! The `wasmtime::Engine` of an executor: pooling allocator (or on-demand allocation where the
//! address space is short), epoch interruption, and the epoch ticker.

use super::ExecutorConfig;
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, WasmBacktraceDetails,
};

/// How often the epoch advances: the scheduling quantum of a busy guest.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Name of the pooling allocator, as reported by [`super::Executor::allocator`].
pub(crate) const POOLING: &str = "pooling";
/// Name of on-demand allocation, as reported by [`super::Executor::allocator`].
pub(crate) const ON_DEMAND: &str = "on-demand";

/// A built engine and the facts the executor keeps about it.
pub(crate) struct BuiltEngine {
    pub(crate) engine: Engine,
    /// [`POOLING`] or [`ON_DEMAND`].
    pub(crate) allocator: &'static str,
    /// Hex digest of the engine's precompile compatibility hash: artifacts serialized by an
    /// engine with the same hash deserialize in this one.
    pub(crate) hash: String,
}

/// Builds the engine with the pooling allocator, falling back to on-demand allocation with a
/// warning when the pool cannot be reserved.
pub(crate) fn build(config: &ExecutorConfig) -> anyhow::Result<BuiltEngine> {
    let (engine, allocator) = match Engine::new(&engine_config(Some(pool_config(config)))) {
        Ok(engine) => (engine, POOLING),
        Err(e) => {
            tracing::warn!(
                error = %format!("{e:#}"),
                max_instances = config.max_instances,
                max_memory_mb = config.max_memory_mb,
                "cannot reserve the pooling allocator's address space; \
                 falling back to on-demand instance allocation (slower instantiation)"
            );
            let engine = Engine::new(&engine_config(None))
                .map_err(|e| anyhow::anyhow!("cannot build the wasm engine: {e:#}"))?;
            (engine, ON_DEMAND)
        }
    };
    let hash = compatibility_hash(&engine);
    Ok(BuiltEngine {
        engine,
        allocator,
        hash,
    })
}

fn engine_config(pool: Option<PoolingAllocationConfig>) -> Config {
    let mut config = Config::new();
    config
        .epoch_interruption(true)
        // Independent of the WASMTIME_BACKTRACE_DETAILS variable, so that the compatibility
        // hash (and the artifact cache) does not depend on the environment.
        .wasm_backtrace_details(WasmBacktraceDetails::Disable);
    match pool {
        Some(pool) => {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        // Where the address space is short, a memory reserves what it uses plus room to grow
        // instead of 4 GiB: bounds checks are explicit and a growing memory may move.
        None => {
            config
                .memory_reservation(0)
                .memory_guard_size(64 << 10)
                .memory_reservation_for_growth(16 << 20);
        }
    }
    config
}

fn pool_config(config: &ExecutorConfig) -> PoolingAllocationConfig {
    let slots = config.max_instances.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(slots)
        .total_memories(slots)
        .total_tables(slots)
        .total_stacks(slots)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(1)
        .max_memory_size((config.max_memory_mb as usize) << 20);
    pool
}

/// Feeds `std::hash::Hash` output into SHA-256, so the digest is stable across processes and
/// Rust versions (unlike `DefaultHasher`).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(
            digest[..8]
                .try_into()
                .expect("a SHA-256 digest has 32 bytes"),
        )
    }
}

fn compatibility_hash(engine: &Engine) -> String {
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}

/// The thread that advances the engine's epoch every [`EPOCH_TICK`]; stops when dropped.
pub(crate) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts ticking `engine`.
    pub(crate) fn start(engine: &Engine) -> anyhow::Result<EpochTicker> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak = engine.weak();
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("weir-epoch".into())
            .spawn(move || {
                while !stopped.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .map_err(|e| anyhow::anyhow!("cannot start the epoch ticker thread: {e}"))?;
        Ok(EpochTicker { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> ExecutorConfig {
        ExecutorConfig {
            work_dir: "unused".into(),
            cache_dir: "unused".into(),
            max_instances: 4,
            max_memory_mb: 64,
            log_limit_bytes: 1024,
            threads: 1,
            idle_module_ttl: Duration::from_secs(60),
        }
    }

    #[test]
    fn the_hash_is_stable_for_one_configuration() {
        let a = build(&config()).unwrap();
        let b = build(&config()).unwrap();
        assert_eq!(a.hash, b.hash);
        assert_eq!(a.hash.len(), 32);
        assert!(a.allocator == POOLING || a.allocator == ON_DEMAND);
    }

    #[test]
    fn falls_back_to_on_demand_when_the_pool_cannot_be_reserved() {
        // A million 4 GiB slots exceed any 64-bit address space.
        let mut huge = config();
        huge.max_instances = 1_000_000;
        let built = build(&huge).unwrap();
        assert_eq!(built.allocator, ON_DEMAND);
        // The two allocators compile differently, so their artifacts are kept apart.
        let pooled = build(&config()).unwrap();
        if pooled.allocator == POOLING {
            assert_ne!(built.hash, pooled.hash);
        }
    }

    #[test]
    fn the_hasher_digests_what_it_is_fed() {
        let mut a = Sha256Hasher(Sha256::new());
        let mut b = Sha256Hasher(Sha256::new());
        "x".hash(&mut a);
        "y".hash(&mut b);
        assert_ne!(a.finish(), b.finish());
    }
}
