//! The durable inbox of table changes: every change event a node accepts (from Kafka or from
//! `POST /api/weir/events`) is matched to the jobs whose `table_names` list its table and
//! recorded in those jobs' seen-sets before anyone acknowledges it.
//!
//! # What a job's seen-set holds
//! - `table:<name>` (the name as `table_names` lists it, lowercase): the latest change of that
//!   table as a [`TableChange`] in JSON; pending while it has no run, covered once the run that
//!   reports it commits it (see [`super::watch`]). A newer change replaces it and is pending
//!   again.
//! - `offset:<topic>/<partition>`: the highest Kafka offset applied to the job from that
//!   partition. A redelivered message (Weir stopped before its offset was committed) is at or
//!   below it and is dropped, so it never makes a second run.
//!
//! Writes of a job's seen-set are serialized on this node by the job's [`Slot`] lock, which the
//! job's watch also holds while it fires.

use super::event::{ChangeEvent, normalized, short_name};
use crate::store::{JobId, Millis, Page, SeenItem, StoreError, TriggerKind};
use crate::trigger::{TableChange, TriggerContext};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{Mutex, Notify, broadcast};

/// How far before a job's arming time an event (by its Kafka timestamp) still counts (clock
/// differences between producers and this node).
pub const ARMING_SLACK_MS: Millis = 10_000;
/// How often the table index is rebuilt even without a reported job change.
const INDEX_MAX_AGE_MS: Millis = 10_000;

/// Where an accepted event came from: its identity, from which run idempotency keys derive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSource {
    /// A Kafka message.
    Kafka {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset.
        offset: i64,
    },
    /// `POST /api/weir/events`.
    Api {
        /// The event's id (the client's `id`, or one made up on arrival).
        event_id: String,
    },
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct Incoming {
    /// The change it carries.
    pub change: ChangeEvent,
    /// When it happened as far as the transport says (the Kafka message timestamp), else when
    /// it arrived: events from before a job's trigger was armed do not count for that job.
    pub happened_at: Millis,
    /// Its identity.
    pub source: EventSource,
}

/// What recording a batch of events did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Jobs that got at least one new pending change.
    pub jobs: BTreeSet<JobId>,
    /// (job, table) changes recorded.
    pub changes: usize,
    /// Tables (as the events name them) that no job with an unpaused table-update trigger
    /// lists.
    pub unmatched: BTreeSet<String>,
    /// Job matches dropped because the job already had the message (a Kafka redelivery).
    pub duplicates: usize,
    /// Job matches dropped because the event is older than the job's trigger.
    pub before_armed: usize,
}

/// Counters of the node's table-update trigger since start.
#[derive(Debug, Default)]
pub struct Counters {
    /// Kafka messages received.
    pub consumed: AtomicU64,
    /// Events (Kafka or API) that updated at least one job's pending changes.
    pub matched: AtomicU64,
    /// Events no job listens to.
    pub unmatched: AtomicU64,
    /// Messages skipped as poison (not JSON, no table, too large).
    pub poison: AtomicU64,
    /// Messages ignored (tombstones, schema changes, heartbeats).
    pub ignored: AtomicU64,
    /// Redelivered messages dropped.
    pub duplicates: AtomicU64,
    /// Runs created.
    pub runs: AtomicU64,
}

/// What the node's Kafka consumer reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerStatus {
    /// Whether a consumer runs on this node.
    pub consuming: bool,
    /// Messages not yet consumed per `topic/partition` (from librdkafka's statistics, every
    /// 5 s), for the partitions assigned to this node.
    pub lag: BTreeMap<String, i64>,
    /// The last error the Kafka client reported (a broker down, a refused connection).
    pub last_error: Option<String>,
}

/// The per-job lock and wake-up of this node.
#[derive(Debug, Default)]
pub struct Slot {
    /// Held while the job's seen-set is read or written (recording, firing).
    pub lock: Mutex<SlotState>,
    /// Woken when new changes were recorded for the job.
    pub notify: Notify,
}

/// What a node caches of a job's seen-set (it is the only writer on this node).
#[derive(Debug, Default)]
pub struct SlotState {
    /// Highest applied offset per `topic/partition`, once loaded.
    offsets: Option<HashMap<String, i64>>,
}

/// A job listening to a table.
#[derive(Debug, Clone)]
struct Target {
    job_id: JobId,
    /// The name as the job lists it.
    table: String,
    armed_time: Millis,
}

/// Table name -> jobs, for jobs with an unpaused table-update trigger.
#[derive(Debug, Default)]
struct Index {
    full: HashMap<String, Vec<Target>>,
    short: HashMap<String, Vec<Target>>,
    built_at: Millis,
}

impl Index {
    fn lookup(&self, table: &str) -> &[Target] {
        let name = normalized(table);
        let map = if name.split('.').count() == 3 {
            &self.full
        } else {
            &self.short
        };
        map.get(&name).map_or(&[], Vec::as_slice)
    }
}

