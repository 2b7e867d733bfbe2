//! One inotify watcher for the whole node (through `notify`), shared by every job watching a
//! local directory: an inotify instance per job would hit `fs.inotify.max_user_instances`
//! (128 by default) long before 1,000 jobs. Events are routed to the jobs whose root is an
//! ancestor of the event's path.
//!
//! Each directory under a watched root costs one inotify watch (`fs.inotify.max_user_watches`).
//! When the limit is reached, [`DirWatcher::subscribe`] answers [`WatchError::Limit`] (and a
//! limit hit later, while watching new subdirectories, is reported to every subscriber as
//! [`WatchEvent::LimitReached`]); the job then falls back to scanning its directory.

use notify::event::{AccessKind, AccessMode, CreateKind, EventKind, ModifyKind, RenameMode};
use notify::{Config, RecommendedWatcher, RecursiveMode, Watcher as _};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// What happened under a watched root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// A file was closed after being written, or renamed into place: it is complete.
    Complete(PathBuf),
    /// A directory appeared (created or moved in): its files must be scanned.
    DirAppeared(PathBuf),
    /// A file is being written (not complete yet).
    Activity(PathBuf),
    /// A file or directory was removed or moved away.
    Removed(PathBuf),
    /// Events were lost (the kernel queue overflowed): everything must be rescanned.
    Rescan,
    /// The inotify watch limit was reached while watching new directories: events under some
    /// directories are missing from now on.
    LimitReached,
}

/// Why a directory cannot be watched with OS events.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchError {
    /// `fs.inotify.max_user_watches` is exhausted.
    #[error(
        "the inotify watch limit is reached (fs.inotify.max_user_watches = {limit}); raise it with \
         `sysctl fs.inotify.max_user_watches=1048576` (and in /etc/sysctl.d/ to keep it)"
    )]
    Limit {
        /// The current limit, when readable.
        limit: String,
    },
    /// Watching is not available at all (no inotify instance could be created, ...).
    #[error("OS file events are unavailable: {0}")]
    Unavailable(String),
    /// The directory cannot be watched (missing, unreadable).
    #[error("cannot watch {path}: {reason}")]
    Path {
        /// The directory.
        path: PathBuf,
        /// The OS's answer.
        reason: String,
    },
}

type Sender = mpsc::UnboundedSender<WatchEvent>;

#[derive(Default)]
struct Routes {
    /// Subscribers by root.
    subs: HashMap<PathBuf, Vec<(u64, Sender)>>,
}

impl Routes {
    fn send(&self, path: &Path, event: impl Fn() -> WatchEvent) {
        for ancestor in path.ancestors() {
            if let Some(subs) = self.subs.get(ancestor) {
                for (_, tx) in subs {
                    let _ = tx.send(event());
                }
            }
        }
    }

    fn broadcast(&self, event: WatchEvent) {
        for (_, tx) in self.subs.values().flatten() {
            let _ = tx.send(event.clone());
        }
    }
}

struct Inner {
    watcher: Option<RecommendedWatcher>,
    /// Roots given to inotify (a minimal cover of the subscribed roots), with how many
    /// subscriptions use each subscribed root.
    watched: BTreeMap<PathBuf, ()>,
    next_id: u64,
}

/// The node's shared directory watcher.
pub struct DirWatcher {
    routes: Arc<Mutex<Routes>>,
    inner: Mutex<Inner>,
}

/// A job's subscription to the events under its root; dropping it stops them.
pub struct Subscription {
    /// The events (`Complete` paths are absolute).
    pub events: mpsc::UnboundedReceiver<WatchEvent>,
    id: u64,
    root: PathBuf,
    owner: Arc<DirWatcher>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.owner.unsubscribe(self.id, &self.root);
    }
}

