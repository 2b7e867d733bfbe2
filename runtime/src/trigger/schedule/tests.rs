//! Schedules, intervals and backfills on a real engine and store, driven by a manual clock.

use super::backfill::{BackfillError, MAX_BACKFILL_RUNS, backfill};
use super::*;
use crate::clock::{Clock, ManualClock};
use crate::engine::testing::TestEngine;
use crate::store::{RunFilter, RunRecord};
use crate::trigger::TriggerManager;
use std::time::Duration;

/// 2024-01-01T00:00:00.500Z: half a second past a minute.
const T0: Millis = 1_704_067_200_500;
const MINUTE: Millis = 60_000;

struct Setup {
    node: TestEngine,
    clock: ManualClock,
    manager: Option<TriggerManager>,
}

impl Setup {
    async fn new() -> Setup {
        let clock = ManualClock::at(T0);
        let node = TestEngine::start(Arc::new(clock.clone())).await;
        let mut s = Setup {
            node,
            clock,
            manager: None,
        };
        s.start_manager();
        s
    }

    fn start_manager(&mut self) {
        let triggers: Vec<Arc<dyn Trigger>> = vec![
            Arc::new(ScheduleKind::cron()),
            Arc::new(ScheduleKind::periodic()),
        ];
        self.manager = Some(TriggerManager::start(
            TriggerContext::new(self.node.engine.clone()),
            triggers,
        ));
    }

    async fn stop_manager(&mut self) {
        if let Some(m) = self.manager.take() {
            m.shutdown().await;
        }
    }

    async fn state(&self, job_id: JobId) -> Option<TriggerState> {
        self.node.store().get_trigger_state(job_id).await.unwrap()
    }

    /// Waits (10 s at most) until the job's trigger state satisfies `f`.
    async fn until(&self, job_id: JobId, what: &str, f: impl Fn(&TriggerState) -> bool) {
        for _ in 0..400 {
            if self.state(job_id).await.is_some_and(|s| f(&s)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "trigger state of job {job_id} never reached: {what}; it is {:#?}",
            self.state(job_id).await
        );
    }

    /// The job's runs, oldest first.
    async fn runs(&self, job_id: JobId) -> Vec<RunRecord> {
        let filter = RunFilter {
            job_id: Some(job_id),
            limit: 1000,
            ..Default::default()
        };
        let (mut runs, _) = self.node.store().list_runs(&filter).await.unwrap();
        runs.sort_by_key(|r| r.run_id);
        runs
    }

    async fn update(&self, job_id: JobId, yaml: &str) {
        let settings = crate::spec::test_support::settings(yaml);
        self.node
            .store()
            .update_job(job_id, &settings)
            .await
            .unwrap();
    }
}

fn cron_job(expr: &str, tz: &str, pause: &str) -> String {
    format!(
        "name: cron
schedule: {{quartz_cron_expression: '{expr}', timezone_id: {tz}, pause_status: {pause}}}
tasks: [{{task_key: a, condition_task: {{op: EQUAL_TO, left: '1', right: '1'}}}}]"
    )
}

fn periodic_job(seconds: u32) -> String {
    format!(
        "name: every
trigger: {{periodic: {{interval: {seconds}, unit: SECONDS}}}}
tasks: [{{task_key: a, condition_task: {{op: EQUAL_TO, left: '1', right: '1'}}}}]"
    )
}

fn fire_of(run: &RunRecord) -> ScheduledFire {
    match TriggerPayload::from_json(&run.trigger_info) {
        Some(TriggerPayload::Schedule(f) | TriggerPayload::Periodic(f)) => f,
        other => panic!("run {} is not a scheduled run: {other:?}", run.run_id),
    }
}

/// The minute after `t`.
fn minute_after(t: Millis) -> Millis {
    (t / MINUTE + 1) * MINUTE
}

#[tokio::test]
async fn a_schedule_fires_once_per_fire_time_on_the_clock() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 * * * * ?", "UTC", "UNPAUSED"))
        .await;
    let first = minute_after(T0);
    s.until(job_id, "next fire time known", |st| {
        st.next_fire_time == Some(first)
    })
    .await;
    assert!(s.runs(job_id).await.is_empty(), "nothing before its time");

