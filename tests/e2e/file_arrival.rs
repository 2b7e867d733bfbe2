//! `trigger.file_arrival` on a local directory: OS events, the reconciling scan, settle,
//! completeness, `/input`, durability across stops and `kill -9`.

use crate::support::*;
use serde_json::Value;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// A job watching `url` whose task reads every arrived file through `/input`.
pub fn arrival_spec(name: &str, url: &str, extra: &str) -> String {
    format!(
        r#"
name: {name}
trigger:
  file_arrival:
    url: "{url}"
{extra}
tasks:
  - task_key: read
    wasm_task:
      module: {m}
      parameters: [arrived, "{{{{job.trigger.file_arrival.location}}}}"]
"#,
        m = module("testtask").display()
    )
}

/// The job's id.
pub fn job_id(w: &Weir, name: &str) -> i64 {
    let (ok, job) = w.cli_json(&["jobs", "get", name]);
    assert!(ok, "{job:#}");
    job["job_id"].as_i64().unwrap()
}

/// Every run of the job, oldest first, with its tasks.
pub fn runs_of(w: &Weir, job_id: i64) -> Vec<Value> {
    let (status, body) = w.http(
        "GET",
        &format!("/api/2.2/jobs/runs/list?job_id={job_id}&limit=1000"),
        None,
        None,
    );
    assert_eq!(status, 200, "{body:#}");
    let mut ids: Vec<i64> = body["runs"]
        .as_array()
        .map(|r| r.iter().filter_map(|r| r["run_id"].as_i64()).collect())
        .unwrap_or_default();
    ids.sort();
    ids.into_iter()
        .map(|id| {
            w.http(
                "GET",
                &format!("/api/2.2/jobs/runs/get?run_id={id}"),
                None,
                None,
            )
            .1
        })
        .collect()
}

