//! The alert outbox: idempotent recording with the consumer cursor, claims, attempts, listing.

use super::*;
use crate::store::{
    AlertAttempt, AlertChannel, AlertFilter, AlertStatus, CursorMove, LifeCycleState, NewAlert,
    StoreError,
};

fn alert(
    key: &str,
    run_id: RunId,
    job_id: Option<JobId>,
    destination: &str,
    at: Millis,
) -> NewAlert {
    NewAlert {
        dedupe_key: key.into(),
        run_id,
        job_id,
        task_key: None,
        event: "on_failure".into(),
        channel: AlertChannel::Webhook,
        destination: destination.into(),
        payload: json!({"event_type": "jobs.on_failure", "run": {"run_id": run_id}}),
        created_time: at,
    }
}

fn moved(from: i64, to: i64) -> Option<CursorMove> {
    Some(CursorMove {
        consumer: "alerts".into(),
        from,
        to,
    })
}

/// Alerts are recorded once per dedupe key, with the cursor moved in the same transaction; a
/// stale cursor records nothing.
pub async fn alerts_are_recorded_once_with_their_cursor(store: Arc<dyn Store>) {
    assert_eq!(store.event_cursor("alerts").await.unwrap(), 0);
    let a = alert("ev:1/webhook/http://x", 7, Some(1), "http://x", 100);
    assert!(
        store
            .enqueue_alerts(moved(0, 5), vec![a.clone()])
            .await
            .unwrap()
    );
    assert_eq!(store.event_cursor("alerts").await.unwrap(), 5);
    assert_eq!(store.event_cursor("other").await.unwrap(), 0);

    // A replay from the old cursor (another node, or a crash before the move) changes nothing.
    let b = alert("ev:2/webhook/http://y", 7, Some(1), "http://y", 100);
    assert!(
        !store
            .enqueue_alerts(moved(0, 5), vec![b.clone()])
            .await
            .unwrap()
    );
    assert_eq!(store.event_cursor("alerts").await.unwrap(), 5);
    // The same key again (no cursor: a health-rule alert) is recorded once.
    assert!(
        store
            .enqueue_alerts(None, vec![a.clone(), b])
            .await
            .unwrap()
    );
    let all = store.list_alerts(&AlertFilter::default()).await.unwrap();
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].destination, "http://y", "newest first");
    assert_eq!(all[1].destination, "http://x");
    assert_eq!(all[1].status, AlertStatus::Pending);
    assert_eq!(all[1].attempts, 0);
    assert_eq!(all[1].payload, a.payload);
    assert_eq!(all[1].next_attempt_time, 100);
}

/// Claims take due pending alerts once per lease; attempts retry, deliver or fail them.
pub async fn alert_claims_and_attempts(store: Arc<dyn Store>) {
    store
        .enqueue_alerts(
            None,
            vec![
                alert("a", 1, Some(1), "http://a", 100),
                alert("b", 2, Some(2), "http://b", 200),
            ],
        )
        .await
        .unwrap();
    assert_eq!(store.next_alert_time().await.unwrap(), Some(100));
    let claimed = store.claim_alerts("n1", 150, 1_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "only due alerts");
    let a = claimed[0].alert_id;
    assert!(
        store
            .claim_alerts("n2", 160, 1_000, 10)
            .await
            .unwrap()
            .is_empty(),
        "a claimed alert is not claimed twice"
    );
    store
        .record_alert_attempt(
            a,
            AlertAttempt::Retry {
                at: 500,
                error: "connection refused".into(),
            },
            170,
        )
        .await
        .unwrap();
    let both = store.claim_alerts("n1", 300, 1_000, 10).await.unwrap();
    assert_eq!(both.len(), 1, "the retry waits for its time: {both:?}");
    let b = both[0].alert_id;
    // n1 restarts holding b: releasing its claims makes b claimable at once.
    assert_eq!(store.release_alert_claims("n1").await.unwrap(), 1);
    assert_eq!(store.release_alert_claims("n1").await.unwrap(), 0);
    let reclaimed = store.claim_alerts("n1", 310, 1_000, 10).await.unwrap();
    assert_eq!(reclaimed.len(), 1);
    assert_eq!(reclaimed[0].alert_id, b);
    // n1 dies holding b: once its claim expires another node takes it.
    let again = store.claim_alerts("n2", 1_400, 1_000, 10).await.unwrap();
    let ids: Vec<_> = again.iter().map(|x| x.alert_id).collect();
    assert_eq!(ids, vec![b, a], "the earliest due first");
    store
        .record_alert_attempt(a, AlertAttempt::Delivered, 1_310)
        .await
        .unwrap();
    store
        .record_alert_attempt(
            b,
            AlertAttempt::Failed {
                error: "500 Internal Server Error".into(),
            },
            1_320,
        )
        .await
        .unwrap();
    assert_eq!(store.next_alert_time().await.unwrap(), None);
    let err = store
        .record_alert_attempt(a, AlertAttempt::Delivered, 1_330)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidState(_)), "{err}");
    assert!(matches!(
        store
            .record_alert_attempt(999, AlertAttempt::Delivered, 1_330)
            .await
            .unwrap_err(),
        StoreError::NotFound(_)
    ));

    let delivered = store
        .list_alerts(&AlertFilter {
            status: Some(AlertStatus::Delivered),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].attempts, 2);
    assert_eq!(
        delivered[0].last_error.as_deref(),
        Some("connection refused")
    );
    assert_eq!(delivered[0].updated_time, 1_310);
    let failed = store
        .list_alerts(&AlertFilter {
            job_id: Some(2),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status, AlertStatus::Failed);
    assert_eq!(failed[0].attempts, 1);
    assert_eq!(
        failed[0].last_error.as_deref(),
        Some("500 Internal Server Error")
    );
    let of_run = store
        .list_alerts(&AlertFilter {
            run_id: Some(1),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_run[0].alert_id, a);
}

/// Active runs are counted per life cycle state.
pub async fn active_runs_are_counted_by_state(store: Arc<dyn Store>) {
    assert!(store.count_active_runs().await.unwrap().is_empty());
    let deployed = deploy(&store, limited_job("counted", 1, true)).await;
    let r1 = start(&store, &deployed, 10).await.run_id;
    start(&store, &deployed, 20).await;
    start(&store, &deployed, 30).await;
    assert_eq!(
        store.count_active_runs().await.unwrap(),
        vec![(LifeCycleState::Pending, 1), (LifeCycleState::Queued, 2)]
    );
    claim_ids(&store, "a", 40).await;
    finish(&store, "a", r1, ResultState::Success, 50).await;
    claim_ids(&store, "a", 60).await;
    assert_eq!(
        store.count_active_runs().await.unwrap(),
        vec![(LifeCycleState::Pending, 1), (LifeCycleState::Queued, 1)]
    );
}
