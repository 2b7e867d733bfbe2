//! What an alert says: the webhook body (versioned JSON, a superset of Databricks' job webhook
//! payload) and the e-mail written from it.
//!
//! Webhook body, `payload_version` 1:
//! ```json
//! {"event_type": "jobs.on_failure", "payload_version": 1, "idempotency_key": "…",
//!  "timestamp": 1733100000000,
//!  "job": {"job_id": 3, "name": "orders"},
//!  "run": {"run_id": 41, "run_name": "orders", "parent_run_id": null,
//!          "life_cycle_state": "TERMINATED", "result_state": "FAILED",
//!          "state_message": "…", "trigger": "ONE_TIME", "start_time": …, "end_time": …,
//!          "duration_ms": …, "run_page_url": "http://127.0.0.1:8181/api/2.2/jobs/runs/get?run_id=41"},
//!  "tasks": [{"task_key": "ingest", "run_id": 42, "attempt_number": 0,
//!             "life_cycle_state": "TERMINATED", "result_state": "FAILED",
//!             "state_message": "exited with code 3", "log_tail": "…"}],
//!  "health": {"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 600}}
//! ```
//! `health` is present for duration warnings only; `log_tail` (the last lines of a failed task's
//! stderr, else stdout) for failed and timed-out tasks.

use super::plan::AlertEvent;
use crate::store::{Millis, ResultState, RunId, RunSnapshot, TaskLogs, TaskRunRecord};
use serde_json::{Value, json};
use sha2::Digest;
use std::collections::BTreeMap;

/// The version of the webhook body's shape; bumped on any incompatible change.
pub const PAYLOAD_VERSION: u32 = 1;
/// Lines of a failed task's log kept in an alert.
pub const LOG_TAIL_LINES: usize = 20;

/// The latest attempt of each top-level task, in plan order.
pub fn latest_attempts(snapshot: &RunSnapshot) -> Vec<&TaskRunRecord> {
    let mut latest: BTreeMap<&str, &TaskRunRecord> = BTreeMap::new();
    for t in snapshot.tasks.iter().filter(|t| t.iteration.is_none()) {
        let newer = latest.get(t.task_key.as_str()).is_none_or(|cur| {
            (t.repair_id, t.attempt_number) >= (cur.repair_id, cur.attempt_number)
        });
        if newer {
            latest.insert(t.task_key.as_str(), t);
        }
    }
    let order = &snapshot.run.plan.settings.tasks;
    order
        .iter()
        .filter_map(|task| latest.get(task.task_key.as_str()).copied())
        .collect()
}

/// Whether a task attempt failed by itself (its error and logs explain the run's failure).
pub fn failed_by_itself(t: &TaskRunRecord) -> bool {
    matches!(
        t.result_state,
        Some(ResultState::Failed) | Some(ResultState::Timedout)
    )
}

