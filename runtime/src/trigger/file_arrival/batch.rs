//! Turning complete files into batches: the seen set, the settle window
//! (`wait_after_last_change_seconds`) and the spacing of runs
//! (`min_time_between_triggers_seconds`). Pure state: the caller passes the time and sleeps on
//! its [`Clock`](crate::clock::Clock) until [`Batcher::due_at`].

use super::filter::PathFilter;
use crate::store::Millis;
use crate::trigger::timing::Timing;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};

/// The most files one run lists; the rest go to the next run.
pub const MAX_FILES_PER_RUN: usize = 10_000;

/// A complete file at a watched location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Path relative to the trigger's URL, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Last modification, ms since the epoch.
    pub modification_time: Millis,
    /// The object's ETag (object stores only).
    pub etag: Option<String>,
    /// When it arrived, as far as can be told: the OS event's time, else the later of its
    /// modification and inode change (a rename) times, or an object's upload time.
    pub arrived_at: Millis,
    /// What makes this version of the file different from an earlier one at the same path
    /// (size, modification time in ns and inode for a local file; the ETag for an object).
    pub fingerprint: String,
}

/// The batching state of one job.
#[derive(Debug)]
pub struct Batcher {
    filter: PathFilter,
    timing: Timing,
    seen: HashMap<String, String>,
    pending: BTreeMap<String, Observed>,
    last_change: Millis,
    last_fire: Option<Millis>,
    baseline: Millis,
}

impl Batcher {
    /// A batcher that already covered `seen` (path -> fingerprint) and last fired at
    /// `last_fire`.
    pub fn new(
        filter: PathFilter,
        wait_after_last_change_seconds: u64,
        min_time_between_triggers_seconds: u64,
        seen: HashMap<String, String>,
        last_fire: Option<Millis>,
    ) -> Batcher {
        Batcher {
            filter,
            timing: Timing::new(
                wait_after_last_change_seconds,
                min_time_between_triggers_seconds,
            ),
            seen,
            pending: BTreeMap::new(),
            last_change: 0,
            last_fire,
            baseline: Millis::MIN,
        }
    }

    /// Files that arrived before `at` were there when the trigger was armed: they are not
    /// arrivals (unless rewritten later).
    pub fn set_baseline(&mut self, at: Millis) {
        self.baseline = at;
    }

    /// Offers a complete file; true when it is new (not ignored, not there before the
    /// trigger was armed, not covered by an earlier run in this version, not already waiting).
    pub fn offer(&mut self, file: Observed, now: Millis) -> bool {
        if !self.filter.accepts(&file.path)
            || file.arrived_at < self.baseline
            || self.seen.get(&file.path) == Some(&file.fingerprint)
            || self
                .pending
                .get(&file.path)
                .is_some_and(|p| p.fingerprint == file.fingerprint)
        {
            return false;
        }
        self.pending.insert(file.path.clone(), file);
        self.last_change = now;
        true
    }

    /// Something is still changing under the URL (a write in progress): a waiting batch
    /// settles from now on.
    pub fn activity(&mut self, now: Millis) {
        if !self.pending.is_empty() {
            self.last_change = now;
        }
    }

    /// A waiting file disappeared before its run was created: it is not reported.
    pub fn vanished(&mut self, path: &str) {
        self.pending.remove(path);
    }

    /// Every waiting file under a directory that disappeared (`prefix` ends with `/`).
    pub fn vanished_under(&mut self, prefix: &str) {
        self.pending.retain(|p, _| !p.starts_with(prefix));
    }

    /// Keeps only the waiting files for which `keep` holds (a scan found the others gone).
    pub fn retain_pending(&mut self, mut keep: impl FnMut(&str) -> bool) {
        self.pending.retain(|p, _| keep(p));
    }

    /// Whether `path` is a known version already (covered or waiting).
    pub fn knows(&self, path: &str, fingerprint: &str) -> bool {
        self.seen.get(path).map(String::as_str) == Some(fingerprint)
            || self
                .pending
                .get(path)
                .is_some_and(|p| p.fingerprint == fingerprint)
    }

    /// When the waiting batch may fire: after the settle window and the spacing; `None` when
    /// nothing waits.
    pub fn due_at(&self) -> Option<Millis> {
        if self.pending.is_empty() {
            return None;
        }
        Some(self.timing.due_at(self.last_change, self.last_fire))
    }

    /// The batch to fire (at most [`MAX_FILES_PER_RUN`] files, in path order).
    pub fn batch(&self) -> Vec<Observed> {
        self.pending
            .values()
            .take(MAX_FILES_PER_RUN)
            .cloned()
            .collect()
    }

    /// Records that a run now covers `files` (fired at `now`).
    pub fn fired(&mut self, files: &[Observed], now: Millis) {
        for f in files {
            if self
                .pending
                .get(&f.path)
                .is_some_and(|p| p.fingerprint == f.fingerprint)
            {
                self.pending.remove(&f.path);
            }
            self.seen.insert(f.path.clone(), f.fingerprint.clone());
        }
        self.last_fire = Some(now);
    }

