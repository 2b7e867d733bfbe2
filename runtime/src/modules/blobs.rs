//! Interface placeholder.
use bytes::Bytes;

/// Wasm blobs and compiled artifacts in an object store.
pub struct BlobStore;

impl BlobStore {
    /// Opens `file://PATH` (relative paths allowed; created if missing).
    pub fn open(_url: &str) -> anyhow::Result<BlobStore> {
        unimplemented!()
    }
    /// Stores wasm bytes under their digest.
    pub async fn put_wasm(&self, _digest: &str, _bytes: Bytes) -> anyhow::Result<()> {
        unimplemented!()
    }
    /// Wasm bytes by digest.
    pub async fn get_wasm(&self, _digest: &str) -> anyhow::Result<Option<Bytes>> {
        unimplemented!()
    }
}
