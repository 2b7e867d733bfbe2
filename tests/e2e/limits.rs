//! Retries, task and job timeouts, the memory limit, output caps and the sandbox.

use crate::support::*;

fn one_task(name: &str, extra: &str, params: &str) -> String {
    format!(
        r#"
name: {name}
tasks:
  - task_key: t
    wasm_task: {{module: {m}, parameters: {params}}}
{extra}
"#,
        m = module("testtask").display()
    )
}

#[test]
fn flaky_tasks_succeed_after_retries_and_every_attempt_is_kept() {
    let w = Weir::start();
    w.deploy(
        "flaky.yaml",
        &one_task(
            "flaky",
            "    max_retries: 3\n    min_retry_interval_millis: 100",
            "[flaky, \"2\"]",
        ),
    );
    let (ok, run) = w.run_wait("flaky", &[]);
    assert!(ok, "{run:#}");
    let tries = attempts(&run, "t");
    let numbers: Vec<i64> = tries
        .iter()
        .map(|t| t["attempt_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [0, 1, 2]);
    let results: Vec<&str> = tries
        .iter()
        .map(|t| t["state"]["result_state"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["FAILED", "FAILED", "SUCCESS"]);
    let gap = tries[1]["start_time"].as_i64().unwrap() - tries[0]["end_time"].as_i64().unwrap();
    assert!(
        gap >= 100,
        "retries wait min_retry_interval_millis (gap {gap} ms)"
    );
}

#[test]
fn retries_run_out() {
    let w = Weir::start();
    w.deploy(
        "out.yaml",
        &one_task("out", "    max_retries: 1", "[flaky, \"5\"]"),
    );
    let (ok, run) = w.run_wait("out", &[]);
    assert!(!ok);
    assert_eq!(attempts(&run, "t").len(), 2);
    assert_eq!(run_result(&run), "FAILED");
}

#[test]
fn a_task_timeout_stops_a_busy_task_and_retries_only_with_retry_on_timeout() {
    let w = Weir::start();
    w.deploy(
        "to.yaml",
        &one_task("to", "    timeout_seconds: 1\n    max_retries: 1", "[spin]"),
    );
    let (ok, run) = w.run_wait("to", &[]);
    assert!(!ok);
    assert_eq!(
        attempts(&run, "t").len(),
        1,
        "no retry without retry_on_timeout"
    );
    assert_eq!(result(&run, "t"), "TIMEDOUT");
    assert_eq!(run_result(&run), "FAILED");

    w.deploy(
        "to2.yaml",
        &one_task(
            "to2",
            "    timeout_seconds: 1\n    max_retries: 1\n    retry_on_timeout: true",
            "[sleep, \"600000\"]",
        ),
    );
    let (_, run) = w.run_wait("to2", &[]);
    let tries = attempts(&run, "t");
    assert_eq!(
        tries.len(),
        2,
        "a sleeping task times out too, and is retried"
    );
    assert!(
        tries
            .iter()
            .all(|t| t["state"]["result_state"] == "TIMEDOUT")
    );
}

#[test]
fn a_job_timeout_stops_the_whole_run() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "jt.yaml",
        &format!(
            r#"
name: jt
timeout_seconds: 1
tasks:
  - task_key: slow
    wasm_task: {{module: {m}, parameters: [spin]}}
  - task_key: after
    depends_on: [{{task_key: slow}}]
    wasm_task: {{module: {m}, parameters: [ok]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("jt", &[]);
    assert!(!ok);
    assert_eq!(run_result(&run), "TIMEDOUT");
    assert_eq!(result(&run, "slow"), "TIMEDOUT");
    assert_ne!(result(&run, "after"), "SUCCESS");
}

#[test]
fn the_memory_limit_fails_the_task_saying_so() {
    let w = Weir::start();
    w.deploy(
        "mem.yaml",
        &one_task("mem", "", "[alloc, \"64\"]")
            .replace("parameters:", "memory_limit_mb: 16, parameters:"),
    );
    let (ok, run) = w.run_wait("mem", &[]);
    assert!(!ok);
    assert_eq!(result(&run, "t"), "FAILED");
    let msg = task(&run, "t")["state"]["state_message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(msg.contains("memory limit"), "{msg}");
    // The same task fits with a larger limit.
    w.deploy(
        "mem2.yaml",
        &one_task("mem2", "", "[alloc, \"64\"]")
            .replace("parameters:", "memory_limit_mb: 256, parameters:"),
    );
    let (ok, _) = w.run_wait("mem2", &[]);
    assert!(ok);
}

#[test]
fn the_sandbox_hides_the_host() {
    let w = Weir::start();
    w.deploy(
        "sandbox.yaml",
        &one_task("sandbox", "", "[read, /etc/passwd]"),
    );
    let (ok, run) = w.run_wait("sandbox", &[]);
    assert!(!ok, "{run:#}");
    assert_eq!(result(&run, "t"), "FAILED");
    let id = task(&run, "t")["run_id"].as_i64().unwrap();
    let (_, out) = w.http(
        "GET",
        &format!("/api/2.2/jobs/runs/get-output?run_id={id}"),
        None,
        None,
    );
    assert!(
        !out["logs"].as_str().unwrap().contains("root:"),
        "no host file content leaks"
    );
}

#[test]
fn huge_output_is_capped_with_a_mark_and_the_task_still_succeeds() {
    let w = Weir::start();
    w.deploy("print.yaml", &one_task("print", "", "[print, \"3000000\"]"));
    let (ok, run) = w.run_wait("print", &[]);
    assert!(ok, "{run:#}");
    let id = task(&run, "t")["run_id"].as_i64().unwrap();
    let (_, out) = w.http(
        "GET",
        &format!("/api/2.2/jobs/runs/get-output?run_id={id}"),
        None,
        None,
    );
    assert_eq!(out["logs_truncated"], true);
    assert!(out["stdout"].as_str().unwrap().contains("truncated"));
    assert!(out["stdout"].as_str().unwrap().len() < 1_100_000);
}

#[test]
fn traps_and_infinite_loops_are_contained() {
    let w = Weir::start();
    let trap = wat_module(w.dir.path(), "trap");
    let lp = wat_module(w.dir.path(), "loop");
    w.deploy(
        "bad.yaml",
        &format!(
            r#"
name: contained
tasks:
  - task_key: trap
    wasm_task: {{module: {trap}}}
  - task_key: loop
    timeout_seconds: 1
    wasm_task: {{module: {lp}}}
"#,
            trap = trap.display(),
            lp = lp.display()
        ),
    );
    let (_, run) = w.run_wait("contained", &[]);
    assert_eq!(result(&run, "trap"), "FAILED");
    assert!(
        task(&run, "trap")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("trap")
    );
    assert_eq!(result(&run, "loop"), "TIMEDOUT");
    // The node is still healthy.
    let (status, _) = w.http("GET", "/healthz", None, Some(""));
    assert_eq!(status, 200);
}
