//! The durable shapes of triggers: per-job trigger state and the seen-set, and what a triggered
//! run commits with it.

use super::model::{JobId, Millis, RunId};
use serde::{Deserialize, Serialize};

/// The kinds of triggers a job can have (at most one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriggerKind {
    /// `schedule`: a Quartz cron expression.
    Schedule,
    /// `trigger.periodic`: every `interval` `unit`s.
    Periodic,
    /// `continuous`: a new run as soon as the last one ends.
    Continuous,
    /// `trigger.file_arrival`: new files under a URL.
    FileArrival,
    /// `trigger.table_update`: change events for tables.
    TableUpdate,
}

impl TriggerKind {
    /// Every kind, in a fixed order.
    pub const ALL: [TriggerKind; 5] = [
        TriggerKind::Schedule,
        TriggerKind::Periodic,
        TriggerKind::Continuous,
        TriggerKind::FileArrival,
        TriggerKind::TableUpdate,
    ];

    /// The stored and displayed spelling (`file_arrival`).
    pub fn as_str(self) -> &'static str {
        match self {
            TriggerKind::Schedule => "schedule",
            TriggerKind::Periodic => "periodic",
            TriggerKind::Continuous => "continuous",
            TriggerKind::FileArrival => "file_arrival",
            TriggerKind::TableUpdate => "table_update",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<TriggerKind> {
        TriggerKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for TriggerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The durable state of one job's trigger: where it stands, what it fires next, what went
/// wrong last. Written by the node watching the job; read by `jobs get` and by the next watch
/// after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerState {
    /// The job.
    pub job_id: JobId,
    /// Its trigger kind.
    pub kind: TriggerKind,
    /// Hash of the job's trigger settings (pause status included) this state belongs to.
    pub settings_hash: String,
    /// When these settings (or the last resume) took effect: a trigger never fires for what
    /// happened before, e.g. fire times of a schedule that was just deployed or resumed.
    pub armed_time: Millis,
    /// Kind-specific progress (last fire time handled, an accumulator, ...), owned by the
    /// trigger module of `kind`.
    pub cursor: serde_json::Value,
    /// When the trigger fires next, when it knows.
    pub next_fire_time: Option<Millis>,
    /// The time of the last event that created a run.
    pub last_fire_time: Option<Millis>,
    /// The run that event created.
    pub last_run_id: Option<RunId>,
    /// The last error of the trigger (storage unreachable, broker down, ...), until it recovers.
    pub last_error: Option<String>,
    /// When `last_error` happened.
    pub last_error_time: Option<Millis>,
    /// When this state was written.
    pub updated_time: Millis,
}

impl TriggerState {
    /// The state of a trigger armed at `now` for settings hashing to `settings_hash`.
    pub fn armed(job_id: JobId, kind: TriggerKind, settings_hash: &str, now: Millis) -> Self {
        TriggerState {
            job_id,
            kind,
            settings_hash: settings_hash.to_string(),
            armed_time: now,
            cursor: serde_json::Value::Null,
            next_fire_time: None,
            last_fire_time: None,
            last_run_id: None,
            last_error: None,
            last_error_time: None,
            updated_time: now,
        }
    }
}

/// One item a trigger has handled (a file: key = its path, fingerprint = size/mtime/ETag), so it
/// never triggers again unless its fingerprint changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenItem {
    /// What the item is (e.g. a path relative to the watched URL).
    pub key: String,
    /// Its version (e.g. `size:mtime` or an ETag); a new fingerprint counts as new.
    pub fingerprint: String,
}

/// An item of a job's seen-set, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenRecord {
    /// The item.
    pub item: SeenItem,
    /// The run that covered it.
    pub run_id: Option<RunId>,
    /// When it was recorded.
    pub seen_time: Millis,
}

/// What a triggered run commits in the same transaction as the run itself (and also when the
/// run already existed under its idempotency key, so a replayed event still moves the trigger
/// on).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriggerCommit {
    /// The job's new trigger state.
    pub state: Option<TriggerState>,
    /// Items the run covers, added to the job's seen-set with the run's id.
    pub seen: Vec<SeenItem>,
}
