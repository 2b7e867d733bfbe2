//! Task values: JSON lines appended to `$WEIR_OUTPUT`.

use crate::Error;
use serde::Serialize;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest task value key, in characters.
pub const MAX_VALUE_KEY_CHARS: usize = 128;

/// Largest task value, in bytes of serialized JSON (48 KiB).
pub const MAX_VALUE_BYTES: usize = 48 * 1024;

/// The task values file. [`crate::Context::set_value`] writes through it; a task that needs no
/// context can use it alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    path: PathBuf,
}

impl Output {
    /// The file named by `WEIR_OUTPUT`.
    pub fn from_env() -> Result<Output, Error> {
        std::env::var_os("WEIR_OUTPUT")
            .map(Output::at)
            .ok_or(Error::MissingEnv {
                name: "WEIR_OUTPUT",
            })
    }

    /// The values file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Output {
        Output { path: path.into() }
    }

    /// Where the values go.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the key and value against the limits and appends one line
    /// `{"key":...,"value":...}`. A later value of the same key replaces the earlier one.
    pub fn set(&self, key: &str, value: impl Serialize) -> Result<(), Error> {
        let line = encode_line(key, &value)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut file| file.write_all(line.as_bytes()))
            .map_err(|source| Error::WriteOutput {
                path: self.path.clone(),
                source,
            })
    }
}

/// One line of the values file, newline included, after checking the limits.
fn encode_line(key: &str, value: &impl Serialize) -> Result<String, Error> {
    let chars = key.chars().count();
    if chars == 0 || chars > MAX_VALUE_KEY_CHARS {
        return Err(Error::InvalidKey {
            key: key.to_string(),
            chars,
        });
    }
    let value = serde_json::to_string(value).map_err(|source| Error::SerializeValue {
        key: key.to_string(),
        source,
    })?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::ValueTooLarge {
            key: key.to_string(),
            bytes: value.len(),
        });
    }
    let key = serde_json::Value::from(key);
    Ok(format!("{{\"key\":{key},\"value\":{value}}}\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};
    use std::collections::BTreeMap;

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn appends_one_json_line_per_value() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output::at(dir.path().join("output.jsonl"));
        output.set("rows", 42).unwrap();
        output.set("name", "orders \"eu\"\n").unwrap();
        output
            .set("stats", json!({"regions": ["eu", "us"], "ok": true}))
            .unwrap();
        assert_eq!(
            lines(output.path()),
            vec![
                json!({"key": "rows", "value": 42}),
                json!({"key": "name", "value": "orders \"eu\"\n"}),
                json!({"key": "stats", "value": {"regions": ["eu", "us"], "ok": true}}),
            ]
        );
    }

    #[test]
    fn key_length_is_counted_in_characters() {
        assert!(encode_line(&"é".repeat(MAX_VALUE_KEY_CHARS), &1).is_ok());
        let err = encode_line(&"k".repeat(MAX_VALUE_KEY_CHARS + 1), &1).unwrap_err();
        assert!(matches!(err, Error::InvalidKey { chars: 129, .. }));
        let message = err.to_string();
        assert!(message.contains("129 characters"), "{message}");
        assert!(message.contains("expected 1 to 128"), "{message}");
        assert!(matches!(
            encode_line("", &1),
            Err(Error::InvalidKey { chars: 0, .. })
        ));
    }

    #[test]
    fn value_size_limit_is_inclusive() {
        // A JSON string of n characters serializes to n + 2 bytes.
        let largest = "x".repeat(MAX_VALUE_BYTES - 2);
        assert!(encode_line("v", &largest).is_ok());
        let err = encode_line("v", &format!("{largest}x")).unwrap_err();
        assert!(matches!(err, Error::ValueTooLarge { bytes, .. } if bytes == MAX_VALUE_BYTES + 1));
        assert!(err.to_string().contains("at most 49152 bytes"));
    }

    #[test]
    fn a_refused_value_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output::at(dir.path().join("output.jsonl"));
        assert!(output.set("big", "x".repeat(MAX_VALUE_BYTES)).is_err());
        assert!(!output.path().exists());
    }

    #[test]
    fn unserializable_values_are_refused() {
        let mut map = BTreeMap::new();
        map.insert((1, 2), "tuple keys are not JSON object keys");
        let err = encode_line("map", &map).unwrap_err();
        assert!(matches!(err, Error::SerializeValue { .. }));
        assert!(
            err.to_string()
                .starts_with("task value \"map\" cannot be serialized")
        );
    }

    #[test]
    fn an_unwritable_output_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let output = Output::at(dir.path().join("missing-dir").join("output.jsonl"));
        let err = output.set("rows", 1).unwrap_err();
        assert!(matches!(err, Error::WriteOutput { .. }));
        assert!(err.to_string().contains("missing-dir"));
    }
}
