//! The state machine of one run. Pure: it holds the run and its task runs in memory, decides
//! what starts, applies outcomes, and records which rows changed; the driver persists the
//! changes and carries out the [`Effect`]s.
//!
//! Recovery needs no special path: a RUNNING wasm attempt that this process is not executing can
//! only come from a node that stopped, so the next [`RunState::advance`] fails it as interrupted
//! (it counts as an attempt) and the retry policy applies; a RUNNING `run_job_task` re-attaches to
//! its child run; retries that were due while nobody coordinated the run start at once.

use super::graph::Graph;
use super::resolve::{Scope, Upstream};
use super::run_if::{Decision, EdgeResult, decide};
use crate::exec::{ExitStatus, Invocation, Outcome, Preopen};
use crate::spec::{ConditionOp, ConditionTask, Task, TaskKind};
use crate::store::{
    LifeCycleState, Millis, ResultState, RunId, RunProgress, RunRecord, RunSnapshot, RunWrite,
    TaskLogs, TaskRunRecord,
};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::Duration;

/// Most iterations one for-each task may have.
pub const MAX_FOR_EACH_ITERATIONS: usize = 5000;
/// Deepest chain of `run_job_task` runs.
pub const MAX_RUN_JOB_DEPTH: u32 = 10;

/// Why a run is stopping early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A cancel request.
    Cancel,
    /// The job's `timeout_seconds` elapsed.
    Timeout,
}

/// The job a `run_job_task` starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobRef {
    /// By id.
    Id(i64),
    /// By name.
    Name(String),
}

/// Work for the driver, produced by [`RunState::advance`].
#[derive(Debug, Clone)]
pub enum Effect {
    /// Run a wasm attempt.
    StartWasm(Box<Invocation>),
    /// Start (or re-attach to) the child run of a `run_job_task` attempt.
    StartChild {
        /// The `run_job_task` attempt.
        task_run_id: RunId,
        /// The job to run.
        job: JobRef,
        /// Resolved `job_parameters`.
        parameters: BTreeMap<String, String>,
    },
    /// Stop an executing attempt (a wasm instance, or a child run).
    Stop(RunId),
}

/// How a child run of a `run_job_task` ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ChildResult {
    /// The child run.
    pub run_id: RunId,
    /// Its result.
    pub result_state: Option<ResultState>,
    /// Its state message.
    pub state_message: String,
}

/// The in-memory state of one run.
pub struct RunState {
    run: RunRecord,
    graph: Graph,
    rows: BTreeMap<RunId, TaskRunRecord>,
    /// Per top-level task: the attempts of its current execution, oldest first.
    current: Vec<Vec<RunId>>,
    /// Per for-each attempt: per iteration index, its attempts.
    iterations: HashMap<RunId, Vec<Vec<RunId>>>,
    executing: HashSet<RunId>,
    stop_sent: HashSet<RunId>,
    stop: Option<StopReason>,
    dirty: BTreeSet<RunId>,
    run_dirty: bool,
    logs: Vec<(RunId, TaskLogs)>,
    ids: VecDeque<RunId>,
    needs_ids: bool,
}

impl RunState {
    /// Loads a run claimed from the store.
    pub fn new(snapshot: RunSnapshot) -> RunState {
        let RunSnapshot { run, tasks } = snapshot;
        let graph = Graph::new(&run.plan.settings);
        let mut current: Vec<Vec<RunId>> = vec![Vec::new(); graph.len()];
        let mut latest_repair = vec![-1i64; graph.len()];
        let mut iterations: HashMap<RunId, Vec<Vec<RunId>>> = HashMap::new();
        for t in &tasks {
            match t.iteration {
                Some(it) => {
                    let list = iterations.entry(it.parent_task_run_id).or_default();
                    let idx = it.index as usize;
                    if list.len() <= idx {
                        list.resize(idx + 1, Vec::new());
                    }
                    list[idx].push(t.task_run_id);
                }
                None => {
                    if let Some(i) = graph.index_of(&t.task_key) {
                        if t.repair_id > latest_repair[i] {
                            latest_repair[i] = t.repair_id;
                            current[i].clear();
                        }
                        if t.repair_id == latest_repair[i] {
                            current[i].push(t.task_run_id);
                        }
                    }
                }
            }
        }
        let rows: BTreeMap<RunId, TaskRunRecord> =
            tasks.into_iter().map(|t| (t.task_run_id, t)).collect();
        let by_attempt = |ids: &mut Vec<RunId>| ids.sort_by_key(|id| rows[id].attempt_number);
        current.iter_mut().for_each(by_attempt);
        iterations
            .values_mut()
            .flat_map(|v| v.iter_mut())
            .for_each(by_attempt);
        let stop = run.cancel_requested.then_some(StopReason::Cancel);
        RunState {
            run,
            graph,
            rows,
            current,
            iterations,
            executing: HashSet::new(),
            stop_sent: HashSet::new(),
            stop,
            dirty: BTreeSet::new(),
            run_dirty: false,
            logs: Vec::new(),
            ids: VecDeque::new(),
            needs_ids: false,
        }
    }

