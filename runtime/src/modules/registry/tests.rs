//! Registry tests over a real executor, blob store and state store.

use super::*;
use crate::exec::ExecutorConfig;
use std::time::Duration;

const COMMAND: &str = r#"(module (memory (export "memory") 1) (func (export "_start")))"#;
const OTHER_COMMAND: &str = r#"(module (memory (export "memory") 2) (func (export "_start")))"#;

struct Fixture {
    dir: tempfile::TempDir,
    registry: Registry,
    executor: Arc<Executor>,
}

async fn fixture(max_module_bytes: u64) -> Fixture {
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
    let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("weir.db"))
        .await
        .unwrap();
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
    let f = fixture(1 << 20).await;
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
    let f = fixture(1 << 20).await;
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
    let f = fixture(16).await;
    let err = f.registry.push(None, wasm(COMMAND), 1).await.unwrap_err();
    assert!(matches!(
        err,
        PushError::Invalid(ModuleError::TooLarge { limit: 16, .. })
    ));

    let f = fixture(1 << 20).await;
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
    let f = fixture(1 << 20).await;
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
    let f = fixture(1 << 20).await;
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
