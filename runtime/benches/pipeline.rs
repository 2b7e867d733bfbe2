//! End-to-end benchmarks of a real `weir serve` process, as an HTTP client sees it (durable
//! SQLite store, default settings):
//! - a job of 40 chained tasks each computing fib(10): run-now to terminated;
//! - a run of 400 independent trivial tasks: task runs per second;
//! - the node's memory when no task runs (instances alive: 0).
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench pipeline`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    let module = testtask();
    let dir = tempfile::tempdir().unwrap();
    let mut node = Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .stderr(Stdio::piped())
        .spawn()
        .expect("weir serve starts");
    let stderr = BufReader::new(node.stderr.take().unwrap());
    let mut lines = stderr.lines();
    let addr = loop {
        let line = lines.next().expect("weir serve logs its address").unwrap();
        if let Some(i) = line.find("listening on http://") {
            break line[i + "listening on ".len()..]
                .split_whitespace()
                .next()
                .unwrap()
                .to_string();
        }
    };
    std::thread::spawn(move || lines.for_each(drop));
    let pid = node.id();
    let rss_started = rss_kib(pid);
    let token = std::fs::read_to_string(dir.path().join("admin-token"))
        .unwrap()
        .trim()
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Client {
        http: weir::tls::http_client().build().unwrap(),
        base: addr,
        token,
    };
    let report = runtime.block_on(bench(&client, &module, pid));
    let _ = node.kill();
    let _ = node.wait();
    println!(
        "weir pipeline benchmark — {} — {}",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!("{report}");
    println!(
        "idle node RSS right after start: {} MiB",
        rss_started / 1024
    );
}

async fn bench(client: &Client, module: &std::path::Path, pid: u32) -> String {
    let wasm = std::fs::read(module).unwrap();
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

    // Warm-up: nothing compiles (the artifact is cached at upload) but caches fill.
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
    let health = client.get("/healthz", &[]).await;
    let busy_rss = rss_kib(pid);
    // An idle node hands freed heap memory back within its 10 s idle check.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let idle_rss = rss_kib(pid);
    format!(
        "40 chained fib(10) tasks, run-now -> terminated ({CHAIN_RUNS} runs):\n  \
         p50 {:.1} ms   p99 {:.1} ms   min {:.1} ms   max {:.1} ms\n\
         400 independent trivial tasks in one run ({FANOUT_RUNS} runs):\n  \
         median {:.0} task runs/s   worst {:.0}   best {:.0}\n\
         right after the runs: RSS {} MiB, instances alive {}, modules cached {}, allocator {}\n\
         idle 12 s later: RSS {} MiB",
        percentile(&chain_times, 0.5).as_secs_f64() * 1e3,
        percentile(&chain_times, 0.99).as_secs_f64() * 1e3,
        chain_times[0].as_secs_f64() * 1e3,
        chain_times[chain_times.len() - 1].as_secs_f64() * 1e3,
        fanout_rates[fanout_rates.len() / 2],
        fanout_rates[0],
        fanout_rates[fanout_rates.len() - 1],
        busy_rss / 1024,
        health["instances_alive"],
        health["modules_cached"],
        health["allocator"],
        idle_rss / 1024,
    )
}
