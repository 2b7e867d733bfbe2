//! Module preparation at upload, and loading on the run path.

use super::{Fixture, guests, invocation};
use crate::exec::cache::digest_of;
use crate::exec::{ExitStatus, ModuleError, ModuleLoads};
use std::time::Duration;

fn prepare(f: &Fixture, wasm: &[u8]) -> Result<bytes::Bytes, ModuleError> {
    f.executor.prepare_upload(&digest_of(wasm), wasm)
}

fn refusal(f: &Fixture, wat: &str) -> String {
    let wasm = wat::parse_str(wat).unwrap();
    prepare(f, &wasm).unwrap_err().to_string()
}

#[test]
fn prepare_upload_caches_the_artifact_on_disk() {
    let f = Fixture::new();
    let wasm = wat::parse_str(guests::EMPTY).unwrap();
    let digest = digest_of(&wasm);
    let artifact = prepare(&f, &wasm).unwrap();
    assert_eq!(std::fs::read(f.disk_artifact(&digest)).unwrap(), artifact);
}

#[test]
fn prepare_upload_refuses_what_is_not_a_wasi_command() {
    let f = Fixture::new();
    assert_eq!(
        refusal(&f, "(component)"),
        "module is a WebAssembly component; Weir runs WASI preview 1 command modules"
    );
    let garbage = prepare(&f, b"\0asm but not really").unwrap_err();
    assert!(matches!(garbage, ModuleError::NotWasm(_)));
    assert!(
        garbage
            .to_string()
            .starts_with("not a valid WebAssembly module: "),
        "{garbage}"
    );
    assert_eq!(
        refusal(
            &f,
            r#"(module (import "env" "foo" (func)) (func (export "_start")))"#
        ),
        "module imports `env::foo`, which Weir does not provide: tasks may import only wasi_snapshot_preview1"
    );
    assert_eq!(
        refusal(
            &f,
            r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (func (export "_start")))"#
        ),
        "module imports `wasi_snapshot_preview1::no_such_call`, which Weir does not provide: it is not a WASI preview 1 function"
    );
    assert!(
        refusal(
            &f,
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i64))) (func (export "_start")))"#
        )
        .starts_with("module imports do not match WASI preview 1: ")
    );
    assert_eq!(
        refusal(&f, r#"(module (func (export "_initialize")))"#),
        "module exports no `_start` function: it is not a WASI command"
    );
    assert_eq!(
        refusal(&f, r#"(module (func (export "_start") (param i32)))"#),
        "module exports `_start` with the wrong type: expected a function [] -> []"
    );
}

#[tokio::test]
async fn a_module_is_loaded_once_then_served_from_memory() {
    let f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    for _ in 0..3 {
        assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);
    }
    assert_eq!(
        f.executor.module_loads(),
        ModuleLoads {
            memory_hits: 2,
            from_disk: 1,
            from_blob_artifact: 0,
            compiled: 0,
        }
    );
    assert_eq!(f.executor.modules_cached(), 1);
}

#[tokio::test]
async fn after_eviction_disk_then_blob_artifact_then_wasm_serve_the_module() {
    let f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);

    // Evicted from memory: loaded from disk again.
    assert_eq!(f.executor.evict_modules(Duration::ZERO), 1);
    assert_eq!(f.executor.modules_cached(), 0);
    assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);
    assert_eq!(f.executor.module_loads().from_disk, 2);

    // No local artifact: fetched from the blob store, and cached on disk again.
    f.executor.evict_modules(Duration::ZERO);
    std::fs::remove_file(f.disk_artifact(&digest)).unwrap();
    assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);
    assert_eq!(f.executor.module_loads().from_blob_artifact, 1);
    assert!(f.disk_artifact(&digest).is_file());

    // No artifact anywhere: compiled from the wasm, cached on disk and in the blob store.
    f.executor.evict_modules(Duration::ZERO);
    std::fs::remove_file(f.disk_artifact(&digest)).unwrap();
    std::fs::remove_file(f.blob_artifact(&digest)).unwrap();
    assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);
    assert_eq!(f.executor.module_loads().compiled, 1);
    assert!(f.disk_artifact(&digest).is_file());
    assert!(f.blob_artifact(&digest).is_file());
}

#[tokio::test]
async fn a_corrupt_local_artifact_is_replaced() {
    let f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    std::fs::write(f.disk_artifact(&digest), b"not an artifact").unwrap();
    assert_eq!(f.run(invocation(&digest)).await.status, ExitStatus::Success);
    let loads = f.executor.module_loads();
    assert_eq!((loads.from_disk, loads.from_blob_artifact), (0, 1));
}

#[tokio::test]
async fn idle_modules_are_evicted_by_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    let config = crate::exec::ExecutorConfig {
        work_dir: dir.path().join("work"),
        cache_dir: dir.path().join("cache"),
        max_instances: 1,
        max_memory_mb: 16,
        log_limit_bytes: 64,
        threads: 1,
        idle_module_ttl: Duration::from_millis(1),
    };
    let executor = crate::exec::Executor::new(config, f.blobs.clone()).unwrap();
    let outcome = executor.start(invocation(&digest)).outcome.await.unwrap();
    assert_eq!(outcome.status, ExitStatus::Success);
    super::wait_until("the sweep evicts the module", || {
        executor.modules_cached() == 0
    })
    .await;
}

#[tokio::test]
async fn concurrent_loads_of_one_digest_load_it_once() {
    let mut f = Fixture::new();
    let digest = f.push(guests::EMPTY).await;
    f.restart();
    let attempts: Vec<_> = (0..4)
        .map(|_| f.executor.start(invocation(&digest)))
        .collect();
    for attempt in attempts {
        assert_eq!(attempt.outcome.await.unwrap().status, ExitStatus::Success);
    }
    let loads = f.executor.module_loads();
    assert_eq!(
        (loads.from_disk, loads.from_blob_artifact, loads.compiled),
        (1, 0, 0)
    );
}

#[tokio::test]
async fn an_unknown_digest_fails_the_attempt() {
    let f = Fixture::new();
    let digest = digest_of(b"never pushed");
    let outcome = f.run(invocation(&digest)).await;
    assert_eq!(
        outcome.status,
        ExitStatus::Failed {
            message: format!("module {digest} is not in the object store"),
            exit_code: None,
        }
    );
    assert_eq!(f.executor.modules_cached(), 0);
}
