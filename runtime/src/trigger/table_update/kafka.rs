//! The node's Kafka consumer: one per node, in the consumer group `--kafka-group`, subscribed
//! to `--kafka-topics`.
//!
//! # At least once, never lost
//! Automatic offset *storing* is off: the consumer stores a message's offset (for the periodic
//! automatic commit) only after the change it carries is durably recorded in the seen-sets of
//! the jobs it concerns ([`TableEvents::record`]). A crash before that redelivers the message;
//! a crash after it finds the changes recorded and the watches fire them; a redelivered message
//! that was recorded already is dropped by the per-job offset high-water mark. If the store
//! cannot record a batch, the consumer retries it (with backoff) before it reads further, so a
//! partition never skips an event. Poison messages (not JSON, no table, too large) are logged
//! with topic/partition/offset, counted, and skipped: they never block their partition.

use super::event::{self, Parsed};
use super::inbox::{EventSource, Incoming, TableEvents};
use crate::trigger::TriggerContext;
use rdkafka::Message as _;
use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer as _, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::statistics::Statistics;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Messages read before they are recorded together (one store transaction).
const MAX_BATCH: usize = 2_000;

/// The consumer's settings (`weir serve --kafka-*`, `WEIR_KAFKA_*`, `weir.toml`).
#[derive(Debug, Clone, PartialEq)]
pub struct KafkaSettings {
    /// `bootstrap.servers`: `host:port,...`.
    pub brokers: String,
    /// Topics to consume; a name starting with `^` is a regular expression.
    pub topics: Vec<String>,
    /// Consumer group id.
    pub group: String,
    /// `fetch.wait.max.ms`: how long a fetch waits for data at most. Low, because some brokers
    /// (tansu) answer a fetch only when it expires; Kafka answers as soon as data arrives.
    pub fetch_wait_max_ms: u64,
    /// librdkafka properties passed through as they are (`security.protocol`,
    /// `sasl.mechanism`, `session.timeout.ms`, ...); they win over Weir's own.
    pub properties: BTreeMap<String, String>,
}

/// Defaults of the consumer settings.
pub mod defaults {
    /// `--kafka-topics`.
    pub const TOPICS: &str = "weir.table-updates";
    /// `--kafka-group`.
    pub const GROUP: &str = "weir";
    /// `kafka_fetch_wait_max_ms`.
    pub const FETCH_WAIT_MAX_MS: u64 = 10;
}

/// Why the consumer cannot run (logged; it is started again after a backoff).
#[derive(Debug, thiserror::Error)]
pub enum KafkaTriggerError {
    /// The client could not be created or could not subscribe.
    #[error("kafka consumer for {brokers} (group {group}): {what}")]
    Client {
        /// `bootstrap.servers`.
        brokers: String,
        /// The group.
        group: String,
        /// What failed.
        what: &'static str,
        /// Why.
        #[source]
        source: rdkafka::error::KafkaError,
    },
}

impl KafkaSettings {
    /// The librdkafka configuration of the consumer.
    pub fn client_config(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group)
            .set("enable.auto.commit", "true")
            .set("enable.auto.offset.store", "false")
            .set("auto.commit.interval.ms", "1000")
            // A new group reads the topics from their start; events older than a job's trigger
            // are dropped by their timestamp (see `inbox`), so nothing produced while the group
            // was being formed is lost.
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("session.timeout.ms", "10000")
            .set("heartbeat.interval.ms", "1000")
            .set("topic.metadata.refresh.interval.ms", "5000")
            .set("reconnect.backoff.max.ms", "2000")
            // Statistics carry the consumer lag per partition (see `WeirContext::stats`).
            .set("statistics.interval.ms", "5000")
            .set("client.id", "weir");
        for (k, v) in &self.properties {
            c.set(k, v);
        }
        c
    }

    fn error(&self, what: &'static str, source: rdkafka::error::KafkaError) -> KafkaTriggerError {
        KafkaTriggerError::Client {
            brokers: self.brokers.clone(),
            group: self.group.clone(),
            what,
            source,
        }
    }
}

/// The consumer's context: keeps the lag per partition and the last client error in the
/// inbox's status for `GET /api/weir/events`.
struct WeirContext {
    events: Arc<TableEvents>,
}

impl ClientContext for WeirContext {
    fn stats(&self, statistics: Statistics) {
        let mut lag = BTreeMap::new();
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    lag.insert(format!("{topic}/{partition}"), p.consumer_lag);
                }
            }
        }
        self.events.status().lag = lag;
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!(error = %error, reason, "weir.trigger.kafka: client error");
        self.events.status().last_error = Some(format!("{error}: {reason}"));
    }
}

