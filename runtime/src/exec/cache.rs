//! Loading modules on the run path without compiling when it can be avoided.
//!
//! In order: the in-memory cache of `InstancePre`s (evicted when idle) -> the compiled artifact
//! on local disk (`<cache_dir>/<engine-hash>/<hex>.cwasm`) -> the artifact in the blob store
//! (uploaded by whichever node prepared the module) -> the wasm in the blob store, compiled (a
//! slow path, logged) and cached. Concurrent loads of one digest load it once.

use super::sandbox::TaskState;
use crate::modules::BlobStore;
use bytes::Bytes;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::OnceCell;
use wasmtime::{Engine, InstancePre, Linker, Module};

/// A module ready to instantiate.
pub(crate) type TaskPre = InstancePre<TaskState>;

/// How often each way of loading a module was taken, since the executor started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModuleLoads {
    /// Served from the in-memory cache.
    pub memory_hits: u64,
    /// Deserialized from the local disk cache.
    pub from_disk: u64,
    /// Compiled artifact fetched from the blob store.
    pub from_blob_artifact: u64,
    /// Compiled from the wasm in the blob store (the slow path).
    pub compiled: u64,
}

#[derive(Default)]
struct LoadCounters {
    memory_hits: AtomicU64,
    from_disk: AtomicU64,
    from_blob_artifact: AtomicU64,
    compiled: AtomicU64,
}

/// One digest in the in-memory cache.
struct Slot {
    pre: OnceCell<Arc<TaskPre>>,
    /// Milliseconds since the cache was created.
    last_used_ms: AtomicU64,
}

/// The module cache of one executor.
pub(crate) struct ModuleCache {
    engine: Engine,
    linker: Linker<TaskState>,
    engine_hash: String,
    /// `<cache_dir>/<engine-hash>`.
    dir: PathBuf,
    blobs: Arc<BlobStore>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    created: Instant,
    loads: LoadCounters,
}

impl ModuleCache {
    /// A cache storing artifacts under `cache_dir/<engine_hash>/`.
    pub(crate) fn new(
        engine: Engine,
        linker: Linker<TaskState>,
        engine_hash: String,
        cache_dir: &Path,
        blobs: Arc<BlobStore>,
    ) -> anyhow::Result<ModuleCache> {
        let dir = cache_dir.join(&engine_hash);
        std::fs::create_dir_all(&dir).map_err(|e| {
            anyhow::anyhow!("cannot create the module cache {:?}: {e}", dir.display())
        })?;
        Ok(ModuleCache {
            engine,
            linker,
            engine_hash,
            dir,
            blobs,
            slots: Mutex::new(HashMap::new()),
            created: Instant::now(),
            loads: LoadCounters::default(),
        })
    }

    /// The engine modules are compiled for.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The hex digest of the engine's compatibility hash.
    pub(crate) fn engine_hash(&self) -> &str {
        &self.engine_hash
    }

    /// The linker every module is instantiated against.
    pub(crate) fn linker(&self) -> &Linker<TaskState> {
        &self.linker
    }

    /// The local path of a digest's compiled artifact.
    pub(crate) fn artifact_path(&self, hex: &str) -> PathBuf {
        self.dir.join(format!("{hex}.cwasm"))
    }

