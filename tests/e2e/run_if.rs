//! Each `run_if` kind, with Lakeflow's results for unmet conditions, and the run's result from
//! its leaf tasks.

use crate::support::*;

fn spec(t: &str) -> String {
    let m = module("testtask");
    format!(
        r#"
name: run-if
tasks:
  - task_key: good
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: bad
    wasm_task: {{module: {m}, parameters: [fail, "3", "boom"]}}
  - task_key: all_success
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: ALL_SUCCESS
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: at_least_one_success
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: AT_LEAST_ONE_SUCCESS
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: none_failed
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: NONE_FAILED
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: all_done
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: ALL_DONE
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: at_least_one_failed
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: AT_LEAST_ONE_FAILED
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: all_failed
    depends_on: [{{task_key: good}}, {{task_key: bad}}]
    run_if: ALL_FAILED
    wasm_task: {{module: {m}, parameters: [ok]}}
  - task_key: only_good_failed
    depends_on: [{{task_key: good}}]
    run_if: {t}
    wasm_task: {{module: {m}, parameters: [ok]}}
"#,
        m = m.display()
    )
}

#[test]
fn every_run_if_kind_follows_lakeflow() {
    let w = Weir::start();
    w.deploy("run-if.yaml", &spec("ALL_FAILED"));
    let (ok, run) = w.run_wait("run-if", &[]);
    assert!(
        !ok,
        "a failed leaf fails the run and the CLI exits non-zero"
    );
    assert_eq!(result(&run, "good"), "SUCCESS");
    assert_eq!(result(&run, "bad"), "FAILED");
    assert!(
        task(&run, "bad")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("exited with code 3")
    );
    assert_eq!(result(&run, "all_success"), "UPSTREAM_FAILED");
    assert_eq!(result(&run, "at_least_one_success"), "SUCCESS");
    assert_eq!(result(&run, "none_failed"), "UPSTREAM_FAILED");
    assert_eq!(result(&run, "all_done"), "SUCCESS");
    assert_eq!(result(&run, "at_least_one_failed"), "SUCCESS");
    assert_eq!(result(&run, "all_failed"), "EXCLUDED");
    assert_eq!(result(&run, "only_good_failed"), "EXCLUDED");
    assert_eq!(run_result(&run), "FAILED");
}

#[test]
fn handled_failures_end_the_run_successful_with_failures() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "handled.yaml",
        &format!(
            r#"
name: handled
tasks:
  - task_key: load
    wasm_task: {{module: {m}, parameters: [fail]}}
  - task_key: cleanup
    depends_on: [{{task_key: load}}]
    run_if: ALL_DONE
    wasm_task: {{module: {m}, parameters: [ok]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("handled", &[]);
    assert_eq!(run_result(&run), "SUCCESS_WITH_FAILURES");
    assert!(ok, "SUCCESS_WITH_FAILURES is a successful run");
}
