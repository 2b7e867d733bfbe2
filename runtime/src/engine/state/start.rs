//! Starting an attempt, by task kind.

use super::*;

impl RunState {
    /// Starts an attempt row (BLOCKED or WAITING_FOR_RETRY).
    pub(super) fn start(&mut self, id: RunId, now: Millis, fx: &mut Vec<Effect>) {
        let Some((task, module_key)) = self.spec_of(id) else {
            self.finalize(
                id,
                ResultState::Failed,
                "task is missing from the run's plan".into(),
                now,
            );
            return;
        };
        {
            let row = self.touch(id);
            row.life_cycle_state = LifeCycleState::Running;
            row.ready_time.get_or_insert(now);
            row.start_time = Some(now);
            row.state_message.clear();
        }
        let input = self.input_of(id);
        match task.kind() {
            Some(TaskKind::Wasm(w)) => {
                let Some(digest) = self.run.plan.modules.get(&module_key).cloned() else {
                    let msg = format!("no module is pinned for task `{module_key}` in this run");
                    self.finalize(id, ResultState::Failed, msg, now);
                    return;
                };
                let scope = self.scope(id, input.as_ref());
                let mut args = vec![scope.task_key.to_string()];
                args.extend(w.parameters.iter().map(|p| scope.render(p)));
                let mut env = scope.weir_env();
                let task_env: Vec<(String, String)> = w
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), scope.render(v)))
                    .collect();
                env.extend(task_env.iter().cloned());
                let context = scope.context();
                let preopens = w
                    .mounts
                    .iter()
                    .map(|m| Preopen {
                        host: m.source.strip_prefix("file://").unwrap_or(&m.source).into(),
                        guest: m.path.clone(),
                        read_only: m.read_only,
                    })
                    .collect();
                let inv = Invocation {
                    digest: digest.clone(),
                    attempt_id: id.to_string(),
                    args: args.clone(),
                    env,
                    context,
                    preopens,
                    memory_limit_bytes: w.memory_limit_mb() as u64 * 1024 * 1024,
                    timeout: (task.timeout_seconds > 0)
                        .then(|| Duration::from_secs(task.timeout_seconds)),
                };
                let row = self.touch(id);
                row.module_digest = Some(digest);
                row.resolved = Some(json!({
                    "parameters": &args[1..],
                    "env": task_env.into_iter().collect::<BTreeMap<_, _>>(),
                }));
                self.executing.insert(id);
                fx.push(Effect::StartWasm(Box::new(inv)));
            }
            Some(TaskKind::Condition(c)) => {
                let scope = self.scope(id, input.as_ref());
                let (left, right) = (scope.render(&c.left), scope.render(&c.right));
                let verdict = evaluate_condition(c, &left, &right);
                self.touch(id).resolved = Some(json!({"left": left, "right": right}));
                match verdict {
                    Ok(outcome) => {
                        self.touch(id).outcome = Some(outcome.to_string());
                        self.finalize(id, ResultState::Success, String::new(), now);
                    }
                    Err(msg) => self.finalize(id, ResultState::Failed, msg, now),
                }
            }
            Some(TaskKind::ForEach(f)) => {
                let text = self.scope(id, input.as_ref()).render(&f.inputs);
                match serde_json::from_str::<Value>(&text) {
                    Ok(Value::Array(items)) if items.len() <= MAX_FOR_EACH_ITERATIONS => {
                        self.touch(id).resolved = Some(json!({"inputs": items}));
                        self.iterations.insert(id, Vec::new());
                        self.advance_for_each(id, now, fx);
                    }
                    Ok(Value::Array(items)) => {
                        let msg = format!(
                            "for_each inputs has {} elements, over the limit of {MAX_FOR_EACH_ITERATIONS}",
                            items.len()
                        );
                        self.finalize(id, ResultState::Failed, msg, now);
                    }
                    Ok(_) | Err(_) => {
                        let msg = format!("for_each inputs must be a JSON array, got {text:?}");
                        self.finalize(id, ResultState::Failed, msg, now);
                    }
                }
            }
            Some(TaskKind::RunJob(r)) => {
                let depth = self.run.parent.map_or(0, |p| p.depth) + 1;
                if depth > MAX_RUN_JOB_DEPTH {
                    let msg =
                        format!("run_job_task nesting is deeper than {MAX_RUN_JOB_DEPTH} runs");
                    self.finalize(id, ResultState::Failed, msg, now);
                    return;
                }
                let scope = self.scope(id, input.as_ref());
                let params: BTreeMap<String, String> = r
                    .job_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), scope.render(v)))
                    .collect();
                self.touch(id).resolved = Some(json!({"job_parameters": params}));
                self.start_child(id, fx);
            }
            None => {
                let msg =
                    "task has no kind (wasm_task, condition_task, for_each_task or run_job_task)";
                self.finalize(id, ResultState::Failed, msg.into(), now);
            }
        }
    }

    pub(super) fn start_child(&mut self, id: RunId, fx: &mut Vec<Effect>) {
        let Some(r) = self.task_of(id).and_then(|t| t.run_job_task.as_ref()) else {
            return;
        };
        let job = match (&r.job_id, &r.job_name) {
            (Some(id), _) => JobRef::Id(*id),
            (None, Some(name)) => JobRef::Name(name.clone()),
            (None, None) => JobRef::Id(0),
        };
        let parameters = self.rows[&id]
            .resolved
            .as_ref()
            .and_then(|r| serde_json::from_value(r.get("job_parameters")?.clone()).ok())
            .unwrap_or_default();
        self.executing.insert(id);
        fx.push(Effect::StartChild {
            task_run_id: id,
            job,
            parameters,
        });
    }

    pub(super) fn skip_message(
        &self,
        i: usize,
        result: ResultState,
        edges: &[EdgeResult],
    ) -> String {
        let deps = self.graph.deps(i);
        let named = |want: EdgeResult| {
            deps.iter()
                .zip(edges)
                .filter(|(_, r)| **r == want)
                .map(|(e, _)| format!("`{}`", self.graph.key(e.upstream)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match result {
            ResultState::UpstreamFailed => {
                format!("upstream task failed: {}", named(EdgeResult::Failed))
            }
            ResultState::UpstreamCanceled => {
                format!("upstream task canceled: {}", named(EdgeResult::Canceled))
            }
            _ => format!(
                "excluded: run_if {} is not met by its dependencies",
                self.graph.run_if(i).as_str()
            ),
        }
    }
}

/// Evaluates a condition: numerically when both sides are numbers, else as strings (only
/// EQUAL_TO and NOT_EQUAL compare strings).
pub fn evaluate_condition(c: &ConditionTask, left: &str, right: &str) -> Result<bool, String> {
    use std::cmp::Ordering;
    let ordering = match (left.trim().parse::<f64>(), right.trim().parse::<f64>()) {
        (Ok(l), Ok(r)) => l.partial_cmp(&r),
        _ => match c.op {
            ConditionOp::EqualTo | ConditionOp::NotEqual => Some(left.cmp(right)),
            op => {
                let op = serde_json::to_value(op).unwrap_or_default();
                return Err(format!(
                    "condition {} needs two numbers, got {left:?} and {right:?}",
                    op.as_str().unwrap_or_default()
                ));
            }
        },
    };
    let Some(o) = ordering else {
        return Err(format!("cannot compare {left:?} and {right:?}"));
    };
    Ok(match c.op {
        ConditionOp::EqualTo => o == Ordering::Equal,
        ConditionOp::NotEqual => o != Ordering::Equal,
        ConditionOp::GreaterThan => o == Ordering::Greater,
        ConditionOp::GreaterThanOrEqual => o != Ordering::Less,
        ConditionOp::LessThan => o == Ordering::Less,
        ConditionOp::LessThanOrEqual => o != Ordering::Greater,
    })
}
