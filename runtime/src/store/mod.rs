//! Durable state: the [`Store`] trait and its backends.
//!
//! The store is built for several nodes sharing one database from the start:
//! - a run is coordinated by one node at a time, which holds a **lease** on it
//!   ([`Store::claim_runs`], [`Store::renew_leases`]); a node that stops renewing loses its runs
//!   to another node;
//! - every write of a run's progress is **fenced** by that lease ([`Store::write_run`] fails with
//!   [`StoreError::LeaseLost`] when another node owns the run now) and is an idempotent upsert of
//!   whole rows, so replaying a write changes nothing;
//! - admission (`max_concurrent_runs`, queueing) and idempotency tokens are decided inside the
//!   store's transactions, so two nodes can never both admit or both create a run.
//!
//! The same test suite ([`suite`]) runs against every backend.

pub mod access;
pub mod alerts;
pub mod model;
pub mod sqlite;
#[doc(hidden)]
pub mod suite;
pub mod triggers;

pub use access::*;
pub use alerts::*;
pub use model::*;
pub use triggers::*;

use crate::spec::JobSettings;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} does not exist")]
    NotFound(String),
    /// A unique name is taken (e.g. a job name).
    #[error("{0}")]
    Conflict(String),
    /// The operation does not fit the current state (e.g. repairing a running run).
    #[error("{0}")]
    InvalidState(String),
    /// The run is owned by another node now; the caller must stop coordinating it.
    #[error("run {run_id}: lease lost to another node")]
    LeaseLost {
        /// The run whose lease was lost.
        run_id: RunId,
    },
    /// The backend failed (I/O, corruption, connection).
    #[error("state store failure: {0}")]
    Backend(String),
}

/// Result of store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// Concurrency admission of a new run, from its job's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The job's `max_concurrent_runs`.
    pub max_concurrent_runs: u32,
    /// The job's `queue.enabled`.
    pub queue_enabled: bool,
}

/// A run to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRun {
    /// The job, or `None` for `runs/submit`.
    pub job_id: Option<JobId>,
    /// Display name.
    pub run_name: String,
    /// What started it.
    pub trigger: TriggerType,
    /// The trigger payload.
    pub trigger_info: serde_json::Value,
    /// Effective parameters (defaults merged with overrides).
    pub job_parameters: BTreeMap<String, String>,
    /// The overrides the caller passed.
    pub overriding_parameters: BTreeMap<String, String>,
    /// What to execute.
    pub plan: RunPlan,
    /// Set for child runs of a `run_job_task`.
    pub parent: Option<ParentRef>,
    /// Deduplication: a second create with the same token returns the first run.
    pub idempotency_token: Option<String>,
    /// Concurrency admission; `None` admits at once (submitted runs, child runs).
    pub admission: Option<Admission>,
    /// Creation time.
    pub now: Millis,
    /// For triggered runs: trigger state and seen items committed in the run's transaction
    /// (also when the idempotency token returns an existing run).
    pub trigger_commit: Option<TriggerCommit>,
}

/// What [`Store::create_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCreated {
    /// The run id (of the existing run when the idempotency token matched).
    pub run_id: RunId,
    /// False when an earlier run with the same idempotency token was returned.
    pub created: bool,
    /// The state it was created in: PENDING (admitted), QUEUED, or SKIPPED.
    pub life_cycle_state: LifeCycleState,
}

/// The run-level fields a coordinator changes as a run progresses.
#[derive(Debug, Clone, PartialEq)]
pub struct RunProgress {
    /// Life cycle state.
    pub life_cycle_state: LifeCycleState,
    /// Result, once final.
    pub result_state: Option<ResultState>,
    /// Detail of the state.
    pub state_message: String,
    /// When the run started.
    pub start_time: Option<Millis>,
    /// When the run ended.
    pub end_time: Option<Millis>,
    /// Repair history (the coordinator fills in end times and results).
    pub repair_history: Vec<RepairRecord>,
}

