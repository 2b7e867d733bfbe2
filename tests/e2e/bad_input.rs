//! Bad input gets a clear error, a Jobs API error body, and changes nothing.

use crate::support::*;
use serde_json::json;

fn jobs_count(w: &Weir) -> usize {
    let (_, jobs) = w.http("GET", "/api/2.2/jobs/list", None, None);
    jobs["jobs"].as_array().map_or(0, Vec::len)
}

#[test]
fn spec_errors_name_file_line_and_column_and_deploy_nothing() {
    let w = Weir::start();
    let m = module("testtask");
    let cases = [
        (
            "unknown-field.yaml",
            "name: x\ntasks:\n  - task_key: a\n    wasm_tsk: {module: m}\n",
            ":4:5",
            "wasm_tsk",
        ),
        (
            "dup.yaml",
            &format!(
                "name: x\ntasks:\n  - task_key: a\n    wasm_task: {{module: {m}}}\n  - task_key: a\n    wasm_task: {{module: {m}}}\n",
                m = m.display()
            ),
            ":5:",
            "duplicate",
        ),
        (
            "deps.yaml",
            &format!(
                "name: x\ntasks:\n  - task_key: a\n    depends_on: [{{task_key: zz}}]\n    wasm_task: {{module: {m}}}\n",
                m = m.display()
            ),
            ":4:",
            "zz",
        ),
        (
            "cycle.yaml",
            &format!(
                "name: x\ntasks:\n  - task_key: a\n    depends_on: [{{task_key: b}}]\n    wasm_task: {{module: {m}}}\n  - task_key: b\n    depends_on: [{{task_key: a}}]\n    wasm_task: {{module: {m}}}\n",
                m = m.display()
            ),
            ":",
            "a -> b -> a",
        ),
        (
            "runif.yaml",
            &format!(
                "name: x\ntasks:\n  - task_key: a\n    wasm_task: {{module: {m}}}\n  - task_key: b\n    depends_on: [{{task_key: a}}]\n    run_if: SOMETIMES\n    wasm_task: {{module: {m}}}\n",
                m = m.display()
            ),
            ":7:",
            "SOMETIMES",
        ),
        (
            "ref.yaml",
            &format!(
                "name: x\ntasks:\n  - task_key: a\n    wasm_task: {{module: {m}, parameters: [\"{{{{job.nope}}}}\"]}}\n",
                m = m.display()
            ),
            ":4:",
            "job.nope",
        ),
        (
            "module.yaml",
            "name: x\ntasks:\n  - task_key: a\n    wasm_task: {module: ./missing.wasm}\n",
            ":4:",
            "missing.wasm",
        ),
    ];
    for (file, yaml, at, what) in cases {
        let path = w.dir.path().join(file);
        std::fs::write(&path, yaml).unwrap();
        let out = w.cli(&["deploy", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{file} deployed");
        assert!(
            stderr.contains(&format!("{file}{at}")),
            "{file}: expected position {at} in:\n{stderr}"
        );
        assert!(
            stderr.contains(what),
            "{file}: expected {what:?} in:\n{stderr}"
        );
    }
    assert_eq!(jobs_count(&w), 0);
}

#[test]
fn bad_modules_are_refused_with_the_reason() {
    let w = Weir::start();
    let not_wasm = w.dir.path().join("not.wasm");
    std::fs::write(&not_wasm, b"hello").unwrap();
    let reactor = wat_module(w.dir.path(), "reactor");
    let env_import = wat_module(w.dir.path(), "env-import");
    for (path, what) in [
        (&not_wasm, "not a valid WebAssembly"),
        (&reactor, "_start"),
        (&env_import, "env"),
    ] {
        let out = w.cli(&["modules", "push", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains(what), "{}: {stderr}", path.display());
    }
    let (_, modules) = w.cli_json(&["modules", "list"]);
    assert_eq!(modules["modules"], json!([]));
    let (status, err) = w.http(
        "POST",
        "/api/weir/modules?name=x",
        Some(json!("x".repeat(10))),
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
}

#[test]
fn unknown_ids_and_malformed_requests_get_jobs_api_errors() {
    let w = Weir::start();
    let (status, err) = w.http("GET", "/api/2.2/jobs/get?job_id=999", None, None);
    assert_eq!(status, 404);
    assert_eq!(err["error_code"], "RESOURCE_DOES_NOT_EXIST");
    assert!(err["message"].as_str().unwrap().contains("999"));
    let (status, err) = w.http("GET", "/api/2.2/jobs/runs/get?run_id=12345", None, None);
    assert_eq!(status, 404);
    assert_eq!(err["error_code"], "RESOURCE_DOES_NOT_EXIST");
    let (status, _) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_id": 999})),
        None,
    );
    assert_eq!(status, 404);
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/run-now",
        Some(json!({"job_idd": 1})),
        None,
    );
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("job_idd"));
    let (status, err) = w.http(
        "POST",
        "/api/2.2/jobs/create",
        Some(json!({"name": "x", "tasks": [{"task_key": "a", "wasm_task": {"module": "nope"}}]})),
        None,
    );
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("nope"), "{err}");
    let out = w.cli(&["runs", "get", "424242"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("424242"));
    assert_eq!(jobs_count(&w), 0);
}

#[test]
fn the_api_needs_the_admin_token() {
    let w = Weir::start();
    let (status, err) = w.http("GET", "/api/2.2/jobs/list", None, Some(""));
    assert_eq!(status, 401);
    assert_eq!(err["error_code"], "UNAUTHENTICATED");
    let (status, err) = w.http("GET", "/api/2.2/jobs/list", None, Some("wrong"));
    assert_eq!(status, 401);
    assert!(err["message"].as_str().unwrap().contains("invalid"));
    let (status, _) = w.http(
        "POST",
        "/api/2.2/jobs/create",
        Some(json!({"name": "x", "tasks": []})),
        Some("wrong"),
    );
    assert_eq!(status, 401);
    let (status, body) = w.http("GET", "/healthz", None, Some(""));
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");
    let token = w.dir.path().join("admin-token");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(token).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn oversized_uploads_and_requests_are_refused() {
    let w = Weir::start_with_config("max_module_bytes = 100000\nmax_request_bytes = 4096\n");
    let out = w.cli(&["modules", "push", module("testtask").to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("larger than the limit of 100000 bytes"),
        "{stderr}"
    );
    assert!(stderr.contains("REQUEST_LIMIT_EXCEEDED"), "{stderr}");
    let (_, modules) = w.cli_json(&["modules", "list"]);
    assert_eq!(modules["modules"], json!([]));
    let big = json!({"name": "x".repeat(10_000), "tasks": []});
    let (status, err) = w.http("POST", "/api/2.2/jobs/create", Some(big), None);
    assert_eq!(status, 413);
    assert_eq!(err["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(jobs_count(&w), 0);
}

#[test]
fn malformed_queries_and_bodies_get_jobs_api_errors_too() {
    let w = Weir::start();
    let (status, err) = w.http("GET", "/api/2.2/jobs/get", None, None);
    assert_eq!(status, 400);
    assert!(err["message"].as_str().unwrap().contains("job_id"), "{err}");
    let (status, err) = w.http("GET", "/api/2.2/jobs/runs/get?run_id=abc", None, None);
    assert_eq!(status, 400);
    assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
    let (status, err) = w.http_raw(
        "POST",
        "/api/2.2/jobs/create",
        Some(b"{not json".to_vec()),
        None,
    );
    assert_eq!(status, 400);
    assert!(
        err["message"].as_str().unwrap().contains("request body"),
        "{err}"
    );
    let (status, err) = w.http("GET", "/api/2.2/jobs/create", None, None);
    assert_eq!(status, 405);
    assert!(err["error_code"].is_string());
    let (status, err) = w.http("GET", "/api/2.2/jobs/nope", None, None);
    assert_eq!(status, 404);
    assert_eq!(err["error_code"], "RESOURCE_DOES_NOT_EXIST");
}
