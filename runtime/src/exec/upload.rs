//! Validation and compilation of an uploaded module: it must be a WASI preview 1 command that
//! imports only what the WASIp1 linker provides.

use super::cache::{ModuleCache, digest_hex, write_atomically};
use super::sandbox::TaskState;
use bytes::Bytes;
use std::collections::HashSet;
use wasmtime::{Engine, ExternType, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;

/// The only import module a task may use.
const WASI_P1: &str = "wasi_snapshot_preview1";

/// Errors of module validation at upload.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    /// Bigger than the configured cap.
    #[error("module is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// Upload size.
        size: u64,
        /// The cap.
        limit: u64,
    },
    /// Not a valid WebAssembly module.
    #[error("not a valid WebAssembly module: {0}")]
    NotWasm(String),
    /// Valid wasm but not a WASI preview 1 command; the message says why.
    #[error("{0}")]
    NotCommand(String),
    /// The module is valid but its compiled artifact could not be cached.
    #[error("cannot cache the compiled module: {0}")]
    Cache(String),
}

/// Checks uploads against the imports the executor's linker provides.
pub(crate) struct UploadCheck {
    provided: HashSet<(String, String)>,
}

impl UploadCheck {
    /// Lists what `linker` defines.
    pub(crate) fn new(engine: &Engine, linker: &Linker<TaskState>) -> UploadCheck {
        // Listing a linker's definitions needs a store; this one is never instantiated into.
        let mut store = Store::new(engine, TaskState::new(WasiCtxBuilder::new().build_p1(), 0));
        let provided = linker
            .iter(&mut store)
            .map(|(module, name, _)| (module.to_string(), name.to_string()))
            .collect();
        UploadCheck { provided }
    }

    /// Validates `wasm` (whose sha256 digest is `digest`), compiles it and writes its artifact
    /// to the cache's directory; returns the artifact.
    pub(crate) fn prepare(
        &self,
        cache: &ModuleCache,
        digest: &str,
        wasm: &[u8],
    ) -> Result<Bytes, ModuleError> {
        let hex = digest_hex(digest).ok_or_else(|| {
            ModuleError::Cache(format!(
                "digest {digest:?} is not sha256: and 64 lowercase hex digits"
            ))
        })?;
        if is_component(wasm) {
            return Err(ModuleError::NotCommand(
                "module is a WebAssembly component; Weir runs WASI preview 1 command modules"
                    .into(),
            ));
        }
        let module = Module::from_binary(cache.engine(), wasm)
            .map_err(|e| ModuleError::NotWasm(format!("{e:#}")))?;
        self.check_imports(&module)?;
        cache.linker().instantiate_pre(&module).map_err(|e| {
            ModuleError::NotCommand(format!("module imports do not match WASI preview 1: {e:#}"))
        })?;
        check_start(&module)?;
        let artifact = Bytes::from(
            module
                .serialize()
                .map_err(|e| ModuleError::Cache(format!("{e:#}")))?,
        );
        write_atomically(&cache.artifact_path(hex), &artifact).map_err(ModuleError::Cache)?;
        Ok(artifact)
    }

    fn check_imports(&self, module: &Module) -> Result<(), ModuleError> {
        for import in module.imports() {
            let key = (import.module().to_string(), import.name().to_string());
            if self.provided.contains(&key) {
                continue;
            }
            let why = if import.module() == WASI_P1 {
                "it is not a WASI preview 1 function"
            } else {
                "tasks may import only wasi_snapshot_preview1"
            };
            return Err(ModuleError::NotCommand(format!(
                "module imports `{}::{}`, which Weir does not provide: {why}",
                import.module(),
                import.name()
            )));
        }
        Ok(())
    }
}

/// Whether the binary header says component: after the `\0asm` magic, a 2-byte version and a
/// 2-byte layer, which is 1 for components (0 for core modules).
fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm.starts_with(b"\0asm") && wasm[6..8] == [1, 0]
}

fn check_start(module: &Module) -> Result<(), ModuleError> {
    match module.get_export("_start") {
        Some(ExternType::Func(ty)) if ty.params().len() == 0 && ty.results().len() == 0 => Ok(()),
        Some(ExternType::Func(_)) => Err(ModuleError::NotCommand(
            "module exports `_start` with the wrong type: expected a function [] -> []".into(),
        )),
        Some(_) => Err(ModuleError::NotCommand(
            "module exports `_start`, but not as a function: it is not a WASI command".into(),
        )),
        None => Err(ModuleError::NotCommand(
            "module exports no `_start` function: it is not a WASI command".into(),
        )),
    }
}
