//! Cancel, repair, queueing and idempotency.

use crate::support::*;
use serde_json::json;
use std::time::Duration;

fn job_id(w: &Weir, name: &str) -> i64 {
    let (_, jobs) = w.cli_json(&["jobs", "list", "--name", name]);
    jobs["jobs"][0]["job_id"].as_i64().unwrap()
}

fn start(w: &Weir, name: &str) -> i64 {
    let (ok, started) = w.cli_json(&["jobs", "run", name]);
    assert!(ok, "{started}");
    started["run_id"].as_i64().unwrap()
}

#[test]
fn cancel_stops_running_instances_at_once() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "cancel.yaml",
        &format!(
            r#"
name: cancel
tasks:
  - task_key: busy
    wasm_task: {{module: {m}, parameters: [spin]}}
  - task_key: sleepy
    wasm_task: {{module: {m}, parameters: [sleep, "600000"]}}
  - task_key: after
    depends_on: [{{task_key: busy}}]
    wasm_task: {{module: {m}, parameters: [ok]}}
"#,
            m = m.display()
        ),
    );
    let run_id = start(&w, "cancel");
    w.wait_for_run(run_id, Duration::from_secs(30), |r| {
        r["tasks"].as_array().is_some_and(|t| {
            t.iter()
                .filter(|t| t["state"]["life_cycle_state"] == "RUNNING")
                .count()
                == 2
        })
    });
    let (ok, run) = w.cli_json(&["runs", "cancel", &run_id.to_string(), "--wait"]);
    assert!(ok, "{run}");
    assert_eq!(run_result(&run), "CANCELED");
    assert_eq!(result(&run, "busy"), "CANCELED");
    assert_eq!(result(&run, "sleepy"), "CANCELED");
    assert_eq!(result(&run, "after"), "UPSTREAM_CANCELED");
    let (_, again) = w.http(
        "POST",
        "/api/2.2/jobs/runs/cancel",
        Some(json!({"run_id": run_id})),
        None,
    );
    assert_eq!(again, json!({}), "canceling a finished run changes nothing");
}

#[test]
fn repair_reruns_failed_tasks_and_keeps_successful_values() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "repair.yaml",
        &format!(
            r#"
name: repair
parameters: [{{name: mode, default: fail}}]
tasks:
  - task_key: produce
    wasm_task: {{module: {m}, parameters: [set, "rows=7"]}}
  - task_key: flaky
    depends_on: [{{task_key: produce}}]
    wasm_task: {{module: {m}, parameters: ["{{{{job.parameters.mode}}}}"]}}
  - task_key: report
    depends_on: [{{task_key: flaky}}]
    wasm_task: {{module: {m}, parameters: [echo, "{{{{tasks.produce.values.rows}}}}", "{{{{job.repair_count}}}}"]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("repair", &[]);
    assert!(!ok);
    let run_id = run["run_id"].as_i64().unwrap().to_string();
    let produce_id = task(&run, "produce")["run_id"].clone();
    assert_eq!(result(&run, "report"), "UPSTREAM_FAILED");
    let (ok, repaired) = w.cli_json(&[
        "runs",
        "repair",
        &run_id,
        "--all-failed",
        "--param",
        "mode=ok",
        "--wait",
    ]);
    assert!(ok, "{repaired:#}");
    assert_eq!(run_result(&repaired), "SUCCESS");
    assert_eq!(
        task(&repaired, "produce")["run_id"],
        produce_id,
        "successful tasks are not rerun"
    );
    let args = &task(&repaired, "report")["values"]["args"];
    assert_eq!(args[2], "7", "upstream values survive the repair");
    assert_eq!(args[3], "1", "job.repair_count counts repairs");
    let history = repaired["repair_history"].as_array().unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[1]["type"], "REPAIR");
    // A second repair with rerun_dependent_tasks reruns everything downstream of produce.
    let (ok, again) = w.cli_json(&[
        "runs",
        "repair",
        &run_id,
        "--task",
        "produce",
        "--rerun-dependents",
        "--wait",
    ]);
    assert!(ok, "{again:#}");
    assert_ne!(task(&again, "produce")["run_id"], produce_id);
    assert_eq!(task(&again, "report")["values"]["args"][3], "2");
    // Repairing a running run, or an unknown task, is refused.
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/runs/repair",
        Some(json!({"run_id": run_id.parse::<i64>().unwrap(), "rerun_tasks": ["nope"]})),
        None,
    );
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("nope"));
}

