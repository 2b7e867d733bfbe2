//! The alert service against a real SQLite store, a real HTTP receiver and (for e-mail) a real
//! SMTP sink (aiosmtpd, `scripts/services/smtp.sh`); time on a manual clock.

use super::*;
use crate::clock::ManualClock;
use crate::spec::JobSettings;
use crate::store::suite::{claim_ids, deploy, finish, progress, start};
use crate::store::{AlertFilter, AlertStatus, JobId, ResultState, RunProgress, RunWrite, TaskLogs};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

const T0: Millis = 1_700_000_000_000;
const NODE: &str = "n1";

/// What a receiver got: headers and JSON body of each POST.
type Received = Arc<Mutex<Vec<(HeaderMap, Value)>>>;

/// A webhook receiver on a free port, answering the given statuses in turn (then 200), or
/// never answering (`hang`).
struct Receiver {
    url: String,
    got: Received,
}

async fn receiver(statuses: Vec<u16>, hang: bool) -> Receiver {
    let got: Received = Arc::default();
    let queue = Arc::new(Mutex::new(VecDeque::from(statuses)));
    let state = (got.clone(), queue);
    let app = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(
                move |axum::extract::State((got, queue)): axum::extract::State<(
                    Received,
                    Arc<Mutex<VecDeque<u16>>>,
                )>,
                      headers: HeaderMap,
                      body: axum::body::Bytes| async move {
                    let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    got.lock().unwrap().push((headers, value));
                    if hang {
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    let status = queue.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                },
            ),
        )
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

struct Setup {
    store: Arc<dyn Store>,
    clock: ManualClock,
    alerts: Option<Alerts>,
    _dir: tempfile::TempDir,
}

fn config() -> AlertsConfig {
    let mut c = AlertsConfig::new(NODE, "http://127.0.0.1:8181");
    c.max_attempts = 3;
    c.retry_base = Duration::from_secs(1);
    c.attempt_timeout = Duration::from_millis(500);
    c.poll_interval = Duration::from_millis(20);
    c
}

async fn setup(config: AlertsConfig) -> Setup {
    crate::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::sqlite::SqliteStore::open(&dir.path().join("weir.db"))
        .await
        .unwrap();
    let clock = ManualClock::at(T0);
    let alerts = Alerts::start(store.clone(), Arc::new(clock.clone()), config).unwrap();
    Setup {
        store,
        clock,
        alerts: Some(alerts),
        _dir: dir,
    }
}

fn job(extra: Value) -> JobSettings {
    let mut base = json!({"name": "orders", "tasks": [{"task_key": "ingest", "wasm_task": {"module": "sha256:00"}}]});
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).unwrap()
}

impl Setup {
    /// Creates a run of a new job, claims it and makes it RUNNING (started now).
    async fn running(&self, settings: JobSettings) -> (JobId, RunId) {
        let deployed = deploy(&self.store, settings).await;
        let now = self.clock.now_ms();
        let run_id = start(&self.store, &deployed, now).await.run_id;
        assert!(claim_ids(&self.store, NODE, now).await.contains(&run_id));
        let mut running = progress(LifeCycleState::Running, None);
        running.start_time = Some(now);
        self.write(run_id, running, Vec::new()).await;
        (deployed.0, run_id)
    }

    async fn write(&self, run_id: RunId, progress: RunProgress, logs: Vec<(RunId, TaskLogs)>) {
        let mut tasks = Vec::new();
        for (id, _) in &logs {
            let mut t = self.store.get_task_run(*id).await.unwrap().unwrap();
            t.life_cycle_state = LifeCycleState::Terminated;
            t.result_state = Some(ResultState::Failed);
            t.state_message = "exited with code 3".into();
            tasks.push(t);
        }
        self.store
            .write_run(RunWrite {
                run_id,
                node: NODE.into(),
                progress: Some(progress),
                tasks,
                logs,
                release: false,
            })
            .await
            .unwrap();
    }

