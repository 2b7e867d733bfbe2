//! `/input`: what a task of a file-arrival run reads.
//!
//! For a local directory the watched directory itself is preopened read-only at `/input`
//! (WASI path resolution never follows a symlink out of a preopen, so a link in the directory
//! pointing elsewhere cannot be read through it). For an object store, the run's new objects
//! are fetched into `<data-dir>/inputs/run-<id>/` (once per run, by the node that runs its
//! tasks, before the first task starts) and that directory is preopened read-only; a batch
//! larger than the node's `file_arrival_input_limit_mb` fails the task with a message saying
//! so, and the directory is removed when the run ends (a repair fetches again).

use super::local::local_root;
use crate::exec::Preopen;
use crate::s3::{self, Retries, S3Settings, S3Url};
use crate::store::RunId;
use futures::StreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path as ObjectPath;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt as _;

/// The guest path of the arrived files.
pub const INPUT_PATH: &str = "/input";

/// Why `/input` could not be prepared (the task fails with this message).
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The watched directory is gone or unreadable.
    #[error("cannot mount the watched directory {url} at /input: {reason}")]
    Local {
        /// The trigger URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The batch is over the node's limit.
    #[error(
        "the {files} new objects under {url} total {total_mib:.1} MiB, over this node's \
         file_arrival_input_limit_mb of {limit_mib} MiB: raise the limit, or have smaller batches \
         (a lower wait_after_last_change_seconds)"
    )]
    TooLarge {
        /// The trigger URL.
        url: String,
        /// Objects in the batch.
        files: usize,
        /// Their total size in MiB.
        total_mib: f64,
        /// The limit in MiB.
        limit_mib: u64,
    },
    /// An object could not be fetched.
    #[error("cannot fetch {url}{path} into /input: {reason}")]
    Fetch {
        /// The trigger URL.
        url: String,
        /// The object's path under it.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What a run's tasks get at `/input`.
#[derive(Debug, Clone, PartialEq)]
pub enum InputPlan {
    /// Preopen this directory (nothing to fetch).
    Ready(Preopen),
    /// Fetch these objects first.
    Fetch(FetchRequest),
}

/// The objects of one run to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    /// The run.
    pub run_id: RunId,
    /// `s3://bucket/prefix/`.
    pub url: String,
    /// (path under the URL, size) of each object.
    pub files: Vec<(String, u64)>,
}

/// Prepares `/input` for the runs of this node.
#[derive(Debug)]
pub struct InputStager {
    root: PathBuf,
    s3: S3Settings,
    limit_bytes: u64,
    locks: Mutex<HashMap<RunId, Arc<tokio::sync::Mutex<()>>>>,
    /// The runtime fetches run on (one with I/O: run drivers live on the task runtime, which
    /// has timers only).
    io: Option<tokio::runtime::Handle>,
}

fn read_only(host: PathBuf) -> Preopen {
    Preopen {
        host,
        guest: INPUT_PATH.to_string(),
        read_only: true,
    }
}

/// A path under the URL that may become a file under the run's directory.
fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
}

impl InputStager {
    /// A stager keeping fetched objects under `root` (`<data-dir>/inputs`), at most
    /// `limit_bytes` per run; fetches run on the tokio runtime it is created on.
    pub fn new(root: PathBuf, s3: S3Settings, limit_bytes: u64) -> InputStager {
        InputStager {
            root,
            s3,
            limit_bytes,
            locks: Mutex::default(),
            io: tokio::runtime::Handle::try_current().ok(),
        }
    }

    /// Fetches in the background on the stager's runtime, then calls `done`.
    pub fn start_fetch(
        self: &Arc<Self>,
        request: FetchRequest,
        done: impl FnOnce(Result<Preopen, InputError>) + Send + 'static,
    ) {
        let this = self.clone();
        let work = async move { done(this.fetch(&request).await) };
        match &self.io {
            Some(handle) => {
                handle.spawn(work);
            }
            None => {
                tokio::spawn(work);
            }
        }
    }

    fn run_dir(&self, run_id: RunId) -> PathBuf {
        self.root.join(format!("run-{run_id}"))
    }

    fn marker(&self, run_id: RunId) -> PathBuf {
        self.root.join(format!("run-{run_id}.complete"))
    }

