//! The trigger manager: keeps one watch running per job with an unpaused trigger, in step with
//! the jobs in the store.
//!
//! It resynchronises whenever the store reports a job change (deploy, update, pause, resume,
//! delete) and at a slow interval as a safety net. A job whose trigger settings changed — pause
//! status included — is re-armed: its durable state gets the new settings hash and
//! `armed_time = now`, so a redeployed schedule starts from its next fire time and a resumed one
//! does not catch up on the fire times it skipped while paused.

use super::{JobTrigger, Trigger, TriggerContext, WatchedJob};
use crate::store::{JobId, JobRecord, Page, StoreError, TriggerKind, TriggerState};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tracing::Instrument;

/// How often the manager lists jobs even when no change was reported.
const RESYNC_INTERVAL: Duration = Duration::from_secs(10);
/// First wait before a failed watch starts again; doubles up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 1_000;
/// Longest wait between two starts of a failing watch.
const MAX_BACKOFF_MS: i64 = 60_000;
/// A watch that ran this long before failing starts again after the first backoff.
const HEALTHY_RUN_MS: i64 = 60_000;
/// Jobs listed per store page while resynchronising.
const LIST_PAGE: u64 = 1000;

/// Runs the triggers of a node.
pub struct TriggerManager {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl TriggerManager {
    /// Starts every trigger's node-level work and the loop that watches jobs.
    pub fn start(ctx: TriggerContext, triggers: Vec<Arc<dyn Trigger>>) -> TriggerManager {
        let (stop, stopped) = watch::channel(false);
        let mut tasks: Vec<JoinHandle<()>> = triggers
            .iter()
            .map(|t| {
                let span = tracing::info_span!("weir.trigger.serve", trigger.kind = %t.kind());
                tokio::spawn(t.clone().serve(ctx.clone()).instrument(span))
            })
            .collect();
        let kinds = triggers.into_iter().map(|t| (t.kind(), t)).collect();
        let changes = ctx.store().job_changes();
        tasks.push(tokio::spawn(sync_loop(ctx, kinds, changes, stopped)));
        TriggerManager { stop, tasks }
    }

    /// Stops every watch and the node-level work.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            t.abort();
            let _ = t.await;
        }
    }
}

