//! Tests of the run state machine, driven without store or executor.

use super::*;
use crate::spec::JobSettings;
use crate::store::{RepairRecord, RunPlan, TriggerType};
use serde_json::json;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn settings(tasks: Value) -> JobSettings {
    serde_json::from_value(json!({"name": "job", "tasks": tasks})).expect("valid settings")
}

fn wasm(key: &str, deps: &[&str]) -> Value {
    json!({
        "task_key": key,
        "depends_on": deps.iter().map(|d| json!({"task_key": d})).collect::<Vec<_>>(),
        "wasm_task": {"module": "m"},
    })
}

fn blocked(id: RunId, key: &str, repair_id: i64) -> TaskRunRecord {
    TaskRunRecord::blocked(id, 1, key, repair_id, None)
}

fn snapshot(settings: JobSettings) -> RunSnapshot {
    let mut modules = BTreeMap::new();
    for t in &settings.tasks {
        modules.insert(t.task_key.clone(), DIGEST.to_string());
        if let Some(fe) = &t.for_each_task {
            modules.insert(
                format!("{}/{}", t.task_key, fe.task.task_key),
                DIGEST.to_string(),
            );
        }
    }
    let tasks = settings
        .tasks
        .iter()
        .enumerate()
        .map(|(i, t)| blocked(100 + i as RunId, &t.task_key, 0))
        .collect();
    let run = RunRecord {
        run_id: 1,
        job_id: Some(7),
        run_name: settings.name.clone(),
        life_cycle_state: LifeCycleState::Pending,
        result_state: None,
        state_message: String::new(),
        trigger: TriggerType::OneTime,
        trigger_info: Value::Null,
        job_parameters: settings
            .parameters
            .iter()
            .map(|p| (p.name.clone(), p.default.clone()))
            .collect(),
        overriding_parameters: BTreeMap::new(),
        plan: RunPlan { settings, modules },
        created_time: 1_000,
        start_time: None,
        end_time: None,
        repair_history: vec![],
        cancel_requested: false,
        parent: None,
        idempotency_token: None,
    };
    RunSnapshot { run, tasks }
}

/// A run under test with a clock and an id pool.
struct H {
    s: RunState,
    now: Millis,
}

impl H {
    fn new(snap: RunSnapshot) -> H {
        let mut s = RunState::new(snap);
        s.add_ids(1000, 500);
        H { s, now: 10_000 }
    }

    fn advance(&mut self) -> Vec<Effect> {
        self.s.advance(self.now)
    }

    /// Task keys of the wasm attempts an effect list starts, with their argv.
    fn started(&self, fx: &[Effect]) -> Vec<String> {
        fx.iter()
            .filter_map(|e| match e {
                Effect::StartWasm(inv) => {
                    let id: RunId = inv.attempt_id.parse().unwrap();
                    Some(self.s.row(id).unwrap().task_key.clone())
                }
                _ => None,
            })
            .collect()
    }

    fn executing_id(&self, key: &str) -> RunId {
        self.s
            .rows
            .values()
            .find(|r| r.task_key == key && r.life_cycle_state == LifeCycleState::Running)
            .unwrap_or_else(|| panic!("{key} is not running"))
            .task_run_id
    }

    fn finish(&mut self, key: &str, status: ExitStatus, values: Value) {
        let id = self.executing_id(key);
        let outcome = Outcome {
            values: serde_json::from_value(values).unwrap(),
            ..outcome(status)
        };
        self.s.on_outcome(id, outcome, self.now);
    }

    fn ok(&mut self, key: &str) -> Vec<Effect> {
        self.finish(key, ExitStatus::Success, json!({}));
        self.advance()
    }

    fn fail(&mut self, key: &str) -> Vec<Effect> {
        self.finish(
            key,
            ExitStatus::Failed {
                message: "exited with code 1".into(),
                exit_code: Some(1),
            },
            json!({}),
        );
        self.advance()
    }

    fn ok_then(&mut self, key: &str) -> Vec<String> {
        let fx = self.ok(key);
        self.started(&fx)
    }

    fn fail_then(&mut self, key: &str) -> Vec<String> {
        let fx = self.fail(key);
        self.started(&fx)
    }

    fn advance_then(&mut self) -> Vec<String> {
        let fx = self.advance();
        self.started(&fx)
    }

    fn result(&self, key: &str) -> Option<ResultState> {
        let i = self.s.graph.index_of(key).unwrap();
        self.s.current_result(i)
    }

    fn attempts(&self, key: &str) -> Vec<&TaskRunRecord> {
        self.s
            .rows
            .values()
            .filter(|r| r.task_key == key && r.iteration.is_none())
            .collect()
    }
}

