//! A local directory (`file:///dir/`): OS events through the node's shared [`DirWatcher`], a
//! reconciling scan at start, and scanning as the fallback when OS events are unavailable.
//!
//! The completeness rule: a file counts when it is closed after being written
//! (`IN_CLOSE_WRITE`) or renamed into place (`IN_MOVED_TO`); a file that is only created or
//! still being written does not. A file found by a scan (at start, in a new directory, after
//! lost events, or every interval when scanning instead of watching) counts when no process
//! has it open for writing (the kernel tells through a read lease); where the kernel cannot
//! tell (a file the node neither owns nor may lease, a filesystem without leases) it counts
//! once it has not been modified for [`QUIET_MS`] (one scan interval when scanning).

pub mod scan;
pub mod watcher;

use super::FileArrivalError;
use super::batch::{Batcher, Observed};
use super::filter::PathFilter;
use crate::store::Millis;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use watcher::{DirWatcher, Subscription, WatchError, WatchEvent};

/// How long a file found by a scan must have been left alone to count as complete.
pub const QUIET_MS: Millis = 1_000;
/// When a new directory is scanned again (files may land in it before its watch is added).
const NEW_DIR_RESCANS_MS: [Millis; 2] = [250, QUIET_MS + 100];

/// The watching state of one job's local directory.
pub struct LocalSource {
    url: String,
    root: PathBuf,
    filter: PathFilter,
    subscription: Option<Subscription>,
    scan_interval_ms: Millis,
    next_scan: Option<Millis>,
    candidates: HashMap<String, Millis>,
    dir_rescans: Vec<(Millis, PathBuf)>,
    full_rescan: bool,
}

impl LocalSource {
    /// Opens the directory at `url` (`file:///dir/`) and subscribes to its events; without OS
    /// events (the inotify limits), scans it every `scan_interval_ms` with a warning.
    pub fn open(
        url: &str,
        filter: PathFilter,
        watcher: &Arc<DirWatcher>,
        scan_interval_ms: Millis,
        job_id: i64,
    ) -> Result<LocalSource, FileArrivalError> {
        let root = local_root(url)?;
        let subscription = match watcher.subscribe(&root) {
            Ok(s) => Some(s),
            Err(e @ (WatchError::Limit { .. } | WatchError::Unavailable(_))) => {
                tracing::warn!(
                    job.id = job_id,
                    url,
                    interval_ms = scan_interval_ms,
                    "weir.trigger.file_arrival: {e}; scanning the directory every {} ms instead \
                     of watching it (files are noticed up to that much later)",
                    scan_interval_ms
                );
                None
            }
            Err(e) => {
                return Err(FileArrivalError::Unreadable {
                    url: url.to_string(),
                    reason: e.to_string(),
                });
            }
        };
        Ok(LocalSource {
            url: url.to_string(),
            root,
            filter,
            subscription,
            scan_interval_ms,
            next_scan: None,
            candidates: HashMap::new(),
            dir_rescans: Vec::new(),
            full_rescan: true,
        })
    }

    /// Whether OS events drive this source (false: scanning).
    pub fn watching(&self) -> bool {
        self.subscription.is_some()
    }

    /// The canonical directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The next OS event; never resolves while scanning.
    pub async fn next_event(&mut self) -> WatchEvent {
        match &mut self.subscription {
            Some(s) => match s.events.recv().await {
                Some(e) => e,
                None => WatchEvent::LimitReached,
            },
            None => std::future::pending().await,
        }
    }

    /// Applies one OS event.
    pub fn on_event(&mut self, event: WatchEvent, batcher: &mut Batcher, now: Millis) {
        match event {
            WatchEvent::Complete(path) => {
                if let Some(mut file) = scan::observe(&self.root, &path) {
                    // The event is the arrival.
                    file.arrived_at = file.arrived_at.max(now);
                    self.candidates.remove(&file.path);
                    batcher.offer(file, now);
                }
            }
            WatchEvent::Activity(path) => {
                if let Some(rel) = self.relative(&path)
                    && self.filter.accepts(&rel)
                {
                    batcher.activity(now);
                }
            }
            WatchEvent::Removed(path) => {
                if path == self.root {
                    self.full_rescan = true;
                } else if let Some(rel) = self.relative(&path) {
                    batcher.vanished(&rel);
                    self.candidates.remove(&rel);
                    let prefix = format!("{rel}/");
                    self.candidates.retain(|p, _| !p.starts_with(&prefix));
                    batcher.vanished_under(&prefix);
                }
            }
            WatchEvent::DirAppeared(path) => {
                if self
                    .relative(&path)
                    .is_some_and(|rel| self.filter.descends(&rel))
                {
                    self.dir_rescans.push((now, path.clone()));
                    for delay in NEW_DIR_RESCANS_MS {
                        self.dir_rescans.push((now + delay, path.clone()));
                    }
                }
            }
            WatchEvent::Rescan => self.full_rescan = true,
            WatchEvent::LimitReached => {
                if self.subscription.take().is_some() {
                    tracing::warn!(
                        url = %self.url,
                        "weir.trigger.file_arrival: the inotify watch limit was reached while \
                         watching new directories (raise fs.inotify.max_user_watches); scanning \
                         the directory every {} ms instead",
                        self.scan_interval_ms
                    );
                }
                self.full_rescan = true;
            }
        }
    }

