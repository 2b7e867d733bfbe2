//! Outcomes, stopping, and the run's result.

use super::*;

impl RunState {
    pub(super) fn advance_stopping(
        &mut self,
        reason: StopReason,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) {
        let ids: Vec<RunId> = self
            .rows
            .values()
            .filter(|r| !r.is_final())
            .map(|r| r.task_run_id)
            .collect();
        let (stopped, waiting_msg, blocked) = match reason {
            StopReason::Cancel => (
                ResultState::Canceled,
                "canceled",
                ResultState::UpstreamCanceled,
            ),
            StopReason::Timeout => (
                ResultState::Canceled,
                "the run timed out",
                ResultState::Canceled,
            ),
        };
        for id in ids {
            match self.rows[&id].life_cycle_state {
                LifeCycleState::Running | LifeCycleState::Terminating
                    if self.executing.contains(&id) =>
                {
                    if self.stop_sent.insert(id) {
                        fx.push(Effect::Stop(id));
                    }
                }
                LifeCycleState::Blocked => {
                    let msg = format!("not started: {waiting_msg} before this task could run");
                    self.finalize(id, blocked, msg, now);
                }
                _ => {
                    let result = if reason == StopReason::Timeout
                        && self.rows[&id].life_cycle_state == LifeCycleState::Running
                    {
                        ResultState::Timedout
                    } else {
                        stopped
                    };
                    self.finalize(id, result, format!("stopped: {waiting_msg}"), now);
                }
            }
        }
        if self.executing.is_empty() {
            self.finish(now);
        } else if self.run.life_cycle_state != LifeCycleState::Terminating {
            self.run.life_cycle_state = LifeCycleState::Terminating;
            self.run_dirty = true;
        }
    }

    /// Applies the outcome of a wasm attempt.
    pub fn on_outcome(&mut self, id: RunId, outcome: Outcome, now: Millis) {
        self.executing.remove(&id);
        self.logs.push((id, outcome.logs));
        let Some(row) = self.rows.get(&id) else {
            return;
        };
        if row.is_final() {
            return;
        }
        let timeout_s = self.task_of(id).map_or(0, |t| t.timeout_seconds);
        let (result, message, exit_code) = match outcome.status {
            ExitStatus::Success => (ResultState::Success, String::new(), Some(0)),
            ExitStatus::Failed { message, exit_code } => (ResultState::Failed, message, exit_code),
            ExitStatus::TimedOut => (
                ResultState::Timedout,
                format!("timed out after {timeout_s} s (timeout_seconds)"),
                None,
            ),
            ExitStatus::Canceled => match self.stop {
                Some(StopReason::Timeout) => (
                    ResultState::Timedout,
                    format!(
                        "stopped: the run exceeded its timeout_seconds of {}",
                        self.run.plan.settings.timeout_seconds
                    ),
                    None,
                ),
                _ => (ResultState::Canceled, "canceled".to_string(), None),
            },
        };
        let row = self.touch(id);
        row.values = outcome.values;
        row.exit_code = exit_code;
        self.finalize(id, result, message, now);
    }

    /// Records the child run a `run_job_task` attempt started (or re-attached to).
    pub fn on_child_started(&mut self, id: RunId, child_run_id: RunId) {
        if self
            .rows
            .get(&id)
            .is_some_and(|r| r.child_run_id != Some(child_run_id))
        {
            self.touch(id).child_run_id = Some(child_run_id);
        }
    }

    /// Applies the end of a `run_job_task` attempt's child run.
    pub fn on_child_finished(&mut self, id: RunId, child: ChildResult, now: Millis) {
        self.executing.remove(&id);
        if self.rows.get(&id).is_none_or(|r| r.is_final()) {
            return;
        }
        let state = child.result_state.map_or("INTERNAL_ERROR", |r| r.as_str());
        let (result, message) = match child.result_state {
            Some(r) if r.is_success() => (ResultState::Success, String::new()),
            Some(ResultState::Canceled) => (
                ResultState::Canceled,
                format!("child run {} was canceled", child.run_id),
            ),
            _ => (
                ResultState::Failed,
                format!(
                    "child run {} ended {state}: {}",
                    child.run_id, child.state_message
                ),
            ),
        };
        self.finalize(id, result, message, now);
    }