/// An attempt's outcome with no values or logs.
fn outcome(status: ExitStatus) -> Outcome {
    Outcome {
        status,
        values: BTreeMap::new(),
        logs: TaskLogs::default(),
        duration: Duration::ZERO,
    }
}

fn failed() -> ExitStatus {
    ExitStatus::Failed {
        message: "exited with code 1".into(),
        exit_code: Some(1),
    }
}

#[test]
fn a_chain_runs_in_order_and_succeeds() {
    let mut h = H::new(snapshot(settings(json!([
        wasm("a", &[]),
        wasm("b", &["a"]),
        wasm("c", &["b"])
    ]))));
    let fx = h.advance();
    assert_eq!(h.started(&fx), ["a"]);
    assert_eq!(h.s.run().life_cycle_state, LifeCycleState::Running);
    assert_eq!(h.ok_then("a"), ["b"]);
    assert_eq!(h.ok_then("b"), ["c"]);
    assert!(h.ok("c").is_empty());
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
    assert!(h.s.is_final());
    let write = h.s.take_write("n1").unwrap();
    assert!(write.release);
    assert_eq!(
        write.progress.unwrap().life_cycle_state,
        LifeCycleState::Terminated
    );
}

#[test]
fn independent_tasks_start_together() {
    let tasks: Vec<Value> = (0..50).map(|i| wasm(&format!("t{i}"), &[])).collect();
    let mut h = H::new(snapshot(settings(json!(tasks))));
    assert_eq!(h.advance().len(), 50);
}

#[test]
fn a_failure_skips_dependents_and_fails_the_run() {
    let mut h = H::new(snapshot(settings(json!([
        wasm("a", &[]),
        wasm("b", &["a"]),
        wasm("c", &["b"])
    ]))));
    h.advance();
    assert!(h.fail_then("a").is_empty());
    assert_eq!(h.result("b"), Some(ResultState::UpstreamFailed));
    assert_eq!(h.result("c"), Some(ResultState::UpstreamFailed));
    assert_eq!(h.s.run().result_state, Some(ResultState::Failed));
    assert!(
        h.s.run().state_message.contains("`a` (exited with code 1)"),
        "{}",
        h.s.run().state_message
    );
}

#[test]
fn handled_failures_give_success_with_failures() {
    let mut cleanup = wasm("cleanup", &["load"]);
    cleanup["run_if"] = json!("ALL_DONE");
    let mut alert = wasm("alert", &["load"]);
    alert["run_if"] = json!("AT_LEAST_ONE_FAILED");
    let mut h = H::new(snapshot(settings(json!([
        wasm("load", &[]),
        cleanup,
        alert
    ]))));
    h.advance();
    let fx = h.fail("load");
    let mut started = h.started(&fx);
    started.sort();
    assert_eq!(started, ["alert", "cleanup"]);
    h.ok("alert");
    h.ok("cleanup");
    assert_eq!(
        h.s.run().result_state,
        Some(ResultState::SuccessWithFailures)
    );
}

#[test]
fn failure_handlers_are_excluded_when_nothing_fails() {
    let mut alert = wasm("alert", &["a"]);
    alert["run_if"] = json!("AT_LEAST_ONE_FAILED");
    let mut all_failed = wasm("all_failed", &["a"]);
    all_failed["run_if"] = json!("ALL_FAILED");
    let mut h = H::new(snapshot(settings(json!([
        wasm("a", &[]),
        alert,
        all_failed
    ]))));
    h.advance();
    h.ok("a");
    assert_eq!(h.result("alert"), Some(ResultState::Excluded));
    assert_eq!(h.result("all_failed"), Some(ResultState::Excluded));
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
}

#[test]
fn retries_wait_their_interval_and_count_attempts() {
    let mut a = wasm("a", &[]);
    a["max_retries"] = json!(2);
    a["min_retry_interval_millis"] = json!(500);
    let mut h = H::new(snapshot(settings(json!([a, wasm("b", &["a"])]))));
    h.advance();
    assert!(h.fail("a").is_empty(), "the retry waits for its interval");
    assert_eq!(h.attempts("a").len(), 2);
    assert_eq!(
        h.attempts("a")[1].life_cycle_state,
        LifeCycleState::WaitingForRetry
    );
    assert_eq!(h.s.next_wake(), Some(h.now + 500));
    h.now += 500;
    assert_eq!(h.advance_then(), ["a"]);
    h.fail("a");
    h.now += 500;
    h.advance();
    assert_eq!(h.ok_then("a"), ["b"]);
    let attempts: Vec<u32> = h.attempts("a").iter().map(|r| r.attempt_number).collect();
    assert_eq!(attempts, [0, 1, 2]);
    h.ok("b");
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
}

