//! Structural validation of job settings: everything serde cannot check (ranges, uniqueness,
//! the DAG, references, trigger combinations). Every problem is collected with its path.

mod graph;
mod mounts;
mod references;
mod tasks;
mod triggers;

use super::location::{FieldPath, Issue, SpanIndex};
use super::refs::Template;
use super::{JobSettings, PathPolicy};
use references::Scope;
use std::collections::HashMap;

/// Longest job name.
const MAX_NAME_CHARS: usize = 4096;
/// Most tasks in a job.
const MAX_TASKS: usize = 1000;
/// Longest parameter name.
const MAX_PARAMETER_CHARS: usize = 128;

/// Collects the problems of one job; `index` only serves "(first at line N)" in messages.
pub(crate) struct Checker<'a> {
    policy: PathPolicy,
    index: &'a SpanIndex,
    issues: Vec<Issue>,
}

impl<'a> Checker<'a> {
    fn report(&mut self, path: FieldPath, message: impl Into<String>) {
        self.issues.push(Issue::new(path, message));
    }

    /// Reports a problem with the key of the field at `path` (a name).
    fn report_key(&mut self, path: FieldPath, message: impl Into<String>) {
        self.issues.push(Issue::on_key(path, message));
    }

    /// "line 4" or the path, for pointing at an earlier occurrence.
    fn first_at(&self, path: &FieldPath) -> String {
        self.index.describe(path)
    }

    /// Parses a template; a parse error is reported and gives `None`.
    fn template(&mut self, path: &FieldPath, text: &str) -> Option<Template> {
        match Template::parse(text) {
            Ok(t) => Some(t),
            Err(message) => {
                self.report(path.clone(), message);
                None
            }
        }
    }
}

/// Validates one job whose fields live under `path`.
pub(crate) fn validate_job(
    settings: &JobSettings,
    path: &FieldPath,
    policy: PathPolicy,
    index: &SpanIndex,
) -> Vec<Issue> {
    let mut checker = Checker {
        policy,
        index,
        issues: Vec::new(),
    };
    check_name(&mut checker, &settings.name, &path.key("name"));
    check_parameters(&mut checker, settings, path);
    triggers::check(&mut checker, settings, path);
    let tasks_path = path.key("tasks");
    if settings.tasks.is_empty() {
        checker.report(
            tasks_path.clone(),
            "a job needs at least 1 task, found none",
        );
    } else if settings.tasks.len() > MAX_TASKS {
        checker.report(
            tasks_path.clone(),
            format!(
                "a job has at most {MAX_TASKS} tasks, found {}",
                settings.tasks.len()
            ),
        );
    }
    tasks::check(&mut checker, settings, &tasks_path);
    checker.issues
}

/// Refuses two jobs of one document with the same name.
pub(crate) fn unique_job_names<'s>(
    jobs: impl IntoIterator<Item = (&'s FieldPath, &'s JobSettings)>,
    index: &SpanIndex,
) -> Vec<Issue> {
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    let mut issues = Vec::new();
    for (path, settings) in jobs {
        let name_path = path.key("name");
        match first.get(settings.name.as_str()) {
            Some(earlier) => issues.push(Issue::new(
                name_path,
                format!(
                    "duplicate job name `{}` (first at {})",
                    settings.name,
                    index.describe(earlier)
                ),
            )),
            None => {
                first.insert(&settings.name, name_path);
            }
        }
    }
    issues
}

fn check_name(checker: &mut Checker<'_>, name: &str, path: &FieldPath) {
    let chars = name.chars().count();
    if name.trim().is_empty() {
        checker.report(
            path.clone(),
            format!("job name is empty: expected 1 to {MAX_NAME_CHARS} characters"),
        );
    } else if chars > MAX_NAME_CHARS {
        checker.report(
            path.clone(),
            format!("job name is {chars} characters long: expected at most {MAX_NAME_CHARS}"),
        );
    }
}

