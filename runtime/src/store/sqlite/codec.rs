//! Column encodings: states as their API spelling, structured values as JSON text.

use crate::store::{LifeCycleState, ResultState, StoreError, StoreResult, TriggerType};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Serializes a structured column value.
pub(super) fn to_json<T: Serialize>(value: &T, what: &str) -> StoreResult<String> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what} as json: {e}")))
}

/// Deserializes a structured column value; `what` names the column and its row.
pub(super) fn from_json<T: DeserializeOwned>(
    text: &str,
    what: impl FnOnce() -> String,
) -> StoreResult<T> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Backend(format!("corrupt {} in the database: {e}", what())))
}

/// Decodes a life cycle state column.
pub(super) fn life_cycle(text: &str, what: impl FnOnce() -> String) -> StoreResult<LifeCycleState> {
    LifeCycleState::parse(text).ok_or_else(|| unknown(text, what))
}

/// Decodes a nullable result state column.
pub(super) fn result_state(
    text: Option<String>,
    what: impl FnOnce() -> String,
) -> StoreResult<Option<ResultState>> {
    text.map(|t| ResultState::parse(&t).ok_or_else(|| unknown(&t, what)))
        .transpose()
}

/// Decodes a trigger type column.
pub(super) fn trigger(text: &str, what: impl FnOnce() -> String) -> StoreResult<TriggerType> {
    TriggerType::parse(text).ok_or_else(|| unknown(text, what))
}

fn unknown(text: &str, what: impl FnOnce() -> String) -> StoreError {
    StoreError::Backend(format!("unknown {} {text:?} in the database", what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoding_names_the_bad_column() {
        assert_eq!(
            life_cycle("RUNNING", String::new).unwrap(),
            LifeCycleState::Running
        );
        let err = life_cycle("SLEEPING", || "life_cycle_state of run 3".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "state store failure: unknown life_cycle_state of run 3 \"SLEEPING\" in the database"
        );
        assert_eq!(result_state(None, String::new).unwrap(), None);
        assert!(result_state(Some("MEH".into()), String::new).is_err());
        let err = from_json::<Vec<i64>>("{", || "plan of run 7".into()).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("state store failure: corrupt plan of run 7 in the database: "),
            "{err}"
        );
    }
}
