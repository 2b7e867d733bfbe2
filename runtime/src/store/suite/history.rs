//! Run history: listing, deleting, run events, id allocation.

use super::{LEASE_MS, claim_ids, deploy, finish, job, limited_job, new_run, progress, start};
use crate::store::{
    LifeCycleState, ResultState, RunFilter, RunId, RunKind, RunRecord, RunWrite, Store, StoreError,
    TaskLogs,
};
use std::collections::BTreeSet;
use std::sync::Arc;

fn ids(runs: Vec<RunRecord>) -> Vec<RunId> {
    runs.into_iter().map(|r| r.run_id).collect()
}

/// `list_runs` is newest first and filters by job, activity and creation time, with paging.
pub async fn list_runs_filters_order_and_paging(store: Arc<dyn Store>) {
    let a = deploy(&store, limited_job("a", 10, true)).await;
    let b = deploy(&store, limited_job("b", 10, true)).await;
    let a1 = start(&store, &a, 100).await.run_id;
    let b1 = start(&store, &b, 200).await.run_id;
    let a2 = start(&store, &a, 300).await.run_id;
    let a3 = start(&store, &a, 400).await.run_id;
    store.claim_runs("n", 500, LEASE_MS, 1).await.unwrap();
    finish(&store, "n", a1, ResultState::Success, 600).await;

    let list = |filter: RunFilter| {
        let store = store.clone();
        async move {
            let (runs, more) = store.list_runs(&filter).await.unwrap();
            (ids(runs), more)
        }
    };
    let all = RunFilter::default;
    assert_eq!(list(all()).await, (vec![a3, a2, b1, a1], false));
    let of_a = RunFilter {
        job_id: Some(a.0),
        ..all()
    };
    assert_eq!(list(of_a.clone()).await, (vec![a3, a2, a1], false));
    let active = RunFilter {
        active_only: true,
        ..all()
    };
    assert_eq!(list(active).await, (vec![a3, a2, b1], false));
    let completed_of_a = RunFilter {
        completed_only: true,
        ..of_a.clone()
    };
    assert_eq!(list(completed_of_a).await, (vec![a1], false));
    let window = RunFilter {
        start_time_from: Some(200),
        start_time_to: Some(300),
        ..all()
    };
    assert_eq!(list(window).await, (vec![a2, b1], false));
    let first_page = RunFilter { limit: 2, ..all() };
    assert_eq!(list(first_page).await, (vec![a3, a2], true));
    let second_page = RunFilter {
        offset: 2,
        limit: 2,
        ..all()
    };
    assert_eq!(list(second_page).await, (vec![b1, a1], false));
    let both = RunFilter {
        active_only: true,
        completed_only: true,
        ..all()
    };
    assert!(matches!(
        store.list_runs(&both).await,
        Err(StoreError::InvalidState(_))
    ));
}

/// `run_type` tells job runs, child runs of `run_job_task` and submitted runs apart.
pub async fn list_runs_by_run_type(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("kinds", 10, true)).await;
    let job_run = start(&store, &deployed, 10).await.run_id;
    let mut child = new_run(Some(deployed.0), &deployed.1, 20);
    child.parent = Some(crate::store::ParentRef {
        run_id: job_run,
        task_run_id: job_run + 1,
        depth: 1,
    });
    let child = store.create_run(child).await.unwrap().run_id;
    let mut submitted = new_run(None, &deployed.1, 30);
    submitted.admission = None;
    let submitted = store.create_run(submitted).await.unwrap().run_id;
    let of = |kind| {
        let store = store.clone();
        async move {
            let filter = RunFilter {
                run_type: Some(kind),
                ..RunFilter::default()
            };
            ids(store.list_runs(&filter).await.unwrap().0)
        }
    };
    assert_eq!(of(RunKind::JobRun).await, vec![job_run]);
    assert_eq!(of(RunKind::WorkflowRun).await, vec![child]);
    assert_eq!(of(RunKind::SubmitRun).await, vec![submitted]);
}

/// A limit of 0 lists 25 runs; no page holds more than 1000.
pub async fn list_runs_default_and_max_page(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("bulk", &["t"])).await;
    let creates = (0..1001).map(|now| {
        let store = store.clone();
        let mut new = new_run(Some(deployed.0), &deployed.1, now);
        new.admission = None;
        tokio::spawn(async move { store.create_run(new).await.unwrap() })
    });
    futures::future::join_all(creates).await;
    let (runs, more) = store.list_runs(&RunFilter::default()).await.unwrap();
    assert_eq!((runs.len(), more), (25, true));
    let huge = RunFilter {
        limit: 5_000,
        ..RunFilter::default()
    };
    let (runs, more) = store.list_runs(&huge).await.unwrap();
    assert_eq!((runs.len(), more), (1000, true));
    assert!(
        runs.windows(2).all(|w| w[0].run_id > w[1].run_id),
        "newest first"
    );
}

