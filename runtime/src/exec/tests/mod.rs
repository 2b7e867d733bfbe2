//! Tests of the executor against hand-written WASI commands (WAT, in `../testdata/` or
//! generated in [`guests`]).

mod abi;
mod guests;
mod limits;
mod modules;

use super::cache::digest_of;
use super::{Executor, ExecutorConfig, Invocation, Outcome};
use crate::modules::BlobStore;
use bytes::Bytes;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bound of every wait in these tests: generous, never part of an assertion.
const PATIENCE: Duration = Duration::from_secs(30);
/// Bytes of stdout and stderr kept per attempt in these tests.
const LOG_LIMIT: usize = 1024;

/// An executor over temporary directories.
struct Fixture {
    dir: tempfile::TempDir,
    blobs: Arc<BlobStore>,
    executor: Arc<Executor>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Arc::new(
            BlobStore::open(&format!("file://{}", dir.path().join("objects").display())).unwrap(),
        );
        let executor = Fixture::executor_over(&dir, &blobs);
        Fixture {
            dir,
            blobs,
            executor,
        }
    }

    fn executor_over(dir: &tempfile::TempDir, blobs: &Arc<BlobStore>) -> Arc<Executor> {
        let config = ExecutorConfig {
            work_dir: dir.path().join("work"),
            cache_dir: dir.path().join("cache"),
            max_instances: 4,
            max_memory_mb: 64,
            log_limit_bytes: LOG_LIMIT,
            threads: 2,
            idle_module_ttl: Duration::from_secs(3600),
        };
        Executor::new(config, blobs.clone()).unwrap()
    }

    /// A second executor over the same directories and blob store (a restarted node).
    fn restart(&mut self) {
        self.executor = Fixture::executor_over(&self.dir, &self.blobs);
    }

    /// Prepares a module as the registry does: compiled artifact on disk and in the blob
    /// store, wasm in the blob store. Returns its digest.
    async fn push(&self, wat: &str) -> String {
        let wasm = wat::parse_str(wat).unwrap();
        let digest = digest_of(&wasm);
        let artifact = self.executor.prepare_upload(&digest, &wasm).unwrap();
        self.blobs
            .put_wasm(&digest, Bytes::from(wasm))
            .await
            .unwrap();
        self.blobs
            .put_artifact(self.executor.engine_hash(), &digest, artifact)
            .await
            .unwrap();
        digest
    }

    fn work_dir(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The local artifact of a digest.
    fn disk_artifact(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("cache")
            .join(self.executor.engine_hash())
            .join(format!("{hex}.cwasm"))
    }

    /// The artifact of a digest in the blob store.
    fn blob_artifact(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("objects/compiled")
            .join(self.executor.engine_hash())
            .join(format!("{hex}.cwasm"))
    }

    /// Runs an attempt to its end.
    async fn run(&self, inv: Invocation) -> Outcome {
        let attempt = self.executor.start(inv);
        tokio::time::timeout(PATIENCE, attempt.outcome)
            .await
            .expect("the attempt ended in time")
            .unwrap()
    }
}

/// An invocation of `digest` with a unique attempt id and roomy limits.
fn invocation(digest: &str) -> Invocation {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    Invocation {
        digest: digest.to_string(),
        attempt_id: NEXT.fetch_add(1, Ordering::Relaxed).to_string(),
        args: vec!["task".into()],
        env: Vec::new(),
        context: serde_json::json!({}),
        preopens: Vec::new(),
        memory_limit_bytes: 16 << 20,
        timeout: Some(PATIENCE),
    }
}

/// Waits until `condition` holds, failing the test after [`PATIENCE`].
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "timed out waiting until {what}");
}