    s.clock.set(first - 1);
    tokio::task::yield_now().await;
    s.clock.set(first);
    s.until(job_id, "first fire", |st| st.last_fire_time == Some(first))
        .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        fire_of(&runs[0]),
        ScheduledFire {
            time: first,
            catch_up: false,
            backfill: false
        }
    );
    assert_eq!(
        runs[0].idempotency_token.as_deref(),
        Some(format!("weir:schedule:{job_id}:{first}").as_str())
    );
    assert_eq!(runs[0].trigger, crate::store::TriggerType::Periodic);
    let state = s.state(job_id).await.unwrap();
    assert_eq!(state.next_fire_time, Some(first + MINUTE));
    assert_eq!(state.cursor["last_fire_time"], first);
    s.until(job_id, "last run id recorded", |st| {
        st.last_run_id == Some(runs[0].run_id)
    })
    .await;

    // Two more minutes, one step each: one run each.
    for k in 1..=2 {
        s.clock.set(first + k * MINUTE + 3);
        s.until(job_id, "next fire", |st| {
            st.last_fire_time == Some(first + k * MINUTE)
        })
        .await;
    }
    let times: Vec<Millis> = s
        .runs(job_id)
        .await
        .iter()
        .map(|r| fire_of(r).time)
        .collect();
    assert_eq!(times, [first, first + MINUTE, first + 2 * MINUTE]);
    s.stop_manager().await;
}

#[tokio::test]
async fn missed_fire_times_give_one_catch_up_run() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 * * * * ?", "UTC", "UNPAUSED"))
        .await;
    let first = minute_after(T0);
    s.until(job_id, "armed", |st| st.next_fire_time == Some(first))
        .await;
    s.clock.set(first);
    s.until(job_id, "first fire", |st| st.last_fire_time == Some(first))
        .await;

    // The node is down for ten and a half minutes.
    s.stop_manager().await;
    s.clock.set(first + 10 * MINUTE + 30_000);
    s.start_manager();
    let latest = first + 10 * MINUTE;
    s.until(job_id, "catch-up", |st| st.last_fire_time == Some(latest))
        .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 2, "one catch-up run, not ten");
    assert_eq!(
        fire_of(&runs[1]),
        ScheduledFire {
            time: latest,
            catch_up: true,
            backfill: false
        }
    );
    assert_eq!(
        s.state(job_id).await.unwrap().next_fire_time,
        Some(latest + MINUTE)
    );

    // Back on schedule afterwards, not a catch-up.
    s.clock.set(latest + MINUTE);
    s.until(job_id, "on time again", |st| {
        st.last_fire_time == Some(latest + MINUTE)
    })
    .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 3);
    assert!(!fire_of(&runs[2]).catch_up);
    s.stop_manager().await;
}

#[tokio::test]
async fn a_fire_time_recorded_before_a_crash_is_not_fired_again() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 * * * * ?", "UTC", "UNPAUSED"))
        .await;
    let first = minute_after(T0);
    s.until(job_id, "armed", |st| st.next_fire_time == Some(first))
        .await;
    s.stop_manager().await;
    // Another node (or this one before a kill -9) recorded the run of `first`, but this
    // node's trigger state does not know it.
    let ctx = TriggerContext::new(s.node.engine.clone());
    let other = ctx
        .fire(TriggerEvent {
            job_id,
            payload: payload(
                TriggerKind::Schedule,
                ScheduledFire {
                    time: first,
                    catch_up: false,
                    backfill: false,
                },
            ),
            idempotency_key: fire_key(TriggerKind::Schedule, job_id, first),
            job_parameters: Default::default(),
            commit: TriggerCommit::default(),
        })
        .await
        .unwrap();
    s.clock.set(first + 2_000);
    s.start_manager();
    s.until(job_id, "fired", |st| st.last_fire_time == Some(first))
        .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 1, "one run for the fire time");
    assert_eq!(runs[0].run_id, other.run_id);
    s.stop_manager().await;
}

