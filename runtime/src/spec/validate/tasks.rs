//! Tasks: keys, dependencies, the DAG, and each task kind's fields.

use super::graph::Dag;
use super::mounts;
use super::references::{self, Scope, TaskScope};
use super::{Checker, parameter_name_message, triggers, valid_parameter_name};
use crate::spec::location::FieldPath;
use crate::spec::{
    ConditionTask, ForEachTask, JobSettings, ModuleRef, PathPolicy, RunJobTask, Task, WasmTask,
};
use std::collections::HashMap;

/// Longest task key.
const MAX_TASK_KEY_CHARS: usize = 100;
/// Largest `memory_limit_mb`.
const MAX_MEMORY_LIMIT_MB: u32 = 65536;
/// Largest for-each `concurrency`.
const MAX_FOR_EACH_CONCURRENCY: u32 = 100;

/// Checks every task of a job.
pub(super) fn check(checker: &mut Checker<'_>, settings: &JobSettings, tasks_path: &FieldPath) {
    let dag = Dag::new(settings);
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    for (i, task) in settings.tasks.iter().enumerate() {
        let path = tasks_path.index(i);
        let key_path = path.key("task_key");
        check_key(checker, &task.task_key, &key_path);
        match first.get(task.task_key.as_str()) {
            Some(earlier) => {
                let message = format!(
                    "duplicate task_key `{}` (first at {})",
                    task.task_key,
                    checker.first_at(earlier)
                );
                checker.report(key_path, message);
            }
            None => {
                first.insert(&task.task_key, key_path);
            }
        }
        check_dependencies(checker, settings, task, &path);
        let upstream = dag.upstream(i);
        let scope = TaskScope {
            key: &task.task_key,
            upstream: &upstream,
            input: false,
        };
        check_task(checker, settings, task, &path, scope);
    }
    for cycle in dag.cycles() {
        let (task, edge) = cycle[0];
        checker.report(
            tasks_path
                .index(task)
                .key("depends_on")
                .index(edge.position)
                .key("task_key"),
            format!(
                "cycle in depends_on: {} (each task depends on the one before it)",
                dag.describe(&cycle)
            ),
        );
    }
}

fn check_key(checker: &mut Checker<'_>, key: &str, path: &FieldPath) {
    let valid = (1..=MAX_TASK_KEY_CHARS).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        checker.report(
            path.clone(),
            format!(
                "task_key {key:?} must be 1 to {MAX_TASK_KEY_CHARS} characters of letters, \
                 digits, `_` and `-`"
            ),
        );
    }
}

fn check_dependencies(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    task: &Task,
    path: &FieldPath,
) {
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    for (j, dependency) in task.depends_on.iter().enumerate() {
        let at = path.key("depends_on").index(j);
        let key_path = at.key("task_key");
        let upstream_key = dependency.task_key.as_str();
        let upstream = settings.task(upstream_key);
        if upstream_key == task.task_key {
            checker.report(
                key_path.clone(),
                format!("task `{upstream_key}` depends on itself"),
            );
        } else if upstream.is_none() {
            let known: Vec<String> = settings
                .tasks
                .iter()
                .filter(|t| t.task_key != task.task_key)
                .map(|t| format!("`{}`", t.task_key))
                .collect();
            let expected = if known.is_empty() {
                "the job has no other task".to_string()
            } else {
                format!("expected one of {}", known.join(", "))
            };
            checker.report(
                key_path.clone(),
                format!("depends_on `{upstream_key}` is not a task of this job: {expected}"),
            );
        }
        match first.get(upstream_key) {
            Some(earlier) => {
                let message = format!(
                    "duplicate dependency on `{upstream_key}` (first at {})",
                    checker.first_at(earlier)
                );
                checker.report(key_path, message);
            }
            None => {
                first.insert(upstream_key, key_path);
            }
        }
        if let Some(outcome) = &dependency.outcome {
            let outcome_path = at.key("outcome");
            if upstream.is_some_and(|u| u.condition_task.is_none()) {
                checker.report(
                    outcome_path.clone(),
                    format!(
                        "`outcome` applies only to a dependency on a condition_task, and \
                         `{upstream_key}` is not one"
                    ),
                );
            }
            if outcome != "true" && outcome != "false" {
                checker.report(
                    outcome_path,
                    format!("outcome {outcome:?} must be \"true\" or \"false\""),
                );
            }
        }
    }
}

