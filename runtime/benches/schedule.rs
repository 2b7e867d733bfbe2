//! Schedule benchmarks of a real `weir serve` process:
//! - a per-second schedule (`* * * * * ?`) over `FIRES` fire times: fire time -> run created
//!   (the run's `created_time`, engine clock, ms) and fire time -> task running (the task reads
//!   the wall clock first thing: `testtask arrived` records `started_us`);
//! - 1,000 jobs with a schedule firing once a minute (`0 * * * * ?`, next fire an hour or more
//!   away), idle: RSS and CPU of the node, and no wasm instance alive between runs.
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench schedule`.

use serde_json::{Value, json};
use std::time::{Duration, Instant};

mod support;
use support::*;

const FIRES: usize = 60;
const IDLE_JOBS: usize = 1_000;

impl Node {
    fn scheduled_job(&self, name: &str, cron: &str, digest: &str) -> i64 {
        self.post(
            "/api/2.2/jobs/create",
            json!({
                "name": name,
                "max_concurrent_runs": 10,
                "schedule": {"quartz_cron_expression": cron, "timezone_id": "UTC"},
                "tasks": [{"task_key": "t", "wasm_task": {"module": digest, "parameters": ["arrived"]}}],
            }),
        )["job_id"]
            .as_i64()
            .unwrap()
    }

    /// The job's finished runs, oldest first.
    fn finished_runs(&self, job_id: i64) -> Vec<Value> {
        let list = self.get(&format!(
            "/api/2.2/jobs/runs/list?job_id={job_id}&limit=1000&completed_only=true"
        ));
        let mut ids: Vec<i64> = list["runs"]
            .as_array()
            .map(|r| r.iter().filter_map(|r| r["run_id"].as_i64()).collect())
            .unwrap_or_default();
        ids.sort();
        ids.iter()
            .map(|id| self.get(&format!("/api/2.2/jobs/runs/get?run_id={id}")))
            .collect()
    }
}

fn per_second() -> Vec<String> {
    let node = Node::start("", &[]);
    let digest = node.push_testtask();
    let job = node.scheduled_job("bench-tick", "* * * * * ?", &digest);
    // The first two fires warm the module cache; then FIRES more.
    let deadline = Instant::now() + Duration::from_secs(FIRES as u64 + 120);
    let runs = loop {
        let runs = node.finished_runs(job);
        if runs.len() >= FIRES + 2 {
            break runs;
        }
        assert!(
            Instant::now() < deadline,
            "only {} runs finished",
            runs.len()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut created = Vec::new();
    let mut started = Vec::new();
    let mut catch_ups = 0;
    for run in &runs[2..FIRES + 2] {
        let fire_ms = run["trigger_info"]["time"].as_i64().unwrap();
        if run["trigger_info"]["catch_up"] == true {
            catch_ups += 1;
        }
        created.push((run["created_time"].as_i64().unwrap() - fire_ms) * 1000);
        let started_us = run["tasks"][0]["values"]["started_us"]
            .as_i64()
            .unwrap_or_else(|| panic!("no started_us: {run:#}"));
        started.push(started_us - fire_ms * 1000);
    }
    vec![
        summary(
            "per-second schedule: fire time -> run created (ms resolution)",
            created,
        ),
        summary("per-second schedule: fire time -> task running", started),
        format!("catch-up runs among them (a fire more than 5 s late): {catch_ups}"),
    ]
}

fn idle_jobs() -> String {
    let node = Node::start("", &[]);
    let digest = node.push_testtask();
    let pid = node.child.id();
    let (rss_empty, _) = proc_stat(pid);
    // Fire at minute 0 of an hour that is at least an hour away, so no run happens while the
    // node is measured, but every job's watch is sleeping on its next fire time.
    let hour = (chrono::Utc::now() + chrono::Duration::hours(2)).format("%H");
    let cron = format!("0 0 {hour} * * ?");
    for i in 0..IDLE_JOBS {
        node.scheduled_job(&format!("idle-{i}"), &cron, &digest);
    }
    // Let every watch start and the node settle.
    std::thread::sleep(Duration::from_secs(15));
    let (_, ticks0) = proc_stat(pid);
    let window = Duration::from_secs(30);
    std::thread::sleep(window);
    let (rss, ticks1) = proc_stat(pid);
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let cpu_pct = (ticks1 - ticks0) as f64 / hz / window.as_secs_f64() * 100.0;
    let jobs = node.get("/api/2.2/jobs/list?limit=100&name=idle-999");
    let armed = jobs["jobs"][0]["trigger_state"]["next_fire_time"].is_i64();
    let runs = node.get("/api/2.2/jobs/runs/list?limit=1&active_only=true");
    let active = runs["runs"].as_array().map_or(0, |r| r.len());
    format!(
        "{IDLE_JOBS} jobs with a schedule, idle: RSS {} MiB (empty node {} MiB), CPU {cpu_pct:.2}% \
         of one core over {} s; active runs {active}; last job armed with a next fire time: {armed}",
        rss / 1024,
        rss_empty / 1024,
        window.as_secs()
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    weir::tls::install_crypto_provider();
    println!(
        "weir schedule benchmark — {} — {}",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    for line in per_second() {
        println!("{line}");
    }
    println!("{}", idle_jobs());
}