    /// Counters of the load paths taken.
    pub(crate) fn loads(&self) -> ModuleLoads {
        ModuleLoads {
            memory_hits: self.loads.memory_hits.load(Ordering::Relaxed),
            from_disk: self.loads.from_disk.load(Ordering::Relaxed),
            from_blob_artifact: self.loads.from_blob_artifact.load(Ordering::Relaxed),
            compiled: self.loads.compiled.load(Ordering::Relaxed),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Arc<Slot>>> {
        // The map stays consistent under a panic (single inserts and removals).
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.created.elapsed().as_millis() as u64
    }

    /// Modules in the in-memory cache.
    pub(crate) fn len(&self) -> usize {
        self.slots()
            .values()
            .filter(|s| s.pre.initialized())
            .count()
    }

    /// Drops the in-memory entries unused for at least `idle_for`; returns how many.
    pub(crate) fn evict_idle(&self, idle_for: Duration) -> usize {
        let now = self.now_ms();
        let idle_ms = idle_for.as_millis() as u64;
        let mut slots = self.slots();
        let before = slots.len();
        slots.retain(|_, slot| {
            let idle = now.saturating_sub(slot.last_used_ms.load(Ordering::Relaxed)) >= idle_ms;
            // A slot still loading is kept: its loader and waiters hold it anyway.
            !(idle && slot.pre.initialized())
        });
        before - slots.len()
    }

    /// The module of `digest`, ready to instantiate.
    pub(crate) async fn get(&self, digest: &str) -> Result<Arc<TaskPre>, String> {
        let now = self.now_ms();
        let slot = self
            .slots()
            .entry(digest.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    pre: OnceCell::new(),
                    last_used_ms: AtomicU64::new(now),
                })
            })
            .clone();
        slot.last_used_ms.store(now, Ordering::Relaxed);
        if let Some(pre) = slot.pre.get() {
            self.loads.memory_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(pre.clone());
        }
        match slot.pre.get_or_try_init(|| self.load(digest)).await {
            Ok(pre) => Ok(pre.clone()),
            Err(e) => {
                // Forget the failed digest rather than keep an empty slot for it.
                let mut slots = self.slots();
                if slots
                    .get(digest)
                    .is_some_and(|s| Arc::ptr_eq(s, &slot) && !s.pre.initialized())
                {
                    slots.remove(digest);
                }
                Err(e)
            }
        }
    }

    async fn load(&self, digest: &str) -> Result<Arc<TaskPre>, String> {
        let hex = digest_hex(digest).ok_or_else(|| {
            format!("module digest {digest:?} is not sha256: and 64 lowercase hex digits")
        })?;
        let module = self.load_module(digest, hex).await?;
        let pre = self
            .linker
            .instantiate_pre(&module)
            .map_err(|e| format!("module {digest} does not link against WASI preview 1: {e:#}"))?;
        Ok(Arc::new(pre))
    }

    async fn load_module(&self, digest: &str, hex: &str) -> Result<Module, String> {
        let path = self.artifact_path(hex);
        if let Some(module) = self.deserialize_local(digest, &path).await? {
            self.loads.from_disk.fetch_add(1, Ordering::Relaxed);
            return Ok(module);
        }
        let artifact = self
            .blobs
            .get_artifact(&self.engine_hash, digest)
            .await
            .map_err(|e| format!("cannot fetch the compiled module {digest}: {e:#}"))?;
        if let Some(artifact) = artifact {
            let written = path.clone();
            blocking(move || write_atomically(&written, &artifact)).await??;
            if let Some(module) = self.deserialize_local(digest, &path).await? {
                self.loads
                    .from_blob_artifact
                    .fetch_add(1, Ordering::Relaxed);
                return Ok(module);
            }
        }
        let wasm = self
            .blobs
            .get_wasm(digest)
            .await
            .map_err(|e| format!("cannot fetch module {digest}: {e:#}"))?
            .ok_or_else(|| format!("module {digest} is not in the object store"))?;
        tracing::warn!(
            module = %digest,
            bytes = wasm.len(),
            "compiling a module on the run path (no compiled artifact for this engine): slow"
        );
        let engine = self.engine.clone();
        let (module, artifact) = blocking({
            let digest = digest.to_string();
            move || compile_to_disk(&engine, &digest, &wasm, &path)
        })
        .await??;
        if let Err(e) = self
            .blobs
            .put_artifact(&self.engine_hash, digest, artifact)
            .await
        {
            tracing::warn!(module = %digest, error = %format!("{e:#}"), "cannot upload a compiled module");
        }
        self.loads.compiled.fetch_add(1, Ordering::Relaxed);
        Ok(module)
    }

    /// Deserializes the local artifact, if there is one. An artifact that does not
    /// deserialize is removed (and reported as absent) so it gets replaced.
    async fn deserialize_local(&self, digest: &str, path: &Path) -> Result<Option<Module>, String> {
        let engine = self.engine.clone();
        let path = path.to_path_buf();
        let digest = digest.to_string();
        blocking(move || {
            if !path.exists() {
                return None;
            }
            // SAFETY: `deserialize_file` runs the machine code in the file, so the file must
            // be an artifact Wasmtime serialized for an engine compatible with this one, and
            // must not change while the module lives. Both hold: the files under
            // `<cache_dir>/<engine-hash>/` are written only by this cache and by
            // `prepare_upload` (serialized by an engine whose `precompile_compatibility_hash`
            // is `<engine-hash>`) or copied from the blob store's
            // `compiled/<engine-hash>/`, which only Weir nodes with that same engine hash
            // write; the blob store is Weir's own storage, trusted like the state database.
            // Files are only ever replaced by an atomic rename or removed, never modified in
            // place, so a mapped file keeps its content. Wasmtime additionally checks the
            // artifact's header and engine compatibility before using it.
            match unsafe { Module::deserialize_file(&engine, &path) } {
                Ok(module) => Some(module),
                Err(e) => {
                    tracing::warn!(
                        module = %digest,
                        path = %path.display(),
                        error = %format!("{e:#}"),
                        "removing a compiled module that does not deserialize"
                    );
                    let _ = std::fs::remove_file(&path);
                    None
                }
            }
        })
        .await
    }
}