/// A running watch of one job.
struct Watch {
    settings_hash: String,
    handle: JoinHandle<()>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

async fn sync_loop(
    ctx: TriggerContext,
    kinds: HashMap<TriggerKind, Arc<dyn Trigger>>,
    mut changes: broadcast::Receiver<JobId>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut manager = Watches {
        ctx,
        kinds,
        running: HashMap::new(),
        missing_kinds: HashSet::new(),
    };
    let mut full = true;
    let mut changed = Vec::new();
    loop {
        let pass = if full {
            manager.sync_all().await
        } else {
            manager.sync_some(&changed).await
        };
        if let Err(e) = pass {
            tracing::error!(error = %e, "weir.trigger.sync: cannot read jobs; retrying");
            full = true;
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        changed.clear();
        tokio::select! {
            change = changes.recv() => {
                full = false;
                let mut next = change;
                // Take a whole burst of changes (a deploy of many jobs) in one pass.
                loop {
                    match next {
                        Ok(job_id) => changed.push(job_id),
                        Err(broadcast::error::RecvError::Lagged(_)) => full = true,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    next = match changes.try_recv() {
                        Ok(id) => Ok(id),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Err(broadcast::error::RecvError::Lagged(n))
                        }
                        Err(_) => break,
                    };
                }
            }
            _ = tokio::time::sleep(RESYNC_INTERVAL) => full = true,
            _ = stopped.changed() => return,
        }
    }
}

/// The watches of a node.
struct Watches {
    ctx: TriggerContext,
    kinds: HashMap<TriggerKind, Arc<dyn Trigger>>,
    running: HashMap<JobId, Watch>,
    missing_kinds: HashSet<TriggerKind>,
}

impl Watches {
    /// Matches the watches to every job in the store.
    async fn sync_all(&mut self) -> Result<(), StoreError> {
        let jobs = list_all_jobs(&self.ctx).await?;
        let present: HashSet<JobId> = jobs.iter().map(|j| j.job_id).collect();
        self.running.retain(|id, _| present.contains(id));
        for job in jobs {
            self.sync_job(job.job_id, Some(job)).await;
        }
        Ok(())
    }

    /// Matches the watches of the given jobs.
    async fn sync_some(&mut self, job_ids: &[JobId]) -> Result<(), StoreError> {
        let unique: HashSet<JobId> = job_ids.iter().copied().collect();
        for job_id in unique {
            let job = self.ctx.store().get_job(job_id).await?;
            self.sync_job(job_id, job).await;
        }
        Ok(())
    }

    /// Starts, restarts or stops the watch of one job (`None`: the job is gone).
    async fn sync_job(&mut self, job_id: JobId, job: Option<JobRecord>) {
        let Some((job, trigger)) = job.and_then(|j| super::of(&j.settings).map(|t| (j, t))) else {
            self.running.remove(&job_id);
            return;
        };
        let Some(kind) = self.kinds.get(&trigger.kind).cloned() else {
            self.running.remove(&job_id);
            if self.missing_kinds.insert(trigger.kind) {
                tracing::warn!(
                    trigger.kind = %trigger.kind,
                    "weir.trigger.sync: jobs use a trigger kind this node does not run"
                );
            }
            return;
        };
        if self
            .running
            .get(&job_id)
            .is_some_and(|w| w.settings_hash == trigger.settings_hash)
        {
            return;
        }
        self.running.remove(&job_id);
        let state = match arm(&self.ctx, job_id, &trigger).await {
            Ok(state) => state,
            Err(e) => {
                tracing::error!(job.id = job_id, error = %e, "weir.trigger.arm: cannot write the trigger state");
                return;
            }
        };
        if trigger.paused {
            return;
        }
        let watched = WatchedJob {
            job_id,
            name: job.settings.name.clone(),
            settings: Arc::new(job.settings),
            state,
        };
        let span = tracing::info_span!(
            "weir.trigger.watch",
            job.id = job_id,
            trigger.kind = %trigger.kind
        );
        let handle = tokio::spawn(supervise(kind, watched, self.ctx.clone()).instrument(span));
        self.running.insert(
            job_id,
            Watch {
                settings_hash: trigger.settings_hash,
                handle,
            },
        );
    }
}

async fn list_all_jobs(ctx: &TriggerContext) -> Result<Vec<JobRecord>, StoreError> {
    let mut all = Vec::new();
    let mut offset = 0;
    loop {
        let page = Page {
            offset,
            limit: LIST_PAGE,
        };
        let (jobs, more) = ctx.store().list_jobs(page, None).await?;
        offset += jobs.len() as u64;
        all.extend(jobs);
        if !more {
            return Ok(all);
        }
    }
}

/// The job's trigger state for its current settings: the stored one when the settings are
/// unchanged, else re-armed at now (the cursor is kept when the kind is unchanged, so a kind
/// can carry progress over a redeploy where its rules say so).
async fn arm(
    ctx: &TriggerContext,
    job_id: JobId,
    trigger: &JobTrigger,
) -> Result<TriggerState, StoreError> {
    let stored = ctx.store().get_trigger_state(job_id).await?;
    if let Some(s) = &stored
        && s.kind == trigger.kind
        && s.settings_hash == trigger.settings_hash
    {
        return Ok(s.clone());
    }
    let now = ctx.now();
    let state = match stored {
        Some(old) if old.kind == trigger.kind => TriggerState {
            settings_hash: trigger.settings_hash.clone(),
            armed_time: now,
            next_fire_time: None,
            last_error: None,
            last_error_time: None,
            updated_time: now,
            ..old
        },
        _ => TriggerState::armed(job_id, trigger.kind, &trigger.settings_hash, now),
    };
    ctx.store().put_trigger_state(&state).await?;
    tracing::info!(
        job.id = job_id,
        trigger.kind = %trigger.kind,
        paused = trigger.paused,
        "weir.trigger.arm: trigger settings took effect"
    );
    Ok(state)
}

/// Runs a job's watch; after an error, records it and starts the watch again with backoff.
async fn supervise(trigger: Arc<dyn Trigger>, mut job: WatchedJob, ctx: TriggerContext) {
    let mut backoff = FIRST_BACKOFF_MS;
    loop {
        let started = ctx.now();
        let error = match trigger.clone().watch(job.clone(), ctx.clone()).await {
            Ok(()) => return,
            Err(e) => e,
        };
        let now = ctx.now();
        if now - started >= HEALTHY_RUN_MS {
            backoff = FIRST_BACKOFF_MS;
        }
        let message = error.chain();
        tracing::warn!(error = %message, retry_in_ms = backoff, "weir.trigger.watch: trigger failed; restarting it");
        match ctx.store().get_trigger_state(job.job_id).await {
            Ok(Some(mut state)) => {
                state.last_error = Some(message);
                state.last_error_time = Some(now);
                state.updated_time = now;
                if let Err(e) = ctx.store().put_trigger_state(&state).await {
                    tracing::error!(error = %e, "weir.trigger.watch: cannot record the trigger error");
                }
                job.state = state;
            }
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "weir.trigger.watch: cannot read the trigger state")
            }
        }
        ctx.clock().sleep_until(now + backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF_MS);
    }
}
