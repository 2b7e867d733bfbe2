//! The drop-in promise: the official Databricks SDK for Python (`databricks-sdk==0.155.0`,
//! installed by `scripts/services/databricks_sdk.sh`, which prints `WEIR_TEST_PYTHON`) drives a
//! real `weir serve` through the Jobs API: create, list across pages, get, run-now and its
//! waiter, get-run, get-run-output, repair with a parameter override, cancel, list-runs
//! filters, refused fields, permissions, delete. The script is `tests/e2e/sdk/jobs_sdk.py`.

use crate::support::{Weir, module, repo_root};
use std::process::Command;

fn python() -> String {
    std::env::var("WEIR_TEST_PYTHON")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            let default = format!(
                "{}/.cache/weir-tools/venv/bin/python",
                std::env::var("HOME").unwrap_or_default()
            );
            let sdk = Command::new(&default)
                .args(["-c", "import databricks.sdk"])
                .status();
            assert!(
                sdk.is_ok_and(|s| s.success()),
                "no databricks-sdk for the tests: run `bash scripts/services/databricks_sdk.sh` (it \
                 installs databricks-sdk==0.155.0 into ~/.cache/weir-tools/venv and prints \
                 WEIR_TEST_PYTHON), or use scripts/test.sh"
            );
            default
        })
}

/// Runs a script of `tests/e2e/sdk/` against the node as `token`; returns its output.
pub fn run_sdk_script(w: &Weir, script: &str, token: &str, env: &[(&str, &str)]) -> String {
    let path = repo_root().join("tests/e2e/sdk").join(script);
    let out = Command::new(python())
        .arg(&path)
        .env("WEIR_HOST", &w.host)
        .env("WEIR_TOKEN", token)
        .envs(env.iter().copied())
        // The SDK reads ~/.databrickscfg and DATABRICKS_* settings; none may interfere.
        .env(
            "DATABRICKS_CONFIG_FILE",
            w.dir.path().join("no-databrickscfg"),
        )
        .env_remove("DATABRICKS_HOST")
        .env_remove("DATABRICKS_TOKEN")
        .output()
        .expect("python runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} failed ({}):\nstdout:\n{stdout}\nstderr:\n{stderr}\nweir log:\n{}",
        out.status,
        w.log()
    );
    stdout
}

#[test]
fn the_official_databricks_sdk_drives_weir() {
    let w = Weir::start();
    let m = module("testtask");
    w.cli_ok(&["modules", "push", m.to_str().unwrap(), "--name", "testtask"]);
    let out = run_sdk_script(&w, "jobs_sdk.py", &w.token, &[("WEIR_MODULE", "testtask")]);
    assert!(out.trim_end().ends_with("SDK-OK"), "{out}");
    // What the SDK left behind is what it asked for.
    let (_, jobs) = w.cli_json(&["jobs", "list"]);
    let names: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["settings"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["sdk-main"]);
}
