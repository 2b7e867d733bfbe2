//! The `run_events` outbox: one row per run state change, written in the change's transaction.

use super::codec;
use crate::store::{JobId, LifeCycleState, Millis, ResultState, RunEvent, RunId, StoreResult};
use rusqlite::{Connection, params};

/// Records that a run entered a state.
pub(super) fn append(
    conn: &Connection,
    run_id: RunId,
    job_id: Option<JobId>,
    state: LifeCycleState,
    result: Option<ResultState>,
    time: Millis,
) -> StoreResult<()> {
    conn.prepare_cached(
        "INSERT INTO run_events (run_id, job_id, life_cycle_state, result_state, time)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        run_id,
        job_id,
        state.as_str(),
        result.map(ResultState::as_str),
        time
    ])?;
    Ok(())
}

/// Events after `after_seq`, oldest first, at most `limit`.
pub(super) fn after(conn: &Connection, after_seq: i64, limit: u32) -> StoreResult<Vec<RunEvent>> {
    let mut statement = conn.prepare_cached(
        "SELECT seq, run_id, job_id, life_cycle_state, result_state, time FROM run_events
         WHERE seq > ?1 ORDER BY seq LIMIT ?2",
    )?;
    let mut rows = statement.query(params![after_seq, limit])?;
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let seq: i64 = row.get(0)?;
        let what = |column: &str| format!("{column} of run event {seq}");
        events.push(RunEvent {
            seq,
            run_id: row.get(1)?,
            job_id: row.get(2)?,
            life_cycle_state: codec::life_cycle(&row.get::<_, String>(3)?, || {
                what("life_cycle_state")
            })?,
            result_state: codec::result_state(row.get(4)?, || what("result_state"))?,
            time: row.get(5)?,
        });
    }
    Ok(events)
}
