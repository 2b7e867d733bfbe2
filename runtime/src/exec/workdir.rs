//! The per-attempt host directories behind `/weir`.
//!
//! Each attempt gets `work_dir/<attempt_id>/` holding `context.json` and an empty
//! `output.jsonl`. When the attempt ends, however it ends, the directory is queued for a
//! background thread that removes the queued directories every [`REMOVAL_PERIOD`]: removing a
//! directory costs more than running a small task (and waking a thread per attempt costs about
//! as much), so it stays off the path to the outcome.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How often queued attempt directories are removed.
const REMOVAL_PERIOD: Duration = Duration::from_millis(10);

const CONTEXT_FILE: &str = "context.json";
const OUTPUT_FILE: &str = "output.jsonl";

/// The directory of per-attempt directories, and the thread that removes them.
pub(crate) struct WorkDir {
    root: PathBuf,
    removals: Arc<RemovalQueue>,
}

/// Directories waiting for removal; whatever is left when the last holder drops the queue is
/// removed then.
struct RemovalQueue {
    paths: Mutex<Vec<PathBuf>>,
}

impl RemovalQueue {
    fn push(&self, path: PathBuf) {
        // The vector stays consistent under a panic (single pushes and takes).
        self.paths
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(path);
    }

    fn take(&self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.paths.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Drop for RemovalQueue {
    fn drop(&mut self) {
        for path in self.take() {
            remove(&path);
        }
    }
}

/// Removes the queued directories periodically, until the queue is gone.
fn remove_queued(queue: Weak<RemovalQueue>) {
    loop {
        std::thread::sleep(REMOVAL_PERIOD);
        let Some(queue) = queue.upgrade() else { return };
        let batch = queue.take();
        drop(queue);
        for path in batch {
            remove(&path);
        }
    }
}

impl WorkDir {
    /// Empties (or creates) `root`, dropping what a previous process left behind, and starts
    /// the removal thread; it ends once the `WorkDir` and every [`AttemptDir`] are dropped.
    pub(crate) fn open(root: &Path) -> anyhow::Result<WorkDir> {
        match std::fs::remove_dir_all(root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot empty the work directory {:?}: {e}", root.display()),
        }
        std::fs::create_dir_all(root).map_err(|e| {
            anyhow::anyhow!("cannot create the work directory {:?}: {e}", root.display())
        })?;
        let removals = Arc::new(RemovalQueue {
            paths: Mutex::new(Vec::new()),
        });
        let queue = Arc::downgrade(&removals);
        std::thread::Builder::new()
            .name("weir-cleanup".into())
            .spawn(move || remove_queued(queue))
            .map_err(|e| anyhow::anyhow!("cannot start the cleanup thread: {e}"))?;
        Ok(WorkDir {
            root: root.to_path_buf(),
            removals,
        })
    }

    /// Creates `<root>/<attempt_id>/` with `context.json` and an empty `output.jsonl`.
    pub(crate) fn create(
        &self,
        attempt_id: &str,
        context: &serde_json::Value,
    ) -> Result<AttemptDir, String> {
        let valid = !attempt_id.is_empty()
            && attempt_id != "."
            && attempt_id != ".."
            && !attempt_id.contains(['/', '\\', '\0']);
        if !valid {
            return Err(format!(
                "attempt id {attempt_id:?} is not a valid directory name"
            ));
        }
        let path = self.root.join(attempt_id);
        std::fs::create_dir(&path).map_err(|e| {
            format!(
                "cannot create the attempt directory {:?}: {e}",
                path.display()
            )
        })?;
        // From here on, dropping `dir` removes what was created.
        let dir = AttemptDir {
            path,
            removals: self.removals.clone(),
        };
        let context = serde_json::to_vec(context)
            .map_err(|e| format!("cannot serialize the task context: {e}"))?;
        std::fs::write(dir.path.join(CONTEXT_FILE), context)
            .map_err(|e| format!("cannot write /weir/{CONTEXT_FILE}: {e}"))?;
        std::fs::write(dir.path.join(OUTPUT_FILE), b"")
            .map_err(|e| format!("cannot create /weir/{OUTPUT_FILE}: {e}"))?;
        Ok(dir)
    }
}

/// The host directory behind an attempt's `/weir`; removed (in the background) when dropped.
pub(crate) struct AttemptDir {
    path: PathBuf,
    removals: Arc<RemovalQueue>,
}

impl AttemptDir {
    /// The host path of the directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The host path of `output.jsonl`.
    pub(crate) fn output_file(&self) -> PathBuf {
        self.path.join(OUTPUT_FILE)
    }
}

impl Drop for AttemptDir {
    fn drop(&mut self) {
        self.removals.push(std::mem::take(&mut self.path));
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_dir_all(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(
            path = %path.display(),
            error = %e,
            "cannot remove an attempt directory"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits until `path` is gone, failing after a generous bound.
    fn wait_gone(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while path.exists() {
            assert!(Instant::now() < deadline, "{path:?} was not removed");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn opening_empties_the_work_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("leftover")).unwrap();
        let _work = WorkDir::open(root.path()).unwrap();
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn an_attempt_directory_holds_the_context_and_goes_away() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path()).unwrap();
        let context = serde_json::json!({"job": {"id": 7}});
        let dir = work.create("42", &context).unwrap();
        let path = root.path().join("42");
        assert_eq!(dir.path(), path);
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.join("context.json")).unwrap()).unwrap();
        assert_eq!(written, context);
        assert_eq!(std::fs::read(dir.output_file()).unwrap(), b"");
        std::fs::write(path.join("extra.txt"), b"guest file").unwrap();
        drop(dir);
        wait_gone(&path);
    }

    #[test]
    fn directories_outliving_the_work_dir_are_still_removed() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path()).unwrap();
        let dir = work.create("1", &serde_json::Value::Null).unwrap();
        drop(work);
        drop(dir);
        wait_gone(&root.path().join("1"));
    }

    #[test]
    fn refuses_attempt_ids_that_are_not_one_directory_name() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path()).unwrap();
        for id in ["", ".", "..", "a/b", "../x"] {
            let err = work.create(id, &serde_json::Value::Null).err().unwrap();
            assert!(err.contains("is not a valid directory name"), "{err}");
        }
    }

    #[test]
    fn a_second_attempt_with_the_same_id_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path()).unwrap();
        let _first = work.create("1", &serde_json::Value::Null).unwrap();
        let err = work.create("1", &serde_json::Value::Null).err().unwrap();
        assert!(err.contains("cannot create the attempt directory"), "{err}");
    }
}
