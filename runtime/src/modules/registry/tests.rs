//! Registry tests over a real executor and blob store, and a fake state store that keeps only
//! modules (the SQLite store is tested on its own).

use super::*;
use crate::exec::ExecutorConfig;
use crate::spec::JobSettings;
use crate::store::*;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

/// Implements only the module methods of [`Store`], in memory.
#[derive(Default)]
struct ModulesOnlyStore {
    blobs: Mutex<BTreeMap<String, ModuleBlob>>,
    versions: Mutex<Vec<ModuleVersion>>,
}

#[async_trait]
impl Store for ModulesOnlyStore {
    async fn put_module(
        &self,
        blob: &ModuleBlob,
        name: Option<&str>,
    ) -> StoreResult<Option<ModuleVersion>> {
        self.blobs
            .lock()
            .unwrap()
            .entry(blob.digest.clone())
            .or_insert_with(|| blob.clone());
        let Some(name) = name else { return Ok(None) };
        let mut versions = self.versions.lock().unwrap();
        let latest = versions.iter().rfind(|v| v.name == name).cloned();
        if let Some(latest) = &latest
            && latest.digest == blob.digest
        {
            return Ok(Some(latest.clone()));
        }
        let version = ModuleVersion {
            name: name.to_string(),
            version: latest.map_or(1, |v| v.version + 1),
            digest: blob.digest.clone(),
            size: blob.size,
            created_time: blob.created_time,
        };
        versions.push(version.clone());
        Ok(Some(version))
    }

    async fn get_module_blob(&self, digest: &str) -> StoreResult<Option<ModuleBlob>> {
        Ok(self.blobs.lock().unwrap().get(digest).cloned())
    }

