//! `request_cancel` and `start_repair`.

use super::{claim_ids, deploy, finish, job, limited_job, new_run, progress, start};
use crate::store::{
    CancelOutcome, LifeCycleState, NewRepair, RepairRecord, ResultState, RunWrite, Store,
    StoreError,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Queued and unowned pending runs are canceled at once; coordinated runs get a request;
/// final runs are left alone.
pub async fn cancel_in_each_state(store: Arc<dyn Store>) {
    assert!(matches!(
        store.request_cancel(424_242, 1).await,
        Err(StoreError::NotFound(_))
    ));
    let deployed = deploy(&store, limited_job("cancel", 1, true)).await;
    let pending = start(&store, &deployed, 10).await.run_id;
    let queued = start(&store, &deployed, 20).await.run_id;

    assert_eq!(
        store.request_cancel(queued, 30).await.unwrap(),
        CancelOutcome::Canceled
    );
    let snapshot = store.get_run(queued).await.unwrap().unwrap();
    assert_eq!(snapshot.run.life_cycle_state, LifeCycleState::Terminated);
    assert_eq!(snapshot.run.result_state, Some(ResultState::Canceled));
    assert_eq!(snapshot.run.state_message, "canceled before it started");
    assert_eq!(snapshot.run.end_time, Some(30));
    assert_eq!(snapshot.tasks.len(), 2);
    for task in &snapshot.tasks {
        assert_eq!(task.life_cycle_state, LifeCycleState::Terminated);
        assert_eq!(task.result_state, Some(ResultState::Canceled));
    }

    assert_eq!(
        store.request_cancel(pending, 40).await.unwrap(),
        CancelOutcome::Canceled
    );
    assert_eq!(
        store
            .get_run(pending)
            .await
            .unwrap()
            .unwrap()
            .run
            .result_state,
        Some(ResultState::Canceled)
    );

    let coordinated = start(&store, &deployed, 50).await.run_id;
    assert_eq!(claim_ids(&store, "a", 60).await, vec![coordinated]);
    for _ in 0..2 {
        assert_eq!(
            store.request_cancel(coordinated, 70).await.unwrap(),
            CancelOutcome::Requested
        );
    }
    let run = store.get_run(coordinated).await.unwrap().unwrap().run;
    assert!(run.cancel_requested);
    assert_eq!(run.life_cycle_state, LifeCycleState::Pending);

    finish(&store, "a", coordinated, ResultState::Canceled, 80).await;
    let before = store.get_run(coordinated).await.unwrap().unwrap();
    assert_eq!(
        store.request_cancel(coordinated, 90).await.unwrap(),
        CancelOutcome::AlreadyFinal
    );
    assert_eq!(store.get_run(coordinated).await.unwrap().unwrap(), before);
}

fn repair(run_id: i64, keys: &[&str], latest: Option<i64>, now: i64) -> NewRepair {
    NewRepair {
        run_id,
        latest_repair_id: latest,
        task_keys: keys.iter().map(|k| k.to_string()).collect(),
        job_parameters: BTreeMap::new(),
        now,
    }
}

fn invalid_state(result: Result<i64, StoreError>) -> String {
    match result {
        Err(StoreError::InvalidState(message)) => message,
        other => panic!("expected InvalidState, got {other:?}"),
    }
}

/// Only TERMINATED and INTERNAL_ERROR runs are repaired, with known top-level task keys and an
/// up-to-date `latest_repair_id`.
pub async fn repair_rules(store: Arc<dyn Store>) {
    assert!(matches!(
        store.start_repair(repair(424_242, &["a"], None, 1)).await,
        Err(StoreError::NotFound(_))
    ));
    let settings: crate::spec::JobSettings = serde_json::from_value(json!({
        "name": "repairable",
        "max_concurrent_runs": 1,
        "queue": {"enabled": false},
        "tasks": [
            {"task_key": "a", "wasm_task": {"module": "sha256:00"}},
            {"task_key": "loop", "for_each_task": {
                "inputs": "[1]",
                "task": {"task_key": "inner", "wasm_task": {"module": "sha256:00"}}
            }}
        ]
    }))
    .unwrap();
    let deployed = deploy(&store, settings).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    let skipped = start(&store, &deployed, 20).await.run_id;

    let message = invalid_state(store.start_repair(repair(run_id, &["a"], None, 30)).await);
    assert!(message.contains("PENDING"), "{message}");
    let message = invalid_state(store.start_repair(repair(skipped, &["a"], None, 30)).await);
    assert!(message.contains("SKIPPED"), "{message}");

    assert_eq!(claim_ids(&store, "a", 40).await, vec![run_id]);
    finish(&store, "a", run_id, ResultState::Failed, 50).await;
    let before = store.get_run(run_id).await.unwrap().unwrap();

    let message = invalid_state(
        store
            .start_repair(repair(run_id, &["nope"], None, 60))
            .await,
    );
    assert!(message.contains("\"nope\""), "{message}");
    let message = invalid_state(
        store
            .start_repair(repair(run_id, &["inner"], None, 60))
            .await,
    );
    assert!(
        message.contains("\"inner\""),
        "inner tasks are not top-level: {message}"
    );
    let message = invalid_state(
        store
            .start_repair(repair(run_id, &["a"], Some(3), 60))
            .await,
    );
    assert!(
        message.contains("latest_repair_id 3") && message.contains("latest repair id is 0"),
        "{message}"
    );
    invalid_state(store.start_repair(repair(run_id, &[], None, 60)).await);
    assert_eq!(
        store.get_run(run_id).await.unwrap().unwrap(),
        before,
        "refused repairs change nothing"
    );
}

/// A repair adds BLOCKED task runs with the new repair id, records itself, merges parameters,
/// and reopens the run PENDING without an owner.
pub async fn repair_reopens_the_run(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("repaired", &["a", "b"])).await;
    let mut new = new_run(Some(deployed.0), &deployed.1, 10);
    new.job_parameters = BTreeMap::from([("region".into(), "eu".into())]);
    let run_id = store.create_run(new).await.unwrap().run_id;
    assert_eq!(claim_ids(&store, "a", 20).await, vec![run_id]);
    // The coordinator ends the run without releasing it: the repair takes the lease away.
    let mut failed = progress(LifeCycleState::Terminated, Some(ResultState::Failed));
    failed.start_time = Some(25);
    failed.end_time = Some(30);
    let end = RunWrite {
        run_id,
        node: "a".into(),
        progress: Some(failed),
        ..RunWrite::default()
    };
    store.write_run(end.clone()).await.unwrap();
    let original = store.get_run(run_id).await.unwrap().unwrap();

    let mut request = repair(run_id, &["b", "b"], Some(0), 40);
    request.job_parameters =
        BTreeMap::from([("region".into(), "us".into()), ("day".into(), "mon".into())]);
    assert_eq!(store.start_repair(request).await.unwrap(), 1);

    let repaired = store.get_run(run_id).await.unwrap().unwrap();
    let run = &repaired.run;
    assert_eq!(run.life_cycle_state, LifeCycleState::Pending);
    assert_eq!((run.result_state, run.end_time), (None, None));
    assert_eq!(run.start_time, Some(25));
    let params = BTreeMap::from([
        ("day".to_string(), "mon".to_string()),
        ("region".to_string(), "us".to_string()),
    ]);
    assert_eq!(run.job_parameters, params);
    assert_eq!(run.overriding_parameters, params);
    assert_eq!(repaired.tasks.len(), 3);
    assert_eq!(repaired.tasks[..2], original.tasks[..]);
    let added = &repaired.tasks[2];
    assert_eq!(added.task_key, "b");
    assert_eq!((added.repair_id, added.attempt_number), (1, 0));
    assert_eq!(added.life_cycle_state, LifeCycleState::Blocked);
    assert!(added.task_run_id > run_id && added.task_run_id > original.tasks[1].task_run_id);
    assert_eq!(
        run.repair_history,
        vec![RepairRecord {
            repair_id: 1,
            start_time: 40,
            end_time: None,
            task_keys: vec!["b".into()],
            task_run_ids: vec![added.task_run_id],
            result_state: None,
        }]
    );

    assert!(matches!(
        store.write_run(end).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(claim_ids(&store, "b", 50).await, vec![run_id]);
    finish(&store, "b", run_id, ResultState::Success, 60).await;
    let message = invalid_state(
        store
            .start_repair(repair(run_id, &["a"], Some(0), 70))
            .await,
    );
    assert!(message.contains("latest repair id is 1"), "{message}");
    assert_eq!(
        store
            .start_repair(repair(run_id, &["a"], Some(1), 70))
            .await
            .unwrap(),
        2
    );
}
