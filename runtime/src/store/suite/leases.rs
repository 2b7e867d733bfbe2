//! Leases and the fenced `write_run`.

use super::{LEASE_MS, claim_ids, deploy, finish, job, limited_job, progress, start, state_of};
use crate::store::{
    CancelOutcome, Iteration, LifeCycleState, ResultState, RunId, RunWrite, Store, StoreError,
    TaskLogs, TaskRunRecord,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Claim, progress, release: the next claim promotes the oldest queued run and claims it.
pub async fn release_promotes_oldest_queued_run(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("serial", 1, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    let r2 = start(&store, &deployed, 20).await.run_id;
    let r3 = start(&store, &deployed, 30).await.run_id;

    let claimed = store.claim_runs("a", 100, LEASE_MS, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "queued runs wait while r1 is active");
    assert_eq!(claimed[0].run.run_id, r1);
    assert_eq!(
        claimed[0].tasks.len(),
        2,
        "a claim returns the run's task runs"
    );
    assert_eq!(state_of(&store, r2).await, LifeCycleState::Queued);

    let mut running = progress(LifeCycleState::Running, None);
    running.start_time = Some(110);
    let write = RunWrite {
        run_id: r1,
        node: "a".into(),
        progress: Some(running),
        ..RunWrite::default()
    };
    store.write_run(write).await.unwrap();
    assert!(
        claim_ids(&store, "b", 120).await.is_empty(),
        "r1 still runs"
    );
    finish(&store, "a", r1, ResultState::Success, 130).await;

    assert_eq!(
        claim_ids(&store, "b", 140).await,
        vec![r2],
        "oldest queued run first"
    );
    assert_eq!(state_of(&store, r2).await, LifeCycleState::Pending);
    assert_eq!(state_of(&store, r3).await, LifeCycleState::Queued);
    let done = store.get_run(r1).await.unwrap().unwrap().run;
    assert_eq!(done.result_state, Some(ResultState::Success));
    assert_eq!(done.start_time, Some(110));
    assert_eq!(done.end_time, Some(130));
}

/// A write by a node that does not hold the lease fails with `LeaseLost` and changes nothing.
pub async fn fencing_refuses_writes_of_other_nodes(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("fenced", 5, true)).await;
    let owned = start(&store, &deployed, 10).await.run_id;
    assert_eq!(claim_ids(&store, "a", 20).await, vec![owned]);
    let unowned = start(&store, &deployed, 30).await.run_id;

    let before = store.get_run(owned).await.unwrap().unwrap();
    let mut task = before.tasks[0].clone();
    task.life_cycle_state = LifeCycleState::Running;
    let intruder = RunWrite {
        run_id: owned,
        node: "b".into(),
        progress: Some(progress(LifeCycleState::Running, None)),
        tasks: vec![task.clone()],
        logs: vec![(task.task_run_id, TaskLogs::default())],
        release: true,
    };
    let err = store.write_run(intruder.clone()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::LeaseLost { run_id } if run_id == owned),
        "{err:?}"
    );
    assert_eq!(store.get_run(owned).await.unwrap().unwrap(), before);
    assert_eq!(store.get_logs(task.task_run_id).await.unwrap(), None);

    let unclaimed = RunWrite {
        run_id: unowned,
        node: "a".into(),
        ..intruder.clone()
    };
    assert!(matches!(
        store.write_run(unclaimed).await,
        Err(StoreError::LeaseLost { .. })
    ));
    assert_eq!(state_of(&store, unowned).await, LifeCycleState::Pending);
    let missing = RunWrite {
        run_id: 999_999,
        ..intruder
    };
    assert!(matches!(
        store.write_run(missing).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Once a lease expires, another node claims the run and the first node is fenced out.
pub async fn lease_expiry_lets_another_node_claim(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("expiring", &["t"])).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    let claimed = store.claim_runs("a", 1_000, 500, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        store
            .claim_runs("b", 1_499, 500, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let taken = store.claim_runs("b", 1_500, 500, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "the lease ends at 1000 + 500");
    assert_eq!(taken[0].run.run_id, run_id);

    let write = |node: &str| RunWrite {
        run_id,
        node: node.into(),
        progress: Some(progress(LifeCycleState::Running, None)),
        ..RunWrite::default()
    };
    assert!(matches!(
        store.write_run(write("a")).await,
        Err(StoreError::LeaseLost { .. })
    ));
    store.write_run(write("b")).await.unwrap();
    let renewal = store.renew_leases("a", 1_600, 500).await.unwrap();
    assert!(renewal.held.is_empty());
    assert_eq!(
        store.renew_leases("b", 1_600, 500).await.unwrap().held,
        vec![run_id]
    );
}

/// Two nodes claiming at the same time never get the same run, and together get them all.
pub async fn concurrent_claims_are_disjoint(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("many", &["t"])).await;
    let mut all = BTreeSet::new();
    for now in 0..40 {
        let mut new = super::new_run(Some(deployed.0), &deployed.1, now);
        new.admission = None;
        all.insert(store.create_run(new).await.unwrap().run_id);
    }
    let node = |name: &'static str| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = store.claim_runs(name, 100, LEASE_MS, 3).await.unwrap();
                if batch.is_empty() {
                    return mine;
                }
                mine.extend(batch.into_iter().map(|s| s.run.run_id));
                tokio::task::yield_now().await;
            }
        })
    };
    let (a, b) = (node("a"), node("b"));
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    let mut seen = BTreeSet::new();
    for run_id in a.iter().chain(&b) {
        assert!(seen.insert(*run_id), "run {run_id} claimed twice");
    }
    assert_eq!(seen, all);
}