struct IndexCell {
    index: Arc<Index>,
    changes: Option<broadcast::Receiver<JobId>>,
}

/// The node's table-change inbox, shared by the Kafka consumer, the HTTP API and the watches.
pub struct TableEvents {
    index: Mutex<IndexCell>,
    slots: std::sync::Mutex<HashMap<JobId, Arc<Slot>>>,
    status: std::sync::Mutex<ConsumerStatus>,
    /// Counters since start.
    pub counters: Counters,
}

impl Default for TableEvents {
    fn default() -> Self {
        TableEvents {
            index: Mutex::new(IndexCell {
                index: Arc::new(Index::default()),
                changes: None,
            }),
            slots: Default::default(),
            status: Default::default(),
            counters: Counters::default(),
        }
    }
}

/// The seen-set key of a listed table.
pub fn table_key(listed: &str) -> String {
    format!("table:{}", normalized(listed))
}

fn offset_key(topic: &str, partition: i32) -> String {
    format!("offset:{topic}/{partition}")
}

impl TableEvents {
    /// An empty inbox.
    pub fn new() -> Arc<TableEvents> {
        Arc::new(TableEvents::default())
    }

    /// The Kafka consumer's status (for writing; [`TableEvents::stats`] reads it).
    pub fn status(&self) -> std::sync::MutexGuard<'_, ConsumerStatus> {
        self.status.lock().expect("status lock")
    }

    /// The counters and the consumer's status as JSON (`GET /api/weir/events`).
    pub fn stats(&self) -> serde_json::Value {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let status = self.status().clone();
        serde_json::json!({
            "kafka": {
                "consuming": status.consuming,
                "lag": status.lag,
                "last_error": status.last_error,
            },
            "consumed": get(&c.consumed),
            "matched": get(&c.matched),
            "unmatched": get(&c.unmatched),
            "poison": get(&c.poison),
            "ignored": get(&c.ignored),
            "duplicates": get(&c.duplicates),
            "runs": get(&c.runs),
        })
    }

    /// The lock and wake-up of a job.
    pub fn slot(&self, job_id: JobId) -> Arc<Slot> {
        self.slots
            .lock()
            .expect("slot map lock")
            .entry(job_id)
            .or_default()
            .clone()
    }

    /// The table index, rebuilt when jobs changed since the last call or it is old.
    async fn index(&self, ctx: &TriggerContext) -> Result<Arc<Index>, StoreError> {
        let mut cell = self.index.lock().await;
        let now = ctx.now();
        let mut stale = cell.changes.is_none() || now - cell.index.built_at >= INDEX_MAX_AGE_MS;
        if let Some(rx) = cell.changes.as_mut() {
            loop {
                match rx.try_recv() {
                    Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) => stale = true,
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(broadcast::error::TryRecvError::Closed) => {
                        stale = true;
                        break;
                    }
                }
            }
        }
        if stale {
            // Subscribe before reading, so a change committed meanwhile is seen next time.
            cell.changes = Some(ctx.store().job_changes());
            cell.index = Arc::new(build_index(ctx).await?);
        }
        Ok(cell.index.clone())
    }

    /// Records the changes `events` carry in the seen-sets of the jobs that listen to their
    /// tables, in one transaction, and wakes those jobs' watches. Once this returns `Ok`, the
    /// events are durable: their Kafka offsets may be committed, the HTTP request answered.
    /// On `Err` nothing was recorded and the caller retries (or refuses) the whole batch.
    pub async fn record(
        &self,
        ctx: &TriggerContext,
        events: &[Incoming],
    ) -> Result<Recorded, StoreError> {
        let index = self.index(ctx).await?;
        let mut recorded = Recorded::default();
        // job -> (listed table, event) in arrival order.
        let mut per_job: BTreeMap<JobId, Vec<(&str, &Incoming)>> = BTreeMap::new();
        for event in events {
            let targets = index.lookup(&event.change.table);
            if targets.is_empty() {
                recorded.unmatched.insert(event.change.table.clone());
                self.counters.unmatched.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let mut matched = false;
            for t in targets {
                if event.happened_at < t.armed_time.saturating_sub(ARMING_SLACK_MS) {
                    recorded.before_armed += 1;
                    continue;
                }
                matched = true;
                per_job
                    .entry(t.job_id)
                    .or_default()
                    .push((t.table.as_str(), event));
            }
            if matched {
                self.counters.matched.fetch_add(1, Ordering::Relaxed);
            }
        }
        if per_job.is_empty() {
            return Ok(recorded);
        }
        // Lock the jobs in id order (the BTreeMap's), so two recorders never deadlock.
        let slots: Vec<(JobId, Arc<Slot>)> =
            per_job.keys().map(|&id| (id, self.slot(id))).collect();
        let mut guards = Vec::with_capacity(slots.len());
        for (_, slot) in &slots {
            guards.push(slot.lock.lock().await);
        }
        let mut items = Vec::new();
        let mut new_offsets: Vec<HashMap<String, i64>> = Vec::with_capacity(slots.len());
        for ((job_id, matches), guard) in per_job.iter().zip(guards.iter_mut()) {
            if guard.offsets.is_none() {
                guard.offsets = Some(load_offsets(ctx, *job_id).await?);
            }
            let known = guard.offsets.as_ref().expect("loaded above");
            let mut offsets: HashMap<String, i64> = HashMap::new();
            let mut latest: BTreeMap<String, TableChange> = BTreeMap::new();
            for (table, event) in matches {
                if let EventSource::Kafka {
                    topic,
                    partition,
                    offset,
                } = &event.source
                {
                    let key = offset_key(topic, *partition);
                    let applied = offsets.get(&key).or_else(|| known.get(&key));
                    if applied.is_some_and(|a| offset <= a) {
                        recorded.duplicates += 1;
                        self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    offsets.insert(key, *offset);
                }
                latest.insert(table_key(table), table_change(table, event));
            }
            for (key, change) in latest {
                let fingerprint = serde_json::to_string(&change).expect("changes serialize");
                items.push((*job_id, SeenItem { key, fingerprint }));
                recorded.changes += 1;
                recorded.jobs.insert(*job_id);
            }
            for (key, offset) in &offsets {
                items.push((
                    *job_id,
                    SeenItem {
                        key: key.clone(),
                        fingerprint: offset.to_string(),
                    },
                ));
            }
            new_offsets.push(offsets);
        }
        if !items.is_empty() {
            ctx.store().put_trigger_seen(&items, ctx.now()).await?;
        }
        for (guard, offsets) in guards.iter_mut().zip(new_offsets) {
            guard
                .offsets
                .as_mut()
                .expect("loaded above")
                .extend(offsets);
        }
        drop(guards);
        for (job_id, slot) in &slots {
            if recorded.jobs.contains(job_id) {
                slot.notify.notify_one();
            }
        }
        Ok(recorded)
    }
}

/// The change as a job's seen-set keeps it: named as the job lists the table.
fn table_change(listed: &str, event: &Incoming) -> TableChange {
    let mut change = TableChange {
        table: listed.to_string(),
        version: event.change.version.clone(),
        event_time: event.change.event_time,
        source: "kafka".into(),
        topic: None,
        partition: None,
        offset: None,
        event_id: event.change.event_id.clone(),
    };
    match &event.source {
        EventSource::Kafka {
            topic,
            partition,
            offset,
        } => {
            change.topic = Some(topic.clone());
            change.partition = Some(*partition);
            change.offset = Some(*offset);
        }
        EventSource::Api { event_id } => {
            change.source = "api".into();
            change.event_id = Some(event_id.clone());
        }
    }
    change
}

async fn load_offsets(
    ctx: &TriggerContext,
    job_id: JobId,
) -> Result<HashMap<String, i64>, StoreError> {
    Ok(ctx
        .store()
        .list_trigger_seen(job_id)
        .await?
        .into_iter()
        .filter(|r| r.item.key.starts_with("offset:"))
        .filter_map(|r| Some((r.item.key, r.item.fingerprint.parse().ok()?)))
        .collect())
}

/// Reads every job with an unpaused table-update trigger into an index.
async fn build_index(ctx: &TriggerContext) -> Result<Index, StoreError> {
    let now = ctx.now();
    let states: HashMap<JobId, _> = ctx
        .store()
        .list_trigger_states()
        .await?
        .into_iter()
        .map(|s| (s.job_id, s))
        .collect();
    let mut index = Index {
        built_at: now,
        ..Default::default()
    };
    let mut offset = 0;
    loop {
        let (jobs, more) = ctx
            .store()
            .list_jobs(
                Page {
                    offset,
                    limit: 1000,
                },
                None,
            )
            .await?;
        offset += jobs.len() as u64;
        for job in jobs {
            let Some(trigger) = crate::trigger::of(&job.settings) else {
                continue;
            };
            if trigger.kind != TriggerKind::TableUpdate || trigger.paused {
                continue;
            }
            let Some(spec) = job
                .settings
                .trigger
                .as_ref()
                .and_then(|t| t.table_update.as_ref())
            else {
                continue;
            };
            // Not armed for these settings yet (just deployed or resumed): it is being armed
            // now.
            let armed_time = states
                .get(&job.job_id)
                .filter(|s| s.kind == trigger.kind && s.settings_hash == trigger.settings_hash)
                .map_or(now, |s| s.armed_time);
            let mut listed = BTreeSet::new();
            for table in &spec.table_names {
                let name = normalized(table);
                if !listed.insert(name.clone()) {
                    continue;
                }
                let target = Target {
                    job_id: job.job_id,
                    table: table.trim().to_string(),
                    armed_time,
                };
                if let Some(short) = short_name(&name) {
                    index
                        .short
                        .entry(short.to_string())
                        .or_default()
                        .push(target.clone());
                }
                index.full.entry(name).or_default().push(target);
            }
        }
        if !more {
            return Ok(index);
        }
    }
}
