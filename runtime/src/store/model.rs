//! The records Weir keeps: jobs, modules, runs, task runs, and their Lakeflow states.
//!
//! These are the durable shapes shared by the store backends, the engine and the API. Times are
//! milliseconds since the Unix epoch.

use crate::spec::JobSettings;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A job id.
pub type JobId = i64;
/// A run id. Job runs and task runs share one id space, as in the Jobs API.
pub type RunId = i64;
/// Milliseconds since the Unix epoch.
pub type Millis = i64;

/// A stored job.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    /// The job id.
    pub job_id: JobId,
    /// When the job was created.
    pub created_time: Millis,
    /// The job's settings as last deployed.
    pub settings: JobSettings,
}

/// A stored module blob, content-addressed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleBlob {
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size of the wasm in bytes.
    pub size: u64,
    /// When it was first uploaded.
    pub created_time: Millis,
}

/// A named version of a module.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleVersion {
    /// The module name.
    pub name: String,
    /// 1, 2, 3... per name.
    pub version: u32,
    /// The blob this version points at.
    pub digest: String,
    /// Size of the wasm in bytes.
    pub size: u64,
    /// When this version was pushed.
    pub created_time: Millis,
}

/// Lakeflow's life cycle states for runs and task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LifeCycleState {
    /// Waiting for a concurrency slot of its job.
    Queued,
    /// Admitted; about to start (a run), or ready and waiting for an executor slot (a task).
    Pending,
    /// Running.
    Running,
    /// Stopping its running tasks.
    Terminating,
    /// Finished; `result_state` says how.
    Terminated,
    /// Not run (a run over the concurrency limit with queueing off).
    Skipped,
    /// Weir itself failed to run it.
    InternalError,
    /// A task waiting for its dependencies.
    Blocked,
    /// A task waiting for its next attempt.
    WaitingForRetry,
}

impl LifeCycleState {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "QUEUED",
            Self::Pending => "PENDING",
            Self::Running => "RUNNING",
            Self::Terminating => "TERMINATING",
            Self::Terminated => "TERMINATED",
            Self::Skipped => "SKIPPED",
            Self::InternalError => "INTERNAL_ERROR",
            Self::Blocked => "BLOCKED",
            Self::WaitingForRetry => "WAITING_FOR_RETRY",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "QUEUED" => Self::Queued,
            "PENDING" => Self::Pending,
            "RUNNING" => Self::Running,
            "TERMINATING" => Self::Terminating,
            "TERMINATED" => Self::Terminated,
            "SKIPPED" => Self::Skipped,
            "INTERNAL_ERROR" => Self::InternalError,
            "BLOCKED" => Self::Blocked,
            "WAITING_FOR_RETRY" => Self::WaitingForRetry,
            _ => return None,
        })
    }

    /// Whether nothing more will happen (terminated, skipped or internal error).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Terminated | Self::Skipped | Self::InternalError)
    }
}

/// Lakeflow's result states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultState {
    /// Succeeded.
    Success,
    /// A run whose leaf tasks succeeded although some other task failed.
    SuccessWithFailures,
    /// Failed.
    Failed,
    /// Stopped by a timeout.
    Timedout,
    /// Canceled by a user.
    Canceled,
    /// Not run: its run-if condition or a condition branch excluded it.
    Excluded,
    /// Not run: an upstream task failed.
    UpstreamFailed,
    /// Not run: an upstream task was canceled.
    UpstreamCanceled,
    /// A run skipped because its job was at `max_concurrent_runs` with queueing off.
    MaximumConcurrentRunsReached,
}

impl ResultState {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "SUCCESS",
            Self::SuccessWithFailures => "SUCCESS_WITH_FAILURES",
            Self::Failed => "FAILED",
            Self::Timedout => "TIMEDOUT",
            Self::Canceled => "CANCELED",
            Self::Excluded => "EXCLUDED",
            Self::UpstreamFailed => "UPSTREAM_FAILED",
            Self::UpstreamCanceled => "UPSTREAM_CANCELED",
            Self::MaximumConcurrentRunsReached => "MAXIMUM_CONCURRENT_RUNS_REACHED",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SUCCESS" => Self::Success,
            "SUCCESS_WITH_FAILURES" => Self::SuccessWithFailures,
            "FAILED" => Self::Failed,
            "TIMEDOUT" => Self::Timedout,
            "CANCELED" => Self::Canceled,
            "EXCLUDED" => Self::Excluded,
            "UPSTREAM_FAILED" => Self::UpstreamFailed,
            "UPSTREAM_CANCELED" => Self::UpstreamCanceled,
            "MAXIMUM_CONCURRENT_RUNS_REACHED" => Self::MaximumConcurrentRunsReached,
            _ => return None,
        })
    }

    /// Whether a run with this result counts as succeeded (`jobs run --wait` exits 0).
    pub fn is_success(self) -> bool {
        matches!(self, Self::Success | Self::SuccessWithFailures)
    }
}

