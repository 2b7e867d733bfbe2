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

use super::{
    ArrivedFile, FileArrival as Payload, Trigger, TriggerContext, TriggerError, TriggerEvent,
    TriggerPayload, WatchedJob,
};
use crate::clock::Clock;
use crate::s3::S3Settings;
use crate::spec::FileArrivalTrigger;
use crate::store::{JobId, Millis, SeenItem, TriggerCommit, TriggerKind};
use async_trait::async_trait;
use batch::{Batcher, Observed};
use filter::PathFilter;
use futures::future::BoxFuture;
use local::LocalSource;
use local::watcher::DirWatcher;
use std::collections::HashMap;
use std::sync::Arc;
use watch::{Batch, LoopClock, Source};

/// The file-arrival trigger of a node: one shared directory watcher, the node's S3 settings
/// and its default listing interval.
pub struct FileArrivalKind {
    watcher: Arc<DirWatcher>,
    s3: S3Settings,
    list_interval_ms: Millis,
}

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

impl FileArrivalKind {
    /// The trigger with the node's S3 settings and default listing interval.
    pub fn new(s3: S3Settings, list_interval_seconds: u64) -> FileArrivalKind {
        FileArrivalKind {
            watcher: DirWatcher::new(),
            s3,
            list_interval_ms: Millis::try_from(list_interval_seconds.saturating_mul(1000))
                .unwrap_or(Millis::MAX),
        }
    }
}

pub(crate) fn source_error(job_id: JobId, e: FileArrivalError) -> TriggerError {
    match e {
        FileArrivalError::Unreadable { url, reason } => TriggerError::Source {
            job_id,
            what: format!("cannot read {url}"),
            source: reason.into(),
        },
        FileArrivalError::Listing { url, source } => TriggerError::Source {
            job_id,
            what: format!("cannot list {url}"),
            source: Box::new(source),
        },
        FileArrivalError::Glob(e) => TriggerError::Settings {
            job_id,
            message: e.to_string(),
        },
    }
}

/// The node's clock as the watch loop needs it.
struct EngineClock(Arc<dyn Clock>);

impl LoopClock for EngineClock {
    fn now(&self) -> Millis {
        self.0.now_ms()
    }
    fn sleep_until(&self, at: Millis) -> BoxFuture<'static, ()> {
        self.0.sleep_until(at)
    }
}

/// The seen-set key of a file: its full URL, so a job whose URL changes starts afresh.
fn seen_key(url: &str, path: &str) -> String {
    format!("{url}{path}")
}

/// `url` with a trailing `/` (a directory or a prefix).
fn normalized(url: &str) -> String {
    if url.ends_with('/') {
        url.to_string()
    } else {
        format!("{url}/")
    }
}

#[async_trait]
impl Trigger for FileArrivalKind {
    fn kind(&self) -> TriggerKind {
        TriggerKind::FileArrival
    }

    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        ctx: TriggerContext,
    ) -> Result<(), TriggerError> {
        let job_id = job.job_id;
        let Some(spec) = job
            .settings
            .trigger
            .as_ref()
            .and_then(|t| t.file_arrival.clone())
        else {
            return Err(TriggerError::Settings {
                job_id,
                message: "the job has no trigger.file_arrival".into(),
            });
        };
        let url = normalized(&spec.url);
        let filter = PathFilter::new(spec.path_glob.as_deref())
            .map_err(|e| source_error(job_id, e.into()))?;
        let interval_ms = spec
            .list_interval_seconds
            .map_or(self.list_interval_ms, |s| {
                Millis::try_from(s.saturating_mul(1000)).unwrap_or(Millis::MAX)
            });
        let mut source = if url.starts_with("s3://") {
            Source::S3(
                s3::S3Source::open(&url, &self.s3, interval_ms)
                    .map_err(|e| source_error(job_id, e))?,
            )
        } else {
            Source::Local(
                LocalSource::open(&url, filter.clone(), &self.watcher, interval_ms, job_id)
                    .map_err(|e| source_error(job_id, e))?,
            )
        };
        let seen: HashMap<String, String> = ctx
            .seen(job_id)
            .await?
            .into_iter()
            .filter_map(|r| {
                let path = r.item.key.strip_prefix(&url)?.to_string();
                Some((path, r.item.fingerprint))
            })
            .collect();
        let mut batcher = Batcher::new(
            filter,
            spec.wait_after_last_change_seconds,
            spec.min_time_between_triggers_seconds,
            seen,
            job.state.last_fire_time,
        );
        // Files already there when the trigger was armed (first deploy, a settings change, a
        // resume) are not arrivals; files that came while the node was down are.
        batcher.set_baseline(job.state.armed_time.saturating_sub(ARMING_SLACK_MS));
        let state = Arc::new(tokio::sync::Mutex::new(job.state.clone()));
        let clock = EngineClock(ctx.clock().clone());
        let fire = |batch: Batch| {
            let (ctx, state, url) = (ctx.clone(), state.clone(), url.clone());
            async move { fire(&ctx, job_id, &url, batch, &state).await }
        };
        let recovered = {
            let ctx = ctx.clone();
            let state = state.clone();
            move || async move {
                let mut s = state.lock().await;
                if s.last_error.is_some() {
                    s.last_error = None;
                    s.last_error_time = None;
                    s.updated_time = ctx.now();
                    ctx.save_state(&s).await?;
                }
                Ok::<(), TriggerError>(())
            }
        };
        watch::run(
            job_id,
            &url,
            &mut source,
            &mut batcher,
            &clock,
            fire,
            recovered,
        )
        .await
    }
}