    async fn get_module_version(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ModuleVersion>> {
        let versions = self.versions.lock().unwrap();
        let mut named = versions.iter().filter(|v| v.name == name);
        Ok(match version {
            Some(n) => named.find(|v| v.version == n).cloned(),
            None => named.next_back().cloned(),
        })
    }

    async fn list_module_versions(&self, name: Option<&str>) -> StoreResult<Vec<ModuleVersion>> {
        let mut versions: Vec<_> = self
            .versions
            .lock()
            .unwrap()
            .iter()
            .filter(|v| name.is_none_or(|n| v.name == n))
            .cloned()
            .collect();
        versions.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
        Ok(versions)
    }

    async fn create_job(&self, _: &JobSettings, _: Millis) -> StoreResult<JobId> {
        unreachable!("the registry does not touch jobs")
    }
    async fn get_job(&self, _: JobId) -> StoreResult<Option<JobRecord>> {
        unreachable!("the registry does not touch jobs")
    }
    async fn find_job(&self, _: &str) -> StoreResult<Option<JobRecord>> {
        unreachable!("the registry does not touch jobs")
    }
    async fn list_jobs(&self, _: Page, _: Option<&str>) -> StoreResult<(Vec<JobRecord>, bool)> {
        unreachable!("the registry does not touch jobs")
    }
    async fn update_job(&self, _: JobId, _: &JobSettings) -> StoreResult<()> {
        unreachable!("the registry does not touch jobs")
    }
    async fn delete_job(&self, _: JobId) -> StoreResult<()> {
        unreachable!("the registry does not touch jobs")
    }
    async fn create_run(&self, _: NewRun) -> StoreResult<RunCreated> {
        unreachable!("the registry does not touch runs")
    }
    async fn claim_runs(
        &self,
        _: &str,
        _: Millis,
        _: i64,
        _: u32,
    ) -> StoreResult<Vec<RunSnapshot>> {
        unreachable!("the registry does not touch runs")
    }
    async fn renew_leases(&self, _: &str, _: Millis, _: i64) -> StoreResult<LeaseRenewal> {
        unreachable!("the registry does not touch runs")
    }
    async fn release_leases(&self, _: &str) -> StoreResult<u64> {
        unreachable!("the registry does not touch runs")
    }
    async fn write_run(&self, _: RunWrite) -> StoreResult<()> {
        unreachable!("the registry does not touch runs")
    }
    async fn allocate_run_ids(&self, _: u32) -> StoreResult<RunId> {
        unreachable!("the registry does not touch runs")
    }
    async fn request_cancel(&self, _: RunId, _: Millis) -> StoreResult<CancelOutcome> {
        unreachable!("the registry does not touch runs")
    }
    async fn start_repair(&self, _: NewRepair) -> StoreResult<i64> {
        unreachable!("the registry does not touch runs")
    }
    async fn get_run(&self, _: RunId) -> StoreResult<Option<RunSnapshot>> {
        unreachable!("the registry does not touch runs")
    }
    async fn get_task_run(&self, _: RunId) -> StoreResult<Option<TaskRunRecord>> {
        unreachable!("the registry does not touch runs")
    }
    async fn list_runs(&self, _: &RunFilter) -> StoreResult<(Vec<RunRecord>, bool)> {
        unreachable!("the registry does not touch runs")
    }
    async fn get_logs(&self, _: RunId) -> StoreResult<Option<TaskLogs>> {
        unreachable!("the registry does not touch runs")
    }
    async fn delete_run(&self, _: RunId) -> StoreResult<()> {
        unreachable!("the registry does not touch runs")
    }
    async fn run_events(&self, _: i64, _: u32) -> StoreResult<Vec<RunEvent>> {
        unreachable!("the registry does not touch runs")
    }
}

const COMMAND: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
const OTHER_COMMAND: &str = r#"(module (memory (export "memory") 2) (func (export "_start")))"#;

struct Fixture {
    dir: tempfile::TempDir,
    registry: Registry,
    executor: Arc<Executor>,
}

fn fixture(max_module_bytes: u64) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let blobs = Arc::new(
        BlobStore::open(&format!("file://{}", dir.path().join("objects").display())).unwrap(),
    );
    let config = ExecutorConfig {
        work_dir: dir.path().join("work"),
        cache_dir: dir.path().join("cache"),
        max_instances: 2,
        max_memory_mb: 16,
        log_limit_bytes: 1024,
        threads: 1,
        idle_module_ttl: Duration::from_secs(3600),
    };
    let executor = Executor::new(config, blobs.clone()).unwrap();
    let store: Arc<dyn Store> = Arc::new(ModulesOnlyStore::default());
    let registry = Registry::new(store, blobs, executor.clone(), max_module_bytes);
    Fixture {
        dir,
        registry,
        executor,
    }
}

fn wasm(wat: &str) -> Bytes {
    Bytes::from(wat::parse_str(wat).unwrap())
}

#[tokio::test]
async fn push_stores_the_blob_its_artifact_and_a_version() {
    let f = fixture(1 << 20);
    let pushed = f
        .registry
        .push(Some("ingest"), wasm(COMMAND), 1000)
        .await
        .unwrap();
    let hex = pushed
        .blob
        .digest
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    assert_eq!(hex.len(), 64);
    assert!(pushed.new_blob);
    assert_eq!(pushed.blob.created_time, 1000);
    assert_eq!(pushed.blob.size, wasm(COMMAND).len() as u64);
    let version = pushed.version.unwrap();
    assert_eq!((version.name.as_str(), version.version), ("ingest", 1));
    let objects = f.dir.path().join("objects");
    assert!(objects.join(format!("modules/sha256/{hex}.wasm")).is_file());
    let compiled = format!("compiled/{}/{hex}.cwasm", f.executor.engine_hash());
    assert!(objects.join(compiled).is_file());
}

#[tokio::test]
async fn pushing_the_same_bytes_again_creates_nothing_new() {
    let f = fixture(1 << 20);
    let first = f
        .registry
        .push(Some("ingest"), wasm(COMMAND), 1)
        .await
        .unwrap();
    let again = f
        .registry
        .push(Some("ingest"), wasm(COMMAND), 2)
        .await
        .unwrap();
    assert!(!again.new_blob);
    assert_eq!(again.blob, first.blob);
    assert_eq!(again.version, first.version);
    let other = f
        .registry
        .push(Some("ingest"), wasm(OTHER_COMMAND), 3)
        .await
        .unwrap();
    assert_eq!(other.version.unwrap().version, 2);
    let anonymous = f.registry.push(None, wasm(COMMAND), 4).await.unwrap();
    assert_eq!(anonymous.version, None);
    assert_eq!(f.registry.list(Some("ingest")).await.unwrap().len(), 2);
    assert_eq!(f.registry.list(None).await.unwrap().len(), 2);
}

