//! Containment of mounts: only under the node's mount roots, never Weir's data directory,
//! judged after resolving symlinks — when a job is stored and again when a task starts.

use crate::support::{Weir, module};
use serde_json::json;
use std::time::Duration;

fn job(name: &str, source: &std::path::Path) -> serde_json::Value {
    json!({"name": name, "tasks": [{"task_key": "t", "wasm_task": {
        "module": "testtask", "parameters": ["ok"],
        "mounts": [{"source": format!("file://{}", source.display()), "path": "/lake"}]}}]})
}

#[test]
fn mounts_stay_under_the_roots_and_never_reach_the_data_directory() {
    let roots = tempfile::tempdir().unwrap();
    let root = roots.path().canonicalize().unwrap();
    let lake = root.join("lake");
    std::fs::create_dir_all(&lake).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let w = Weir::start_with_config(&format!(
        "mount_roots = [{:?}]\n",
        root.display().to_string()
    ));
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);

    let refused = |name: &str, source: &std::path::Path, what: &str| {
        let (status, err) = w.http(
            "POST",
            "/api/2.2/jobs/create",
            Some(job(name, source)),
            None,
        );
        assert_eq!(status, 400, "{name}: {err}");
        assert_eq!(err["error_code"], "INVALID_PARAMETER_VALUE");
        let message = err["message"].as_str().unwrap();
        assert!(
            message.contains("tasks[0].wasm_task.mounts[0].source"),
            "{message}"
        );
        assert!(message.contains(what), "{name}: {message}");
    };
    refused("data-dir", w.dir.path(), "data directory");
    refused("token-dir", &w.dir.path().join("work"), "data directory");
    refused(
        "outside",
        outside.path(),
        "outside the node's allowed mount roots",
    );
    std::os::unix::fs::symlink(w.dir.path(), lake.join("escape")).unwrap();
    refused("symlink", &lake.join("escape"), "resolves to");
    let (_, jobs) = w.http("GET", "/api/2.2/jobs/list", None, None);
    assert_eq!(jobs["jobs"], json!([]));

    // Allowed; then the directory is swapped for a symlink to the data directory: the task
    // is refused when it starts, with the reason, and the node stays healthy.
    let shared = lake.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let (status, created) = w.http(
        "POST",
        "/api/2.2/jobs/create",
        Some(job("swapped", &shared)),
        None,
    );
    assert_eq!(status, 200, "{created}");
    let job_id = created["job_id"].as_i64().unwrap();
    let run_once = || {
        let (_, run) = w.http(
            "POST",
            "/api/2.2/jobs/run-now",
            Some(json!({"job_id": job_id})),
            None,
        );
        w.wait_for_run(
            run["run_id"].as_i64().unwrap(),
            Duration::from_secs(60),
            |r| r["state"]["life_cycle_state"] == "TERMINATED",
        )
    };
    assert_eq!(run_once()["state"]["result_state"], "SUCCESS");
    std::fs::remove_dir(&shared).unwrap();
    std::os::unix::fs::symlink(w.dir.path(), &shared).unwrap();
    let run = run_once();
    assert_eq!(run["state"]["result_state"], "FAILED");
    let message = run["tasks"][0]["state"]["state_message"].as_str().unwrap();
    assert!(message.contains("data directory"), "{message}");
    let (status, health) = w.http("GET", "/healthz", None, Some(""));
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}