    /// A `run_job_task` attempt whose child could not be started.
    pub fn on_child_failed(&mut self, id: RunId, message: String, now: Millis) {
        self.executing.remove(&id);
        if self.rows.get(&id).is_some_and(|r| !r.is_final()) {
            self.finalize(id, ResultState::Failed, message, now);
        }
    }

    pub(super) fn finish(&mut self, now: Millis) {
        let (result, message) = match self.stop {
            Some(StopReason::Cancel) => (ResultState::Canceled, "canceled by request".to_string()),
            Some(StopReason::Timeout) => (
                ResultState::Timedout,
                format!(
                    "the run exceeded its timeout_seconds of {}",
                    self.run.plan.settings.timeout_seconds
                ),
            ),
            None => self.compute_result(),
        };
        self.run.life_cycle_state = LifeCycleState::Terminated;
        self.run.result_state = Some(result);
        self.run.state_message = message;
        self.run.end_time = Some(now);
        if let Some(repair) = self.run.repair_history.last_mut() {
            repair.end_time = Some(now);
            repair.result_state = Some(result);
        }
        self.run_dirty = true;
    }

    /// Lakeflow's run result: from the leaf tasks.
    pub(super) fn compute_result(&self) -> (ResultState, String) {
        let results: Vec<Option<ResultState>> =
            (0..self.graph.len()).map(|i| self.task_result(i)).collect();
        let bad = |r: Option<ResultState>| {
            !matches!(
                r,
                Some(
                    ResultState::Success | ResultState::SuccessWithFailures | ResultState::Excluded
                )
            )
        };
        let causes: Vec<String> = (0..self.graph.len())
            .filter(|&i| {
                matches!(
                    results[i],
                    Some(ResultState::Failed | ResultState::Timedout)
                )
            })
            .map(|i| {
                let row = &self.rows[self.current[i].last().expect("has rows")];
                format!("`{}` ({})", self.graph.key(i), row.state_message)
            })
            .collect();
        let leaf_bad: Vec<usize> = (0..self.graph.len())
            .filter(|&i| self.graph.is_leaf(i) && bad(results[i]))
            .collect();
        if !leaf_bad.is_empty() {
            let canceled_only = leaf_bad.iter().all(|&i| {
                matches!(
                    results[i],
                    Some(ResultState::Canceled | ResultState::UpstreamCanceled)
                )
            });
            if canceled_only && causes.is_empty() {
                return (ResultState::Canceled, "a task was canceled".into());
            }
            let msg = if causes.is_empty() {
                format!("task `{}` did not succeed", self.graph.key(leaf_bad[0]))
            } else {
                format!("failed tasks: {}", causes.join("; "))
            };
            return (ResultState::Failed, msg);
        }
        if results.iter().any(|r| {
            matches!(
                r,
                Some(ResultState::Failed | ResultState::Timedout | ResultState::UpstreamFailed)
            )
        }) {
            let msg = if causes.is_empty() {
                "leaf tasks succeeded; some tasks did not".to_string()
            } else {
                format!("leaf tasks succeeded; failed tasks: {}", causes.join("; "))
            };
            return (ResultState::SuccessWithFailures, msg);
        }
        (ResultState::Success, String::new())
    }

    /// Takes the changes since the last call as a write fenced by `node`.
    pub fn take_write(&mut self, node: &str) -> Option<RunWrite> {
        if self.dirty.is_empty() && !self.run_dirty && self.logs.is_empty() {
            return None;
        }
        let tasks = std::mem::take(&mut self.dirty)
            .into_iter()
            .map(|id| self.rows[&id].clone())
            .collect();
        let progress = std::mem::take(&mut self.run_dirty).then(|| RunProgress {
            life_cycle_state: self.run.life_cycle_state,
            result_state: self.run.result_state,
            state_message: self.run.state_message.clone(),
            start_time: self.run.start_time,
            end_time: self.run.end_time,
            repair_history: self.run.repair_history.clone(),
        });
        Some(RunWrite {
            run_id: self.run.run_id,
            node: node.to_string(),
            progress,
            tasks,
            logs: std::mem::take(&mut self.logs),
            release: self.is_final(),
        })
    }
}