/// `release_leases` frees a node's runs for other nodes at once.
pub async fn release_leases_frees_runs_at_once(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("crashy", 5, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    let r2 = start(&store, &deployed, 20).await.run_id;
    assert_eq!(claim_ids(&store, "a", 100).await, vec![r1, r2]);
    assert!(claim_ids(&store, "b", 200).await.is_empty());
    assert_eq!(store.release_leases("a").await.unwrap(), 2);
    assert_eq!(store.release_leases("a").await.unwrap(), 0);
    assert_eq!(claim_ids(&store, "b", 200).await, vec![r1, r2]);
}

/// Renewal extends a node's leases and reports its runs with pending cancel requests.
pub async fn renew_extends_leases_and_reports_cancels(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("renewed", 5, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    let r2 = start(&store, &deployed, 20).await.run_id;
    assert_eq!(
        store.claim_runs("a", 1_000, 500, 10).await.unwrap().len(),
        2
    );
    assert_eq!(
        store.request_cancel(r2, 1_100).await.unwrap(),
        CancelOutcome::Requested
    );
    let renewal = store.renew_leases("a", 1_400, 500).await.unwrap();
    assert_eq!(renewal.held, vec![r1, r2]);
    assert_eq!(renewal.cancel_requested, vec![r2]);
    assert!(
        claim_ids(&store, "b", 1_600).await.is_empty(),
        "leases now end at 1900"
    );
    assert_eq!(claim_ids(&store, "b", 1_900).await, vec![r1, r2]);
    assert_eq!(
        store.renew_leases("a", 2_000, 500).await.unwrap(),
        Default::default()
    );
}

fn running_task(template: &TaskRunRecord, start_time: i64) -> TaskRunRecord {
    TaskRunRecord {
        life_cycle_state: LifeCycleState::Running,
        ready_time: Some(start_time - 1),
        start_time: Some(start_time),
        module_digest: Some("sha256:00".into()),
        resolved: Some(json!({"argv": ["a"]})),
        ..template.clone()
    }
}

/// Applying the same write twice gives the same state and records one event.
pub async fn write_run_is_idempotent(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("twice", &["a", "b"])).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    let claimed = store.claim_runs("a", 20, LEASE_MS, 10).await.unwrap();
    let tasks: Vec<_> = claimed[0]
        .tasks
        .iter()
        .map(|t| running_task(t, 30))
        .collect();
    let mut running = progress(LifeCycleState::Running, None);
    running.start_time = Some(30);
    let write = RunWrite {
        run_id,
        node: "a".into(),
        progress: Some(running),
        tasks,
        logs: vec![(
            claimed[0].tasks[0].task_run_id,
            TaskLogs {
                stdout: "hello\n".into(),
                ..TaskLogs::default()
            },
        )],
        release: false,
    };
    store.write_run(write.clone()).await.unwrap();
    let once = store.get_run(run_id).await.unwrap().unwrap();
    let events_once = store.run_events(0, 100).await.unwrap();
    store.write_run(write).await.unwrap();
    assert_eq!(store.get_run(run_id).await.unwrap().unwrap(), once);
    assert_eq!(store.run_events(0, 100).await.unwrap(), events_once);
    assert_eq!(once.run.life_cycle_state, LifeCycleState::Running);
    assert!(
        once.tasks
            .iter()
            .all(|t| t.life_cycle_state == LifeCycleState::Running)
    );
}

/// Every field of a task run round-trips; logs are kept per task run; a final write clears a
/// cancel request and the release drops the lease.
pub async fn write_run_stores_tasks_and_logs(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("full", &["a"])).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    let claimed = store.claim_runs("a", 20, LEASE_MS, 10).await.unwrap();
    let first = claimed[0].tasks[0].clone();
    let retry_id: RunId = store.allocate_run_ids(1).await.unwrap();
    let failed = TaskRunRecord {
        life_cycle_state: LifeCycleState::Terminated,
        result_state: Some(ResultState::Failed),
        state_message: "exit code 3".into(),
        end_time: Some(40),
        exit_code: Some(3),
        ..running_task(&first, 30)
    };
    let retry = TaskRunRecord {
        task_run_id: retry_id,
        attempt_number: 1,
        iteration: Some(Iteration {
            parent_task_run_id: first.task_run_id,
            index: 2,
        }),
        life_cycle_state: LifeCycleState::Terminated,
        result_state: Some(ResultState::Success),
        retry_at: Some(45),
        outcome: Some("true".into()),
        values: BTreeMap::from([
            ("rows".into(), json!(42)),
            ("tag".into(), json!({"x": [1]})),
        ]),
        child_run_id: Some(12_345),
        end_time: Some(60),
        ..running_task(&first, 50)
    };
    let logs = TaskLogs {
        stdout: "out".into(),
        stderr: "err…".into(),
        truncated: true,
    };
    let write = RunWrite {
        run_id,
        node: "a".into(),
        progress: Some(progress(LifeCycleState::Running, None)),
        tasks: vec![failed.clone(), retry.clone()],
        logs: vec![(first.task_run_id, logs.clone())],
        release: false,
    };
    store.write_run(write).await.unwrap();
    assert_eq!(
        store.get_task_run(first.task_run_id).await.unwrap(),
        Some(failed.clone())
    );
    assert_eq!(
        store.get_task_run(retry_id).await.unwrap(),
        Some(retry.clone())
    );
    assert_eq!(
        store.get_run(run_id).await.unwrap().unwrap().tasks,
        vec![failed, retry]
    );
    assert_eq!(store.get_logs(first.task_run_id).await.unwrap(), Some(logs));
    assert_eq!(store.get_logs(retry_id).await.unwrap(), None);

    assert_eq!(
        store.request_cancel(run_id, 70).await.unwrap(),
        CancelOutcome::Requested
    );
    finish(&store, "a", run_id, ResultState::Success, 80).await;
    let run = store.get_run(run_id).await.unwrap().unwrap().run;
    assert!(
        !run.cancel_requested,
        "a final run has no pending cancel request"
    );
    assert!(
        store
            .renew_leases("a", 90, LEASE_MS)
            .await
            .unwrap()
            .held
            .is_empty()
    );
}

/// A write cannot touch task runs of another run.
pub async fn write_run_refuses_tasks_of_other_runs(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("neighbours", 5, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    let r2 = start(&store, &deployed, 20).await.run_id;
    let claimed = store.claim_runs("a", 30, LEASE_MS, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let r2_before = store.get_run(r2).await.unwrap().unwrap();
    let foreign = running_task(&r2_before.tasks[0], 40);
    let disguised = TaskRunRecord {
        run_id: r1,
        ..foreign.clone()
    };
    for task in [foreign, disguised] {
        let write = RunWrite {
            run_id: r1,
            node: "a".into(),
            progress: Some(progress(LifeCycleState::Running, None)),
            tasks: vec![task],
            ..RunWrite::default()
        };
        match store.write_run(write).await {
            Err(StoreError::InvalidState(message)) => {
                assert!(message.contains(&format!("run {r1}")), "{message}")
            }
            other => panic!("expected InvalidState, got {other:?}"),
        }
    }
    assert_eq!(store.get_run(r2).await.unwrap().unwrap(), r2_before);
    assert_eq!(state_of(&store, r1).await, LifeCycleState::Pending);
}
