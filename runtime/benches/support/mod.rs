//! What the benchmarks of a real `weir serve` process share: the node (started on a temp data
//! directory with a `weir.toml`, driven over HTTP with its admin token), the test task module,
//! the wall clock in microseconds, sample summaries and `/proc` readings.

#![allow(dead_code)] // each bench uses its own part

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn testtask() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let p = target.join("wasm32-wasip1/release/testtask.wasm");
    assert!(
        p.exists(),
        "{} is missing: build it with `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`",
        p.display()
    );
    p
}

pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

pub struct Node {
    pub child: Child,
    pub base: String,
    pub token: String,
    pub http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    pub fn start(toml: &str, env: &[(&str, String)]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("weir.toml"), toml).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path())
            .arg("--config")
            .arg(dir.path().join("weir.toml"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("WEIR_LOG", "warn,weir::cli::serve=info")
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir serve starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let base = loop {
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
        let token = std::fs::read_to_string(dir.path().join("admin-token"))
            .unwrap()
            .trim()
            .to_string();
        Node {
            child,
            base,
            token,
            http: reqwest::blocking::Client::new(),
            _dir: dir,
        }
    }

    pub fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json().unwrap()
    }

    pub fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json().unwrap()
    }

    pub fn push_testtask(&self) -> String {
        let r: Value = self
            .http
            .post(format!("{}/api/weir/modules?name=testtask", self.base))
            .bearer_auth(&self.token)
            .body(std::fs::read(testtask()).unwrap())
            .send()
            .unwrap()
            .json()
            .unwrap();
        r["digest"].as_str().unwrap().to_string()
    }

    /// Waits for the job's `n`-th run to finish; returns its `started_us` value.
    pub fn nth_run_started_us(&self, job_id: i64, n: usize) -> i64 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let list = self.get(&format!(
                "/api/2.2/jobs/runs/list?job_id={job_id}&limit=1000&completed_only=true"
            ));
            let mut ids: Vec<i64> = list["runs"]
                .as_array()
                .map(|r| r.iter().filter_map(|r| r["run_id"].as_i64()).collect())
                .unwrap_or_default();
            ids.sort();
            if ids.len() >= n {
                let run = self.get(&format!("/api/2.2/jobs/runs/get?run_id={}", ids[n - 1]));
                if run["state"]["life_cycle_state"] == "TERMINATED" {
                    let task = &run["tasks"][0];
                    return task["values"]["started_us"]
                        .as_i64()
                        .unwrap_or_else(|| panic!("no started_us: {run:#}"));
                }
            }
            assert!(
                Instant::now() < deadline,
                "run {n} of job {job_id} never finished"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn summary(label: &str, mut samples_us: Vec<i64>) -> String {
    samples_us.sort();
    let at =
        |p: f64| samples_us[((samples_us.len() as f64 - 1.0) * p).round() as usize] as f64 / 1e3;
    format!(
        "{label} ({} samples): p50 {:.1} ms   p99 {:.1} ms   min {:.1} ms   max {:.1} ms",
        samples_us.len(),
        at(0.5),
        at(0.99),
        samples_us[0] as f64 / 1e3,
        samples_us[samples_us.len() - 1] as f64 / 1e3,
    )
}

pub fn proc_stat(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = fields
        .get(11)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    (rss, ticks)
}

pub fn machine() -> String {
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
