//! The job spec types: the Databricks Jobs API 2.2 `JobSettings` object and the parts of it Weir
//! runs. Field names are the Jobs API's; every struct refuses unknown fields.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A job's settings: what `jobs/create` takes and `jobs/get` returns under `settings`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSettings {
    /// Unique job name; `weir deploy` updates the job with this name.
    pub name: String,
    /// Free text shown with the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Free-form labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// How many runs of this job may be active at once (default 1; 0 skips every run).
    #[serde(default = "default_max_concurrent_runs")]
    pub max_concurrent_runs: u32,
    /// Whether runs over `max_concurrent_runs` wait (true, the default) or are skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<QueueSettings>,
    /// Whole-run limit in seconds; 0 means none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout_seconds: u64,
    /// Job parameters, overridable per run.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<JobParameter>,
    /// Event trigger: at most one of file arrival, table update or periodic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<TriggerSettings>,
    /// Quartz cron schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<CronSchedule>,
    /// Continuous mode: a new run as soon as the last one ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous: Option<Continuous>,
    /// Health rules (alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRules>,
    /// E-mail alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notifications: Option<EmailNotifications>,
    /// Webhook alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_notifications: Option<WebhookNotifications>,
    /// Alert filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_settings: Option<NotificationSettings>,
    /// Accepted for Jobs API compatibility; Weir jobs are always multi-task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// The DAG.
    pub tasks: Vec<Task>,
}

fn default_max_concurrent_runs() -> u32 {
    1
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

impl JobSettings {
    /// Whether runs over the concurrency limit wait in a queue (the default) or are skipped.
    pub fn queue_enabled(&self) -> bool {
        self.queue.as_ref().is_none_or(|q| q.enabled)
    }

    /// The task with this key.
    pub fn task(&self, key: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.task_key == key)
    }
}

/// `queue: {enabled: bool}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueSettings {
    /// Runs over the limit wait (true) or are skipped (false).
    pub enabled: bool,
}

/// A job parameter with its default value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobParameter {
    /// Parameter name, referenced as `{{job.parameters.<name>}}`.
    pub name: String,
    /// Default value; may use `{{job.*}}` references.
    pub default: String,
}

/// `PAUSED` or `UNPAUSED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PauseStatus {
    /// The trigger fires.
    #[default]
    Unpaused,
    /// The trigger does not fire.
    Paused,
}

/// `trigger:` — one event trigger and its pause status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerSettings {
    /// Fire on new files under a URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_arrival: Option<FileArrivalTrigger>,
    /// Fire on change events for tables.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_update: Option<TableUpdateTrigger>,
    /// Fire every `interval` `unit`s.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub periodic: Option<PeriodicTrigger>,
    /// Whether the trigger fires.
    #[serde(default)]
    pub pause_status: PauseStatus,
}

/// `file_arrival:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileArrivalTrigger {
    /// `file:///dir/` or `s3://bucket/prefix/`.
    pub url: String,
    /// Minimum time between two triggered runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_time_between_triggers_seconds: u64,
    /// Quiet time after the last change before a run fires.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_after_last_change_seconds: u64,
    /// Weir addition: only files whose path relative to `url` matches this glob count (`*`
    /// stays within a directory, `**` crosses them, `{a,b}` alternates), e.g. `**/*.csv`.
    /// Hidden and temporary files are ignored whatever the glob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_glob: Option<String>,
    /// Weir addition: how often an `s3://` URL is listed (and a local directory scanned when
    /// the node cannot watch it), in seconds; default: the node's
    /// `file_arrival_list_interval_seconds` (5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_interval_seconds: Option<u64>,
}

/// `table_update:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableUpdateTrigger {
    /// Fully qualified table names (`catalog.schema.table`).
    pub table_names: Vec<String>,
    /// `ANY_UPDATED` (default) or `ALL_UPDATED`.
    #[serde(default)]
    pub condition: TableUpdateCondition,
    /// Minimum time between two triggered runs.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_time_between_triggers_seconds: u64,
    /// Quiet time after the last change before a run fires.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub wait_after_last_change_seconds: u64,
}

/// When a table-update trigger fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TableUpdateCondition {
    /// Any listed table changed.
    #[default]
    AnyUpdated,
    /// Every listed table changed since the last run.
    AllUpdated,
}