/// How far before the arming time a file found by a scan still counts as an arrival (clock
/// differences between the node and a file server or object store).
const ARMING_SLACK_MS: Millis = 10_000;

/// Records a batch as a run, with the files it covers and the trigger's new state, in one
/// transaction.
async fn fire(
    ctx: &TriggerContext,
    job_id: JobId,
    url: &str,
    batch: Batch,
    state: &tokio::sync::Mutex<crate::store::TriggerState>,
) -> Result<(), TriggerError> {
    let mut s = state.lock().await;
    let mut next = s.clone();
    next.last_fire_time = Some(batch.time);
    next.next_fire_time = None;
    next.last_error = None;
    next.last_error_time = None;
    next.updated_time = batch.time;
    let seen = batch
        .files
        .iter()
        .map(|f| SeenItem {
            key: seen_key(url, &f.path),
            fingerprint: f.fingerprint.clone(),
        })
        .collect();
    let payload = TriggerPayload::FileArrival(Payload {
        time: batch.time,
        location: url.to_string(),
        files: batch.files.iter().map(arrived).collect(),
    });
    let created = ctx
        .fire(TriggerEvent {
            job_id,
            payload,
            idempotency_key: batch.idempotency_key,
            job_parameters: Default::default(),
            commit: TriggerCommit {
                state: Some(next.clone()),
                seen,
            },
        })
        .await?;
    tracing::info!(
        job.id = job_id,
        run.id = created.run_id,
        files = batch.files.len(),
        created = created.created,
        "weir.trigger.file_arrival.fire: new files under {url}"
    );
    next.last_run_id = Some(created.run_id);
    *s = next;
    // Best effort: `last_run_id` is for display; the run and the seen-set are committed.
    if let Err(e) = ctx.save_state(&s).await {
        tracing::warn!(job.id = job_id, error = %e.chain(), "weir.trigger.file_arrival: cannot record the last run id");
    }
    Ok(())
}

fn arrived(f: &Observed) -> ArrivedFile {
    ArrivedFile {
        path: f.path.clone(),
        size: f.size,
        modification_time: f.modification_time,
        etag: f.etag.clone(),
    }
}

/// Deploy-time check of a job's file-arrival URL: a local directory must exist and be
/// readable; an S3 bucket must exist and be listable. An S3 server that cannot be reached is
/// no deploy error (it may be down for a moment): the trigger reports it once it runs.
pub async fn check_source(spec: &FileArrivalTrigger, s3: &S3Settings) -> Result<(), String> {
    let url = normalized(&spec.url);
    if url.starts_with("file://") {
        return local::local_root(&url)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let source = s3::S3Source::open(&url, s3, 1_000).map_err(|e| e.to_string())?;
    match source.probe().await {
        Ok(()) => Ok(()),
        Err(e @ FileArrivalError::Listing { .. }) if e.is_definitive() => Err(e.to_string()),
        Err(_) => Ok(()),
    }
}

impl FileArrivalError {
    /// Whether the error says the URL is wrong (no such bucket, access denied) rather than
    /// that the storage is unreachable for now.
    pub fn is_definitive(&self) -> bool {
        match self {
            FileArrivalError::Listing { source, .. } => {
                if matches!(
                    source,
                    object_store::Error::NotFound { .. }
                        | object_store::Error::PermissionDenied { .. }
                        | object_store::Error::Unauthenticated { .. }
                ) {
                    return true;
                }
                // S3 error codes that no retry fixes, wherever in the chain they are.
                let mut text = source.to_string();
                let mut cause = std::error::Error::source(source);
                while let Some(c) = cause {
                    text.push_str(&c.to_string());
                    cause = c.source();
                }
                [
                    "NoSuchBucket",
                    "AccessDenied",
                    "InvalidAccessKeyId",
                    "SignatureDoesNotMatch",
                    "InvalidBucketName",
                ]
                .iter()
                .any(|code| text.contains(code))
            }
            FileArrivalError::Unreadable { .. } | FileArrivalError::Glob(_) => true,
        }
    }
}
