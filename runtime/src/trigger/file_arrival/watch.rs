//! The loop of one watched job: observe the source, batch, fire when due.

use super::FileArrivalError;
use super::batch::{Batcher, Observed, idempotency_key};
use super::local::LocalSource;
use super::local::watcher::WatchEvent;
use super::s3::S3Source;
use crate::store::Millis;
use crate::trigger::TriggerError;
use futures::future::BoxFuture;
use std::future::Future;

/// Where a job's files come from.
pub enum Source {
    /// A local directory.
    Local(LocalSource),
    /// An object store URL.
    S3(S3Source),
}

impl Source {
    async fn next_event(&mut self) -> WatchEvent {
        match self {
            Source::Local(l) => l.next_event().await,
            Source::S3(_) => std::future::pending().await,
        }
    }

    fn on_event(&mut self, event: WatchEvent, batcher: &mut Batcher, now: Millis) {
        if let Source::Local(l) = self {
            l.on_event(event, batcher, now);
        }
    }

    fn next_tick(&self) -> Option<Millis> {
        match self {
            Source::Local(l) => l.next_tick(),
            Source::S3(s) => s.next_tick(),
        }
    }

    async fn tick(&mut self, batcher: &mut Batcher, now: Millis) -> Result<(), FileArrivalError> {
        match self {
            Source::Local(l) => l.tick(batcher, now).await,
            Source::S3(s) => s.tick(batcher, now).await,
        }
    }
}

/// A batch to turn into a run.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The files, in path order.
    pub files: Vec<Observed>,
    /// The run's idempotency key (derived from the file set).
    pub idempotency_key: String,
    /// When the batch fired.
    pub time: Millis,
}

/// Time as the loop needs it (the node's [`Clock`](crate::clock::Clock) in production).
pub trait LoopClock: Send + Sync {
    /// Now, in ms since the epoch.
    fn now(&self) -> Millis;
    /// Resolves at `at`.
    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()>;
}