/// The last `n` lines of a task's logs: stderr when it has any, else stdout.
pub fn log_tail(logs: &TaskLogs, n: usize) -> String {
    let text = if logs.stderr.trim().is_empty() {
        &logs.stdout
    } else {
        &logs.stderr
    };
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The body of an alert about `snapshot` for `event` at `time`. `logs` holds the logs of the
/// failed tasks; `base_url` is the node's API address.
pub fn build(
    event: AlertEvent,
    snapshot: &RunSnapshot,
    time: Millis,
    logs: &BTreeMap<RunId, TaskLogs>,
    base_url: &str,
) -> Value {
    let run = &snapshot.run;
    let settings = &run.plan.settings;
    let tasks: Vec<Value> = latest_attempts(snapshot)
        .into_iter()
        .map(|t| {
            let mut v = json!({
                "task_key": t.task_key,
                "run_id": t.task_run_id,
                "attempt_number": t.attempt_number,
                "life_cycle_state": t.life_cycle_state.as_str(),
                "result_state": t.result_state.map(ResultState::as_str),
                "state_message": t.state_message,
            });
            if let Some(l) = logs.get(&t.task_run_id) {
                v["log_tail"] = json!(log_tail(l, LOG_TAIL_LINES));
            }
            v
        })
        .collect();
    let duration = run
        .start_time
        .map(|s| run.end_time.unwrap_or(time).saturating_sub(s));
    let mut body = json!({
        "event_type": event.event_type(),
        "payload_version": PAYLOAD_VERSION,
        "timestamp": time,
        "job": {"job_id": run.job_id, "name": settings.name},
        "run": {
            "run_id": run.run_id,
            "run_name": run.run_name,
            "parent_run_id": run.parent.map(|p| p.run_id),
            "life_cycle_state": run.life_cycle_state.as_str(),
            "result_state": run.result_state.map(ResultState::as_str),
            "state_message": run.state_message,
            "trigger": run.trigger.as_str(),
            "start_time": run.start_time,
            "end_time": run.end_time,
            "duration_ms": duration,
            "run_page_url": format!("{}/api/2.2/jobs/runs/get?run_id={}", base_url.trim_end_matches('/'), run.run_id),
        },
        "tasks": tasks,
    });
    if event == AlertEvent::OnDurationWarningThresholdExceeded
        && let Some(seconds) = super::plan::duration_threshold_seconds(settings)
    {
        body["health"] = json!({
            "metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": seconds,
        });
    }
    body
}

/// The idempotency key of an alert: a stable hash of its dedupe key, the same on every attempt
/// and every node (receivers dedupe on it).
pub fn idempotency_key(dedupe_key: &str) -> String {
    let digest = sha2::Sha256::digest(dedupe_key.as_bytes());
    hex::encode(&digest[..16])
}

/// An e-mail's subject, plain text and HTML, written from a webhook body.
pub fn email(payload: &Value) -> (String, String, String) {
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let event = s(&payload["event_type"]);
    let job = s(&payload["job"]["name"]);
    let run = &payload["run"];
    let run_id = s(&run["run_id"]);
    let headline = match event.as_str() {
        "jobs.on_start" => format!("{job}: run {run_id} started"),
        "jobs.on_success" => format!("{job}: run {run_id} succeeded"),
        "jobs.on_duration_warning_threshold_exceeded" => format!(
            "{job}: run {run_id} is running longer than {} seconds",
            s(&payload["health"]["value"])
        ),
        _ => {
            let state = match s(&run["result_state"]) {
                r if r.is_empty() => s(&run["life_cycle_state"]),
                r => r,
            };
            format!("{job}: run {run_id} {state}")
        }
    };
    let subject = format!("[weir] {headline}");
    let mut facts: Vec<(String, String)> = vec![
        (
            "Job".into(),
            format!("{job} (job_id {})", s(&payload["job"]["job_id"])),
        ),
        (
            "Run".into(),
            format!("{} (run_id {run_id})", s(&run["run_name"])),
        ),
        (
            "State".into(),
            format!(
                "{} {}",
                s(&run["life_cycle_state"]),
                s(&run["result_state"])
            )
            .trim()
            .to_string(),
        ),
        ("Trigger".into(), s(&run["trigger"])),
    ];
    if !s(&run["state_message"]).is_empty() {
        facts.push(("Message".into(), s(&run["state_message"])));
    }
    if let Some(ms) = run["duration_ms"].as_i64() {
        facts.push(("Duration".into(), format!("{:.1} s", ms as f64 / 1000.0)));
    }
    facts.push(("Run details".into(), s(&run["run_page_url"])));
    let failed: Vec<&Value> = payload["tasks"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter(|t| matches!(t["result_state"].as_str(), Some("FAILED" | "TIMEDOUT")))
                .collect()
        })
        .unwrap_or_default();

    let mut text = format!("{headline}\n\n");
    for (k, v) in &facts {
        text.push_str(&format!("{k}: {v}\n"));
    }
    let mut html = format!("<html><body><h2>{}</h2><table>", escape(&headline));
    for (k, v) in &facts {
        let value = if k == "Run details" {
            format!("<a href=\"{0}\">{0}</a>", escape(v))
        } else {
            escape(v)
        };
        html.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{value}</td></tr>",
            escape(k)
        ));
    }
    html.push_str("</table>");
    if !failed.is_empty() {
        text.push_str("\nFailed tasks:\n");
        html.push_str("<h3>Failed tasks</h3>");
        for t in failed {
            let line = format!(
                "{} (task run {}, attempt {}): {} {}",
                s(&t["task_key"]),
                s(&t["run_id"]),
                s(&t["attempt_number"]),
                s(&t["result_state"]),
                s(&t["state_message"])
            );
            text.push_str(&format!("- {line}\n"));
            html.push_str(&format!("<p><b>{}</b></p>", escape(&line)));
            let tail = s(&t["log_tail"]);
            if !tail.is_empty() {
                text.push_str(&format!("  last log lines:\n{}\n", indent(&tail)));
                html.push_str(&format!("<pre>{}</pre>", escape(&tail)));
            }
        }
    }
    text.push_str(&format!(
        "\nSent by Weir (alert {}).\n",
        s(&payload["idempotency_key"])
    ));
    html.push_str("</body></html>");
    (subject, text, html)
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_tails_prefer_stderr_and_keep_the_last_lines() {
        let logs = TaskLogs {
            stdout: "out\n".into(),
            stderr: (1..=30).map(|i| format!("line {i}\n")).collect(),
            truncated: false,
        };
        let tail = log_tail(&logs, 3);
        assert_eq!(tail, "line 28\nline 29\nline 30");
        let only_out = TaskLogs {
            stdout: "a\nb\n".into(),
            ..Default::default()
        };
        assert_eq!(log_tail(&only_out, 5), "a\nb");
    }

    #[test]
    fn emails_name_the_job_run_and_failed_tasks() {
        let payload = json!({
            "event_type": "jobs.on_failure",
            "idempotency_key": "abc",
            "job": {"job_id": 3, "name": "orders"},
            "run": {"run_id": 41, "run_name": "orders", "life_cycle_state": "TERMINATED",
                    "result_state": "FAILED", "trigger": "ONE_TIME", "state_message": "ingest failed",
                    "duration_ms": 1500, "run_page_url": "http://h/api/2.2/jobs/runs/get?run_id=41"},
            "tasks": [
                {"task_key": "ingest", "run_id": 42, "attempt_number": 1, "result_state": "FAILED",
                 "state_message": "exited with code 3", "log_tail": "boom <x>"},
                {"task_key": "publish", "run_id": 43, "attempt_number": 0, "result_state": "UPSTREAM_FAILED"}
            ]
        });
        let (subject, text, html) = email(&payload);
        assert_eq!(subject, "[weir] orders: run 41 FAILED");
        assert!(text.contains("Job: orders (job_id 3)"), "{text}");
        assert!(
            text.contains("- ingest (task run 42, attempt 1): FAILED exited with code 3"),
            "{text}"
        );
        assert!(text.contains("    boom <x>"), "{text}");
        assert!(!text.contains("publish"), "{text}");
        assert!(text.contains("Duration: 1.5 s"), "{text}");
        assert!(html.contains("<pre>boom &lt;x&gt;</pre>"), "{html}");
        assert!(
            html.contains("<a href=\"http://h/api/2.2/jobs/runs/get?run_id=41\">"),
            "{html}"
        );
    }

    #[test]
    fn idempotency_keys_are_stable_and_distinct() {
        assert_eq!(idempotency_key("a"), idempotency_key("a"));
        assert_ne!(idempotency_key("a"), idempotency_key("b"));
        assert_eq!(idempotency_key("a").len(), 32);
    }
}
