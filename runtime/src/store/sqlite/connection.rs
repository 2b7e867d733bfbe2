//! Opening connections: pragmas and schema migrations (versioned by `PRAGMA user_version`).

use super::options::SqliteOptions;
use anyhow::{Context, bail};
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::time::Duration;

/// The migrations, in order; migration `i` brings the schema from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_initial.sql"),
    include_str!("migrations/0002_triggers.sql"),
    include_str!("migrations/0003_alerts.sql"),
    include_str!("migrations/0004_access.sql"),
];

/// How long a connection waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 64;

/// Opens the read-write connection (creating the file and its directory), sets WAL mode and
/// the durability level, and migrates the schema.
pub(super) fn open_writer(options: &SqliteOptions) -> anyhow::Result<Connection> {
    let path = &options.path;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating the state directory {parent:?}"))?;
    }
    let mut conn =
        Connection::open(path).with_context(|| format!("opening the state database {path:?}"))?;
    configure(&conn, path)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .with_context(|| format!("switching {path:?} to WAL mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        bail!("state database {path:?} refused WAL mode (journal_mode is {mode:?})");
    }
    conn.pragma_update(None, "synchronous", options.synchronous.as_pragma())
        .and_then(|()| conn.pragma_update(None, "foreign_keys", "ON"))
        .with_context(|| format!("setting pragmas on {path:?}"))?;
    migrate(&mut conn).with_context(|| format!("migrating the state database {path:?}"))?;
    Ok(conn)
}

/// Opens a read-only connection to a database the writer has created.
pub(super) fn open_reader(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("opening a reader of {path:?}"))?;
    configure(&conn, path)?;
    Ok(conn)
}

fn configure(conn: &Connection, path: &Path) -> anyhow::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .with_context(|| format!("setting busy_timeout on {path:?}"))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(())
}

/// Applies the migrations the database has not seen, each in its own transaction.
fn migrate(conn: &mut Connection) -> anyhow::Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let current = usize::try_from(version)
        .with_context(|| format!("schema version {version} is negative"))?;
    if current > MIGRATIONS.len() {
        bail!(
            "schema version {current} is newer than this weir knows (version {}); \
             upgrade weir",
            MIGRATIONS.len()
        );
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)
            .with_context(|| format!("applying migration {}", index + 1))?;
        tx.pragma_update(None, "user_version", index as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrates_once_and_refuses_newer_schemas() {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions::new(dir.path().join("nested/dir/weir.db"));
        let conn = open_writer(&options).unwrap();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        drop(conn);

        // Reopening applies nothing twice (a second CREATE TABLE would fail).
        let conn = open_writer(&options).unwrap();
        conn.pragma_update(None, "user_version", MIGRATIONS.len() as i64 + 1)
            .unwrap();
        drop(conn);
        let err = open_writer(&options).unwrap_err();
        assert!(
            format!("{err:#}").contains("newer than this weir knows"),
            "{err:#}"
        );
    }

    #[test]
    fn writer_uses_wal_and_the_chosen_durability() {
        let dir = tempfile::tempdir().unwrap();
        let mut options = SqliteOptions::new(dir.path().join("weir.db"));
        options.synchronous = super::super::options::Synchronous::Full;
        let conn = open_writer(&options).unwrap();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "FULL is 2");
        let reader = open_reader(&options.path).unwrap();
        let jobs: i64 = reader
            .query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))
            .unwrap();
        assert_eq!(jobs, 0);
    }
}
