//! Reading and writing the lake's files.

use crate::Error;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::Path;

/// Reads a JSON-lines file into records.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .map_err(|e| format!("{}:{}: {e}", path.display(), index + 1).into())
        })
        .collect()
}

/// Writes records as a JSON-lines file.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), Error> {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record)?);
        text.push('\n');
    }
    write_file(path, text.as_bytes())
}

/// Writes a file whole: into a temporary sibling first, then renamed over `path`, so a reader
/// never sees half of it. Creates the parent directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    std::fs::write(&temporary, bytes).map_err(fail)?;
    std::fs::rename(&temporary, path).map_err(fail)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn json_lines_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("silver").join("orders.jsonl");
        let records = vec![json!({"id": 1}), json!({"id": 2})];
        write_jsonl(&path, &records).unwrap();
        assert_eq!(read_jsonl::<Value>(&path).unwrap(), records);
        assert!(!dir.path().join("silver").join("orders.jsonl.tmp").exists());
    }

    #[test]
    fn a_bad_line_is_located() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bronze.jsonl");
        std::fs::write(&path, "{\"id\": 1}\n{oops\n").unwrap();
        let err = read_jsonl::<Value>(&path).unwrap_err().to_string();
        assert!(err.contains("bronze.jsonl:2:"), "{err}");
        let err = read_jsonl::<Value>(&dir.path().join("missing.jsonl")).unwrap_err();
        assert!(err.to_string().starts_with("cannot read "), "{err}");
    }
}
