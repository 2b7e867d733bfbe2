//! The parts of `/weir/context.json` that the SDK gives typed access to.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// A file that arrived and fired a file-arrival trigger (one entry of the trigger payload's
/// `files`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Path relative to the trigger's `url`, `/`-separated, e.g. `2024/orders-1.csv`.
    #[serde(default)]
    pub path: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: u64,
    /// Last modification, in milliseconds since the epoch.
    #[serde(default)]
    pub modification_time: i64,
    /// The object's ETag (object stores only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
}

impl FileInfo {
    /// Where the task reads the file: `/input/<path>`.
    pub fn input_path(&self) -> String {
        format!("/input/{}", self.path)
    }
}

/// An upstream task as the context file describes it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UpstreamTask {
    /// The upstream task run's id.
    #[serde(default)]
    pub run_id: Option<i64>,
    /// Its result state (`SUCCESS`, `FAILED`, `UPSTREAM_FAILED`, ...); `None` when it has none.
    #[serde(default)]
    pub result_state: Option<String>,
    /// The task values it set.
    #[serde(default, deserialize_with = "null_as_default")]
    pub values: BTreeMap<String, Value>,
}

/// The typed view of the context file. Unknown fields are ignored, so a newer runtime can add
/// some without breaking older tasks.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub(crate) struct Document {
    #[serde(default, deserialize_with = "parameter_map")]
    pub(crate) parameters: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) trigger: Value,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) files: Vec<FileInfo>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub(crate) tasks: BTreeMap<String, UpstreamTask>,
    #[serde(default, deserialize_with = "present")]
    pub(crate) input: Option<Value>,
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A field that is present is `Some`, even when it is JSON `null` (a for-each element may be).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// Job parameters are strings; numbers and booleans are taken as their JSON text.
fn parameter_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    let raw: Option<BTreeMap<String, Value>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(s) => (name, s),
            other => (name, other.to_string()),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_the_documented_example() {
        let doc: Document = serde_json::from_value(json!({
            "job": {"id": 1, "name": "orders-pipeline", "run_id": 5, "repair_count": 0,
                    "start_time": 1763794057000_i64,
                    "trigger": {"type": "onetime", "time": 1763794057000_i64}},
            "task": {"key": "report", "run_id": 9, "attempt": 0, "execution_count": 1},
            "parameters": {"region": "eu"},
            "trigger": null,
            "files": [{"path": "orders-1.csv", "size": 120,
                       "modification_time": 1763794000000_i64}],
            "tasks": {"ingest": {"run_id": 6, "result_state": "SUCCESS", "values": {"rows": 42}}}
        }))
        .unwrap();
        assert_eq!(doc.parameters["region"], "eu");
        assert_eq!(doc.trigger, Value::Null);
        assert_eq!(doc.files[0].path, "orders-1.csv");
        assert_eq!(doc.files[0].input_path(), "/input/orders-1.csv");
        assert_eq!(doc.files[0].size, 120);
        assert_eq!(doc.tasks["ingest"].run_id, Some(6));
        assert_eq!(doc.tasks["ingest"].values["rows"], json!(42));
        assert_eq!(doc.input, None);
    }

    #[test]
    fn tolerates_missing_and_null_sections() {
        let doc: Document =
            serde_json::from_value(json!({"files": null, "tasks": null, "parameters": null}))
                .unwrap();
        assert_eq!(doc, Document::default());
    }

    #[test]
    fn a_null_input_is_present() {
        let doc: Document = serde_json::from_value(json!({"input": null})).unwrap();
        assert_eq!(doc.input, Some(Value::Null));
    }

    #[test]
    fn non_string_parameters_become_their_json_text() {
        let doc: Document =
            serde_json::from_value(json!({"parameters": {"n": 20, "dry_run": false}})).unwrap();
        assert_eq!(doc.parameters["n"], "20");
        assert_eq!(doc.parameters["dry_run"], "false");
    }

    #[test]
    fn a_wrongly_typed_section_is_an_error() {
        let err = serde_json::from_value::<Document>(json!({"files": "x"})).unwrap_err();
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