fn classify(kind: &EventKind, path: PathBuf) -> Option<WatchEvent> {
    Some(match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => WatchEvent::Complete(path),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => {
            if path.is_dir() {
                WatchEvent::DirAppeared(path)
            } else {
                WatchEvent::Complete(path)
            }
        }
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
            WatchEvent::Removed(path)
        }
        EventKind::Create(CreateKind::Folder) => WatchEvent::DirAppeared(path),
        EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_)) => WatchEvent::Activity(path),
        _ => return None,
    })
}

fn watch_limit() -> String {
    std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

fn map_error(e: notify::Error, path: &Path) -> WatchError {
    match e.kind {
        notify::ErrorKind::MaxFilesWatch => WatchError::Limit {
            limit: watch_limit(),
        },
        notify::ErrorKind::PathNotFound => WatchError::Path {
            path: path.to_path_buf(),
            reason: "no such directory".into(),
        },
        _ => WatchError::Path {
            path: path.to_path_buf(),
            reason: e.to_string(),
        },
    }
}

impl DirWatcher {
    /// A watcher; the inotify instance is created at the first subscription.
    pub fn new() -> Arc<DirWatcher> {
        Arc::new(DirWatcher {
            routes: Arc::default(),
            inner: Mutex::new(Inner {
                watcher: None,
                watched: BTreeMap::new(),
                next_id: 0,
            }),
        })
    }

    fn start(&self) -> Result<RecommendedWatcher, WatchError> {
        let routes = self.routes.clone();
        let handler = move |res: notify::Result<notify::Event>| {
            let routes = routes.lock().unwrap_or_else(|e| e.into_inner());
            match res {
                Ok(event) if event.need_rescan() => routes.broadcast(WatchEvent::Rescan),
                Ok(event) => {
                    // A rename within the tree: `Both` repeats `From` and `To`, skip it.
                    if let EventKind::Modify(ModifyKind::Name(RenameMode::Both)) = event.kind {
                        return;
                    }
                    for path in event.paths {
                        if let Some(ev) = classify(&event.kind, path.clone()) {
                            routes.send(&path, || ev.clone());
                        }
                    }
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    routes.broadcast(WatchEvent::LimitReached)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "weir.trigger.file_arrival: file watcher error; rescanning");
                    routes.broadcast(WatchEvent::Rescan)
                }
            }
        };
        RecommendedWatcher::new(handler, Config::default().with_follow_symlinks(false)).map_err(
            |e| {
                WatchError::Unavailable(match e.kind {
                    notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => {
                        "the inotify instance limit is reached (fs.inotify.max_user_instances); \
                         raise it with `sysctl fs.inotify.max_user_instances=1024`"
                            .to_string()
                    }
                    other => format!("{other:?}"),
                })
            },
        )
    }

    /// Watches `root` (an absolute, canonical directory) recursively for this subscriber.
    pub fn subscribe(self: &Arc<Self>, root: &Path) -> Result<Subscription, WatchError> {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if inner.watcher.is_none() {
            inner.watcher = Some(self.start()?);
        }
        let covered = root.ancestors().any(|a| inner.watched.contains_key(a));
        if !covered {
            let watcher = inner.watcher.as_mut().expect("started above");
            if let Err(e) = watcher.watch(root, RecursiveMode::Recursive) {
                // A partly added recursive watch would report only some directories.
                let _ = watcher.unwatch(root);
                return Err(map_error(e, root));
            }
            // Roots under this one are covered by it now.
            let nested: Vec<PathBuf> = inner
                .watched
                .keys()
                .filter(|w| w.starts_with(root))
                .cloned()
                .collect();
            for n in nested {
                inner.watched.remove(&n);
            }
            inner.watched.insert(root.to_path_buf(), ());
        }
        inner.next_id += 1;
        let id = inner.next_id;
        let (tx, rx) = mpsc::unbounded_channel();
        self.routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .subs
            .entry(root.to_path_buf())
            .or_default()
            .push((id, tx));
        Ok(Subscription {
            events: rx,
            id,
            root: root.to_path_buf(),
            owner: self.clone(),
        })
    }

    fn unsubscribe(&self, id: u64, root: &Path) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let remaining: Vec<PathBuf> = {
            let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(subs) = routes.subs.get_mut(root) {
                subs.retain(|(i, _)| *i != id);
                if subs.is_empty() {
                    routes.subs.remove(root);
                }
            }
            if routes.subs.contains_key(root) {
                return;
            }
            routes
                .subs
                .keys()
                .filter(|r| r.starts_with(root))
                .cloned()
                .collect()
        };
        let Inner {
            watcher, watched, ..
        } = &mut *inner;
        if watched.remove(root).is_none() {
            return;
        }
        let Some(watcher) = watcher.as_mut() else {
            return;
        };
        let _ = watcher.unwatch(root);
        // Subscribed roots that this one covered need their own watch again (a minimal
        // cover: the outermost ones).
        let mut rewatch: Vec<PathBuf> = Vec::new();
        for r in remaining {
            if !remaining_covered(&rewatch, &r) {
                rewatch.retain(|w| !w.starts_with(&r));
                rewatch.push(r);
            }
        }
        for r in rewatch {
            match watcher.watch(&r, RecursiveMode::Recursive) {
                Ok(()) => {
                    watched.insert(r, ());
                }
                Err(e) => {
                    tracing::warn!(path = %r.display(), error = %e, "weir.trigger.file_arrival: cannot watch again");
                    self.routes
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .send(&r, || WatchEvent::LimitReached);
                }
            }
        }
    }

    /// Directories given to inotify (for tests and diagnostics).
    pub fn watched_roots(&self) -> Vec<PathBuf> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.watched.keys().cloned().collect()
    }
}

