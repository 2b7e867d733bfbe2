//! The coordinator of one run on this node: applies events to the run's state, persists every
//! change (fenced by the run's lease) before acting on it, and carries out the effects.

use super::Shared;
use super::state::{ChildResult, Effect, RunState, StopReason};
use crate::exec::{CancelHandle, ExitStatus, Invocation, Outcome};
use crate::metrics;
use crate::store::{LifeCycleState, RunId, RunSnapshot, RunWrite, StoreError};
use crate::trigger::file_arrival::input::InputPlan;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// Task run ids a driver allocates at a time.
const ID_BATCH: u32 = 64;

/// Events for a driver.
#[derive(Debug)]
pub(crate) enum DriverMsg {
    /// A wasm attempt ended.
    Outcome(RunId, Outcome),
    /// A `run_job_task` attempt has its child run.
    ChildStarted(RunId, RunId),
    /// A `run_job_task` attempt's child run ended.
    ChildFinished(RunId, ChildResult),
    /// A `run_job_task` attempt could not start its child.
    ChildFailed(RunId, String),
    /// A wasm attempt's `/input` was fetched (or could not be): start it now.
    InputStaged(RunId, Box<Invocation>, Result<crate::exec::Preopen, String>),
    /// Stop the run (cancel request).
    Cancel,
    /// Another node owns the run now: stop everything, write nothing.
    LeaseLost,
    /// Shutting down: start nothing new, let running attempts finish.
    Drain,
    /// Shutting down now: stop running attempts without recording them.
    Abandon,
}

/// Runs one driver to the end of its run (or until it loses the run).
pub(crate) async fn drive(
    shared: Arc<Shared>,
    snapshot: RunSnapshot,
    rx: mpsc::UnboundedReceiver<DriverMsg>,
    tx: mpsc::UnboundedSender<DriverMsg>,
) {
    let run_id = snapshot.run.run_id;
    let span = tracing::info_span!(
        "weir.engine.run",
        run.id = run_id,
        job.id = snapshot.run.job_id
    );
    let started_counted = snapshot.run.life_cycle_state != LifeCycleState::Pending
        && snapshot.run.life_cycle_state != LifeCycleState::Queued;
    let driver = Driver {
        state: RunState::new(snapshot),
        counted: Counted {
            run_started: started_counted,
            run_finished: false,
            attempts: HashSet::new(),
        },
        shared: shared.clone(),
        rx,
        tx,
        attempts: HashMap::new(),
        children: HashMap::new(),
        watchers: HashMap::new(),
        stop_pending: HashSet::new(),
        staging: HashSet::new(),
        draining: false,
    };
    driver.run().instrument(span).await;
    shared.drivers.lock().expect("drivers lock").remove(&run_id);
    let _ = shared.finished.send(run_id);
    shared.claim_now.notify_one();
}

/// What this driver has counted in the metrics already (a row may be written more than once).
struct Counted {
    run_started: bool,
    run_finished: bool,
    attempts: HashSet<RunId>,
}

impl Counted {
    /// Counts what a committed write changed: the run's start and end, ended task attempts.
    fn record(&mut self, write: &RunWrite) {
        if let Some(p) = &write.progress {
            if p.life_cycle_state == LifeCycleState::Running && !self.run_started {
                self.run_started = true;
                metrics::inc(metrics::RUNS_STARTED, &[]);
            }
            if p.life_cycle_state.is_final() && !self.run_finished {
                self.run_finished = true;
                let result = p
                    .result_state
                    .map_or(p.life_cycle_state.as_str(), |r| r.as_str());
                metrics::inc(metrics::RUNS_FINISHED, &[("result", result)]);
                if let (Some(start), Some(end)) = (p.start_time, p.end_time) {
                    metrics::observe(metrics::RUN_DURATION, &[], seconds(end - start));
                }
            }
        }
        for t in &write.tasks {
            if let (true, Some(result), Some(start)) = (t.is_final(), t.result_state, t.start_time)
                && self.attempts.insert(t.task_run_id)
            {
                metrics::inc(metrics::TASK_ATTEMPTS, &[("result", result.as_str())]);
                if let Some(end) = t.end_time {
                    metrics::observe(metrics::TASK_DURATION, &[], seconds(end - start));
                }
            }
        }
    }
}

fn seconds(ms: i64) -> f64 {
    ms.max(0) as f64 / 1000.0
}

