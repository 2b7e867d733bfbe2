//! Interface placeholder: replaced by the executor implementation.
use super::*;
use crate::modules::BlobStore;
use std::sync::Arc;

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
    /// Valid wasm but not a WASI preview 1 command.
    #[error("not a WASI preview 1 command: {0}")]
    NotCommand(String),
}

/// The executor.
pub struct Executor {
    _blobs: Arc<BlobStore>,
}

/// Stops a running attempt.
#[derive(Clone)]
pub struct CancelHandle;

impl CancelHandle {
    /// Stops the attempt at once; its outcome becomes `Canceled`.
    pub fn cancel(&self) {
        unimplemented!()
    }
}

/// A started attempt.
pub struct Attempt {
    /// Stops it.
    pub cancel: CancelHandle,
    /// Resolves when it ended.
    pub outcome: tokio::task::JoinHandle<Outcome>,
}

impl Executor {
    /// Builds the engine and the task runtime.
    pub fn new(_config: ExecutorConfig, _blobs: Arc<BlobStore>) -> anyhow::Result<Arc<Executor>> {
        unimplemented!()
    }
    /// Starts an attempt; returns at once.
    pub fn start(&self, _inv: Invocation) -> Attempt {
        unimplemented!()
    }
    /// Validates and compiles an uploaded module, caching its artifact (blocking).
    pub fn prepare_upload(&self, _digest: &str, _wasm: &[u8]) -> Result<(), ModuleError> {
        unimplemented!()
    }
    /// Instances alive right now.
    pub fn instances_alive(&self) -> usize {
        unimplemented!()
    }
}
