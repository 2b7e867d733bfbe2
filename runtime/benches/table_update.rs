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
use serde_json::json;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

mod support;
use support::*;

const EVENTS: usize = 200;

impl Node {
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
