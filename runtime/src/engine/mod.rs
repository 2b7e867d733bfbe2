//! The run engine: turns run requests into durable runs and drives them to their end.
//!
//! - [`Engine::run_now`] (manual runs) and [`Engine::fire`] (trigger events, see
//!   [`crate::trigger`]) record a run in the store, admitted or queued by the store's
//!   transaction.
//! - Each node claims runs with a lease ([`node`]) and spawns a [`driver`] per run; the driver
//!   holds the run's [`state::RunState`], persists every change (fenced by the lease) before it
//!   acts on it, and dispatches ready tasks to the executor.
//! - Cancel and repair go through the store too, so they work whichever node coordinates the run.

mod driver;
pub mod graph;
mod node;
pub mod resolve;
pub mod run_if;
pub mod state;
mod submit;
#[cfg(test)]
pub(crate) mod testing;

pub use submit::{RepairRequest, RunOptions, RunRequest};

use crate::clock::Clock;
use crate::exec::Executor;
use crate::modules::Registry;
use crate::store::{CancelOutcome, JobId, RunId, RunSnapshot, Store, StoreError};
use driver::DriverMsg;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, mpsc, watch};

/// Errors of engine operations, in API terms.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A job, run or task that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// A request parameter that is wrong.
    #[error("{0}")]
    InvalidParameter(String),
    /// The operation does not fit the current state.
    #[error("{0}")]
    InvalidState(String),
    /// The store failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(m) => EngineError::NotFound(format!("{m} does not exist")),
            StoreError::Conflict(m) | StoreError::InvalidState(m) => EngineError::InvalidState(m),
            other => EngineError::Store(other.to_string()),
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's id (stable across restarts, so a restart reclaims its runs at once).
    pub node_id: String,
    /// How long a run lease lasts without renewal.
    pub lease: Duration,
    /// How often idle nodes look for claimable runs (new runs on this node are claimed at once).
    pub claim_interval: Duration,
    /// Most runs this node coordinates at once.
    pub max_runs: u32,
    /// How long a shutdown waits for running attempts before stopping them.
    pub shutdown_grace: Duration,
    /// Overrides of the AWS environment for `s3://` URLs (file-arrival checks at deploy).
    pub s3: crate::s3::S3Settings,
    /// Prepares `/input` for the tasks of file-arrival runs (none: no `/input`).
    pub inputs: Option<Arc<crate::trigger::file_arrival::input::InputStager>>,
}

impl EngineConfig {
    /// Defaults for a node id.
    pub fn new(node_id: impl Into<String>) -> EngineConfig {
        EngineConfig {
            node_id: node_id.into(),
            lease: Duration::from_secs(30),
            claim_interval: Duration::from_secs(1),
            max_runs: 1000,
            shutdown_grace: Duration::from_secs(10),
            s3: Default::default(),
            inputs: None,
        }
    }
}

/// State shared by the engine handle, the node loops and the drivers.
pub(crate) struct Shared {
    store: Arc<dyn Store>,
    executor: Arc<Executor>,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    drivers: Mutex<HashMap<RunId, mpsc::UnboundedSender<DriverMsg>>>,
    claim_now: Notify,
    finished: broadcast::Sender<RunId>,
    shutdown: watch::Sender<bool>,
}

impl Shared {
    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Records a cancel request and tells the run's driver when it runs here.
    async fn cancel_run(&self, run_id: RunId) -> Result<CancelOutcome, EngineError> {
        let outcome = self
            .store
            .request_cancel(run_id, self.now())
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => {
                    EngineError::NotFound(format!("run {run_id} does not exist"))
                }
                other => other.into(),
            })?;
        match outcome {
            CancelOutcome::Requested => {
                self.send(run_id, DriverMsg::Cancel);
            }
            CancelOutcome::Canceled => {
                let _ = self.finished.send(run_id);
                self.claim_now.notify_one();
            }
            CancelOutcome::AlreadyFinal => {}
        }
        Ok(outcome)
    }

    fn send(&self, run_id: RunId, msg: DriverMsg) -> bool {
        let drivers = self.drivers.lock().expect("drivers lock");
        drivers.get(&run_id).is_some_and(|tx| tx.send(msg).is_ok())
    }
}

