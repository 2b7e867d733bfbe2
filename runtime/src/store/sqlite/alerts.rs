//! The `alerts` outbox and the `event_cursors` of run-event consumers.

use super::codec::{self, from_json, to_json};
use crate::store::{
    AlertAttempt, AlertChannel, AlertFilter, AlertRecord, AlertStatus, CursorMove, LifeCycleState,
    Millis, NewAlert, StoreError, StoreResult,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

const COLUMNS: &str = "alert_id, run_id, job_id, task_key, event, channel, destination, payload, \
                       status, attempts, last_error, next_attempt_time, created_time, updated_time";

/// `list_alerts` page size when the filter says 0.
const DEFAULT_LIMIT: u32 = 100;
/// `list_alerts` page size at most.
const MAX_LIMIT: u32 = 1000;

/// Where a consumer stands.
pub(super) fn cursor(conn: &Connection, consumer: &str) -> StoreResult<i64> {
    Ok(conn
        .prepare_cached("SELECT seq FROM event_cursors WHERE consumer = ?1")?
        .query_row([consumer], |row| row.get(0))
        .optional()?
        .unwrap_or(0))
}

/// Records alerts and moves the cursor; false (nothing written) when the cursor moved away.
pub(super) fn enqueue(
    conn: &Connection,
    cursor_move: Option<&CursorMove>,
    alerts: &[NewAlert],
) -> StoreResult<bool> {
    if let Some(m) = cursor_move {
        if cursor(conn, &m.consumer)? != m.from {
            return Ok(false);
        }
        conn.prepare_cached(
            "INSERT OR REPLACE INTO event_cursors (consumer, seq) VALUES (?1, ?2)",
        )?
        .execute(params![m.consumer, m.to])?;
    }
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO alerts (dedupe_key, run_id, job_id, task_key, event, channel,
             destination, payload, status, attempts, next_attempt_time, created_time, updated_time)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'PENDING', 0, ?9, ?9, ?9)",
    )?;
    for a in alerts {
        insert.execute(params![
            a.dedupe_key,
            a.run_id,
            a.job_id,
            a.task_key,
            a.event,
            a.channel.as_str(),
            a.destination,
            to_json(&a.payload, "alert payload")?,
            a.created_time,
        ])?;
    }
    Ok(true)
}

/// Claims due pending alerts for `node`.
pub(super) fn claim(
    conn: &Connection,
    node: &str,
    now: Millis,
    lease_ms: i64,
    limit: u32,
) -> StoreResult<Vec<AlertRecord>> {
    let mut statement = conn.prepare_cached(&format!(
        "UPDATE alerts SET claim_owner = ?1, claim_expires = ?2
         WHERE alert_id IN (
             SELECT alert_id FROM alerts
             WHERE status = 'PENDING' AND next_attempt_time <= ?3
               AND (claim_expires IS NULL OR claim_expires <= ?3)
             ORDER BY next_attempt_time, alert_id LIMIT ?4)
         RETURNING {COLUMNS}"
    ))?;
    let mut rows = statement.query(params![node, now + lease_ms, now, limit])?;
    let mut claimed = Vec::new();
    while let Some(row) = rows.next()? {
        claimed.push(from_row(row)?);
    }
    claimed.sort_by_key(|a| (a.next_attempt_time, a.alert_id));
    Ok(claimed)
}

/// Drops the claims of `node`.
pub(super) fn release_claims(conn: &Connection, node: &str) -> StoreResult<u64> {
    Ok(conn
        .prepare_cached(
            "UPDATE alerts SET claim_owner = NULL, claim_expires = NULL WHERE claim_owner = ?1",
        )?
        .execute([node])? as u64)
}

