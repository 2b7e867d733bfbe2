//! The `runs` table and the run id sequence.

use super::codec::{self, from_json, to_json};
use super::tasks;
use crate::store::{
    JobId, LifeCycleState, ParentRef, ResultState, RunFilter, RunId, RunKind, RunProgress,
    RunRecord, RunSnapshot, StoreError, StoreResult,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

macro_rules! run_columns {
    () => {
        "run_id, job_id, run_name, life_cycle_state, result_state, state_message, trigger_type, \
         trigger_info, job_parameters, overriding_parameters, plan, created_time, start_time, \
         end_time, repair_history, cancel_requested, parent_run_id, parent_task_run_id, \
         parent_depth, idempotency_token"
    };
}

/// `list_runs` page size when the filter says 0.
const DEFAULT_PAGE: u64 = 25;
/// `list_runs` page size at most.
const MAX_PAGE: u64 = 1000;

/// The coordination fields of a run, without its plan.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct RunHead {
    /// Its job.
    pub job_id: Option<JobId>,
    /// Its state.
    pub state: LifeCycleState,
    /// Its result.
    pub result: Option<ResultState>,
    /// The node holding its lease.
    pub owner: Option<String>,
}

/// Allocates `n` consecutive ids from the id space shared by runs and task runs.
pub(super) fn allocate_ids(conn: &Connection, n: u32) -> StoreResult<RunId> {
    Ok(conn
        .prepare_cached("UPDATE run_id_sequence SET next_id = next_id + ?1 RETURNING next_id - ?1")?
        .query_row([n], |row| row.get(0))?)
}

/// Inserts a new, unowned run.
pub(super) fn insert(conn: &Connection, run: &RunRecord) -> StoreResult<()> {
    let parent = run.parent;
    conn.prepare_cached(concat!(
        "INSERT INTO runs (",
        run_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20)"
    ))?
    .execute(params![
        run.run_id,
        run.job_id,
        run.run_name,
        run.life_cycle_state.as_str(),
        run.result_state.map(ResultState::as_str),
        run.state_message,
        run.trigger.as_str(),
        to_json(&run.trigger_info, "trigger info")?,
        to_json(&run.job_parameters, "job parameters")?,
        to_json(&run.overriding_parameters, "overriding parameters")?,
        to_json(&run.plan, "run plan")?,
        run.created_time,
        run.start_time,
        run.end_time,
        to_json(&run.repair_history, "repair history")?,
        run.cancel_requested,
        parent.map(|p| p.run_id),
        parent.map(|p| p.task_run_id),
        parent.map(|p| p.depth),
        run.idempotency_token,
    ])?;
    Ok(())
}

/// A run.
pub(super) fn load(conn: &Connection, run_id: RunId) -> StoreResult<Option<RunRecord>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        run_columns!(),
        " FROM runs WHERE run_id = ?1"
    ))?;
    let mut rows = statement.query([run_id])?;
    rows.next()?.map(from_row).transpose()
}

/// A run, or `NotFound` naming it.
pub(super) fn require(conn: &Connection, run_id: RunId) -> StoreResult<RunRecord> {
    load(conn, run_id)?.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))
}

/// A run with all its task runs.
pub(super) fn snapshot(conn: &Connection, run_id: RunId) -> StoreResult<Option<RunSnapshot>> {
    let Some(run) = load(conn, run_id)? else {
        return Ok(None);
    };
    let tasks = tasks::for_run(conn, run_id)?;
    Ok(Some(RunSnapshot { run, tasks }))
}

/// The coordination fields of a run.
pub(super) fn head(conn: &Connection, run_id: RunId) -> StoreResult<Option<RunHead>> {
    let row = conn
        .prepare_cached(
            "SELECT job_id, life_cycle_state, result_state, owner FROM runs WHERE run_id = ?1",
        )?
        .query_row([run_id], |row| {
            Ok((
                row.get(0)?,
                row.get::<_, String>(1)?,
                row.get(2)?,
                row.get(3)?,
            ))
        })
        .optional()?;
    row.map(|(job_id, state, result, owner)| {
        Ok(RunHead {
            job_id,
            state: codec::life_cycle(&state, || format!("life_cycle_state of run {run_id}"))?,
            result: codec::result_state(result, || format!("result_state of run {run_id}"))?,
            owner,
        })
    })
    .transpose()
}

/// Sets the fields a coordinator changes; a final state also clears `cancel_requested`.
pub(super) fn update_progress(
    conn: &Connection,
    run_id: RunId,
    progress: &RunProgress,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE runs SET life_cycle_state = ?2, result_state = ?3, state_message = ?4,
           start_time = ?5, end_time = ?6, repair_history = ?7,
           cancel_requested = CASE WHEN ?8 THEN 0 ELSE cancel_requested END
         WHERE run_id = ?1",
    )?
    .execute(params![
        run_id,
        progress.life_cycle_state.as_str(),
        progress.result_state.map(ResultState::as_str),
        progress.state_message,
        progress.start_time,
        progress.end_time,
        to_json(&progress.repair_history, "repair history")?,
        progress.life_cycle_state.is_final(),
    ])?;
    Ok(())
}

/// Rewrites a run's mutable fields from `run` and drops its lease (a repair reopening it).
pub(super) fn rewrite_unowned(conn: &Connection, run: &RunRecord) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE runs SET life_cycle_state = ?2, result_state = ?3, state_message = ?4,
           start_time = ?5, end_time = ?6, repair_history = ?7, job_parameters = ?8,
           overriding_parameters = ?9, cancel_requested = ?10, owner = NULL,
           lease_expires_at = NULL
         WHERE run_id = ?1",
    )?
    .execute(params![
        run.run_id,
        run.life_cycle_state.as_str(),
        run.result_state.map(ResultState::as_str),
        run.state_message,
        run.start_time,
        run.end_time,
        to_json(&run.repair_history, "repair history")?,
        to_json(&run.job_parameters, "job parameters")?,
        to_json(&run.overriding_parameters, "overriding parameters")?,
        run.cancel_requested,
    ])?;
    Ok(())
}

