//! Records rendered as Jobs API 2.2 objects (`Job`, `Run`, `RunTask`), with Weir's additions
//! (`values`, `exit_code`, `module_digest`, `iterations`).

use crate::spec::{JobSettings, Task};
use crate::store::{
    JobRecord, LifeCycleState, ModuleVersion, RepairRecord, ResultState, RunRecord, RunSnapshot,
    TaskRunRecord, TriggerState,
};
use serde_json::{Map, Value, json};

/// The user every record is attributed to (single-tenant admin token).
pub const USER: &str = "admin";

/// Rendering options of runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunView {
    /// Also list task runs of earlier executions (before repairs).
    pub include_history: bool,
    /// Add `resolved_values` (parameters, env, condition operands as resolved).
    pub include_resolved_values: bool,
    /// Include `tasks` (lists leave them out unless asked).
    pub expand_tasks: bool,
}

/// A `Job` object.
pub fn job(j: &JobRecord, expand_tasks: bool) -> Value {
    let mut settings = serde_json::to_value(&j.settings).unwrap_or_default();
    if !expand_tasks && let Some(m) = settings.as_object_mut() {
        m.remove("tasks");
    }
    json!({
        "job_id": j.job_id,
        "creator_user_name": USER,
        "run_as_user_name": USER,
        "created_time": j.created_time,
        "settings": settings,
    })
}

/// Weir's `trigger_state` of a job object: the job's trigger kind, whether it is paused, and
/// where its durable state stands (`None` for a job without a trigger).
pub fn trigger_state(j: &JobRecord, state: Option<&TriggerState>) -> Option<Value> {
    let trigger = crate::trigger::of(&j.settings)?;
    let state = state.filter(|s| s.kind == trigger.kind);
    Some(json!({
        "kind": trigger.kind.as_str(),
        "paused": trigger.paused,
        "armed_time": state.map(|s| s.armed_time),
        "next_fire_time": state.and_then(|s| s.next_fire_time),
        "last_fire_time": state.and_then(|s| s.last_fire_time),
        "last_run_id": state.and_then(|s| s.last_run_id),
        "last_error": state.and_then(|s| s.last_error.as_deref()),
        "last_error_time": state.and_then(|s| s.last_error_time),
    }))
}

/// A module version object.
pub fn module(m: &ModuleVersion) -> Value {
    json!({
        "name": m.name,
        "version": m.version,
        "digest": m.digest,
        "size": m.size,
        "created_time": m.created_time,
    })
}

/// `state` (the classic RunState object).
fn state(life: LifeCycleState, result: Option<ResultState>, message: &str) -> Value {
    let mut s = json!({
        "life_cycle_state": life.as_str(),
        "state_message": message,
        "user_cancelled_or_timedout": matches!(result, Some(ResultState::Canceled | ResultState::Timedout)),
    });
    if let Some(r) = result {
        s["result_state"] = json!(r.as_str());
    }
    s
}

/// `status` (the newer RunStatus object).
fn status(life: LifeCycleState, result: Option<ResultState>, message: &str) -> Value {
    let st = match life {
        LifeCycleState::Queued => "QUEUED",
        LifeCycleState::Pending => "PENDING",
        LifeCycleState::Running => "RUNNING",
        LifeCycleState::Terminating => "TERMINATING",
        LifeCycleState::Blocked => "BLOCKED",
        LifeCycleState::WaitingForRetry => "WAITING",
        LifeCycleState::Terminated | LifeCycleState::Skipped | LifeCycleState::InternalError => {
            "TERMINATED"
        }
    };
    let mut s = json!({"state": st});
    if life == LifeCycleState::Queued {
        s["queue_details"] = json!({
            "code": "ACTIVE_RUNS_LIMIT_REACHED",
            "message": if message.is_empty() { "waiting for the job's active runs to finish (max_concurrent_runs)" } else { message },
        });
    }
    if life.is_final() {
        let (code, kind) = termination(life, result);
        s["termination_details"] = json!({
            "code": code,
            "type": kind,
            "message": message,
        });
    }
    s
}