    /// The run record.
    pub fn run(&self) -> &RunRecord {
        &self.run
    }

    /// A task run.
    pub fn row(&self, id: RunId) -> Option<&TaskRunRecord> {
        self.rows.get(&id)
    }

    /// Whether the run has ended.
    pub fn is_final(&self) -> bool {
        self.run.life_cycle_state.is_final()
    }

    /// Attempts being executed right now.
    pub fn executing(&self) -> usize {
        self.executing.len()
    }

    /// Whether [`advance`](Self::advance) stopped early for lack of task run ids.
    pub fn needs_ids(&self) -> bool {
        self.needs_ids
    }

    /// Adds fresh task run ids (from [`crate::store::Store::allocate_run_ids`]).
    pub fn add_ids(&mut self, first: RunId, n: u32) {
        self.ids.extend(first..first + n as RunId);
        self.needs_ids = false;
    }

    /// Stops the run: running attempts are stopped, nothing new starts.
    pub fn request_stop(&mut self, reason: StopReason) {
        if self.stop.is_none() && !self.is_final() {
            self.stop = Some(reason);
        }
    }

    /// When the run must be looked at again even if nothing reports (retries due, deadlines).
    pub fn next_wake(&self) -> Option<Millis> {
        if self.is_final() {
            return None;
        }
        let mut wake = self.run_deadline();
        let mut consider = |t: Millis| wake = Some(wake.map_or(t, |w: Millis| w.min(t)));
        for row in self.rows.values() {
            match row.life_cycle_state {
                LifeCycleState::WaitingForRetry => consider(row.retry_at.unwrap_or(0)),
                LifeCycleState::Running => {
                    let wasm = self
                        .task_of(row.task_run_id)
                        .is_some_and(|t| t.wasm_task.is_some());
                    if !wasm && let Some(d) = self.task_deadline(row) {
                        consider(d);
                    }
                }
                _ => {}
            }
        }
        wake
    }

    /// The job-level deadline: `timeout_seconds` after the start (or the latest repair).
    fn run_deadline(&self) -> Option<Millis> {
        let t = self.run.plan.settings.timeout_seconds;
        if t == 0 {
            return None;
        }
        let start = self
            .run
            .repair_history
            .last()
            .map(|r| r.start_time)
            .or(self.run.start_time)?;
        Some(start + (t as Millis) * 1000)
    }

    fn task_deadline(&self, row: &TaskRunRecord) -> Option<Millis> {
        let t = self.task_of(row.task_run_id)?.timeout_seconds;
        (t > 0).then(|| row.start_time.unwrap_or(0) + (t as Millis) * 1000)
    }

    // ---- lookups ---------------------------------------------------------------------------

    /// The task spec of a row (the inner task for an iteration) and its module key in the plan.
    fn spec_of(&self, id: RunId) -> Option<(Task, String)> {
        let row = self.rows.get(&id)?;
        let task = self.task_of(id)?.clone();
        let key = match row.iteration {
            None => row.task_key.clone(),
            Some(it) => format!(
                "{}/{}",
                self.rows[&it.parent_task_run_id].task_key, task.task_key
            ),
        };
        Some((task, key))
    }

    fn task_of(&self, id: RunId) -> Option<&Task> {
        let row = self.rows.get(&id)?;
        let top = |key: &str| {
            self.graph
                .index_of(key)
                .map(|i| &self.run.plan.settings.tasks[i])
        };
        match row.iteration {
            None => top(&row.task_key),
            Some(it) => {
                let parent = self.rows.get(&it.parent_task_run_id)?;
                Some(&top(&parent.task_key)?.for_each_task.as_ref()?.task)
            }
        }
    }

