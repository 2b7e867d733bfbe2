//! `kill -9` of the node in the middle of a task loses nothing.

use crate::support::*;
use std::time::Duration;

#[test]
fn a_killed_node_retries_the_interrupted_attempt_and_finishes_the_run() {
    let mut w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "crash.yaml",
        &format!(
            r#"
name: crash
tasks:
  - task_key: first
    wasm_task: {{module: {m}, parameters: [set, "rows=5"]}}
  - task_key: slow
    depends_on: [{{task_key: first}}]
    max_retries: 1
    wasm_task: {{module: {m}, parameters: [sleep, "2000"]}}
  - task_key: last
    depends_on: [{{task_key: slow}}]
    wasm_task: {{module: {m}, parameters: [echo, "{{{{tasks.first.values.rows}}}}"]}}
  - task_key: no_retries
    depends_on: [{{task_key: first}}]
    wasm_task: {{module: {m}, parameters: [sleep, "2000"]}}
"#,
            m = m.display()
        ),
    );
    let (ok, started) = w.cli_json(&["jobs", "run", "crash"]);
    assert!(ok);
    let run_id = started["run_id"].as_i64().unwrap();
    w.wait_for_run(run_id, Duration::from_secs(30), |r| {
        r["tasks"].as_array().is_some_and(|t| {
            t.iter()
                .any(|t| t["task_key"] == "slow" && t["state"]["life_cycle_state"] == "RUNNING")
        })
    });
    w.kill9();
    w.spawn();
    let run = w.wait_for_run(run_id, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    let slow = attempts(&run, "slow");
    assert_eq!(slow.len(), 2, "the interrupted attempt counts: {run:#}");
    assert_eq!(slow[0]["state"]["result_state"], "FAILED");
    assert!(
        slow[0]["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(slow[1]["state"]["result_state"], "SUCCESS");
    assert_eq!(
        task(&run, "last")["values"]["args"][2],
        "5",
        "values recorded before the crash survive"
    );
    assert_eq!(result(&run, "no_retries"), "FAILED");
    assert!(
        task(&run, "no_retries")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("interrupted")
    );
    assert_eq!(run_result(&run), "FAILED");
}

#[test]
fn accepted_runs_survive_a_kill_before_they_start() {
    let mut w = Weir::start();
    w.deploy("q.yaml", &format!(
        "name: later\nmax_concurrent_runs: 1\ntasks:\n  - task_key: t\n    wasm_task: {{module: {}, parameters: [sleep, \"1000\"]}}\n",
        module("testtask").display()
    ));
    let ids: Vec<i64> = (0..3)
        .map(|_| {
            w.cli_json(&["jobs", "run", "later"]).1["run_id"]
                .as_i64()
                .unwrap()
        })
        .collect();
    w.kill9();
    w.spawn();
    for (i, id) in ids.into_iter().enumerate() {
        let run = w.wait_for_run(id, Duration::from_secs(60), |r| {
            r["state"]["life_cycle_state"] == "TERMINATED"
        });
        if i > 0 {
            assert_eq!(
                run_result(&run),
                "SUCCESS",
                "queued runs run after the restart: {run:#}"
            );
        }
    }
}
