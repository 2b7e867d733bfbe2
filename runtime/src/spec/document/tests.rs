//! End-to-end tests of the spec entry points: valid documents decode to the expected settings,
//! and every class of error is reported with its exact line, column and path.

use super::*;
use crate::spec::{ModuleRef, TaskKind};

mod error_cases;

const ORDERS_YAML: &str = include_str!("../testdata/orders.yaml");
const ORDERS_JSON: &str = include_str!("../testdata/orders.json");
const JOBS_YAML: &str = include_str!("../testdata/jobs.yaml");

/// The example job of DESIGN A3, written independently as JSON and read by serde_json.
fn expected_orders() -> JobSettings {
    serde_json::from_value(serde_json::json!({
        "name": "orders-pipeline",
        "tags": {"team": "data", "env": "dev"},
        "max_concurrent_runs": 1,
        "queue": {"enabled": true},
        "timeout_seconds": 3600,
        "parameters": [{"name": "region", "default": "eu"}],
        "trigger": {
            "file_arrival": {"url": "file:///srv/landing/orders/"},
            "pause_status": "UNPAUSED"
        },
        "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}]},
        "email_notifications": {"on_failure": ["oncall@example.com"]},
        "webhook_notifications": {"on_failure": [{"url": "http://127.0.0.1:9000/hook"}]},
        "notification_settings": {"no_alert_for_skipped_runs": true, "no_alert_for_canceled_runs": true},
        "tasks": [
            {
                "task_key": "ingest",
                "wasm_task": {
                    "module": "../target/wasm32-wasip1/release/ingest.wasm",
                    "parameters": ["--date", "{{job.trigger.time.iso_date}}"],
                    "env": {"LEVEL": "info"},
                    "memory_limit_mb": 256,
                    "mounts": [{"source": "file:///srv/lake", "path": "/lake"}]
                },
                "max_retries": 3,
                "min_retry_interval_millis": 1000,
                "retry_on_timeout": true,
                "timeout_seconds": 60
            },
            {
                "task_key": "publish",
                "depends_on": [{"task_key": "ingest"}],
                "wasm_task": {"module": "publish"}
            }
        ]
    }))
    .unwrap()
}

fn parse(text: &str, format: Format, policy: PathPolicy) -> Result<SpecDocument, SpecErrors> {
    let source = match format {
        Format::Yaml => "job.yaml",
        Format::Json => "job.json",
    };
    SpecDocument::parse(source, text, format, policy)
}

fn errors(text: &str, format: Format, policy: PathPolicy) -> Vec<SpecError> {
    match parse(text, format, policy) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(SpecErrors(errors)) => errors,
    }
}

#[test]
fn the_design_example_parses_in_both_syntaxes() {
    for (text, format) in [(ORDERS_YAML, Format::Yaml), (ORDERS_JSON, Format::Json)] {
        let doc = parse(text, format, PathPolicy::Local).unwrap();
        assert_eq!(doc.jobs().len(), 1);
        assert_eq!(doc.jobs()[0].path, "");
        assert_eq!(doc.jobs()[0].settings, expected_orders(), "{format:?}");
    }
}

#[test]
fn the_design_example_needs_deploy_for_its_module_path() {
    let errors = errors(ORDERS_YAML, Format::Yaml, PathPolicy::Server);
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert_eq!((e.line, e.column), (26, 15));
    assert_eq!(e.path, "tasks[0].wasm_task.module");
    assert!(
        e.message
            .starts_with("module paths are resolved by `weir deploy`")
    );
    assert_eq!(
        e.to_string(),
        format!("job.yaml:26:15: tasks[0].wasm_task.module: {}", e.message)
    );
}

#[test]
fn a_jobs_map_parses_with_names_from_keys_aliases_and_scalar_text() {
    let doc = parse(JOBS_YAML, Format::Yaml, PathPolicy::Server).unwrap();
    let paths: Vec<&str> = doc.jobs().iter().map(|j| j.path.as_str()).collect();
    assert_eq!(paths, ["jobs.orders-pipeline", "jobs.cleanup"]);
    let orders = &doc.jobs()[0].settings;
    assert_eq!(orders.name, "orders-pipeline");
    assert_eq!(doc.jobs()[1].settings.name, "nightly-cleanup");
    assert_eq!(orders.parameters[1].default, "10");
    let ingest = orders.task("ingest").unwrap().wasm_task.as_ref().unwrap();
    assert_eq!(ingest.parameters, ["--n", "5", "{{job.parameters.region}}"]);
    assert_eq!(ingest.env["RETRIES"], "3");
    let publish = orders.task("publish").unwrap();
    assert_eq!(publish.depends_on[0].outcome.as_deref(), Some("true"));
    let merged = publish.wasm_task.as_ref().unwrap();
    assert_eq!(merged.module, "publish");
    assert_eq!(merged.memory_limit_mb, Some(64));
    assert_eq!(merged.env, ingest.env);
    let Some(TaskKind::Condition(condition)) = orders.task("check").unwrap().kind() else {
        panic!("check is a condition task");
    };
    assert_eq!(condition.right, "0");
    let Some(TaskKind::ForEach(for_each)) = orders.task("per-file").unwrap().kind() else {
        panic!("per-file is a for-each task");
    };
    assert_eq!(for_each.concurrency, 4);
    assert!(matches!(
        ModuleRef::parse(&for_each.task.wasm_task.as_ref().unwrap().module),
        Ok(ModuleRef::Digest(_))
    ));
}

