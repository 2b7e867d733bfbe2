//! What one attempt sees: references resolved, argv, environment and the context file.

use crate::spec::refs::{self, Reference};
use crate::store::{ResultState, RunId, RunRecord};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A finished upstream task as references and the context file see it.
#[derive(Debug, Clone, Copy)]
pub struct Upstream<'a> {
    /// Its current task run id.
    pub run_id: RunId,
    /// Its result.
    pub result_state: Option<ResultState>,
    /// Its task values.
    pub values: &'a BTreeMap<String, Value>,
}

/// Everything references of one attempt can read.
pub struct Scope<'a> {
    /// The run.
    pub run: &'a RunRecord,
    /// The task key (the inner key for a for-each iteration).
    pub task_key: &'a str,
    /// This attempt's task run id.
    pub task_run_id: RunId,
    /// 0-based attempt number.
    pub attempt: u32,
    /// How many times this task has been executed, this attempt included.
    pub execution_count: usize,
    /// Upstream tasks by key (transitive upstreams only).
    pub upstream: BTreeMap<&'a str, Upstream<'a>>,
    /// The for-each element, for iterations.
    pub input: Option<&'a Value>,
}

/// Renders a JSON value the way references substitute it: strings raw, the rest as JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Scope<'_> {
    /// The trigger time: the payload's `time`, else when the run was accepted.
    fn trigger_time(&self) -> i64 {
        self.run
            .trigger_info
            .get("time")
            .and_then(Value::as_i64)
            .unwrap_or(self.run.created_time)
    }

    /// The value of one reference.
    pub fn resolve(&self, r: &Reference) -> String {
        let run = self.run;
        match r {
            Reference::JobId => run.job_id.map(|id| id.to_string()).unwrap_or_default(),
            Reference::JobName => run.run_name.clone(),
            Reference::JobRunId => run.run_id.to_string(),
            Reference::JobRepairCount => run.repair_count().to_string(),
            Reference::JobStartTime(arg) => arg.render(run.start_time.unwrap_or(run.created_time)),
            Reference::JobTriggerType => run.trigger.reference_value().to_string(),
            Reference::JobTriggerTime(arg) => arg.render(self.trigger_time()),
            Reference::FileArrivalLocation => run
                .trigger_info
                .get("location")
                .map(value_text)
                .unwrap_or_default(),
            Reference::UpdatedTables => run
                .trigger_info
                .get("updated_tables")
                .map(Value::to_string)
                .unwrap_or_else(|| "[]".to_string()),
            Reference::JobParameter(name) => self.param(name),
            Reference::TaskName => self.task_key.to_string(),
            Reference::TaskRunId => self.task_run_id.to_string(),
            Reference::TaskExecutionCount => self.execution_count.to_string(),
            Reference::UpstreamRunId(key) => self
                .upstream
                .get(key.as_str())
                .map(|u| u.run_id.to_string())
                .unwrap_or_default(),
            Reference::UpstreamResultState(key) => self
                .upstream
                .get(key.as_str())
                .and_then(|u| u.result_state)
                .map(|r| r.as_str().to_string())
                .unwrap_or_default(),
            Reference::UpstreamValue(key, name) => self
                .upstream
                .get(key.as_str())
                .and_then(|u| u.values.get(name))
                .map(value_text)
                .unwrap_or_default(),
            Reference::Input(path) => {
                let mut v = self.input;
                for p in path {
                    v = v.and_then(|v| match v {
                        Value::Object(m) => m.get(p),
                        Value::Array(a) => p.parse::<usize>().ok().and_then(|i| a.get(i)),
                        _ => None,
                    });
                }
                v.map(value_text).unwrap_or_default()
            }
        }
    }

    /// A job parameter's value, with the `{{job.*}}` references a default may hold resolved
    /// (one level: a parameter that names another parameter gets its raw value).
    pub fn param(&self, name: &str) -> String {
        let raw = self
            .run
            .job_parameters
            .get(name)
            .cloned()
            .unwrap_or_default();
        refs::render(&raw, |r| match r {
            Reference::JobParameter(other) => self
                .run
                .job_parameters
                .get(other)
                .cloned()
                .unwrap_or_default(),
            other => self.resolve(other),
        })
    }

    /// The job parameters with their references resolved.
    pub fn params(&self) -> BTreeMap<String, String> {
        self.run
            .job_parameters
            .keys()
            .map(|k| (k.clone(), self.param(k)))
            .collect()
    }

    /// Renders a template string.
    pub fn render(&self, text: &str) -> String {
        refs::render(text, |r| self.resolve(r))
    }

    /// The `WEIR_*` environment of the ABI (without the task's own env).
    pub fn weir_env(&self) -> Vec<(String, String)> {
        let run = self.run;
        let mut env = vec![
            (
                "WEIR_JOB_ID".into(),
                run.job_id.map(|i| i.to_string()).unwrap_or_default(),
            ),
            ("WEIR_JOB_NAME".into(), run.run_name.clone()),
            ("WEIR_RUN_ID".into(), run.run_id.to_string()),
            ("WEIR_TASK_KEY".into(), self.task_key.to_string()),
            ("WEIR_TASK_RUN_ID".into(), self.task_run_id.to_string()),
            ("WEIR_ATTEMPT".into(), self.attempt.to_string()),
            (
                "WEIR_TRIGGER_TYPE".into(),
                run.trigger.reference_value().to_string(),
            ),
        ];
        for (name, value) in &self.params() {
            let upper = param_env_name(name);
            let verbatim = format!("WEIR_PARAM_{name}");
            if verbatim != upper {
                env.push((verbatim, value.clone()));
            }
            env.push((upper, value.clone()));
        }
        env
    }

    /// The content of `/weir/context.json`.
    pub fn context(&self) -> Value {
        let run = self.run;
        let tasks: serde_json::Map<String, Value> = self
            .upstream
            .iter()
            .map(|(k, u)| {
                (
                    k.to_string(),
                    json!({
                        "run_id": u.run_id,
                        "result_state": u.result_state.map(|r| r.as_str()),
                        "values": u.values,
                    }),
                )
            })
            .collect();
        let trigger = if run.trigger_info.is_null() {
            Value::Null
        } else {
            run.trigger_info.clone()
        };
        let files = run
            .trigger_info
            .get("files")
            .cloned()
            .unwrap_or_else(|| json!([]));
        let mut ctx = json!({
            "job": {
                "id": run.job_id,
                "name": run.run_name,
                "run_id": run.run_id,
                "repair_count": run.repair_count(),
                "start_time": run.start_time.unwrap_or(run.created_time),
                "trigger": {"type": run.trigger.reference_value(), "time": self.trigger_time()},
            },
            "task": {
                "key": self.task_key,
                "run_id": self.task_run_id,
                "attempt": self.attempt,
                "execution_count": self.execution_count,
            },
            "parameters": self.params(),
            "trigger": trigger,
            "files": files,
            "tasks": tasks,
        });
        if let Some(input) = self.input {
            ctx["input"] = input.clone();
        }
        ctx
    }
}

