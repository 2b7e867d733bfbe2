//! Alerts end to end: a failing job e-mails (through a real SMTP sink) and posts a webhook (to a
//! real HTTP receiver) exactly once, also across a `kill -9` between the run's failure and the
//! delivery; `weir alerts list`, `/api/weir/alerts` and `/metrics`.

use crate::receivers::{SmtpSink, WebhookReceiver, parse_prometheus};
use crate::support::*;
use serde_json::Value;
use std::time::{Duration, Instant};

fn smtp_env(sink: &SmtpSink) -> Vec<(String, String)> {
    vec![
        ("WEIR_SMTP_URL".into(), sink.url()),
        ("WEIR_SMTP_FROM".into(), "Weir <weir@example.com>".into()),
    ]
}

fn deploy_failing(w: &Weir, hook: &WebhookReceiver, quiet: &WebhookReceiver) {
    let m = module("testtask");
    w.deploy(
        "failing.yaml",
        &format!(
            r#"
name: failing
email_notifications: {{on_failure: [oncall@example.com]}}
webhook_notifications:
  on_failure: [{{url: "{hook}"}}]
  on_success: [{{url: "{quiet}"}}]
tasks:
  - task_key: ingest
    wasm_task: {{module: {m}, parameters: [fail, "3", "cannot read orders.csv"]}}
"#,
            hook = hook.url,
            quiet = quiet.url,
            m = m.display()
        ),
    );
}