/// The 2.2 `termination_details` `code` and `type` of a final state.
fn termination(life: LifeCycleState, result: Option<ResultState>) -> (&'static str, &'static str) {
    if life == LifeCycleState::InternalError {
        return ("INTERNAL_ERROR", "INTERNAL_ERROR");
    }
    match result {
        Some(ResultState::Success) => ("SUCCESS", "SUCCESS"),
        Some(ResultState::SuccessWithFailures) => ("SUCCESS_WITH_FAILURES", "SUCCESS"),
        Some(ResultState::Failed) => ("RUN_EXECUTION_ERROR", "CLIENT_ERROR"),
        // Databricks reports a run stopped for exceeding its duration as CANCELED.
        Some(ResultState::Timedout) => ("CANCELED", "CLIENT_ERROR"),
        Some(ResultState::Canceled) => ("USER_CANCELED", "SUCCESS"),
        Some(ResultState::MaximumConcurrentRunsReached) => {
            ("MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR")
        }
        Some(ResultState::Excluded) => ("SKIPPED", "SUCCESS"),
        Some(ResultState::UpstreamFailed | ResultState::UpstreamCanceled) => {
            ("SKIPPED", "CLIENT_ERROR")
        }
        None if life == LifeCycleState::Skipped => ("SKIPPED", "SUCCESS"),
        None => ("INTERNAL_ERROR", "INTERNAL_ERROR"),
    }
}

fn durations(created: Option<i64>, start: Option<i64>, end: Option<i64>) -> Map<String, Value> {
    let mut m = Map::new();
    let run_duration = match (start, end) {
        (Some(s), Some(e)) => e - s,
        _ => 0,
    };
    m.insert("start_time".into(), json!(start.unwrap_or(0)));
    m.insert("end_time".into(), json!(end.unwrap_or(0)));
    m.insert("setup_duration".into(), json!(0));
    m.insert("execution_duration".into(), json!(run_duration));
    m.insert("cleanup_duration".into(), json!(0));
    m.insert("run_duration".into(), json!(run_duration));
    let queue = match (created, start) {
        (Some(c), Some(s)) => (s - c).max(0),
        _ => 0,
    };
    m.insert("queue_duration".into(), json!(queue));
    m
}

/// A `RunTask` object for one task run (one attempt).
pub fn task_run(
    row: &TaskRunRecord,
    task: Option<&Task>,
    view: RunView,
    iterations: &[&TaskRunRecord],
) -> Value {
    let mut o = Map::new();
    o.insert("run_id".into(), json!(row.task_run_id));
    o.insert("job_run_id".into(), json!(row.run_id));
    o.insert("task_key".into(), json!(row.task_key));
    o.insert("attempt_number".into(), json!(row.attempt_number));
    o.insert(
        "state".into(),
        state(row.life_cycle_state, row.result_state, &row.state_message),
    );
    o.insert(
        "status".into(),
        status(row.life_cycle_state, row.result_state, &row.state_message),
    );
    o.extend(durations(row.ready_time, row.start_time, row.end_time));
    if let Some(task) = task {
        let spec = serde_json::to_value(task).unwrap_or_default();
        for key in [
            "description",
            "depends_on",
            "wasm_task",
            "run_job_task",
            "max_retries",
            "min_retry_interval_millis",
            "retry_on_timeout",
            "timeout_seconds",
        ] {
            if let Some(v) = spec.get(key) {
                o.insert(key.into(), v.clone());
            }
        }
        if !task.depends_on.is_empty() {
            o.insert("run_if".into(), json!(task.run_if.as_str()));
        }
        if let Some(c) = spec.get("condition_task") {
            let mut c = c.clone();
            if let Some(outcome) = &row.outcome {
                c["outcome"] = json!(outcome);
            }
            o.insert("condition_task".into(), c);
        }
        if let Some(f) = spec.get("for_each_task") {
            let mut f = f.clone();
            f["stats"] = for_each_stats(row, iterations);
            o.insert("for_each_task".into(), f);
        }
    }
    if let Some(it) = row.iteration {
        o.insert("parent_run_id".into(), json!(it.parent_task_run_id));
        o.insert("iteration_index".into(), json!(it.index));
    }
    if let Some(d) = &row.module_digest {
        o.insert("module_digest".into(), json!(d));
    }
    if let Some(code) = row.exit_code {
        o.insert("exit_code".into(), json!(code));
    }
    if let Some(child) = row.child_run_id {
        o.insert("run_job_output".into(), json!({"run_id": child}));
    }
    o.insert("values".into(), json!(row.values));
    if view.include_resolved_values
        && let Some(r) = &row.resolved
    {
        let kind = match task {
            Some(t) if t.condition_task.is_some() => "condition_task",
            Some(t) if t.run_job_task.is_some() => "run_job_task",
            Some(t) if t.for_each_task.is_some() => "for_each_task",
            _ => "wasm_task",
        };
        o.insert("resolved_values".into(), json!({ kind: r }));
    }
    if !iterations.is_empty() {
        let inner = task.and_then(|t| t.for_each_task.as_ref()).map(|f| &f.task);
        let list: Vec<Value> = iterations
            .iter()
            .map(|r| task_run(r, inner, view, &[]))
            .collect();
        o.insert("iterations".into(), json!(list));
    }
    Value::Object(o)
}

