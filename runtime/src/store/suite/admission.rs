//! `create_run`: task runs, admission, idempotency.

use super::{claim_ids, deploy, job, limited_job, new_run, start, state_of};
use crate::store::{
    CancelOutcome, LifeCycleState, ParentRef, ResultState, RunFilter, Store, TriggerType,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A new run keeps everything it was given and gets one BLOCKED task run per top-level task
/// (none for the inner task of a for-each), with ids from the shared id space.
pub async fn create_run_makes_blocked_top_level_tasks(store: Arc<dyn Store>) {
    let settings: crate::spec::JobSettings = serde_json::from_value(json!({
        "name": "shapes",
        "tasks": [
            {"task_key": "a", "wasm_task": {"module": "sha256:00"}},
            {"task_key": "loop", "depends_on": [{"task_key": "a"}], "for_each_task": {
                "inputs": "[1, 2]",
                "task": {"task_key": "inner", "wasm_task": {"module": "sha256:00"}}
            }},
            {"task_key": "b", "depends_on": [{"task_key": "loop"}],
             "wasm_task": {"module": "sha256:00"}}
        ]
    }))
    .unwrap();
    let job_id = store.create_job(&settings, 1).await.unwrap();
    let mut new = new_run(Some(job_id), &settings, 5_000);
    new.trigger = TriggerType::FileArrival;
    new.trigger_info = json!({"files": ["/in/a.csv"]});
    new.job_parameters = BTreeMap::from([("region".into(), "us".into())]);
    new.overriding_parameters = BTreeMap::from([("region".into(), "us".into())]);
    new.plan.modules = BTreeMap::from([("a".into(), "sha256:00".into())]);
    new.parent = Some(ParentRef {
        run_id: 77,
        task_run_id: 78,
        depth: 1,
    });
    let created = store.create_run(new.clone()).await.unwrap();
    assert!(created.created);
    assert_eq!(created.life_cycle_state, LifeCycleState::Pending);

    let snapshot = store
        .get_run(created.run_id)
        .await
        .unwrap()
        .expect("the run");
    let run = &snapshot.run;
    assert_eq!(run.run_id, created.run_id);
    assert_eq!(run.job_id, Some(job_id));
    assert_eq!(run.run_name, "shapes");
    assert_eq!(run.life_cycle_state, LifeCycleState::Pending);
    assert_eq!(run.result_state, None);
    assert_eq!(run.trigger, TriggerType::FileArrival);
    assert_eq!(run.trigger_info, new.trigger_info);
    assert_eq!(run.job_parameters, new.job_parameters);
    assert_eq!(run.overriding_parameters, new.overriding_parameters);
    assert_eq!(run.plan, new.plan);
    assert_eq!(run.created_time, 5_000);
    assert_eq!((run.start_time, run.end_time), (None, None));
    assert!(run.repair_history.is_empty());
    assert!(!run.cancel_requested);
    assert_eq!(run.parent, new.parent);
    assert_eq!(run.idempotency_token, None);

    let keys: Vec<&str> = snapshot.tasks.iter().map(|t| t.task_key.as_str()).collect();
    assert_eq!(keys, ["a", "loop", "b"]);
    let mut ids = BTreeSet::from([run.run_id]);
    for task in &snapshot.tasks {
        assert_eq!(task.run_id, run.run_id);
        assert_eq!(task.life_cycle_state, LifeCycleState::Blocked);
        assert_eq!((task.attempt_number, task.repair_id), (0, 0));
        assert!(task.values.is_empty());
        assert_eq!(task.iteration, None);
        assert!(
            ids.insert(task.task_run_id),
            "id {} used twice",
            task.task_run_id
        );
        let alone = store.get_task_run(task.task_run_id).await.unwrap();
        assert_eq!(alone.as_ref(), Some(task));
    }
}

/// With max 1 and the queue on: the first run is PENDING, the next ones QUEUED.
pub async fn admission_pending_then_queued(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("limited", 1, true)).await;
    let first = start(&store, &deployed, 10).await;
    let second = start(&store, &deployed, 20).await;
    let third = start(&store, &deployed, 30).await;
    assert_eq!(first.life_cycle_state, LifeCycleState::Pending);
    assert_eq!(second.life_cycle_state, LifeCycleState::Queued);
    assert_eq!(third.life_cycle_state, LifeCycleState::Queued);
    let queued = store.get_run(second.run_id).await.unwrap().unwrap();
    assert_eq!(queued.run.result_state, None);
    assert_eq!(queued.run.end_time, None);
    assert!(
        queued.run.state_message.contains("max_concurrent_runs = 1"),
        "{}",
        queued.run.state_message
    );
    assert_eq!(
        queued.tasks.len(),
        2,
        "a queued run has its task runs already"
    );
}