/// `periodic:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodicTrigger {
    /// How many units between runs (at least 1).
    pub interval: u64,
    /// The unit of `interval`.
    pub unit: PeriodicUnit,
}

/// Unit of a periodic trigger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum PeriodicUnit {
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
}

/// `schedule:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CronSchedule {
    /// Quartz cron expression (with a seconds field).
    pub quartz_cron_expression: String,
    /// IANA time zone; UTC by default.
    #[serde(default = "default_timezone")]
    pub timezone_id: String,
    /// Whether the schedule fires.
    #[serde(default)]
    pub pause_status: PauseStatus,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// `continuous:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Continuous {
    /// Whether continuous runs start.
    #[serde(default)]
    pub pause_status: PauseStatus,
}

/// `health: {rules: [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthRules {
    /// The rules; any broken rule raises a duration warning.
    #[serde(default)]
    pub rules: Vec<HealthRule>,
}

/// One health rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthRule {
    /// The metric, e.g. `RUN_DURATION_SECONDS`.
    pub metric: HealthMetric,
    /// The comparison, e.g. `GREATER_THAN`.
    pub op: HealthOperator,
    /// The threshold.
    pub value: i64,
}

/// A health metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthMetric {
    /// Wall time of a run.
    RunDurationSeconds,
}

/// A health comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HealthOperator {
    /// metric > value.
    GreaterThan,
}

/// E-mail recipients per event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct EmailNotifications {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_start: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_duration_warning_threshold_exceeded: Vec<String>,
    /// Accepted by the parser as the Jobs API has it; refused by validation (no streaming).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_streaming_backlog_exceeded: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alert_for_skipped_runs: bool,
}

/// Webhook destinations per event.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct WebhookNotifications {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_start: Vec<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_success: Vec<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_failure: Vec<Webhook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_duration_warning_threshold_exceeded: Vec<Webhook>,
    /// Accepted by the parser as the Jobs API has it; refused by validation (no streaming).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_streaming_backlog_exceeded: Vec<Webhook>,
}

/// One webhook destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// The URL that receives a POST per event.
    pub url: String,
}

/// Alert filters.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct NotificationSettings {
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alert_for_skipped_runs: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alert_for_canceled_runs: bool,
}

/// Task-level alert filters (the job-level ones plus `alert_on_last_attempt`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct TaskNotificationSettings {
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alert_for_skipped_runs: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alert_for_canceled_runs: bool,
    /// No `on_start` / `on_failure` alert for an attempt that will be retried.
    #[serde(default, skip_serializing_if = "is_false")]
    pub alert_on_last_attempt: bool,
}