    /// What `/input` is for a run with this trigger payload; `None` when the run was not
    /// started by a file-arrival trigger. Cheap: no I/O beyond a `stat` for local directories.
    pub fn plan(
        &self,
        run_id: RunId,
        trigger_info: &Value,
    ) -> Result<Option<InputPlan>, InputError> {
        let Some(url) = trigger_info.get("location").and_then(Value::as_str) else {
            return Ok(None);
        };
        if url.starts_with("file://") {
            let root = local_root(url).map_err(|e| InputError::Local {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
            return Ok(Some(InputPlan::Ready(read_only(root))));
        }
        if self.marker(run_id).exists() {
            return Ok(Some(InputPlan::Ready(read_only(self.run_dir(run_id)))));
        }
        let files: Vec<(String, u64)> = trigger_info
            .get("files")
            .and_then(Value::as_array)
            .map(|files| {
                files
                    .iter()
                    .filter_map(|f| {
                        let path = f.get("path")?.as_str()?.to_string();
                        let size = f.get("size").and_then(Value::as_u64).unwrap_or(0);
                        Some((path, size))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(InputPlan::Fetch(FetchRequest {
            run_id,
            url: url.to_string(),
            files,
        })))
    }

    /// Fetches the objects of a run into its directory (once; concurrent callers for the same
    /// run wait for the first) and returns the preopen.
    pub async fn fetch(&self, request: &FetchRequest) -> Result<Preopen, InputError> {
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(request.run_id).or_default().clone()
        };
        let _guard = lock.lock().await;
        let dir = self.run_dir(request.run_id);
        if self.marker(request.run_id).exists() {
            return Ok(read_only(dir));
        }
        let fetch_err = |path: &str, reason: String| InputError::Fetch {
            url: request.url.clone(),
            path: path.to_string(),
            reason,
        };
        let total: u64 = request.files.iter().map(|(_, s)| *s).sum();
        if total > self.limit_bytes {
            return Err(InputError::TooLarge {
                url: request.url.clone(),
                files: request.files.len(),
                total_mib: total as f64 / (1024.0 * 1024.0),
                limit_mib: self.limit_bytes / (1024 * 1024),
            });
        }
        let location = S3Url::parse(&request.url).map_err(|e| fetch_err("", e.to_string()))?;
        let store = s3::store(&location.bucket, &self.s3, Retries::Patient)
            .map_err(|e| fetch_err("", e.to_string()))?;
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| fetch_err("", format!("cannot create {}: {e}", dir.display())))?;
        let mut fetched: u64 = 0;
        for (path, _) in &request.files {
            if !safe_relative(path) {
                return Err(fetch_err(
                    path,
                    "the key is not a plain relative path".into(),
                ));
            }
            let key = if location.prefix.is_empty() {
                ObjectPath::from(path.as_str())
            } else {
                ObjectPath::from(format!("{}/{path}", location.prefix))
            };
            let target = dir.join(path);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| fetch_err(path, e.to_string()))?;
            }
            let got = store
                .get(&key)
                .await
                .map_err(|e| fetch_err(path, e.to_string()))?;
            let mut stream = got.into_stream();
            let mut out = tokio::fs::File::create(&target)
                .await
                .map_err(|e| fetch_err(path, e.to_string()))?;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| fetch_err(path, e.to_string()))?;
                fetched += chunk.len() as u64;
                if fetched > self.limit_bytes {
                    return Err(InputError::TooLarge {
                        url: request.url.clone(),
                        files: request.files.len(),
                        total_mib: fetched as f64 / (1024.0 * 1024.0),
                        limit_mib: self.limit_bytes / (1024 * 1024),
                    });
                }
                out.write_all(&chunk)
                    .await
                    .map_err(|e| fetch_err(path, e.to_string()))?;
            }
            out.flush()
                .await
                .map_err(|e| fetch_err(path, e.to_string()))?;
        }
        tokio::fs::write(self.marker(request.run_id), b"")
            .await
            .map_err(|e| fetch_err("", e.to_string()))?;
        Ok(read_only(dir))
    }

    /// Removes a finished run's fetched objects.
    pub fn release(&self, run_id: RunId) {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&run_id);
        let (dir, marker) = (self.run_dir(run_id), self.marker(run_id));
        if marker.exists() || dir.exists() {
            let _ = std::fs::remove_file(&marker);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Where fetched objects live.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn plans_local_directories_directly_and_nothing_for_other_runs() {
        let dir = tempfile::tempdir().unwrap();
        let stager = InputStager::new(dir.path().join("inputs"), S3Settings::default(), 1 << 20);
        assert_eq!(stager.plan(1, &Value::Null).unwrap(), None);
        assert_eq!(stager.plan(1, &json!({"time": 5})).unwrap(), None);
        let url = format!("file://{}/", dir.path().display());
        let plan = stager
            .plan(1, &json!({"location": url, "files": []}))
            .unwrap();
        assert_eq!(
            plan,
            Some(InputPlan::Ready(Preopen {
                host: dir.path().canonicalize().unwrap(),
                guest: "/input".into(),
                read_only: true,
            }))
        );
        let err = stager
            .plan(1, &json!({"location": "file:///nonexistent-weir-input/"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent-weir-input"), "{err}");
        let plan = stager
            .plan(
                7,
                &json!({"location": "s3://b/p/", "files": [{"path": "a.csv", "size": 3}]}),
            )
            .unwrap();
        assert_eq!(
            plan,
            Some(InputPlan::Fetch(FetchRequest {
                run_id: 7,
                url: "s3://b/p/".into(),
                files: vec![("a.csv".into(), 3)],
            }))
        );
    }

    #[tokio::test]
    async fn refuses_batches_over_the_limit_before_fetching() {
        let dir = tempfile::tempdir().unwrap();
        let stager = InputStager::new(dir.path().join("inputs"), S3Settings::default(), 1 << 20);
        let err = stager
            .fetch(&FetchRequest {
                run_id: 3,
                url: "s3://b/p/".into(),
                files: vec![("a".into(), 1 << 20), ("b".into(), 1)],
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("the 2 new objects under s3://b/p/ total 1.0 MiB"),
            "{err}"
        );
        assert!(
            err.contains("file_arrival_input_limit_mb of 1 MiB"),
            "{err}"
        );
    }

    #[test]
    fn only_plain_relative_paths_become_files() {
        assert!(safe_relative("a/b.csv"));
        for bad in ["", "/etc/passwd", "a/../../x", "a//b", "./a"] {
            assert!(!safe_relative(bad), "{bad}");
        }
    }
}
