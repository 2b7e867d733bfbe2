//! For-each tasks: iterations with their own attempts, at most `concurrency` at once.

use super::*;

impl RunState {
    pub(super) fn advance_for_each(
        &mut self,
        id: RunId,
        now: Millis,
        fx: &mut Vec<Effect>,
    ) -> bool {
        let Some(task) = self.task_of(id).cloned() else {
            return false;
        };
        let Some(fe) = task.for_each_task.as_deref() else {
            return false;
        };
        let inputs = self.rows[&id]
            .resolved
            .as_ref()
            .and_then(|r| r.get("inputs"))
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let mut iters = self.iterations.remove(&id).unwrap_or_default();
        iters.resize(inputs.max(iters.len()), Vec::new());
        let mut changed = false;
        for attempts in iters.iter_mut() {
            let Some(&last) = attempts.last() else {
                continue;
            };
            changed |= match self.rows[&last].life_cycle_state {
                LifeCycleState::WaitingForRetry
                    if self.rows[&last].retry_at.unwrap_or(0) <= now =>
                {
                    self.start(last, now, fx);
                    true
                }
                LifeCycleState::Running if !self.executing.contains(&last) => {
                    self.advance_running(last, now, fx)
                }
                s if s.is_final() => self.retry_if_due(last, now, |_, new| attempts.push(new)),
                _ => false,
            };
        }
        let finished = |s: &Self, a: &Vec<RunId>| {
            a.last()
                .is_some_and(|l| s.rows[l].is_final() && !s.should_retry(*l))
        };
        let mut active = iters
            .iter()
            .filter(|a| !a.is_empty() && !finished(self, a))
            .count();
        let mut next = iters.iter().position(Vec::is_empty);
        while let Some(idx) = next {
            if active >= fe.concurrency.max(1) as usize {
                break;
            }
            let Some(new_id) = self.ids.pop_front() else {
                self.needs_ids = true;
                break;
            };
            let iteration = crate::store::Iteration {
                parent_task_run_id: id,
                index: idx as u32,
            };
            let row = TaskRunRecord {
                ready_time: Some(now),
                ..TaskRunRecord::blocked(
                    new_id,
                    self.run.run_id,
                    &fe.task.task_key,
                    self.rows[&id].repair_id,
                    Some(iteration),
                )
            };
            self.rows.insert(new_id, row);
            iters[idx].push(new_id);
            self.start(new_id, now, fx);
            active += 1;
            changed = true;
            next = iters.iter().position(Vec::is_empty);
        }
        let all_done = iters.iter().all(|a| finished(self, a));
        let failures: Vec<(usize, String)> = iters
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                let r = &self.rows[a.last()?];
                (r.result_state != Some(ResultState::Success)).then(|| (i, r.state_message.clone()))
            })
            .collect();
        self.iterations.insert(id, iters);
        if all_done && !self.needs_ids {
            if failures.is_empty() {
                self.finalize(id, ResultState::Success, String::new(), now);
            } else {
                let (first, why) = &failures[0];
                let msg = format!(
                    "{} of {inputs} iterations failed; iteration {first}: {why}",
                    failures.len()
                );
                self.finalize(id, ResultState::Failed, msg, now);
            }
            changed = true;
        }
        changed
    }
}
