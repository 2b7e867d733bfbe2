//! The watch of one job: turns the job's pending table changes into runs when its `condition`
//! holds and its timing allows.
//!
//! Under the job's [`Slot`](super::inbox::Slot) lock it reads the seen-set, and when a run is
//! due it fires it with a [`TriggerCommit`] that marks exactly the reported changes covered
//! (and moves `last_fire_time`), in the run's transaction. A crash before that commit leaves
//! the changes pending, so the run is created after the restart; a crash after it leaves them
//! covered, so it is not created twice.

use super::inbox::{ARMING_SLACK_MS, Slot, TableEvents, table_key};
use crate::spec::{TableUpdateCondition, TableUpdateTrigger};
use crate::store::{JobId, Millis, SeenItem, SeenRecord, TriggerCommit};
use crate::trigger::timing::Timing;
use crate::trigger::{
    TableChange, TableUpdate, TriggerContext, TriggerError, TriggerEvent, TriggerPayload,
    WatchedJob,
};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Longest sleep between two looks at the pending changes (a safety net: recording wakes the
/// watch at once).
const MAX_SLEEP_MS: Millis = 10_000;

/// A pending change of one listed table.
#[derive(Debug, Clone, PartialEq)]
pub struct PendingChange {
    /// The change (named as the job lists the table).
    pub change: TableChange,
    /// When it was recorded.
    pub recorded_at: Millis,
    /// Its seen-set item (to mark covered).
    pub item: SeenItem,
}

/// The pending changes of the listed tables, in `table_names` order: recorded, not covered by
/// a run, and not older than the trigger's arming (minus the slack).
pub fn pending(
    spec: &TableUpdateTrigger,
    seen: &[SeenRecord],
    armed_time: Millis,
) -> Vec<PendingChange> {
    let since = armed_time.saturating_sub(ARMING_SLACK_MS);
    let mut out: Vec<PendingChange> = Vec::new();
    for listed in &spec.table_names {
        let key = table_key(listed);
        if out.iter().any(|p| p.item.key == key) {
            continue;
        }
        let Some(record) = seen.iter().find(|r| r.item.key == key) else {
            continue;
        };
        if record.run_id.is_some() || record.seen_time < since {
            continue;
        }
        match serde_json::from_str::<TableChange>(&record.item.fingerprint) {
            Ok(change) => out.push(PendingChange {
                change,
                recorded_at: record.seen_time,
                item: record.item.clone(),
            }),
            Err(e) => {
                tracing::warn!(key, error = %e, "weir.trigger.table_update: unreadable pending change; ignored")
            }
        }
    }
    out
}

/// Whether the condition holds for these pending changes.
pub fn condition_met(spec: &TableUpdateTrigger, pending: &[PendingChange]) -> bool {
    match spec.condition {
        TableUpdateCondition::AnyUpdated => !pending.is_empty(),
        TableUpdateCondition::AllUpdated => {
            let mut listed: Vec<String> = spec.table_names.iter().map(|t| table_key(t)).collect();
            listed.sort();
            listed.dedup();
            !listed.is_empty() && listed.len() == pending.len()
        }
    }
}

/// The run's idempotency key: the one reported Kafka message
/// (`weir:table_update:<job>:<topic>/<partition>/<offset>`) or API event
/// (`...:api/<event id>`), or a digest of all reported events. Each recorded event is reported
/// by exactly one run, so the key names that run. Do not change the derivation.
pub fn idempotency_key(job_id: JobId, pending: &[PendingChange]) -> String {
    let identity = |c: &TableChange| match (&c.topic, c.partition, c.offset) {
        (Some(t), Some(p), Some(o)) => format!("{t}/{p}/{o}"),
        _ => format!("api/{}", c.event_id.as_deref().unwrap_or("")),
    };
    if let [only] = pending {
        return format!("weir:table_update:{job_id}:{}", identity(&only.change));
    }
    let mut ids: Vec<String> = pending
        .iter()
        .map(|p| format!("{}={}", p.item.key, identity(&p.change)))
        .collect();
    ids.sort();
    let digest = Sha256::digest(ids.join("\n").as_bytes());
    format!("weir:table_update:{job_id}:{}", &hex::encode(digest)[..32])
}

/// Watches one job until the future is dropped.
pub async fn run(
    events: Arc<TableEvents>,
    job: WatchedJob,
    ctx: TriggerContext,
) -> Result<(), TriggerError> {
    let job_id = job.job_id;
    let Some(spec) = job
        .settings
        .trigger
        .as_ref()
        .and_then(|t| t.table_update.clone())
    else {
        return Err(TriggerError::Settings {
            job_id,
            message: "the job has no trigger.table_update".into(),
        });
    };
    let timing = Timing::new(
        spec.wait_after_last_change_seconds,
        spec.min_time_between_triggers_seconds,
    );
    let slot = events.slot(job_id);
    loop {
        let wake = look(&events, &slot, &spec, timing, job_id, &ctx).await?;
        let now = ctx.now();
        let until = wake
            .unwrap_or(Millis::MAX)
            .min(now.saturating_add(MAX_SLEEP_MS));
        tokio::select! {
            _ = slot.notify.notified() => {}
            _ = ctx.clock().sleep_until(until) => {}
        }
    }
}

/// One look at the job's pending changes: fires when due; returns when to look again.
async fn look(
    events: &TableEvents,
    slot: &Slot,
    spec: &TableUpdateTrigger,
    timing: Timing,
    job_id: JobId,
    ctx: &TriggerContext,
) -> Result<Option<Millis>, TriggerError> {
    let _guard = slot.lock.lock().await;
    let Some(mut state) = ctx.load_state(job_id).await? else {
        return Err(TriggerError::Settings {
            job_id,
            message: "the job's trigger is not armed".into(),
        });
    };
    let seen = ctx.seen(job_id).await?;
    let pending = pending(spec, &seen, state.armed_time);
    let due = condition_met(spec, &pending).then(|| {
        let last_change = pending.iter().map(|p| p.recorded_at).max().unwrap_or(0);
        timing.due_at(last_change, state.last_fire_time)
    });
    let now = ctx.now();
    if due.is_none_or(|d| d > now) {
        // Show when the run is due (`jobs get`), and clear a recovered error.
        if state.next_fire_time != due || state.last_error.is_some() {
            state.next_fire_time = due;
            state.last_error = None;
            state.last_error_time = None;
            state.updated_time = now;
            ctx.save_state(&state).await?;
        }
        return Ok(due);
    };
    let mut next = state.clone();
    next.last_fire_time = Some(now);
    next.next_fire_time = None;
    next.last_error = None;
    next.last_error_time = None;
    next.updated_time = now;
    let payload = TriggerPayload::TableUpdate(TableUpdate {
        time: now,
        updated_tables: pending.iter().map(|p| p.change.table.clone()).collect(),
        tables: pending.iter().map(|p| p.change.clone()).collect(),
    });
    let created = ctx
        .fire(TriggerEvent {
            job_id,
            payload,
            idempotency_key: idempotency_key(job_id, &pending),
            job_parameters: Default::default(),
            commit: TriggerCommit {
                state: Some(next.clone()),
                seen: pending.iter().map(|p| p.item.clone()).collect(),
            },
        })
        .await?;
    events.counters.runs.fetch_add(1, Ordering::Relaxed);
    tracing::info!(
        job.id = job_id,
        run.id = created.run_id,
        tables = pending.len(),
        created = created.created,
        "weir.trigger.table_update.fire: {} updated",
        pending
            .iter()
            .map(|p| p.change.table.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    next.last_run_id = Some(created.run_id);
    // Best effort: `last_run_id` is for display; the run and its changes are committed.
    if let Err(e) = ctx.save_state(&next).await {
        tracing::warn!(job.id = job_id, error = %e.chain(), "weir.trigger.table_update: cannot record the last run id");
    }
    Ok(Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(condition: TableUpdateCondition) -> TableUpdateTrigger {
        TableUpdateTrigger {
            table_names: vec!["Main.Sales.Orders".into(), "main.sales.customers".into()],
            condition,
            min_time_between_triggers_seconds: 0,
            wait_after_last_change_seconds: 0,
        }
    }

    fn record(table: &str, offset: i64, run_id: Option<i64>, seen_time: Millis) -> SeenRecord {
        let change = TableChange {
            table: table.into(),
            version: Some(json!(offset)),
            event_time: None,
            source: "kafka".into(),
            topic: Some("t".into()),
            partition: Some(0),
            offset: Some(offset),
            event_id: None,
        };
        SeenRecord {
            item: SeenItem {
                key: table_key(table),
                fingerprint: serde_json::to_string(&change).unwrap(),
            },
            run_id,
            seen_time,
        }
    }

    #[test]
    fn any_updated_fires_on_one_table_all_updated_waits_for_every_table() {
        let seen = vec![
            record("Main.Sales.Orders", 4, None, 100_000),
            SeenRecord {
                item: SeenItem {
                    key: "offset:t/0".into(),
                    fingerprint: "4".into(),
                },
                run_id: None,
                seen_time: 100_000,
            },
        ];
        let any = spec(TableUpdateCondition::AnyUpdated);
        let p = pending(&any, &seen, 100_000);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].change.table, "Main.Sales.Orders");
        assert!(condition_met(&any, &p));
        let all = spec(TableUpdateCondition::AllUpdated);
        assert!(!condition_met(&all, &pending(&all, &seen, 100_000)));
        let mut both = seen.clone();
        both.push(record("main.sales.customers", 5, None, 100_001));
        let p = pending(&all, &both, 100_000);
        assert_eq!(p.len(), 2);
        assert!(condition_met(&all, &p));
    }

    #[test]
    fn covered_and_pre_arming_changes_are_not_pending() {
        let any = spec(TableUpdateCondition::AnyUpdated);
        let seen = vec![
            record("Main.Sales.Orders", 4, Some(9), 100_000),
            record("main.sales.customers", 5, None, 10_000),
        ];
        assert!(pending(&any, &seen, 100_000).is_empty());
        assert_eq!(pending(&any, &seen, 15_000).len(), 1, "within the slack");
    }

    #[test]
    fn keys_name_the_reported_events() {
        let one = pending(
            &spec(TableUpdateCondition::AnyUpdated),
            &[record("Main.Sales.Orders", 41, None, 0)],
            0,
        );
        assert_eq!(idempotency_key(3, &one), "weir:table_update:3:t/0/41");
        let two = pending(
            &spec(TableUpdateCondition::AnyUpdated),
            &[
                record("Main.Sales.Orders", 41, None, 0),
                record("main.sales.customers", 42, None, 0),
            ],
            0,
        );
        let k = idempotency_key(3, &two);
        assert!(
            k.starts_with("weir:table_update:3:") && k.len() == 20 + 32,
            "{k}"
        );
        let mut reversed = two.clone();
        reversed.reverse();
        assert_eq!(idempotency_key(3, &reversed), k);
    }
}