    fn relative(&self, path: &Path) -> Option<String> {
        path.strip_prefix(&self.root)
            .ok()
            .and_then(Path::to_str)
            .map(str::to_string)
    }

    /// When [`LocalSource::tick`] has work next.
    pub fn next_tick(&self) -> Option<Millis> {
        if self.full_rescan {
            return Some(Millis::MIN);
        }
        let rescans = self.dir_rescans.iter().map(|(t, _)| *t);
        let candidates = self.candidates.values().copied();
        rescans.chain(candidates).chain(self.next_scan).min()
    }

    /// Scans what is due; an unreadable root is an error.
    pub async fn tick(
        &mut self,
        batcher: &mut Batcher,
        now: Millis,
    ) -> Result<(), FileArrivalError> {
        let scanning = self.subscription.is_none();
        let quiet = if scanning {
            self.scan_interval_ms.max(QUIET_MS)
        } else {
            QUIET_MS
        };
        if self.full_rescan || (scanning && self.next_scan.is_none_or(|t| t <= now)) {
            self.full_rescan = false;
            let files = self.scan(self.root.clone()).await?;
            let present: std::collections::HashSet<&str> =
                files.iter().map(|f| f.path.as_str()).collect();
            batcher.retain_pending(|p| present.contains(p));
            self.candidates.retain(|p, _| present.contains(p.as_str()));
            for file in files {
                self.consider(file, batcher, now, quiet);
            }
            if scanning {
                self.next_scan = Some(now + self.scan_interval_ms);
            }
        }
        let due: Vec<PathBuf> = self
            .dir_rescans
            .iter()
            .filter(|(t, _)| *t <= now)
            .map(|(_, p)| p.clone())
            .collect();
        self.dir_rescans.retain(|(t, _)| *t > now);
        for dir in due {
            // A directory gone again is no error.
            if let Ok(files) = self.scan(dir).await {
                for file in files {
                    self.consider(file, batcher, now, quiet);
                }
            }
        }
        let due: Vec<String> = self
            .candidates
            .iter()
            .filter(|(_, t)| **t <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for rel in due {
            self.candidates.remove(&rel);
            if let Some(file) = scan::observe(&self.root, &self.root.join(&rel)) {
                self.consider(file, batcher, now, quiet);
            }
        }
        Ok(())
    }

    fn consider(&mut self, file: Observed, batcher: &mut Batcher, now: Millis, quiet: Millis) {
        if batcher.knows(&file.path, &file.fingerprint) {
            self.candidates.remove(&file.path);
            return;
        }
        let complete = match scan::being_written(&self.root.join(&file.path)) {
            Some(writing) => !writing,
            None => now.saturating_sub(file.modification_time) >= quiet,
        };
        if complete {
            self.candidates.remove(&file.path);
            batcher.offer(file, now);
        } else {
            self.candidates.insert(file.path, now + quiet);
        }
    }

    async fn scan(&self, dir: PathBuf) -> Result<Vec<Observed>, FileArrivalError> {
        let (root, filter, url) = (self.root.clone(), self.filter.clone(), self.url.clone());
        tokio::task::spawn_blocking(move || scan::scan(&root, &dir, &filter))
            .await
            .map_err(|e| FileArrivalError::Unreadable {
                url: url.clone(),
                reason: e.to_string(),
            })?
            .map_err(|e| FileArrivalError::Unreadable {
                url,
                reason: e.to_string(),
            })
    }
}

/// The canonical directory of a `file:///dir/` URL, which must exist and be a directory.
pub fn local_root(url: &str) -> Result<PathBuf, FileArrivalError> {
    let unreadable = |reason: String| FileArrivalError::Unreadable {
        url: url.to_string(),
        reason,
    };
    let path = url
        .strip_prefix("file://")
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| unreadable("expected file:///absolute/dir/".into()))?;
    let root = Path::new(path)
        .canonicalize()
        .map_err(|e| unreadable(format!("{path}: {e}")))?;
    if !root.is_dir() {
        return Err(unreadable(format!("{path} is not a directory")));
    }
    std::fs::read_dir(&root).map_err(|e| unreadable(format!("{path}: {e}")))?;
    Ok(root)
}
