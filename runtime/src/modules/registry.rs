//! Interface placeholder.
use super::BlobStore;
use crate::exec::{Executor, ModuleError};
use crate::spec::ModuleRef;
use crate::store::{Millis, ModuleBlob, ModuleVersion, Store, StoreError};
use bytes::Bytes;
use std::sync::Arc;

/// What a push did.
#[derive(Debug, Clone, PartialEq)]
pub struct PushResult {
    /// The blob.
    pub blob: ModuleBlob,
    /// The named version, when a name was given.
    pub version: Option<ModuleVersion>,
    /// False when the blob was already stored.
    pub new_blob: bool,
}

/// A module reference that does not resolve.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// No such module, version or digest.
    #[error("{0}")]
    NotFound(String),
    /// A path reference reached the server.
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The registry.
pub struct Registry;

impl Registry {
    /// A registry over a state store, a blob store and the executor that validates uploads.
    pub fn new(
        _store: Arc<dyn Store>,
        _blobs: Arc<BlobStore>,
        _executor: Arc<Executor>,
        _max_module_bytes: u64,
    ) -> Registry {
        unimplemented!()
    }
    /// Validates, compiles and stores a module, optionally as a new version of `name`.
    pub async fn push(
        &self,
        _name: Option<&str>,
        _wasm: Bytes,
        _now: Millis,
    ) -> Result<PushResult, PushError> {
        unimplemented!()
    }
    /// The digest a reference names.
    pub async fn resolve(&self, _reference: &ModuleRef) -> Result<String, ResolveError> {
        unimplemented!()
    }
}

/// A refused push.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The module is invalid.
    #[error(transparent)]
    Invalid(#[from] ModuleError),
    /// The name is invalid.
    #[error("{0}")]
    BadName(String),
    /// Storage failed.
    #[error("{0}")]
    Storage(String),
}
