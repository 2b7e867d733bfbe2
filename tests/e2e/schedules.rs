//! `schedule`, pause/resume, `kill -9` across fire times, and backfill, on the real binary.

use crate::file_arrival::{job_id, runs_of};
use crate::support::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

fn cron_spec(name: &str, cron: &str) -> String {
    format!(
        r#"
name: {name}
schedule:
  quartz_cron_expression: "{cron}"
  timezone_id: Europe/Paris
tasks:
  - task_key: tick
    condition_task: {{op: EQUAL_TO, left: "{{{{job.trigger.type}}}}", right: periodic}}
"#
    )
}

fn fire_time(run: &Value) -> i64 {
    run["trigger_info"]["time"]
        .as_i64()
        .unwrap_or_else(|| panic!("no fire time: {run:#}"))
}

/// Waits until the job has at least `n` runs; returns them.
fn at_least(w: &Weir, job: i64, n: usize) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let runs = runs_of(w, job);
        if runs.len() >= n {
            return runs;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job {job} has {} runs, expected {n}; node log:\n{}",
            runs.len(),
            w.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fire times of the runs: distinct, whole seconds.
fn distinct_fire_times(runs: &[Value]) -> BTreeSet<i64> {
    let times: BTreeSet<i64> = runs.iter().map(fire_time).collect();
    assert_eq!(
        times.len(),
        runs.len(),
        "two runs for one fire time: {runs:#?}"
    );
    assert!(times.iter().all(|t| t.rem_euclid(1000) == 0), "{times:?}");
    times
}

fn trigger_state(w: &Weir, name: &str) -> Value {
    let (ok, job) = w.cli_json(&["jobs", "get", name]);
    assert!(ok, "{job:#}");
    job["trigger_state"].clone()
}

#[test]
fn a_per_second_schedule_runs_every_second_and_stops_on_pause() {
    let w = Weir::start();
    w.deploy("tick.yaml", &cron_spec("tick", "* * * * * ?"));
    let id = job_id(&w, "tick");
    let runs = at_least(&w, id, 3);
    let times = distinct_fire_times(&runs);
    for run in &runs {
        assert_eq!(run["trigger"], "PERIODIC", "{run:#}");
        assert_eq!(run["trigger_info"]["kind"], "schedule");
    }
    // The runs finish, and succeed: the task saw `{{job.trigger.type}}` = periodic.
    let first = runs[0]["run_id"].as_i64().unwrap();
    let done = w.wait_for_run(first, Duration::from_secs(30), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    assert_eq!(run_result(&done), "SUCCESS", "{done:#}");
    let state = trigger_state(&w, "tick");
    assert_eq!(state["kind"], "schedule");
    assert_eq!(state["paused"], false);
    assert!(state["next_fire_time"].as_i64().unwrap() > *times.last().unwrap());
    let text = w.cli_ok(&["jobs", "get", "tick"]);
    assert!(text.contains("trigger: schedule, next fire "), "{text}");

    // Pause: once the trigger state shows it, no run starts.
    w.cli_ok(&["jobs", "pause", "tick"]);
    let start = Instant::now();
    loop {
        let s = trigger_state(&w, "tick");
        if s["paused"] == true && s["next_fire_time"].is_null() {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{s:#}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let paused_at = chrono::Utc::now().timestamp_millis();
    let paused = runs_of(&w, id).len();
    std::thread::sleep(Duration::from_millis(2_500));
    assert_eq!(runs_of(&w, id).len(), paused, "a paused schedule fired");

    // Resume: runs again from the next second on; the paused fire times are not caught up.
    let resumed_at = chrono::Utc::now().timestamp_millis();
    w.cli_ok(&["jobs", "resume", "tick"]);
    let runs = at_least(&w, id, paused + 2);
    let times = distinct_fire_times(&runs);
    let while_paused: Vec<i64> = times.range(paused_at + 1..resumed_at).copied().collect();
    assert!(
        while_paused.is_empty(),
        "{while_paused:?} fired while paused"
    );
    assert!(times.range(resumed_at..).count() >= 2, "{times:?}");
}

#[test]
fn kill_9_across_fire_times_gives_one_run_per_fire_time_and_one_catch_up() {
    let mut w = Weir::start();
    w.deploy("tick.yaml", &cron_spec("crashy", "* * * * * ?"));
    let id = job_id(&w, "crashy");
    at_least(&w, id, 2);
    w.kill9();
    std::thread::sleep(Duration::from_millis(3_000));
    w.spawn();
    let down = runs_of(&w, id).len();
    let runs = at_least(&w, id, down + 2);
    let times = distinct_fire_times(&runs);
    // The outage is the widest gap between fire times: the seconds inside it have no runs
    // (no flood), and the run that ends it is the catch-up of the latest missed second.
    let gap_end = times
        .iter()
        .zip(times.iter().skip(1))
        .max_by_key(|(a, b)| *b - *a)
        .map(|(a, b)| {
            assert!(b - a >= 2_000, "missed fire times were run: {times:?}");
            *b
        })
        .unwrap();
    let caught = runs.iter().find(|r| fire_time(r) == gap_end).unwrap();
    assert_eq!(caught["trigger_info"]["catch_up"], true, "{caught:#}");
}

#[test]
fn backfill_runs_each_past_fire_time_once() {
    let w = Weir::start();
    w.deploy("hourly.yaml", &cron_spec("hourly", "0 0 * * * ?"));
    let hour = 3_600_000;
    let now = chrono::Utc::now().timestamp_millis();
    let last = now / hour * hour - hour;
    let first = last - 2 * hour;
    let from = chrono::DateTime::from_timestamp_millis(first)
        .unwrap()
        .to_rfc3339();
    let to = last.to_string();
    let (ok, out) = w.cli_json(&["jobs", "backfill", "hourly", "--from", &from, "--to", &to]);
    assert!(ok, "{out:#}");
    let runs = out["runs"].as_array().unwrap();
    assert_eq!(
        runs.iter()
            .map(|r| r["fire_time"].as_i64().unwrap())
            .collect::<Vec<_>>(),
        [first, first + hour, last]
    );
    assert!(runs.iter().all(|r| r["created"] == true));
    assert_eq!(out["created"], 3);
    let id = job_id(&w, "hourly");
    let run = w.wait_for_run(
        runs[0]["run_id"].as_i64().unwrap(),
        Duration::from_secs(30),
        |r| r["state"]["life_cycle_state"] == "TERMINATED",
    );
    assert_eq!(run["trigger_info"]["backfill"], true);
    assert_eq!(run_result(&run), "SUCCESS", "{run:#}");

    // Again: nothing new.
    let (ok, again) = w.cli_json(&["jobs", "backfill", "hourly", "--from", &from, "--to", &to]);
    assert!(ok, "{again:#}");
    assert_eq!(again["created"], 0);
    assert_eq!(runs_of(&w, id).len(), 3);

    // Bad ranges: a clear error, nothing created.
    let out = w.cli(&["jobs", "backfill", "hourly", "--from", &to, "--to", &from]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the range is reversed"), "{err}");
    let out = w.cli(&[
        "jobs",
        "backfill",
        "hourly",
        "--from",
        "2000-01-01",
        "--to",
        &to,
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than 1000 fire times"), "{err}");
    let out = w.cli(&["jobs", "backfill", "hourly", "--from", "soon", "--to", &to]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from: time \"soon\""));
    assert_eq!(runs_of(&w, id).len(), 3);

    // The API route takes ISO-8601 or milliseconds.
    let (status, body) = w.http(
        "POST",
        "/api/weir/jobs/backfill",
        Some(serde_json::json!({"job_id": id, "from": from, "to": last})),
        None,
    );
    assert_eq!(status, 200, "{body:#}");
    assert_eq!(body["created"], 0);
    let (status, body) = w.http(
        "POST",
        "/api/weir/jobs/backfill",
        Some(serde_json::json!({"job_id": id, "from": last, "to": now + hour})),
        None,
    );
    assert_eq!(status, 400, "{body:#}");
    assert_eq!(body["error_code"], "INVALID_PARAMETER_VALUE");
}

#[test]
fn bad_cron_and_time_zone_are_spec_errors_with_positions() {
    let w = Weir::start();
    let path = w.dir.path().join("bad.yaml");
    std::fs::write(
        &path,
        "name: bad\nschedule:\n  quartz_cron_expression: \"0 61 12 * * ?\"\n  timezone_id: Mars/Olympus\ntasks:\n  - task_key: a\n    condition_task: {op: EQUAL_TO, left: '1', right: '1'}\n",
    )
    .unwrap();
    let out = w.cli(&["deploy", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(
            "bad.yaml:3:27: schedule.quartz_cron_expression: bad Quartz cron expression \
             \"0 61 12 * * ?\": minutes field \"61\": 61 is out of range 0-59"
        ),
        "{err}"
    );
    assert!(err.contains("bad.yaml:4:16: schedule.timezone_id: timezone_id \"Mars/Olympus\" is not an IANA time zone"), "{err}");
    let (ok, jobs) = w.cli_json(&["jobs", "list"]);
    assert!(ok);
    assert_eq!(
        jobs["jobs"].as_array().unwrap().len(),
        0,
        "nothing deployed"
    );
}

#[test]
fn a_continuous_job_runs_back_to_back_and_stops_on_pause() {
    let w = Weir::start();
    w.deploy(
        "loop.yaml",
        "name: loop\ncontinuous: {pause_status: UNPAUSED}\ntasks:\n  - task_key: a\n    condition_task: {op: EQUAL_TO, left: \"{{job.trigger.type}}\", right: continuous}\n",
    );
    let id = job_id(&w, "loop");
    let runs = at_least(&w, id, 3);
    for pair in runs.windows(2) {
        assert_eq!(pair[1]["trigger"], "CONTINUOUS");
        assert_eq!(
            pair[1]["trigger_info"]["previous_run_id"], pair[0]["run_id"],
            "each run follows the previous one"
        );
        let ended = pair[0]["end_time"].as_i64().unwrap();
        let started = pair[1]["start_time"].as_i64().unwrap();
        assert!(ended <= started, "two runs at once: {pair:#?}");
    }
    let first = w.wait_for_run(
        runs[0]["run_id"].as_i64().unwrap(),
        Duration::from_secs(30),
        |r| r["state"]["life_cycle_state"] == "TERMINATED",
    );
    assert_eq!(run_result(&first), "SUCCESS", "{first:#}");

    w.cli_ok(&["jobs", "pause", "loop"]);
    let start = Instant::now();
    while trigger_state(&w, "loop")["paused"] != true {
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    // The run going at the pause may finish; after it, nothing starts.
    let settled = Instant::now();
    let mut count = runs_of(&w, id).len();
    loop {
        std::thread::sleep(Duration::from_millis(1_000));
        let now = runs_of(&w, id).len();
        if now == count {
            break;
        }
        count = now;
        assert!(
            settled.elapsed() < Duration::from_secs(10),
            "still starting runs"
        );
    }
    std::thread::sleep(Duration::from_millis(1_500));
    assert_eq!(
        runs_of(&w, id).len(),
        count,
        "a paused continuous job started a run"
    );
}
