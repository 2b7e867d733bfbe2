//! Wasm blobs and compiled artifacts in an object store.
//!
//! Keys: `modules/sha256/<hex>.wasm` for the wasm a user pushed, and
//! `compiled/<engine-hash>/<hex>.cwasm` for its artifact compiled by an engine with that
//! compatibility hash (so other nodes skip compiling). The store is a local directory
//! (`file://PATH`) or an S3-compatible bucket (`s3://bucket/prefix`, keys under the prefix; see
//! [`crate::s3`] for its settings).

use crate::s3::{self, Retries, S3Settings, S3Url};
use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;

/// Wasm blobs and compiled artifacts in an object store.
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
}

/// A `sha256:<hex>` digest's hex part, or an error naming the bad digest.
fn hex_of(digest: &str) -> anyhow::Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|hex| {
            hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        })
        .ok_or_else(|| {
            anyhow::anyhow!("digest {digest:?} is not sha256: and 64 lowercase hex digits")
        })
}

fn wasm_key(digest: &str) -> anyhow::Result<ObjectPath> {
    Ok(ObjectPath::from(format!(
        "modules/sha256/{}.wasm",
        hex_of(digest)?
    )))
}

fn artifact_key(engine_hash: &str, digest: &str) -> anyhow::Result<ObjectPath> {
    anyhow::ensure!(
        !engine_hash.is_empty() && engine_hash.bytes().all(|b| b.is_ascii_hexdigit()),
        "engine hash {engine_hash:?} is not hex"
    );
    Ok(ObjectPath::from(format!(
        "compiled/{engine_hash}/{}.cwasm",
        hex_of(digest)?
    )))
}

impl BlobStore {
    /// Opens `file://PATH` (relative paths allowed; created if missing) or
    /// `s3://bucket/prefix` with the AWS settings of the environment.
    pub fn open(url: &str) -> anyhow::Result<BlobStore> {
        BlobStore::open_with(url, &S3Settings::default())
    }

    /// [`BlobStore::open`], the environment's S3 settings overridden by `s3`.
    pub fn open_with(url: &str, s3: &S3Settings) -> anyhow::Result<BlobStore> {
        if let Some(path) = url.strip_prefix("file://") {
            anyhow::ensure!(
                !path.is_empty(),
                "object store URL {url:?} has no path: expected file://PATH"
            );
            std::fs::create_dir_all(path).map_err(|e| {
                anyhow::anyhow!("cannot create the object store directory {path:?}: {e}")
            })?;
            let local = LocalFileSystem::new_with_prefix(path)
                .map_err(|e| anyhow::anyhow!("cannot open the object store at {path:?}: {e}"))?;
            return Ok(BlobStore {
                store: Arc::new(local),
            });
        }
        if url.starts_with("s3://") {
            let location = S3Url::parse(url)?;
            let bucket = s3::store(&location.bucket, s3, Retries::Patient).map_err(|e| {
                anyhow::anyhow!("cannot configure the S3 object store {url:?}: {e}")
            })?;
            let store: Arc<dyn ObjectStore> = if location.prefix.is_empty() {
                bucket
            } else {
                Arc::new(PrefixStore::new(bucket, location.prefix.as_str()))
            };
            return Ok(BlobStore { store });
        }
        anyhow::bail!(
            "unsupported object store URL {url:?}: expected file://PATH or s3://bucket/prefix"
        )
    }

    /// Checks that the store answers: the bucket exists and the credentials may list it.
    pub async fn check(&self) -> anyhow::Result<()> {
        use futures::TryStreamExt as _;
        let mut listing = self.store.list(Some(&ObjectPath::from("modules")));
        listing
            .try_next()
            .await
            .map_err(|e| anyhow::anyhow!("the object store does not answer: {e}"))?;
        Ok(())
    }

    /// A blob store over any object store (tests, other backends).
    pub fn from_store(store: Arc<dyn ObjectStore>) -> BlobStore {
        BlobStore { store }
    }