#[tokio::test]
async fn a_paused_schedule_skips_fire_times_and_resumes_from_the_next() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 * * * * ?", "UTC", "UNPAUSED"))
        .await;
    let first = minute_after(T0);
    s.until(job_id, "armed", |st| st.next_fire_time == Some(first))
        .await;
    s.clock.set(first);
    s.until(job_id, "first fire", |st| st.last_fire_time == Some(first))
        .await;

    s.update(job_id, &cron_job("0 * * * * ?", "UTC", "PAUSED"))
        .await;
    s.until(job_id, "paused (re-armed, no next fire time)", |st| {
        st.next_fire_time.is_none()
    })
    .await;
    s.clock.set(first + 5 * MINUTE + 10_000);
    // Paused: the fire times pass without runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.runs(job_id).await.len(), 1);

    let resumed_at = s.clock.now_ms();
    s.update(job_id, &cron_job("0 * * * * ?", "UTC", "UNPAUSED"))
        .await;
    let next = minute_after(resumed_at);
    s.until(job_id, "resumed", |st| {
        st.armed_time == resumed_at && st.next_fire_time == Some(next)
    })
    .await;
    assert_eq!(s.runs(job_id).await.len(), 1, "no catch-up of paused time");
    s.clock.set(next);
    s.until(job_id, "fired after resume", |st| {
        st.last_fire_time == Some(next)
    })
    .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(fire_of(&runs[1]).time, next);
    assert!(!fire_of(&runs[1]).catch_up);
    s.stop_manager().await;
}

#[tokio::test]
async fn a_changed_schedule_starts_from_its_own_next_fire_time() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 0 * * * ?", "UTC", "UNPAUSED"))
        .await;
    s.until(job_id, "hourly", |st| {
        st.next_fire_time == Some(T0 - 500 + 3_600_000)
    })
    .await;
    s.clock.set(T0 + 5 * MINUTE);
    s.update(
        job_id,
        &cron_job("0 0/2 * * * ?", "Europe/Paris", "UNPAUSED"),
    )
    .await;
    let next = T0 - 500 + 6 * MINUTE;
    s.until(job_id, "every two minutes", |st| {
        st.next_fire_time == Some(next)
    })
    .await;
    assert!(s.runs(job_id).await.is_empty());
    s.stop_manager().await;
}

#[tokio::test]
async fn an_interval_fires_on_its_grid_from_the_arming_time() {
    let mut s = Setup::new().await;
    let job_id = s.node.create_job(&periodic_job(10)).await;
    s.until(job_id, "armed", |st| st.next_fire_time == Some(T0 + 10_000))
        .await;
    s.clock.set(T0 + 10_000);
    s.until(job_id, "fired", |st| st.last_fire_time == Some(T0 + 10_000))
        .await;
    s.clock.set(T0 + 20_005);
    s.until(job_id, "fired", |st| st.last_fire_time == Some(T0 + 20_000))
        .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[1].trigger_info["kind"], "periodic");
    assert_eq!(
        runs[1].idempotency_token.as_deref(),
        Some(format!("weir:periodic:{job_id}:{}", T0 + 20_000).as_str())
    );
    // An outage of a minute: one catch-up run at the latest grid point.
    s.stop_manager().await;
    s.clock.set(T0 + 85_000);
    s.start_manager();
    s.until(job_id, "caught up", |st| {
        st.last_fire_time == Some(T0 + 80_000)
    })
    .await;
    let runs = s.runs(job_id).await;
    assert_eq!(runs.len(), 3);
    assert!(fire_of(&runs[2]).catch_up);
    s.stop_manager().await;
}

#[tokio::test]
async fn a_schedule_fires_in_its_time_zone_across_dst() {
    // 02:30 every day in Paris; 2024-03-31 has no 02:30 (02:00 -> 03:00 CEST).
    let start = 1_711_792_800_000; // 2024-03-30T10:00:00Z
    let clock = ManualClock::at(start);
    let node = TestEngine::start(Arc::new(clock.clone())).await;
    let mut s = Setup {
        node,
        clock,
        manager: None,
    };
    s.start_manager();
    let job_id = s
        .node
        .create_job(&cron_job("0 30 2 * * ?", "Europe/Paris", "UNPAUSED"))
        .await;
    let gap_end = 1_711_846_800_000; // 2024-03-31T01:00:00Z = 03:00 CEST
    s.until(job_id, "armed", |st| st.next_fire_time == Some(gap_end))
        .await;
    s.clock.set(gap_end);
    s.until(job_id, "fired", |st| st.last_fire_time == Some(gap_end))
        .await;
    let next = 1_711_931_400_000; // 2024-04-01T00:30:00Z = 02:30 CEST
    assert_eq!(s.state(job_id).await.unwrap().next_fire_time, Some(next));
    assert_eq!(s.runs(job_id).await.len(), 1);
    s.stop_manager().await;
}