    /// The result of the current execution of top-level task `i`, once final.
    pub fn current_result(&self, i: usize) -> Option<ResultState> {
        let &last = self.current.get(i)?.last()?;
        self.rows[&last].result_state
    }

    /// The result of task `i` when it has finished for good (no retry pending).
    fn task_result(&self, i: usize) -> Option<ResultState> {
        let &last = self.current[i].last()?;
        let row = &self.rows[&last];
        (row.is_final() && !self.should_retry(last))
            .then_some(row.result_state)
            .flatten()
    }

    /// Whether a final attempt gets another attempt under its task's retry policy.
    fn should_retry(&self, id: RunId) -> bool {
        let row = &self.rows[&id];
        if self.stop.is_some() || !row.is_final() {
            return false;
        }
        if let Some(it) = row.iteration
            && self
                .rows
                .get(&it.parent_task_run_id)
                .is_none_or(|p| p.is_final())
        {
            return false;
        }
        let Some(task) = self.task_of(id) else {
            return false;
        };
        let retryable = match row.result_state {
            Some(ResultState::Failed) => true,
            Some(ResultState::Timedout) => task.retry_on_timeout,
            _ => false,
        };
        retryable && (task.max_retries < 0 || (row.attempt_number as i64) < task.max_retries as i64)
    }

    /// The scope references of attempt `id` resolve in.
    fn scope<'a>(&'a self, id: RunId, input: Option<&'a Value>) -> Scope<'a> {
        let row = &self.rows[&id];
        let top = match row.iteration {
            Some(it) => self.rows[&it.parent_task_run_id].task_key.as_str(),
            None => row.task_key.as_str(),
        };
        let mut upstream = BTreeMap::new();
        if let Some(ti) = self.graph.index_of(top) {
            for u in self.graph.ancestors(ti) {
                if let Some(&last) = self.current[u].last() {
                    let r = &self.rows[&last];
                    upstream.insert(
                        self.graph.key(u),
                        Upstream {
                            run_id: r.task_run_id,
                            result_state: r.result_state,
                            values: &r.values,
                        },
                    );
                }
            }
        }
        let execution_count = match row.iteration {
            Some(it) => self
                .rows
                .values()
                .filter(|r| {
                    r.iteration.is_some_and(|x| {
                        x.parent_task_run_id == it.parent_task_run_id && x.index == it.index
                    })
                })
                .count(),
            None => self
                .rows
                .values()
                .filter(|r| r.iteration.is_none() && r.task_key == row.task_key)
                .count(),
        };
        Scope {
            run: &self.run,
            task_key: &row.task_key,
            task_run_id: id,
            attempt: row.attempt_number,
            execution_count,
            upstream,
            input,
        }
    }

    /// The for-each element of an iteration row.
    fn input_of(&self, id: RunId) -> Option<Value> {
        let it = self.rows[&id].iteration?;
        let parent = self.rows.get(&it.parent_task_run_id)?;
        parent
            .resolved
            .as_ref()?
            .get("inputs")?
            .get(it.index as usize)
            .cloned()
    }

    // ---- transitions -----------------------------------------------------------------------

    fn touch(&mut self, id: RunId) -> &mut TaskRunRecord {
        self.dirty.insert(id);
        self.rows.get_mut(&id).expect("row exists")
    }

    fn finalize(&mut self, id: RunId, result: ResultState, message: String, now: Millis) {
        let row = self.touch(id);
        row.life_cycle_state = LifeCycleState::Terminated;
        row.result_state = Some(result);
        row.state_message = message;
        row.end_time = Some(now);
        row.retry_at = None;
        self.executing.remove(&id);
    }

