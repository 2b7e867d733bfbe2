//! The `module_blobs` and `module_versions` tables.

use crate::store::{ModuleBlob, ModuleVersion, StoreResult};
use rusqlite::{Connection, OptionalExtension, Row, params};

const VERSION_COLUMNS: &str = "SELECT v.name, v.version, v.digest, b.size, v.created_time
     FROM module_versions v JOIN module_blobs b ON b.digest = v.digest";

/// Records a blob (once) and, with a name, a new version unless the latest one has this digest.
pub(super) fn put(
    conn: &Connection,
    blob: &ModuleBlob,
    name: Option<&str>,
) -> StoreResult<Option<ModuleVersion>> {
    conn.prepare_cached(
        "INSERT INTO module_blobs (digest, size, created_time) VALUES (?1, ?2, ?3)
         ON CONFLICT (digest) DO NOTHING",
    )?
    .execute(params![
        blob.digest,
        size_to_sql(blob.size),
        blob.created_time
    ])?;
    let Some(name) = name else {
        return Ok(None);
    };
    let latest = version(conn, name, None)?;
    if let Some(latest) = latest.as_ref().filter(|v| v.digest == blob.digest) {
        return Ok(Some(latest.clone()));
    }
    let next = latest.map_or(1, |v| v.version + 1);
    conn.prepare_cached(
        "INSERT INTO module_versions (name, version, digest, created_time) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![name, next, blob.digest, blob.created_time])?;
    version(conn, name, Some(next))
}

/// A blob by digest.
pub(super) fn blob(conn: &Connection, digest: &str) -> StoreResult<Option<ModuleBlob>> {
    Ok(conn
        .prepare_cached("SELECT digest, size, created_time FROM module_blobs WHERE digest = ?1")?
        .query_row([digest], |row| {
            Ok(ModuleBlob {
                digest: row.get(0)?,
                size: size_from_sql(row.get(1)?),
                created_time: row.get(2)?,
            })
        })
        .optional()?)
}

/// A named version, or the latest when `version` is `None`.
pub(super) fn version(
    conn: &Connection,
    name: &str,
    version: Option<u32>,
) -> StoreResult<Option<ModuleVersion>> {
    let found = match version {
        Some(version) => conn
            .prepare_cached(&format!(
                "{VERSION_COLUMNS} WHERE v.name = ?1 AND v.version = ?2"
            ))?
            .query_row(params![name, version], from_row)
            .optional()?,
        None => conn
            .prepare_cached(&format!(
                "{VERSION_COLUMNS} WHERE v.name = ?1 ORDER BY v.version DESC LIMIT 1"
            ))?
            .query_row([name], from_row)
            .optional()?,
    };
    Ok(found)
}

/// All versions, or those of one name, by name then version.
pub(super) fn list(conn: &Connection, name: Option<&str>) -> StoreResult<Vec<ModuleVersion>> {
    let mut statement = conn.prepare_cached(&format!(
        "{VERSION_COLUMNS} WHERE ?1 IS NULL OR v.name = ?1 ORDER BY v.name, v.version"
    ))?;
    let versions = statement.query_map([name], from_row)?;
    Ok(versions.collect::<Result<_, _>>()?)
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<ModuleVersion> {
    Ok(ModuleVersion {
        name: row.get(0)?,
        version: row.get(1)?,
        digest: row.get(2)?,
        size: size_from_sql(row.get(3)?),
        created_time: row.get(4)?,
    })
}

/// Sizes are stored as SQLite integers (i64); no wasm module comes near the limit.
fn size_to_sql(size: u64) -> i64 {
    i64::try_from(size).unwrap_or(i64::MAX)
}

fn size_from_sql(size: i64) -> u64 {
    u64::try_from(size).unwrap_or_default()
}
