//! The per-attempt host directories behind `/weir`.
//!
//! Creating and removing a directory and two files per attempt costs more than running a small
//! task (on ext4, inode allocation after many deletions dominates a whole chain of tasks), so
//! directories are pooled: an attempt takes a prepared slot directory, the context is written
//! over `context.json`, and when the attempt ends the slot goes to a background thread that
//! resets it (everything but the two files removed, `output.jsonl` truncated) and puts it back.
//! A slot whose attempt did not run to its end (canceled, timed out, failed to start) is removed
//! instead: nothing of the guest can still be writing to a slot that is reused.
//!
//! The host only ever opens the two files with `O_NOFOLLOW` and checks they are regular files, so
//! a guest that replaces them with symlinks cannot make the host read or write outside the slot.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

/// How long the recycling thread sleeps without work before checking the pool still exists.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Once woken, the recycling thread gathers returned slots this long, then resets them in one
/// batch (a wake-up per slot would cost the attempts more than the reset itself).
const BATCH_WINDOW: Duration = Duration::from_millis(10);
/// Idle slots kept at least (more with more instance slots).
const MIN_KEEP: usize = 1024;

const CONTEXT_FILE: &str = "context.json";
const OUTPUT_FILE: &str = "output.jsonl";

/// The directory of slot directories, and the thread that recycles them.
pub(crate) struct WorkDir {
    root: PathBuf,
    slots: Arc<Slots>,
}

/// Slots ready for an attempt, and slots returned by finished attempts.
struct Slots {
    ready: Mutex<Vec<PathBuf>>,
    returned: Mutex<Vec<(PathBuf, bool)>>,
    /// Wakes the recycling thread when a slot is returned while it sleeps.
    wake: std::sync::Condvar,
    /// The recycling thread waits for work (so the next return wakes it).
    sleeping: std::sync::atomic::AtomicBool,
    next: AtomicU64,
    /// Most ready slots kept; more are removed.
    keep: usize,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // The vectors stay consistent under a panic (single pushes and takes).
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Slots {
    fn drop(&mut self) {
        for path in locked(&self.ready).drain(..) {
            remove(&path);
        }
        for (path, _) in locked(&self.returned).drain(..) {
            remove(&path);
        }
    }
}

/// Opens one of a slot's two files for writing, refusing symlinks and anything not a regular file.
fn open_file(path: &Path) -> std::io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(f)
}

