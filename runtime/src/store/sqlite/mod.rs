//! The embedded SQLite store: one file, no other process.
//!
//! # Durability
//! The database runs in WAL mode. With the default `synchronous=NORMAL`, a transaction whose
//! write was acknowledged (`Ok`) is in the WAL file and survives `kill -9` of the process — the
//! [`Store`] contract. A power loss or OS crash may lose the last transactions (never corrupt
//! the file). `sqlite://PATH?synchronous=full` fsyncs every commit, so acknowledged writes also
//! survive a power loss, at the price of one fsync per group commit.
//!
//! # Concurrency
//! - One writer thread owns the only read-write connection. Write requests queue on a channel;
//!   the thread takes every request queued since its last commit and commits them in one
//!   transaction (group commit), each request in its own savepoint so a failing request rolls
//!   back alone and gets its own error. Callers get their reply after the commit. Because all
//!   writes of a process are serialized, admission, idempotency tokens and lease claims are
//!   decided without races (unique indexes back up the idempotency token and the job name).
//! - Reads run on a small pool of read-only connections on blocking threads; WAL readers see
//!   the last commit and neither block the writer nor are blocked by it.
//!
//! # Layout
//! One module per table (`jobs`, `modules`, `runs`, `tasks`, `events`), one per concern
//! (`admission`, `leases`, `control`), and the plumbing (`writer`, `readers`, `connection` with
//! the migrations in `migrations/*.sql`, versioned by `PRAGMA user_version`).

mod access;
mod admission;
mod alerts;
mod backend;
mod codec;
mod connection;
mod control;
mod events;
mod jobs;
mod leases;
mod modules;
mod options;
mod readers;
mod runs;
mod tasks;
mod triggers;
mod writer;

#[cfg(test)]
mod tests;

pub use options::{DEFAULT_READERS, SqliteOptions, SqliteUrlError, Synchronous};

use super::*;
use anyhow::Context;
use readers::ReadPool;
use writer::Writer;

/// The embedded SQLite store.
pub struct SqliteStore {
    writer: Writer,
    readers: ReadPool,
    job_changes: tokio::sync::broadcast::Sender<JobId>,
}

impl SqliteStore {
    /// Opens (creating and migrating) the database at `path` with default options.
    pub async fn open(path: &std::path::Path) -> anyhow::Result<Arc<dyn Store>> {
        SqliteStore::open_with(SqliteOptions::new(path)).await
    }

    /// Opens (creating and migrating) the database `options` describe.
    pub async fn open_with(options: SqliteOptions) -> anyhow::Result<Arc<dyn Store>> {
        let store = tokio::task::spawn_blocking(move || SqliteStore::open_blocking(&options))
            .await
            .context("opening the state database")??;
        Ok(Arc::new(store))
    }