/// One atomic, fenced write of a run's progress.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunWrite {
    /// The run.
    pub run_id: RunId,
    /// The node that holds the run's lease; the write fails if it no longer does.
    pub node: String,
    /// New run-level fields, when they changed (this also records a run event).
    pub progress: Option<RunProgress>,
    /// Task runs to insert or replace (by `task_run_id`).
    pub tasks: Vec<TaskRunRecord>,
    /// Logs of finished task runs.
    pub logs: Vec<(RunId, TaskLogs)>,
    /// The run is final: drop the lease.
    pub release: bool,
}

/// A repair to start on a final run.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRepair {
    /// The run to repair.
    pub run_id: RunId,
    /// When given, must equal the run's latest repair id (0 if never repaired).
    pub latest_repair_id: Option<i64>,
    /// Tasks to rerun (top-level task keys).
    pub task_keys: Vec<String>,
    /// Parameter overrides merged into the run's parameters.
    pub job_parameters: BTreeMap<String, String>,
    /// Request time.
    pub now: Millis,
}

/// What [`Store::request_cancel`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelOutcome {
    /// The run was queued or pending without a coordinator; it is now terminated as canceled.
    Canceled,
    /// The run is being coordinated; its coordinator will stop it.
    Requested,
    /// The run had already ended; nothing changed.
    AlreadyFinal,
}

/// What a lease renewal found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaseRenewal {
    /// Runs this node still holds.
    pub held: Vec<RunId>,
    /// Held runs with a pending cancel request.
    pub cancel_requested: Vec<RunId>,
}

/// A page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Items to skip.
    pub offset: u64,
    /// Items to return at most.
    pub limit: u64,
}

/// Filter of [`Store::list_runs`]. Runs come newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunFilter {
    /// Only runs of this job.
    pub job_id: Option<JobId>,
    /// Only runs that are queued, pending, running or terminating.
    pub active_only: bool,
    /// Only final runs.
    pub completed_only: bool,
    /// Only runs created at or after this time.
    pub start_time_from: Option<Millis>,
    /// Only runs created at or before this time.
    pub start_time_to: Option<Millis>,
    /// Paging (offset, limit).
    pub offset: u64,
    /// Paging (limit; 0 means 25).
    pub limit: u64,
    /// Only runs of this kind.
    pub run_type: Option<RunKind>,
    /// Only runs a principal may see: of these jobs, or run as or created by these principals.
    pub visible_to: Option<RunVisibility>,
}

/// The runs a principal may see (see [`RunFilter::visible_to`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunVisibility {
    /// Jobs it may view.
    pub job_ids: Vec<JobId>,
    /// Itself and its groups: runs recorded as run as or created by one of them.
    pub principals: Vec<String>,
}

/// A run state change, recorded in the same transaction as the change (an outbox that alerts and
/// waiters read, on any node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunEvent {
    /// Increasing sequence number.
    pub seq: i64,
    /// The run.
    pub run_id: RunId,
    /// Its job.
    pub job_id: Option<JobId>,
    /// The state it entered.
    pub life_cycle_state: LifeCycleState,
    /// Its result, when final.
    pub result_state: Option<ResultState>,
    /// When.
    pub time: Millis,
}

