//! A real engine on a temp dir for unit tests of the engine and of the triggers: SQLite state,
//! a `file://` object store, the wasm executor, and the clock the test chooses.

use super::{Engine, EngineConfig};
use crate::clock::Clock;
use crate::exec::{Executor, ExecutorConfig};
use crate::modules::{BlobStore, Registry};
use crate::spec::JobSettings;
use crate::store::{JobId, Store};
use std::sync::Arc;
use std::time::Duration;

/// An engine and the directory holding its state.
pub struct TestEngine {
    /// The engine.
    pub engine: Engine,
    /// Its data directory (removed on drop).
    _dir: tempfile::TempDir,
}

impl TestEngine {
    /// Starts an engine on a fresh temp dir with `clock`.
    pub async fn start(clock: Arc<dyn Clock>) -> TestEngine {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("weir.db"))
            .await
            .expect("sqlite store");
        let blobs = Arc::new(
            BlobStore::open(&format!("file://{}", dir.path().join("objects").display()))
                .expect("object store"),
        );
        let executor = Executor::new(
            ExecutorConfig {
                work_dir: dir.path().join("work"),
                cache_dir: dir.path().join("compiled"),
                max_instances: 4,
                max_memory_mb: 64,
                log_limit_bytes: 1 << 16,
                threads: 2,
                idle_module_ttl: Duration::from_secs(60),
            },
            blobs.clone(),
        )
        .expect("executor");
        let registry = Arc::new(Registry::new(
            store.clone(),
            blobs,
            executor.clone(),
            1 << 20,
        ));
        let engine = Engine::start(
            store,
            executor,
            registry,
            clock,
            EngineConfig::new("test-node"),
        )
        .await
        .expect("engine");
        TestEngine { engine, _dir: dir }
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// Creates a job from a YAML spec.
    pub async fn create_job(&self, yaml: &str) -> JobId {
        let settings: JobSettings = crate::spec::test_support::settings(yaml);
        self.store()
            .create_job(&settings, self.engine.now())
            .await
            .expect("create job")
    }
}
