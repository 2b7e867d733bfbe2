//! Table-update benchmarks of a real `weir serve` process: a change event -> the task
//! running (the task reads the clock first thing and records it as `started_us`), one event at
//! a time, over 200 events:
//! - produced to Kafka (tansu on loopback, `fetch.wait.max.ms` 1 and the default 10; needs the
//!   broker of `scripts/services/kafka.sh`, skipped with a message without it);
//! - posted to `POST /api/weir/events`.
//!
//! Needs the test task module: `cargo build --release --target wasm32-wasip1 -p weir-test-tasks`.
//! Run: `cargo bench -p weir-runtime --bench table_update`.

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const EVENTS: usize = 200;

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
            .env("WEIR_LOG", "warn,weir.serve=info")
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

    fn table_job(&self, name: &str, table: &str, digest: &str) -> i64 {
        self.post(
            "/api/2.2/jobs/create",
            json!({
                "name": name,
                "max_concurrent_runs": 10,
                "trigger": {"table_update": {"table_names": [table]}},
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

fn tansu() -> Option<PathBuf> {
    let p = std::env::var_os("WEIR_TEST_TANSU")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default())
                .join(".cache/weir-tools/tansu/bin/tansu")
        });
    p.exists().then_some(p)
}

struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kafka_events(fetch_wait_max_ms: u64) -> String {
    let label = format!("Kafka produce -> task running (fetch.wait.max.ms {fetch_wait_max_ms})");
    let Some(tansu) = tansu() else {
        return format!("{label}: skipped (no broker: run scripts/services/kafka.sh)");
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("tcp://127.0.0.1:{port}");
    let _broker = Broker(
        Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let address = format!("127.0.0.1:{port}");
    while std::net::TcpStream::connect(&address).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &address)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for r in rt
        .block_on(admin.create_topics(
            [&NewTopic::new("bench", 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
        .unwrap()
    {
        r.unwrap();
    }
    let node = Node::start(
        &format!(
            "kafka_brokers = \"{address}\"\nkafka_topics = \"bench\"\n\
             kafka_fetch_wait_max_ms = {fetch_wait_max_ms}\n"
        ),
        &[],
    );
    let digest = node.push_testtask();
    let job = node.table_job("bench-kafka", "main.bench.events", &digest);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &address)
        .set("linger.ms", "0")
        .create()
        .unwrap();
    let produce = |i: usize| {
        let value = json!({"table": "main.bench.events", "version": i}).to_string();
        producer
            .send(BaseRecord::<str, str>::to("bench").key("k").payload(&value))
            .unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    // Warm-up event (the first instantiation fills caches).
    produce(0);
    node.nth_run_started_us(job, 1);
    let mut samples = Vec::new();
    for i in 1..=EVENTS {
        let sent = now_us();
        produce(i);
        let started = node.nth_run_started_us(job, i + 1);
        samples.push(started - sent);
    }
    summary(&label, samples)
}

fn http_events() -> String {
    let node = Node::start("", &[]);
    let digest = node.push_testtask();
    let job = node.table_job("bench-http", "main.bench.events", &digest);
    node.post("/api/weir/events", json!({"table": "main.bench.events"}));
    node.nth_run_started_us(job, 1);
    let mut samples = Vec::new();
    for i in 1..=EVENTS {
        let sent = now_us();
        node.post(
            "/api/weir/events",
            json!({"table": "main.bench.events", "version": i}),
        );
        let started = node.nth_run_started_us(job, i + 1);
        samples.push(started - sent);
    }
    summary("POST /api/weir/events -> task running", samples)
}

fn main() {
    weir::tls::install_crypto_provider();
    testtask();
    println!("{}", http_events());
    println!("{}", kafka_events(10));
    println!("{}", kafka_events(1));
}