    /// Stores wasm bytes under their digest.
    pub async fn put_wasm(&self, digest: &str, bytes: Bytes) -> anyhow::Result<()> {
        self.put(&wasm_key(digest)?, bytes).await
    }

    /// Wasm bytes by digest.
    pub async fn get_wasm(&self, digest: &str) -> anyhow::Result<Option<Bytes>> {
        self.get(&wasm_key(digest)?).await
    }

    /// Stores the artifact of `digest` compiled by an engine with `engine_hash`.
    pub async fn put_artifact(
        &self,
        engine_hash: &str,
        digest: &str,
        bytes: Bytes,
    ) -> anyhow::Result<()> {
        self.put(&artifact_key(engine_hash, digest)?, bytes).await
    }

    /// The artifact of `digest` compiled by an engine with `engine_hash`.
    pub async fn get_artifact(
        &self,
        engine_hash: &str,
        digest: &str,
    ) -> anyhow::Result<Option<Bytes>> {
        self.get(&artifact_key(engine_hash, digest)?).await
    }

    async fn put(&self, key: &ObjectPath, bytes: Bytes) -> anyhow::Result<()> {
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .map_err(|e| anyhow::anyhow!("cannot store object {key}: {e}"))?;
        Ok(())
    }

    async fn get(&self, key: &ObjectPath) -> anyhow::Result<Option<Bytes>> {
        let found = match self.store.get(key).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => anyhow::bail!("cannot read object {key}: {e}"),
        };
        let bytes = found
            .bytes()
            .await
            .map_err(|e| anyhow::anyhow!("cannot read object {key}: {e}"))?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[tokio::test]
    async fn stores_wasm_and_artifacts_under_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("file://{}", dir.path().join("objects").display());
        let blobs = BlobStore::open(&url).unwrap();
        let a = digest('a');
        assert_eq!(blobs.get_wasm(&a).await.unwrap(), None);
        blobs
            .put_wasm(&a, Bytes::from_static(b"wasm"))
            .await
            .unwrap();
        blobs
            .put_artifact("0f", &a, Bytes::from_static(b"cwasm"))
            .await
            .unwrap();
        assert_eq!(blobs.get_wasm(&a).await.unwrap().unwrap(), "wasm");
        assert_eq!(
            blobs.get_artifact("0f", &a).await.unwrap().unwrap(),
            "cwasm"
        );
        assert_eq!(blobs.get_artifact("1f", &a).await.unwrap(), None);
        let hex = "a".repeat(64);
        let root = dir.path().join("objects");
        assert!(root.join(format!("modules/sha256/{hex}.wasm")).is_file());
        assert!(root.join(format!("compiled/0f/{hex}.cwasm")).is_file());
    }

    #[tokio::test]
    async fn opens_relative_paths_and_refuses_other_schemes() {
        let dir = tempfile::tempdir().unwrap();
        // A path relative to the working directory, climbing to the root with `..`.
        let depth = std::env::current_dir().unwrap().components().count() - 1;
        let path = std::iter::repeat_n("..", depth)
            .collect::<std::path::PathBuf>()
            .join(dir.path().strip_prefix("/").unwrap());
        assert!(path.is_relative());
        let blobs = BlobStore::open(&format!("file://{}/store", path.display())).unwrap();
        blobs
            .put_wasm(&digest('b'), Bytes::from_static(b"x"))
            .await
            .unwrap();
        assert!(dir.path().join("store/modules/sha256").is_dir());

        let err = BlobStore::open("gs://bucket/prefix")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unsupported object store URL \"gs://bucket/prefix\""),
            "{err}"
        );
        let err = BlobStore::open("s3:///prefix").err().unwrap().to_string();
        assert!(err.contains("no bucket name"), "{err}");
    }

    #[tokio::test]
    async fn refuses_malformed_digests() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(&format!("file://{}", dir.path().display())).unwrap();
        let err = blobs.get_wasm("sha256:xyz").await.unwrap_err().to_string();
        assert!(err.contains("is not sha256:"), "{err}");
        let err = blobs
            .get_artifact("../etc", &digest('a'))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("is not hex"), "{err}");
    }
}
