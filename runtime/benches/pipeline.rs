//! End-to-end benchmarks of a node, as an HTTP client sees it (durable SQLite store, default
//! settings):
//! - a job of 40 chained tasks each computing fib(10): run-now to terminated;
//! - a run of 400 independent trivial tasks: task runs per second;
//! - the node's memory when no task runs.
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench pipeline`.

use serde_json::{Value, json};
use std::time::{Duration, Instant};
use weir::config::{FileConfig, ServeConfig};
use weir::serve::Node;

const CHAIN_RUNS: usize = 50;
const FANOUT_RUNS: usize = 10;

fn testtask() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("wasm32-wasip1/release/testtask.wasm");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`",
        p.display()
    );
    p
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    async fn get(&self, path: &str, q: &[(&str, String)]) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .query(q)
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{path}: {}",
            r.text().await.unwrap()
        );
        r.json().await.unwrap()
    }

    /// run-now, then wait for the end; returns the run and the client-side latency.
    async fn run(&self, job_id: i64) -> (Value, Duration) {
        let t = Instant::now();
        let started = self
            .post("/api/2.2/jobs/run-now", json!({"job_id": job_id}))
            .await;
        let run_id = started["run_id"].as_i64().unwrap();
        loop {
            let run = self
                .get("/api/weir/runs/wait", &[("run_id", run_id.to_string())])
                .await;
            if run["state"]["life_cycle_state"] == "TERMINATED" {
                return (run, t.elapsed());
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{n} x {cpu}")
}

fn main() {
    // As the `weir` binary does: library errors (every task exit) capture no backtrace.
    // SAFETY: no other thread exists yet.
    unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    tokio::runtime::Runtime::new()
        .expect("a runtime")
        .block_on(bench());
}

async fn bench() {
    let module = testtask();
    let dir = tempfile::tempdir().unwrap();
    let explicit = FileConfig {
        data_dir: Some(dir.path().to_path_buf()),
        listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Default::default()
    };
    let node = Node::start(ServeConfig::resolve(explicit, FileConfig::default()).unwrap())
        .await
        .unwrap();
    let client = Client {
        http: reqwest::Client::new(),
        base: format!("http://{}", node.addr),
        token: node.admin_token.clone(),
    };
    let wasm = std::fs::read(&module).unwrap();
    let pushed: Value = client
        .http
        .post(format!("{}/api/weir/modules?name=testtask", client.base))
        .bearer_auth(&client.token)
        .body(wasm)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let digest = pushed["digest"].as_str().unwrap().to_string();

    let chain: Vec<Value> = (0..40)
        .map(|i| {
            let mut t = json!({"task_key": format!("fib{i}"), "wasm_task": {"module": digest, "parameters": ["fib", "10"]}});
            if i > 0 {
                t["depends_on"] = json!([{"task_key": format!("fib{}", i - 1)}]);
            }
            t
        })
        .collect();
    let chain_job = client
        .post(
            "/api/2.2/jobs/create",
            json!({"name": "bench-chain", "tasks": chain}),
        )
        .await["job_id"]
        .as_i64()
        .unwrap();
    let fanout: Vec<Value> = (0..400)
        .map(|i| json!({"task_key": format!("t{i}"), "wasm_task": {"module": digest, "parameters": ["ok"]}}))
        .collect();
    let fanout_job = client
        .post(
            "/api/2.2/jobs/create",
            json!({"name": "bench-fanout", "tasks": fanout}),
        )
        .await["job_id"]
        .as_i64()
        .unwrap();

    // Warm-up: compiles nothing (the artifact is cached at upload) but fills caches.
    client.run(chain_job).await;
    let mut chain_times = Vec::new();
    for _ in 0..CHAIN_RUNS {
        let (run, d) = client.run(chain_job).await;
        assert_eq!(run["state"]["result_state"], "SUCCESS", "{run}");
        chain_times.push(d);
    }
    chain_times.sort();

    client.run(fanout_job).await;
    let mut fanout_rates = Vec::new();
    for _ in 0..FANOUT_RUNS {
        let (run, d) = client.run(fanout_job).await;
        assert_eq!(run["state"]["result_state"], "SUCCESS", "{run}");
        fanout_rates.push(400.0 / d.as_secs_f64());
    }
    fanout_rates.sort_by(f64::total_cmp);

    tokio::time::sleep(Duration::from_millis(500)).await;
    let idle_rss = rss_kib(std::process::id());
    let alive = node.engine.executor().instances_alive();

    println!(
        "weir pipeline benchmark — {} — {}",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!("40 chained fib(10) tasks, run-now -> terminated ({CHAIN_RUNS} runs):");
    println!(
        "  p50 {:.1} ms   p99 {:.1} ms   min {:.1} ms   max {:.1} ms",
        percentile(&chain_times, 0.5).as_secs_f64() * 1e3,
        percentile(&chain_times, 0.99).as_secs_f64() * 1e3,
        chain_times[0].as_secs_f64() * 1e3,
        chain_times[chain_times.len() - 1].as_secs_f64() * 1e3,
    );
    println!("400 independent trivial tasks in one run ({FANOUT_RUNS} runs):");
    println!(
        "  median {:.0} task runs/s   worst {:.0}   best {:.0}",
        fanout_rates[fanout_rates.len() / 2],
        fanout_rates[0],
        fanout_rates[fanout_rates.len() - 1]
    );
    println!(
        "idle node (API + engine + executor in this process): RSS {} MiB, instances alive {alive}",
        idle_rss / 1024
    );
    node.shutdown().await;
}