/// Runs blocking work off the async threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("module loading failed: {e}"))
}

/// The hex part of a `sha256:<64 lowercase hex>` digest.
pub(crate) fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    let valid = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    valid.then_some(hex)
}

/// The `sha256:<hex>` digest of some bytes.
pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Compiles wasm fetched from the blob store, after checking it is the digest's content, and
/// writes the artifact to `path`.
fn compile_to_disk(
    engine: &Engine,
    digest: &str,
    wasm: &[u8],
    path: &Path,
) -> Result<(Module, Bytes), String> {
    let actual = digest_of(wasm);
    if actual != digest {
        return Err(format!(
            "module {digest} in the object store is corrupt: its content has digest {actual}"
        ));
    }
    let module = Module::from_binary(engine, wasm)
        .map_err(|e| format!("cannot compile module {digest}: {e:#}"))?;
    let artifact = Bytes::from(
        module
            .serialize()
            .map_err(|e| format!("cannot serialize module {digest}: {e:#}"))?,
    );
    write_atomically(path, &artifact)?;
    Ok((module, artifact))
}

/// Writes a file so that readers see either nothing or all of it: a temporary file in the same
/// directory, renamed over the target.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let result = std::fs::write(&temp, bytes).and_then(|()| std::fs::rename(&temp, path));
    result.map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        format!("cannot write {:?}: {e}", path.display())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_hex_accepts_only_sha256_lowercase_hex() {
        let hex = "0123456789abcdef".repeat(4);
        assert_eq!(digest_hex(&format!("sha256:{hex}")), Some(hex.as_str()));
        assert_eq!(digest_hex(&format!("sha256:{}", hex.to_uppercase())), None);
        assert_eq!(digest_hex(&format!("sha1:{hex}")), None);
        assert_eq!(digest_hex("sha256:abc"), None);
    }

    #[test]
    fn digest_of_is_the_sha256_of_the_bytes() {
        assert_eq!(
            digest_of(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn write_atomically_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.cwasm");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let missing = dir.path().join("no/such/dir/a.cwasm");
        assert!(
            write_atomically(&missing, b"x")
                .unwrap_err()
                .contains("cannot write")
        );
    }
}
