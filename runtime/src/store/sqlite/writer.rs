//! The writer thread: it owns the only read-write connection and commits every write request
//! queued since its last commit in one transaction (group commit). Each request runs inside its
//! own savepoint, so a failing request is rolled back alone and gets its own error; every caller
//! gets its reply only after the transaction holding its change has committed.

use super::backend;
use crate::store::{StoreError, StoreResult};
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Requests committed together at most, so one huge burst cannot delay its first reply forever.
const MAX_GROUP: usize = 512;

/// A queued write: applied inside the group transaction, answered after the commit.
trait Request: Send {
    /// Runs the request on the connection; returns whether it succeeded.
    fn apply(&mut self, conn: &Connection) -> bool;
    /// Replies to the caller with the request's outcome, or with the commit failure.
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct Call<T, F> {
    op: &'static str,
    work: Option<F>,
    outcome: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Request for Call<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> StoreResult<T> + Send,
{
    fn apply(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| work(conn))).unwrap_or_else(|panic| {
            Err(StoreError::Backend(format!(
                "the request panicked: {}",
                panic_message(panic.as_ref())
            )))
        });
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), String>) {
        let op = self.op;
        let result = match (self.outcome, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(StoreError::Backend(format!("transaction failed: {e}"))),
            (None, Ok(())) => Err(StoreError::Backend("the write was never applied".into())),
        };
        // The caller may have stopped waiting; its change stands either way.
        let _ = self.reply.send(result.map_err(|e| backend::with_op(op, e)));
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}

/// Handle to the writer thread; dropping it lets the thread finish queued work and close.
pub(super) struct Writer {
    queue: Option<mpsc::Sender<Box<dyn Request>>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(conn: Connection) -> std::io::Result<Writer> {
        let (queue, requests) = mpsc::channel::<Box<dyn Request>>();
        let thread = std::thread::Builder::new()
            .name("weir-sqlite-writer".into())
            .spawn(move || serve(conn, requests))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Runs `work` in the next group transaction and returns its result once committed.
    pub(super) async fn call<T, F>(&self, op: &'static str, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let stopped = || StoreError::Backend(format!("{op}: the sqlite writer thread has stopped"));
        let (reply, answer) = oneshot::channel();
        let request = Box::new(Call {
            op,
            work: Some(work),
            outcome: None,
            reply,
        });
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        queue.send(request).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            // A panic of the writer thread was already reported by the panic hook.
            let _ = thread.join();
        }
    }
}

fn serve(conn: Connection, requests: mpsc::Receiver<Box<dyn Request>>) {
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match requests.try_recv() {
                Ok(request) => group.push(request),
                Err(_) => break,
            }
        }
        let commit = commit_group(&conn, &mut group);
        for request in group {
            request.finish(commit.clone());
        }
    }
}

/// Applies every request of the group in one transaction, each in its own savepoint.
fn commit_group(conn: &Connection, group: &mut [Box<dyn Request>]) -> Result<(), String> {
    let result = apply_group(conn, group);
    if result.is_err() && !conn.is_autocommit() {
        // The commit failed or the group could not be applied: leave nothing half-done.
        let _ = conn.execute_batch("ROLLBACK");
    }
    result
}

fn apply_group(conn: &Connection, group: &mut [Box<dyn Request>]) -> Result<(), String> {
    let run = |sql: &str| -> Result<(), String> {
        conn.prepare_cached(sql)
            .and_then(|mut statement| statement.execute([]))
            .map(drop)
            .map_err(|e| format!("{sql}: {e}"))
    };
    run("BEGIN IMMEDIATE")?;
    for request in group.iter_mut() {
        run("SAVEPOINT request")?;
        if request.apply(conn) {
            run("RELEASE request")?;
        } else {
            run("ROLLBACK TO request")?;
            run("RELEASE request")?;
        }
        if conn.is_autocommit() {
            return Err("sqlite aborted the transaction".into());
        }
    }
    run("COMMIT")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("w.db")).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .unwrap();
        (dir, Writer::spawn(conn).unwrap())
    }

    fn insert(v: i64) -> impl FnOnce(&Connection) -> StoreResult<usize> + Send {
        move |c| Ok(c.execute("INSERT INTO t (v) VALUES (?1)", [v])?)
    }

    fn count(writer: &Writer) -> impl Future<Output = StoreResult<i64>> + '_ {
        writer.call("count", |c| {
            Ok(c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))?)
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_request_rolls_back_alone() {
        let (_dir, writer) = writer();
        let writer = std::sync::Arc::new(writer);
        // Many concurrent requests end up in shared groups; the duplicates fail on the
        // unique index and must not take their group's other requests down with them.
        let calls = (0..200).map(|i| {
            let writer = writer.clone();
            tokio::spawn(async move { writer.call("insert", insert(i % 100)).await })
        });
        let results = futures::future::join_all(calls).await;
        let ok = results.iter().filter(|r| matches!(r, Ok(Ok(1)))).count();
        let failed: Vec<_> = results
            .into_iter()
            .filter_map(|r| r.unwrap().err())
            .collect();
        assert_eq!(ok, 100);
        assert_eq!(failed.len(), 100);
        assert!(
            failed[0]
                .to_string()
                .starts_with("state store failure: insert: "),
            "{}",
            failed[0]
        );
        assert_eq!(count(&writer).await.unwrap(), 100);
    }

    #[tokio::test]
    async fn partial_work_of_a_failed_request_is_undone() {
        let (_dir, writer) = writer();
        let err = writer
            .call("two inserts", |c| {
                c.execute("INSERT INTO t (v) VALUES (1)", [])?;
                Err::<(), _>(StoreError::InvalidState("changed my mind".into()))
            })
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InvalidState(ref m) if m == "changed my mind"));
        assert_eq!(count(&writer).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn a_panicking_request_is_an_error_and_the_writer_lives_on() {
        let (_dir, writer) = writer();
        let err = writer
            .call("boom", |_| -> StoreResult<()> { panic!("bad request") })
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "state store failure: boom: the request panicked: bad request"
        );
        writer.call("insert", insert(7)).await.unwrap();
        assert_eq!(count(&writer).await.unwrap(), 1);
    }
}