fn for_each_stats(row: &TaskRunRecord, iterations: &[&TaskRunRecord]) -> Value {
    let total = row
        .resolved
        .as_ref()
        .and_then(|r| r.get("inputs"))
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    // The latest attempt of each iteration index.
    let mut latest: std::collections::BTreeMap<u32, &TaskRunRecord> = Default::default();
    for r in iterations {
        if let Some(it) = r.iteration {
            let e = latest.entry(it.index).or_insert(r);
            if r.attempt_number >= e.attempt_number {
                *e = r;
            }
        }
    }
    let count = |f: &dyn Fn(&TaskRunRecord) -> bool| latest.values().filter(|r| f(r)).count();
    json!({"task_run_stats": {
        "total_iterations": total,
        "scheduled_iterations": latest.len(),
        "active_iterations": count(&|r| !r.is_final()),
        "completed_iterations": count(&|r| r.is_final()),
        "succeeded_iterations": count(&|r| r.result_state == Some(ResultState::Success)),
        "failed_iterations": count(&|r| r.is_final() && r.result_state != Some(ResultState::Success)),
    }})
}

/// The task runs shown for a run: per task (in spec order) the attempts of its latest
/// execution, or every execution with `include_history`.
pub fn visible_tasks(snap: &RunSnapshot, include_history: bool) -> Vec<&TaskRunRecord> {
    let settings = &snap.run.plan.settings;
    let mut out = Vec::new();
    for t in &settings.tasks {
        let rows: Vec<&TaskRunRecord> = snap
            .tasks
            .iter()
            .filter(|r| r.iteration.is_none() && r.task_key == t.task_key)
            .collect();
        let latest = rows.iter().map(|r| r.repair_id).max();
        let mut rows: Vec<&TaskRunRecord> = rows
            .into_iter()
            .filter(|r| include_history || Some(r.repair_id) == latest)
            .collect();
        rows.sort_by_key(|r| (r.repair_id, r.attempt_number));
        out.extend(rows);
    }
    out
}

fn iterations_of(snap: &RunSnapshot, parent: i64) -> Vec<&TaskRunRecord> {
    snap.tasks
        .iter()
        .filter(|r| r.iteration.is_some_and(|i| i.parent_task_run_id == parent))
        .collect()
}

fn run_type(run: &RunRecord) -> &'static str {
    crate::store::RunKind::of(run).as_str()
}