/// One task of the DAG: exactly one of `wasm_task`, `condition_task`, `for_each_task`,
/// `run_job_task`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// Unique key within the job.
    pub task_key: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Upstream tasks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<TaskDependency>,
    /// When this task runs given its dependencies' outcomes.
    #[serde(default)]
    pub run_if: RunIf,
    /// A WebAssembly task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm_task: Option<WasmTask>,
    /// An if/else condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition_task: Option<ConditionTask>,
    /// A loop over inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each_task: Option<Box<ForEachTask>>,
    /// A run of another job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_job_task: Option<RunJobTask>,
    /// Retries after a failure; -1 = unlimited.
    #[serde(default, skip_serializing_if = "is_zero_i32")]
    pub max_retries: i32,
    /// Wait between a failed attempt and the next one.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_retry_interval_millis: u64,
    /// Whether a timed-out attempt is retried.
    #[serde(default, skip_serializing_if = "is_false")]
    pub retry_on_timeout: bool,
    /// Per-attempt limit in seconds; 0 means none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout_seconds: u64,
    /// Task-level e-mail alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_notifications: Option<EmailNotifications>,
    /// Task-level webhook alerts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_notifications: Option<WebhookNotifications>,
    /// Task-level alert filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_settings: Option<TaskNotificationSettings>,
    /// Task-level health rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRules>,
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// The kind of a task, borrowed from whichever field is set.
#[derive(Debug, Clone, Copy)]
pub enum TaskKind<'a> {
    /// `wasm_task`.
    Wasm(&'a WasmTask),
    /// `condition_task`.
    Condition(&'a ConditionTask),
    /// `for_each_task`.
    ForEach(&'a ForEachTask),
    /// `run_job_task`.
    RunJob(&'a RunJobTask),
}

impl Task {
    /// The task's kind; `None` when no kind (or more than one) is set, which validation refuses.
    pub fn kind(&self) -> Option<TaskKind<'_>> {
        let kinds = [
            self.wasm_task.as_ref().map(TaskKind::Wasm),
            self.condition_task.as_ref().map(TaskKind::Condition),
            self.for_each_task.as_deref().map(TaskKind::ForEach),
            self.run_job_task.as_ref().map(TaskKind::RunJob),
        ];
        let mut set = kinds.into_iter().flatten();
        match (set.next(), set.next()) {
            (Some(k), None) => Some(k),
            _ => None,
        }
    }
}

/// An edge of the DAG.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskDependency {
    /// The upstream task.
    pub task_key: String,
    /// For a condition upstream: the outcome ("true"/"false") this edge needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

/// Lakeflow's run-if conditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RunIf {
    /// Every dependency succeeded (the default).
    #[default]
    AllSuccess,
    /// At least one dependency succeeded.
    AtLeastOneSuccess,
    /// No dependency failed and at least one ran.
    NoneFailed,
    /// Every dependency finished, whatever its result.
    AllDone,
    /// At least one dependency failed.
    AtLeastOneFailed,
    /// Every dependency failed.
    AllFailed,
}

impl RunIf {
    /// The spelling used in specs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RunIf::AllSuccess => "ALL_SUCCESS",
            RunIf::AtLeastOneSuccess => "AT_LEAST_ONE_SUCCESS",
            RunIf::NoneFailed => "NONE_FAILED",
            RunIf::AllDone => "ALL_DONE",
            RunIf::AtLeastOneFailed => "AT_LEAST_ONE_FAILED",
            RunIf::AllFailed => "ALL_FAILED",
        }
    }
}

/// `wasm_task:` — run a WASI command module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmTask {
    /// A path (pushed by `weir deploy`), `sha256:<hex>`, or `name[@version]`.
    pub module: String,
    /// argv after the task key; `{{references}}` are resolved at task start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<String>,
    /// Extra environment; values may use `{{references}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// Linear memory limit in MiB (default 256).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_mb: Option<u32>,
    /// Host directories preopened for the task.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

/// Default linear memory limit of a wasm task, in MiB.
pub const DEFAULT_MEMORY_LIMIT_MB: u32 = 256;

impl WasmTask {
    /// The memory limit in MiB, with the default applied.
    pub fn memory_limit_mb(&self) -> u32 {
        self.memory_limit_mb.unwrap_or(DEFAULT_MEMORY_LIMIT_MB)
    }
}

/// A host directory preopened at `path` inside the task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mount {
    /// `file:///abs/dir` (the API) or a path relative to the spec file (`weir deploy`).
    pub source: String,
    /// Absolute guest path, e.g. `/lake`.
    pub path: String,
    /// Mount read-only (default false).
    #[serde(default)]
    pub read_only: bool,
}

/// `condition_task:` — compares two strings (or numbers) and yields outcome "true"/"false".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionTask {
    /// The comparison.
    pub op: ConditionOp,
    /// Left operand; may use `{{references}}`.
    pub left: String,
    /// Right operand; may use `{{references}}`.
    pub right: String,
}

/// Condition operators (Lakeflow's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[allow(missing_docs)]
pub enum ConditionOp {
    EqualTo,
    NotEqual,
    GreaterThan,
    GreaterThanOrEqual,
    LessThan,
    LessThanOrEqual,
}

/// `for_each_task:` — runs `task` once per element of `inputs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForEachTask {
    /// A JSON array, literal or from a reference such as `{{tasks.x.values.files}}`.
    pub inputs: String,
    /// Iterations that may run at once (default 1).
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// The task run per input; `{{input}}` is the element.
    pub task: Task,
}

fn default_concurrency() -> u32 {
    1
}

/// `run_job_task:` — triggers a run of another job and waits for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunJobTask {
    /// The job to run, by id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<i64>,
    /// The job to run, by name (Weir addition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_name: Option<String>,
    /// Parameters for the child run; values may use `{{references}}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub job_parameters: BTreeMap<String, String>,
}