#[test]
fn latest_fire_time_in_a_long_outage_is_found_quickly() {
    let (_, plan) = FirePlan::of(
        &crate::spec::test_support::settings(&cron_job("* * * * * ?", "UTC", "UNPAUSED")),
        0,
    )
    .unwrap();
    // A year of per-second fire times missed: the latest, without walking all of them.
    let started = std::time::Instant::now();
    assert_eq!(
        plan.latest_in(T0, T0 + 365 * 86_400_000 + 1_700),
        Some(T0 - 500 + 365 * 86_400_000 + 2_000)
    );
    assert_eq!(plan.latest_in(T0, T0 + 400), None);
    assert!(started.elapsed() < Duration::from_secs(1));
    let (_, yearly) = FirePlan::of(
        &crate::spec::test_support::settings(&cron_job("0 0 0 1 1 ?", "UTC", "UNPAUSED")),
        0,
    )
    .unwrap();
    assert_eq!(
        yearly
            .latest_in(T0, T0 + 3 * 366 * 86_400_000)
            .map(backfill::iso),
        Some("2027-01-01T00:00:00.000Z".to_string())
    );
}

#[tokio::test]
async fn backfill_creates_one_run_per_fire_time_and_never_duplicates() {
    let mut s = Setup::new().await;
    let job_id = s
        .node
        .create_job(&cron_job("0 0 * * * ?", "UTC", "UNPAUSED"))
        .await;
    let hour = 3_600_000;
    let midnight = T0 - 500;
    s.until(job_id, "armed", |st| {
        st.next_fire_time == Some(midnight + hour)
    })
    .await;
    s.clock.set(midnight + 10 * hour + 5);
    // The live schedule fires 10:00 (a catch-up of the hours since arming at 00:00:00.5).
    s.until(job_id, "live fire", |st| {
        st.last_fire_time == Some(midnight + 10 * hour)
    })
    .await;
    let engine = &s.node.engine;

    let runs = backfill(engine, job_id, midnight + 6 * hour, midnight + 10 * hour)
        .await
        .unwrap();
    let times: Vec<Millis> = runs.iter().map(|r| r.fire_time).collect();
    assert_eq!(
        times,
        (6..=10).map(|h| midnight + h * hour).collect::<Vec<_>>(),
        "both ends included"
    );
    assert_eq!(
        runs.iter().map(|r| r.created).collect::<Vec<_>>(),
        [true, true, true, true, false],
        "the live run of 10:00 is not duplicated"
    );
    let recorded = s.runs(job_id).await;
    assert_eq!(recorded.len(), 5);
    let backfilled = recorded
        .iter()
        .find(|r| r.run_id == runs[0].run_id)
        .unwrap();
    assert_eq!(
        fire_of(backfilled),
        ScheduledFire {
            time: midnight + 6 * hour,
            catch_up: false,
            backfill: true
        }
    );

    // The same backfill again creates nothing.
    let again = backfill(engine, job_id, midnight + 6 * hour, midnight + 10 * hour)
        .await
        .unwrap();
    assert!(again.iter().all(|r| !r.created));
    assert_eq!(
        again.iter().map(|r| r.run_id).collect::<Vec<_>>(),
        runs.iter().map(|r| r.run_id).collect::<Vec<_>>()
    );

    // Bad ranges change nothing.
    let err = backfill(engine, job_id, midnight + 2 * hour, midnight + hour)
        .await
        .unwrap_err();
    assert!(matches!(err, BackfillError::Reversed { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "the range is reversed: --from 2024-01-01T02:00:00.000Z is after --to \
         2024-01-01T01:00:00.000Z"
    );
    let err = backfill(engine, job_id, midnight, midnight + 11 * hour)
        .await
        .unwrap_err();
    assert!(matches!(err, BackfillError::Future { .. }), "{err}");
    let year_ago = midnight - 365 * 86_400_000;
    let err = backfill(engine, job_id, year_ago, midnight)
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "job {job_id}: more than {MAX_BACKFILL_RUNS} fire times between \
             2023-01-01T00:00:00.000Z and 2024-01-01T00:00:00.000Z (the most one backfill \
             creates): split the range"
        )
    );
    assert_eq!(
        s.runs(job_id).await.len(),
        5,
        "refused backfills create nothing"
    );

    // A job without a schedule cannot be backfilled.
    let plain = s
        .node
        .create_job(
            "name: plain\ntasks: [{task_key: a, condition_task: {op: EQUAL_TO, left: '1', right: '1'}}]",
        )
        .await;
    let err = backfill(engine, plain, midnight, midnight + hour)
        .await
        .unwrap_err();
    assert!(matches!(err, BackfillError::NotScheduled { .. }), "{err}");
    s.stop_manager().await;
}
