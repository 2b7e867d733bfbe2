//! The typed trigger payloads a run records (its `trigger_info`): what the task sees in
//! `WEIR_CONTEXT` under `trigger`, and what `{{job.trigger.*}}` references read.
//!
//! Every payload serializes as one JSON object with `kind` and `time` (milliseconds since the
//! epoch) at the top level, beside its own fields: `{"kind": "file_arrival", "time": ...,
//! "location": "file:///srv/in/", "files": [...]}`.

use crate::store::{Millis, RunId, TriggerKind, TriggerType};
use serde::{Deserialize, Serialize};

/// What fired a triggered run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TriggerPayload {
    /// A fire time of a `schedule`.
    Schedule(ScheduledFire),
    /// A fire time of a `trigger.periodic`.
    Periodic(ScheduledFire),
    /// A run of a `continuous` job.
    Continuous(ContinuousStart),
    /// Files arrived.
    FileArrival(FileArrival),
    /// Tables were updated.
    TableUpdate(TableUpdate),
}

impl TriggerPayload {
    /// The trigger time: the fire time of a schedule, when files or events were seen otherwise.
    pub fn time(&self) -> Millis {
        match self {
            TriggerPayload::Schedule(f) | TriggerPayload::Periodic(f) => f.time,
            TriggerPayload::Continuous(c) => c.time,
            TriggerPayload::FileArrival(f) => f.time,
            TriggerPayload::TableUpdate(t) => t.time,
        }
    }

    /// The trigger kind that emits this payload.
    pub fn kind(&self) -> TriggerKind {
        match self {
            TriggerPayload::Schedule(_) => TriggerKind::Schedule,
            TriggerPayload::Periodic(_) => TriggerKind::Periodic,
            TriggerPayload::Continuous(_) => TriggerKind::Continuous,
            TriggerPayload::FileArrival(_) => TriggerKind::FileArrival,
            TriggerPayload::TableUpdate(_) => TriggerKind::TableUpdate,
        }
    }

    /// The run's `trigger` (Jobs API `TriggerType`): schedules and intervals are `PERIODIC`.
    pub fn trigger_type(&self) -> TriggerType {
        match self {
            TriggerPayload::Schedule(_) | TriggerPayload::Periodic(_) => TriggerType::Periodic,
            TriggerPayload::Continuous(_) => TriggerType::Continuous,
            TriggerPayload::FileArrival(_) => TriggerType::FileArrival,
            TriggerPayload::TableUpdate(_) => TriggerType::Table,
        }
    }

    /// The payload as stored in the run's `trigger_info`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("trigger payloads serialize")
    }

    /// Reads a payload back from a run's `trigger_info`; `None` for runs not started by a
    /// trigger (manual runs, child runs).
    pub fn from_json(value: &serde_json::Value) -> Option<TriggerPayload> {
        serde_json::from_value(value.clone()).ok()
    }
}

/// A fire time of a schedule or an interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledFire {
    /// The fire time (not when the run was created).
    pub time: Millis,
    /// The fire time was missed while Weir was down; this run catches up on it (the latest
    /// missed one only).
    #[serde(default)]
    pub catch_up: bool,
    /// The run was created by a backfill over a past range.
    #[serde(default)]
    pub backfill: bool,
}

/// A run of a continuous job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuousStart {
    /// When the run was started.
    pub time: Millis,
    /// The run before this one, if any.
    pub previous_run_id: Option<RunId>,
    /// Failed runs in a row before this one (drives the backoff).
    #[serde(default)]
    pub consecutive_failures: u32,
}

/// Files that arrived under a watched URL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileArrival {
    /// When the batch was complete (settled).
    pub time: Millis,
    /// The watched URL (`{{job.trigger.file_arrival.location}}`).
    pub location: String,
    /// Exactly the files new since the last triggered run.
    pub files: Vec<ArrivedFile>,
}

/// One arrived file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArrivedFile {
    /// Its path relative to the watched URL, with `/` separators.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, milliseconds since the epoch.
    pub modification_time: Millis,
    /// The object's ETag (object stores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

/// Tables updated since the last triggered run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableUpdate {
    /// When the condition was met (and any wait had passed).
    pub time: Millis,
    /// The updated tables' full names (`{{job.trigger.table_update.updated_tables}}`).
    pub updated_tables: Vec<String>,
    /// The latest change seen per updated table.
    pub tables: Vec<TableChange>,
}

/// The latest change event seen for one table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableChange {
    /// Full table name, `catalog.schema.table`.
    pub table: String,
    /// The table version the event carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<serde_json::Value>,
    /// The event's own time (`ts_ms`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<Millis>,
    /// Where the event came from: `kafka` or `api`.
    pub source: String,
    /// Kafka topic of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Kafka partition of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    /// Kafka offset of the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The id of an event posted to `POST /api/weir/events` (given by the client, or made up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_flat_objects_with_kind_and_time() {
        let p = TriggerPayload::FileArrival(FileArrival {
            time: 5,
            location: "file:///in/".into(),
            files: vec![ArrivedFile {
                path: "a.csv".into(),
                size: 3,
                modification_time: 4,
                etag: None,
            }],
        });
        let v = p.to_json();
        assert_eq!(v["kind"], "file_arrival");
        assert_eq!(v["time"], 5);
        assert_eq!(v["location"], "file:///in/");
        assert_eq!(v["files"][0]["path"], "a.csv");
        assert!(v["files"][0].get("etag").is_none());
        assert_eq!(TriggerPayload::from_json(&v), Some(p));
    }

    #[test]
    fn schedules_are_periodic_runs() {
        let p = TriggerPayload::Schedule(ScheduledFire {
            time: 1,
            catch_up: true,
            backfill: false,
        });
        assert_eq!(p.trigger_type(), TriggerType::Periodic);
        assert_eq!(p.kind(), TriggerKind::Schedule);
        assert_eq!(p.to_json()["catch_up"], true);
        assert_eq!(
            TriggerPayload::from_json(&serde_json::json!({"parent_run_id": 3})),
            None
        );
    }
}