#[test]
fn every_problem_is_reported_in_position_order() {
    let text = "\
jobs:
  a:
    tasks:
      - task_key: t
        depends_on: [{task_key: nope}]
        wasm_task: {module: m, memory_limit_mb: 0}
  b:
    name: a
    tasks:
      - task_key: t
        wasm_task: {module: m, mounts: [{source: 's3://x', path: /x}]}
      - task_key: u
        wasm_task: {modul: m}
";
    let found: Vec<(usize, String)> = errors(text, Format::Yaml, PathPolicy::Local)
        .into_iter()
        .map(|e| (e.line, e.path))
        .collect();
    assert_eq!(
        found,
        [
            (5, "jobs.a.tasks[0].depends_on[0].task_key".to_string()),
            (6, "jobs.a.tasks[0].wasm_task.memory_limit_mb".to_string()),
            (13, "jobs.b.tasks[1].wasm_task.modul".to_string()),
        ],
        "job b does not decode, so its mount and name are not validated"
    );
    let text = "jobs:\n  a: {tasks: [{task_key: t, wasm_task: {module: m}}]}\n  b:\n    name: a\n    tasks: [{task_key: t, wasm_task: {module: m}}]\n";
    let found = errors(text, Format::Yaml, PathPolicy::Local);
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].column), (4, 11));
    assert_eq!(found[0].path, "jobs.b.name");
    assert_eq!(found[0].message, "duplicate job name `a` (first at line 2)");
}

#[test]
fn references_inside_for_each_tasks() {
    let valid = "\
name: x
tasks:
  - task_key: list
    wasm_task: {module: m}
  - task_key: loop
    depends_on: [{task_key: list}]
    for_each_task:
      inputs: '{{tasks.list.values.files}}'
      task:
        task_key: each
        wasm_task: {module: m, parameters: ['{{input}}', '{{tasks.list.run_id}}']}
";
    parse(valid, Format::Yaml, PathPolicy::Local).unwrap();
    let listed = valid.replace("'{{tasks.list.values.files}}'", "[x, 1]");
    let doc = parse(&listed, Format::Yaml, PathPolicy::Local).unwrap();
    let Some(TaskKind::ForEach(for_each)) = doc.jobs()[0].settings.tasks[1].kind() else {
        panic!("loop is a for-each task");
    };
    assert_eq!(for_each.inputs, r#"["x",1]"#);
    let invalid = "\
name: x
tasks:
  - task_key: list
    wasm_task: {module: m}
  - task_key: loop
    for_each_task:
      inputs: [a, b]
      task:
        task_key: each
        depends_on: [{task_key: list}]
        for_each_task: {inputs: '[1]', task: {task_key: z, wasm_task: {module: m}}}
        wasm_task: {module: m, parameters: ['{{tasks.list.run_id}}']}
";
    let found: Vec<(String, String)> = errors(invalid, Format::Yaml, PathPolicy::Local)
        .into_iter()
        .map(|e| (e.path, e.message))
        .collect();
    let paths: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "tasks[1].for_each_task.task",
            "tasks[1].for_each_task.task.depends_on",
            "tasks[1].for_each_task.task.for_each_task",
            "tasks[1].for_each_task.task.wasm_task.parameters[0]",
        ],
        "{found:#?}"
    );
    assert!(found[0].1.contains("found wasm_task and for_each_task"));
    assert!(found[2].1.contains("cannot run another for_each_task"));
    assert!(found[3].1.contains("which is not upstream of `loop`"));
}

#[test]
fn errors_for_later_problems_locate_the_nearest_field() {
    let doc = parse(JOBS_YAML, Format::Yaml, PathPolicy::Local).unwrap();
    let e = doc.error(
        "jobs.orders-pipeline.tasks[0].wasm_task.module",
        "no such module",
    );
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (11, 19, "no such module")
    );
    assert_eq!(e.source, "job.yaml");
    let e = doc.error("jobs.orders-pipeline.tasks[0].wasm_task.missing", "x");
    assert_eq!((e.line, e.column), (10, 9));
    assert_eq!(e.path, "jobs.orders-pipeline.tasks[0].wasm_task.missing");
    let e = doc.error("jobs.cleanup.name", "x");
    assert_eq!((e.line, e.column), (32, 11));
    let e = doc.error("jobs.orders-pipeline.name", "x");
    assert_eq!(
        (e.line, e.column),
        (3, 3),
        "a name from the key is at the key"
    );
}

