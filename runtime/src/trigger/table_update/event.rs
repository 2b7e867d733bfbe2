//! Change events as producers write them, read into [`ChangeEvent`]s.
//!
//! Two formats, told apart by their shape:
//! - a **Debezium** change event, with or without the JSON converter's `{"schema": ...,
//!   "payload": ...}` wrapper: the table is `payload.source.{db,schema,table}` (`collection`
//!   for MongoDB), its version the source's log position (`lsn`, `scn`, `change_lsn` or `pos`)
//!   and its time `ts_ms`. When `source` is missing, the topic name `server.schema.table` gives
//!   `schema.table`. Schema-change events (`ddl`) and tombstones (a null value) are ignored;
//! - a **plain** event: `{"table": "catalog.schema.table", "version": ..., "ts_ms": ...,
//!   "id": ...}` (only `table` is required).
//!
//! # Table names
//! A name with three parts (`db.schema.table` from Debezium, `catalog.schema.table` from a plain
//! event) is compared with the job's `table_names` whole, case-insensitively: a Postgres
//! database `main` with schema `sales` and table `orders` updates `main.sales.orders`. A name
//! with two parts — Debezium without a schema part (MySQL: `db.table`), or a name from the
//! topic — is `schema.table` and updates every listed table with those last two parts, in any
//! catalog.

use crate::store::Millis;
use serde_json::Value;

/// The largest event accepted, in bytes; a larger one is skipped as poison.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;

/// One table change read from an event.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangeEvent {
    /// The table as the event names it: `catalog.schema.table` or `schema.table`.
    pub table: String,
    /// The table version (a log position, a Delta version, ...), if the event has one.
    pub version: Option<Value>,
    /// The event's own time (`ts_ms`), if any.
    pub event_time: Option<Millis>,
    /// The event's id (`id` of a plain event), if any.
    pub event_id: Option<String>,
}

/// What an event turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A change of one table.
    Change(ChangeEvent),
    /// Nothing to act on (a tombstone, a schema change); says what it was.
    Ignored(&'static str),
}

/// Why an event cannot be read: it is skipped as poison, never retried.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Larger than [`MAX_EVENT_BYTES`].
    #[error("the event is {size} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Not JSON.
    #[error("the event is not JSON: {0}")]
    NotJson(String),
    /// JSON, but no table in it.
    #[error(
        "the event names no table: expected a Debezium change event (payload.source.db, \
         schema, table) or {{\"table\": \"catalog.schema.table\"}}"
    )]
    NoTable,
    /// A table name of the wrong shape.
    #[error("table name {0:?} must be catalog.schema.table (or schema.table)")]
    BadName(String),
}

/// Reads a Kafka message value (`None`: a tombstone) from `topic`.
pub fn parse_bytes(topic: Option<&str>, bytes: Option<&[u8]>) -> Result<Parsed, EventError> {
    let Some(bytes) = bytes.filter(|b| !b.is_empty()) else {
        return Ok(Parsed::Ignored("a tombstone (no value)"));
    };
    if bytes.len() > MAX_EVENT_BYTES {
        return Err(EventError::TooLarge {
            size: bytes.len(),
            limit: MAX_EVENT_BYTES,
        });
    }
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| EventError::NotJson(e.to_string()))?;
    parse_value(topic, &value)
}

