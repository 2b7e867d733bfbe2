//! What the Databricks clients send, as the Jobs API reads it: the proto3 JSON mapping (64-bit
//! integers as JSON numbers or numeric strings) and the request fields Weir does not model.
//!
//! A request field that a Databricks client may send but Weir has no use for is honoured when it
//! asks for nothing (absent, `null`, empty), and otherwise refused with
//! `INVALID_PARAMETER_VALUE` naming the field and saying why. A field no Databricks client sends
//! is refused as unknown, naming the fields the request takes.

use super::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Fields of a request body that its request does not take.
pub type Extra = BTreeMap<String, Value>;

/// Parses a JSON request body that takes the fields `takes`: text that is not JSON is
/// `MALFORMED_REQUEST`; any other field is checked with [`check_extra`]; a field of the wrong
/// type or value is `INVALID_PARAMETER_VALUE` naming it.
pub fn parse<T: serde::de::DeserializeOwned>(body: &[u8], takes: &[&str]) -> ApiResult<T> {
    if body.is_empty() {
        return Err(ApiError::malformed("the request needs a JSON body"));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::malformed(format!("request body:{}:{}: {e}", e.line(), e.column()))
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::invalid(format!(
            "request body: expected a JSON object, got {}",
            kind(&value)
        )));
    };
    let (known, extra): (Map<String, Value>, Map<String, Value>) = map
        .into_iter()
        .partition(|(k, _)| takes.contains(&k.as_str()));
    check_extra(&extra.into_iter().collect::<Extra>(), "", takes)?;
    serde_path_to_error::deserialize(Value::Object(known)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            ApiError::invalid(format!("request body: {inner}"))
        } else {
            ApiError::invalid(format!("{path}: {inner}"))
        }
    })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Reads a proto3 `int64`: a JSON number, or a string holding a decimal integer.
pub fn int64_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// `deserialize_with` for a required proto3 `int64` field.
pub fn int64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let v = Value::deserialize(d)?;
    int64_of(&v).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a 64-bit integer (a JSON number or a string of digits), got {v}"
        ))
    })
}

/// `deserialize_with` for an optional proto3 `int64` field (`null` is absent).
pub fn opt_int64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let v = Value::deserialize(d)?;
    if v.is_null() {
        return Ok(None);
    }
    int64_of(&v).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "expected a 64-bit integer (a JSON number or a string of digits), got {v}"
        ))
    })
}

/// `deserialize_with` for an optional boolean that `null` leaves unset.
pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

/// `deserialize_with` for a list that `null` leaves empty.
pub fn list<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// Whether a value asks for nothing: `null`, `""`, `[]`, `{}` or `false`.
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

const TASK_PARAMS: &str = "Weir runs wasm tasks, which take job parameters: pass `job_parameters` (and reference them as {{job.parameters.<name>}})";

/// Why Weir does not take a field that Databricks clients send; `None` for a field no
/// Databricks Jobs request has.
pub fn unsupported_reason(field: &str) -> Option<&'static str> {
    Some(match field {
        "notebook_params"
        | "python_params"
        | "python_named_params"
        | "jar_params"
        | "spark_submit_params"
        | "sql_params"
        | "dbt_commands" => TASK_PARAMS,
        "pipeline_params" => "Weir has no Lakeflow Declarative Pipelines to refresh",
        "performance_target" => "Weir has no serverless compute and no performance modes",
        "duration_target" => {
            "Weir has no duration targets; use `health` rules on RUN_DURATION_SECONDS"
        }
        "budget_policy_id" | "usage_policy_id" => "Weir has no budget or usage policies",
        "environments" | "job_clusters" | "environment_variables" => {
            "Weir runs wasm tasks on its own nodes: it has no clusters or compute environments"
        }
        "git_source" => "Weir runs wasm modules from its registry, not code from a Git repository",
        "deployment" | "parent_path" => "Weir has no bundles or workspace folders",
        "triggers" => "give a single `trigger`",
        "access_control_list" => "set job permissions through /api/2.0/permissions/jobs/{job_id}",
        "run_as" => "runs run as the job's owner",
        "validate_only" => "Weir has no cluster policies",
        _ => return None,
    })
}

/// Checks the fields a request struct did not take: each must ask for nothing and be one that
/// Databricks clients send; `takes` lists the fields the request does take, for the message.
pub fn check_extra(extra: &Extra, at: &str, takes: &[&str]) -> ApiResult<()> {
    for (field, value) in extra {
        check_field(field, value, at, takes)?;
    }
    Ok(())
}

fn check_field(field: &str, value: &Value, at: &str, takes: &[&str]) -> ApiResult<()> {
    match unsupported_reason(field) {
        Some(_) if is_empty(value) => Ok(()),
        Some(why) => Err(ApiError::invalid(format!(
            "{at}{field}: not supported by Weir: {why}"
        ))),
        None => Err(ApiError::invalid(format!(
            "{at}{field}: unknown field; this request takes: {}",
            takes.join(", ")
        ))),
    }
}