#[test]
fn retries_stop_at_max_retries() {
    let mut a = wasm("a", &[]);
    a["max_retries"] = json!(1);
    let mut h = H::new(snapshot(settings(json!([a]))));
    h.advance();
    h.fail("a");
    h.fail("a");
    assert_eq!(h.attempts("a").len(), 2);
    assert_eq!(h.s.run().result_state, Some(ResultState::Failed));
}

#[test]
fn unlimited_retries_keep_going() {
    let mut a = wasm("a", &[]);
    a["max_retries"] = json!(-1);
    let mut h = H::new(snapshot(settings(json!([a]))));
    h.advance();
    for _ in 0..6 {
        h.fail("a");
    }
    assert_eq!(h.attempts("a").len(), 7);
    assert!(!h.s.is_final());
}

#[test]
fn timeouts_retry_only_with_retry_on_timeout() {
    for (retry_on_timeout, attempts) in [(false, 1), (true, 2)] {
        let mut a = wasm("a", &[]);
        a["max_retries"] = json!(1);
        a["timeout_seconds"] = json!(1);
        a["retry_on_timeout"] = json!(retry_on_timeout);
        let mut h = H::new(snapshot(settings(json!([a]))));
        h.advance();
        h.finish("a", ExitStatus::TimedOut, json!({}));
        h.advance();
        assert_eq!(h.attempts("a").len(), attempts);
        assert_eq!(h.attempts("a")[0].result_state, Some(ResultState::Timedout));
    }
}

#[test]
fn task_values_flow_into_downstream_references_and_context() {
    let mut b = wasm("b", &["a"]);
    b["wasm_task"]["parameters"] = json!([
        "--rows",
        "{{tasks.a.values.rows}}",
        "{{job.parameters.region}}"
    ]);
    b["wasm_task"]["env"] = json!({"WHO": "{{tasks.a.result_state}}"});
    let mut s = settings(json!([wasm("a", &[]), b]));
    s.parameters = vec![crate::spec::JobParameter {
        name: "region".into(),
        default: "eu".into(),
    }];
    let mut h = H::new(snapshot(s));
    h.advance();
    h.finish("a", ExitStatus::Success, json!({"rows": 42}));
    let fx = h.advance();
    let Effect::StartWasm(inv) = &fx[0] else {
        panic!("expected a wasm start")
    };
    assert_eq!(inv.args, ["b", "--rows", "42", "eu"]);
    assert!(inv.env.contains(&("WHO".into(), "SUCCESS".into())));
    assert!(inv.env.contains(&("WEIR_PARAM_REGION".into(), "eu".into())));
    assert_eq!(inv.context["tasks"]["a"]["values"]["rows"], 42);
    assert_eq!(inv.digest, DIGEST);
}

#[test]
fn condition_outcomes_choose_a_branch() {
    let tasks = json!([
        wasm("a", &[]),
        {"task_key": "check", "depends_on": [{"task_key": "a"}],
         "condition_task": {"op": "GREATER_THAN", "left": "{{tasks.a.values.rows}}", "right": "10"}},
        {"task_key": "big", "depends_on": [{"task_key": "check", "outcome": "true"}], "wasm_task": {"module": "m"}},
        {"task_key": "small", "depends_on": [{"task_key": "check", "outcome": "false"}], "wasm_task": {"module": "m"}},
        {"task_key": "join", "depends_on": [{"task_key": "big"}, {"task_key": "small"}],
         "run_if": "NONE_FAILED", "wasm_task": {"module": "m"}},
    ]);
    let mut h = H::new(snapshot(settings(tasks)));
    h.advance();
    h.finish("a", ExitStatus::Success, json!({"rows": 42}));
    let fx = h.advance();
    assert_eq!(h.started(&fx), ["big"]);
    assert_eq!(h.result("check"), Some(ResultState::Success));
    assert_eq!(h.result("small"), Some(ResultState::Excluded));
    assert_eq!(h.ok_then("big"), ["join"]);
    h.ok("join");
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
}

#[test]
fn conditions_compare_numbers_and_strings() {
    let c = |op: &str| ConditionTask {
        op: serde_json::from_value(json!(op)).unwrap(),
        left: String::new(),
        right: String::new(),
    };
    assert_eq!(evaluate_condition(&c("EQUAL_TO"), "10", "10.0"), Ok(true));
    assert_eq!(evaluate_condition(&c("LESS_THAN"), "9", "10"), Ok(true));
    assert_eq!(evaluate_condition(&c("NOT_EQUAL"), "eu", "us"), Ok(true));
    assert!(
        evaluate_condition(&c("GREATER_THAN"), "eu", "1")
            .unwrap_err()
            .contains("GREATER_THAN")
    );
}