/// Whether `name` is a valid job parameter name.
fn valid_parameter_name(name: &str) -> bool {
    (1..=MAX_PARAMETER_CHARS).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn parameter_name_message(name: &str) -> String {
    format!(
        "parameter name {name:?} must be 1 to {MAX_PARAMETER_CHARS} characters of letters, \
         digits, `_`, `.` and `-`"
    )
}

fn check_parameters(checker: &mut Checker<'_>, settings: &JobSettings, path: &FieldPath) {
    let mut first: HashMap<&str, FieldPath> = HashMap::new();
    for (i, parameter) in settings.parameters.iter().enumerate() {
        let at = path.key("parameters").index(i);
        let name_path = at.key("name");
        if !valid_parameter_name(&parameter.name) {
            checker.report(name_path.clone(), parameter_name_message(&parameter.name));
        }
        match first.get(parameter.name.as_str()) {
            Some(earlier) => {
                let message = format!(
                    "duplicate parameter `{}` (first at {})",
                    parameter.name,
                    checker.first_at(earlier)
                );
                checker.report(name_path, message);
            }
            None => {
                first.insert(&parameter.name, name_path);
            }
        }
        let default_path = at.key("default");
        if let Some(template) = checker.template(&default_path, &parameter.default) {
            references::check(
                checker,
                &template,
                &default_path,
                &Scope::ParameterDefault,
                settings,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::test_support::settings;

    fn messages(settings: &JobSettings) -> Vec<(String, String)> {
        validate_job(
            settings,
            &FieldPath::root(),
            PathPolicy::Server,
            &SpanIndex::default(),
        )
        .into_iter()
        .map(|i| (i.path.to_string(), i.message))
        .collect()
    }

    #[test]
    fn a_minimal_job_is_valid() {
        let job = settings("name: x\ntasks: [{task_key: a, wasm_task: {module: m}}]\n");
        assert_eq!(messages(&job), []);
    }

    #[test]
    fn checks_names_and_task_counts() {
        let found = messages(&settings("name: ' '\ntasks: []\n"));
        assert_eq!(found[0].0, "name");
        assert!(found[0].1.contains("job name is empty"));
        assert_eq!(
            found[1],
            (
                "tasks".into(),
                "a job needs at least 1 task, found none".into()
            )
        );
        let mut long = settings("name: x\ntasks: [{task_key: a, wasm_task: {module: m}}]\n");
        long.name = "x".repeat(MAX_NAME_CHARS + 1);
        assert!(messages(&long)[0].1.contains("4097 characters long"));
        let mut many = long.clone();
        many.name = "x".into();
        many.tasks = (0..=MAX_TASKS)
            .map(|i| {
                let mut t = long.tasks[0].clone();
                t.task_key = format!("t{i}");
                t
            })
            .collect();
        assert_eq!(
            messages(&many),
            [(
                "tasks".into(),
                "a job has at most 1000 tasks, found 1001".into()
            )]
        );
    }

    #[test]
    fn checks_parameters() {
        let job = settings(
            "name: x\nparameters:\n  - {name: region, default: eu}\n  \
             - {name: region, default: '{{tasks.a.run_id}}'}\n  \
             - {name: bad name, default: '{{job.start_time.iso_date}}'}\n  \
             - {name: n, default: '{{job.parameters.region}}'}\n\
             tasks: [{task_key: a, wasm_task: {module: m}}]\n",
        );
        let found = messages(&job);
        assert_eq!(found.len(), 4, "{found:?}");
        assert_eq!(found[0].0, "parameters[1].name");
        assert_eq!(
            found[0].1,
            "duplicate parameter `region` (first at `parameters[0].name`)"
        );
        assert_eq!(found[1].0, "parameters[1].default");
        assert!(
            found[1].1.contains("cannot use `tasks.a.run_id`"),
            "{}",
            found[1].1
        );
        assert_eq!(found[2].0, "parameters[2].name");
        assert!(found[2].1.contains("\"bad name\""));
        assert_eq!(found[3].0, "parameters[3].default");
        assert!(found[3].1.contains("cannot refer to other parameters"));
    }

    #[test]
    fn job_names_are_unique_within_a_document() {
        let a = settings("name: same\ntasks: []\n");
        let (pa, pb) = (
            FieldPath::from_rendered("jobs.a"),
            FieldPath::from_rendered("jobs.b"),
        );
        let issues = unique_job_names([(&pa, &a), (&pb, &a)], &SpanIndex::default());
        assert_eq!(issues.len(), 1);
        assert_eq!(issues[0].path.as_str(), "jobs.b.name");
        assert_eq!(
            issues[0].message,
            "duplicate job name `same` (first at `jobs.a.name`)"
        );
    }
}
