//! [`Context`]: what the runtime tells a task, loaded from the environment and `WEIR_CONTEXT`.

use crate::document::{Document, FileInfo, UpstreamTask};
use crate::{Error, Output};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Everything a task run knows about itself: identity, arguments, job parameters, trigger
/// payload, arrived files and upstream task values; and where its own task values go.
#[derive(Debug, Clone)]
pub struct Context {
    task_key: String,
    job_id: Option<i64>,
    job_name: String,
    run_id: i64,
    task_run_id: i64,
    attempt: u32,
    trigger_type: String,
    args: Vec<String>,
    document: Document,
    json: Value,
    output: Output,
}

impl Context {
    /// Loads the context of this process: the `WEIR_*` variables, `argv[1..]` and the JSON
    /// file named by `WEIR_CONTEXT`.
    pub fn load() -> Result<Context, Error> {
        let args = std::env::args_os()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        Context::load_from(std::env::var_os, args)
    }

    /// Loads a context from any variable lookup and argument list.
    fn load_from(
        env: impl Fn(&'static str) -> Option<std::ffi::OsString>,
        args: Vec<String>,
    ) -> Result<Context, Error> {
        let text = |name: &'static str| -> Result<String, Error> {
            let value = env(name).ok_or(Error::MissingEnv { name })?;
            value.into_string().map_err(|value| Error::InvalidEnv {
                name,
                value: value.to_string_lossy().into_owned(),
                expected: "UTF-8 text",
            })
        };
        let number = |name: &'static str| -> Result<i64, Error> {
            let value = text(name)?;
            value.parse().map_err(|_| Error::InvalidEnv {
                name,
                value,
                expected: "an integer",
            })
        };
        let job_id = match text("WEIR_JOB_ID")? {
            id if id.is_empty() => None,
            id => Some(id.parse().map_err(|_| Error::InvalidEnv {
                name: "WEIR_JOB_ID",
                value: id,
                expected: "an integer, or empty for a one-time run",
            })?),
        };
        let attempt = text("WEIR_ATTEMPT")?;
        let attempt = attempt.parse().map_err(|_| Error::InvalidEnv {
            name: "WEIR_ATTEMPT",
            value: attempt,
            expected: "0 for the first attempt, 1 for the first retry, ...",
        })?;
        let context_path = PathBuf::from(env("WEIR_CONTEXT").ok_or(Error::MissingEnv {
            name: "WEIR_CONTEXT",
        })?);
        let output = Output::at(env("WEIR_OUTPUT").ok_or(Error::MissingEnv {
            name: "WEIR_OUTPUT",
        })?);
        let bytes = std::fs::read(&context_path).map_err(|source| Error::ReadContext {
            path: context_path.clone(),
            source,
        })?;
        let parse_error = |source| Error::ParseContext {
            path: context_path.clone(),
            source,
        };
        let json: Value = serde_json::from_slice(&bytes).map_err(parse_error)?;
        let document = Document::deserialize(&json).map_err(parse_error)?;
        Ok(Context {
            task_key: text("WEIR_TASK_KEY")?,
            job_id,
            job_name: text("WEIR_JOB_NAME")?,
            run_id: number("WEIR_RUN_ID")?,
            task_run_id: number("WEIR_TASK_RUN_ID")?,
            attempt,
            trigger_type: text("WEIR_TRIGGER_TYPE")?,
            args,
            document,
            json,
            output,
        })
    }

    /// The task's key in the job (`WEIR_TASK_KEY`).
    pub fn task_key(&self) -> &str {
        &self.task_key
    }

    /// The job's id; `None` for a one-time submitted run.
    pub fn job_id(&self) -> Option<i64> {
        self.job_id
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.job_name
    }

    /// The job run's id.
    pub fn run_id(&self) -> i64 {
        self.run_id
    }

    /// This task run's id.
    pub fn task_run_id(&self) -> i64 {
        self.task_run_id
    }

    /// 0 for the first attempt, 1 for the first retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// What started the run: `onetime`, `periodic`, `file_arrival`, `table`, `continuous` or
    /// `run_job_task`.
    pub fn trigger_type(&self) -> &str {
        &self.trigger_type
    }

    /// The task's `parameters` with their references resolved (`argv[1..]`).
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// A job parameter's value for this run.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.document.parameters.get(name).map(String::as_str)
    }

    /// Every job parameter of this run.
    pub fn params(&self) -> &BTreeMap<String, String> {
        &self.document.parameters
    }

    /// The trigger payload (the updated tables, ...); `null` for a manual run.
    pub fn trigger(&self) -> &Value {
        &self.document.trigger
    }

    /// The files a file-arrival trigger reported (exactly those new since the job's previous
    /// triggered run); empty otherwise. Each is readable at [`FileInfo::input_path`].
    pub fn files(&self) -> &[FileInfo] {
        &self.document.files
    }

    /// The value `key` that the upstream task `task` set.
    pub fn value_of(&self, task: &str, key: &str) -> Option<&Value> {
        self.document.tasks.get(task)?.values.get(key)
    }

    /// The result state (`SUCCESS`, `FAILED`, ...) of the upstream task `task`.
    pub fn result_of(&self, task: &str) -> Option<&str> {
        self.document.tasks.get(task)?.result_state.as_deref()
    }

    /// Every upstream task, by key.
    pub fn tasks(&self) -> &BTreeMap<String, UpstreamTask> {
        &self.document.tasks
    }

    /// The element of a for-each iteration; `None` outside one.
    pub fn input(&self) -> Option<&Value> {
        self.document.input.as_ref()
    }

    /// The whole context file, for fields this type has no accessor for.
    pub fn json(&self) -> &Value {
        &self.json
    }

    /// Sets a task value that downstream tasks read with `value_of` and
    /// `{{tasks.<key>.values.<name>}}`. The key must have 1 to 128 characters and the value
    /// at most 48 KiB of JSON; both are checked before anything is written.
    pub fn set_value(&mut self, key: &str, value: impl Serialize) -> Result<(), Error> {
        self.output.set(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::ffi::OsString;
    use std::path::Path;

    /// A complete ABI environment for a context file at `dir/context.json`.
    fn abi_env(dir: &Path) -> BTreeMap<&'static str, OsString> {
        [
            ("WEIR_TASK_KEY", "report".into()),
            ("WEIR_JOB_ID", "1".into()),
            ("WEIR_JOB_NAME", "orders-pipeline".into()),
            ("WEIR_RUN_ID", "5".into()),
            ("WEIR_TASK_RUN_ID", "9".into()),
            ("WEIR_ATTEMPT", "2".into()),
            ("WEIR_TRIGGER_TYPE", "file_arrival".into()),
            ("WEIR_CONTEXT", dir.join("context.json").into()),
            ("WEIR_OUTPUT", dir.join("output.jsonl").into()),
        ]
        .into_iter()
        .collect()
    }

    fn sample_context() -> Value {
        json!({
            "job": {"id": 1, "name": "orders-pipeline", "run_id": 5},
            "task": {"key": "report", "run_id": 9, "attempt": 2, "execution_count": 3},
            "parameters": {"region": "eu", "max_invalid_pct": "20"},
            "trigger": {"files": 1},
            "files": [{"path": "2024/orders-1.csv", "size": 120,
                       "modification_time": 1763794000000_i64, "etag": "\"9b2c\""}],
            "tasks": {
                "ingest": {"run_id": 6, "result_state": "SUCCESS",
                           "values": {"rows": 42, "files": ["orders-1.csv"]}},
                "validate": {"run_id": 7, "result_state": "FAILED", "values": {}}
            },
            "input": {"region": "us"}
        })
    }

    fn load(env: &BTreeMap<&'static str, OsString>, args: &[&str]) -> Result<Context, Error> {
        Context::load_from(
            |name| env.get(name).cloned(),
            args.iter().map(|a| a.to_string()).collect(),
        )
    }

    fn write_context(dir: &Path, context: &Value) {
        std::fs::write(dir.join("context.json"), context.to_string()).unwrap();
    }

    #[test]
    fn loads_identity_from_the_env_and_data_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &sample_context());
        let ctx = load(&abi_env(dir.path()), &["--date", "2025-11-22"]).unwrap();
        assert_eq!(ctx.task_key(), "report");
        assert_eq!(ctx.job_id(), Some(1));
        assert_eq!(ctx.job_name(), "orders-pipeline");
        assert_eq!(ctx.run_id(), 5);
        assert_eq!(ctx.task_run_id(), 9);
        assert_eq!(ctx.attempt(), 2);
        assert_eq!(ctx.trigger_type(), "file_arrival");
        assert_eq!(ctx.args(), ["--date", "2025-11-22"]);
        assert_eq!(ctx.param("region"), Some("eu"));
        assert_eq!(ctx.param("missing"), None);
        assert_eq!(ctx.params().len(), 2);
        assert_eq!(ctx.trigger(), &json!({"files": 1}));
        assert_eq!(ctx.files()[0].path, "2024/orders-1.csv");
        assert_eq!(ctx.files()[0].input_path(), "/input/2024/orders-1.csv");
        assert_eq!(ctx.files()[0].modification_time, 1763794000000);
        assert_eq!(ctx.files()[0].etag.as_deref(), Some("\"9b2c\""));
        assert_eq!(ctx.value_of("ingest", "rows"), Some(&json!(42)));
        assert_eq!(ctx.value_of("ingest", "nope"), None);
        assert_eq!(ctx.value_of("nope", "rows"), None);
        assert_eq!(ctx.result_of("ingest"), Some("SUCCESS"));
        assert_eq!(ctx.result_of("validate"), Some("FAILED"));
        assert_eq!(ctx.result_of("nope"), None);
        assert_eq!(
            ctx.tasks().keys().collect::<Vec<_>>(),
            ["ingest", "validate"]
        );
        assert_eq!(ctx.input(), Some(&json!({"region": "us"})));
        assert_eq!(ctx.json()["task"]["execution_count"], json!(3));
    }

    #[test]
    fn an_empty_job_id_is_a_one_time_run() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &json!({}));
        let mut env = abi_env(dir.path());
        env.insert("WEIR_JOB_ID", "".into());
        let ctx = load(&env, &[]).unwrap();
        assert_eq!(ctx.job_id(), None);
        assert_eq!(ctx.trigger(), &Value::Null);
        assert!(ctx.files().is_empty());
        assert_eq!(ctx.input(), None);
    }

    #[test]
    fn set_value_appends_to_weir_output() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &json!({}));
        let mut ctx = load(&abi_env(dir.path()), &[]).unwrap();
        ctx.set_value("rows", 42).unwrap();
        ctx.set_value("regions", ["eu", "us"]).unwrap();
        let written = std::fs::read_to_string(dir.path().join("output.jsonl")).unwrap();
        assert_eq!(
            written,
            "{\"key\":\"rows\",\"value\":42}\n{\"key\":\"regions\",\"value\":[\"eu\",\"us\"]}\n"
        );
    }

    #[test]
    fn a_missing_variable_is_named() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &json!({}));
        for name in [
            "WEIR_TASK_KEY",
            "WEIR_RUN_ID",
            "WEIR_CONTEXT",
            "WEIR_OUTPUT",
        ] {
            let mut env = abi_env(dir.path());
            env.remove(name);
            let err = load(&env, &[]).unwrap_err();
            assert!(
                matches!(err, Error::MissingEnv { name: missing } if missing == name),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(name));
        }
    }

    #[test]
    fn malformed_numbers_are_refused_with_the_value() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &json!({}));
        for (name, value) in [
            ("WEIR_ATTEMPT", "-1"),
            ("WEIR_RUN_ID", "five"),
            ("WEIR_JOB_ID", "x1"),
        ] {
            let mut env = abi_env(dir.path());
            env.insert(name, value.into());
            let message = load(&env, &[]).unwrap_err().to_string();
            assert!(
                message.contains(name) && message.contains(&format!("{value:?}")),
                "{message}"
            );
        }
    }

    #[test]
    fn an_unreadable_or_invalid_context_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let env = abi_env(dir.path());
        let err = load(&env, &[]).unwrap_err();
        assert!(matches!(err, Error::ReadContext { .. }), "{err}");
        assert!(err.to_string().contains("context.json"));

        std::fs::write(dir.path().join("context.json"), "{not json").unwrap();
        let err = load(&env, &[]).unwrap_err();
        assert!(matches!(err, Error::ParseContext { .. }), "{err}");

        write_context(dir.path(), &json!({"tasks": {"ingest": {"values": [1]}}}));
        let err = load(&env, &[]).unwrap_err();
        assert!(matches!(err, Error::ParseContext { .. }), "{err}");
    }

    #[test]
    fn load_reads_the_process_environment() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), &sample_context());
        let env = abi_env(dir.path());
        let ctx = crate::tests::load_with_process_env(env.iter().map(|(k, v)| (*k, v.as_os_str())))
            .unwrap();
        assert_eq!(ctx.task_key(), "report");
        assert_eq!(
            ctx.value_of("ingest", "files"),
            Some(&json!(["orders-1.csv"]))
        );
    }
}