/// The engine handle (cheap to clone).
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Engine {
    /// Starts the engine: drops the leases this node held before a crash so its runs are
    /// reclaimed (and their interrupted attempts handled) at once, then starts claiming.
    pub async fn start(
        store: Arc<dyn Store>,
        executor: Arc<Executor>,
        registry: Arc<Registry>,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> anyhow::Result<Engine> {
        let released = store.release_leases(&config.node_id).await?;
        if released > 0 {
            tracing::info!(
                runs = released,
                "weir.engine.recover: reclaiming runs of this node"
            );
        }
        let (finished, _) = broadcast::channel(1024);
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            store,
            executor,
            registry,
            clock,
            config,
            drivers: Mutex::new(HashMap::new()),
            claim_now: Notify::new(),
            finished,
            shutdown,
        });
        let tasks = vec![
            tokio::spawn(node::claim_loop(shared.clone())),
            tokio::spawn(node::renew_loop(shared.clone())),
        ];
        shared.claim_now.notify_one();
        Ok(Engine {
            shared,
            tasks: Arc::new(Mutex::new(tasks)),
        })
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.shared.store
    }

    /// The module registry.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.shared.registry
    }

    /// The executor.
    pub fn executor(&self) -> &Arc<Executor> {
        &self.shared.executor
    }

    /// The engine clock's time.
    pub fn now(&self) -> i64 {
        self.shared.now()
    }

    /// The engine's clock: every time decision of runs and triggers goes through it.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.clock
    }

    /// The node's S3 settings (over the AWS environment).
    pub fn s3_settings(&self) -> &crate::s3::S3Settings {
        &self.shared.config.s3
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.shared.config.node_id
    }

    /// Runs coordinated by this node right now.
    pub fn active_runs(&self) -> usize {
        self.shared.drivers.lock().expect("drivers lock").len()
    }

    /// Asks for a run to stop. Running instances stop at once when this node coordinates the
    /// run, within a lease renewal period otherwise.
    pub async fn cancel(&self, run_id: RunId) -> Result<CancelOutcome, EngineError> {
        self.shared.cancel_run(run_id).await
    }

    /// Cancels every active or queued run of a job; returns how many were asked to stop.
    pub async fn cancel_all(&self, job_id: JobId) -> Result<usize, EngineError> {
        let filter = crate::store::RunFilter {
            job_id: Some(job_id),
            active_only: true,
            limit: 1000,
            ..Default::default()
        };
        let mut asked = std::collections::HashSet::new();
        loop {
            let (runs, _) = self.shared.store.list_runs(&filter).await?;
            let fresh: Vec<RunId> = runs
                .iter()
                .map(|r| r.run_id)
                .filter(|id| !asked.contains(id))
                .collect();
            if fresh.is_empty() {
                return Ok(asked.len());
            }
            for id in fresh {
                self.cancel(id).await?;
                asked.insert(id);
            }
        }
    }

    /// Waits until a run is final or `timeout` passes; returns its latest snapshot either way.
    pub async fn wait(&self, run_id: RunId, timeout: Duration) -> Result<RunSnapshot, EngineError> {
        let mut finished = self.shared.finished.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let snap = self
                .shared
                .store
                .get_run(run_id)
                .await?
                .ok_or_else(|| EngineError::NotFound(format!("run {run_id} does not exist")))?;
            if snap.run.life_cycle_state.is_final() || tokio::time::Instant::now() >= deadline {
                return Ok(snap);
            }
            // Finished runs on this node are announced; runs on other nodes are polled.
            let poll = tokio::time::sleep(Duration::from_millis(500));
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => {}
                _ = poll => {}
                _ = async {
                    loop {
                        match finished.recv().await {
                            Ok(id) if id == run_id => break,
                            Ok(_) => continue,
                            Err(broadcast::error::RecvError::Lagged(_)) => break,
                            Err(broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                        }
                    }
                } => {}
            }
        }
    }

    /// Sends every driver a message, then waits until they are gone or `deadline` passes.
    async fn tell_drivers_until(
        &self,
        msg: impl Fn() -> DriverMsg,
        deadline: tokio::time::Instant,
    ) {
        let ids: Vec<RunId> = self
            .shared
            .drivers
            .lock()
            .expect("drivers lock")
            .keys()
            .copied()
            .collect();
        for id in ids {
            self.shared.send(id, msg());
        }
        while self.active_runs() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops claiming, lets running attempts finish for up to the shutdown grace, then stops
    /// them and drops this node's leases so another node (or the next start) takes over.
    pub async fn shutdown(&self) {
        let _ = self.shared.shutdown.send(true);
        let grace = tokio::time::Instant::now() + self.shared.config.shutdown_grace;
        self.tell_drivers_until(|| DriverMsg::Drain, grace).await;
        self.tell_drivers_until(|| DriverMsg::Abandon, grace + Duration::from_secs(2))
            .await;
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
        if let Err(e) = self
            .shared
            .store
            .release_leases(&self.shared.config.node_id)
            .await
        {
            tracing::warn!(error = %e, "weir.engine.shutdown: could not release leases");
        }
    }
}
