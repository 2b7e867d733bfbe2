//! What a `{{reference}}` may refer to where it is used.

use super::Checker;
use crate::spec::JobSettings;
use crate::spec::location::FieldPath;
use crate::spec::refs::{Reference, Template};
use std::collections::HashSet;

/// Where a template is used.
pub(super) enum Scope<'a> {
    /// A job parameter's default: resolved when a run starts, before any task.
    ParameterDefault,
    /// A field of a task.
    Task(TaskScope<'a>),
}

/// The task a field belongs to.
#[derive(Clone, Copy)]
pub(super) struct TaskScope<'a> {
    /// The task's key (the for-each task's for the task inside it).
    pub key: &'a str,
    /// Every task `key` depends on, directly or not.
    pub upstream: &'a HashSet<&'a str>,
    /// Whether `{{input}}` is available (inside a for-each task's task).
    pub input: bool,
}

/// The reference as written, without braces: `tasks.x.values.rows`.
fn written(reference: &Reference) -> String {
    let text = reference.to_string();
    text.trim_start_matches("{{")
        .trim_end_matches("}}")
        .to_string()
}

/// Checks every reference of `template`, used at `path`.
pub(super) fn check(
    checker: &mut Checker<'_>,
    template: &Template,
    path: &FieldPath,
    scope: &Scope<'_>,
    settings: &JobSettings,
) {
    for reference in template.references() {
        if let Some(message) = problem(reference, scope, settings) {
            checker.report(path.clone(), message);
        }
    }
}

fn problem(reference: &Reference, scope: &Scope<'_>, settings: &JobSettings) -> Option<String> {
    let written = written(reference);
    if let Scope::ParameterDefault = scope {
        let needs_task = matches!(
            reference,
            Reference::TaskName | Reference::TaskRunId | Reference::TaskExecutionCount
        ) || reference.upstream_task().is_some()
            || matches!(reference, Reference::Input(_));
        if needs_task {
            return Some(format!(
                "a parameter default cannot use `{written}`: defaults are resolved when the run \
                 starts, before any task; use `job.*` references"
            ));
        }
        if let Reference::JobParameter(_) = reference {
            return Some(format!(
                "a parameter default cannot use `{written}`: defaults cannot refer to other \
                 parameters"
            ));
        }
        return None;
    }
    if let Reference::JobParameter(name) = reference {
        if settings.parameters.iter().any(|p| &p.name == name) {
            return None;
        }
        let known: Vec<String> = settings
            .parameters
            .iter()
            .map(|p| format!("`{}`", p.name))
            .collect();
        return Some(if known.is_empty() {
            format!("`{written}` refers to parameter `{name}`, but the job defines no parameters")
        } else {
            format!(
                "`{written}` refers to an undefined parameter `{name}`: expected one of {}",
                known.join(", ")
            )
        });
    }
    let Scope::Task(TaskScope {
        key,
        upstream,
        input,
    }) = scope
    else {
        return None;
    };
    if let Reference::Input(_) = reference
        && !input
    {
        return Some(format!(
            "`{written}` is only available in the task of a for_each_task"
        ));
    }
    let target = reference.upstream_task()?;
    if upstream.contains(target) {
        None
    } else if settings.task(target).is_none() {
        Some(format!(
            "`{written}` refers to task `{target}`, which is not a task of this job"
        ))
    } else {
        Some(format!(
            "`{written}` refers to task `{target}`, which is not upstream of `{key}`"
        ))
    }
}
