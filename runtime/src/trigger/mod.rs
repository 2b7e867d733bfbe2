//! Triggers: what starts runs without anyone calling `run-now`.
//!
//! One [`Trigger`] per kind (one module each) turns a job's trigger settings into
//! [`TriggerEvent`]s; triggers only emit events, the engine owns runs: an event becomes a run
//! through the one entry point [`Engine::fire`], which records the run, its typed
//! [`TriggerPayload`] and the trigger's new durable state in one store transaction, deduplicated
//! by an idempotency key derived from the event (a fire time, a file set, a Kafka offset). So an
//! event seen twice — by a restarted node, or by two nodes — yields one run, and a crash between
//! seeing an event and recording its run loses nothing: the trigger's durable state still says
//! the event is pending.
//!
//! The [`manager`] runs on every node: it starts each kind's node-level work
//! ([`Trigger::serve`]), watches every job with an unpaused trigger ([`Trigger::watch`]), and
//! restarts or stops a watch as soon as a deploy, pause, resume or delete changes the job.
//!
//! # Contract for a trigger kind
//! - Keep progress in [`TriggerState::cursor`] and write it with the run it causes
//!   ([`TriggerEvent::commit`]) or with [`TriggerContext::save_state`]; never keep anything in
//!   memory that a restart must not forget.
//! - Never fire for what happened before [`TriggerState::armed_time`] (the moment the current
//!   settings, or the last resume, took effect) unless the kind's rules say so.
//! - Derive the idempotency key only from the event (`weir:<kind>:<job>:<event identity>`);
//!   once released, never change how a kind derives it.
//! - Time goes through [`TriggerContext::clock`], so tests drive triggers on a manual clock.

pub mod continuous;
pub mod file_arrival;
pub mod manager;
pub mod payload;
pub mod schedule;
pub mod table_update;
pub mod timing;

pub use manager::TriggerManager;
pub use payload::{
    ArrivedFile, ContinuousStart, FileArrival, ScheduledFire, TableChange, TableUpdate,
    TriggerPayload,
};

use crate::clock::Clock;
use crate::engine::{Engine, EngineError};
use crate::spec::{JobSettings, PauseStatus};
use crate::store::{
    JobId, Millis, RunCreated, SeenRecord, Store, StoreError, TriggerCommit, TriggerKind,
    TriggerState,
};
use async_trait::async_trait;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The triggers this build has, one per kind, with the node's settings; `tables` is the
/// node's table-change inbox (shared with the HTTP API).
pub fn builtin(
    config: &crate::config::ServeConfig,
    tables: &Arc<table_update::TableEvents>,
) -> Vec<Arc<dyn Trigger>> {
    vec![
        Arc::new(file_arrival::FileArrivalKind::new(
            config.s3.clone(),
            config.file_arrival_list_interval_seconds,
        )),
        Arc::new(schedule::ScheduleKind::cron()),
        Arc::new(schedule::ScheduleKind::periodic()),
        Arc::new(continuous::ContinuousKind),
        Arc::new(table_update::TableUpdateKind::new(
            tables.clone(),
            config.kafka.clone(),
        )),
    ]
}

/// One kind of trigger. Implementations live in one module per kind.
#[async_trait]
pub trait Trigger: Send + Sync + 'static {
    /// The kind this trigger serves.
    fn kind(&self) -> TriggerKind;

    /// Node-level work shared by every job of this kind (a Kafka consumer, say); runs until the
    /// node stops. The default does nothing.
    async fn serve(self: Arc<Self>, _ctx: TriggerContext) {}

    /// Watches one job with an unpaused trigger of this kind, firing its events through
    /// [`TriggerContext::fire`], until the returned future is dropped: the manager drops it when
    /// the job's trigger settings change (then calls `watch` again with the new settings), when
    /// the job is paused or deleted, and at shutdown. Returning `Ok` means the trigger has
    /// nothing more to fire for these settings. An `Err` is recorded as the trigger's last
    /// error (shown by `jobs get`) and the watch is started again after a backoff.
    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        ctx: TriggerContext,
    ) -> Result<(), TriggerError>;
}

/// A job as a trigger watches it.
#[derive(Debug, Clone)]
pub struct WatchedJob {
    /// The job.
    pub job_id: JobId,
    /// Its name.
    pub name: String,
    /// Its settings when the watch started.
    pub settings: Arc<JobSettings>,
    /// The trigger's durable state when the watch started.
    pub state: TriggerState,
}

/// A trigger event: becomes a run through [`Engine::fire`].
#[derive(Debug, Clone)]
pub struct TriggerEvent {
    /// The job to run.
    pub job_id: JobId,
    /// What fired, recorded as the run's trigger payload.
    pub payload: TriggerPayload,
    /// Derived from the event (`weir:<kind>:<job>:<event identity>`): a second event with the
    /// same key returns the first run and creates nothing.
    pub idempotency_key: String,
    /// Job parameter overrides for the run (usually none).
    pub job_parameters: BTreeMap<String, String>,
    /// Trigger state and seen items written in the run's transaction.
    pub commit: TriggerCommit,
}

