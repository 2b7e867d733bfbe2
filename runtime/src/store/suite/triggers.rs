//! Triggers: durable trigger state, seen-sets, and what triggered runs commit with them.

use super::{deploy, job, new_run};
use crate::store::{
    SeenItem, Store, StoreError, TriggerCommit, TriggerKind, TriggerState, TriggerType,
};
use serde_json::json;
use std::sync::Arc;

fn state(job_id: i64, cursor: serde_json::Value) -> TriggerState {
    TriggerState {
        cursor,
        next_fire_time: Some(60_000),
        ..TriggerState::armed(job_id, TriggerKind::Schedule, "h1", 1_000)
    }
}

fn seen(key: &str, fingerprint: &str) -> SeenItem {
    SeenItem {
        key: key.into(),
        fingerprint: fingerprint.into(),
    }
}

/// A trigger state is written and read back whole; a state of a missing job is refused.
pub async fn trigger_state_round_trips_and_needs_its_job(store: Arc<dyn Store>) {
    let (job_id, _) = deploy(&store, job("cron", &["a"])).await;
    assert_eq!(store.get_trigger_state(job_id).await.unwrap(), None);
    let mut s = state(job_id, json!({"last": 5}));
    s.last_error = Some("listing failed".into());
    s.last_error_time = Some(7);
    store.put_trigger_state(&s).await.unwrap();
    assert_eq!(
        store.get_trigger_state(job_id).await.unwrap(),
        Some(s.clone())
    );
    s.cursor = json!({"last": 6});
    s.last_error = None;
    store.put_trigger_state(&s).await.unwrap();
    assert_eq!(store.list_trigger_states().await.unwrap(), vec![s]);
    assert!(matches!(
        store
            .put_trigger_state(&state(job_id + 100, json!(null)))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

/// A triggered run and its trigger state and seen items commit together.
pub async fn triggered_run_commits_its_trigger_state(store: Arc<dyn Store>) {
    let (job_id, settings) = deploy(&store, job("files", &["a"])).await;
    let mut new = new_run(Some(job_id), &settings, 10);
    new.trigger = TriggerType::FileArrival;
    new.idempotency_token = Some(format!("weir:file_arrival:{job_id}:x"));
    new.trigger_commit = Some(TriggerCommit {
        state: Some(state(job_id, json!({"pending": []}))),
        seen: vec![seen("a.csv", "3:1"), seen("b.csv", "4:1")],
    });
    let created = store.create_run(new).await.unwrap();
    assert!(created.created);
    let s = store.get_trigger_state(job_id).await.unwrap().unwrap();
    assert_eq!(s.cursor, json!({"pending": []}));
    let items = store.list_trigger_seen(job_id).await.unwrap();
    assert_eq!(
        items
            .iter()
            .map(|r| (r.item.key.as_str(), r.run_id))
            .collect::<Vec<_>>(),
        vec![
            ("a.csv", Some(created.run_id)),
            ("b.csv", Some(created.run_id))
        ]
    );
    assert_eq!(items[0].seen_time, 10);

    // A commit whose state belongs to another job is refused and creates nothing.
    let (other, _) = deploy(&store, job("other", &["a"])).await;
    let mut wrong = new_run(Some(job_id), &settings, 11);
    wrong.trigger_commit = Some(TriggerCommit {
        state: Some(state(other, json!(1))),
        seen: Vec::new(),
    });
    assert!(matches!(
        store.create_run(wrong).await,
        Err(StoreError::InvalidState(_))
    ));
    assert_eq!(store.get_trigger_state(other).await.unwrap(), None);
}

/// An event replayed under the same idempotency key returns the first run, creates nothing,
/// and still applies its trigger commit.
pub async fn replayed_trigger_event_moves_the_trigger_only(store: Arc<dyn Store>) {
    let (job_id, settings) = deploy(&store, job("tables", &["a"])).await;
    let token = format!("weir:table_update:{job_id}:t/0/41");
    let mut first = new_run(Some(job_id), &settings, 10);
    first.idempotency_token = Some(token.clone());
    first.trigger_commit = Some(TriggerCommit {
        state: Some(state(job_id, json!({"offset": 41}))),
        seen: Vec::new(),
    });
    let created = store.create_run(first).await.unwrap();
    let mut replay = new_run(Some(job_id), &settings, 20);
    replay.idempotency_token = Some(token);
    replay.trigger_commit = Some(TriggerCommit {
        state: Some(state(job_id, json!({"offset": 42}))),
        seen: vec![seen("k", "1")],
    });
    let again = store.create_run(replay).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.run_id, created.run_id);
    let (runs, _) = store
        .list_runs(&crate::store::RunFilter {
            job_id: Some(job_id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    let s = store.get_trigger_state(job_id).await.unwrap().unwrap();
    assert_eq!(s.cursor, json!({"offset": 42}));
    let items = store.list_trigger_seen(job_id).await.unwrap();
    assert_eq!(items[0].run_id, Some(created.run_id));
}

/// Pending seen items (no run yet) are written for several jobs at once, skip missing jobs,
/// and become covered by the run that commits them; a newer fingerprint is pending again.
pub async fn pending_seen_items_wait_for_their_run(store: Arc<dyn Store>) {
    let (a, settings) = deploy(&store, job("tables-a", &["a"])).await;
    let (b, _) = deploy(&store, job("tables-b", &["a"])).await;
    let written = store
        .put_trigger_seen(
            &[
                (a, seen("table:c.s.t", "v1")),
                (a, seen("offset:t/0", "5")),
                (b, seen("table:c.s.t", "v1")),
                (b + 100, seen("table:c.s.t", "v1")),
            ],
            10,
        )
        .await
        .unwrap();
    assert_eq!(written, 3, "the item of a missing job is dropped");
    let items = store.list_trigger_seen(a).await.unwrap();
    assert_eq!(
        items
            .iter()
            .map(|r| (
                r.item.key.as_str(),
                r.item.fingerprint.as_str(),
                r.run_id,
                r.seen_time
            ))
            .collect::<Vec<_>>(),
        vec![
            ("offset:t/0", "5", None, 10),
            ("table:c.s.t", "v1", None, 10)
        ]
    );
    assert_eq!(store.list_trigger_seen(b).await.unwrap().len(), 1);

    let mut new = new_run(Some(a), &settings, 20);
    new.trigger = TriggerType::Table;
    new.trigger_commit = Some(TriggerCommit {
        state: None,
        seen: vec![seen("table:c.s.t", "v1")],
    });
    let created = store.create_run(new).await.unwrap();
    let items = store.list_trigger_seen(a).await.unwrap();
    assert_eq!(items[1].run_id, Some(created.run_id));
    assert_eq!(items[0].run_id, None, "other items stay as they were");

    store
        .put_trigger_seen(&[(a, seen("table:c.s.t", "v2"))], 30)
        .await
        .unwrap();
    let items = store.list_trigger_seen(a).await.unwrap();
    assert_eq!(
        (
            items[1].item.fingerprint.as_str(),
            items[1].run_id,
            items[1].seen_time
        ),
        ("v2", None, 30)
    );
    assert_eq!(store.put_trigger_seen(&[], 40).await.unwrap(), 0);
}

/// Deleting a job deletes its trigger state and seen-set.
pub async fn deleting_a_job_forgets_its_trigger(store: Arc<dyn Store>) {
    let (job_id, settings) = deploy(&store, job("gone", &["a"])).await;
    let mut new = new_run(Some(job_id), &settings, 10);
    new.trigger_commit = Some(TriggerCommit {
        state: Some(state(job_id, json!(1))),
        seen: vec![seen("a", "1")],
    });
    store.create_run(new).await.unwrap();
    store.delete_job(job_id).await.unwrap();
    assert_eq!(store.get_trigger_state(job_id).await.unwrap(), None);
    assert!(store.list_trigger_seen(job_id).await.unwrap().is_empty());
    assert!(store.list_trigger_states().await.unwrap().is_empty());
}

/// Job changes are reported once committed, with the job id.
pub async fn job_changes_report_creates_updates_and_deletes(store: Arc<dyn Store>) {
    let mut changes = store.job_changes();
    let (job_id, settings) = deploy(&store, job("watched", &["a"])).await;
    store.update_job(job_id, &settings).await.unwrap();
    store.delete_job(job_id).await.unwrap();
    for _ in 0..3 {
        let id = tokio::time::timeout(std::time::Duration::from_secs(5), changes.recv())
            .await
            .expect("a change within 5 s")
            .unwrap();
        assert_eq!(id, job_id);
    }
    assert!(changes.try_recv().is_err(), "one report per change");
}