/// Makes a slot as new: only `context.json` and an empty `output.jsonl` remain.
fn reset(slot: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(slot)? {
        let entry = entry?;
        let name = entry.file_name();
        let kind = entry.file_type()?;
        let ours = (name == CONTEXT_FILE || name == OUTPUT_FILE) && kind.is_file();
        if !ours {
            if kind.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    open_file(&slot.join(OUTPUT_FILE))?.set_len(0)
}

/// Resets or removes returned slots as they come back, until the slots are gone.
fn recycle(slots: Weak<Slots>) {
    loop {
        let Some(slots) = slots.upgrade() else { return };
        {
            let guard = locked(&slots.returned);
            if guard.is_empty() {
                slots.sleeping.store(true, Ordering::SeqCst);
                let _ = slots
                    .wake
                    .wait_timeout_while(guard, IDLE_CHECK, |r| r.is_empty());
                slots.sleeping.store(false, Ordering::SeqCst);
                continue;
            }
        }
        std::thread::sleep(BATCH_WINDOW);
        let returned = std::mem::take(&mut *locked(&slots.returned));
        for (path, reusable) in returned {
            let room = locked(&slots.ready).len() < slots.keep;
            if reusable && room && reset(&path).is_ok() {
                locked(&slots.ready).push(path);
            } else {
                remove(&path);
            }
        }
    }
}

impl WorkDir {
    /// Empties (or creates) `root`, dropping what a previous process left behind, and starts
    /// the recycling thread; at least [`MIN_KEEP`] (or `keep`) idle slots are kept.
    pub(crate) fn open(root: &Path, keep: usize) -> anyhow::Result<WorkDir> {
        match std::fs::remove_dir_all(root) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => anyhow::bail!("cannot empty the work directory {:?}: {e}", root.display()),
        }
        std::fs::create_dir_all(root).map_err(|e| {
            anyhow::anyhow!("cannot create the work directory {:?}: {e}", root.display())
        })?;
        let slots = Arc::new(Slots {
            ready: Mutex::new(Vec::new()),
            returned: Mutex::new(Vec::new()),
            wake: std::sync::Condvar::new(),
            sleeping: std::sync::atomic::AtomicBool::new(false),
            next: AtomicU64::new(0),
            keep: keep.max(MIN_KEEP),
        });
        let weak = Arc::downgrade(&slots);
        std::thread::Builder::new()
            .name("weir-workdir".into())
            .spawn(move || recycle(weak))
            .map_err(|e| anyhow::anyhow!("cannot start the work directory thread: {e}"))?;
        Ok(WorkDir {
            root: root.to_path_buf(),
            slots,
        })
    }

    fn new_slot(&self) -> Result<PathBuf, String> {
        let n = self.slots.next.fetch_add(1, Ordering::Relaxed);
        let path = self.root.join(format!("slot-{n}"));
        std::fs::create_dir(&path).map_err(|e| {
            format!(
                "cannot create the attempt directory {:?}: {e}",
                path.display()
            )
        })?;
        Ok(path)
    }

    /// Takes a slot for an attempt, with `context` in `context.json` and an empty
    /// `output.jsonl`.
    pub(crate) fn create(&self, context: &serde_json::Value) -> Result<AttemptDir, String> {
        let pooled = locked(&self.slots.ready).pop();
        let path = match pooled {
            Some(p) => p,
            None => self.new_slot()?,
        };
        // From here on, dropping `dir` returns (or removes) the slot.
        let dir = AttemptDir {
            path,
            slots: self.slots.clone(),
            reusable: false,
        };
        let context = serde_json::to_vec(context)
            .map_err(|e| format!("cannot serialize the task context: {e}"))?;
        let mut f = open_file(&dir.path.join(CONTEXT_FILE))
            .map_err(|e| format!("cannot write /weir/{CONTEXT_FILE}: {e}"))?;
        f.write_all(&context)
            .and_then(|()| f.set_len(context.len() as u64))
            .map_err(|e| format!("cannot write /weir/{CONTEXT_FILE}: {e}"))?;
        open_file(&dir.path.join(OUTPUT_FILE))
            .map_err(|e| format!("cannot create /weir/{OUTPUT_FILE}: {e}"))?;
        Ok(dir)
    }
}

/// The slot behind an attempt's `/weir`; returned to the pool (or removed) when dropped.
pub(crate) struct AttemptDir {
    path: PathBuf,
    slots: Arc<Slots>,
    reusable: bool,
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

    /// The attempt ran to its end (its instance is gone): the slot may be reused.
    pub(crate) fn finished(&mut self) {
        self.reusable = true;
    }
}

impl Drop for AttemptDir {
    fn drop(&mut self) {
        locked(&self.slots.returned).push((std::mem::take(&mut self.path), self.reusable));
        if self.slots.sleeping.swap(false, Ordering::SeqCst) {
            self.slots.wake.notify_one();
        }
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

/// Opens a slot's task values file for reading, refusing a symlink or a non-regular file (a
/// guest could otherwise point the host at a file outside the sandbox).
pub(crate) fn open_output(path: &Path) -> std::io::Result<Option<File>> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(f) if f.metadata()?.is_file() => Ok(Some(f)),
        Ok(_) => Err(std::io::Error::other("not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            Err(std::io::Error::other("it is a symbolic link"))
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// Waits until `f` holds, failing after a generous bound.
    fn wait(what: &str, f: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !f() {
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    fn entries(path: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(path)
            .map(|d| {
                d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn opening_empties_the_work_directory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir(root.path().join("leftover")).unwrap();
        let _work = WorkDir::open(root.path(), 4).unwrap();
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_finished_slot_is_reset_and_reused() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path(), 4).unwrap();
        let mut dir = work
            .create(&serde_json::json!({"job": {"id": 7, "name": "a long name"}}))
            .unwrap();
        let slot = dir.path().to_path_buf();
        assert_eq!(entries(&slot), ["context.json", "output.jsonl"]);
        std::fs::write(dir.output_file(), b"{\"key\":\"a\",\"value\":1}\n").unwrap();
        std::fs::write(slot.join("extra.txt"), b"guest file").unwrap();
        std::fs::create_dir_all(slot.join("sub/dir")).unwrap();
        dir.finished();
        drop(dir);
        wait("the slot is reset", || {
            entries(&slot) == ["context.json", "output.jsonl"]
        });
        wait("the output is truncated", || {
            std::fs::metadata(slot.join(OUTPUT_FILE)).unwrap().len() == 0
        });
        wait("the slot is ready again", || {
            !locked(&work.slots.ready).is_empty()
        });
        let again = work.create(&serde_json::json!({"job": {"id": 8}})).unwrap();
        assert_eq!(again.path(), slot, "the slot is reused");
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(slot.join(CONTEXT_FILE)).unwrap()).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"job": {"id": 8}}),
            "a shorter context replaces the longer one"
        );
    }

    #[test]
    fn a_slot_whose_attempt_did_not_finish_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path(), 4).unwrap();
        let dir = work.create(&serde_json::Value::Null).unwrap();
        let slot = dir.path().to_path_buf();
        drop(dir);
        wait("the slot is removed", || !slot.exists());
    }

    #[test]
    fn slots_outliving_the_work_dir_are_still_removed() {
        let root = tempfile::tempdir().unwrap();
        let work = WorkDir::open(root.path(), 4).unwrap();
        let dir = work.create(&serde_json::Value::Null).unwrap();
        let slot = dir.path().to_path_buf();
        drop(work);
        drop(dir);
        wait("the slot is removed", || !slot.exists());
    }

    #[test]
    fn symlinks_planted_by_a_guest_are_never_followed() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"{\"key\":\"leak\",\"value\":1}\n").unwrap();
        let work = WorkDir::open(root.path(), 4).unwrap();
        let mut dir = work.create(&serde_json::Value::Null).unwrap();
        let slot = dir.path().to_path_buf();
        std::fs::remove_file(dir.output_file()).unwrap();
        std::os::unix::fs::symlink(&secret, dir.output_file()).unwrap();
        let err = open_output(&dir.output_file()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(slot.join(CONTEXT_FILE)).unwrap();
        std::os::unix::fs::symlink(&secret, slot.join(CONTEXT_FILE)).unwrap();
        dir.finished();
        drop(dir);
        wait("the slot is reset", || entries(&slot) == ["output.jsonl"]);
        assert_eq!(
            std::fs::read(&secret).unwrap(),
            b"{\"key\":\"leak\",\"value\":1}\n",
            "the target is untouched"
        );
        let again = work.create(&serde_json::json!({"x": 1})).unwrap();
        assert_eq!(entries(again.path()), ["context.json", "output.jsonl"]);
        assert_eq!(
            std::fs::read(&secret).unwrap(),
            b"{\"key\":\"leak\",\"value\":1}\n"
        );
    }
}