/// The kinds a task sets, by field name.
fn kinds(task: &Task) -> Vec<&'static str> {
    [
        ("wasm_task", task.wasm_task.is_some()),
        ("condition_task", task.condition_task.is_some()),
        ("for_each_task", task.for_each_task.is_some()),
        ("run_job_task", task.run_job_task.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(name, _)| name)
    .collect()
}

/// Checks a task's own fields (a top-level task or the task inside a for-each task).
fn check_task(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    task: &Task,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    if task.max_retries < -1 {
        checker.report(
            path.key("max_retries"),
            format!(
                "max_retries {} is out of range: expected -1 (unlimited) or more",
                task.max_retries
            ),
        );
    }
    let kinds = kinds(task);
    if kinds.len() != 1 {
        let found = if kinds.is_empty() {
            "none".to_string()
        } else {
            kinds.join(" and ")
        };
        checker.report(
            path.clone(),
            format!(
                "task `{}` needs exactly one of `wasm_task`, `condition_task`, `for_each_task` \
                 and `run_job_task`, found {found}",
                task.task_key
            ),
        );
    }
    if let Some(wasm) = &task.wasm_task {
        check_wasm(checker, settings, wasm, &path.key("wasm_task"), scope);
    }
    if let Some(condition) = &task.condition_task {
        check_condition(
            checker,
            settings,
            condition,
            &path.key("condition_task"),
            scope,
        );
    }
    if let Some(for_each) = &task.for_each_task {
        check_for_each(
            checker,
            settings,
            for_each,
            &path.key("for_each_task"),
            scope,
        );
    }
    if let Some(run_job) = &task.run_job_task {
        check_run_job(checker, settings, run_job, &path.key("run_job_task"), scope);
    }
    triggers::check_notifications(
        checker,
        task.email_notifications.as_ref(),
        task.webhook_notifications.as_ref(),
        path,
    );
}

fn check_templates<'t>(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    scope: TaskScope<'_>,
    fields: impl IntoIterator<Item = (FieldPath, &'t str)>,
) {
    for (path, text) in fields {
        if let Some(template) = checker.template(&path, text) {
            references::check(checker, &template, &path, &Scope::Task(scope), settings);
        }
    }
}

fn check_wasm(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    wasm: &WasmTask,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    let module_path = path.key("module");
    match ModuleRef::parse(&wasm.module) {
        Err(message) => checker.report(module_path, message),
        Ok(ModuleRef::Path(_)) if checker.policy == PathPolicy::Server => checker.report(
            module_path,
            "module paths are resolved by `weir deploy`; the API takes sha256:<hex> or \
             name[@version]",
        ),
        Ok(_) => {}
    }
    if let Some(mb) = wasm.memory_limit_mb
        && !(1..=MAX_MEMORY_LIMIT_MB).contains(&mb)
    {
        checker.report(
            path.key("memory_limit_mb"),
            format!("memory_limit_mb {mb} is out of range: expected 1 to {MAX_MEMORY_LIMIT_MB}"),
        );
    }
    let parameters = path.key("parameters");
    check_templates(
        checker,
        settings,
        scope,
        wasm.parameters
            .iter()
            .enumerate()
            .map(|(i, p)| (parameters.index(i), p.as_str())),
    );
    let env = path.key("env");
    for (name, value) in &wasm.env {
        let at = env.key(name);
        if let Some(problem) = env_name_problem(name) {
            checker.report_key(at.clone(), problem);
        }
        if value.contains('\0') {
            checker.report(
                at.clone(),
                format!("the value of environment variable {name:?} contains NUL"),
            );
        }
    }
    check_templates(
        checker,
        settings,
        scope,
        wasm.env.iter().map(|(n, v)| (env.key(n), v.as_str())),
    );
    mounts::check(checker, wasm, &path.key("mounts"));
}