/// What started a run (the Jobs API `trigger` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TriggerType {
    /// A cron schedule or a periodic trigger.
    Periodic,
    /// `run-now` or `runs/submit`.
    OneTime,
    /// Files arrived.
    FileArrival,
    /// Tables were updated.
    Table,
    /// Continuous mode.
    Continuous,
    /// A `run_job_task` of another job.
    RunJobTask,
}

impl TriggerType {
    /// The API spelling (`ONE_TIME`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Periodic => "PERIODIC",
            Self::OneTime => "ONE_TIME",
            Self::FileArrival => "FILE_ARRIVAL",
            Self::Table => "TABLE",
            Self::Continuous => "CONTINUOUS",
            Self::RunJobTask => "RUN_JOB_TASK",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "PERIODIC" => Self::Periodic,
            "ONE_TIME" => Self::OneTime,
            "FILE_ARRIVAL" => Self::FileArrival,
            "TABLE" => Self::Table,
            "CONTINUOUS" => Self::Continuous,
            "RUN_JOB_TASK" => Self::RunJobTask,
            _ => return None,
        })
    }

    /// The value of `{{job.trigger.type}}` and `WEIR_TRIGGER_TYPE` (Lakeflow's lowercase names).
    pub fn reference_value(self) -> &'static str {
        match self {
            Self::Periodic => "periodic",
            Self::OneTime => "onetime",
            Self::FileArrival => "file_arrival",
            Self::Table => "table",
            Self::Continuous => "continuous",
            Self::RunJobTask => "run_job_task",
        }
    }
}

/// The task plan a run executes: the job's settings at the time the run was created, with every
/// module reference pinned to a digest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunPlan {
    /// The settings snapshot.
    pub settings: JobSettings,
    /// Task key (or `<for_each key>/<inner key>`) -> `sha256:<hex>` of its wasm module.
    pub modules: BTreeMap<String, String>,
}

/// One entry of a run's repair history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepairRecord {
    /// The repair id (the first repair is 1).
    pub repair_id: i64,
    /// When the repair was requested.
    pub start_time: Millis,
    /// When the repaired run ended again.
    pub end_time: Option<Millis>,
    /// The tasks rerun.
    pub task_keys: Vec<String>,
    /// The task run ids created for them.
    pub task_run_ids: Vec<RunId>,
    /// The result after the repair (once ended).
    pub result_state: Option<ResultState>,
}

/// Where a child run of a `run_job_task` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent job run.
    pub run_id: RunId,
    /// The parent's `run_job_task` task run.
    pub task_run_id: RunId,
    /// Nesting depth of this child (1 for a direct child).
    pub depth: u32,
}

/// A job run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// The run id.
    pub run_id: RunId,
    /// The job, or `None` for a one-time `runs/submit` run.
    pub job_id: Option<JobId>,
    /// The job name at creation (or the submitted run name).
    pub run_name: String,
    /// Life cycle state.
    pub life_cycle_state: LifeCycleState,
    /// Result, once final.
    pub result_state: Option<ResultState>,
    /// Human-readable detail of the state.
    pub state_message: String,
    /// What started the run.
    pub trigger: TriggerType,
    /// The trigger's payload (arrived files, updated tables...), `null` for manual runs.
    pub trigger_info: serde_json::Value,
    /// Effective job parameters: defaults merged with the run's overrides.
    pub job_parameters: BTreeMap<String, String>,
    /// The parameters the caller passed explicitly.
    pub overriding_parameters: BTreeMap<String, String>,
    /// What the run executes.
    pub plan: RunPlan,
    /// When the run was accepted.
    pub created_time: Millis,
    /// When it left the queue and started.
    pub start_time: Option<Millis>,
    /// When it ended.
    pub end_time: Option<Millis>,
    /// Repairs, oldest first.
    pub repair_history: Vec<RepairRecord>,
    /// A cancel was requested and not yet carried out.
    pub cancel_requested: bool,
    /// Set for runs started by a `run_job_task`.
    pub parent: Option<ParentRef>,
    /// The caller's idempotency token, if any.
    pub idempotency_token: Option<String>,
}

impl RunRecord {
    /// The latest repair id, 0 when never repaired.
    pub fn repair_count(&self) -> i64 {
        self.repair_history.last().map_or(0, |r| r.repair_id)
    }
}