/// Watches until an error (or until the future is dropped): every due batch is handed to
/// `fire`, which records its run durably (files, run and state in one transaction) before it
/// returns `Ok`. A batch `fire` refuses stays unrecorded and the error ends the loop; the
/// caller restarts it with backoff, and the reconciling scan finds the files again.
/// `recovered` is called once, after the source answered for the first time.
pub async fn run<F, Fut, R, RFut>(
    job_id: i64,
    url: &str,
    source: &mut Source,
    batcher: &mut Batcher,
    clock: &dyn LoopClock,
    mut fire: F,
    recovered: R,
) -> Result<(), TriggerError>
where
    F: FnMut(Batch) -> Fut,
    Fut: Future<Output = Result<(), TriggerError>>,
    R: FnOnce() -> RFut,
    RFut: Future<Output = Result<(), TriggerError>>,
{
    let mut recovered = Some(recovered);
    loop {
        let now = clock.now();
        source
            .tick(batcher, now)
            .await
            .map_err(|e| super::source_error(job_id, e))?;
        if let Some(r) = recovered.take() {
            r().await?;
        }
        if let Some(due) = batcher.due_at()
            && due <= now
        {
            let files = batcher.batch();
            let batch = Batch {
                idempotency_key: idempotency_key(job_id, url, &files),
                files,
                time: now,
            };
            let files = batch.files.clone();
            fire(batch).await?;
            batcher.fired(&files, now);
            continue;
        }
        let wake = [source.next_tick(), batcher.due_at()]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match wake {
                Some(at) => clock.sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            event = source.next_event() => {
                let now = clock.now();
                source.on_event(event, batcher, now);
            }
            () = sleep => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::filter::PathFilter;
    use super::super::local::watcher::DirWatcher;
    use super::*;
    use std::collections::HashMap;
    use std::io::Write as _;
    use std::time::Duration;
    use tokio::sync::mpsc;

    struct Wall;
    impl LoopClock for Wall {
        fn now(&self) -> Millis {
            crate::clock::SystemClock.now_ms()
        }
        fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
            let ms = (at - self.now()).max(0) as u64;
            Box::pin(tokio::time::sleep(Duration::from_millis(ms)))
        }
    }
    use crate::clock::Clock as _;

    /// Watches `dir` in the background; batches arrive on the returned channel.
    fn watch(
        dir: &std::path::Path,
        wait: u64,
        seen: HashMap<String, String>,
    ) -> (mpsc::UnboundedReceiver<Batch>, tokio::task::JoinHandle<()>) {
        let url = format!("file://{}/", dir.display());
        let watcher = DirWatcher::new();
        let filter = PathFilter::new(None).unwrap();
        let source = LocalSource::open(&url, filter.clone(), &watcher, 5_000, 1).unwrap();
        assert!(source.watching());
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(async move {
            let _keep = watcher;
            let mut source = Source::Local(source);
            let mut batcher = Batcher::new(filter, wait, 0, seen, None);
            let fire = |b| {
                let _ = tx.send(b);
                async { Ok(()) }
            };
            let _ = run(1, &url, &mut source, &mut batcher, &Wall, fire, || async {
                Ok(())
            })
            .await;
        });
        (rx, handle)
    }

    async fn next(rx: &mut mpsc::UnboundedReceiver<Batch>) -> Batch {
        tokio::time::timeout(Duration::from_secs(20), rx.recv())
            .await
            .expect("a batch within 20 s")
            .unwrap()
    }

    fn paths(b: &Batch) -> Vec<&str> {
        b.files.iter().map(|f| f.path.as_str()).collect()
    }

    #[tokio::test]
    async fn renamed_files_fire_one_by_one_and_files_present_at_start_fire_once() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::write(root.join("old.csv"), "old").unwrap();
        std::fs::write(root.join("covered.csv"), "c").unwrap();
        // Present before the watch and old enough: complete.
        let old = std::time::SystemTime::now() - Duration::from_secs(60);
        for f in ["old.csv", "covered.csv"] {
            std::fs::File::options()
                .write(true)
                .open(root.join(f))
                .unwrap()
                .set_modified(old)
                .unwrap();
        }
        let covered_now =
            super::super::local::scan::observe(&root, &root.join("covered.csv")).unwrap();
        let seen = HashMap::from([("covered.csv".to_string(), covered_now.fingerprint)]);
        let (mut rx, handle) = watch(&root, 0, seen);
        assert_eq!(paths(&next(&mut rx).await), ["old.csv"]);
        for i in 0..5 {
            let staged = root.join(format!(".f{i}.csv"));
            std::fs::write(&staged, format!("file {i}")).unwrap();
            std::fs::rename(&staged, root.join(format!("f{i}.csv"))).unwrap();
            let b = next(&mut rx).await;
            assert_eq!(paths(&b), [format!("f{i}.csv").as_str()]);
            assert_eq!(b.files[0].size, 6);
        }
        std::fs::create_dir(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/deep.csv"), "deep").unwrap();
        assert_eq!(paths(&next(&mut rx).await), ["sub/deep.csv"]);
        handle.abort();
    }

    #[tokio::test]
    async fn a_slow_writer_is_not_picked_up_half_written() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (mut rx, handle) = watch(&root, 0, HashMap::new());
        let mut f = std::fs::File::create(root.join("slow.csv")).unwrap();
        f.write_all(b"first half,").unwrap();
        f.flush().unwrap();
        // Longer than the scan quiet time: a wrong rule would report the half file now.
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(
            rx.try_recv().is_err(),
            "nothing fires while the file is open"
        );
        f.write_all(b"second half").unwrap();
        drop(f);
        let b = next(&mut rx).await;
        assert_eq!(paths(&b), ["slow.csv"]);
        assert_eq!(b.files[0].size, 22, "the whole file");
        handle.abort();
    }

    #[tokio::test]
    async fn after_the_watch_limit_is_reached_the_directory_is_scanned() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let url = format!("file://{}/", root.display());
        let watcher = DirWatcher::new();
        let filter = PathFilter::new(None).unwrap();
        let mut source = LocalSource::open(&url, filter.clone(), &watcher, 200, 1).unwrap();
        let mut batcher = Batcher::new(filter, 0, 0, HashMap::new(), None);
        // What the watcher reports when inotify refuses a new watch.
        source.on_event(WatchEvent::LimitReached, &mut batcher, Wall.now());
        assert!(!source.watching(), "falls back to scanning");
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = tokio::spawn(async move {
            let mut source = Source::Local(source);
            let fire = |b| {
                let _ = tx.send(b);
                async { Ok(()) }
            };
            let _ = run(1, &url, &mut source, &mut batcher, &Wall, fire, || async {
                Ok(())
            })
            .await;
        });
        std::fs::write(root.join("scanned.csv"), "s").unwrap();
        assert_eq!(paths(&next(&mut rx).await), ["scanned.csv"]);
        // A file still open for writing is not taken by the scan either.
        let mut open = std::fs::File::create(root.join("open.csv")).unwrap();
        open.write_all(b"part").unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(rx.try_recv().is_err());
        drop(open);
        assert_eq!(paths(&next(&mut rx).await), ["open.csv"]);
        handle.abort();
        drop(watcher);
    }

    #[tokio::test]
    async fn a_burst_settles_into_one_batch() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let (mut rx, handle) = watch(&root, 1, HashMap::new());
        for i in 0..200 {
            std::fs::write(root.join(format!("b{i:03}.csv")), "x").unwrap();
        }
        let b = next(&mut rx).await;
        assert_eq!(b.files.len(), 200);
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        assert!(rx.try_recv().is_err(), "one batch");
        handle.abort();
    }
}
