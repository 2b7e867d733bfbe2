//! Coordination: leases on runs (claim, renew, release) and the fenced `write_run`.

use super::{admission, events, runs, tasks};
use crate::clock::{Clock, SystemClock};
use crate::store::{LeaseRenewal, Millis, RunId, RunSnapshot, RunWrite, StoreError, StoreResult};
use rusqlite::{Connection, params};

/// Promotes queued runs, then leases up to `limit` claimable runs to `node`.
pub(super) fn claim(
    conn: &Connection,
    node: &str,
    now: Millis,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<RunSnapshot>> {
    admission::promote_queued(conn, now)?;
    let ids: Vec<RunId> = {
        let mut statement = conn.prepare_cached(
            "SELECT run_id FROM runs
             WHERE life_cycle_state IN ('PENDING', 'RUNNING', 'TERMINATING')
               AND (owner IS NULL OR lease_expires_at <= ?1)
             ORDER BY run_id LIMIT ?2",
        )?;
        let rows = statement.query_map(params![now, limit], |row| row.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut claimed = Vec::with_capacity(ids.len());
    for run_id in ids {
        conn.prepare_cached("UPDATE runs SET owner = ?2, lease_expires_at = ?3 WHERE run_id = ?1")?
            .execute(params![run_id, node, now.saturating_add(lease_ms)])?;
        let snapshot = runs::snapshot(conn, run_id)?
            .ok_or_else(|| StoreError::Backend(format!("claimed run {run_id} vanished")))?;
        claimed.push(snapshot);
    }
    Ok(claimed)
}

/// Extends every lease of `node`; reports its runs and their cancel requests.
pub(super) fn renew(
    conn: &Connection,
    node: &str,
    now: Millis,
    lease_ms: i64,
) -> StoreResult<LeaseRenewal> {
    conn.prepare_cached("UPDATE runs SET lease_expires_at = ?2 WHERE owner = ?1")?
        .execute(params![node, now.saturating_add(lease_ms)])?;
    let mut statement = conn.prepare_cached(
        "SELECT run_id, cancel_requested FROM runs WHERE owner = ?1 ORDER BY run_id",
    )?;
    let mut rows = statement.query([node])?;
    let mut renewal = LeaseRenewal::default();
    while let Some(row) = rows.next()? {
        let run_id: RunId = row.get(0)?;
        renewal.held.push(run_id);
        if row.get(1)? {
            renewal.cancel_requested.push(run_id);
        }
    }
    Ok(renewal)
}

/// Drops every lease of `node`; returns how many runs it held.
pub(super) fn release(conn: &Connection, node: &str) -> StoreResult<u64> {
    let released = conn
        .prepare_cached("UPDATE runs SET owner = NULL, lease_expires_at = NULL WHERE owner = ?1")?
        .execute([node])?;
    Ok(released as u64)
}

/// Applies a coordinator's write if `write.node` still owns the run.
///
/// A run event is recorded only when the life cycle or result state changes, so replaying a
/// write changes nothing.
pub(super) fn write_run(conn: &Connection, write: &RunWrite) -> StoreResult<()> {
    let run_id = write.run_id;
    let head =
        runs::head(conn, run_id)?.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?;
    if head.owner.as_deref() != Some(write.node.as_str()) {
        return Err(StoreError::LeaseLost { run_id });
    }
    for task in &write.tasks {
        if task.run_id != run_id || !tasks::upsert(conn, task)? {
            return Err(StoreError::InvalidState(format!(
                "task run {} of task {:?} does not belong to run {run_id}",
                task.task_run_id, task.task_key
            )));
        }
    }
    for (task_run_id, logs) in &write.logs {
        tasks::put_logs(conn, run_id, *task_run_id, logs)?;
    }
    if let Some(progress) = &write.progress {
        runs::update_progress(conn, run_id, progress)?;
        let changed =
            head.state != progress.life_cycle_state || head.result != progress.result_state;
        if changed {
            let time = match progress.end_time {
                Some(end) if progress.life_cycle_state.is_final() => end,
                _ => SystemClock.now_ms(),
            };
            events::append(
                conn,
                run_id,
                head.job_id,
                progress.life_cycle_state,
                progress.result_state,
                time,
            )?;
        }
    }
    if write.release {
        conn.prepare_cached(
            "UPDATE runs SET owner = NULL, lease_expires_at = NULL WHERE run_id = ?1",
        )?
        .execute([run_id])?;
    }
    Ok(())
}
