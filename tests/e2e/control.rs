//! Control-flow tasks: `condition_task`, `for_each_task`, `run_job_task`.

use crate::support::*;

#[test]
fn conditions_pick_a_branch_and_joins_run_with_none_failed() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "cond.yaml",
        &format!(
            r#"
name: cond
parameters: [{{name: threshold, default: "10"}}]
tasks:
  - task_key: count
    wasm_task: {{module: {m}, parameters: [set, "rows=42"]}}
  - task_key: big_enough
    depends_on: [{{task_key: count}}]
    condition_task: {{op: GREATER_THAN, left: "{{{{tasks.count.values.rows}}}}", right: "{{{{job.parameters.threshold}}}}"}}
  - task_key: publish
    depends_on: [{{task_key: big_enough, outcome: "true"}}]
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: skip
    depends_on: [{{task_key: big_enough, outcome: "false"}}]
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: join
    depends_on: [{{task_key: publish}}, {{task_key: skip}}]
    run_if: NONE_FAILED
    wasm_task: {{module: {m}, parameters: [ok]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("cond", &[]);
    assert!(ok, "{run:#}");
    assert_eq!(
        task(&run, "big_enough")["condition_task"]["outcome"],
        "true"
    );
    assert_eq!(result(&run, "publish"), "SUCCESS");
    assert_eq!(result(&run, "skip"), "EXCLUDED");
    assert_eq!(result(&run, "join"), "SUCCESS");
    let (_, run) = w.run_wait("cond", &["--param", "threshold=100"]);
    assert_eq!(
        task(&run, "big_enough")["condition_task"]["outcome"],
        "false"
    );
    assert_eq!(result(&run, "publish"), "EXCLUDED");
    assert_eq!(result(&run, "skip"), "SUCCESS");
}

#[test]
fn for_each_runs_the_inner_task_per_input() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "loop.yaml",
        &format!(
            r#"
name: loop
tasks:
  - task_key: list
    wasm_task: {{module: {m}, parameters: [set, 'files=["a.csv","b.csv","c.csv"]']}}
  - task_key: each
    depends_on: [{{task_key: list}}]
    for_each_task:
      inputs: "{{{{tasks.list.values.files}}}}"
      concurrency: 2
      task:
        task_key: one
        wasm_task: {{module: {m}, parameters: [input]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("loop", &[]);
    assert!(ok, "{run:#}");
    let each = task(&run, "each");
    assert_eq!(
        each["for_each_task"]["stats"]["task_run_stats"]["succeeded_iterations"],
        3
    );
    let mut inputs: Vec<String> = each["iterations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["values"]["input"].as_str().unwrap().to_string())
        .collect();
    inputs.sort();
    assert_eq!(inputs, ["a.csv", "b.csv", "c.csv"]);
}

#[test]
fn run_job_tasks_run_another_job_and_take_its_result() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "jobs.yaml",
        &format!(
            r#"
jobs:
  child:
    parameters: [{{name: mode, default: ok}}]
    tasks:
      - task_key: work
        wasm_task: {{module: {m}, parameters: ["{{{{job.parameters.mode}}}}"]}}
  parent:
    parameters: [{{name: mode, default: ok}}]
    tasks:
      - task_key: call
        run_job_task: {{job_name: child, job_parameters: {{mode: "{{{{job.parameters.mode}}}}"}}}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("parent", &[]);
    assert!(ok, "{run:#}");
    let child_id = task(&run, "call")["run_job_output"]["run_id"]
        .as_i64()
        .unwrap();
    let (_, child) = w.http(
        "GET",
        &format!("/api/2.2/jobs/runs/get?run_id={child_id}"),
        None,
        None,
    );
    assert_eq!(child["trigger"], "RUN_JOB_TASK");
    assert_eq!(run_result(&child), "SUCCESS");
    let (ok, run) = w.run_wait("parent", &["--param", "mode=fail"]);
    assert!(!ok);
    assert_eq!(result(&run, "call"), "FAILED");
    assert!(
        task(&run, "call")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("child run")
    );
}
