//! The trigger layer on a real engine and store, driven by a manual clock.

use super::*;
use crate::clock::ManualClock;
use crate::engine::testing::TestEngine;
use crate::store::{SeenItem, TriggerType};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

const T0: Millis = 1_700_000_000_000;

/// A trigger kind that reports each watch it starts and stops, and fails its first watches
/// when told to.
struct Probe {
    kind: TriggerKind,
    starts: mpsc::UnboundedSender<WatchedJob>,
    stops: mpsc::UnboundedSender<JobId>,
    failures: AtomicU32,
}

/// Tells the probe when a watch future is dropped.
struct Alive(JobId, mpsc::UnboundedSender<JobId>);

impl Drop for Alive {
    fn drop(&mut self) {
        let _ = self.1.send(self.0);
    }
}

#[async_trait]
impl Trigger for Probe {
    fn kind(&self) -> TriggerKind {
        self.kind
    }

    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        _ctx: TriggerContext,
    ) -> Result<(), TriggerError> {
        let _alive = Alive(job.job_id, self.stops.clone());
        let _ = self.starts.send(job.clone());
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(TriggerError::Source {
                job_id: job.job_id,
                what: "cannot reach the probe".into(),
                source: "connection refused".into(),
            });
        }
        std::future::pending().await
    }
}

struct Setup {
    node: TestEngine,
    clock: ManualClock,
    manager: TriggerManager,
    starts: mpsc::UnboundedReceiver<WatchedJob>,
    stops: mpsc::UnboundedReceiver<JobId>,
}

async fn setup(failures: u32) -> Setup {
    let clock = ManualClock::at(T0);
    let node = TestEngine::start(Arc::new(clock.clone())).await;
    let (starts_tx, starts) = mpsc::unbounded_channel();
    let (stops_tx, stops) = mpsc::unbounded_channel();
    let probe = Arc::new(Probe {
        kind: TriggerKind::Periodic,
        starts: starts_tx,
        stops: stops_tx,
        failures: AtomicU32::new(failures),
    });
    let manager = TriggerManager::start(TriggerContext::new(node.engine.clone()), vec![probe]);
    Setup {
        node,
        clock,
        manager,
        starts,
        stops,
    }
}

fn periodic_job(interval: u32, pause: &str) -> String {
    format!(
        "name: every
trigger: {{periodic: {{interval: {interval}, unit: MINUTES}}, pause_status: {pause}}}
tasks: [{{task_key: a, condition_task: {{op: EQUAL_TO, left: '1', right: '1'}}}}]"
    )
}

async fn next<T>(rx: &mut mpsc::UnboundedReceiver<T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the manager acted within 10 s")
        .expect("channel open")
}

async fn nothing<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>) {
    // The manager handles a change within milliseconds; 300 ms of silence means it did not act.
    if let Ok(Some(v)) = tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
        panic!("unexpected: {v:?}");
    }
}

async fn update(s: &Setup, job_id: JobId, yaml: &str) {
    let settings = crate::spec::test_support::settings(yaml);
    s.node.store().update_job(job_id, &settings).await.unwrap();
}

#[tokio::test]
async fn watches_follow_deploys_pauses_resumes_and_deletes() {
    let mut s = setup(0).await;
    let job_id = s.node.create_job(&periodic_job(1, "UNPAUSED")).await;
    let first = next(&mut s.starts).await;
    assert_eq!(first.job_id, job_id);
    assert_eq!(first.state.kind, TriggerKind::Periodic);
    assert_eq!(first.state.armed_time, T0);

    // A redeploy with other settings restarts the watch, re-armed at the new time.
    s.clock.advance(1_000);
    update(&s, job_id, &periodic_job(2, "UNPAUSED")).await;
    assert_eq!(next(&mut s.stops).await, job_id);
    let second = next(&mut s.starts).await;
    assert_eq!(second.state.armed_time, T0 + 1_000);
    assert_ne!(second.state.settings_hash, first.state.settings_hash);

    // A redeploy of the same trigger settings changes nothing.
    update(
        &s,
        job_id,
        &periodic_job(2, "UNPAUSED").replace("name: every", "name: every\ndescription: x"),
    )
    .await;
    nothing(&mut s.stops).await;

    // Pause stops the watch; resume re-arms at the resume time (no catch-up of paused time).
    s.clock.advance(1_000);
    update(&s, job_id, &periodic_job(2, "PAUSED")).await;
    assert_eq!(next(&mut s.stops).await, job_id);
    nothing(&mut s.starts).await;
    let paused = s
        .node
        .store()
        .get_trigger_state(job_id)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(paused.settings_hash, second.state.settings_hash);
    s.clock.advance(5_000);
    update(&s, job_id, &periodic_job(2, "UNPAUSED")).await;
    let resumed = next(&mut s.starts).await;
    assert_eq!(resumed.state.armed_time, T0 + 7_000);
    assert_eq!(resumed.state.settings_hash, second.state.settings_hash);

    // Delete stops the watch and forgets the trigger state.
    s.node.store().delete_job(job_id).await.unwrap();
    assert_eq!(next(&mut s.stops).await, job_id);
    assert_eq!(
        s.node.store().get_trigger_state(job_id).await.unwrap(),
        None
    );
    s.manager.shutdown().await;
}