    /// Decides what happens next and returns the work to carry out. Call it after loading the
    /// run and after every outcome, stop request or wake-up.
    pub fn advance(&mut self, now: Millis) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.is_final() {
            return fx;
        }
        if matches!(
            self.run.life_cycle_state,
            LifeCycleState::Queued | LifeCycleState::Pending
        ) {
            self.run.life_cycle_state = LifeCycleState::Running;
            self.run.state_message.clear();
            self.run.start_time.get_or_insert(now);
            self.run_dirty = true;
        }
        if self.stop.is_none() && self.run_deadline().is_some_and(|d| now >= d) {
            self.stop = Some(StopReason::Timeout);
        }
        if let Some(reason) = self.stop {
            self.advance_stopping(reason, now, &mut fx);
            return fx;
        }
        loop {
            let mut changed = false;
            for i in 0..self.graph.len() {
                changed |= self.advance_task(i, now, &mut fx);
            }
            if !changed {
                break;
            }
        }
        if (0..self.graph.len()).all(|i| self.task_result(i).is_some()) {
            self.finish(now);
        }
        fx
    }

    fn advance_task(&mut self, i: usize, now: Millis, fx: &mut Vec<Effect>) -> bool {
        let Some(&last) = self.current[i].last() else {
            return false;
        };
        match self.rows[&last].life_cycle_state {
            LifeCycleState::Blocked | LifeCycleState::Pending | LifeCycleState::Queued => {
                let mut edges = Vec::new();
                for e in self.graph.deps(i) {
                    let Some(result) = self.task_result(e.upstream) else {
                        return false;
                    };
                    let up = &self.rows[self.current[e.upstream].last().expect("has rows")];
                    let matches = e
                        .outcome
                        .as_ref()
                        .is_none_or(|o| up.outcome.as_deref() == Some(o.as_str()));
                    edges.push(EdgeResult::of(result, matches));
                }
                match decide(self.graph.run_if(i), &edges) {
                    Decision::Run => self.start(last, now, fx),
                    Decision::Skip(result) => {
                        let message = self.skip_message(i, result, &edges);
                        self.finalize(last, result, message, now);
                    }
                }
                true
            }
            LifeCycleState::WaitingForRetry => {
                if self.rows[&last].retry_at.unwrap_or(0) <= now {
                    self.start(last, now, fx);
                    true
                } else {
                    false
                }
            }
            LifeCycleState::Running | LifeCycleState::Terminating => {
                self.advance_running(last, now, fx)
            }
            _ => self.retry_if_due(last, now, |s, id| s.current[i].push(id)),
        }
    }

    /// Creates the next attempt of a final row when its retry policy asks for one.
    fn retry_if_due(
        &mut self,
        id: RunId,
        _now: Millis,
        push: impl FnOnce(&mut Self, RunId),
    ) -> bool {
        if !self.should_retry(id) {
            return false;
        }
        let Some(new_id) = self.ids.pop_front() else {
            self.needs_ids = true;
            return false;
        };
        let interval = self.task_of(id).map_or(0, |t| t.min_retry_interval_millis) as Millis;
        let prev = &self.rows[&id];
        let next = prev.next_attempt(new_id, prev.end_time.unwrap_or(0) + interval);
        self.rows.insert(new_id, next);
        self.dirty.insert(new_id);
        push(self, new_id);
        true
    }

    /// A RUNNING row this process may not be executing (after a takeover), or a for-each.
    fn advance_running(&mut self, id: RunId, now: Millis, fx: &mut Vec<Effect>) -> bool {
        let Some(task) = self.task_of(id).cloned() else {
            return false;
        };
        if let Some(deadline) = self.task_deadline(&self.rows[&id])
            && now >= deadline
            && !matches!(task.kind(), Some(TaskKind::Wasm(_)))
        {
            self.stop_executing_children(id, fx);
            let msg = format!(
                "timed out after {} s (timeout_seconds)",
                task.timeout_seconds
            );
            self.finalize(id, ResultState::Timedout, msg, now);
            return true;
        }
        match task.kind() {
            Some(TaskKind::ForEach(_)) => self.advance_for_each(id, now, fx),
            Some(TaskKind::RunJob(_)) if !self.executing.contains(&id) => {
                self.start_child(id, fx);
                false
            }
            Some(TaskKind::Condition(_)) => {
                self.start(id, now, fx);
                true
            }
            _ if !self.executing.contains(&id) => {
                let msg = "attempt interrupted: the weir node running it stopped (crash or restart) before it finished";
                self.finalize(id, ResultState::Failed, msg.to_string(), now);
                true
            }
            _ => false,
        }
    }

    fn stop_executing_children(&mut self, id: RunId, fx: &mut Vec<Effect>) {
        let mut targets = vec![id];
        if let Some(its) = self.iterations.get(&id) {
            targets.extend(its.iter().filter_map(|a| a.last().copied()));
        }
        for t in targets {
            if self.executing.contains(&t) && self.stop_sent.insert(t) {
                fx.push(Effect::Stop(t));
            }
        }
    }
}

mod finish;
mod for_each;
mod start;

pub use start::evaluate_condition;

#[cfg(test)]
mod tests;
