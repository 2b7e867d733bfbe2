//! The module registry: wasm blobs content-addressed (sha256) in an object store, named
//! versions in the state store, and compiled artifacts cached per engine.

mod blobs;
mod registry;

pub use blobs::BlobStore;
pub use registry::{PushError, PushResult, Registry, ResolveError};
