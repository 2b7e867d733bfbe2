//! The registry: pushes modules (validated and compiled once, stored content-addressed with
//! their compiled artifact) and resolves module references to digests.

use super::BlobStore;
use crate::exec::{Executor, ModuleError};
use crate::spec::ModuleRef;
use crate::store::{Millis, ModuleBlob, ModuleVersion, Store, StoreError};
use bytes::Bytes;
use sha2::{Digest, Sha256};
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

/// The registry.
pub struct Registry {
    store: Arc<dyn Store>,
    blobs: Arc<BlobStore>,
    executor: Arc<Executor>,
    max_module_bytes: u64,
}

impl Registry {
    /// A registry over a state store, a blob store and the executor that validates uploads.
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<BlobStore>,
        executor: Arc<Executor>,
        max_module_bytes: u64,
    ) -> Registry {
        Registry {
            store,
            blobs,
            executor,
            max_module_bytes,
        }
    }

    /// Validates, compiles and stores a module, optionally as a new version of `name`.
    ///
    /// Pushing bytes that are already stored skips validation and storage; with a name, it
    /// creates no new version when that name's latest version has the same digest.
    pub async fn push(
        &self,
        name: Option<&str>,
        wasm: Bytes,
        now: Millis,
    ) -> Result<PushResult, PushError> {
        let size = wasm.len() as u64;
        if size > self.max_module_bytes {
            return Err(ModuleError::TooLarge {
                size,
                limit: self.max_module_bytes,
            }
            .into());
        }
        if let Some(name) = name {
            check_name(name)?;
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&wasm)));
        let existing = self.store.get_module_blob(&digest).await.map_err(storage)?;
        let (blob, new_blob) = match existing {
            Some(blob) => (blob, false),
            None => (self.store_new_blob(&digest, wasm, now).await?, true),
        };
        let version = self.store.put_module(&blob, name).await.map_err(storage)?;
        Ok(PushResult {
            blob,
            version,
            new_blob,
        })
    }

    /// Validates and compiles new wasm, then stores it and its artifact in the blob store.
    async fn store_new_blob(
        &self,
        digest: &str,
        wasm: Bytes,
        now: Millis,
    ) -> Result<ModuleBlob, PushError> {
        let executor = self.executor.clone();
        let artifact = tokio::task::spawn_blocking({
            let digest = digest.to_string();
            let wasm = wasm.clone();
            move || executor.prepare_upload(&digest, &wasm)
        })
        .await
        .map_err(|e| PushError::Storage(format!("module validation failed: {e}")))??;
        let size = wasm.len() as u64;
        self.blobs.put_wasm(digest, wasm).await.map_err(storage)?;
        self.blobs
            .put_artifact(self.executor.engine_hash(), digest, artifact)
            .await
            .map_err(storage)?;
        Ok(ModuleBlob {
            digest: digest.to_string(),
            size,
            created_time: now,
        })
    }

    /// The digest a reference names.
    pub async fn resolve(&self, reference: &ModuleRef) -> Result<String, ResolveError> {
        match reference {
            ModuleRef::Digest(digest) => match self.store.get_module_blob(digest).await? {
                Some(blob) => Ok(blob.digest),
                None => Err(ResolveError::NotFound(format!(
                    "module {digest} is not in the registry; push it with `weir modules push`"
                ))),
            },
            ModuleRef::Named { name, version } => {
                if let Some(found) = self.store.get_module_version(name, *version).await? {
                    return Ok(found.digest);
                }
                let latest = self.store.get_module_version(name, None).await?;
                Err(ResolveError::NotFound(match (version, latest) {
                    (Some(v), Some(latest)) => format!(
                        "module `{name}` has no version {v}; latest is {}",
                        latest.version
                    ),
                    _ => format!(
                        "module `{name}` is not in the registry; push it with `weir modules push`"
                    ),
                }))
            }
            ModuleRef::Path(path) => Err(ResolveError::Invalid(format!(
                "module {path:?} is a file path: `weir deploy` pushes the file and replaces the \
                 path with its digest; the server resolves only sha256:<hex> and name[@version]"
            ))),
        }
    }

    /// Every version of one module name, or of all names, ordered by name then version.
    pub async fn list(&self, name: Option<&str>) -> Result<Vec<ModuleVersion>, StoreError> {
        self.store.list_module_versions(name).await
    }
}

/// A module name must read back as itself in a `module:` reference (`name` or `name@3`).
fn check_name(name: &str) -> Result<(), PushError> {
    match ModuleRef::parse(name) {
        Ok(ModuleRef::Named {
            name: parsed,
            version: None,
        }) if parsed == name => Ok(()),
        Ok(_) => Err(PushError::BadName(format!(
            "module name {name:?} must be 1 to 128 characters of letters, digits, `_`, `-` and \
             `.`, and not look like a path, a digest or name@version"
        ))),
        Err(e) => Err(PushError::BadName(e)),
    }
}

fn storage(e: impl std::fmt::Display) -> PushError {
    PushError::Storage(format!("cannot store the module: {e}"))
}

#[cfg(test)]
mod tests;
