//! The read pool: read-only connections used on blocking threads. In WAL mode readers see the
//! last committed state and never block the writer, nor it them.

use super::backend;
use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::Semaphore;

/// A fixed set of read-only connections; each read takes one for its duration.
pub(super) struct ReadPool {
    idle: Arc<Mutex<Vec<Connection>>>,
    permits: Arc<Semaphore>,
}

impl ReadPool {
    /// A pool over these connections.
    pub(super) fn new(connections: Vec<Connection>) -> ReadPool {
        ReadPool {
            permits: Arc::new(Semaphore::new(connections.len())),
            idle: Arc::new(Mutex::new(connections)),
        }
    }

    /// Runs `work` in one read transaction (a consistent snapshot) on a pooled connection.
    pub(super) async fn call<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend(format!("{op}: the read pool is closed")))?;
        let idle = self.idle.clone();
        let blocking = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let Some(conn) = conn else {
                return Err(StoreError::Backend("no idle read connection".into()));
            };
            let result = in_snapshot(&conn, work);
            idle.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(conn);
            result
        });
        let result = blocking
            .await
            .map_err(|e| StoreError::Backend(format!("the read task failed: {e}")))
            .and_then(|result| result);
        result.map_err(|e| backend::with_op(op, e))
    }
}

/// Runs `work` in a read transaction, which always ends, even when `work` fails or panics.
fn in_snapshot<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.prepare_cached("BEGIN")?.execute([])?;
    let result = catch_unwind(AssertUnwindSafe(|| work(conn)))
        .unwrap_or_else(|_| Err(StoreError::Backend("the read panicked".into())));
    if !conn.is_autocommit() {
        conn.prepare_cached("COMMIT")?.execute([])?;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_share_a_bounded_pool_and_see_committed_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode=WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (41);",
            )
            .unwrap();
        let readers = (0..2)
            .map(|_| super::super::connection::open_reader(&path).unwrap())
            .collect();
        let pool = Arc::new(ReadPool::new(readers));
        let reads = (0..20).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.call("sum", |c| {
                    Ok(c.query_row("SELECT SUM(v) FROM t", [], |r| r.get::<_, i64>(0))?)
                })
                .await
            })
        });
        for read in futures::future::join_all(reads).await {
            assert_eq!(read.unwrap().unwrap(), 41);
        }
        writer.execute("UPDATE t SET v = 42", []).unwrap();
        let v = pool
            .call("sum", |c| {
                Ok(c.query_row("SELECT SUM(v) FROM t", [], |r| r.get::<_, i64>(0))?)
            })
            .await
            .unwrap();
        assert_eq!(v, 42);
        let err = pool
            .call("write", |c| Ok(c.execute("INSERT INTO t VALUES (1)", [])?))
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("state store failure: write: sqlite: "),
            "{err}"
        );
        assert_eq!(
            pool.idle.lock().unwrap().len(),
            2,
            "connections come back after errors"
        );
    }
}