fn remaining_covered(roots: &[PathBuf], path: &Path) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn next(sub: &mut Subscription) -> WatchEvent {
        tokio::time::timeout(Duration::from_secs(10), sub.events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the channel is open")
    }

    async fn next_complete(sub: &mut Subscription) -> PathBuf {
        loop {
            if let WatchEvent::Complete(p) = next(sub).await {
                return p;
            }
        }
    }

    #[tokio::test]
    async fn routes_closes_and_renames_to_the_subscribers_of_an_ancestor() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let a = root.join("a");
        std::fs::create_dir_all(a.join("deep")).unwrap();
        let w = DirWatcher::new();
        let mut outer = w.subscribe(&root).unwrap();
        let mut inner = w.subscribe(&a).unwrap();
        assert_eq!(
            w.watched_roots(),
            vec![root.clone()],
            "a is covered by root"
        );

        std::fs::write(a.join("deep/x.csv"), "x").unwrap();
        assert_eq!(next_complete(&mut outer).await, a.join("deep/x.csv"));
        assert_eq!(next_complete(&mut inner).await, a.join("deep/x.csv"));

        std::fs::write(root.join("staged"), "y").unwrap();
        assert_eq!(next_complete(&mut outer).await, root.join("staged"));
        std::fs::rename(root.join("staged"), root.join("y.csv")).unwrap();
        loop {
            match next(&mut outer).await {
                WatchEvent::Complete(p) if p == root.join("y.csv") => break,
                _ => {}
            }
        }

        // Dropping the outer subscription keeps the inner one watched.
        drop(outer);
        assert_eq!(w.watched_roots(), vec![a.clone()]);
        std::fs::write(a.join("z.csv"), "z").unwrap();
        assert_eq!(next_complete(&mut inner).await, a.join("z.csv"));
        drop(inner);
        assert!(w.watched_roots().is_empty());
    }

    #[tokio::test]
    async fn a_missing_directory_is_an_error_naming_it() {
        let w = DirWatcher::new();
        let err = w
            .subscribe(Path::new("/nonexistent-weir-watch"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("/nonexistent-weir-watch"), "{err}");
        assert!(w.watched_roots().is_empty());
    }
}