/// A task run: one attempt of one task (or of one for-each iteration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRunRecord {
    /// The task run id.
    pub task_run_id: RunId,
    /// The job run it belongs to.
    pub run_id: RunId,
    /// The task key (for iterations, the inner task's key).
    pub task_key: String,
    /// 0 for the first attempt, 1 for the first retry.
    pub attempt_number: u32,
    /// 0 for the original execution, n for the task runs created by repair n.
    pub repair_id: i64,
    /// For a for-each iteration: the for-each task run and the iteration index.
    pub iteration: Option<Iteration>,
    /// Life cycle state.
    pub life_cycle_state: LifeCycleState,
    /// Result, once terminated.
    pub result_state: Option<ResultState>,
    /// Human-readable detail (the error of a failed attempt).
    pub state_message: String,
    /// When the task became ready (its dependencies were met).
    pub ready_time: Option<Millis>,
    /// When the attempt started.
    pub start_time: Option<Millis>,
    /// When the attempt ended.
    pub end_time: Option<Millis>,
    /// When the next attempt is due (WAITING_FOR_RETRY).
    pub retry_at: Option<Millis>,
    /// The module digest this attempt runs (wasm tasks).
    pub module_digest: Option<String>,
    /// Exit code of the wasm command, when it exited.
    pub exit_code: Option<i32>,
    /// Outcome of a condition task: "true" or "false".
    pub outcome: Option<String>,
    /// Task values the attempt set.
    pub values: BTreeMap<String, serde_json::Value>,
    /// The resolved parameters, env and condition operands of this attempt.
    pub resolved: Option<serde_json::Value>,
    /// The child run of a `run_job_task`.
    pub child_run_id: Option<RunId>,
}

impl TaskRunRecord {
    /// A fresh BLOCKED task run: attempt 0 of a task (or of a for-each iteration) in an
    /// execution (0 = original, n = repair n).
    pub fn blocked(
        task_run_id: RunId,
        run_id: RunId,
        task_key: &str,
        repair_id: i64,
        iteration: Option<Iteration>,
    ) -> TaskRunRecord {
        TaskRunRecord {
            task_run_id,
            run_id,
            task_key: task_key.to_string(),
            attempt_number: 0,
            repair_id,
            iteration,
            life_cycle_state: LifeCycleState::Blocked,
            result_state: None,
            state_message: String::new(),
            ready_time: None,
            start_time: None,
            end_time: None,
            retry_at: None,
            module_digest: None,
            exit_code: None,
            outcome: None,
            values: BTreeMap::new(),
            resolved: None,
            child_run_id: None,
        }
    }

    /// The next attempt after this final one, waiting for its retry time.
    pub fn next_attempt(&self, task_run_id: RunId, retry_at: Millis) -> TaskRunRecord {
        TaskRunRecord {
            attempt_number: self.attempt_number + 1,
            life_cycle_state: LifeCycleState::WaitingForRetry,
            state_message: format!("retrying after: {}", self.state_message),
            ready_time: self.ready_time,
            retry_at: Some(retry_at),
            ..TaskRunRecord::blocked(
                task_run_id,
                self.run_id,
                &self.task_key,
                self.repair_id,
                self.iteration,
            )
        }
    }

    /// Whether this task run has a final state.
    pub fn is_final(&self) -> bool {
        self.life_cycle_state.is_final()
    }
}

/// A for-each iteration's place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Iteration {
    /// The for-each task run that owns the iteration.
    pub parent_task_run_id: RunId,
    /// 0-based index into the inputs.
    pub index: u32,
}

/// Captured output of a task run.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TaskLogs {
    /// Captured stdout (up to the cap, then a truncation mark).
    pub stdout: String,
    /// Captured stderr (up to the cap, then a truncation mark).
    pub stderr: String,
    /// Whether either stream was cut.
    pub truncated: bool,
}

/// A run with all its task runs (every attempt, every repair, every iteration).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSnapshot {
    /// The run.
    pub run: RunRecord,
    /// Its task runs, ordered by task run id.
    pub tasks: Vec<TaskRunRecord>,
}

/// The Jobs API `run_type` of a run: what created it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    /// A run of a stored job (run-now, a trigger, a schedule).
    JobRun,
    /// The child run of a `run_job_task`.
    WorkflowRun,
    /// A one-time run of `runs/submit`.
    SubmitRun,
}

impl RunKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::JobRun => "JOB_RUN",
            Self::WorkflowRun => "WORKFLOW_RUN",
            Self::SubmitRun => "SUBMIT_RUN",
        }
    }

    /// Parses the API spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "JOB_RUN" => Self::JobRun,
            "WORKFLOW_RUN" => Self::WorkflowRun,
            "SUBMIT_RUN" => Self::SubmitRun,
            _ => return None,
        })
    }

    /// The kind of a run.
    pub fn of(run: &RunRecord) -> Self {
        match (run.job_id, run.parent) {
            (None, _) => Self::SubmitRun,
            (_, Some(_)) => Self::WorkflowRun,
            _ => Self::JobRun,
        }
    }
}
