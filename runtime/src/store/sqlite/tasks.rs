//! The `task_runs` and `task_logs` tables.

use super::codec::{self, from_json, to_json};
use crate::store::{Iteration, ResultState, RunId, StoreResult, TaskLogs, TaskRunRecord};
use rusqlite::{Connection, OptionalExtension, Row, params};

macro_rules! task_columns {
    () => {
        "task_run_id, run_id, task_key, attempt_number, repair_id, iteration_parent, \
         iteration_index, life_cycle_state, result_state, state_message, ready_time, start_time, \
         end_time, retry_at, module_digest, exit_code, outcome, task_values, resolved, child_run_id"
    };
}

/// Insert or replace by `task_run_id`, unless the existing row belongs to another run.
const UPSERT: &str = concat!(
    "INSERT INTO task_runs (",
    task_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20)
     ON CONFLICT (task_run_id) DO UPDATE SET
       task_key = excluded.task_key, attempt_number = excluded.attempt_number,
       repair_id = excluded.repair_id, iteration_parent = excluded.iteration_parent,
       iteration_index = excluded.iteration_index, life_cycle_state = excluded.life_cycle_state,
       result_state = excluded.result_state, state_message = excluded.state_message,
       ready_time = excluded.ready_time, start_time = excluded.start_time,
       end_time = excluded.end_time, retry_at = excluded.retry_at,
       module_digest = excluded.module_digest, exit_code = excluded.exit_code,
       outcome = excluded.outcome, task_values = excluded.task_values,
       resolved = excluded.resolved, child_run_id = excluded.child_run_id
     WHERE task_runs.run_id = excluded.run_id"
);

/// A task run waiting for its dependencies, as `create_run` and `start_repair` make them.
pub(super) fn blocked(
    run_id: RunId,
    task_run_id: RunId,
    key: &str,
    repair_id: i64,
) -> TaskRunRecord {
    TaskRunRecord::blocked(task_run_id, run_id, key, repair_id, None)
}

/// Inserts or replaces a task run; false when its id belongs to a task run of another run.
pub(super) fn upsert(conn: &Connection, task: &TaskRunRecord) -> StoreResult<bool> {
    let values = to_json(&task.values, "task values")?;
    let resolved = task
        .resolved
        .as_ref()
        .map(|r| to_json(r, "resolved task inputs"))
        .transpose()?;
    let changed = conn.prepare_cached(UPSERT)?.execute(params![
        task.task_run_id,
        task.run_id,
        task.task_key,
        task.attempt_number,
        task.repair_id,
        task.iteration.map(|i| i.parent_task_run_id),
        task.iteration.map(|i| i.index),
        task.life_cycle_state.as_str(),
        task.result_state.map(ResultState::as_str),
        task.state_message,
        task.ready_time,
        task.start_time,
        task.end_time,
        task.retry_at,
        task.module_digest,
        task.exit_code,
        task.outcome,
        values,
        resolved,
        task.child_run_id,
    ])?;
    Ok(changed == 1)
}

/// The task runs of a run, by task run id.
pub(super) fn for_run(conn: &Connection, run_id: RunId) -> StoreResult<Vec<TaskRunRecord>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        task_columns!(),
        " FROM task_runs WHERE run_id = ?1 ORDER BY task_run_id"
    ))?;
    let mut rows = statement.query([run_id])?;
    let mut tasks = Vec::new();
    while let Some(row) = rows.next()? {
        tasks.push(from_row(row)?);
    }
    Ok(tasks)
}

/// One task run.
pub(super) fn get(conn: &Connection, task_run_id: RunId) -> StoreResult<Option<TaskRunRecord>> {
    let mut statement = conn.prepare_cached(concat!(
        "SELECT ",
        task_columns!(),
        " FROM task_runs WHERE task_run_id = ?1"
    ))?;
    let mut rows = statement.query([task_run_id])?;
    rows.next()?.map(from_row).transpose()
}

/// Terminates every unfinished task run of a run as canceled.
pub(super) fn cancel_unfinished(
    conn: &Connection,
    run_id: RunId,
    message: &str,
) -> StoreResult<()> {
    conn.prepare_cached(
        "UPDATE task_runs SET life_cycle_state = 'TERMINATED', result_state = 'CANCELED',
           state_message = ?2
         WHERE run_id = ?1 AND life_cycle_state NOT IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR')",
    )?
    .execute(params![run_id, message])?;
    Ok(())
}

/// Stores (or replaces) the logs of a task run of `run_id`.
pub(super) fn put_logs(
    conn: &Connection,
    run_id: RunId,
    task_run_id: RunId,
    logs: &TaskLogs,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO task_logs (task_run_id, run_id, stdout, stderr, truncated)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (task_run_id) DO UPDATE SET run_id = excluded.run_id,
           stdout = excluded.stdout, stderr = excluded.stderr, truncated = excluded.truncated",
    )?
    .execute(params![
        task_run_id,
        run_id,
        logs.stdout,
        logs.stderr,
        logs.truncated
    ])?;
    Ok(())
}

/// The logs of a task run.
pub(super) fn get_logs(conn: &Connection, task_run_id: RunId) -> StoreResult<Option<TaskLogs>> {
    Ok(conn
        .prepare_cached("SELECT stdout, stderr, truncated FROM task_logs WHERE task_run_id = ?1")?
        .query_row([task_run_id], |row| {
            Ok(TaskLogs {
                stdout: row.get(0)?,
                stderr: row.get(1)?,
                truncated: row.get(2)?,
            })
        })
        .optional()?)
}

fn from_row(row: &Row<'_>) -> StoreResult<TaskRunRecord> {
    let task_run_id: RunId = row.get(0)?;
    let what = |column: &str| format!("{column} of task run {task_run_id}");
    let iteration = match (row.get(5)?, row.get(6)?) {
        (Some(parent_task_run_id), Some(index)) => Some(Iteration {
            parent_task_run_id,
            index,
        }),
        _ => None,
    };
    let values: String = row.get(17)?;
    let resolved: Option<String> = row.get(18)?;
    Ok(TaskRunRecord {
        task_run_id,
        run_id: row.get(1)?,
        task_key: row.get(2)?,
        attempt_number: row.get(3)?,
        repair_id: row.get(4)?,
        iteration,
        life_cycle_state: codec::life_cycle(&row.get::<_, String>(7)?, || {
            what("life_cycle_state")
        })?,
        result_state: codec::result_state(row.get(8)?, || what("result_state"))?,
        state_message: row.get(9)?,
        ready_time: row.get(10)?,
        start_time: row.get(11)?,
        end_time: row.get(12)?,
        retry_at: row.get(13)?,
        module_digest: row.get(14)?,
        exit_code: row.get(15)?,
        outcome: row.get(16)?,
        values: from_json(&values, || what("task values"))?,
        resolved: resolved
            .map(|r| from_json(&r, || what("resolved inputs")))
            .transpose()?,
        child_run_id: row.get(19)?,
    })
}
