//! The Jobs API as Databricks clients speak it: the proto3 JSON mapping, fields Weir does not
//! model, pagination, `only` and `queue` on run-now, `run_type`, the 2.0 aliases, the 2.2
//! `status` object, and the host metadata probe.

use crate::support::{Weir, module};
use serde_json::{Value, json};
use std::time::Duration;

fn create(w: &Weir, body: Value) -> i64 {
    let (status, out) = w.http("POST", "/api/2.2/jobs/create", Some(body), None);
    assert_eq!(status, 200, "{out}");
    out["job_id"].as_i64().unwrap()
}

fn two_tasks(w: &Weir, name: &str) -> i64 {
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);
    create(
        w,
        json!({"name": name, "tasks": [
            {"task_key": "a", "wasm_task": {"module": "testtask", "parameters": ["ok"]}},
            {"task_key": "b", "depends_on": [{"task_key": "a"}],
             "wasm_task": {"module": "testtask", "parameters": ["ok"]}}
        ]}),
    )
}

fn final_run(w: &Weir, run_id: i64) -> Value {
    w.wait_for_run(run_id, Duration::from_secs(60), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    })
}

#[test]
fn ids_and_integers_come_as_numbers_or_numeric_strings() {
    let w = Weir::start();
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);
    let job_id = create(
        &w,
        json!({"name": "strings", "max_concurrent_runs": "2", "timeout_seconds": "600",
               "tasks": [{"task_key": "t", "timeout_seconds": "60",
                          "wasm_task": {"module": "testtask", "parameters": ["ok"]}}]}),
    );
    let (_, job) = w.http(
        "GET",
        &format!("/api/2.2/jobs/get?job_id={job_id}"),
        None,
        None,
    );
    assert_eq!(job["settings"]["max_concurrent_runs"], 2);
    assert_eq!(job["settings"]["timeout_seconds"], 600);
    let (status, run) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id.to_string()})),
        None,
    );
    assert_eq!(status, 200, "{run}");
    let run_id = run["run_id"].as_i64().unwrap();
    let done = final_run(&w, run_id);
    assert_eq!(done["state"]["result_state"], "SUCCESS");
    assert_eq!(done["status"]["state"], "TERMINATED");
    assert_eq!(done["status"]["termination_details"]["code"], "SUCCESS");
    assert_eq!(done["status"]["termination_details"]["type"], "SUCCESS");
    let (status, _) = w.http(
        "POST",
        "/api/2.2/jobs/runs/delete",
        Some(json!({"run_id": run_id.to_string()})),
        None,
    );
    assert_eq!(status, 200);
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": "twelve"})),
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
    assert!(err["message"].as_str().unwrap().contains("job_id"), "{err}");
}

#[test]
fn fields_weir_does_not_model_are_honoured_when_empty_and_refused_by_name() {
    let w = Weir::start();
    let job_id = two_tasks(&w, "fields");
    // Empty Databricks fields ask for nothing: accepted.
    let (status, out) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(
            json!({"job_id": job_id, "notebook_params": {}, "python_params": [],
                    "performance_target": null}),
        ),
        None,
    );
    assert_eq!(status, 200, "{out}");
    final_run(&w, out["run_id"].as_i64().unwrap());
    let runs_before = w.http("GET", "/api/2.2/jobs/runs/list", None, None).1["runs"]
        .as_array()
        .unwrap()
        .len();
    for (path, body, field) in [
        (
            "/api/2.2/jobs/run-now",
            json!({"job_id": job_id, "notebook_params": {"a": "1"}}),
            "notebook_params",
        ),
        (
            "/api/2.2/jobs/run-now",
            json!({"job_id": job_id, "pipeline_params": {"full_refresh": true}}),
            "pipeline_params",
        ),
        (
            "/api/2.2/jobs/run-now",
            json!({"job_id": job_id, "performance_target": "PERFORMANCE_OPTIMIZED"}),
            "performance_target",
        ),
        (
            "/api/2.2/jobs/run-now",
            json!({"job_id": job_id, "jobs_parameters": {"a": "1"}}),
            "jobs_parameters",
        ),
        (
            "/api/2.2/jobs/runs/submit",
            json!({"tasks": [], "git_source": {"git_url": "https://x"}}),
            "git_source",
        ),
        (
            "/api/2.2/jobs/runs/repair",
            json!({"run_id": 1, "python_params": ["x"]}),
            "python_params",
        ),
        (
            "/api/2.2/jobs/create",
            json!({"name": "c", "tasks": [], "job_clusters": [{"job_cluster_key": "k"}]}),
            "job_clusters",
        ),
        (
            "/api/2.2/jobs/update",
            json!({"job_id": job_id, "new_settings": {"budget_policy_id": "p"}}),
            "new_settings.budget_policy_id",
        ),
    ] {
        let (status, err) = w.http("POST", path, Some(body), None);
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(
            err["error_code"], "INVALID_PARAMETER_VALUE",
            "{path}: {err}"
        );
        let message = err["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{field}: ")),
            "{path}: {message}"
        );
    }
    // Nothing changed.
    let runs_after = w.http("GET", "/api/2.2/jobs/runs/list", None, None).1["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs_before, runs_after);
    let (_, jobs) = w.http("GET", "/api/2.2/jobs/list", None, None);
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);
    // Wrong types name the field; text that is not JSON is a malformed request.
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "only": "a"})),
        None,
    );
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert!(err["message"].as_str().unwrap().contains("only"), "{err}");
    let (status, err) = w.http_raw(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(b"{\"job_id\": ".to_vec()),
        None,
    );
    assert_eq!(
        (status, err["error_code"].as_str()),
        (400, Some("MALFORMED_REQUEST"))
    );
}

