//! The `jobs` table.

use super::codec::{from_json, to_json};
use crate::spec::JobSettings;
use crate::store::{JobId, JobRecord, Millis, Page, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};

/// `list_jobs` page size when the page says 0.
const DEFAULT_PAGE: u64 = 25;
/// `list_jobs` page size at most.
const MAX_PAGE: u64 = 1000;

/// Creates a job; `Conflict` if the name is taken.
pub(super) fn create(conn: &Connection, settings: &JobSettings, now: Millis) -> StoreResult<JobId> {
    refuse_taken_name(conn, &settings.name, None)?;
    conn.prepare_cached(
        "INSERT INTO jobs (name, created_time, settings, max_concurrent_runs, queue_enabled)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        settings.name,
        now,
        to_json(settings, "job settings")?,
        settings.max_concurrent_runs,
        settings.queue_enabled(),
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Replaces a job's settings; `NotFound`, or `Conflict` if the new name is another job's.
pub(super) fn update(conn: &Connection, job_id: JobId, settings: &JobSettings) -> StoreResult<()> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM jobs WHERE job_id = ?1)")?
        .query_row([job_id], |row| row.get(0))?;
    if !exists {
        return Err(StoreError::NotFound(format!("job {job_id}")));
    }
    refuse_taken_name(conn, &settings.name, Some(job_id))?;
    conn.prepare_cached(
        "UPDATE jobs SET name = ?2, settings = ?3, max_concurrent_runs = ?4, queue_enabled = ?5
             WHERE job_id = ?1",
    )?
    .execute(params![
        job_id,
        settings.name,
        to_json(settings, "job settings")?,
        settings.max_concurrent_runs,
        settings.queue_enabled(),
    ])?;
    Ok(())
}

/// Deletes a job; its runs stay.
pub(super) fn delete(conn: &Connection, job_id: JobId) -> StoreResult<()> {
    let changed = conn
        .prepare_cached("DELETE FROM jobs WHERE job_id = ?1")?
        .execute([job_id])?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("job {job_id}")));
    }
    Ok(())
}

/// A job by id.
pub(super) fn get(conn: &Connection, job_id: JobId) -> StoreResult<Option<JobRecord>> {
    let mut statement =
        conn.prepare_cached("SELECT job_id, created_time, settings FROM jobs WHERE job_id = ?1")?;
    let mut rows = statement.query([job_id])?;
    rows.next()?.map(from_row).transpose()
}

/// A job by exact name.
pub(super) fn find(conn: &Connection, name: &str) -> StoreResult<Option<JobRecord>> {
    let mut statement =
        conn.prepare_cached("SELECT job_id, created_time, settings FROM jobs WHERE name = ?1")?;
    let mut rows = statement.query([name])?;
    rows.next()?.map(from_row).transpose()
}

/// Jobs by id (optionally only the one named `name`), and whether more follow the page.
pub(super) fn list(
    conn: &Connection,
    page: Page,
    name: Option<&str>,
) -> StoreResult<(Vec<JobRecord>, bool)> {
    let limit = match page.limit {
        0 => DEFAULT_PAGE,
        n => n.min(MAX_PAGE),
    };
    let mut statement = conn.prepare_cached(
        "SELECT job_id, created_time, settings FROM jobs WHERE ?1 IS NULL OR name = ?1
         ORDER BY job_id LIMIT ?2 OFFSET ?3",
    )?;
    let offset = i64::try_from(page.offset).unwrap_or(i64::MAX);
    let mut rows = statement.query(params![name, limit as i64 + 1, offset])?;
    let mut jobs = Vec::new();
    while let Some(row) = rows.next()? {
        jobs.push(from_row(row)?);
    }
    let more = jobs.len() as u64 > limit;
    jobs.truncate(limit as usize);
    Ok((jobs, more))
}

fn refuse_taken_name(conn: &Connection, name: &str, except: Option<JobId>) -> StoreResult<()> {
    let holder: Option<JobId> = conn
        .prepare_cached("SELECT job_id FROM jobs WHERE name = ?1")?
        .query_row([name], |row| row.get(0))
        .optional()?;
    match holder {
        Some(holder) if Some(holder) != except => Err(StoreError::Conflict(format!(
            "a job named {name:?} already exists (job {holder})"
        ))),
        _ => Ok(()),
    }
}

fn from_row(row: &Row<'_>) -> StoreResult<JobRecord> {
    let job_id: JobId = row.get(0)?;
    let settings: String = row.get(2)?;
    Ok(JobRecord {
        job_id,
        created_time: row.get(1)?,
        settings: from_json(&settings, || format!("settings of job {job_id}"))?,
    })
}