struct Driver {
    state: RunState,
    counted: Counted,
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<DriverMsg>,
    tx: mpsc::UnboundedSender<DriverMsg>,
    /// Executing wasm attempts.
    attempts: HashMap<RunId, CancelHandle>,
    /// Executing `run_job_task` attempts and their child runs (once known).
    children: HashMap<RunId, Option<RunId>>,
    /// The tasks that start or watch child runs.
    watchers: HashMap<RunId, tokio::task::JoinHandle<()>>,
    /// `run_job_task` attempts asked to stop before their child run was known, and wasm
    /// attempts asked to stop while their `/input` was being fetched.
    stop_pending: HashSet<RunId>,
    /// Wasm attempts whose `/input` is being fetched.
    staging: HashSet<RunId>,
    draining: bool,
}

/// The outcome of an attempt that never started.
fn not_started(status: ExitStatus) -> Outcome {
    Outcome {
        status,
        values: Default::default(),
        logs: Default::default(),
        duration: Duration::ZERO,
    }
}

enum Flow {
    Continue,
    Stop,
}

impl Driver {
    async fn run(mut self) {
        loop {
            if let Flow::Stop = self.step().await {
                break;
            }
            if self.state.is_final() || (self.draining && self.state.executing() == 0) {
                break;
            }
            // Retries and run timeouts are due on the engine's clock.
            let wake = self
                .state
                .next_wake()
                .map(|t| self.shared.clock.sleep_until(t));
            let msg = tokio::select! {
                msg = self.rx.recv() => msg,
                _ = async { match wake { Some(w) => w.await, None => std::future::pending().await } } => None,
            };
            let mut next = msg;
            while let Some(m) = next {
                if let Flow::Stop = self.apply(m) {
                    self.abandon();
                    return;
                }
                next = self.rx.try_recv().ok();
            }
        }
        for (_, w) in self.watchers.drain() {
            w.abort();
        }
        if self.state.is_final()
            && let Some(inputs) = &self.shared.config.inputs
        {
            inputs.release(self.state.run().run_id);
        }
    }

    /// Advances the state, persists what changed, then acts on it.
    async fn step(&mut self) -> Flow {
        loop {
            self.refill_ids().await;
            let effects = if self.draining {
                Vec::new()
            } else {
                self.state.advance(self.shared.now())
            };
            if let Flow::Stop = self.persist().await {
                return Flow::Stop;
            }
            for e in effects {
                self.execute(e);
            }
            // When the id pool ran dry mid-way, the state kept its place: refill and go on.
            if !self.state.needs_ids() {
                return Flow::Continue;
            }
        }
    }

