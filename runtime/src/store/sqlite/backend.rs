//! Backend failures: SQLite errors as [`StoreError::Backend`], named by the operation.

use crate::store::StoreError;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

/// Prefixes a backend failure with the store operation that met it.
pub(super) fn with_op(op: &str, e: StoreError) -> StoreError {
    match e {
        StoreError::Backend(message) => StoreError::Backend(format!("{op}: {message}")),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_errors_name_the_operation() {
        let err = with_op("get_run", StoreError::from(rusqlite::Error::InvalidQuery));
        assert_eq!(
            err.to_string(),
            "state store failure: get_run: sqlite: Query is not read-only"
        );
        let kept = with_op("get_run", StoreError::NotFound("run 4".into()));
        assert_eq!(kept.to_string(), "run 4 does not exist");
    }
}
