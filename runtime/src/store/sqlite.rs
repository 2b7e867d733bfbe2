//! Interface placeholder: the SQLite store.
use super::*;

/// The embedded SQLite store.
pub struct SqliteStore;

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path`.
    pub async fn open(_path: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
        unimplemented!()
    }
}
