//! The `trigger_state` and `trigger_seen` tables.

use super::codec::{from_json, to_json};
use crate::store::{
    JobId, Millis, RunId, SeenItem, SeenRecord, StoreError, StoreResult, TriggerCommit,
    TriggerKind, TriggerState,
};
use rusqlite::{Connection, Row, params};

const COLUMNS: &str = "job_id, kind, settings_hash, armed_time, cursor, next_fire_time, \
                       last_fire_time, last_run_id, last_error, last_error_time, updated_time";

/// Inserts or replaces a job's trigger state.
pub(super) fn put(conn: &Connection, state: &TriggerState) -> StoreResult<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO trigger_state ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"
    ))?
    .execute(params![
        state.job_id,
        state.kind.as_str(),
        state.settings_hash,
        state.armed_time,
        to_json(&state.cursor, "trigger cursor")?,
        state.next_fire_time,
        state.last_fire_time,
        state.last_run_id,
        state.last_error,
        state.last_error_time,
        state.updated_time,
    ])?;
    Ok(())
}

/// A job's trigger state.
pub(super) fn get(conn: &Connection, job_id: JobId) -> StoreResult<Option<TriggerState>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM trigger_state WHERE job_id = ?1"
    ))?;
    let mut rows = statement.query([job_id])?;
    rows.next()?.map(from_row).transpose()
}

/// Every trigger state, by job id.
pub(super) fn list(conn: &Connection) -> StoreResult<Vec<TriggerState>> {
    let mut statement = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM trigger_state ORDER BY job_id"
    ))?;
    let mut rows = statement.query([])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(from_row(row)?);
    }
    Ok(all)
}

/// Records items in a job's seen-set (replacing older fingerprints of the same keys).
pub(super) fn add_seen(
    conn: &Connection,
    job_id: JobId,
    items: &[SeenItem],
    run_id: Option<RunId>,
    now: Millis,
) -> StoreResult<()> {
    let mut statement = conn.prepare_cached(
        "INSERT OR REPLACE INTO trigger_seen (job_id, key, fingerprint, run_id, seen_time)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for item in items {
        statement.execute(params![job_id, item.key, item.fingerprint, run_id, now])?;
    }
    Ok(())
}

/// Records pending items (no run yet) for several jobs; items of missing jobs are dropped.
pub(super) fn put_pending(
    conn: &Connection,
    items: &[(JobId, SeenItem)],
    now: Millis,
) -> StoreResult<usize> {
    let mut statement = conn.prepare_cached(
        "INSERT OR REPLACE INTO trigger_seen (job_id, key, fingerprint, run_id, seen_time)
         SELECT ?1, ?2, ?3, NULL, ?4 WHERE EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)",
    )?;
    let mut written = 0;
    for (job_id, item) in items {
        written += statement.execute(params![job_id, item.key, item.fingerprint, now])?;
    }
    Ok(written)
}

/// A job's seen-set, by key.
pub(super) fn list_seen(conn: &Connection, job_id: JobId) -> StoreResult<Vec<SeenRecord>> {
    let mut statement = conn.prepare_cached(
        "SELECT key, fingerprint, run_id, seen_time FROM trigger_seen WHERE job_id = ?1
         ORDER BY key",
    )?;
    let mut rows = statement.query([job_id])?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(SeenRecord {
            item: SeenItem {
                key: row.get(0)?,
                fingerprint: row.get(1)?,
            },
            run_id: row.get(2)?,
            seen_time: row.get(3)?,
        });
    }
    Ok(all)
}

/// Applies what a triggered run commits with it.
pub(super) fn apply(
    conn: &Connection,
    commit: &TriggerCommit,
    job_id: JobId,
    run_id: RunId,
    now: Millis,
) -> StoreResult<()> {
    if let Some(state) = &commit.state {
        if state.job_id != job_id {
            return Err(StoreError::InvalidState(format!(
                "a run of job {job_id} cannot commit the trigger state of job {}",
                state.job_id
            )));
        }
        put(conn, state)?;
    }
    add_seen(conn, job_id, &commit.seen, Some(run_id), now)
}

/// Forgets a job's trigger (the job was deleted).
pub(super) fn delete_job(conn: &Connection, job_id: JobId) -> StoreResult<()> {
    conn.prepare_cached("DELETE FROM trigger_state WHERE job_id = ?1")?
        .execute([job_id])?;
    conn.prepare_cached("DELETE FROM trigger_seen WHERE job_id = ?1")?
        .execute([job_id])?;
    Ok(())
}

fn from_row(row: &Row<'_>) -> StoreResult<TriggerState> {
    let job_id: JobId = row.get(0)?;
    let kind: String = row.get(1)?;
    let cursor: String = row.get(4)?;
    Ok(TriggerState {
        job_id,
        kind: TriggerKind::parse(&kind).ok_or_else(|| {
            StoreError::Backend(format!(
                "unknown trigger kind {kind:?} of job {job_id} in the database"
            ))
        })?,
        settings_hash: row.get(2)?,
        armed_time: row.get(3)?,
        cursor: from_json(&cursor, || format!("trigger cursor of job {job_id}"))?,
        next_fire_time: row.get(5)?,
        last_fire_time: row.get(6)?,
        last_run_id: row.get(7)?,
        last_error: row.get(8)?,
        last_error_time: row.get(9)?,
        updated_time: row.get(10)?,
    })
}