#[test]
fn reads_files_by_extension() {
    let dir = tempfile::tempdir().unwrap();
    let yml = dir.path().join("orders.yml");
    std::fs::write(&yml, ORDERS_YAML).unwrap();
    let doc = SpecDocument::read(&yml, PathPolicy::Local).unwrap();
    assert_eq!(doc.jobs()[0].settings, expected_orders());
    assert_eq!(doc.source(), yml.display().to_string());
    let json = dir.path().join("orders.json");
    std::fs::write(&json, ORDERS_JSON).unwrap();
    assert_eq!(
        SpecDocument::read(&json, PathPolicy::Local).unwrap().jobs()[0].settings,
        expected_orders()
    );

    let toml = dir.path().join("orders.toml");
    std::fs::write(&toml, "").unwrap();
    let SpecErrors(found) = SpecDocument::read(&toml, PathPolicy::Local).unwrap_err();
    assert!(found[0].message.contains("expected .yaml, .yml or .json"));
    let missing = dir.path().join("missing.yaml");
    let SpecErrors(found) = SpecDocument::read(&missing, PathPolicy::Local).unwrap_err();
    assert_eq!(found[0].source, missing.display().to_string());
    assert!(found[0].message.starts_with("cannot read the spec file"));

    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "name: x\ntasks: {}\n").unwrap();
    let SpecErrors(found) = SpecDocument::read(&broken, PathPolicy::Local).unwrap_err();
    assert_eq!(
        found[0].to_string(),
        format!(
            "{}:2:1: tasks: invalid type: map, expected a sequence",
            broken.display()
        )
    );
}

const RESET_BODY: &str = r#"{
  "job_id": 1,
  "new_settings": {
    "name": "x",
    "tasks": [
      {"task_key": "a", "wasm_task": {"module": "m"}},
      {"task_key": "b", "depends_on": [{"task_key": "z"}], "wasm_task": {"module": "m"}}
    ]
  }
}"#;

#[test]
fn request_bodies_are_located_under_their_field() {
    let SpecErrors(found) =
        settings_from_json("request body", RESET_BODY, "new_settings").unwrap_err();
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!(e.source, "request body");
    assert_eq!((e.line, e.column), (7, 53));
    assert_eq!(e.path, "new_settings.tasks[1].depends_on[0].task_key");
    assert!(e.message.contains("expected one of `a`"), "{}", e.message);

    let body = RESET_BODY.replace("\"z\"", "\"a\"");
    let settings = settings_from_json("request body", &body, "new_settings").unwrap();
    assert_eq!(settings.tasks[1].depends_on[0].task_key, "a");

    let body = RESET_BODY.replace("\"wasm_task\": {\"module\": \"m\"}},", "\"wasm_tsk\": {}},");
    let SpecErrors(found) = settings_from_json("request body", &body, "new_settings").unwrap_err();
    assert_eq!(found[0].path, "new_settings.tasks[0].wasm_tsk");
    assert_eq!((found[0].line, found[0].column), (6, 25));

    let SpecErrors(found) =
        settings_from_json("request body", "{\"job_id\": 1}", "new_settings").unwrap_err();
    assert_eq!(found[0].message, "missing field `new_settings`");
    assert_eq!((found[0].line, found[0].column), (1, 1));

    let SpecErrors(found) =
        settings_from_json("request body", "{\"name\": \"x\", \"tasks\": [{\"task_key\": \"a\", \"wasm_task\": {\"module\": \"a.wasm\"}}]}", "")
            .unwrap_err();
    assert_eq!(found[0].path, "tasks[0].wasm_task.module");
    assert!(
        found[0]
            .message
            .starts_with("module paths are resolved by `weir deploy`")
    );

    let SpecErrors(found) = settings_from_json("request body", "{\"name\": ", "").unwrap_err();
    assert_eq!((found[0].line, found[0].column), (1, 10));
}

#[test]
fn in_memory_settings_are_validated_without_positions() {
    let mut settings = expected_orders();
    settings.tasks[0].wasm_task.as_mut().unwrap().module = "ingest".into();
    validate_settings(&settings, PathPolicy::Server).unwrap();
    settings.tasks[1].depends_on[0].task_key = "publish".into();
    let SpecErrors(found) = validate_settings(&settings, PathPolicy::Server).unwrap_err();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].line, found[0].column), (0, 0));
    assert_eq!(found[0].path, "tasks[1].depends_on[0].task_key");
    assert_eq!(
        found[0].to_string(),
        "job settings: tasks[1].depends_on[0].task_key: task `publish` depends on itself"
    );
}
