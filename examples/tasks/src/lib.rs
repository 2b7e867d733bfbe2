//! The logic of Weir's example tasks; each `src/bin/<task>.rs` is a thin `weir_sdk::run`
//! wrapper around it, so the logic is tested on the host and runs unchanged as WASI.
//!
//! - [`pipeline`]: the orders pipeline over the lake mounted at [`LAKE`]:
//!   `landing/*.csv` -> `bronze/orders.jsonl` -> `silver/orders.jsonl` -> `gold/totals.json`;
//! - [`report`]: the Markdown report built from the upstream task values;
//! - [`orders`]: the order records and the validation rules;
//! - [`csv`], [`lake`], [`flags`]: small helpers (CSV lines, JSON files, `--name value` flags).
#![deny(missing_docs)]

pub mod csv;
pub mod flags;
pub mod lake;
pub mod orders;
pub mod pipeline;
pub mod report;

pub use flags::Flags;

/// Where the example jobs mount the lake directory.
pub const LAKE: &str = "/lake";

/// The error type of the example tasks: a message for the task log.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The value `key` that the upstream task `task` set, converted to `T`.
pub fn upstream_value<T: serde::de::DeserializeOwned>(
    ctx: &weir_sdk::Context,
    task: &str,
    key: &str,
) -> Result<T, Error> {
    let value = ctx.value_of(task, key).ok_or_else(|| {
        format!(
            "upstream task {task:?} set no value {key:?}: does the job make this task depend on it?"
        )
    })?;
    serde_json::from_value(value.clone())
        .map_err(|e| format!("value {key:?} of upstream task {task:?} is {value}: {e}").into())
}