#[test]
fn runs_over_the_limit_queue_or_skip() {
    let w = Weir::start();
    let m = module("testtask");
    let spec = |name: &str, queue: bool| {
        format!(
            r#"
name: {name}
max_concurrent_runs: 1
queue: {{enabled: {queue}}}
tasks:
  - task_key: t
    wasm_task: {{module: {m}, parameters: [sleep, "1500"]}}
"#,
            m = m.display()
        )
    };
    w.deploy("q.yaml", &spec("queued", true));
    let first = start(&w, "queued");
    let second = start(&w, "queued");
    let r2 = w.wait_for_run(second, Duration::from_secs(30), |r| {
        r["state"]["life_cycle_state"].is_string()
    });
    assert_eq!(r2["state"]["life_cycle_state"], "QUEUED");
    let r1 = w.wait_for_run(first, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    let r2 = w.wait_for_run(second, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    assert_eq!(run_result(&r2), "SUCCESS");
    assert!(
        r2["start_time"].as_i64() >= r1["end_time"].as_i64(),
        "the queued run starts after the first ends"
    );
    assert!(r2["queue_duration"].as_i64().unwrap() > 0);

    w.deploy("s.yaml", &spec("skipping", false));
    let first = start(&w, "skipping");
    let second = start(&w, "skipping");
    let r2 = w.wait_for_run(second, Duration::from_secs(30), |r| {
        r["state"]["life_cycle_state"] == "SKIPPED"
    });
    assert_eq!(run_result(&r2), "MAXIMUM_CONCURRENT_RUNS_REACHED");
    let r1 = w.wait_for_run(first, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    assert_eq!(run_result(&r1), "SUCCESS");
}

#[test]
fn idempotency_tokens_start_one_run() {
    let w = Weir::start();
    w.deploy("i.yaml", &format!("name: idem\ntasks:\n  - task_key: t\n    wasm_task: {{module: {}, parameters: [ok]}}\n", module("testtask").display()));
    let id = job_id(&w, "idem");
    let body = json!({"job_id": id, "idempotency_token": "retry-me"});
    let (_, a) = w.http("POST", "/api/2.2/jobs/run-now", Some(body.clone()), None);
    let (_, b) = w.http("POST", "/api/2.2/jobs/run-now", Some(body), None);
    assert_eq!(a["run_id"], b["run_id"]);
    let (_, runs) = w.http(
        "GET",
        &format!("/api/2.2/jobs/runs/list?job_id={id}"),
        None,
        None,
    );
    assert_eq!(runs["runs"].as_array().unwrap().len(), 1);
}

#[test]
fn deploy_creates_then_reports_unchanged_and_updated_jobs() {
    let w = Weir::start();
    let m = module("testtask");
    let spec = |n: u32| {
        format!(
            "name: deployed\nmax_concurrent_runs: {n}\ntasks:\n  - task_key: t\n    wasm_task: {{module: {}, parameters: [ok]}}\n",
            m.display()
        )
    };
    let first = w.deploy("d.yaml", &spec(1));
    assert!(first.contains("created job deployed"), "{first}");
    assert!(first.contains("module testtask@1"), "{first}");
    let again = w.deploy("d.yaml", &spec(1));
    assert!(again.contains("unchanged job deployed"), "{again}");
    assert!(again.contains("unchanged module testtask@1"), "{again}");
    let changed = w.deploy("d.yaml", &spec(3));
    assert!(changed.contains("updated job deployed"), "{changed}");
    assert!(changed.contains("max_concurrent_runs"), "{changed}");
    let (_, job) = w.cli_json(&["jobs", "get", "deployed"]);
    assert_eq!(job["settings"]["max_concurrent_runs"], 3);
    let module = job["settings"]["tasks"][0]["wasm_task"]["module"]
        .as_str()
        .unwrap();
    assert!(
        module.starts_with("sha256:"),
        "deploy pins the pushed module: {module}"
    );
}