fn repair_history(run: &RunRecord, snap: Option<&RunSnapshot>) -> Value {
    if run.repair_history.is_empty() {
        return json!([]);
    }
    let original_ids: Vec<i64> = snap
        .map(|s| {
            s.tasks
                .iter()
                .filter(|r| r.repair_id == 0 && r.iteration.is_none())
                .map(|r| r.task_run_id)
                .collect()
        })
        .unwrap_or_default();
    let first_end = run.repair_history.first().map(|r| r.start_time);
    let mut list = vec![json!({
        "type": "ORIGINAL",
        "start_time": run.start_time.unwrap_or(run.created_time),
        "end_time": first_end,
        "task_run_ids": original_ids,
    })];
    list.extend(run.repair_history.iter().map(|r: &RepairRecord| {
        let life = if r.end_time.is_some() {
            LifeCycleState::Terminated
        } else {
            LifeCycleState::Running
        };
        json!({
            "type": "REPAIR",
            "id": r.repair_id,
            "start_time": r.start_time,
            "end_time": r.end_time.unwrap_or(0),
            "task_keys": r.task_keys,
            "task_run_ids": r.task_run_ids,
            "state": state(life, r.result_state, ""),
        })
    }));
    json!(list)
}

/// A `Run` object.
pub fn run(snap: &RunSnapshot, view: RunView) -> Value {
    let r = &snap.run;
    let settings: &JobSettings = &r.plan.settings;
    let mut o = Map::new();
    if let Some(j) = r.job_id {
        o.insert("job_id".into(), json!(j));
    }
    o.insert("run_id".into(), json!(r.run_id));
    o.insert("number_in_job".into(), json!(r.run_id));
    o.insert("original_attempt_run_id".into(), json!(r.run_id));
    o.insert("attempt_number".into(), json!(0));
    o.insert("run_name".into(), json!(r.run_name));
    o.insert("creator_user_name".into(), json!(USER));
    o.insert("run_type".into(), json!(run_type(r)));
    o.insert(
        "state".into(),
        state(r.life_cycle_state, r.result_state, &r.state_message),
    );
    o.insert(
        "status".into(),
        status(r.life_cycle_state, r.result_state, &r.state_message),
    );
    o.extend(durations(Some(r.created_time), r.start_time, r.end_time));
    if r.start_time.is_none() {
        o.insert("queue_duration".into(), json!(0));
    }
    o.insert("created_time".into(), json!(r.created_time));
    o.insert("trigger".into(), json!(r.trigger.as_str()));
    if !r.trigger_info.is_null() {
        o.insert("trigger_info".into(), r.trigger_info.clone());
    }
    let params: Vec<Value> = settings
        .parameters
        .iter()
        .map(|p| json!({"name": p.name, "default": p.default, "value": r.job_parameters.get(&p.name)}))
        .collect();
    o.insert("job_parameters".into(), json!(params));
    if !r.overriding_parameters.is_empty() {
        o.insert(
            "overriding_parameters".into(),
            json!({"job_parameters": r.overriding_parameters}),
        );
    }
    if let Some(p) = r.parent {
        o.insert("parent_run_id".into(), json!(p.run_id));
        o.insert("parent_task_run_id".into(), json!(p.task_run_id));
    }
    if r.cancel_requested && !r.life_cycle_state.is_final() {
        o.insert("cancel_requested".into(), json!(true));
    }
    o.insert("repair_history".into(), repair_history(r, Some(snap)));
    if view.expand_tasks {
        let tasks: Vec<Value> = visible_tasks(snap, view.include_history)
            .into_iter()
            .map(|row| {
                let iterations = iterations_of(snap, row.task_run_id);
                task_run(row, settings.task(&row.task_key), view, &iterations)
            })
            .collect();
        o.insert("tasks".into(), json!(tasks));
    }
    Value::Object(o)
}

/// A task run looked up by its own id (`runs/get` with a task run id): the `RunTask` object.
pub fn task_run_alone(snap: &RunSnapshot, row: &TaskRunRecord, view: RunView) -> Value {
    let settings = &snap.run.plan.settings;
    let task = match row.iteration {
        None => settings.task(&row.task_key),
        Some(it) => snap
            .tasks
            .iter()
            .find(|r| r.task_run_id == it.parent_task_run_id)
            .and_then(|p| settings.task(&p.task_key))
            .and_then(|t| t.for_each_task.as_ref())
            .map(|f| &f.task),
    };
    let iterations = iterations_of(snap, row.task_run_id);
    task_run(row, task, view, &iterations)
}

/// A time in milliseconds as ISO 8601 UTC, for messages.
pub fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| ms.to_string())
}