    fn open_blocking(options: &SqliteOptions) -> anyhow::Result<SqliteStore> {
        let writer = connection::open_writer(options)?;
        let readers = (0..options.readers.max(1))
            .map(|_| connection::open_reader(&options.path))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(SqliteStore {
            writer: Writer::spawn(writer).context("starting the sqlite writer thread")?,
            readers: ReadPool::new(readers),
            job_changes: tokio::sync::broadcast::channel(1024).0,
        })
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_job(&self, settings: &JobSettings, now: Millis) -> StoreResult<JobId> {
        let settings = settings.clone();
        let job_id = self
            .writer
            .call("create_job", move |c| jobs::create(c, &settings, now))
            .await?;
        let _ = self.job_changes.send(job_id);
        Ok(job_id)
    }

    async fn get_job(&self, job_id: JobId) -> StoreResult<Option<JobRecord>> {
        self.readers
            .call("get_job", move |c| jobs::get(c, job_id))
            .await
    }

    async fn find_job(&self, name: &str) -> StoreResult<Option<JobRecord>> {
        let name = name.to_string();
        self.readers
            .call("find_job", move |c| jobs::find(c, &name))
            .await
    }

    async fn list_jobs(
        &self,
        page: Page,
        name: Option<&str>,
    ) -> StoreResult<(Vec<JobRecord>, bool)> {
        let name = name.map(str::to_string);
        self.readers
            .call("list_jobs", move |c| jobs::list(c, page, name.as_deref()))
            .await
    }

    async fn update_job(&self, job_id: JobId, settings: &JobSettings) -> StoreResult<()> {
        let settings = settings.clone();
        self.writer
            .call("update_job", move |c| jobs::update(c, job_id, &settings))
            .await?;
        let _ = self.job_changes.send(job_id);
        Ok(())
    }

    async fn delete_job(&self, job_id: JobId) -> StoreResult<()> {
        self.writer
            .call("delete_job", move |c| {
                jobs::delete(c, job_id)?;
                access::delete_job_acl(c, job_id)?;
                triggers::delete_job(c, job_id)
            })
            .await?;
        let _ = self.job_changes.send(job_id);
        Ok(())
    }

    fn job_changes(&self) -> tokio::sync::broadcast::Receiver<JobId> {
        self.job_changes.subscribe()
    }

    async fn put_module(
        &self,
        blob: &ModuleBlob,
        name: Option<&str>,
    ) -> StoreResult<Option<ModuleVersion>> {
        let blob = blob.clone();
        let name = name.map(str::to_string);
        self.writer
            .call("put_module", move |c| {
                modules::put(c, &blob, name.as_deref())
            })
            .await
    }

    async fn get_module_blob(&self, digest: &str) -> StoreResult<Option<ModuleBlob>> {
        let digest = digest.to_string();
        self.readers
            .call("get_module_blob", move |c| modules::blob(c, &digest))
            .await
    }

    async fn get_module_version(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> StoreResult<Option<ModuleVersion>> {
        let name = name.to_string();
        self.readers
            .call("get_module_version", move |c| {
                modules::version(c, &name, version)
            })
            .await
    }

    async fn list_module_versions(&self, name: Option<&str>) -> StoreResult<Vec<ModuleVersion>> {
        let name = name.map(str::to_string);
        self.readers
            .call("list_module_versions", move |c| {
                modules::list(c, name.as_deref())
            })
            .await
    }

    async fn create_run(&self, new: NewRun) -> StoreResult<RunCreated> {
        self.writer
            .call("create_run", move |c| admission::create_run(c, new))
            .await
    }

    async fn claim_runs(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<RunSnapshot>> {
        let node = node.to_string();
        self.writer
            .call("claim_runs", move |c| {
                leases::claim(c, &node, now, lease_ms, limit)
            })
            .await
    }

    async fn renew_leases(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
    ) -> StoreResult<LeaseRenewal> {
        let node = node.to_string();
        self.writer
            .call("renew_leases", move |c| {
                leases::renew(c, &node, now, lease_ms)
            })
            .await
    }

    async fn release_leases(&self, node: &str) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer
            .call("release_leases", move |c| leases::release(c, &node))
            .await
    }

    async fn write_run(&self, write: RunWrite) -> StoreResult<()> {
        self.writer
            .call("write_run", move |c| leases::write_run(c, &write))
            .await
    }

    async fn allocate_run_ids(&self, n: u32) -> StoreResult<RunId> {
        self.writer
            .call("allocate_run_ids", move |c| runs::allocate_ids(c, n))
            .await
    }

    async fn request_cancel(&self, run_id: RunId, now: Millis) -> StoreResult<CancelOutcome> {
        self.writer
            .call("request_cancel", move |c| {
                control::request_cancel(c, run_id, now)
            })
            .await
    }

    async fn start_repair(&self, repair: NewRepair) -> StoreResult<i64> {
        self.writer
            .call("start_repair", move |c| control::start_repair(c, repair))
            .await
    }

    async fn get_run(&self, run_id: RunId) -> StoreResult<Option<RunSnapshot>> {
        self.readers
            .call("get_run", move |c| runs::snapshot(c, run_id))
            .await
    }

    async fn get_task_run(&self, task_run_id: RunId) -> StoreResult<Option<TaskRunRecord>> {
        self.readers
            .call("get_task_run", move |c| tasks::get(c, task_run_id))
            .await
    }

    async fn list_runs(&self, filter: &RunFilter) -> StoreResult<(Vec<RunRecord>, bool)> {
        let filter = filter.clone();
        self.readers
            .call("list_runs", move |c| runs::list(c, &filter))
            .await
    }

    async fn get_logs(&self, task_run_id: RunId) -> StoreResult<Option<TaskLogs>> {
        self.readers
            .call("get_logs", move |c| tasks::get_logs(c, task_run_id))
            .await
    }

    async fn delete_run(&self, run_id: RunId) -> StoreResult<()> {
        self.writer
            .call("delete_run", move |c| runs::delete(c, run_id))
            .await
    }

    async fn get_trigger_state(&self, job_id: JobId) -> StoreResult<Option<TriggerState>> {
        self.readers
            .call("get_trigger_state", move |c| triggers::get(c, job_id))
            .await
    }

    async fn list_trigger_states(&self) -> StoreResult<Vec<TriggerState>> {
        self.readers
            .call("list_trigger_states", triggers::list)
            .await
    }

    async fn put_trigger_state(&self, state: &TriggerState) -> StoreResult<()> {
        let state = state.clone();
        self.writer
            .call("put_trigger_state", move |c| {
                if jobs::get(c, state.job_id)?.is_none() {
                    return Err(StoreError::NotFound(format!("job {}", state.job_id)));
                }
                triggers::put(c, &state)
            })
            .await
    }

    async fn list_trigger_seen(&self, job_id: JobId) -> StoreResult<Vec<SeenRecord>> {
        self.readers
            .call("list_trigger_seen", move |c| triggers::list_seen(c, job_id))
            .await
    }

    async fn put_trigger_seen(
        &self,
        items: &[(JobId, SeenItem)],
        now: Millis,
    ) -> StoreResult<usize> {
        let items = items.to_vec();
        self.writer
            .call("put_trigger_seen", move |c| {
                triggers::put_pending(c, &items, now)
            })
            .await
    }

    async fn run_events(&self, after_seq: i64, limit: u32) -> StoreResult<Vec<RunEvent>> {
        self.readers
            .call("run_events", move |c| events::after(c, after_seq, limit))
            .await
    }

    async fn event_cursor(&self, consumer: &str) -> StoreResult<i64> {
        let consumer = consumer.to_string();
        self.readers
            .call("event_cursor", move |c| alerts::cursor(c, &consumer))
            .await
    }

    async fn enqueue_alerts(
        &self,
        cursor: Option<CursorMove>,
        new: Vec<NewAlert>,
    ) -> StoreResult<bool> {
        self.writer
            .call("enqueue_alerts", move |c| {
                alerts::enqueue(c, cursor.as_ref(), &new)
            })
            .await
    }

    async fn claim_alerts(
        &self,
        node: &str,
        now: Millis,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<AlertRecord>> {
        let node = node.to_string();
        self.writer
            .call("claim_alerts", move |c| {
                alerts::claim(c, &node, now, lease_ms, limit)
            })
            .await
    }

    async fn release_alert_claims(&self, node: &str) -> StoreResult<u64> {
        let node = node.to_string();
        self.writer
            .call("release_alert_claims", move |c| {
                alerts::release_claims(c, &node)
            })
            .await
    }

    async fn record_alert_attempt(
        &self,
        alert_id: i64,
        attempt: AlertAttempt,
        now: Millis,
    ) -> StoreResult<()> {
        self.writer
            .call("record_alert_attempt", move |c| {
                alerts::record_attempt(c, alert_id, &attempt, now)
            })
            .await
    }

    async fn next_alert_time(&self) -> StoreResult<Option<Millis>> {
        self.readers.call("next_alert_time", alerts::next_due).await
    }

    async fn list_alerts(&self, filter: &AlertFilter) -> StoreResult<Vec<AlertRecord>> {
        let filter = filter.clone();
        self.readers
            .call("list_alerts", move |c| alerts::list(c, &filter))
            .await
    }

    async fn count_active_runs(&self) -> StoreResult<Vec<(LifeCycleState, u64)>> {
        self.readers
            .call("count_active_runs", alerts::count_active_runs)
            .await
    }
}