#[tokio::test]
async fn push_refuses_oversized_invalid_and_badly_named_modules() {
    let f = fixture(16);
    let err = f.registry.push(None, wasm(COMMAND), 1).await.unwrap_err();
    assert!(matches!(
        err,
        PushError::Invalid(ModuleError::TooLarge { limit: 16, .. })
    ));

    let f = fixture(1 << 20);
    let err = f
        .registry
        .push(None, Bytes::from_static(b"nope"), 1)
        .await
        .unwrap_err();
    assert!(
        matches!(err, PushError::Invalid(ModuleError::NotWasm(_))),
        "{err}"
    );
    let reactor = wasm(r#"(module (func (export "_initialize")))"#);
    let err = f.registry.push(None, reactor, 1).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "module exports no `_start` function: it is not a WASI command"
    );
    assert!(f.registry.list(None).await.unwrap().is_empty());

    for name in ["in gest", "x.wasm", "a@2", ""] {
        let err = f
            .registry
            .push(Some(name), wasm(COMMAND), 1)
            .await
            .unwrap_err();
        assert!(matches!(err, PushError::BadName(_)), "{name:?}: {err}");
    }
}

#[tokio::test]
async fn resolve_finds_digests_names_and_versions() {
    let f = fixture(1 << 20);
    let v1 = f
        .registry
        .push(Some("ingest"), wasm(COMMAND), 1)
        .await
        .unwrap();
    let v2 = f
        .registry
        .push(Some("ingest"), wasm(OTHER_COMMAND), 2)
        .await
        .unwrap();
    let named = |version| ModuleRef::Named {
        name: "ingest".into(),
        version,
    };
    assert_eq!(
        f.registry.resolve(&named(None)).await.unwrap(),
        v2.blob.digest
    );
    assert_eq!(
        f.registry.resolve(&named(Some(1))).await.unwrap(),
        v1.blob.digest
    );
    let digest = ModuleRef::Digest(v1.blob.digest.clone());
    assert_eq!(f.registry.resolve(&digest).await.unwrap(), v1.blob.digest);

    let err = f.registry.resolve(&named(Some(7))).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "module `ingest` has no version 7; latest is 2"
    );
    let missing = ModuleRef::Named {
        name: "publish".into(),
        version: None,
    };
    let err = f.registry.resolve(&missing).await.unwrap_err();
    assert!(matches!(err, ResolveError::NotFound(_)));
    assert!(
        err.to_string()
            .starts_with("module `publish` is not in the registry")
    );

    let unknown = format!("sha256:{}", "0".repeat(64));
    let err = f
        .registry
        .resolve(&ModuleRef::Digest(unknown.clone()))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("module {unknown} is not in the registry; push it with `weir modules push`")
    );
    let err = f
        .registry
        .resolve(&ModuleRef::Path("x.wasm".into()))
        .await
        .unwrap_err();
    assert!(matches!(err, ResolveError::Invalid(_)));
}

#[tokio::test]
async fn a_pushed_module_runs() {
    let f = fixture(1 << 20);
    let pushed = f.registry.push(None, wasm(COMMAND), 1).await.unwrap();
    let outcome = f
        .executor
        .start(crate::exec::Invocation {
            digest: pushed.blob.digest,
            attempt_id: "1".into(),
            args: vec!["task".into()],
            env: Vec::new(),
            context: serde_json::Value::Null,
            preopens: Vec::new(),
            memory_limit_bytes: 1 << 20,
            timeout: None,
        })
        .outcome
        .await
        .unwrap();
    assert_eq!(outcome.status, crate::exec::ExitStatus::Success);
    assert_eq!(f.executor.module_loads().compiled, 0);
}