/// Job settings fields of the Jobs API that Weir accepts without storing: `edit_mode` (the
/// Databricks UI's lock; Weir's UI does not edit jobs).
const IGNORED_SETTINGS: &[&str] = &["edit_mode"];

/// Takes out of a `JobSettings` object the Databricks fields that Weir does not model: the ones
/// that ask for nothing, and `edit_mode`; refuses the others naming the field. Returns whether
/// anything was removed. Fields unknown to Databricks too stay, for the spec decoder to refuse
/// with their position.
pub fn strip_settings(settings: &mut Map<String, Value>, at: &str) -> ApiResult<bool> {
    let mut removed = false;
    let keys: Vec<String> = settings.keys().cloned().collect();
    for field in keys {
        let value = &settings[&field];
        if IGNORED_SETTINGS.contains(&field.as_str()) {
            if !value.is_null() && !value.is_string() {
                return Err(ApiError::invalid(format!(
                    "{at}{field}: expected a string such as \"EDITABLE\", got {value}"
                )));
            }
        } else if unsupported_reason(&field).is_some() {
            check_field(&field, value, at, &[])?;
        } else {
            continue;
        }
        settings.remove(&field);
        removed = true;
    }
    Ok(removed)
}

/// The text of a JSON body with [`strip_settings`] applied to the object at `at` (dot-separated
/// keys, `""` for the root). The original text is kept when nothing was removed, so spec errors
/// keep their line and column.
pub fn settings_text<'a>(body: &'a str, at: &str) -> ApiResult<std::borrow::Cow<'a, str>> {
    let Ok(mut doc) = serde_json::from_str::<Value>(body) else {
        // The spec parser reports the syntax error with its position.
        return Ok(body.into());
    };
    let mut node = &mut doc;
    let mut prefix = String::new();
    for key in at.split('.').filter(|k| !k.is_empty()) {
        match node.get_mut(key) {
            Some(n) => node = n,
            None => return Ok(body.into()),
        }
        prefix.push_str(key);
        prefix.push('.');
    }
    let Some(map) = node.as_object_mut() else {
        return Ok(body.into());
    };
    if strip_settings(map, &prefix)? {
        let text =
            serde_json::to_string_pretty(&doc).map_err(|e| ApiError::internal(e.to_string()))?;
        Ok(text.into())
    } else {
        Ok(body.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int64_takes_numbers_and_numeric_strings() {
        assert_eq!(int64_of(&json!(42)), Some(42));
        assert_eq!(int64_of(&json!("42")), Some(42));
        assert_eq!(int64_of(&json!("-7")), Some(-7));
        assert_eq!(
            int64_of(&json!(9007199254740993_i64)),
            Some(9007199254740993)
        );
        assert_eq!(int64_of(&json!("9223372036854775807")), Some(i64::MAX));
        assert_eq!(int64_of(&json!("4x")), None);
        assert_eq!(int64_of(&json!(1.5)), None);
        assert_eq!(int64_of(&json!(true)), None);
        assert_eq!(int64_of(&json!("99999999999999999999")), None);
    }

    #[test]
    fn databricks_fields_pass_when_empty_and_are_refused_by_name_otherwise() {
        let takes = ["job_id", "job_parameters"];
        let mut extra = Extra::new();
        extra.insert("notebook_params".into(), json!({}));
        extra.insert("python_params".into(), Value::Null);
        check_extra(&extra, "", &takes).unwrap();
        extra.insert("notebook_params".into(), json!({"a": "1"}));
        let e = check_extra(&extra, "", &takes).unwrap_err();
        assert_eq!(e.code, "INVALID_PARAMETER_VALUE");
        assert!(
            e.message
                .starts_with("notebook_params: not supported by Weir"),
            "{}",
            e.message
        );
        assert!(e.message.contains("job_parameters"));
        let mut unknown = Extra::new();
        unknown.insert("bogus".into(), json!(1));
        let e = check_extra(&unknown, "", &takes).unwrap_err();
        assert_eq!(
            e.message,
            "bogus: unknown field; this request takes: job_id, job_parameters"
        );
    }

    #[test]
    fn settings_lose_empty_databricks_fields_and_keep_positions_otherwise() {
        let plain = r#"{"name": "j", "tasks": []}"#;
        assert_eq!(settings_text(plain, "").unwrap(), plain);
        let with = r#"{"name": "j", "edit_mode": "UI_LOCKED", "job_clusters": [], "tasks": []}"#;
        let out: Value = serde_json::from_str(&settings_text(with, "").unwrap()).unwrap();
        assert_eq!(out, json!({"name": "j", "tasks": []}));
        let nested =
            r#"{"job_id": 1, "new_settings": {"name": "j", "git_source": {"git_url": "x"}}}"#;
        let e = settings_text(nested, "new_settings").unwrap_err();
        assert!(
            e.message
                .starts_with("new_settings.git_source: not supported"),
            "{}",
            e.message
        );
    }
}