impl ConsumerContext for WeirContext {}

/// Runs the consumer until the future is dropped, starting it again after errors.
pub async fn consume(settings: KafkaSettings, events: Arc<TableEvents>, ctx: TriggerContext) {
    let mut backoff = Duration::from_millis(500);
    loop {
        match run(&settings, events.clone(), &ctx).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(error = %chain(&e), retry_in_ms = backoff.as_millis() as u64, "weir.trigger.kafka: consumer failed; starting it again");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

async fn run(
    settings: &KafkaSettings,
    events: Arc<TableEvents>,
    ctx: &TriggerContext,
) -> Result<(), KafkaTriggerError> {
    let context = WeirContext {
        events: events.clone(),
    };
    let consumer: StreamConsumer<WeirContext> = settings
        .client_config()
        .create_with_context(context)
        .map_err(|e| settings.error("cannot create the consumer", e))?;
    events.status().consuming = true;
    let topics: Vec<&str> = settings.topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| settings.error("cannot subscribe", e))?;
    tracing::info!(
        brokers = %settings.brokers,
        group = %settings.group,
        topics = ?settings.topics,
        "weir.trigger.kafka: consuming table-update events"
    );
    loop {
        let batch = next_batch(&consumer).await;
        let incoming = read(&batch, &events, ctx.now());
        // Record (retrying until the store takes it), then let the offsets be committed.
        let mut wait = Duration::from_millis(100);
        loop {
            match events.record(ctx, &incoming).await {
                Ok(recorded) => {
                    if !recorded.jobs.is_empty() || recorded.duplicates > 0 {
                        tracing::debug!(
                            messages = batch.len(),
                            jobs = recorded.jobs.len(),
                            duplicates = recorded.duplicates,
                            "weir.trigger.kafka.record"
                        );
                    }
                    break;
                }
                Err(e) => {
                    tracing::error!(error = %e, retry_in_ms = wait.as_millis() as u64, "weir.trigger.kafka: cannot record events; retrying before reading further");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(5));
                }
            }
        }
        let mut last: HashMap<(&str, i32), i64> = HashMap::new();
        for m in &batch {
            let e = last.entry((m.topic(), m.partition())).or_insert(m.offset());
            *e = (*e).max(m.offset());
        }
        for ((topic, partition), offset) in last {
            // Fails only when the partition was revoked meanwhile: its new owner reads the
            // message again and the job's offset mark drops it.
            if let Err(e) = consumer.store_offset(topic, partition, offset) {
                tracing::debug!(topic, partition, offset, error = %e, "weir.trigger.kafka: offset not stored");
            }
        }
    }
}

/// Waits for one message, then takes whatever else is already there (up to [`MAX_BATCH`]).
async fn next_batch(consumer: &StreamConsumer<WeirContext>) -> Vec<OwnedMessage> {
    let mut batch = Vec::new();
    loop {
        match consumer.recv().await {
            Ok(m) => {
                batch.push(m.detach());
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "weir.trigger.kafka: cannot read from the brokers");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    while batch.len() < MAX_BATCH {
        match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
            Ok(Ok(m)) => batch.push(m.detach()),
            Ok(Err(_)) | Err(_) => break,
        }
    }
    batch
}

/// The changes of a batch of messages; poison and ignorable messages are counted and logged.
fn read(batch: &[OwnedMessage], events: &TableEvents, now: i64) -> Vec<Incoming> {
    let counters = &events.counters;
    counters
        .consumed
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let mut out = Vec::with_capacity(batch.len());
    for m in batch {
        let (topic, partition, offset) = (m.topic(), m.partition(), m.offset());
        if topic.starts_with("__debezium-heartbeat") {
            counters.ignored.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match event::parse_bytes(Some(topic), m.payload()) {
            Ok(Parsed::Change(change)) => out.push(Incoming {
                change,
                happened_at: m.timestamp().to_millis().unwrap_or(now),
                source: EventSource::Kafka {
                    topic: topic.to_string(),
                    partition,
                    offset,
                },
            }),
            Ok(Parsed::Ignored(what)) => {
                counters.ignored.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    topic,
                    partition,
                    offset,
                    "weir.trigger.kafka: ignored {what}"
                );
            }
            Err(e) => {
                counters.poison.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(topic, partition, offset, error = %e, "weir.trigger.kafka: skipped a message that is no change event");
            }
        }
    }
    out
}
