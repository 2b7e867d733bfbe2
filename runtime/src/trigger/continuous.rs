//! `continuous`: a new run as soon as the previous one ends, never two at once, with
//! exponential backoff after failures.
//!
//! - The first run starts when the trigger is armed (deploy, resume); each next run starts as
//!   soon as the previous one is final. A run still going when the job is paused is waited for
//!   after the resume, so a continuous job never has two of its runs at once.
//! - Backoff: after `n` consecutive failed runs the next one starts
//!   `min(5 s × 2^(n-1), 5 min)` after the failed run ended (5 s, 10 s, 20 s, 40 s, 80 s,
//!   160 s, then 300 s); one successful run (`SUCCESS` or `SUCCESS_WITH_FAILURES`) resets it.
//!   A canceled run neither counts as a failure nor resets the count; every other result
//!   (`FAILED`, `TIMEDOUT`, `INTERNAL_ERROR`, a skipped run, ...) is a failure.
//! - Each run's idempotency key is derived from the run it follows
//!   (`weir:continuous:<job>:after:<run_id>`; the first after arming:
//!   `weir:continuous:<job>:armed:<armed_time>`), so a restart or a second node makes one
//!   successor per run. The cursor `{"last_run_id", "failures_before"}` says which run to
//!   follow; the failure count is recomputed from that run's result, never kept in memory.

use super::{ContinuousStart, Trigger, TriggerContext, TriggerError, TriggerEvent, WatchedJob};
use crate::store::{
    JobId, LifeCycleState, Millis, ResultState, RunId, TriggerCommit, TriggerKind, TriggerState,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Wait after the first failure in a row.
pub const FIRST_BACKOFF_MS: Millis = 5_000;
/// Longest wait between a failed run and the next.
pub const MAX_BACKOFF_MS: Millis = 300_000;

/// How long the next run waits after `failures` consecutive failed runs.
pub fn backoff_ms(failures: u32) -> Millis {
    if failures == 0 {
        return 0;
    }
    let doublings = (failures - 1).min(20);
    (FIRST_BACKOFF_MS << doublings).min(MAX_BACKOFF_MS)
}

/// The continuous trigger's progress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Cursor {
    /// The latest run this trigger started.
    last_run_id: Option<RunId>,
    /// Consecutive failures before that run.
    #[serde(default)]
    failures_before: u32,
}

/// What a finished run means for the failure count.
fn failures_after(run_result: Option<ResultState>, before: u32) -> u32 {
    match run_result {
        Some(ResultState::Success | ResultState::SuccessWithFailures) => 0,
        Some(ResultState::Canceled) => before,
        _ => before.saturating_add(1),
    }
}

/// The `continuous` kind.
pub struct ContinuousKind;

#[async_trait]
impl Trigger for ContinuousKind {
    fn kind(&self) -> TriggerKind {
        TriggerKind::Continuous
    }

    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        ctx: TriggerContext,
    ) -> Result<(), TriggerError> {
        let job_id = job.job_id;
        let mut state = job.state.clone();
        loop {
            let cursor: Cursor = serde_json::from_value(state.cursor.clone()).unwrap_or_default();
            let (key, failures) = match cursor.last_run_id {
                None => (
                    format!("weir:continuous:{job_id}:armed:{}", state.armed_time),
                    0,
                ),
                Some(previous) => {
                    let (result, ended) = wait_final(&ctx, job_id, previous).await?;
                    let failures = failures_after(result, cursor.failures_before);
                    let start_at = ended.unwrap_or_else(|| ctx.now()) + backoff_ms(failures);
                    if start_at > ctx.now() {
                        state.next_fire_time = Some(start_at);
                        state.updated_time = ctx.now();
                        ctx.save_state(&state).await?;
                        tracing::info!(
                            job.id = job_id,
                            failures,
                            backoff_ms = backoff_ms(failures),
                            "weir.trigger.continuous: backing off after failed runs"
                        );
                        ctx.clock().sleep_until(start_at).await;
                    }
                    (
                        format!("weir:continuous:{job_id}:after:{previous}"),
                        failures,
                    )
                }
            };
            state = start(&ctx, job_id, state, cursor.last_run_id, key, failures).await?;
        }
    }
}

