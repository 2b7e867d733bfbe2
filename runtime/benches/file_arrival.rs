//! File-arrival benchmarks of a real `weir serve` process:
//! - local drop (rename into the watched directory) -> the task running (the task reads the
//!   clock first thing), over 200 drops one at a time;
//! - S3 upload -> the task running, with a 1 s listing interval (needs the S3 server of
//!   `scripts/services/s3.sh`; skipped with a message without it);
//! - 1,000 jobs each watching its own directory, idle: RSS and CPU of the node.
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench file_arrival`.

use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const LOCAL_DROPS: usize = 200;
const S3_UPLOADS: usize = 30;
const IDLE_JOBS: usize = 1_000;

fn testtask() -> PathBuf {
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

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

struct Node {
    child: Child,
    base: String,
    token: String,
    http: reqwest::blocking::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    fn start(toml: &str, env: &[(&str, String)]) -> Node {
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

    fn post(&self, path: &str, body: Value) -> Value {
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

    fn get(&self, path: &str) -> Value {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.text().unwrap());
        r.json().unwrap()
    }

    fn push_testtask(&self) -> String {
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

    fn watching_job(&self, name: &str, url: &str, digest: &str) -> i64 {
        self.post(
            "/api/2.2/jobs/create",
            json!({
                "name": name,
                "max_concurrent_runs": 10,
                "trigger": {"file_arrival": {"url": url}},
                "tasks": [{"task_key": "t", "wasm_task": {"module": digest, "parameters": ["arrived"]}}],
            }),
        )["job_id"]
            .as_i64()
            .unwrap()
    }

    /// Waits for the job's `n`-th run to finish; returns its `started_us` value.
    fn nth_run_started_us(&self, job_id: i64, n: usize) -> i64 {
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

fn summary(label: &str, mut samples_us: Vec<i64>) -> String {
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

fn local_drops() -> String {
    let node = Node::start("", &[]);
    let digest = node.push_testtask();
    let landing = tempfile::tempdir().unwrap();
    let job = node.watching_job(
        "bench-local",
        &format!("file://{}/", landing.path().display()),
        &digest,
    );
    // Warm-up drop (the first instantiation fills caches).
    let stage = |i: usize| {
        let staged = landing.path().join(format!(".f{i}.part"));
        std::fs::write(&staged, format!("row {i}\n")).unwrap();
        staged
    };
    let staged = stage(0);
    std::fs::rename(&staged, landing.path().join("f0.csv")).unwrap();
    node.nth_run_started_us(job, 1);
    let mut samples = Vec::new();
    for i in 1..=LOCAL_DROPS {
        let staged = stage(i);
        let dropped = now_us();
        std::fs::rename(&staged, landing.path().join(format!("f{i}.csv"))).unwrap();
        let started = node.nth_run_started_us(job, i + 1);
        samples.push(started - dropped);
    }
    summary("local drop (rename) -> task running", samples)
}

fn s3_server() -> Option<PathBuf> {
    let p = std::env::var_os("WEIR_TEST_S3_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/weir-tools/venv/bin/moto_server")
        });
    p.exists().then_some(p)
}

fn s3_uploads() -> String {
    let Some(server) = s3_server() else {
        return "S3 upload -> task running: skipped (no S3 server: run scripts/services/s3.sh)"
            .to_string();
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut moto = Command::new(server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::blocking::Client::new();
    while http.get(&endpoint).send().is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    http.put(format!("{endpoint}/bench")).send().unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "bench".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "bench".to_string()),
        ("AWS_ALLOW_HTTP", "true".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
    ];
    let node = Node::start("file_arrival_list_interval_seconds = 1\n", &env);
    let digest = node.push_testtask();
    let job = node.watching_job("bench-s3", "s3://bench/in/", &digest);
    let put = |i: usize| {
        http.put(format!("{endpoint}/bench/in/o{i}.csv"))
            .body(format!("row {i}"))
            .send()
            .unwrap();
    };
    put(0);
    node.nth_run_started_us(job, 1);
    let mut samples = Vec::new();
    for i in 1..=S3_UPLOADS {
        put(i);
        let uploaded = now_us();
        let started = node.nth_run_started_us(job, i + 1);
        samples.push(started - uploaded);
    }
    drop(node);
    let _ = moto.kill();
    let _ = moto.wait();
    summary("S3 upload -> task running, listing interval 1 s", samples)
}

fn proc_stat(pid: u32) -> (u64, u64) {
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

fn idle_jobs() -> String {
    let node = Node::start("", &[]);
    let digest = node.push_testtask();
    let pid = node.child.id();
    let (rss_empty, _) = proc_stat(pid);
    let root = tempfile::tempdir().unwrap();
    for i in 0..IDLE_JOBS {
        let dir = root.path().join(format!("job-{i}"));
        std::fs::create_dir(&dir).unwrap();
        node.watching_job(
            &format!("idle-{i}"),
            &format!("file://{}/", dir.display()),
            &digest,
        );
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
    // Still watching: one more file lands in the last job's directory.
    let last = root.path().join(format!("job-{}", IDLE_JOBS - 1));
    std::fs::write(last.join("late.csv"), "x").unwrap();
    let id = node.get("/api/2.2/jobs/list?limit=100&name=idle-999")["jobs"][0]["job_id"]
        .as_i64()
        .unwrap_or(0);
    let alive = id == 0 || {
        node.nth_run_started_us(id, 1);
        true
    };
    format!(
        "{IDLE_JOBS} jobs each watching its own directory, idle: RSS {} MiB (empty node {} MiB), \
         CPU {cpu_pct:.2}% of one core over {} s; last job still triggers: {alive}",
        rss / 1024,
        rss_empty / 1024,
        window.as_secs()
    )
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
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    weir::tls::install_crypto_provider();
    println!(
        "weir file-arrival benchmark — {} — {}",
        machine(),
        chrono::Utc::now().format("%Y-%m-%d")
    );
    println!("{}", local_drops());
    println!("{}", s3_uploads());
    println!("{}", idle_jobs());
}
