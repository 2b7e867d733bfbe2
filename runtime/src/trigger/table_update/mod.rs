//! `trigger.table_update`: a run when the tables a job lists change.
//!
//! Change events arrive on Kafka ([`kafka`]: one consumer per node, in a consumer group) or
//! over HTTP (`POST /api/weir/events`); [`event`] reads Debezium and plain JSON events;
//! [`inbox`] records each change durably in the seen-sets of the jobs that list its table
//! before the event is acknowledged; [`watch`] turns a job's pending changes into runs under
//! its `condition` (`ANY_UPDATED`, `ALL_UPDATED`) and timing fields.

pub mod event;
pub mod inbox;
pub mod kafka;
pub mod watch;

pub use inbox::{EventSource, Incoming, Recorded, TableEvents};
pub use kafka::KafkaSettings;

use super::{Trigger, TriggerContext, TriggerError, WatchedJob};
use crate::store::TriggerKind;
use async_trait::async_trait;
use std::sync::Arc;

/// The table-update trigger of a node: its inbox and, when configured, its Kafka consumer.
pub struct TableUpdateKind {
    events: Arc<TableEvents>,
    kafka: Option<KafkaSettings>,
}

impl TableUpdateKind {
    /// The trigger on `events` (shared with the HTTP API), consuming Kafka when `kafka` is set.
    pub fn new(events: Arc<TableEvents>, kafka: Option<KafkaSettings>) -> TableUpdateKind {
        TableUpdateKind { events, kafka }
    }
}

#[async_trait]
impl Trigger for TableUpdateKind {
    fn kind(&self) -> TriggerKind {
        TriggerKind::TableUpdate
    }

    async fn serve(self: Arc<Self>, ctx: TriggerContext) {
        if let Some(settings) = self.kafka.clone() {
            kafka::consume(settings, self.events.clone(), ctx).await;
        }
    }

    async fn watch(
        self: Arc<Self>,
        job: WatchedJob,
        ctx: TriggerContext,
    ) -> Result<(), TriggerError> {
        watch::run(self.events.clone(), job, ctx).await
    }
}