/// `WEIR_PARAM_<NAME>`: the name upper-cased, anything but letters and digits as `_`.
pub fn param_env_name(name: &str) -> String {
    let mut s = String::from("WEIR_PARAM_");
    s.extend(name.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::JobSettings;
    use crate::store::{LifeCycleState, RunPlan, TriggerType};

    fn run() -> RunRecord {
        RunRecord {
            run_id: 7,
            job_id: Some(3),
            run_name: "orders".into(),
            life_cycle_state: LifeCycleState::Running,
            result_state: None,
            state_message: String::new(),
            trigger: TriggerType::OneTime,
            trigger_info: Value::Null,
            job_parameters: [
                ("region".to_string(), "eu".to_string()),
                ("max-rows".into(), "5".into()),
                ("day".into(), "{{job.start_time.iso_date}}".into()),
            ]
            .into(),
            overriding_parameters: BTreeMap::new(),
            plan: RunPlan {
                settings: JobSettings {
                    name: "orders".into(),
                    description: None,
                    tags: BTreeMap::new(),
                    max_concurrent_runs: 1,
                    queue: None,
                    timeout_seconds: 0,
                    parameters: vec![],
                    trigger: None,
                    schedule: None,
                    continuous: None,
                    health: None,
                    email_notifications: None,
                    webhook_notifications: None,
                    notification_settings: None,
                    format: None,
                    tasks: vec![],
                },
                modules: BTreeMap::new(),
            },
            created_time: 1_763_794_057_000,
            start_time: Some(1_763_794_058_000),
            end_time: None,
            repair_history: vec![],
            cancel_requested: false,
            parent: None,
            idempotency_token: None,
        }
    }

    #[test]
    fn resolves_job_task_upstream_and_input_references() {
        let run = run();
        let values: BTreeMap<String, Value> = [("rows".to_string(), json!(42))].into();
        let input = json!({"file": {"name": "a.csv"}});
        let scope = Scope {
            run: &run,
            task_key: "report",
            task_run_id: 11,
            attempt: 1,
            execution_count: 2,
            upstream: [(
                "ingest",
                Upstream {
                    run_id: 9,
                    result_state: Some(ResultState::Success),
                    values: &values,
                },
            )]
            .into(),
            input: Some(&input),
        };
        assert_eq!(
            scope.render("{{job.id}}/{{job.name}}/{{job.run_id}}/{{job.trigger.type}}"),
            "3/orders/7/onetime"
        );
        assert_eq!(scope.render("{{job.start_time.iso_date}}"), "2025-11-22");
        assert_eq!(scope.render("{{job.parameters.region}}"), "eu");
        assert_eq!(scope.render("{{job.parameters.day}}"), "2025-11-22");
        assert_eq!(scope.render("{{tasks.ingest.values.rows}} rows"), "42 rows");
        assert_eq!(scope.render("{{tasks.ingest.result_state}}"), "SUCCESS");
        assert_eq!(
            scope.render("{{task.name}}#{{task.run_id}}#{{task.execution_count}}"),
            "report#11#2"
        );
        assert_eq!(scope.render("{{input.file.name}}"), "a.csv");
        assert_eq!(scope.render("{{input}}"), r#"{"file":{"name":"a.csv"}}"#);
        let env = scope.weir_env();
        assert!(env.contains(&("WEIR_PARAM_REGION".into(), "eu".into())));
        assert!(env.contains(&("WEIR_PARAM_region".into(), "eu".into())));
        assert!(env.contains(&("WEIR_PARAM_MAX_ROWS".into(), "5".into())));
        assert!(env.contains(&("WEIR_ATTEMPT".into(), "1".into())));
        let ctx = scope.context();
        assert_eq!(ctx["tasks"]["ingest"]["values"]["rows"], 42);
        assert_eq!(ctx["job"]["trigger"]["type"], "onetime");
        assert_eq!(ctx["input"]["file"]["name"], "a.csv");
        assert_eq!(ctx["parameters"]["region"], "eu");
    }
}
