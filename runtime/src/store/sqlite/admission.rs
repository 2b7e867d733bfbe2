//! Admission: creating runs under their job's `max_concurrent_runs` and queue setting, and
//! promoting queued runs once their job has room.

use super::{events, runs, tasks, triggers};
use crate::store::{
    Admission, JobId, LifeCycleState, Millis, NewRun, ResultState, RunCreated, RunId, RunRecord,
    StoreResult,
};
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

/// Where a new run starts.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Decision {
    state: LifeCycleState,
    result: Option<ResultState>,
    message: String,
}

/// Creates a run (or returns the run with the same idempotency token), deciding admission.
pub(super) fn create_run(conn: &Connection, new: NewRun) -> StoreResult<RunCreated> {
    if let Some(token) = &new.idempotency_token
        && let Some(existing) = by_token(conn, token)?
    {
        if let (Some(commit), Some(job_id)) = (&new.trigger_commit, new.job_id) {
            triggers::apply(conn, commit, job_id, existing.run_id, new.now)?;
        }
        return Ok(existing);
    }
    let decision = decide(conn, new.job_id, new.admission)?;
    let skipped = decision.state == LifeCycleState::Skipped;
    let task_keys: Vec<String> = if skipped {
        Vec::new()
    } else {
        new.plan
            .settings
            .tasks
            .iter()
            .map(|t| t.task_key.clone())
            .collect()
    };
    let run_id = runs::allocate_ids(conn, 1 + task_keys.len() as u32)?;
    let run = RunRecord {
        run_id,
        job_id: new.job_id,
        run_name: new.run_name,
        life_cycle_state: decision.state,
        result_state: decision.result,
        state_message: decision.message,
        trigger: new.trigger,
        trigger_info: new.trigger_info,
        job_parameters: new.job_parameters,
        overriding_parameters: new.overriding_parameters,
        plan: new.plan,
        created_time: new.now,
        start_time: None,
        end_time: skipped.then_some(new.now),
        repair_history: Vec::new(),
        cancel_requested: false,
        parent: new.parent,
        idempotency_token: new.idempotency_token,
    };
    runs::insert(conn, &run)?;
    for (task_run_id, key) in (run_id + 1..).zip(&task_keys) {
        tasks::upsert(conn, &tasks::blocked(run_id, task_run_id, key, 0))?;
    }
    events::append(
        conn,
        run_id,
        run.job_id,
        run.life_cycle_state,
        run.result_state,
        new.now,
    )?;
    if let (Some(commit), Some(job_id)) = (&new.trigger_commit, run.job_id) {
        triggers::apply(conn, commit, job_id, run_id, new.now)?;
    }
    Ok(RunCreated {
        run_id,
        created: true,
        life_cycle_state: run.life_cycle_state,
    })
}

/// The run created earlier with this token, in its current state.
fn by_token(conn: &Connection, token: &str) -> StoreResult<Option<RunCreated>> {
    let found: Option<(RunId, String)> = conn
        .prepare_cached("SELECT run_id, life_cycle_state FROM runs WHERE idempotency_token = ?1")?
        .query_row([token], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    found
        .map(|(run_id, state)| {
            Ok(RunCreated {
                run_id,
                created: false,
                life_cycle_state: super::codec::life_cycle(&state, || {
                    format!("life_cycle_state of run {run_id}")
                })?,
            })
        })
        .transpose()
}

fn decide(
    conn: &Connection,
    job_id: Option<JobId>,
    admission: Option<Admission>,
) -> StoreResult<Decision> {
    let admit = Decision {
        state: LifeCycleState::Pending,
        result: None,
        message: String::new(),
    };
    let Some(Admission {
        max_concurrent_runs: max,
        queue_enabled,
    }) = admission
    else {
        return Ok(admit);
    };
    let job = job_id.map_or_else(
        || "runs without a job".to_string(),
        |id| format!("job {id}"),
    );
    let skip = |reason: String| Decision {
        state: LifeCycleState::Skipped,
        result: Some(ResultState::MaximumConcurrentRunsReached),
        message: format!("skipped: {reason}"),
    };
    if max == 0 {
        return Ok(skip(format!("{job} has max_concurrent_runs = 0")));
    }
    let active = count_active(conn, job_id)?;
    let queued = has_queued(conn, job_id)?;
    if active < i64::from(max) && !queued {
        return Ok(admit);
    }
    let reason = if active >= i64::from(max) {
        let runs = if active == 1 { "run" } else { "runs" };
        format!("{job} already has {active} active {runs} (max_concurrent_runs = {max})")
    } else {
        format!("{job} has queued runs waiting for a slot")
    };
    Ok(if queue_enabled {
        Decision {
            state: LifeCycleState::Queued,
            result: None,
            message: format!("queued: {reason}"),
        }
    } else {
        skip(format!("{reason} and queueing is off"))
    })
}

fn count_active(conn: &Connection, job_id: Option<JobId>) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached(
            "SELECT COUNT(*) FROM runs
             WHERE job_id IS ?1 AND life_cycle_state IN ('PENDING', 'RUNNING', 'TERMINATING')",
        )?
        .query_row([job_id], |row| row.get(0))?)
}

fn has_queued(conn: &Connection, job_id: Option<JobId>) -> StoreResult<bool> {
    Ok(conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM runs WHERE job_id IS ?1 AND life_cycle_state = 'QUEUED')",
        )?
        .query_row([job_id], |row| row.get(0))?)
}

/// Makes QUEUED runs PENDING, oldest first, while their job is under its current limit. Runs
/// without a job, or whose job was deleted, have no limit.
pub(super) fn promote_queued(conn: &Connection, now: Millis) -> StoreResult<()> {
    let queued: Vec<(RunId, Option<JobId>, Option<i64>)> = {
        let mut statement = conn.prepare_cached(
            "SELECT r.run_id, r.job_id, j.max_concurrent_runs FROM runs r
             LEFT JOIN jobs j ON j.job_id = r.job_id
             WHERE r.life_cycle_state = 'QUEUED' ORDER BY r.run_id",
        )?;
        let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut active: HashMap<JobId, i64> = HashMap::new();
    for (run_id, job_id, limit) in queued {
        if let (Some(job_id), Some(limit)) = (job_id, limit) {
            let count = match active.get(&job_id) {
                Some(count) => *count,
                None => count_active(conn, Some(job_id))?,
            };
            if count >= limit {
                active.insert(job_id, count);
                continue;
            }
            active.insert(job_id, count + 1);
        }
        conn.prepare_cached(
            "UPDATE runs SET life_cycle_state = 'PENDING', state_message = '' WHERE run_id = ?1",
        )?
        .execute(params![run_id])?;
        events::append(conn, run_id, job_id, LifeCycleState::Pending, None, now)?;
    }
    Ok(())
}
