//! The store test suite, written once and run against every backend.
//!
//! A backend runs it with [`store_suite!`](crate::store_suite), given an expression that yields
//! a future of `(Arc<dyn Store>, guard)`: a fresh, empty store and whatever must live as long as
//! it (a temporary directory, a database schema to drop). The macro expands to one
//! `#[tokio::test]` per behaviour; each behaviour is a public `async fn(Arc<dyn Store>)` here.

mod access;
mod admission;
mod alerts;
mod control;
mod history;
mod jobs;
mod leases;
mod modules;
mod triggers;

pub use access::*;
pub use admission::*;
pub use alerts::*;
pub use control::*;
pub use history::*;
pub use jobs::*;
pub use leases::*;
pub use modules::*;
pub use triggers::*;

use crate::spec::JobSettings;
use crate::store::{
    Admission, JobId, LifeCycleState, Millis, NewRun, ResultState, RunCreated, RunId, RunPlan,
    RunProgress, RunWrite, Store,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Expands to one `#[tokio::test]` per behaviour of the [`Store`](crate::store::Store)
/// contract. `$factory` is evaluated once per test and must yield a future of
/// `(Arc<dyn Store>, guard)`, the guard being dropped when the test ends.
#[macro_export]
macro_rules! store_suite {
    ($factory:expr) => {
        $crate::store_suite!(@tests ($factory)
            jobs_crud,
            job_name_conflicts,
            list_jobs_pages_and_filters_by_name,
            delete_job_keeps_runs,
            module_versions,
            create_run_makes_blocked_top_level_tasks,
            admission_pending_then_queued,
            admission_skips_when_queue_off,
            admission_skips_at_limit_zero,
            admission_queues_behind_queued_runs,
            runs_without_admission_are_admitted,
            idempotency_token_returns_first_run,
            idempotency_token_under_concurrency,
            release_promotes_oldest_queued_run,
            fencing_refuses_writes_of_other_nodes,
            lease_expiry_lets_another_node_claim,
            concurrent_claims_are_disjoint,
            release_leases_frees_runs_at_once,
            renew_extends_leases_and_reports_cancels,
            write_run_is_idempotent,
            write_run_stores_tasks_and_logs,
            write_run_refuses_tasks_of_other_runs,
            cancel_in_each_state,
            repair_rules,
            repair_reopens_the_run,
            list_runs_filters_order_and_paging,
            list_runs_by_run_type,
            list_runs_default_and_max_page,
            delete_run_removes_tasks_and_logs,
            run_events_follow_state_changes,
            allocated_ids_never_overlap,
            trigger_state_round_trips_and_needs_its_job,
            triggered_run_commits_its_trigger_state,
            replayed_trigger_event_moves_the_trigger_only,
            pending_seen_items_wait_for_their_run,
            deleting_a_job_forgets_its_trigger,
            job_changes_report_creates_updates_and_deletes,
            alerts_are_recorded_once_with_their_cursor,
            alert_claims_and_attempts,
            active_runs_are_counted_by_state,
            principals_groups_and_cascades,
            tokens_by_hash_and_revocation,
            job_acl_replace_and_delete,
            audit_log_and_run_state_changes,
        );
    };
    (@tests ($factory:expr) $($test:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let (store, _guard) = $factory.await;
                $crate::store::suite::$test(store).await;
            }
        )*
    };
}

/// The lease length the suite's claims use, in milliseconds.
pub const LEASE_MS: i64 = 30_000;

/// Settings of a job with one wasm task per key, admission defaults (max 1, queue on).
pub fn job(name: &str, task_keys: &[&str]) -> JobSettings {
    let tasks: Vec<_> = task_keys
        .iter()
        .map(|key| json!({"task_key": key, "wasm_task": {"module": "sha256:00"}}))
        .collect();
    serde_json::from_value(json!({"name": name, "tasks": tasks})).expect("valid job settings")
}

/// Settings of a job with tasks `a` and `b` and the given admission settings.
pub fn limited_job(name: &str, max_concurrent_runs: u32, queue_enabled: bool) -> JobSettings {
    let mut settings = job(name, &["a", "b"]);
    settings.max_concurrent_runs = max_concurrent_runs;
    settings.queue = Some(crate::spec::QueueSettings {
        enabled: queue_enabled,
    });
    settings
}

/// A run of `settings` for `job_id`, admitted by the job's settings.
pub fn new_run(job_id: Option<JobId>, settings: &JobSettings, now: Millis) -> NewRun {
    NewRun {
        job_id,
        run_name: settings.name.clone(),
        trigger: crate::store::TriggerType::OneTime,
        trigger_info: serde_json::Value::Null,
        job_parameters: BTreeMap::new(),
        overriding_parameters: BTreeMap::new(),
        plan: RunPlan {
            settings: settings.clone(),
            modules: BTreeMap::new(),
        },
        parent: None,
        idempotency_token: None,
        admission: Some(Admission {
            max_concurrent_runs: settings.max_concurrent_runs,
            queue_enabled: settings.queue_enabled(),
        }),
        now,
        trigger_commit: None,
    }
}

/// Creates a job and returns its id with its settings.
pub async fn deploy(store: &Arc<dyn Store>, settings: JobSettings) -> (JobId, JobSettings) {
    let job_id = store.create_job(&settings, 1).await.expect("create_job");
    (job_id, settings)
}

/// Creates a run of a deployed job at `now`.
pub async fn start(store: &Arc<dyn Store>, job: &(JobId, JobSettings), now: Millis) -> RunCreated {
    store
        .create_run(new_run(Some(job.0), &job.1, now))
        .await
        .expect("create_run")
}

/// Run-level progress with no times or repairs.
pub fn progress(state: LifeCycleState, result: Option<ResultState>) -> RunProgress {
    RunProgress {
        life_cycle_state: state,
        result_state: result,
        state_message: String::new(),
        start_time: None,
        end_time: None,
        repair_history: Vec::new(),
    }
}

/// Claims every claimable run for `node` at `now`; returns their ids.
pub async fn claim_ids(store: &Arc<dyn Store>, node: &str, now: Millis) -> Vec<RunId> {
    store
        .claim_runs(node, now, LEASE_MS, 1000)
        .await
        .expect("claim_runs")
        .into_iter()
        .map(|s| s.run.run_id)
        .collect()
}

/// Ends a run `node` holds with `result` at `now` and releases it, keeping its start time and
/// closing its open repair, as a coordinator does.
pub async fn finish(
    store: &Arc<dyn Store>,
    node: &str,
    run_id: RunId,
    result: ResultState,
    now: Millis,
) {
    let run = store
        .get_run(run_id)
        .await
        .expect("get_run")
        .expect("the run to finish")
        .run;
    let mut end = progress(LifeCycleState::Terminated, Some(result));
    end.start_time = run.start_time;
    end.end_time = Some(now);
    end.repair_history = run.repair_history;
    if let Some(open) = end
        .repair_history
        .last_mut()
        .filter(|r| r.end_time.is_none())
    {
        open.end_time = Some(now);
        open.result_state = Some(result);
    }
    store
        .write_run(RunWrite {
            run_id,
            node: node.into(),
            progress: Some(end),
            release: true,
            ..RunWrite::default()
        })
        .await
        .expect("final write_run");
}

/// The life cycle state of a run.
pub async fn state_of(store: &Arc<dyn Store>, run_id: RunId) -> LifeCycleState {
    store
        .get_run(run_id)
        .await
        .expect("get_run")
        .expect("run exists")
        .run
        .life_cycle_state
}