/// With the queue off, a run over the limit is SKIPPED at once, final, without task runs.
pub async fn admission_skips_when_queue_off(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("no-queue", 1, false)).await;
    let first = start(&store, &deployed, 10).await;
    let skipped = start(&store, &deployed, 5_000).await;
    assert_eq!(first.life_cycle_state, LifeCycleState::Pending);
    assert_eq!(skipped.life_cycle_state, LifeCycleState::Skipped);
    let snapshot = store.get_run(skipped.run_id).await.unwrap().unwrap();
    let run = snapshot.run;
    assert_eq!(run.life_cycle_state, LifeCycleState::Skipped);
    assert_eq!(
        run.result_state,
        Some(ResultState::MaximumConcurrentRunsReached)
    );
    assert_eq!(
        run.state_message,
        format!(
            "skipped: job {} already has 1 active run (max_concurrent_runs = 1) and queueing \
             is off",
            deployed.0
        )
    );
    assert_eq!(run.end_time, Some(5_000));
    assert!(snapshot.tasks.is_empty());
    assert_eq!(claim_ids(&store, "n", 6_000).await, vec![first.run_id]);
}

/// `max_concurrent_runs: 0` skips every run, queue or not.
pub async fn admission_skips_at_limit_zero(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("zero", 0, true)).await;
    let run = start(&store, &deployed, 10).await;
    assert_eq!(run.life_cycle_state, LifeCycleState::Skipped);
    let record = store.get_run(run.run_id).await.unwrap().unwrap().run;
    assert_eq!(
        record.result_state,
        Some(ResultState::MaximumConcurrentRunsReached)
    );
    assert!(
        record.state_message.contains("max_concurrent_runs = 0"),
        "{}",
        record.state_message
    );
    assert!(claim_ids(&store, "n", 20).await.is_empty());
}

/// A new run does not overtake queued runs even when a slot is free; promotion is oldest first.
pub async fn admission_queues_behind_queued_runs(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("two", 2, true)).await;
    let r1 = start(&store, &deployed, 10).await;
    let r2 = start(&store, &deployed, 20).await;
    let r3 = start(&store, &deployed, 30).await;
    assert_eq!(r3.life_cycle_state, LifeCycleState::Queued);
    assert_eq!(
        store.request_cancel(r1.run_id, 40).await.unwrap(),
        CancelOutcome::Canceled
    );
    let r4 = start(&store, &deployed, 50).await;
    assert_eq!(
        r4.life_cycle_state,
        LifeCycleState::Queued,
        "a slot is free, but r3 waits longer"
    );
    let claimed = claim_ids(&store, "n", 60).await;
    assert_eq!(claimed, vec![r2.run_id, r3.run_id]);
    assert_eq!(state_of(&store, r3.run_id).await, LifeCycleState::Pending);
    assert_eq!(state_of(&store, r4.run_id).await, LifeCycleState::Queued);
}

/// Runs created without admission (submitted and child runs) are PENDING whatever the limit.
pub async fn runs_without_admission_are_admitted(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("unlimited", 1, false)).await;
    for now in 0..3 {
        let mut new = new_run(Some(deployed.0), &deployed.1, now);
        new.admission = None;
        let created = store.create_run(new).await.unwrap();
        assert_eq!(created.life_cycle_state, LifeCycleState::Pending);
    }
    let mut submitted = new_run(None, &job("submitted", &["t"]), 5);
    submitted.admission = None;
    let created = store.create_run(submitted).await.unwrap();
    assert_eq!(created.life_cycle_state, LifeCycleState::Pending);
    assert_eq!(claim_ids(&store, "n", 10).await.len(), 4);
}

/// A known idempotency token returns the first run instead of creating another.
pub async fn idempotency_token_returns_first_run(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("tokens", 5, true)).await;
    let mut new = new_run(Some(deployed.0), &deployed.1, 10);
    new.idempotency_token = Some("t-1".into());
    let first = store.create_run(new.clone()).await.unwrap();
    assert!(first.created);
    new.run_name = "another name".into();
    new.now = 20;
    let again = store.create_run(new.clone()).await.unwrap();
    assert_eq!(again.run_id, first.run_id);
    assert!(!again.created);
    assert_eq!(again.life_cycle_state, LifeCycleState::Pending);
    let run = store.get_run(first.run_id).await.unwrap().unwrap().run;
    assert_eq!(run.run_name, "tokens", "the first run is unchanged");
    assert_eq!(run.idempotency_token.as_deref(), Some("t-1"));
    new.idempotency_token = Some("t-2".into());
    let other = store.create_run(new).await.unwrap();
    assert!(other.created);
    assert_ne!(other.run_id, first.run_id);
}

/// Twenty concurrent creates with one token make exactly one run.
pub async fn idempotency_token_under_concurrency(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("racy", 1, true)).await;
    let mut new = new_run(Some(deployed.0), &deployed.1, 10);
    new.idempotency_token = Some("once".into());
    let creates = (0..20).map(|_| {
        let store = store.clone();
        let new = new.clone();
        tokio::spawn(async move { store.create_run(new).await })
    });
    let results: Vec<_> = futures::future::join_all(creates)
        .await
        .into_iter()
        .map(|r| r.expect("task").expect("create_run"))
        .collect();
    assert_eq!(results.iter().filter(|r| r.created).count(), 1);
    let ids: BTreeSet<_> = results.iter().map(|r| r.run_id).collect();
    assert_eq!(ids.len(), 1);
    let (runs, more) = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!((runs.len(), more), (1, false));
}