/// Waits until `weir alerts list --output json` satisfies `f`.
fn wait_alerts(w: &Weir, args: &[&str], f: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let mut a = vec!["alerts", "list"];
        a.extend(args);
        let (ok, page) = w.cli_json(&a);
        assert!(ok, "{page}");
        let alerts = page["alerts"].as_array().cloned().unwrap_or_default();
        if f(&alerts) {
            return alerts;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "alerts never reached the expected state: {alerts:#?}\nnode log:\n{}",
            w.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn all_delivered(alerts: &[Value], n: usize) -> bool {
    alerts.len() == n && alerts.iter().all(|a| a["status"] == "DELIVERED")
}

fn check_delivery(w: &Weir, run_id: i64, hook: &WebhookReceiver, sink: &SmtpSink) {
    let alerts = wait_alerts(w, &["--job", "failing"], |a| all_delivered(a, 2));
    for a in &alerts {
        assert_eq!(a["run_id"], run_id);
        assert_eq!(a["event"], "on_failure");
        assert_eq!(a["job_name"], "failing");
    }
    let posts = hook.posts();
    assert_eq!(posts.len(), 1, "one POST: {posts:#?}");
    let body = &posts[0].body;
    assert_eq!(body["event_type"], "jobs.on_failure");
    assert_eq!(body["run"]["run_id"], run_id);
    assert_eq!(body["run"]["result_state"], "FAILED");
    assert_eq!(body["job"]["name"], "failing");
    assert_eq!(body["tasks"][0]["task_key"], "ingest");
    assert!(
        body["tasks"][0]["log_tail"]
            .as_str()
            .unwrap()
            .contains("cannot read orders.csv"),
        "{body:#}"
    );
    assert_eq!(
        posts[0].header("idempotency-key"),
        body["idempotency_key"].as_str()
    );
    let mails = sink.messages();
    assert_eq!(mails.len(), 1, "one e-mail: {mails:#?}");
    let mail = &mails[0];
    assert!(mail.contains("To: oncall@example.com"), "{mail}");
    assert!(
        mail.contains(&format!("Subject: [weir] failing: run {run_id} FAILED")),
        "{mail}"
    );
    assert!(mail.contains("cannot read orders.csv"), "{mail}");
}

#[test]
fn a_failing_job_emails_and_posts_exactly_once() {
    let sink = SmtpSink::start();
    let hook = WebhookReceiver::start();
    let quiet = WebhookReceiver::start();
    let w = Weir::start_with("", &smtp_env(&sink));
    deploy_failing(&w, &hook, &quiet);
    let (ok, run) = w.run_wait("failing", &[]);
    assert!(!ok);
    assert_eq!(run_result(&run), "FAILED");
    let run_id = run["run_id"].as_i64().unwrap();
    check_delivery(&w, run_id, &hook, &sink);
    assert!(quiet.posts().is_empty(), "no on_success alert");

    // The text listing and the API.
    let text = w.cli_ok(&["alerts", "list", "--status", "delivered"]);
    assert!(text.starts_with("ALERT"), "{text}");
    assert!(text.contains("email oncall@example.com"), "{text}");
    assert!(text.contains(&format!("webhook {}", hook.url)), "{text}");
    let (status, page) = w.http(
        "GET",
        "/api/weir/alerts?job_name=failing&status=FAILED",
        None,
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(page["alerts"], serde_json::json!([]));
    let (status, err) = w.http("GET", "/api/weir/alerts?status=LOST", None, None);
    assert_eq!(status, 400, "{err}");
    assert!(err["message"].as_str().unwrap().contains("LOST"), "{err}");
    let (status, _) = w.http("GET", "/api/weir/alerts?job_name=nope", None, None);
    assert_eq!(status, 404);

    // /metrics needs the token and counts what happened.
    let (status, _) = w.http("GET", "/metrics", None, Some(""));
    assert_eq!(status, 401);
    let (status, text) = w.http("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    for line in [
        "weir_runs_started_total 1",
        "weir_runs_finished_total{result=\"FAILED\"} 1",
        "weir_task_attempts_total{result=\"FAILED\"} 1",
        "weir_alerts_delivered_total{channel=\"email\"} 1",
        "weir_alerts_delivered_total{channel=\"webhook\"} 1",
        "weir_runs_active{state=\"QUEUED\"} 0",
        "weir_instances_alive 0",
        "weir_run_duration_seconds_count 1",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in:\n{text}"
        );
    }
    // The reference parser reads it, with the declared types.
    let families = parse_prometheus(&text);
    let family = |name: &str| {
        families
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap_or_else(|| panic!("no family {name} in {families:#}"))
            .clone()
    };
    assert_eq!(family("weir_runs_finished")["type"], "counter");
    assert_eq!(family("weir_run_duration_seconds")["type"], "histogram");
    assert_eq!(family("weir_runs_active")["type"], "gauge");
    let finished = family("weir_runs_finished");
    let failed = finished["samples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["labels"]["result"] == "FAILED")
        .unwrap()
        .clone();
    assert_eq!(failed["value"], 1.0);
}

#[test]
fn alerts_survive_a_kill_between_the_failure_and_the_delivery() {
    let sink = SmtpSink::start();
    let hook = WebhookReceiver::start();
    let quiet = WebhookReceiver::start();
    let mut env = smtp_env(&sink);
    env.push(("WEIR_FAULT".into(), "alerts.kill_before_delivery".into()));
    let mut w = Weir::start_with("", &env);
    deploy_failing(&w, &hook, &quiet);
    let (ok, started) = w.cli_json(&["jobs", "run", "failing"]);
    assert!(ok, "{started}");
    let run_id = started["run_id"].as_i64().unwrap();
    // The run fails, its alerts are recorded, the node claims one and kills itself (SIGKILL).
    let status = w.wait_exit(Duration::from_secs(60));
    assert!(!status.success());
    assert!(w.log().contains("weir.alerts.fault"), "{}", w.log());
    assert!(hook.posts().is_empty());
    assert!(sink.messages().is_empty());

    w.set_env(&smtp_env(&sink));
    w.spawn();
    let run = w.wait_for_run(run_id, Duration::from_secs(30), |r| {
        r["state"]["life_cycle_state"] == "TERMINATED"
    });
    assert_eq!(run_result(&run), "FAILED");
    check_delivery(&w, run_id, &hook, &sink);
}

#[test]
fn an_unconfigured_smtp_server_fails_email_alerts_and_nothing_else() {
    let hook = WebhookReceiver::start();
    let quiet = WebhookReceiver::start();
    let w = Weir::start();
    deploy_failing(&w, &hook, &quiet);
    let (ok, run) = w.run_wait("failing", &[]);
    assert!(!ok);
    assert_eq!(run_result(&run), "FAILED");
    let alerts = wait_alerts(&w, &[], |a| {
        a.len() == 2 && a.iter().all(|x| x["status"] != "PENDING")
    });
    let email = alerts.iter().find(|a| a["channel"] == "email").unwrap();
    assert_eq!(email["status"], "FAILED");
    assert_eq!(email["attempts"], 1);
    assert!(
        email["last_error"]
            .as_str()
            .unwrap()
            .contains("no SMTP server configured"),
        "{email}"
    );
    let webhook = alerts.iter().find(|a| a["channel"] == "webhook").unwrap();
    assert_eq!(webhook["status"], "DELIVERED");
    assert_eq!(hook.posts().len(), 1);
}