fn env_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        Some("environment variable names cannot be empty".to_string())
    } else if name.contains(['=', '\0']) {
        Some(format!(
            "environment variable name {name:?} cannot contain `=` or NUL"
        ))
    } else if name.starts_with("WEIR_") {
        Some(format!(
            "environment variable name {name:?} is reserved: Weir sets the WEIR_* variables"
        ))
    } else {
        None
    }
}

fn check_condition(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    condition: &ConditionTask,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    check_templates(
        checker,
        settings,
        scope,
        [
            (path.key("left"), condition.left.as_str()),
            (path.key("right"), condition.right.as_str()),
        ],
    );
}

fn check_for_each(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    for_each: &ForEachTask,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    if scope.input {
        checker.report(
            path.clone(),
            "a for_each_task cannot run another for_each_task: nest a run_job_task instead",
        );
        return;
    }
    if !(1..=MAX_FOR_EACH_CONCURRENCY).contains(&for_each.concurrency) {
        checker.report(
            path.key("concurrency"),
            format!(
                "concurrency {} is out of range: expected 1 to {MAX_FOR_EACH_CONCURRENCY}",
                for_each.concurrency
            ),
        );
    }
    check_inputs(
        checker,
        settings,
        &for_each.inputs,
        &path.key("inputs"),
        scope,
    );
    let inner = &for_each.task;
    let inner_path = path.key("task");
    check_key(checker, &inner.task_key, &inner_path.key("task_key"));
    if !inner.depends_on.is_empty() {
        checker.report(
            inner_path.key("depends_on"),
            "the task of a for_each_task cannot have depends_on: put the dependencies on the \
             for_each_task",
        );
    }
    let inner_scope = TaskScope {
        input: true,
        ..scope
    };
    check_task(checker, settings, inner, &inner_path, inner_scope);
}

fn check_inputs(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    inputs: &str,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    const EXPECTED: &str = "expected a JSON array such as [\"a\", \"b\"] or a reference such as \
         {{tasks.x.values.items}}";
    if inputs.trim().is_empty() {
        checker.report(path.clone(), format!("inputs is empty: {EXPECTED}"));
        return;
    }
    let Some(template) = checker.template(path, inputs) else {
        return;
    };
    if template.references().next().is_some() {
        references::check(checker, &template, path, &Scope::Task(scope), settings);
        return;
    }
    if let Err(e) = serde_json::from_str::<Vec<serde_json::Value>>(inputs) {
        checker.report(
            path.clone(),
            format!("inputs {inputs:?} is not a JSON array ({e}): {EXPECTED}"),
        );
    }
}

fn check_run_job(
    checker: &mut Checker<'_>,
    settings: &JobSettings,
    run_job: &RunJobTask,
    path: &FieldPath,
    scope: TaskScope<'_>,
) {
    match (&run_job.job_id, &run_job.job_name) {
        (Some(_), Some(_)) => checker.report(
            path.clone(),
            "run_job_task needs exactly one of `job_id` and `job_name`, found both",
        ),
        (None, None) => checker.report(
            path.clone(),
            "run_job_task needs exactly one of `job_id` and `job_name`, found none",
        ),
        (None, Some(name)) if name.trim().is_empty() => checker.report(
            path.key("job_name"),
            "job_name is empty: expected the name of the job to run",
        ),
        _ => {}
    }
    let parameters = path.key("job_parameters");
    for name in run_job.job_parameters.keys() {
        if !valid_parameter_name(name) {
            checker.report_key(parameters.key(name), parameter_name_message(name));
        }
    }
    check_templates(
        checker,
        settings,
        scope,
        run_job
            .job_parameters
            .iter()
            .map(|(n, v)| (parameters.key(n), v.as_str())),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_names() {
        assert_eq!(env_name_problem("LEVEL"), None);
        assert!(env_name_problem("").unwrap().contains("empty"));
        assert!(env_name_problem("A=B").unwrap().contains("`=`"));
        assert!(env_name_problem("A\0").unwrap().contains("NUL"));
        assert!(env_name_problem("WEIR_X").unwrap().contains("reserved"));
    }
}
