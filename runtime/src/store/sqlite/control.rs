//! User control of runs: cancel requests and repairs.

use super::{events, runs, tasks};
use crate::store::{
    CancelOutcome, LifeCycleState, Millis, NewRepair, RepairRecord, ResultState, RunId, StoreError,
    StoreResult,
};
use rusqlite::Connection;

/// The state message of a run canceled before a coordinator picked it up.
const CANCELED_BEFORE_START: &str = "canceled before it started";

/// Cancels a run that has not started at once; flags a coordinated run for its coordinator.
pub(super) fn request_cancel(
    conn: &Connection,
    run_id: RunId,
    now: Millis,
) -> StoreResult<CancelOutcome> {
    let head =
        runs::head(conn, run_id)?.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?;
    if head.state.is_final() {
        return Ok(CancelOutcome::AlreadyFinal);
    }
    let not_started = head.state == LifeCycleState::Queued
        || (head.state == LifeCycleState::Pending && head.owner.is_none());
    if !not_started {
        conn.prepare_cached("UPDATE runs SET cancel_requested = 1 WHERE run_id = ?1")?
            .execute([run_id])?;
        return Ok(CancelOutcome::Requested);
    }
    let mut run = runs::require(conn, run_id)?;
    run.life_cycle_state = LifeCycleState::Terminated;
    run.result_state = Some(ResultState::Canceled);
    run.state_message = CANCELED_BEFORE_START.to_string();
    run.end_time = Some(now);
    run.cancel_requested = false;
    if let Some(open) = run
        .repair_history
        .last_mut()
        .filter(|r| r.end_time.is_none())
    {
        open.end_time = Some(now);
        open.result_state = Some(ResultState::Canceled);
    }
    runs::rewrite_unowned(conn, &run)?;
    tasks::cancel_unfinished(conn, run_id, CANCELED_BEFORE_START)?;
    events::append(
        conn,
        run_id,
        run.job_id,
        LifeCycleState::Terminated,
        Some(ResultState::Canceled),
        now,
    )?;
    Ok(CancelOutcome::Canceled)
}

/// Reopens a final run for a repair of some of its top-level tasks; returns the repair id.
pub(super) fn start_repair(conn: &Connection, repair: NewRepair) -> StoreResult<i64> {
    let run_id = repair.run_id;
    let mut run = runs::require(conn, run_id)?;
    if !matches!(
        run.life_cycle_state,
        LifeCycleState::Terminated | LifeCycleState::InternalError
    ) {
        return Err(StoreError::InvalidState(format!(
            "run {run_id} is {}; only a TERMINATED or INTERNAL_ERROR run can be repaired",
            run.life_cycle_state.as_str()
        )));
    }
    let latest = run.repair_count();
    if let Some(given) = repair.latest_repair_id
        && given != latest
    {
        return Err(StoreError::InvalidState(format!(
            "run {run_id}: latest_repair_id {given} is stale; the run's latest repair id is \
             {latest}"
        )));
    }
    let mut keys: Vec<String> = Vec::with_capacity(repair.task_keys.len());
    for key in repair.task_keys {
        if run.plan.settings.task(&key).is_none() {
            let known: Vec<&str> = run
                .plan
                .settings
                .tasks
                .iter()
                .map(|t| t.task_key.as_str())
                .collect();
            return Err(StoreError::InvalidState(format!(
                "run {run_id} has no task {key:?} to repair; its tasks are {known:?}"
            )));
        }
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    if keys.is_empty() {
        return Err(StoreError::InvalidState(format!(
            "a repair of run {run_id} must name at least one task"
        )));
    }

    let repair_id = latest + 1;
    let first = runs::allocate_ids(conn, keys.len() as u32)?;
    let task_run_ids: Vec<RunId> = (first..).take(keys.len()).collect();
    for (task_run_id, key) in task_run_ids.iter().zip(&keys) {
        tasks::upsert(conn, &tasks::blocked(run_id, *task_run_id, key, repair_id))?;
    }
    run.repair_history.push(RepairRecord {
        repair_id,
        start_time: repair.now,
        end_time: None,
        task_keys: keys,
        task_run_ids,
        result_state: None,
    });
    for (name, value) in repair.job_parameters {
        run.job_parameters.insert(name.clone(), value.clone());
        run.overriding_parameters.insert(name, value);
    }
    run.life_cycle_state = LifeCycleState::Pending;
    run.result_state = None;
    run.state_message = format!("repair {repair_id} pending");
    run.end_time = None;
    run.cancel_requested = false;
    runs::rewrite_unowned(conn, &run)?;
    events::append(
        conn,
        run_id,
        run.job_id,
        LifeCycleState::Pending,
        None,
        repair.now,
    )?;
    Ok(repair_id)
}