/// Errors of triggers, carrying the job they concern.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The engine refused or failed to record the triggered run.
    #[error("job {job_id}: cannot record the triggered run")]
    Fire {
        /// The job.
        job_id: JobId,
        /// Why.
        #[source]
        source: EngineError,
    },
    /// The state store failed.
    #[error("job {job_id}: cannot read or write the trigger state")]
    State {
        /// The job.
        job_id: JobId,
        /// Why.
        #[source]
        source: StoreError,
    },
    /// The watched source failed: storage unreachable, a broker down, a listing refused.
    #[error("job {job_id}: {what}")]
    Source {
        /// The job.
        job_id: JobId,
        /// What failed, e.g. `cannot list s3://bucket/prefix/`.
        what: String,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The job's trigger settings cannot be served (validation should have caught it).
    #[error("job {job_id}: invalid trigger settings: {message}")]
    Settings {
        /// The job.
        job_id: JobId,
        /// What is wrong.
        message: String,
    },
    /// The job's trigger was paused, removed or changed while an event was being fired.
    #[error("job {job_id}: its {kind} trigger is paused or no longer configured")]
    Inactive {
        /// The job.
        job_id: JobId,
        /// The kind of the event.
        kind: TriggerKind,
    },
}

impl TriggerError {
    /// The error and its causes on one line: `job 3: cannot list s3://b/: connection refused`.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut cause = std::error::Error::source(self);
        while let Some(c) = cause {
            text.push_str(": ");
            text.push_str(&c.to_string());
            cause = c.source();
        }
        text
    }
}

/// A job's trigger as its settings describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTrigger {
    /// The kind.
    pub kind: TriggerKind,
    /// Whether `pause_status` is `PAUSED`.
    pub paused: bool,
    /// Hash of the trigger settings, pause status included.
    pub settings_hash: String,
}

/// The trigger a job's settings configure, if any (`schedule`, `trigger.*` or `continuous`;
/// validation allows at most one).
pub fn of(settings: &JobSettings) -> Option<JobTrigger> {
    let (kind, pause) = if let Some(s) = &settings.schedule {
        (TriggerKind::Schedule, s.pause_status)
    } else if let Some(t) = &settings.trigger {
        let kind = if t.file_arrival.is_some() {
            TriggerKind::FileArrival
        } else if t.table_update.is_some() {
            TriggerKind::TableUpdate
        } else if t.periodic.is_some() {
            TriggerKind::Periodic
        } else {
            return None;
        };
        (kind, t.pause_status)
    } else if let Some(c) = &settings.continuous {
        (TriggerKind::Continuous, c.pause_status)
    } else {
        return None;
    };
    let described = serde_json::json!([settings.schedule, settings.trigger, settings.continuous]);
    let digest = Sha256::digest(described.to_string().as_bytes());
    Some(JobTrigger {
        kind,
        paused: pause == PauseStatus::Paused,
        settings_hash: hex::encode(&digest[..12]),
    })
}

/// What a trigger uses of the node: the engine, its clock and store.
#[derive(Clone)]
pub struct TriggerContext {
    engine: Engine,
}

impl TriggerContext {
    /// A context on an engine.
    pub fn new(engine: Engine) -> TriggerContext {
        TriggerContext { engine }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The clock every trigger decision goes through.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        self.engine.clock()
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn Store> {
        self.engine.store()
    }

    /// The clock's time.
    pub fn now(&self) -> Millis {
        self.engine.now()
    }

    /// Turns an event into a run unless the job's trigger of that kind is paused, removed or
    /// changed kind meanwhile. A repeated idempotency key returns the existing run (`created:
    /// false`) and still applies the event's trigger commit.
    pub async fn fire(&self, event: TriggerEvent) -> Result<RunCreated, TriggerError> {
        let job_id = event.job_id;
        let kind = event.payload.kind();
        let job = self
            .store()
            .get_job(job_id)
            .await
            .map_err(|source| TriggerError::State { job_id, source })?;
        let active = job
            .and_then(|j| of(&j.settings))
            .is_some_and(|t| t.kind == kind && !t.paused);
        if !active {
            return Err(TriggerError::Inactive { job_id, kind });
        }
        self.engine
            .fire(event)
            .await
            .map_err(|source| TriggerError::Fire { job_id, source })
    }

    /// The job's durable trigger state.
    pub async fn load_state(&self, job_id: JobId) -> Result<Option<TriggerState>, TriggerError> {
        self.store()
            .get_trigger_state(job_id)
            .await
            .map_err(|source| TriggerError::State { job_id, source })
    }

    /// Writes the job's trigger state (progress that does not create a run).
    pub async fn save_state(&self, state: &TriggerState) -> Result<(), TriggerError> {
        self.store()
            .put_trigger_state(state)
            .await
            .map_err(|source| TriggerError::State {
                job_id: state.job_id,
                source,
            })
    }

    /// The job's seen-set.
    pub async fn seen(&self, job_id: JobId) -> Result<Vec<SeenRecord>, TriggerError> {
        self.store()
            .list_trigger_seen(job_id)
            .await
            .map_err(|source| TriggerError::State { job_id, source })
    }
}

#[cfg(test)]
mod tests;