/// Waits until a run is final; its result (`None` for an internal error) and end time.
async fn wait_final(
    ctx: &TriggerContext,
    job_id: JobId,
    run_id: RunId,
) -> Result<(Option<ResultState>, Option<Millis>), TriggerError> {
    loop {
        match ctx.engine().wait(run_id, Duration::from_secs(60)).await {
            Ok(snap) if snap.run.life_cycle_state.is_final() => {
                let result = match snap.run.life_cycle_state {
                    LifeCycleState::InternalError => None,
                    _ => snap.run.result_state,
                };
                return Ok((result, snap.run.end_time));
            }
            Ok(_) => continue,
            // A deleted run counts as canceled: no failure, no reset.
            Err(crate::engine::EngineError::NotFound(_)) => {
                return Ok((Some(ResultState::Canceled), None));
            }
            Err(source) => return Err(TriggerError::Fire { job_id, source }),
        }
    }
}

/// Records the next run and the trigger state in its transaction, then points the cursor at it.
async fn start(
    ctx: &TriggerContext,
    job_id: JobId,
    state: TriggerState,
    previous: Option<RunId>,
    key: String,
    failures: u32,
) -> Result<TriggerState, TriggerError> {
    let now = ctx.now();
    let mut next = state;
    next.last_fire_time = Some(now);
    next.next_fire_time = None;
    next.last_error = None;
    next.last_error_time = None;
    next.updated_time = now;
    let created = ctx
        .fire(TriggerEvent {
            job_id,
            payload: super::TriggerPayload::Continuous(ContinuousStart {
                time: now,
                previous_run_id: previous,
                consecutive_failures: failures,
            }),
            idempotency_key: key,
            job_parameters: Default::default(),
            commit: TriggerCommit {
                state: Some(next.clone()),
                seen: Vec::new(),
            },
        })
        .await?;
    tracing::info!(
        job.id = job_id,
        run.id = created.run_id,
        created = created.created,
        failures,
        "weir.trigger.continuous.fire"
    );
    // The run's key says which run it follows: after a crash before this write, the same
    // key finds the same run again.
    next.cursor = serde_json::to_value(Cursor {
        last_run_id: Some(created.run_id),
        failures_before: failures,
    })
    .expect("cursor serializes");
    next.last_run_id = Some(created.run_id);
    ctx.save_state(&next).await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use crate::engine::testing::TestEngine;
    use crate::store::{RunFilter, RunRecord};
    use crate::trigger::{TriggerManager, TriggerPayload};

    const T0: Millis = 1_704_067_200_000;

    fn start_of(run: &RunRecord) -> ContinuousStart {
        match TriggerPayload::from_json(&run.trigger_info) {
            Some(TriggerPayload::Continuous(c)) => c,
            other => panic!("run {} is not a continuous run: {other:?}", run.run_id),
        }
    }

    async fn runs(node: &TestEngine, job_id: JobId) -> Vec<RunRecord> {
        let filter = RunFilter {
            job_id: Some(job_id),
            limit: 1000,
            ..Default::default()
        };
        let (mut runs, _) = node.store().list_runs(&filter).await.unwrap();
        runs.sort_by_key(|r| r.run_id);
        runs
    }

    /// Waits (20 s at most) until the job's runs satisfy `f`; returns them.
    async fn until(
        node: &TestEngine,
        job_id: JobId,
        what: &str,
        f: impl Fn(&[RunRecord]) -> bool,
    ) -> Vec<RunRecord> {
        for _ in 0..800 {
            let r = runs(node, job_id).await;
            if f(&r) {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "runs of job {job_id} never reached: {what}: {:#?}",
            runs(node, job_id).await
        );
    }

    fn manager(node: &TestEngine) -> TriggerManager {
        TriggerManager::start(
            TriggerContext::new(node.engine.clone()),
            vec![Arc::new(ContinuousKind)],
        )
    }

    #[tokio::test]
    async fn each_run_starts_when_the_previous_one_ended() {
        let clock = ManualClock::at(T0);
        let node = TestEngine::start(Arc::new(clock.clone())).await;
        let m = manager(&node);
        let job_id = node
            .create_job(
                "name: loop
continuous: {pause_status: UNPAUSED}
tasks: [{task_key: a, condition_task: {op: EQUAL_TO, left: '1', right: '1'}}]",
            )
            .await;
        let all = until(&node, job_id, "three runs", |r| r.len() >= 3).await;
        m.shutdown().await;
        let first = start_of(&all[0]);
        assert_eq!(first.previous_run_id, None);
        assert_eq!(
            all[0].idempotency_token.as_deref(),
            Some(format!("weir:continuous:{job_id}:armed:{T0}").as_str())
        );
        for pair in all.windows(2) {
            let next = start_of(&pair[1]);
            assert_eq!(next.previous_run_id, Some(pair[0].run_id));
            assert_eq!(next.consecutive_failures, 0);
            assert_eq!(
                pair[1].idempotency_token.as_deref(),
                Some(format!("weir:continuous:{job_id}:after:{}", pair[0].run_id).as_str())
            );
        }
        // Never two at once: when a run was created, every earlier one was final.
        let all = runs(&node, job_id).await;
        let active = all
            .iter()
            .filter(|r| !r.life_cycle_state.is_final())
            .count();
        assert!(active <= 1, "{all:#?}");
        for pair in all.windows(2) {
            assert!(
                pair[0]
                    .end_time
                    .is_some_and(|end| end <= pair[1].created_time)
            );
        }
    }

    #[tokio::test]
    async fn failures_back_off_exponentially_and_pause_stops_the_loop() {
        let clock = ManualClock::at(T0);
        let node = TestEngine::start(Arc::new(clock.clone())).await;
        let wasm = wat::parse_str(include_str!("../exec/testdata/divide.wat")).unwrap();
        node.engine
            .registry()
            .push(Some("divide"), wasm.into(), T0)
            .await
            .unwrap();
        let spec = |pause: &str| {
            format!(
                "name: failing
continuous: {{pause_status: {pause}}}
tasks: [{{task_key: a, wasm_task: {{module: divide}}}}]"
            )
        };
        let m = manager(&node);
        let job_id = node.create_job(&spec("UNPAUSED")).await;
        let failed = |n: usize| {
            move |r: &[RunRecord]| {
                r.len() >= n
                    && r[..n]
                        .iter()
                        .all(|r| r.result_state == Some(ResultState::Failed))
            }
        };
        let all = until(&node, job_id, "first run failed", failed(1)).await;
        let end = all[0].end_time.unwrap();
        let state = |node: &TestEngine| {
            let store = node.store().clone();
            async move { store.get_trigger_state(job_id).await.unwrap().unwrap() }
        };
        for _ in 0..400 {
            if state(&node).await.next_fire_time == Some(end + 5_000) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(state(&node).await.next_fire_time, Some(end + 5_000));
        assert_eq!(
            runs(&node, job_id).await.len(),
            1,
            "no run during the backoff"
        );

        clock.set(end + 5_000);
        let all = until(&node, job_id, "second run failed", failed(2)).await;
        let second = start_of(&all[1]);
        assert_eq!(second.consecutive_failures, 1);
        assert_eq!(second.previous_run_id, Some(all[0].run_id));
        assert_eq!(all[1].created_time, end + 5_000);
        let end2 = all[1].end_time.unwrap();
        for _ in 0..400 {
            if state(&node).await.next_fire_time == Some(end2 + 10_000) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(state(&node).await.next_fire_time, Some(end2 + 10_000));

        // Paused during the backoff: the wait ends, no run starts.
        node.store()
            .update_job(
                job_id,
                &crate::spec::test_support::settings(&spec("PAUSED")),
            )
            .await
            .unwrap();
        for _ in 0..400 {
            if state(&node).await.next_fire_time.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        clock.set(end2 + 60_000);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(runs(&node, job_id).await.len(), 2);
        m.shutdown().await;
        assert!(clock.now_ms() > end2);
    }

    #[test]
    fn backoff_doubles_from_five_seconds_to_five_minutes() {
        let waits: Vec<Millis> = (0..9).map(backoff_ms).collect();
        assert_eq!(
            waits,
            [
                0, 5_000, 10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000
            ]
        );
        assert_eq!(backoff_ms(u32::MAX), MAX_BACKOFF_MS);
    }

    #[test]
    fn success_resets_and_cancel_keeps_the_failure_count() {
        assert_eq!(failures_after(Some(ResultState::Failed), 2), 3);
        assert_eq!(failures_after(Some(ResultState::Timedout), 0), 1);
        assert_eq!(failures_after(None, 0), 1);
        assert_eq!(failures_after(Some(ResultState::Success), 5), 0);
        assert_eq!(failures_after(Some(ResultState::SuccessWithFailures), 5), 0);
        assert_eq!(failures_after(Some(ResultState::Canceled), 4), 4);
    }
}