#[tokio::test]
async fn a_restarted_manager_keeps_the_armed_state() {
    let mut s = setup(0).await;
    let job_id = s.node.create_job(&periodic_job(1, "UNPAUSED")).await;
    next(&mut s.starts).await;
    s.manager.shutdown().await;
    assert_eq!(next(&mut s.stops).await, job_id);

    s.clock.advance(60_000);
    let (starts_tx, mut starts) = mpsc::unbounded_channel();
    let (stops_tx, _stops) = mpsc::unbounded_channel();
    let probe = Arc::new(Probe {
        kind: TriggerKind::Periodic,
        starts: starts_tx,
        stops: stops_tx,
        failures: AtomicU32::new(0),
    });
    let manager = TriggerManager::start(TriggerContext::new(s.node.engine.clone()), vec![probe]);
    let again = next(&mut starts).await;
    assert_eq!(
        again.state.armed_time, T0,
        "an unchanged trigger is not re-armed by a restart"
    );
    manager.shutdown().await;
}

#[tokio::test]
async fn a_failed_watch_shows_its_error_and_restarts_after_a_backoff() {
    let mut s = setup(1).await;
    let job_id = s.node.create_job(&periodic_job(1, "UNPAUSED")).await;
    next(&mut s.starts).await;
    let mut error = None;
    for _ in 0..200 {
        let state = s.node.store().get_trigger_state(job_id).await.unwrap();
        if let Some(e) = state.and_then(|st| st.last_error) {
            error = Some(e);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        error.as_deref(),
        Some("job 1: cannot reach the probe: connection refused")
    );
    // The backoff runs on the engine's clock: nothing restarts until it moves.
    nothing(&mut s.starts).await;
    s.clock.advance(1_000);
    let again = next(&mut s.starts).await;
    assert_eq!(again.state.last_error.as_deref(), error.as_deref());
    s.manager.shutdown().await;
}

fn event(job_id: JobId, time: Millis, state: Option<TriggerState>) -> TriggerEvent {
    TriggerEvent {
        job_id,
        payload: TriggerPayload::Periodic(ScheduledFire {
            time,
            catch_up: false,
            backfill: false,
        }),
        idempotency_key: format!("weir:periodic:{job_id}:{time}"),
        job_parameters: BTreeMap::new(),
        commit: TriggerCommit {
            state,
            seen: vec![SeenItem {
                key: format!("tick-{time}"),
                fingerprint: "1".into(),
            }],
        },
    }
}

#[tokio::test]
async fn an_event_becomes_one_run_with_its_payload_and_trigger_state() {
    let mut s = setup(0).await;
    let job_id = s.node.create_job(&periodic_job(1, "UNPAUSED")).await;
    let watched = next(&mut s.starts).await;
    let ctx = TriggerContext::new(s.node.engine.clone());

    let mut state = watched.state.clone();
    state.cursor = serde_json::json!({"last_fire_time": T0 + 60_000});
    state.last_fire_time = Some(T0 + 60_000);
    let first = ctx
        .fire(event(job_id, T0 + 60_000, Some(state.clone())))
        .await
        .unwrap();
    assert!(first.created);
    let run = s
        .node
        .store()
        .get_run(first.run_id)
        .await
        .unwrap()
        .unwrap()
        .run;
    assert_eq!(run.trigger, TriggerType::Periodic);
    assert_eq!(run.trigger_info["kind"], "periodic");
    assert_eq!(run.trigger_info["time"], T0 + 60_000);
    assert_eq!(
        run.idempotency_token.as_deref(),
        Some(format!("weir:periodic:{job_id}:{}", T0 + 60_000).as_str())
    );
    let stored = s
        .node
        .store()
        .get_trigger_state(job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.cursor, state.cursor);
    let seen = ctx.seen(job_id).await.unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].run_id, Some(first.run_id));

    // The same event again (a restart, a second node) creates nothing, but its state still
    // lands: the trigger moves on.
    state.cursor = serde_json::json!({"last_fire_time": T0 + 60_000, "replayed": true});
    let again = ctx
        .fire(event(job_id, T0 + 60_000, Some(state.clone())))
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.run_id, first.run_id);
    let stored = s
        .node
        .store()
        .get_trigger_state(job_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.cursor["replayed"], true);

    // A paused trigger fires nothing.
    update(&s, job_id, &periodic_job(1, "PAUSED")).await;
    let err = ctx
        .fire(event(job_id, T0 + 120_000, None))
        .await
        .unwrap_err();
    assert!(matches!(err, TriggerError::Inactive { .. }), "{err}");
    s.manager.shutdown().await;
}

#[test]
fn a_job_has_at_most_one_trigger_and_its_hash_covers_the_pause_status() {
    let settings = |yaml: &str| crate::spec::test_support::settings(yaml);
    let none = settings("name: x\ntasks: []");
    assert_eq!(of(&none), None);
    let cron = settings(
        "name: x\nschedule: {quartz_cron_expression: '0 * * * * ?', timezone_id: UTC}\ntasks: []",
    );
    let t = of(&cron).unwrap();
    assert_eq!((t.kind, t.paused), (TriggerKind::Schedule, false));
    let paused = settings(
        "name: x\nschedule: {quartz_cron_expression: '0 * * * * ?', pause_status: PAUSED}\ntasks: []",
    );
    let p = of(&paused).unwrap();
    assert!(p.paused);
    assert_ne!(p.settings_hash, t.settings_hash);
    let files = settings("name: x\ntrigger: {file_arrival: {url: 'file:///in/'}}\ntasks: []");
    assert_eq!(of(&files).unwrap().kind, TriggerKind::FileArrival);
    let tables = settings("name: x\ntrigger: {table_update: {table_names: [a.b.c]}}\ntasks: []");
    assert_eq!(of(&tables).unwrap().kind, TriggerKind::TableUpdate);
    let continuous = settings("name: x\ncontinuous: {pause_status: UNPAUSED}\ntasks: []");
    assert_eq!(of(&continuous).unwrap().kind, TriggerKind::Continuous);
}
