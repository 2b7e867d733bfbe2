//! `POST /api/weir/events`: table change events over HTTP, for producers without Kafka. The
//! same formats and semantics as the Kafka consumer (see `trigger::table_update`): accepted
//! means recorded durably in the seen-sets of the jobs that list the tables.
//!
//! The body is one event, an array of events, or `{"events": [...]}`; an event is a plain
//! `{"table": "catalog.schema.table", "version": ..., "ts_ms": ..., "id": ...}` or a Debezium
//! change event. One bad event refuses the whole request and records nothing.

use super::auth::Caller;
use super::{ApiError, ApiResult, Body, Shared};
use crate::trigger::TriggerContext;
use crate::trigger::table_update::event::{self, Parsed};
use crate::trigger::table_update::{EventSource, Incoming};
use axum::{Extension, Json};
use serde_json::{Value, json};

/// Most events in one request.
pub const MAX_EVENTS: usize = 10_000;

/// `GET /api/weir/events`: counters since the node started (consumed, matched, unmatched,
/// poison, ignored, duplicates, runs) and the Kafka consumer's lag per partition.
pub async fn stats(state: Shared) -> Json<Value> {
    Json(state.table_events.stats())
}

/// `POST /api/weir/events` (admins and members of `admins` only: an event can start any job
/// that lists its table).
pub async fn post(
    state: Shared,
    Extension(caller): Extension<Caller>,
    Body(body): Body,
) -> ApiResult<Json<Value>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden(format!(
            "posting change events needs membership in the `admins` group (they start any job \
             that lists the table); `{}` is not a member",
            caller.name
        )));
    }
    if body.is_empty() {
        return Err(ApiError::malformed("the request needs a JSON body"));
    }
    let value: Value = serde_json::from_slice(&body).map_err(|e| {
        ApiError::malformed(format!("request body:{}:{}: {e}", e.line(), e.column()))
    })?;
    let (list, path): (Vec<Value>, &str) = match value {
        Value::Array(items) => (items, ""),
        Value::Object(mut o)
            if o.get("events").is_some_and(Value::is_array) && !o.contains_key("table") =>
        {
            let Some(Value::Array(items)) = o.remove("events") else {
                unreachable!("checked above")
            };
            (items, "events")
        }
        other => (vec![other], ""),
    };
    if list.is_empty() {
        return Err(ApiError::invalid("the request has no events"));
    }
    if list.len() > MAX_EVENTS {
        return Err(ApiError::invalid(format!(
            "the request has {} events; at most {MAX_EVENTS} are accepted at once",
            list.len()
        )));
    }
    let now = state.engine.now();
    let mut incoming = Vec::with_capacity(list.len());
    let mut ignored = 0;
    let single = list.len() == 1 && path.is_empty();
    for (i, item) in list.iter().enumerate() {
        let at = if single {
            "the event".to_string()
        } else {
            format!("{path}[{i}]")
        };
        match event::parse_value(None, item) {
            Ok(Parsed::Change(change)) => {
                let event_id = change
                    .event_id
                    .clone()
                    .unwrap_or_else(|| format!("{now}-{}", random_hex()));
                incoming.push(Incoming {
                    change,
                    happened_at: now,
                    source: EventSource::Api { event_id },
                });
            }
            Ok(Parsed::Ignored(_)) => ignored += 1,
            Err(e) => return Err(ApiError::invalid(format!("{at}: {e}"))),
        }
    }
    let ctx = TriggerContext::new(state.engine.clone());
    let recorded = state.table_events.record(&ctx, &incoming).await?;
    Ok(Json(json!({
        "accepted": incoming.len(),
        "ignored": ignored,
        "job_ids": recorded.jobs,
        "unmatched_tables": recorded.unmatched,
    })))
}

fn random_hex() -> String {
    let mut buf = [0u8; 8];
    rand::fill(&mut buf[..]);
    hex::encode(buf)
}
