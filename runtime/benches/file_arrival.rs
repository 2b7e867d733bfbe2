//! File-arrival benchmarks of a real `weir serve` process:
//! - local drop (rename into the watched directory) -> the task running (the task reads the
//!   clock first thing), over 200 drops one at a time;
//! - S3 upload -> the task running, with a 1 s listing interval (needs the S3 server of
//!   `scripts/services/s3.sh`; skipped with a message without it);
//! - 1,000 jobs each watching its own directory, idle: RSS and CPU of the node.
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench file_arrival`.

use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

mod support;
use support::*;

const LOCAL_DROPS: usize = 200;
const S3_UPLOADS: usize = 30;
const IDLE_JOBS: usize = 1_000;

impl Node {
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