/// Runs matching a filter, newest first, and whether more follow.
pub(super) fn list(conn: &Connection, filter: &RunFilter) -> StoreResult<(Vec<RunRecord>, bool)> {
    if filter.active_only && filter.completed_only {
        return Err(StoreError::InvalidState(
            "active_only and completed_only cannot both be set".into(),
        ));
    }
    let mut conditions = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    if let Some(job_id) = filter.job_id {
        values.push(job_id.into());
        conditions.push(format!("job_id = ?{}", values.len()));
    }
    if filter.active_only {
        conditions
            .push("life_cycle_state IN ('QUEUED', 'PENDING', 'RUNNING', 'TERMINATING')".into());
    }
    if filter.completed_only {
        conditions.push("life_cycle_state IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')".into());
    }
    if let Some(from) = filter.start_time_from {
        values.push(from.into());
        conditions.push(format!("created_time >= ?{}", values.len()));
    }
    if let Some(to) = filter.start_time_to {
        values.push(to.into());
        conditions.push(format!("created_time <= ?{}", values.len()));
    }
    match filter.run_type {
        None => {}
        Some(RunKind::JobRun) => {
            conditions.push("job_id IS NOT NULL AND parent_run_id IS NULL".into())
        }
        Some(RunKind::WorkflowRun) => conditions.push("parent_run_id IS NOT NULL".into()),
        Some(RunKind::SubmitRun) => conditions.push("job_id IS NULL".into()),
    }
    if let Some(v) = &filter.visible_to {
        let mut any = Vec::new();
        if !v.job_ids.is_empty() {
            let ids: Vec<String> = v.job_ids.iter().map(i64::to_string).collect();
            any.push(format!("job_id IN ({})", ids.join(", ")));
        }
        if !v.principals.is_empty() {
            let mut marks = Vec::new();
            for p in &v.principals {
                values.push(p.clone().into());
                marks.push(format!("?{}", values.len()));
            }
            let marks = marks.join(", ");
            any.push(format!(
                "run_id IN (SELECT run_id FROM run_identities WHERE run_as IN ({marks}) OR creator IN ({marks}))"
            ));
        }
        if any.is_empty() {
            conditions.push("0".into());
        } else {
            conditions.push(format!("({})", any.join(" OR ")));
        }
    }
    let limit = match filter.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let where_clause = if conditions.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", conditions.join(" AND "))
    };
    values.push(Value::Integer(to_i64(limit) + 1));
    values.push(Value::Integer(to_i64(filter.offset)));
    let sql = format!(
        concat!(
            "SELECT ",
            run_columns!(),
            " FROM runs{} ORDER BY run_id DESC LIMIT ?{} OFFSET ?{}"
        ),
        where_clause,
        values.len() - 1,
        values.len()
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values))?;
    let mut runs = Vec::new();
    while let Some(row) = rows.next()? {
        runs.push(from_row(row)?);
    }
    let more = runs.len() as u64 > limit;
    runs.truncate(limit as usize);
    Ok((runs, more))
}

/// Deletes a final run with its task runs and logs.
pub(super) fn delete(conn: &Connection, run_id: RunId) -> StoreResult<()> {
    let head = head(conn, run_id)?.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?;
    if !head.state.is_final() {
        return Err(StoreError::InvalidState(format!(
            "run {run_id} is {}; only a final run (TERMINATED, SKIPPED or INTERNAL_ERROR) can be \
             deleted",
            head.state.as_str()
        )));
    }
    conn.prepare_cached("DELETE FROM runs WHERE run_id = ?1")?
        .execute([run_id])?;
    Ok(())
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn from_row(row: &Row<'_>) -> StoreResult<RunRecord> {
    let run_id: RunId = row.get(0)?;
    let what = |column: &str| format!("{column} of run {run_id}");
    let parent = match (row.get(16)?, row.get(17)?, row.get(18)?) {
        (Some(run_id), Some(task_run_id), Some(depth)) => Some(ParentRef {
            run_id,
            task_run_id,
            depth,
        }),
        _ => None,
    };
    Ok(RunRecord {
        run_id,
        job_id: row.get(1)?,
        run_name: row.get(2)?,
        life_cycle_state: codec::life_cycle(&row.get::<_, String>(3)?, || {
            what("life_cycle_state")
        })?,
        result_state: codec::result_state(row.get(4)?, || what("result_state"))?,
        state_message: row.get(5)?,
        trigger: codec::trigger(&row.get::<_, String>(6)?, || what("trigger"))?,
        trigger_info: from_json(&row.get::<_, String>(7)?, || what("trigger_info"))?,
        job_parameters: from_json(&row.get::<_, String>(8)?, || what("job_parameters"))?,
        overriding_parameters: from_json(&row.get::<_, String>(9)?, || {
            what("overriding_parameters")
        })?,
        plan: from_json(&row.get::<_, String>(10)?, || what("plan"))?,
        created_time: row.get(11)?,
        start_time: row.get(12)?,
        end_time: row.get(13)?,
        repair_history: from_json(&row.get::<_, String>(14)?, || what("repair_history"))?,
        cancel_requested: row.get(15)?,
        parent,
        idempotency_token: row.get(19)?,
    })
}
