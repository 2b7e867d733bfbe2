//! Task values, parameters and their overrides, dynamic value references, and the ABI's
//! environment and context file.

use crate::support::*;

fn spec() -> String {
    format!(
        r#"
name: values
parameters:
  - {{name: region, default: eu}}
  - {{name: day, default: "{{{{job.start_time.iso_date}}}}"}}
tasks:
  - task_key: produce
    wasm_task: {{module: {m}, parameters: [set, "rows=42", "name=\"orders\""]}}
  - task_key: consume
    depends_on: [{{task_key: produce}}]
    wasm_task:
      module: {m}
      parameters: [echo, "--rows", "{{{{tasks.produce.values.rows}}}}", "{{{{job.parameters.region}}}}", "{{{{tasks.produce.result_state}}}}"]
      env: {{WHO: "{{{{task.name}}}}-{{{{job.run_id}}}}"}}
  - task_key: read_back
    depends_on: [{{task_key: produce}}]
    wasm_task: {{module: {m}, parameters: [values-from-upstream, produce, name]}}
"#,
        m = module("testtask").display()
    )
}

#[test]
fn values_flow_downstream_through_references_env_and_context() {
    let w = Weir::start();
    w.deploy("values.yaml", &spec());
    let (ok, run) = w.run_wait("values", &[]);
    assert!(ok, "{run:#}");
    let run_id = run["run_id"].as_i64().unwrap();
    assert_eq!(task(&run, "produce")["values"]["rows"], 42);
    let echo = &task(&run, "consume")["values"];
    let args: Vec<&str> = echo["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args, ["consume", "echo", "--rows", "42", "eu", "SUCCESS"]);
    let env = &echo["env"];
    assert_eq!(env["WEIR_TASK_KEY"], "consume");
    assert_eq!(env["WEIR_RUN_ID"], run_id.to_string());
    assert_eq!(env["WEIR_ATTEMPT"], "0");
    assert_eq!(env["WEIR_TRIGGER_TYPE"], "onetime");
    assert_eq!(env["WEIR_PARAM_REGION"], "eu");
    assert_eq!(env["WEIR_JOB_NAME"], "values");
    assert_eq!(env["WEIR_CONTEXT"], "/weir/context.json");
    assert_eq!(env["WEIR_OUTPUT"], "/weir/output.jsonl");
    assert_eq!(env["WHO"], format!("consume-{run_id}"));
    let ctx = &echo["context"];
    assert_eq!(ctx["tasks"]["produce"]["values"]["rows"], 42);
    assert_eq!(ctx["parameters"]["region"], "eu");
    assert_eq!(ctx["job"]["run_id"], run_id);
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(
        ctx["parameters"]["day"], today,
        "parameter defaults resolve references"
    );
    assert_eq!(task(&run, "read_back")["values"]["got"], "orders");
}

#[test]
fn parameter_overrides_apply_to_one_run() {
    let w = Weir::start();
    w.deploy("values.yaml", &spec());
    let (ok, run) = w.run_wait("values", &["--param", "region=us"]);
    assert!(ok);
    let args = &task(&run, "consume")["values"]["args"];
    assert_eq!(args[4], "us");
    assert_eq!(
        task(&run, "consume")["values"]["env"]["WEIR_PARAM_REGION"],
        "us"
    );
    let (_, again) = w.run_wait("values", &[]);
    assert_eq!(
        task(&again, "consume")["values"]["args"][4],
        "eu",
        "defaults are back for the next run"
    );
    // An unknown parameter is refused and starts nothing.
    let out = w.cli(&["jobs", "run", "values", "--param", "nope=1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no parameter `nope`"));
}

#[test]
fn oversized_task_values_fail_the_task_loudly() {
    let w = Weir::start();
    let m = module("testtask");
    w.deploy(
        "big.yaml",
        &format!(
            r#"
name: big
tasks:
  - task_key: big
    wasm_task: {{module: {m}, parameters: [big-value]}}
  - task_key: long
    wasm_task: {{module: {m}, parameters: [long-key]}}
"#,
            m = m.display()
        ),
    );
    let (ok, run) = w.run_wait("big", &[]);
    assert!(!ok);
    assert_eq!(result(&run, "big"), "FAILED");
    assert!(
        task(&run, "big")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("48"),
        "{run:#}"
    );
    assert_eq!(result(&run, "long"), "FAILED");
    assert!(
        task(&run, "long")["state"]["state_message"]
            .as_str()
            .unwrap()
            .contains("128")
    );
}
