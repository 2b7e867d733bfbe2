//! `trigger.file_arrival`: a run when new files appear under a URL.
//!
//! - [`local`]: a local directory (`file:///dir/`), watched with OS events through one shared
//!   watcher per node, with a reconciling scan at start and scanning as the fallback;
//! - [`s3`]: an object store URL (`s3://bucket/prefix/`), listed every interval;
//! - [`filter`]: the default ignore rules and the job's `path_glob`;
//! - [`batch`]: the seen set, the settle window and the spacing of runs;
//! - [`input`]: what a task reads at `/input`.

pub mod batch;
pub mod filter;
pub mod input;
pub mod local;
pub mod s3;
pub mod watch;

/// Why a file-arrival trigger cannot watch its URL right now (shown as the trigger's last
/// error, and retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum FileArrivalError {
    /// A local directory is missing or unreadable.
    #[error("cannot read {url}: {reason}")]
    Unreadable {
        /// The trigger URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Listing an object store URL failed (bucket missing, server down, denied).
    #[error("cannot list {url}: {source}")]
    Listing {
        /// The trigger URL.
        url: String,
        /// The object store's error.
        #[source]
        source: object_store::Error,
    },
    /// The job's `path_glob` does not parse.
    #[error(transparent)]
    Glob(#[from] filter::GlobError),
}