/// Only final runs can be deleted; their task runs and logs go with them.
pub async fn delete_run_removes_tasks_and_logs(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("deleted", &["t"])).await;
    let run_id = start(&store, &deployed, 10).await.run_id;
    assert!(matches!(
        store.delete_run(run_id).await,
        Err(StoreError::InvalidState(_))
    ));
    let claimed = store.claim_runs("a", 20, LEASE_MS, 1).await.unwrap();
    let task_run_id = claimed[0].tasks[0].task_run_id;
    let write = RunWrite {
        run_id,
        node: "a".into(),
        logs: vec![(task_run_id, TaskLogs::default())],
        ..RunWrite::default()
    };
    store.write_run(write).await.unwrap();
    finish(&store, "a", run_id, ResultState::Success, 30).await;
    assert!(store.get_logs(task_run_id).await.unwrap().is_some());

    store.delete_run(run_id).await.unwrap();
    assert_eq!(store.get_run(run_id).await.unwrap(), None);
    assert_eq!(store.get_task_run(task_run_id).await.unwrap(), None);
    assert_eq!(store.get_logs(task_run_id).await.unwrap(), None);
    assert!(matches!(
        store.delete_run(run_id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// Every state change appends an event, in order, readable from any sequence number.
pub async fn run_events_follow_state_changes(store: Arc<dyn Store>) {
    let deployed = deploy(&store, limited_job("evented", 1, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    let r2 = start(&store, &deployed, 20).await.run_id;
    assert_eq!(claim_ids(&store, "a", 30).await, vec![r1]);
    let mut running = progress(LifeCycleState::Running, None);
    running.start_time = Some(40);
    let write = RunWrite {
        run_id: r1,
        node: "a".into(),
        progress: Some(running),
        ..RunWrite::default()
    };
    store.write_run(write).await.unwrap();
    finish(&store, "a", r1, ResultState::Success, 50).await;
    claim_ids(&store, "a", 60).await;

    let events = store.run_events(0, 100).await.unwrap();
    let seen: Vec<_> = events
        .iter()
        .map(|e| (e.run_id, e.life_cycle_state, e.result_state))
        .collect();
    use LifeCycleState::*;
    assert_eq!(
        seen,
        vec![
            (r1, Pending, None),
            (r2, Queued, None),
            (r1, Running, None),
            (r1, Terminated, Some(ResultState::Success)),
            (r2, Pending, None),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(events.iter().all(|e| e.job_id == Some(deployed.0)));
    assert_eq!(events[0].time, 10);
    assert_eq!(
        events[3].time, 50,
        "a final event is timed at the run's end"
    );
    assert_eq!(events[4].time, 60);
    let tail = store.run_events(events[2].seq, 2).await.unwrap();
    assert_eq!(tail, events[3..5].to_vec());
    assert!(
        store
            .run_events(events[4].seq, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Allocated ids never overlap run ids, task run ids or each other, even concurrently.
pub async fn allocated_ids_never_overlap(store: Arc<dyn Store>) {
    let deployed = deploy(&store, job("ids", &["a", "b"])).await;
    let mut used = BTreeSet::new();
    let mut take = |id: RunId| assert!(used.insert(id), "id {id} handed out twice");
    let snapshot_ids = |s: crate::store::RunSnapshot| {
        std::iter::once(s.run.run_id)
            .chain(s.tasks.into_iter().map(|t| t.task_run_id))
            .collect::<Vec<_>>()
    };
    let first = start(&store, &deployed, 10).await.run_id;
    snapshot_ids(store.get_run(first).await.unwrap().unwrap())
        .into_iter()
        .for_each(&mut take);
    let allocations = (0..10).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.allocate_run_ids(3).await.unwrap() })
    });
    for allocation in futures::future::join_all(allocations).await {
        let start_id = allocation.unwrap();
        (start_id..start_id + 3).for_each(&mut take);
    }
    let second = start(&store, &deployed, 20).await.run_id;
    snapshot_ids(store.get_run(second).await.unwrap().unwrap())
        .into_iter()
        .for_each(&mut take);
    let single = store.allocate_run_ids(1).await.unwrap();
    take(single);
    assert_eq!(used.len(), 3 + 30 + 3 + 1);
}