#[test]
fn for_each_runs_iterations_with_bounded_concurrency() {
    let tasks = json!([{
        "task_key": "loop",
        "for_each_task": {"inputs": "[\"x\", \"y\", \"z\"]", "concurrency": 2,
                          "task": {"task_key": "item", "wasm_task": {"module": "m", "parameters": ["{{input}}"]}}},
    }]);
    let mut h = H::new(snapshot(settings(tasks)));
    let fx = h.advance();
    let args: Vec<String> = fx
        .iter()
        .map(|e| match e {
            Effect::StartWasm(inv) => inv.args[1].clone(),
            _ => panic!("unexpected effect"),
        })
        .collect();
    assert_eq!(args, ["x", "y"]);
    let first = h.executing_id("item");
    h.s.on_outcome(first, outcome(ExitStatus::Success), h.now);
    let fx = h.advance();
    assert_eq!(fx.len(), 1, "the third iteration starts when a slot frees");
    while let Some(r) =
        h.s.rows
            .values()
            .find(|r| r.iteration.is_some() && r.life_cycle_state == LifeCycleState::Running)
    {
        let id = r.task_run_id;
        h.s.on_outcome(id, outcome(ExitStatus::Success), h.now);
        h.advance();
    }
    assert_eq!(h.result("loop"), Some(ResultState::Success));
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
}

#[test]
fn for_each_fails_when_an_iteration_fails() {
    let tasks = json!([{
        "task_key": "loop",
        "for_each_task": {"inputs": "[1, 2]", "concurrency": 5, "task": {"task_key": "item", "wasm_task": {"module": "m"}}},
    }]);
    let mut h = H::new(snapshot(settings(tasks)));
    h.advance();
    let ids: Vec<RunId> =
        h.s.rows
            .values()
            .filter(|r| r.iteration.is_some())
            .map(|r| r.task_run_id)
            .collect();
    h.s.on_outcome(ids[0], outcome(failed()), h.now);
    h.s.on_outcome(ids[1], outcome(ExitStatus::Success), h.now);
    h.advance();
    assert_eq!(h.result("loop"), Some(ResultState::Failed));
    let loop_row = h.attempts("loop")[0];
    assert!(
        loop_row
            .state_message
            .starts_with("1 of 2 iterations failed"),
        "{}",
        loop_row.state_message
    );
}

#[test]
fn for_each_refuses_inputs_that_are_not_an_array() {
    let tasks = json!([{
        "task_key": "loop",
        "for_each_task": {"inputs": "{\"a\": 1}", "task": {"task_key": "item", "wasm_task": {"module": "m"}}},
    }]);
    let mut h = H::new(snapshot(settings(tasks)));
    h.advance();
    assert_eq!(h.result("loop"), Some(ResultState::Failed));
    assert!(h.attempts("loop")[0].state_message.contains("JSON array"));
}

#[test]
fn cancel_stops_running_attempts_and_skips_the_rest() {
    let mut h = H::new(snapshot(settings(json!([
        wasm("a", &[]),
        wasm("b", &["a"])
    ]))));
    h.advance();
    h.s.request_stop(StopReason::Cancel);
    let fx = h.advance();
    let a = h.executing_id("a");
    assert!(matches!(fx.as_slice(), [Effect::Stop(id)] if *id == a));
    assert_eq!(h.s.run().life_cycle_state, LifeCycleState::Terminating);
    h.finish("a", ExitStatus::Canceled, json!({}));
    h.advance();
    assert_eq!(h.result("a"), Some(ResultState::Canceled));
    assert_eq!(h.result("b"), Some(ResultState::UpstreamCanceled));
    assert_eq!(h.s.run().result_state, Some(ResultState::Canceled));
}

#[test]
fn the_job_timeout_stops_the_run_as_timed_out() {
    let mut s = settings(json!([wasm("a", &[]), wasm("b", &["a"])]));
    s.timeout_seconds = 2;
    let mut h = H::new(snapshot(s));
    h.advance();
    assert_eq!(h.s.next_wake(), Some(h.now + 2000));
    h.now += 2000;
    assert!(matches!(h.advance().as_slice(), [Effect::Stop(_)]));
    h.finish("a", ExitStatus::Canceled, json!({}));
    h.advance();
    assert_eq!(h.result("a"), Some(ResultState::Timedout));
    assert_eq!(h.s.run().result_state, Some(ResultState::Timedout));
}