#[test]
fn run_now_takes_only_and_queue() {
    let w = Weir::start();
    let job_id = two_tasks(&w, "subset");
    let (status, out) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "only": ["b"]})),
        None,
    );
    assert_eq!(status, 200, "{out}");
    let run = final_run(&w, out["run_id"].as_i64().unwrap());
    let keys: Vec<&str> = run["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["task_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["b"]);
    assert_eq!(run["state"]["result_state"], "SUCCESS");
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "only": ["zzz"]})),
        None,
    );
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("zzz"), "{err}");
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "queue": {"enabled": "yes"}})),
        None,
    );
    assert_eq!(status, 400, "{err}");
    let (status, out) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": job_id, "queue": {"enabled": false}})),
        None,
    );
    assert_eq!(status, 200, "{out}");
    final_run(&w, out["run_id"].as_i64().unwrap());
}

#[test]
fn lists_page_with_tokens_and_offsets_and_filter_runs() {
    let w = Weir::start();
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);
    let ids: Vec<i64> = (0..5)
        .map(|i| {
            create(
                &w,
                json!({"name": format!("page-{i}"), "tasks": [
                    {"task_key": "t", "wasm_task": {"module": "testtask", "parameters": ["ok"]}}]}),
            )
        })
        .collect();
    let mut seen = Vec::new();
    let mut query = "limit=2".to_string();
    loop {
        let (status, page) = w.http("GET", &format!("/api/2.2/jobs/list?{query}"), None, None);
        assert_eq!(status, 200, "{page}");
        for j in page["jobs"].as_array().unwrap() {
            assert!(
                j["settings"].get("tasks").is_none(),
                "tasks only with expand_tasks"
            );
            seen.push(j["job_id"].as_i64().unwrap());
        }
        match page["next_page_token"].as_str() {
            Some(t) => {
                assert_eq!(page["has_more"], true);
                query = format!("limit=2&page_token={t}");
            }
            None => {
                assert_eq!(page["has_more"], false);
                break;
            }
        }
    }
    seen.sort();
    assert_eq!(seen, ids);
    let (_, by_offset) = w.http("GET", "/api/2.0/jobs/list?limit=2&offset=4", None, None);
    assert_eq!(by_offset["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(by_offset["has_more"], false);
    let (_, named) = w.http(
        "GET",
        "/api/2.2/jobs/list?name=page-3&expand_tasks=true",
        None,
        None,
    );
    assert_eq!(named["jobs"][0]["job_id"], ids[3]);
    assert_eq!(named["jobs"][0]["settings"]["tasks"][0]["task_key"], "t");

    let (_, job_run) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": ids[0]})),
        None,
    );
    let (_, submitted) = w.http(
        "POST",
        "/api/2.2/jobs/runs/submit",
        Some(json!({"run_name": "once", "tasks": [
            {"task_key": "t", "wasm_task": {"module": "testtask", "parameters": ["ok"]}}]})),
        None,
    );
    let job_run = job_run["run_id"].as_i64().unwrap();
    let submitted = submitted["run_id"].as_i64().unwrap();
    final_run(&w, job_run);
    final_run(&w, submitted);
    let ids_of = |query: &str| -> Vec<i64> {
        let (status, out) = w.http(
            "GET",
            &format!("/api/2.2/jobs/runs/list?{query}"),
            None,
            None,
        );
        assert_eq!(status, 200, "{query}: {out}");
        out["runs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["run_id"].as_i64().unwrap())
            .collect()
    };
    assert_eq!(ids_of("run_type=SUBMIT_RUN"), [submitted]);
    assert_eq!(ids_of("run_type=JOB_RUN"), [job_run]);
    assert_eq!(ids_of(&format!("job_id={}", ids[0])), [job_run]);
    assert_eq!(ids_of("completed_only=true"), [submitted, job_run]);
    assert_eq!(ids_of("active_only=true"), Vec::<i64>::new());
    assert_eq!(
        ids_of("start_time_from=0&start_time_to=1"),
        Vec::<i64>::new()
    );
    let (status, err) = w.http("GET", "/api/2.2/jobs/runs/list?run_type=NOPE", None, None);
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("NOPE"));
    let (_, v20) = w.http(
        "GET",
        &format!("/api/2.0/jobs/runs/get?run_id={job_run}"),
        None,
        None,
    );
    assert_eq!(v20["run_id"], job_run);
}

#[test]
fn the_host_metadata_probe_gets_a_404_without_a_token() {
    let w = Weir::start();
    let (status, err) = w.http("GET", "/.well-known/databricks-config", None, Some(""));
    assert_eq!(status, 404);
    assert_eq!(err["error_code"], "RESOURCE_DOES_NOT_EXIST");
}
