//! The durable shapes of alerts: the outbox rows the alert planner derives from run events and
//! the dispatcher delivers, and the cursor the planner keeps over `run_events`.

use super::model::{JobId, Millis, RunId};
use serde::{Deserialize, Serialize};

/// How an alert travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertChannel {
    /// An e-mail over SMTP.
    Email,
    /// An HTTP POST of a JSON body.
    Webhook,
}

impl AlertChannel {
    /// The stored and displayed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertChannel::Email => "email",
            AlertChannel::Webhook => "webhook",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<AlertChannel> {
        match s {
            "email" => Some(AlertChannel::Email),
            "webhook" => Some(AlertChannel::Webhook),
            _ => None,
        }
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AlertStatus {
    /// Not delivered yet (maybe retrying).
    Pending,
    /// Delivered (the receiver accepted it).
    Delivered,
    /// Given up on after its last attempt, or undeliverable (no SMTP server configured).
    Failed,
}

impl AlertStatus {
    /// The stored and displayed spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "PENDING",
            AlertStatus::Delivered => "DELIVERED",
            AlertStatus::Failed => "FAILED",
        }
    }

    /// Parses the spelling, in any case.
    pub fn parse(s: &str) -> Option<AlertStatus> {
        match s.to_ascii_uppercase().as_str() {
            "PENDING" => Some(AlertStatus::Pending),
            "DELIVERED" => Some(AlertStatus::Delivered),
            "FAILED" => Some(AlertStatus::Failed),
            _ => None,
        }
    }
}

/// An alert to record.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Recording the same key twice records it once (deriving alerts is replayed after a crash).
    pub dedupe_key: String,
    /// The run it is about.
    pub run_id: RunId,
    /// Its job (`None` for `runs/submit` runs).
    pub job_id: Option<JobId>,
    /// The task, for task-level alerts.
    pub task_key: Option<String>,
    /// `on_start`, `on_success`, `on_failure` or `on_duration_warning_threshold_exceeded`.
    pub event: String,
    /// How it travels.
    pub channel: AlertChannel,
    /// The e-mail address or webhook URL.
    pub destination: String,
    /// What is sent (the webhook body; the facts an e-mail is written from).
    pub payload: serde_json::Value,
    /// When it was derived; its first attempt is due then.
    pub created_time: Millis,
}

/// A recorded alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRecord {
    /// Its id (also the idempotency id receivers see).
    pub alert_id: i64,
    /// The run it is about.
    pub run_id: RunId,
    /// Its job.
    pub job_id: Option<JobId>,
    /// The task, for task-level alerts.
    pub task_key: Option<String>,
    /// The event (`on_failure`, ...).
    pub event: String,
    /// How it travels.
    pub channel: AlertChannel,
    /// The e-mail address or webhook URL.
    pub destination: String,
    /// What is sent.
    pub payload: serde_json::Value,
    /// Where it stands.
    pub status: AlertStatus,
    /// Delivery attempts made.
    pub attempts: u32,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
    /// When the next attempt is due (pending alerts).
    pub next_attempt_time: Millis,
    /// When it was recorded.
    pub created_time: Millis,
    /// When its status or attempts last changed.
    pub updated_time: Millis,
}

/// The result of one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlertAttempt {
    /// The receiver accepted it.
    Delivered,
    /// It failed; try again at `at`.
    Retry {
        /// When the next attempt is due.
        at: Millis,
        /// What went wrong.
        error: String,
    },
    /// It failed for good.
    Failed {
        /// What went wrong.
        error: String,
    },
}

/// Moves a consumer's cursor over `run_events` in the transaction that records what it derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CursorMove {
    /// The consumer (`alerts`).
    pub consumer: String,
    /// Where the consumer read from; the move fails if the cursor is elsewhere now.
    pub from: i64,
    /// The last event it handled.
    pub to: i64,
}

/// Filter of [`Store::list_alerts`](super::Store::list_alerts); newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AlertFilter {
    /// Only alerts about runs of this job.
    pub job_id: Option<JobId>,
    /// Only alerts about this run.
    pub run_id: Option<RunId>,
    /// Only alerts in this status.
    pub status: Option<AlertStatus>,
    /// At most this many (0 means 100).
    pub limit: u32,
}