#[test]
fn an_interrupted_attempt_is_retried_and_counts_as_an_attempt() {
    let mut a = wasm("a", &[]);
    a["max_retries"] = json!(1);
    let mut snap = snapshot(settings(json!([a])));
    snap.run.life_cycle_state = LifeCycleState::Running;
    snap.run.start_time = Some(5_000);
    snap.tasks[0].life_cycle_state = LifeCycleState::Running;
    snap.tasks[0].start_time = Some(5_000);
    let mut h = H::new(snap);
    let fx = h.advance();
    assert_eq!(h.started(&fx), ["a"]);
    let attempts = h.attempts("a");
    assert_eq!(attempts[0].result_state, Some(ResultState::Failed));
    assert!(attempts[0].state_message.contains("interrupted"));
    assert_eq!(attempts[1].attempt_number, 1);
}

#[test]
fn an_interrupted_attempt_without_retries_fails_the_run() {
    let mut snap = snapshot(settings(json!([wasm("a", &[])])));
    snap.run.life_cycle_state = LifeCycleState::Running;
    snap.tasks[0].life_cycle_state = LifeCycleState::Running;
    let mut h = H::new(snap);
    assert!(h.advance().is_empty());
    assert_eq!(h.s.run().result_state, Some(ResultState::Failed));
    assert!(h.s.run().state_message.contains("interrupted"));
}

#[test]
fn repair_reruns_only_the_chosen_tasks_and_keeps_upstream_values() {
    let mut b = wasm("b", &["a"]);
    b["wasm_task"]["parameters"] = json!(["{{tasks.a.values.rows}}", "{{job.repair_count}}"]);
    let mut snap = snapshot(settings(json!([wasm("a", &[]), b])));
    snap.run.life_cycle_state = LifeCycleState::Pending;
    snap.run.start_time = Some(5_000);
    snap.run.repair_history = vec![RepairRecord {
        repair_id: 1,
        start_time: 9_000,
        end_time: None,
        task_keys: vec!["b".into()],
        task_run_ids: vec![200],
        result_state: None,
    }];
    let a = &mut snap.tasks[0];
    a.life_cycle_state = LifeCycleState::Terminated;
    a.result_state = Some(ResultState::Success);
    a.values = [("rows".to_string(), json!(7))].into();
    let b0 = &mut snap.tasks[1];
    b0.life_cycle_state = LifeCycleState::Terminated;
    b0.result_state = Some(ResultState::Failed);
    snap.tasks.push(blocked(200, "b", 1));
    let mut h = H::new(snap);
    let fx = h.advance();
    let Effect::StartWasm(inv) = &fx[0] else {
        panic!("expected a wasm start")
    };
    assert_eq!(inv.args, ["b", "7", "1"]);
    assert_eq!(inv.attempt_id, "200");
    h.ok("b");
    assert_eq!(h.s.run().result_state, Some(ResultState::Success));
    assert_eq!(
        h.s.run().repair_history[0].result_state,
        Some(ResultState::Success)
    );
}

#[test]
fn run_job_tasks_start_a_child_and_take_its_result() {
    let tasks = json!([{"task_key": "child", "run_job_task": {"job_name": "other", "job_parameters": {"x": "{{job.run_id}}"}}}]);
    let mut h = H::new(snapshot(settings(tasks)));
    let fx = h.advance();
    let Effect::StartChild {
        task_run_id,
        job,
        parameters,
    } = &fx[0]
    else {
        panic!("expected a child start")
    };
    assert_eq!(job, &JobRef::Name("other".into()));
    assert_eq!(parameters.get("x").map(String::as_str), Some("1"));
    let id = *task_run_id;
    h.s.on_child_started(id, 55);
    let child = ChildResult {
        run_id: 55,
        result_state: Some(ResultState::Failed),
        state_message: "boom".into(),
    };
    h.s.on_child_finished(id, child, h.now);
    h.advance();
    assert_eq!(h.result("child"), Some(ResultState::Failed));
    assert!(
        h.attempts("child")[0]
            .state_message
            .contains("child run 55 ended FAILED: boom")
    );
}

#[test]
fn an_empty_id_pool_pauses_retries_until_refilled() {
    let mut a = wasm("a", &[]);
    a["max_retries"] = json!(1);
    let mut s = RunState::new(snapshot(settings(json!([a]))));
    s.advance(0);
    let id = s.rows.keys().copied().next().unwrap();
    s.on_outcome(id, outcome(failed()), 0);
    s.advance(0);
    assert!(s.needs_ids());
    assert!(!s.is_final());
    s.add_ids(500, 10);
    let fx = s.advance(0);
    assert_eq!(fx.len(), 1);
}