    /// Files waiting for their run.
    pub fn waiting(&self) -> usize {
        self.pending.len()
    }
}

/// The idempotency key of a run covering `files` for job `job_id`: derived from the file set
/// (paths and fingerprints), so the same batch seen again after a crash maps to the same run.
/// Do not change the derivation: keys of runs already created must keep matching.
pub fn idempotency_key(job_id: i64, url: &str, files: &[Observed]) -> String {
    let mut h = Sha256::new();
    h.update(url.as_bytes());
    h.update([0]);
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.fingerprint.as_bytes());
        h.update([b'\n']);
    }
    format!(
        "weir:file_arrival:{job_id}:{}",
        &hex::encode(h.finalize())[..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, fp: &str) -> Observed {
        Observed {
            path: path.into(),
            size: 1,
            modification_time: 0,
            etag: None,
            arrived_at: 0,
            fingerprint: fp.into(),
        }
    }

    fn batcher(wait: u64, spacing: u64) -> Batcher {
        Batcher::new(
            PathFilter::new(None).unwrap(),
            wait,
            spacing,
            HashMap::new(),
            None,
        )
    }

    #[test]
    fn without_settle_or_spacing_a_file_is_due_at_once() {
        let mut b = batcher(0, 0);
        assert_eq!(b.due_at(), None);
        assert!(b.offer(file("a.csv", "1"), 1_000));
        assert_eq!(b.due_at(), Some(1_000));
        let batch = b.batch();
        b.fired(&batch, 1_000);
        assert_eq!(b.due_at(), None);
        assert!(!b.offer(file("a.csv", "1"), 1_001), "covered already");
        assert!(
            b.offer(file("a.csv", "2"), 1_002),
            "a rewrite counts as new"
        );
        assert!(!b.offer(file("_SUCCESS", "1"), 1_003), "ignored by default");
    }

    #[test]
    fn the_settle_window_restarts_with_every_change() {
        let mut b = batcher(1, 0);
        b.offer(file("a", "1"), 1_000);
        assert_eq!(b.due_at(), Some(2_000));
        b.offer(file("b", "1"), 1_500);
        assert_eq!(b.due_at(), Some(2_500));
        b.activity(1_900);
        assert_eq!(b.due_at(), Some(2_900));
        b.offer(file("b", "1"), 2_000);
        assert_eq!(
            b.due_at(),
            Some(2_900),
            "the same version again is no change"
        );
        assert_eq!(b.batch().len(), 2);
    }

    #[test]
    fn runs_are_spaced_from_the_last_fire() {
        let mut b = Batcher::new(
            PathFilter::new(None).unwrap(),
            0,
            60,
            HashMap::new(),
            Some(10_000),
        );
        b.offer(file("a", "1"), 20_000);
        assert_eq!(b.due_at(), Some(70_000));
        let batch = b.batch();
        b.fired(&batch, 70_000);
        b.offer(file("b", "1"), 71_000);
        assert_eq!(b.due_at(), Some(130_000));
    }

    #[test]
    fn files_there_before_the_trigger_was_armed_are_no_arrivals() {
        let mut b = batcher(0, 0);
        b.set_baseline(100);
        assert!(!b.offer(file("old", "1"), 200));
        let mut new = file("new", "1");
        new.arrived_at = 150;
        assert!(b.offer(new, 200));
    }

    #[test]
    fn a_file_that_vanishes_before_its_run_is_not_reported() {
        let mut b = batcher(5, 0);
        b.offer(file("a", "1"), 0);
        b.vanished("a");
        assert_eq!(b.due_at(), None);
    }

    #[test]
    fn a_rewrite_while_the_run_was_being_created_stays_waiting() {
        let mut b = batcher(0, 0);
        b.offer(file("a", "1"), 0);
        let batch = b.batch();
        b.offer(file("a", "2"), 1);
        b.fired(&batch, 2);
        assert_eq!(b.batch(), vec![file("a", "2")]);
    }

    #[test]
    fn huge_batches_are_split() {
        let mut b = batcher(0, 0);
        for i in 0..MAX_FILES_PER_RUN + 5 {
            b.offer(file(&format!("f{i:06}"), "1"), 0);
        }
        let first = b.batch();
        assert_eq!(first.len(), MAX_FILES_PER_RUN);
        b.fired(&first, 0);
        assert_eq!(b.batch().len(), 5);
    }

    #[test]
    fn the_key_depends_on_the_file_set_only() {
        let a = [file("a", "1"), file("b", "1")];
        let k = idempotency_key(3, "file:///x/", &a);
        assert!(k.starts_with("weir:file_arrival:3:"));
        assert_eq!(k, idempotency_key(3, "file:///x/", &a));
        assert_ne!(
            k,
            idempotency_key(3, "file:///x/", &[file("a", "2"), file("b", "1")])
        );
        assert_ne!(k, idempotency_key(4, "file:///x/", &a));
    }
}
