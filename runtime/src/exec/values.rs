//! Task values: the JSON lines a task appends to `WEIR_OUTPUT`.
//!
//! Every non-empty line is `{"key": "<string>", "value": <any json>}`; the last write of a key
//! wins. A violation is an error naming the line, never a silent drop.

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Largest output file read.
pub(crate) const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Longest key, in characters.
pub(crate) const MAX_KEY_CHARS: usize = 128;
/// Largest value, serialized as JSON.
pub(crate) const MAX_VALUE_BYTES: usize = 48 * 1024;

/// Reads and checks the task values file; a missing file holds no values.
pub(crate) fn read(path: &Path) -> Result<BTreeMap<String, Value>, String> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| format!("cannot read the task values file: {e}");
    // Most tasks set no values: an lstat (which never follows a symlink) answers without
    // opening the file.
    let size = match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => meta.len(),
        Ok(_) => return Err("the task values file is not a regular file".into()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(unreadable(e)),
    };
    if size == 0 {
        return Ok(BTreeMap::new());
    }
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "task values file is {size} bytes, over the limit of {MAX_FILE_BYTES} bytes (16 MiB)"
        ));
    }
    let Some(file) = super::workdir::open_output(path).map_err(unreadable)? else {
        return Ok(BTreeMap::new());
    };
    let mut bytes = Vec::with_capacity(size as usize);
    // Bounded even if the file changed after the size check.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "task values file is over the limit of {MAX_FILE_BYTES} bytes (16 MiB)"
        ));
    }
    parse(&bytes)
}

/// Parses the content of a task values file.
pub(crate) fn parse(bytes: &[u8]) -> Result<BTreeMap<String, Value>, String> {
    let text =
        std::str::from_utf8(bytes).map_err(|e| format!("task values file is not UTF-8: {e}"))?;
    let mut values = BTreeMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = parse_line(line).map_err(|e| match e {
            LineError::NotJson(e) => format!("task value line {} is not JSON: {e}", index + 1),
            LineError::Invalid(e) => format!("task value line {}: {e}", index + 1),
        })?;
        values.insert(key, value);
    }
    Ok(values)
}

enum LineError {
    NotJson(serde_json::Error),
    Invalid(String),
}

fn parse_line(line: &str) -> Result<(String, Value), LineError> {
    let expected = r#"expected {"key": "<name>", "value": <json>}"#;
    let line: Value = serde_json::from_str(line).map_err(LineError::NotJson)?;
    let Value::Object(mut fields) = line else {
        return Err(LineError::Invalid(format!(
            "{} is not an object: {expected}",
            kind_of(&line)
        )));
    };
    let key = match fields.remove("key") {
        Some(Value::String(key)) => key,
        Some(other) => {
            return Err(LineError::Invalid(format!(
                "\"key\" is {}, expected a string",
                kind_of(&other)
            )));
        }
        None => {
            return Err(LineError::Invalid(format!(
                "\"key\" is missing: {expected}"
            )));
        }
    };
    let Some(value) = fields.remove("value") else {
        return Err(LineError::Invalid(format!(
            "\"value\" is missing for key {key:?}: {expected}"
        )));
    };
    if let Some(unknown) = fields.keys().next() {
        return Err(LineError::Invalid(format!(
            "unknown field {unknown:?}: {expected}"
        )));
    }
    let chars = key.chars().count();
    if chars == 0 {
        return Err(LineError::Invalid(
            "key is empty: expected 1 to 128 characters".into(),
        ));
    }
    if chars > MAX_KEY_CHARS {
        return Err(LineError::Invalid(format!(
            "key is {chars} characters, over the limit of {MAX_KEY_CHARS}"
        )));
    }
    let size = value.to_string().len();
    if size > MAX_VALUE_BYTES {
        return Err(LineError::Invalid(format!(
            "value of key {key:?} is {size} bytes as JSON, over the limit of {MAX_VALUE_BYTES} bytes (48 KiB)"
        )));
    }
    Ok((key, value))
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_lines_and_the_last_write_wins() {
        let values = parse(
            b"{\"key\": \"rows\", \"value\": 1}\n\n  \n{\"key\":\"obj\",\"value\":{\"a\":[1,2]}}\n{\"key\":\"rows\",\"value\":42}",
        )
        .unwrap();
        assert_eq!(values.len(), 2);
        assert_eq!(values["rows"], json!(42));
        assert_eq!(values["obj"], json!({"a": [1, 2]}));
    }

    #[test]
    fn empty_file_has_no_values() {
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn refuses_bad_lines_naming_them() {
        let cases: &[(&str, &str)] = &[
            ("nope", "task value line 1 is not JSON: "),
            (
                "{\"key\":\"a\",\"value\":1}\n[1]",
                "task value line 2: an array is not an object",
            ),
            ("{\"value\":1}", "task value line 1: \"key\" is missing"),
            (
                "{\"key\":3,\"value\":1}",
                "task value line 1: \"key\" is a number, expected a string",
            ),
            (
                "{\"key\":\"a\"}",
                "task value line 1: \"value\" is missing for key \"a\"",
            ),
            (
                "{\"key\":\"a\",\"value\":1,\"x\":2}",
                "task value line 1: unknown field \"x\"",
            ),
            (
                "{\"key\":\"\",\"value\":1}",
                "task value line 1: key is empty",
            ),
        ];
        for (input, message) in cases {
            let err = parse(input.as_bytes()).unwrap_err();
            assert!(err.starts_with(message), "{input:?} gave {err:?}");
        }
    }

    #[test]
    fn enforces_the_key_and_value_limits() {
        let long_key = format!("{{\"key\":\"{}\",\"value\":1}}", "k".repeat(200));
        assert_eq!(
            parse(format!("\n\n{long_key}").as_bytes()).unwrap_err(),
            "task value line 3: key is 200 characters, over the limit of 128"
        );
        let max_key = format!("{{\"key\":\"{}\",\"value\":1}}", "é".repeat(128));
        assert!(parse(max_key.as_bytes()).is_ok());

        // A JSON string of n characters serializes to n + 2 bytes.
        let at_limit = format!(
            "{{\"key\":\"v\",\"value\":\"{}\"}}",
            "x".repeat(MAX_VALUE_BYTES - 2)
        );
        assert!(parse(at_limit.as_bytes()).is_ok());
        let over = format!(
            "{{\"key\":\"v\",\"value\":\"{}\"}}",
            "x".repeat(MAX_VALUE_BYTES - 1)
        );
        assert_eq!(
            parse(over.as_bytes()).unwrap_err(),
            "task value line 1: value of key \"v\" is 49153 bytes as JSON, over the limit of 49152 bytes (48 KiB)"
        );
    }

    #[test]
    fn refuses_non_utf8_and_huge_files() {
        assert!(
            parse(b"\xff")
                .unwrap_err()
                .starts_with("task values file is not UTF-8")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.jsonl");
        assert!(read(&path).unwrap().is_empty());
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert_eq!(
            read(&path).unwrap_err(),
            "task values file is 16777217 bytes, over the limit of 16777216 bytes (16 MiB)"
        );
    }
}
