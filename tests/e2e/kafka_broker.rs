//! A real Kafka-protocol broker for the tests: tansu, installed by `scripts/services/kafka.sh`
//! (which prints `WEIR_TEST_TANSU`). Each test starts its own broker on a free port with
//! in-memory storage, and produces with a real client (rdkafka).

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer as _};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running broker.
pub struct Broker {
    /// `127.0.0.1:PORT`.
    pub address: String,
    port: u16,
    child: Option<Child>,
    producer: Option<BaseProducer>,
}

fn binary() -> String {
    std::env::var("WEIR_TEST_TANSU")
        .ok()
        .filter(|p| std::path::Path::new(p).exists())
        .unwrap_or_else(|| {
            let default = format!(
                "{}/.cache/weir-tools/tansu/bin/tansu",
                std::env::var("HOME").unwrap_or_default()
            );
            assert!(
                std::path::Path::new(&default).exists(),
                "no Kafka broker for the tests: run `bash scripts/services/kafka.sh` (it builds \
                 tansu into ~/.cache/weir-tools/tansu and prints WEIR_TEST_TANSU), or use \
                 scripts/test.sh"
            );
            default
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Broker {
    /// Starts a broker on a free port and waits until it answers.
    pub fn start() -> Broker {
        let port = free_port();
        let mut b = Broker {
            address: format!("127.0.0.1:{port}"),
            port,
            child: None,
            producer: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let child = Command::new(binary())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the broker starts");
        self.child = Some(child);
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "the broker at {} did not answer within 60 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the broker (its topics are gone: storage is in memory).
    pub fn stop(&mut self) {
        self.producer = None;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Creates a topic.
    pub fn create_topic(&self, name: &str, partitions: i32) {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", &self.address)
            .create()
            .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        let results = rt
            .block_on(admin.create_topics(
                [&topic],
                &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
            ))
            .expect("create_topics answers");
        for r in results {
            r.unwrap_or_else(|(t, e)| panic!("cannot create topic {t}: {e}"));
        }
    }

    /// Produces one message (`None`: a tombstone) and waits until the broker has it.
    pub fn produce(&mut self, topic: &str, key: &str, value: Option<&[u8]>) {
        let address = self.address.clone();
        let producer = self.producer.get_or_insert_with(|| {
            ClientConfig::new()
                .set("bootstrap.servers", &address)
                .set("linger.ms", "0")
                .set("acks", "all")
                .create()
                .expect("the producer starts")
        });
        let mut record = BaseRecord::<str, [u8]>::to(topic).key(key);
        if let Some(v) = value {
            record = record.payload(v);
        }
        producer
            .send(record)
            .unwrap_or_else(|(e, _)| panic!("cannot produce to {topic}: {e}"));
        producer
            .flush(Duration::from_secs(30))
            .expect("the broker takes the message");
    }

    /// Produces one JSON event.
    pub fn produce_json(&mut self, topic: &str, value: &serde_json::Value) {
        self.produce(topic, "k", Some(value.to_string().as_bytes()));
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}