    /// Fetches task run ids when the state ran out (retries and for-each iterations need them;
    /// most runs never do, so nothing is allocated up front).
    async fn refill_ids(&mut self) {
        let mut backoff = Duration::from_millis(50);
        while self.state.needs_ids() {
            match self.shared.store.allocate_run_ids(ID_BATCH).await {
                Ok(first) => self.state.add_ids(first, ID_BATCH),
                Err(e) => {
                    tracing::error!(error = %e, "weir.engine.ids: cannot allocate task run ids; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Writes the state's changes; retries store failures until they succeed.
    async fn persist(&mut self) -> Flow {
        let Some(write) = self.state.take_write(&self.shared.config.node_id) else {
            return Flow::Continue;
        };
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.shared.store.write_run(write.clone()).await {
                Ok(()) => {
                    self.counted.record(&write);
                    return Flow::Continue;
                }
                Err(StoreError::LeaseLost { .. }) => {
                    tracing::warn!(
                        "weir.engine.lease: another node owns this run now; stopping here"
                    );
                    self.abandon();
                    return Flow::Stop;
                }
                Err(e) => {
                    tracing::error!(error = %e, "weir.engine.persist: write failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn execute(&mut self, effect: Effect) {
        match effect {
            Effect::StartWasm(mut inv) => {
                let id: RunId = inv
                    .attempt_id
                    .parse()
                    .expect("attempt ids are task run ids");
                if let Some(inputs) = &self.shared.config.inputs {
                    let run = self.state.run();
                    match inputs.plan(run.run_id, &run.trigger_info) {
                        Ok(None) => {}
                        Ok(Some(InputPlan::Ready(preopen))) => inv.preopens.push(preopen),
                        Ok(Some(InputPlan::Fetch(request))) => {
                            self.staging.insert(id);
                            let tx = self.tx.clone();
                            inputs.start_fetch(request, move |staged| {
                                let staged = staged.map_err(|e| e.to_string());
                                let _ = tx.send(DriverMsg::InputStaged(id, inv, staged));
                            });
                            return;
                        }
                        Err(e) => {
                            let status = ExitStatus::Failed {
                                message: e.to_string(),
                                exit_code: None,
                            };
                            let _ = self.tx.send(DriverMsg::Outcome(id, not_started(status)));
                            return;
                        }
                    }
                }
                self.start_wasm(id, *inv);
            }
            Effect::StartChild {
                task_run_id,
                job,
                parameters,
            } => {
                self.children.insert(task_run_id, None);
                let shared = self.shared.clone();
                let parent = self.state.run().clone();
                let tx = self.tx.clone();
                let watcher = tokio::spawn(async move {
                    match shared
                        .start_child_run(&parent, task_run_id, &job, parameters)
                        .await
                    {
                        Ok(child) => {
                            let _ = tx.send(DriverMsg::ChildStarted(task_run_id, child));
                            let result = watch_child(&shared, child).await;
                            let _ = tx.send(DriverMsg::ChildFinished(task_run_id, result));
                        }
                        Err(e) => {
                            let _ = tx.send(DriverMsg::ChildFailed(task_run_id, e.to_string()));
                        }
                    }
                });
                if let Some(old) = self.watchers.insert(task_run_id, watcher) {
                    old.abort();
                }
            }
            Effect::Stop(id) => {
                if let Some(cancel) = self.attempts.get(&id) {
                    cancel.cancel();
                }
                if self.staging.contains(&id) {
                    self.stop_pending.insert(id);
                }
                if let Some(None) = self.children.get(&id) {
                    self.stop_pending.insert(id);
                }
                if let Some(Some(child)) = self.children.get(&id).copied() {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        if let Err(e) = shared.cancel_run(child).await {
                            tracing::warn!(error = %e, child, "weir.engine.cancel: cannot cancel child run");
                        }
                    });
                }
            }
        }
    }

    fn start_wasm(&mut self, id: RunId, inv: Invocation) {
        let tx = self.tx.clone();
        let span = match self.state.row(id) {
            Some(row) => tracing::info_span!(
                "weir.engine.task",
                task.key = %row.task_key,
                task.run_id = id,
                attempt = row.attempt_number
            ),
            None => tracing::info_span!("weir.engine.task", task.run_id = id),
        };
        let cancel = span.in_scope(|| {
            self.shared.executor.start_then(inv, move |outcome| {
                let _ = tx.send(DriverMsg::Outcome(id, outcome));
            })
        });
        self.attempts.insert(id, cancel);
    }

    fn apply(&mut self, msg: DriverMsg) -> Flow {
        let now = self.shared.now();
        match msg {
            DriverMsg::InputStaged(id, mut inv, staged) => {
                self.staging.remove(&id);
                if self.stop_pending.remove(&id) {
                    self.state
                        .on_outcome(id, not_started(ExitStatus::Canceled), now);
                } else {
                    match staged {
                        Ok(preopen) => {
                            inv.preopens.push(preopen);
                            self.start_wasm(id, *inv);
                        }
                        Err(message) => {
                            let status = ExitStatus::Failed {
                                message,
                                exit_code: None,
                            };
                            self.state.on_outcome(id, not_started(status), now);
                        }
                    }
                }
            }
            DriverMsg::Outcome(id, outcome) => {
                self.attempts.remove(&id);
                self.state.on_outcome(id, outcome, now);
            }
            DriverMsg::ChildStarted(id, child) => {
                self.children.insert(id, Some(child));
                self.state.on_child_started(id, child);
                if self.stop_pending.remove(&id) || self.state.row(id).is_some_and(|r| r.is_final())
                {
                    // The attempt was stopped before its child was known: stop the child now.
                    self.execute(Effect::Stop(id));
                }
            }
            DriverMsg::ChildFinished(id, result) => {
                self.children.remove(&id);
                self.watchers.remove(&id);
                self.state.on_child_finished(id, result, now);
            }
            DriverMsg::ChildFailed(id, message) => {
                self.children.remove(&id);
                self.watchers.remove(&id);
                self.state.on_child_failed(id, message, now);
            }
            DriverMsg::Cancel => self.state.request_stop(StopReason::Cancel),
            DriverMsg::LeaseLost | DriverMsg::Abandon => return Flow::Stop,
            DriverMsg::Drain => self.draining = true,
        }
        Flow::Continue
    }

    /// Stops everything this driver runs without recording it: the run's next coordinator
    /// treats the attempts as interrupted.
    fn abandon(&mut self) {
        for (_, cancel) in self.attempts.drain() {
            cancel.cancel();
        }
        for (_, w) in self.watchers.drain() {
            w.abort();
        }
    }
}

/// Waits for a child run to end: announced on this node, polled when another node runs it.
async fn watch_child(shared: &Shared, child: RunId) -> ChildResult {
    let mut finished = shared.finished.subscribe();
    loop {
        if let Ok(Some(snap)) = shared.store.get_run(child).await
            && snap.run.life_cycle_state.is_final()
        {
            return ChildResult {
                run_id: child,
                result_state: snap.run.result_state,
                state_message: snap.run.state_message,
            };
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = async {
                while let Ok(id) = finished.recv().await {
                    if id == child { break; }
                }
            } => {}
        }
    }
}
