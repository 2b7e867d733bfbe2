//! Module blobs and named versions.

use crate::store::{ModuleBlob, ModuleVersion, Store};
use std::sync::Arc;

fn blob(digest: &str, size: u64, created_time: i64) -> ModuleBlob {
    ModuleBlob {
        digest: digest.into(),
        size,
        created_time,
    }
}

fn version(name: &str, version: u32, blob: &ModuleBlob) -> ModuleVersion {
    ModuleVersion {
        name: name.into(),
        version,
        digest: blob.digest.clone(),
        size: blob.size,
        created_time: blob.created_time,
    }
}

/// Blobs are stored once; a name gets a new version per new digest, not per push.
pub async fn module_versions(store: Arc<dyn Store>) {
    let a = blob("sha256:aa", 10, 100);
    let b = blob("sha256:bb", 20, 200);
    assert_eq!(store.put_module(&a, None).await.unwrap(), None);
    assert_eq!(
        store.get_module_blob(&a.digest).await.unwrap(),
        Some(a.clone())
    );
    store
        .put_module(&blob("sha256:aa", 10, 999), None)
        .await
        .unwrap();
    assert_eq!(
        store.get_module_blob(&a.digest).await.unwrap(),
        Some(a.clone()),
        "the first upload of a blob is kept"
    );
    assert_eq!(store.get_module_blob("sha256:cc").await.unwrap(), None);

    let v1 = store.put_module(&a, Some("ingest")).await.unwrap();
    assert_eq!(v1, Some(version("ingest", 1, &a)));
    let same = store.put_module(&a, Some("ingest")).await.unwrap();
    assert_eq!(
        same, v1,
        "pushing the latest digest again is no new version"
    );
    let v2 = store.put_module(&b, Some("ingest")).await.unwrap();
    assert_eq!(v2, Some(version("ingest", 2, &b)));
    let v3 = store.put_module(&a, Some("ingest")).await.unwrap();
    assert_eq!(
        v3,
        Some(version("ingest", 3, &a)),
        "going back is a new version"
    );
    let p1 = store.put_module(&b, Some("publish")).await.unwrap();
    assert_eq!(p1, Some(version("publish", 1, &b)));

    assert_eq!(store.get_module_version("ingest", None).await.unwrap(), v3);
    assert_eq!(
        store.get_module_version("ingest", Some(2)).await.unwrap(),
        v2
    );
    assert_eq!(
        store.get_module_version("ingest", Some(9)).await.unwrap(),
        None
    );
    assert_eq!(store.get_module_version("nope", None).await.unwrap(), None);

    let all = store.list_module_versions(None).await.unwrap();
    let all: Vec<_> = all.into_iter().map(|v| (v.name, v.version)).collect();
    let expected = [("ingest", 1), ("ingest", 2), ("ingest", 3), ("publish", 1)];
    assert_eq!(all, expected.map(|(n, v)| (n.to_string(), v)).to_vec());
    let publish = store.list_module_versions(Some("publish")).await.unwrap();
    assert_eq!(publish, vec![p1.unwrap()]);
}