/// Reads one event already parsed as JSON (`topic`: the Kafka topic it came from, if any).
pub fn parse_value(topic: Option<&str>, value: &Value) -> Result<Parsed, EventError> {
    let Some(object) = value.as_object() else {
        return if value.is_null() {
            Ok(Parsed::Ignored("a tombstone (null value)"))
        } else {
            Err(EventError::NoTable)
        };
    };
    if let Some(table) = object.get("table").and_then(Value::as_str) {
        return Ok(Parsed::Change(ChangeEvent {
            table: checked(table)?,
            version: object.get("version").filter(|v| !v.is_null()).cloned(),
            event_time: object.get("ts_ms").and_then(Value::as_i64),
            event_id: object.get("id").and_then(id_text),
        }));
    }
    // The JSON converter with schemas on wraps the event: {"schema": {...}, "payload": {...}}.
    let body = match object.get("payload") {
        Some(Value::Object(p))
            if object.contains_key("schema") || !object.contains_key("source") =>
        {
            p
        }
        Some(Value::Null) if object.contains_key("schema") => {
            return Ok(Parsed::Ignored("a tombstone (null payload)"));
        }
        _ => object,
    };
    if body.contains_key("ddl") || body.contains_key("tableChanges") {
        return Ok(Parsed::Ignored("a schema change event"));
    }
    let event_time = body.get("ts_ms").and_then(Value::as_i64);
    if let Some(Value::Object(source)) = body.get("source") {
        let text = |k: &str| {
            source
                .get(k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(table) = text("table").or_else(|| text("collection")) else {
            return Err(EventError::NoTable);
        };
        let name = match (text("db"), text("schema")) {
            (Some(db), Some(schema)) => format!("{db}.{schema}.{table}"),
            (Some(prefix), None) | (None, Some(prefix)) => format!("{prefix}.{table}"),
            (None, None) => table.to_string(),
        };
        let version = ["lsn", "scn", "change_lsn", "pos"]
            .iter()
            .find_map(|k| source.get(*k).filter(|v| !v.is_null()))
            .cloned();
        return Ok(Parsed::Change(ChangeEvent {
            table: checked(&name)?,
            version,
            event_time: event_time.or_else(|| source.get("ts_ms").and_then(Value::as_i64)),
            event_id: None,
        }));
    }
    // A Debezium envelope without `source`: the topic is `server.schema.table`.
    if body.contains_key("op")
        && let Some(topic) = topic
    {
        let parts: Vec<&str> = topic.split('.').collect();
        if parts.len() >= 3 {
            let name = parts[parts.len() - 2..].join(".");
            return Ok(Parsed::Change(ChangeEvent {
                table: checked(&name)?,
                version: None,
                event_time,
                event_id: None,
            }));
        }
    }
    Err(EventError::NoTable)
}

fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `name` when it has two or three non-empty dot-separated parts.
fn checked(name: &str) -> Result<String, EventError> {
    let name = name.trim();
    let parts: Vec<&str> = name.split('.').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.trim().is_empty()) {
        return Err(EventError::BadName(name.to_string()));
    }
    Ok(name.to_string())
}

/// The form names are compared in: lowercase, no surrounding blanks.
pub fn normalized(name: &str) -> String {
    name.trim().to_lowercase()
}

/// The last two parts (`schema.table`) of a normalized three-part name.
pub fn short_name(normalized: &str) -> Option<&str> {
    let first_dot = normalized.find('.')?;
    let rest = &normalized[first_dot + 1..];
    rest.contains('.').then_some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(topic: Option<&str>, v: Value) -> ChangeEvent {
        match parse_value(topic, &v).unwrap() {
            Parsed::Change(c) => c,
            other => panic!("not a change: {other:?}"),
        }
    }

    #[test]
    fn plain_events_name_their_table() {
        let c = change(
            None,
            json!({"table": "Main.Sales.Orders", "version": 12, "ts_ms": 5, "id": "e-1"}),
        );
        assert_eq!(c.table, "Main.Sales.Orders");
        assert_eq!(c.version, Some(json!(12)));
        assert_eq!(c.event_time, Some(5));
        assert_eq!(c.event_id.as_deref(), Some("e-1"));
        assert_eq!(
            parse_value(None, &json!({"table": "orders"})),
            Err(EventError::BadName("orders".into()))
        );
        assert_eq!(
            parse_value(None, &json!({"table": "a..b"})),
            Err(EventError::BadName("a..b".into()))
        );
    }

    #[test]
    fn debezium_envelopes_with_and_without_the_schema_wrapper() {
        let source =
            json!({"db": "main", "schema": "sales", "table": "orders", "lsn": 77, "ts_ms": 9});
        let bare =
            json!({"before": null, "after": {"id": 1}, "source": source, "op": "c", "ts_ms": 10});
        let c = change(Some("srv.sales.orders"), bare.clone());
        assert_eq!(c.table, "main.sales.orders");
        assert_eq!(c.version, Some(json!(77)));
        assert_eq!(c.event_time, Some(10));
        let wrapped = json!({"schema": {"type": "struct"}, "payload": bare});
        assert_eq!(change(None, wrapped), c);
        let mysql = json!({"payload": {"source": {"db": "inventory", "table": "customers", "pos": 4}, "op": "u"}});
        assert_eq!(change(None, mysql).table, "inventory.customers");
    }

    #[test]
    fn the_topic_names_the_table_when_source_is_missing() {
        let c = change(
            Some("dbserver1.public.orders"),
            json!({"op": "d", "ts_ms": 3}),
        );
        assert_eq!(c.table, "public.orders");
        assert_eq!(
            parse_value(Some("orders"), &json!({"op": "d"})),
            Err(EventError::NoTable)
        );
    }

    #[test]
    fn tombstones_and_schema_changes_are_ignored() {
        assert!(matches!(
            parse_bytes(Some("t"), None),
            Ok(Parsed::Ignored(_))
        ));
        assert!(matches!(
            parse_bytes(Some("t"), Some(b"null")),
            Ok(Parsed::Ignored(_))
        ));
        assert!(matches!(
            parse_value(None, &json!({"schema": {}, "payload": null})),
            Ok(Parsed::Ignored(_))
        ));
        assert!(matches!(
            parse_value(
                None,
                &json!({"source": {"db": "d"}, "ddl": "CREATE TABLE t ()"})
            ),
            Ok(Parsed::Ignored(_))
        ));
    }

    #[test]
    fn poison_is_reported() {
        assert!(matches!(
            parse_bytes(None, Some(b"{not json")),
            Err(EventError::NotJson(_))
        ));
        assert_eq!(parse_bytes(None, Some(b"[1,2]")), Err(EventError::NoTable));
        assert_eq!(
            parse_bytes(None, Some(b"{\"hello\": 1}")),
            Err(EventError::NoTable)
        );
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert!(matches!(
            parse_bytes(None, Some(&huge)),
            Err(EventError::TooLarge { .. })
        ));
    }

    #[test]
    fn names_compare_lowercase_and_by_their_last_two_parts() {
        assert_eq!(normalized(" Main.Sales.Orders "), "main.sales.orders");
        assert_eq!(short_name("main.sales.orders"), Some("sales.orders"));
        assert_eq!(short_name("sales.orders"), None);
    }
}