/// Records one attempt.
pub(super) fn record_attempt(
    conn: &Connection,
    alert_id: i64,
    attempt: &AlertAttempt,
    now: Millis,
) -> StoreResult<()> {
    let status: Option<String> = conn
        .prepare_cached("SELECT status FROM alerts WHERE alert_id = ?1")?
        .query_row([alert_id], |row| row.get(0))
        .optional()?;
    match status.as_deref() {
        None => return Err(StoreError::NotFound(format!("alert {alert_id}"))),
        Some("PENDING") => {}
        Some(other) => {
            return Err(StoreError::InvalidState(format!(
                "alert {alert_id} is {other}, not pending"
            )));
        }
    }
    let (status, error, next) = match attempt {
        AlertAttempt::Delivered => (AlertStatus::Delivered, None, None),
        AlertAttempt::Retry { at, error } => (AlertStatus::Pending, Some(error), Some(*at)),
        AlertAttempt::Failed { error } => (AlertStatus::Failed, Some(error), None),
    };
    conn.prepare_cached(
        "UPDATE alerts SET status = ?2, attempts = attempts + 1,
             last_error = COALESCE(?3, last_error),
             next_attempt_time = COALESCE(?4, next_attempt_time),
             claim_owner = NULL, claim_expires = NULL, updated_time = ?5
         WHERE alert_id = ?1",
    )?
    .execute(params![alert_id, status.as_str(), error, next, now])?;
    Ok(())
}

/// When the earliest pending alert is due.
pub(super) fn next_due(conn: &Connection) -> StoreResult<Option<Millis>> {
    Ok(conn
        .prepare_cached(
            "SELECT MIN(MAX(next_attempt_time, COALESCE(claim_expires, 0))) FROM alerts
             WHERE status = 'PENDING'",
        )?
        .query_row([], |row| row.get(0))?)
}

/// Alerts matching a filter, newest first.
pub(super) fn list(conn: &Connection, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>> {
    let mut sql = format!("SELECT {COLUMNS} FROM alerts WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if let Some(job_id) = filter.job_id {
        args.push(Value::Integer(job_id));
        sql.push_str(&format!(" AND job_id = ?{}", args.len()));
    }
    if let Some(run_id) = filter.run_id {
        args.push(Value::Integer(run_id));
        sql.push_str(&format!(" AND run_id = ?{}", args.len()));
    }
    if let Some(status) = filter.status {
        args.push(Value::Text(status.as_str().into()));
        sql.push_str(&format!(" AND status = ?{}", args.len()));
    }
    let limit = match filter.limit {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    sql.push_str(&format!(" ORDER BY alert_id DESC LIMIT {limit}"));
    let mut statement = conn.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(args))?;
    let mut all = Vec::new();
    while let Some(row) = rows.next()? {
        all.push(from_row(row)?);
    }
    Ok(all)
}

/// Runs per non-final life cycle state.
pub(super) fn count_active_runs(conn: &Connection) -> StoreResult<Vec<(LifeCycleState, u64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT life_cycle_state, COUNT(*) FROM runs
         WHERE life_cycle_state IN ('QUEUED', 'PENDING', 'RUNNING', 'TERMINATING')
         GROUP BY life_cycle_state ORDER BY life_cycle_state",
    )?;
    let mut rows = statement.query([])?;
    let mut counts = Vec::new();
    while let Some(row) = rows.next()? {
        let state: String = row.get(0)?;
        let n: i64 = row.get(1)?;
        counts.push((
            codec::life_cycle(&state, || "life_cycle_state of a run".into())?,
            n as u64,
        ));
    }
    Ok(counts)
}

fn from_row(row: &Row<'_>) -> StoreResult<AlertRecord> {
    let alert_id: i64 = row.get(0)?;
    let what = |column: &str| format!("{column} of alert {alert_id}");
    let channel: String = row.get(5)?;
    let status: String = row.get(8)?;
    Ok(AlertRecord {
        alert_id,
        run_id: row.get(1)?,
        job_id: row.get(2)?,
        task_key: row.get(3)?,
        event: row.get(4)?,
        channel: AlertChannel::parse(&channel).ok_or_else(|| {
            StoreError::Backend(format!("unknown {} {channel:?}", what("channel")))
        })?,
        destination: row.get(6)?,
        payload: from_json(&row.get::<_, String>(7)?, || what("payload"))?,
        status: AlertStatus::parse(&status)
            .ok_or_else(|| StoreError::Backend(format!("unknown {} {status:?}", what("status"))))?,
        attempts: row.get(9)?,
        last_error: row.get(10)?,
        next_attempt_time: row.get(11)?,
        created_time: row.get(12)?,
        updated_time: row.get(13)?,
    })
}