    /// Fails the run's only task with logs, then the run.
    async fn fail(&self, run_id: RunId) {
        let task = self.store.get_run(run_id).await.unwrap().unwrap().tasks[0].task_run_id;
        let logs = TaskLogs {
            stdout: String::new(),
            stderr: "reading orders\nboom: no such table <orders>\n".into(),
            truncated: false,
        };
        let mut p = progress(LifeCycleState::Running, None);
        p.start_time = Some(T0);
        self.write(run_id, p, vec![(task, logs)]).await;
        finish(
            &self.store,
            NODE,
            run_id,
            ResultState::Failed,
            self.clock.now_ms(),
        )
        .await;
    }

    async fn alerts(&self) -> Vec<AlertRecord> {
        let mut all = self
            .store
            .list_alerts(&AlertFilter::default())
            .await
            .unwrap();
        all.reverse();
        all
    }

    /// Waits until `f` holds for the recorded alerts (oldest first).
    async fn wait_for(&self, what: &str, f: impl Fn(&[AlertRecord]) -> bool) -> Vec<AlertRecord> {
        let started = Instant::now();
        loop {
            let all = self.alerts().await;
            if f(&all) {
                return all;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "never saw {what}; alerts: {all:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the planner has handled every run event so far.
    async fn planned(&self) {
        let last = self
            .store
            .run_events(0, 100_000)
            .await
            .unwrap()
            .last()
            .map_or(0, |e| e.seq);
        let started = Instant::now();
        while self.store.event_cursor(CONSUMER).await.unwrap() < last {
            assert!(started.elapsed() < Duration::from_secs(30), "planner stuck");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn delivered(all: &[AlertRecord], n: usize) -> bool {
    all.len() == n && all.iter().all(|a| a.status == AlertStatus::Delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_posts_its_start_and_failure_once() {
    let s = setup(config()).await;
    let hook = receiver(vec![], false).await;
    let other = receiver(vec![], false).await;
    let (job_id, run_id) = s
        .running(job(json!({"webhook_notifications": {
            "on_start": [{"url": hook.url}],
            "on_failure": [{"url": hook.url}],
            "on_success": [{"url": other.url}]}})))
        .await;
    s.fail(run_id).await;
    let all = s.wait_for("two deliveries", |a| delivered(a, 2)).await;
    assert_eq!(all[0].event, "on_start");
    assert_eq!(all[1].event, "on_failure");
    assert!(
        all.iter()
            .all(|a| a.attempts == 1 && a.job_id == Some(job_id))
    );

    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 2, "each alert once: {got:#?}");
    // Deliveries run concurrently: find each by its event.
    let of = |event: &str| {
        got.iter()
            .find(|(_, b)| b["event_type"] == event)
            .cloned()
            .unwrap_or_else(|| panic!("no {event} in {got:#?}"))
    };
    let (headers, body) = &of("jobs.on_failure");
    let (_, start_body) = &of("jobs.on_start");
    assert_eq!(body["event_type"], "jobs.on_failure");
    assert_eq!(body["payload_version"], 1);
    assert_eq!(body["job"], json!({"job_id": job_id, "name": "orders"}));
    assert_eq!(body["run"]["run_id"], run_id);
    assert_eq!(body["run"]["result_state"], "FAILED");
    assert_eq!(body["run"]["life_cycle_state"], "TERMINATED");
    assert_eq!(
        body["run"]["run_page_url"],
        format!("http://127.0.0.1:8181/api/2.2/jobs/runs/get?run_id={run_id}")
    );
    assert_eq!(body["tasks"][0]["task_key"], "ingest");
    assert_eq!(body["tasks"][0]["result_state"], "FAILED");
    assert_eq!(body["tasks"][0]["state_message"], "exited with code 3");
    assert_eq!(
        body["tasks"][0]["log_tail"],
        "reading orders\nboom: no such table <orders>"
    );
    let key = body["idempotency_key"].as_str().unwrap();
    assert_eq!(headers["idempotency-key"], key);
    assert_eq!(headers["x-weir-event"], "on_failure");
    assert_eq!(start_body["run"]["life_cycle_state"], "RUNNING");
    assert_ne!(start_body["idempotency_key"], body["idempotency_key"]);
    assert!(other.got.lock().unwrap().is_empty(), "no on_success");

    // A restarted service finds nothing new to send.
    let mut s = s;
    s.alerts.take().unwrap().shutdown().await;
    s.alerts = Some(Alerts::start(s.store.clone(), Arc::new(s.clock.clone()), config()).unwrap());
    let (_, quiet) = s.running(job(json!({"name": "quiet"}))).await;
    finish(&s.store, NODE, quiet, ResultState::Success, T0).await;
    s.planned().await;
    assert_eq!(s.alerts().await.len(), 2);
    assert_eq!(hook.got.lock().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notification_settings_silence_canceled_and_skipped_runs() {
    let s = setup(config()).await;
    let hook = receiver(vec![], false).await;
    let hooks = json!({"on_failure": [{"url": hook.url}]});
    let filtered = json!({"no_alert_for_canceled_runs": true, "no_alert_for_skipped_runs": true});
    let (_, quiet_cancel) = s
        .running(job(
            json!({"name": "a", "webhook_notifications": hooks, "notification_settings": filtered}),
        ))
        .await;
    finish(&s.store, NODE, quiet_cancel, ResultState::Canceled, T0).await;
    let (_, loud_cancel) = s
        .running(job(json!({"name": "b", "webhook_notifications": hooks})))
        .await;
    finish(&s.store, NODE, loud_cancel, ResultState::Canceled, T0).await;
    // A limit of 0 skips every run.
    for (name, settings) in [("c", json!(null)), ("d", filtered.clone())] {
        let mut spec =
            job(json!({"name": name, "webhook_notifications": hooks, "max_concurrent_runs": 0}));
        if !settings.is_null() {
            spec.notification_settings = serde_json::from_value(settings).unwrap();
        }
        let deployed = deploy(&s.store, spec).await;
        let created = start(&s.store, &deployed, T0).await;
        assert_eq!(created.life_cycle_state, LifeCycleState::Skipped);
    }
    s.planned().await;
    let all = s.wait_for("two deliveries", |a| delivered(a, 2)).await;
    let runs: Vec<_> = all
        .iter()
        .map(|a| a.payload["job"]["name"].clone())
        .collect();
    assert_eq!(runs, vec![json!("b"), json!("c")]);
    assert_eq!(all[1].payload["run"]["life_cycle_state"], "SKIPPED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_warnings_fire_once_while_the_run_is_still_running() {
    let s = setup(config()).await;
    let hook = receiver(vec![], false).await;
    let (_, run_id) = s
        .running(job(json!({
            "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]},
            "webhook_notifications": {"on_duration_warning_threshold_exceeded": [{"url": hook.url}]}})))
        .await;
    s.planned().await;
    s.clock.advance(60_000);
    // Exactly at the threshold the rule holds (GREATER_THAN); let the planner look.
    let (_, marker) = s.running(job(json!({"name": "marker"}))).await;
    s.planned().await;
    assert!(s.alerts().await.is_empty(), "no warning at exactly 60 s");
    s.clock.advance(1_000);
    let all = s.wait_for("the warning", |a| delivered(a, 1)).await;
    assert_eq!(all[0].event, "on_duration_warning_threshold_exceeded");
    let body = hook.got.lock().unwrap()[0].1.clone();
    assert_eq!(
        body["event_type"],
        "jobs.on_duration_warning_threshold_exceeded"
    );
    assert_eq!(body["run"]["run_id"], run_id);
    assert_eq!(body["run"]["life_cycle_state"], "RUNNING");
    assert_eq!(body["run"]["duration_ms"], 61_000);
    assert_eq!(
        body["health"],
        json!({"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60})
    );
    // Later, and after the run ends, nothing more.
    s.clock.advance(600_000);
    finish(
        &s.store,
        NODE,
        run_id,
        ResultState::Success,
        s.clock.now_ms(),
    )
    .await;
    finish(
        &s.store,
        NODE,
        marker,
        ResultState::Success,
        s.clock.now_ms(),
    )
    .await;
    s.planned().await;
    assert_eq!(s.alerts().await.len(), 1);

    // A run that ends before its threshold never warns.
    let (_, quick) = s
        .running(job(json!({
            "name": "quick",
            "health": {"rules": [{"metric": "RUN_DURATION_SECONDS", "op": "GREATER_THAN", "value": 60}]},
            "webhook_notifications": {"on_duration_warning_threshold_exceeded": [{"url": hook.url}]}})))
        .await;
    s.planned().await;
    finish(
        &s.store,
        NODE,
        quick,
        ResultState::Success,
        s.clock.now_ms(),
    )
    .await;
    s.planned().await;
    s.clock.advance(120_000);
    let (_, marker) = s.running(job(json!({"name": "marker2"}))).await;
    finish(
        &s.store,
        NODE,
        marker,
        ResultState::Success,
        s.clock.now_ms(),
    )
    .await;
    s.planned().await;
    assert_eq!(s.alerts().await.len(), 1);
    assert_eq!(hook.got.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_with_backoff_until_delivered() {
    let s = setup(config()).await;
    let hook = receiver(vec![500, 503], false).await;
    let (_, run_id) = s
        .running(job(
            json!({"webhook_notifications": {"on_failure": [{"url": hook.url}]}}),
        ))
        .await;
    finish(&s.store, NODE, run_id, ResultState::Failed, T0).await;
    let all = s
        .wait_for("a first failed attempt", |a| {
            a.len() == 1 && a[0].attempts == 1
        })
        .await;
    assert_eq!(all[0].status, AlertStatus::Pending);
    assert!(
        all[0].last_error.as_deref().unwrap().contains("500"),
        "{all:?}"
    );
    assert_eq!(
        all[0].next_attempt_time,
        T0 + 1_000,
        "1 s after the first failure"
    );
    s.clock.advance(1_000);
    let all = s
        .wait_for("a second failed attempt", |a| a[0].attempts == 2)
        .await;
    assert_eq!(all[0].next_attempt_time, T0 + 1_000 + 2_000, "doubled");
    s.clock.advance(2_000);
    let all = s.wait_for("the delivery", |a| delivered(a, 1)).await;
    assert_eq!(all[0].attempts, 3);
    let got = hook.got.lock().unwrap().clone();
    assert_eq!(got.len(), 3);
    assert!(
        got.windows(2)
            .all(|w| w[0].0["idempotency-key"] == w[1].0["idempotency-key"]),
        "every attempt carries the same idempotency key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_hanging_and_refusing_receivers_end_failed() {
    let s = setup(config()).await;
    let hanging = receiver(vec![], true).await;
    let refusing = receiver(vec![404], false).await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let (_, run_id) = s
        .running(job(json!({
            "webhook_notifications": {"on_failure": [{"url": hanging.url}, {"url": closed}, {"url": refusing.url}]},
            "email_notifications": {"on_failure": ["oncall@example.com"]}})))
        .await;
    finish(&s.store, NODE, run_id, ResultState::Failed, T0).await;
    // Attempts 1 and 2 fail and are retried on the clock; the third is the last.
    for _ in 0..2 {
        s.wait_for("all attempts made", |a| {
            a.len() == 4
                && a.iter().all(|x| {
                    x.status == AlertStatus::Failed
                        || (x.status == AlertStatus::Pending
                            && x.attempts > 0
                            && x.next_attempt_time > s.clock.now_ms())
                })
        })
        .await;
        s.clock.advance(10_000);
    }
    let all = s
        .wait_for("every alert failed", |a| {
            a.len() == 4 && a.iter().all(|x| x.status == AlertStatus::Failed)
        })
        .await;
    let by_dest = |d: &str| all.iter().find(|a| a.destination == d).unwrap();
    let hang = by_dest(&hanging.url);
    assert_eq!(hang.attempts, 3);
    assert!(
        hang.last_error.as_deref().unwrap().contains("timed out"),
        "{hang:?}"
    );
    assert!(
        hang.last_error
            .as_deref()
            .unwrap()
            .contains("gave up after 3 attempts")
    );
    let refused = by_dest(&closed);
    assert_eq!(refused.attempts, 3);
    assert!(
        refused
            .last_error
            .as_deref()
            .unwrap()
            .contains("cannot connect"),
        "{refused:?}"
    );
    let not_found = by_dest(&refusing.url);
    assert_eq!(not_found.attempts, 1, "a 4xx is not retried");
    assert!(not_found.last_error.as_deref().unwrap().contains("404"));
    let email = by_dest("oncall@example.com");
    assert_eq!(email.attempts, 1);
    assert!(
        email
            .last_error
            .as_deref()
            .unwrap()
            .contains("no SMTP server configured"),
        "{email:?}"
    );
    assert_eq!(
        s.store
            .get_run(run_id)
            .await
            .unwrap()
            .unwrap()
            .run
            .result_state,
        Some(ResultState::Failed),
        "the run is unaffected"
    );
}

/// The SMTP sink of the tests: aiosmtpd storing messages in a Maildir.
struct SmtpSink {
    port: u16,
    maildir: tempfile::TempDir,
    child: std::process::Child,
}

impl SmtpSink {
    fn start() -> SmtpSink {
        let binary = std::env::var("WEIR_TEST_SMTP_SERVER")
            .ok()
            .filter(|p| std::path::Path::new(p).exists())
            .unwrap_or_else(|| {
                let default = format!(
                    "{}/.cache/weir-tools/venv/bin/aiosmtpd",
                    std::env::var("HOME").unwrap_or_default()
                );
                assert!(
                    std::path::Path::new(&default).exists(),
                    "no SMTP sink for the tests: run `bash scripts/services/smtp.sh` (it installs \
                 aiosmtpd into ~/.cache/weir-tools/venv and prints WEIR_TEST_SMTP_SERVER), or use \
                 scripts/test.sh"
                );
                default
            });
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = tempfile::tempdir().unwrap();
        let child = std::process::Command::new(binary)
            .args([
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir.path().join("box"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "aiosmtpd did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            port,
            maildir,
            child,
        }
    }

    fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("box/new");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .map(|d| d.map_while(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_run_emails_each_recipient_once() {
    let sink = SmtpSink::start();
    let mut c = config();
    c.smtp = Some(SmtpSettings {
        url: format!("smtp://127.0.0.1:{}", sink.port),
        from: "Weir <weir@example.com>".into(),
    });
    c.attempt_timeout = Duration::from_secs(10);
    let s = setup(c).await;
    let (_, run_id) = s
        .running(job(json!({"email_notifications": {"on_failure": ["oncall@example.com", "data@example.com"]}})))
        .await;
    s.fail(run_id).await;
    s.wait_for("two e-mails", |a| delivered(a, 2)).await;
    let mails = sink.messages();
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let to_oncall = mails
        .iter()
        .find(|m| m.contains("To: oncall@example.com"))
        .expect("a mail to oncall");
    assert!(
        to_oncall.contains("From: Weir <weir@example.com>"),
        "{to_oncall}"
    );
    assert!(
        to_oncall.contains(&format!("Subject: [weir] orders: run {run_id} FAILED")),
        "{to_oncall}"
    );
    assert!(to_oncall.contains("multipart/alternative"), "{to_oncall}");
    assert!(to_oncall.contains("text/html"), "{to_oncall}");
    assert!(to_oncall.contains("ingest (task run"), "{to_oncall}");
    assert!(to_oncall.contains("boom: no such table"), "{to_oncall}");
    assert!(
        to_oncall.contains("@weir.alerts>"),
        "Message-ID from the idempotency key"
    );
}

#[test]
fn backoff_doubles_up_to_the_cap() {
    let mut c = AlertsConfig::new("n", "http://h");
    c.retry_base = Duration::from_secs(2);
    c.retry_max = Duration::from_secs(10);
    let waits: Vec<u64> = (1..=5).map(|n| c.backoff(n).as_secs()).collect();
    assert_eq!(waits, vec![2, 4, 8, 10, 10]);
}