/// Durable state of Weir. Every method is one transaction.
///
/// # Contract
/// - Writes are atomic: after a crash a write is either fully there or not at all.
/// - A write acknowledged by `Ok` survives `kill -9` of the process.
/// - Methods are safe to call concurrently from many tasks and many nodes.
#[async_trait]
pub trait Store: AccessStore + Send + Sync + 'static {
    // ---- jobs -------------------------------------------------------------------------------

    /// Creates a job. `Conflict` if a job with the same name exists.
    async fn create_job(&self, settings: &JobSettings, now: Millis) -> StoreResult<JobId>;
    /// A job by id.
    async fn get_job(&self, job_id: JobId) -> StoreResult<Option<JobRecord>>;
    /// A job by exact name.
    async fn find_job(&self, name: &str) -> StoreResult<Option<JobRecord>>;
    /// Jobs ordered by id, optionally only the one with this exact name; the bool says whether
    /// more jobs follow the page.
    async fn list_jobs(
        &self,
        page: Page,
        name: Option<&str>,
    ) -> StoreResult<(Vec<JobRecord>, bool)>;
    /// Replaces a job's settings. `NotFound`, or `Conflict` if the new name is another job's.
    async fn update_job(&self, job_id: JobId, settings: &JobSettings) -> StoreResult<()>;
    /// Deletes a job (its runs stay in the history) and its trigger state. `NotFound` if absent.
    async fn delete_job(&self, job_id: JobId) -> StoreResult<()>;
    /// The ids of jobs created, updated or deleted from now on, as their changes commit (on a
    /// store shared by several nodes, also the changes other nodes make). A receiver that lags
    /// behind gets `Lagged` and must look at every job again.
    fn job_changes(&self) -> tokio::sync::broadcast::Receiver<JobId>;

    // ---- modules ----------------------------------------------------------------------------

    /// Records a module blob (idempotent) and, when `name` is given, a new version of that name
    /// unless its latest version already has this digest (then that version is returned).
    async fn put_module(
        &self,
        blob: &ModuleBlob,
        name: Option<&str>,
    ) -> StoreResult<Option<ModuleVersion>>;
    /// A blob by `sha256:<hex>` digest.
    async fn get_module_blob(&self, digest: &str) -> StoreResult<Option<ModuleBlob>>;
    /// A named version; `None` for the version means the latest.
    async fn get_module_version(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ModuleVersion>>;
    /// All versions (of one name, or of all), ordered by name then version.
    async fn list_module_versions(&self, name: Option<&str>) -> StoreResult<Vec<ModuleVersion>>;

    // ---- runs -------------------------------------------------------------------------------

    /// Creates a run with one BLOCKED task run (attempt 0) per top-level task of its plan,
    /// deciding admission: PENDING if the job is under `max_concurrent_runs` and nothing is
    /// queued before it, else QUEUED (queue on) or SKIPPED with MAXIMUM_CONCURRENT_RUNS_REACHED
    /// (queue off, or a limit of 0). A known idempotency token returns the existing run.
    async fn create_run(&self, new: NewRun) -> StoreResult<RunCreated>;

    /// Claims up to `limit` runs for `node` with a lease until `now + lease_ms`: PENDING, RUNNING
    /// or TERMINATING runs with no owner or an expired lease. First admits QUEUED runs, oldest
    /// first, of jobs now under their limit. Returns the claimed runs with all their task runs.
    async fn claim_runs(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<RunSnapshot>>;
    /// Extends every lease `node` holds to `now + lease_ms`.
    async fn renew_leases(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
    ) -> StoreResult<LeaseRenewal>;
    /// Drops every lease `node` holds (at start-up after a crash, or at shutdown), so the runs
    /// can be claimed at once.
    async fn release_leases(&self, node: &str) -> StoreResult<u64>;
    /// Applies a coordinator's write atomically, fenced by its lease.
    async fn write_run(&self, write: RunWrite) -> StoreResult<()>;
    /// Allocates `n` consecutive ids for new task runs; returns the first.
    async fn allocate_run_ids(&self, n: u32) -> StoreResult<RunId>;
    /// Asks for a run to be canceled. `NotFound` if absent.
    async fn request_cancel(&self, run_id: RunId, now: Millis) -> StoreResult<CancelOutcome>;
    /// Starts a repair of a final run: appends a repair record, inserts a BLOCKED task run per
    /// task key (with the new repair id), merges parameters, and makes the run PENDING and
    /// unowned. `InvalidState` if the run is not final or `latest_repair_id` is stale. Returns
    /// the new repair id.
    async fn start_repair(&self, repair: NewRepair) -> StoreResult<i64>;
    /// A run with all its task runs.
    async fn get_run(&self, run_id: RunId) -> StoreResult<Option<RunSnapshot>>;
    /// One task run by id.
    async fn get_task_run(&self, task_run_id: RunId) -> StoreResult<Option<TaskRunRecord>>;
    /// Runs matching a filter, newest first; the bool says whether more follow.
    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<(Vec<RunRecord>, bool)>;
    /// Logs of a task run.
    async fn get_logs(&self, task_run_id: RunId) -> StoreResult<Option<TaskLogs>>;
    /// Deletes a final run and its task runs. `NotFound`, or `InvalidState` if it is active.
    async fn delete_run(&self, run_id: RunId) -> StoreResult<()>;
    /// Run events after `after_seq`, oldest first.
    async fn run_events(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<RunEvent>>;

    // ---- triggers ---------------------------------------------------------------------------

    /// A job's trigger state.
    async fn get_trigger_state(&self, job_id: JobId) -> StoreResult<Option<TriggerState>>;
    /// Every job's trigger state, by job id.
    async fn list_trigger_states(&self) -> StoreResult<Vec<TriggerState>>;
    /// Writes a job's trigger state (insert or replace). `NotFound` if the job does not exist.
    async fn put_trigger_state(&self, state: &TriggerState) -> StoreResult<()>;
    /// A job's seen-set, by key.
    async fn list_trigger_seen(&self, job_id: JobId) -> StoreResult<Vec<SeenRecord>>;

    // ---- alerts -----------------------------------------------------------------------------

    /// Where a consumer of [`Store::run_events`] stands (0 before it first moved).
    async fn event_cursor(&self, consumer: &str) -> StoreResult<i64>;
    /// Records alerts (a known `dedupe_key` is skipped) and, when given, moves a consumer's
    /// cursor, in one transaction. Returns false and changes nothing when the cursor is no
    /// longer at `cursor.from` (another node moved it first).
    async fn enqueue_alerts(
        &self,
        cursor: Option<CursorMove>,
        alerts: Vec<NewAlert>,
    ) -> StoreResult<bool>;
    /// Claims up to `limit` pending alerts due at `now` for `node` until `now + lease_ms`
    /// (alerts claimed by a node whose claim expired are claimable again), oldest first.
    async fn claim_alerts(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<AlertRecord>>;
    /// Drops every alert claim `node` holds (at start-up after a crash), so its alerts can be
    /// claimed at once; returns how many.
    async fn release_alert_claims(&self, node: &str) -> StoreResult<u64>;
    /// Records a delivery attempt of a claimed alert and drops the claim. `NotFound` if the
    /// alert does not exist; `InvalidState` if it is not pending any more.
    async fn record_alert_attempt(
        &self,
        alert_id: i64,
        attempt: AlertAttempt,
        now: Millis,
    ) -> StoreResult<()>;
    /// When the earliest pending alert is due (`None`: nothing pending).
    async fn next_alert_time(&self) -> StoreResult<Option<Millis>>;
    /// Alerts matching a filter, newest first.
    async fn list_alerts(&self, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>>;
    /// How many runs are in each non-final life cycle state (`QUEUED`, `PENDING`, ...).
    async fn count_active_runs(&self) -> StoreResult<Vec<(LifeCycleState, u64)>>;
    /// Records items in the seen-sets of several jobs in one transaction, covered by no run
    /// yet (`run_id` empty: pending), replacing older fingerprints of the same keys. Items of
    /// jobs that no longer exist are dropped; returns how many items were written.
    async fn put_trigger_seen(
        &self,
        items: &[(JobId, SeenItem)],
        now: Millis,
    ) -> StoreResult<usize>;
}

/// Opens the store a `--state` URL names: `sqlite://PATH` (relative to the working directory)
/// or `sqlite:///abs/PATH`, optionally with `?synchronous=full|normal` (see [`sqlite`] for what
/// each guarantees).
pub async fn open(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        return sqlite::SqliteStore::open_with(sqlite::SqliteOptions::from_url(url)?).await;
    }
    anyhow::bail!(
        "unsupported --state URL {url:?}: expected sqlite://PATH (postgres:// arrives with scale-out)"
    )
}