/// Waits until the job has exactly `n` runs, all finished; returns them.
pub fn wait_runs(w: &Weir, job_id: i64, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let runs = runs_of(w, job_id);
        assert!(
            runs.len() <= n,
            "more runs than expected ({} > {n}):\n{:#}",
            runs.len(),
            Value::from(runs.clone())
        );
        if runs.len() == n
            && runs
                .iter()
                .all(|r| r["state"]["life_cycle_state"] == "TERMINATED")
        {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {job_id} did not reach {n} finished runs (has {}):\n{:#}\nnode log:\n{}",
            runs.len(),
            Value::from(runs),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The paths a run's trigger payload lists.
pub fn files_of(run: &Value) -> Vec<String> {
    run["trigger_info"]["files"]
        .as_array()
        .unwrap_or_else(|| panic!("no files in the payload: {run:#}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// Writes a file next to its final name and renames it into place.
pub fn drop_file(dir: &Path, name: &str, content: &str) {
    let staged = dir.join(format!(".{name}.part"));
    std::fs::write(&staged, content).unwrap();
    std::fs::rename(&staged, dir.join(name)).unwrap();
}

fn landing() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("file://{}/", dir.path().display());
    (dir, url)
}

#[test]
fn fifty_renamed_files_give_fifty_runs_each_reading_its_file() {
    let w = Weir::start();
    let (dir, url) = landing();
    w.deploy("fa.yaml", &arrival_spec("fifty", &url, ""));
    let id = job_id(&w, "fifty");
    for i in 0..50 {
        let name = format!("orders-{i:02}.csv");
        drop_file(dir.path(), &name, &format!("row {i}\n"));
        let runs = wait_runs(&w, id, i + 1);
        let run = &runs[i];
        assert_eq!(run["trigger"], "FILE_ARRIVAL", "{run:#}");
        assert_eq!(files_of(run), [name.as_str()], "{run:#}");
        assert_eq!(run_result(run), "SUCCESS", "{run:#}");
        let values = &task(run, "read")["values"];
        assert_eq!(values["files"], serde_json::json!([name]));
        assert_eq!(values["contents"][&name], format!("row {i}\n"));
        assert_eq!(values["location"], url.as_str());
        let file = &run["trigger_info"]["files"][0];
        assert_eq!(file["size"], format!("row {i}\n").len());
        assert!(file["modification_time"].as_i64().unwrap() > 0);
    }
}

#[test]
fn a_burst_settles_into_one_run_listing_every_file() {
    let w = Weir::start();
    let (dir, url) = landing();
    w.deploy(
        "burst.yaml",
        &arrival_spec("burst", &url, "    wait_after_last_change_seconds: 1"),
    );
    let id = job_id(&w, "burst");
    for i in 0..200 {
        drop_file(dir.path(), &format!("part-{i:03}.json"), "{}");
    }
    let runs = wait_runs(&w, id, 1);
    let files = files_of(&runs[0]);
    assert_eq!(files.len(), 200);
    assert_eq!(files[0], "part-000.json");
    assert_eq!(
        task(&runs[0], "read")["values"]["files"]
            .as_array()
            .unwrap()
            .len(),
        200
    );
    // No second run follows: every file is covered.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(runs_of(&w, id).len(), 1);
}

#[test]
fn files_that_land_while_weir_is_stopped_trigger_once_at_start() {
    let mut w = Weir::start();
    let (dir, url) = landing();
    w.deploy("stop.yaml", &arrival_spec("stopped", &url, ""));
    let id = job_id(&w, "stopped");
    drop_file(dir.path(), "before.csv", "1");
    wait_runs(&w, id, 1);
    w.stop();
    drop_file(dir.path(), "while-down-1.csv", "2");
    drop_file(dir.path(), "while-down-2.csv", "3");
    // Ignored by default, even when found by the scan.
    std::fs::write(dir.path().join("_SUCCESS"), "").unwrap();
    std::fs::write(dir.path().join("upload.tmp"), "x").unwrap();
    w.spawn();
    let runs = wait_runs(&w, id, 2);
    assert_eq!(files_of(&runs[1]), ["while-down-1.csv", "while-down-2.csv"]);
    // A file already covered never triggers again, across restarts.
    w.stop();
    w.spawn();
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(runs_of(&w, id).len(), 2);
    drop_file(dir.path(), "after.csv", "4");
    let runs = wait_runs(&w, id, 3);
    assert_eq!(files_of(&runs[2]), ["after.csv"]);
}

#[test]
fn kill_9_between_seeing_files_and_creating_their_run_loses_and_doubles_nothing() {
    let mut w = Weir::start();
    let (dir, url) = landing();
    w.deploy(
        "kill.yaml",
        &arrival_spec("killed", &url, "    wait_after_last_change_seconds: 3"),
    );
    let id = job_id(&w, "killed");
    drop_file(dir.path(), "a.csv", "a");
    drop_file(dir.path(), "b.csv", "b");
    // Seen (the node watches) but inside the settle window: no run yet.
    std::thread::sleep(Duration::from_millis(500));
    assert!(runs_of(&w, id).is_empty());
    w.kill9();
    w.spawn();
    let runs = wait_runs(&w, id, 1);
    assert_eq!(files_of(&runs[0]), ["a.csv", "b.csv"]);
    // Killed again right after the run exists: the files stay covered.
    drop_file(dir.path(), "c.csv", "c");
    let start = Instant::now();
    while runs_of(&w, id).len() < 2 {
        assert!(start.elapsed() < Duration::from_secs(60), "{}", w.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    w.kill9();
    w.spawn();
    std::thread::sleep(Duration::from_secs(5));
    let runs = wait_runs(&w, id, 2);
    assert_eq!(files_of(&runs[1]), ["c.csv"]);
}

#[test]
fn a_slow_writer_is_not_picked_up_half_written() {
    let w = Weir::start();
    let (dir, url) = landing();
    w.deploy("slow.yaml", &arrival_spec("slow", &url, ""));
    let id = job_id(&w, "slow");
    let path = dir.path().join("slow.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(b"header,1\n").unwrap();
    f.flush().unwrap();
    // Longer than the scan quiet time: a rule based on time alone would take the half file.
    std::thread::sleep(Duration::from_millis(2_000));
    assert!(
        runs_of(&w, id).is_empty(),
        "a file still open for writing counts"
    );
    f.write_all(b"row,2\n").unwrap();
    drop(f);
    let runs = wait_runs(&w, id, 1);
    assert_eq!(files_of(&runs[0]), ["slow.csv"]);
    assert_eq!(
        task(&runs[0], "read")["values"]["contents"]["slow.csv"],
        "header,1\nrow,2\n"
    );
}

#[test]
fn a_symlink_pointing_outside_is_neither_reported_nor_readable_through_input() {
    let w = Weir::start();
    let (dir, url) = landing();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("secret.csv"),
    )
    .unwrap();
    let spec = arrival_spec("links", &url, "").replace(
        "tasks:\n",
        &format!(
            "tasks:\n  - task_key: peek\n    wasm_task: {{module: {}, parameters: [read, /input/secret.csv]}}\n",
            module("testtask").display()
        ),
    );
    w.deploy("links.yaml", &spec);
    let id = job_id(&w, "links");
    drop_file(dir.path(), "real.csv", "real");
    let runs = wait_runs(&w, id, 1);
    assert_eq!(files_of(&runs[0]), ["real.csv"]);
    assert_eq!(result(&runs[0], "read"), "SUCCESS");
    assert_eq!(result(&runs[0], "peek"), "FAILED", "{:#}", runs[0]);
    let message = task(&runs[0], "peek")["state"]["state_message"].to_string();
    assert!(message.contains("exited with code 1"), "{message}");
}

#[test]
fn a_missing_directory_is_refused_at_deploy_and_a_vanished_one_is_the_trigger_error() {
    let w = Weir::start();
    let (dir, url) = landing();
    let missing = format!("{url}not-there/");
    let spec = w.dir.path().join("missing.yaml");
    std::fs::write(&spec, arrival_spec("missing", &missing, "")).unwrap();
    let out = w.cli(&["deploy", spec.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("trigger.file_arrival.url"), "{err}");
    assert!(err.contains("not-there"), "{err}");
    assert!(
        !w.cli_ok(&["jobs", "list"]).contains("missing"),
        "nothing was created"
    );

    let watched = dir.path().join("in");
    std::fs::create_dir(&watched).unwrap();
    let url = format!("{url}in/");
    w.deploy("vanish.yaml", &arrival_spec("vanish", &url, ""));
    let id = job_id(&w, "vanish");
    std::fs::remove_dir(&watched).unwrap();
    let start = Instant::now();
    loop {
        let (_, job) = w.cli_json(&["jobs", "get", "vanish"]);
        let error = job["trigger_state"]["last_error"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if error.contains(&format!("cannot read {url}")) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no trigger error in jobs get:\n{job:#}\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Back: the watch recovers (with backoff) and the new file triggers once.
    std::fs::create_dir(&watched).unwrap();
    drop_file(&watched, "back.csv", "b");
    let runs = wait_runs(&w, id, 1);
    assert_eq!(files_of(&runs[0]), ["back.csv"]);
    let (_, job) = w.cli_json(&["jobs", "get", "vanish"]);
    assert!(job["trigger_state"]["last_error"].is_null(), "{job:#}");
}
