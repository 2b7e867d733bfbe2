//! The entry points: spec files ([`SpecDocument`]), API request bodies
//! ([`settings_from_json`]) and settings built in memory ([`validate_settings`]).

use super::decode::{decode_job, fill_in_names, inputs_as_text, jobs_of};
use super::location::{FieldPath, Issue, Pos, SpanIndex, locate_all};
use super::source::{self, Node, SyntaxError};
use super::validate::{unique_job_names, validate_job};
use super::{Format, JobSettings, PathPolicy, SpecError, SpecErrors, SpecJob};
use std::path::Path;

/// The source name of errors from [`validate_settings`].
const IN_MEMORY_SOURCE: &str = "job settings";

/// A parsed, validated spec file: one job, or a `jobs: {<key>: <job>, ...}` map.
#[derive(Debug, Clone)]
pub struct SpecDocument {
    source: String,
    jobs: Vec<SpecJob>,
    spans: SpanIndex,
}

impl SpecDocument {
    /// Parses and validates `text`. `source` names it in errors (a file path).
    pub fn parse(
        source: &str,
        text: &str,
        format: Format,
        policy: PathPolicy,
    ) -> Result<SpecDocument, SpecErrors> {
        let mut root = source::parse(text, format).map_err(|e| syntax_errors(source, e))?;
        if let Some(root) = &mut root {
            fill_in_names(root);
            inputs_as_text(root);
        }
        let mut spans = SpanIndex::default();
        if let Some(root) = &root {
            root.index_into(&FieldPath::root(), &mut spans);
        }
        let fail = |issues: Vec<Issue>| SpecErrors(locate_all(issues, source, &spans));
        let job_nodes = jobs_of(root.as_ref()).map_err(fail)?;
        let mut issues = Vec::new();
        let mut decoded: Vec<(FieldPath, JobSettings)> = Vec::new();
        for (path, node) in job_nodes {
            match decode_job(node, &path) {
                Ok(settings) => {
                    issues.extend(validate_job(&settings, &path, policy, &spans));
                    decoded.push((path, settings));
                }
                Err(found) => issues.extend(found),
            }
        }
        issues.extend(unique_job_names(
            decoded.iter().map(|(path, settings)| (path, settings)),
            &spans,
        ));
        if !issues.is_empty() {
            return Err(fail(issues));
        }
        let jobs = decoded
            .into_iter()
            .map(|(path, settings)| SpecJob {
                settings,
                path: path.to_string(),
            })
            .collect();
        Ok(SpecDocument {
            source: source.to_string(),
            jobs,
            spans,
        })
    }

    /// Reads a file; the format comes from the extension (.json = JSON, .yaml/.yml = YAML).
    pub fn read(path: &Path, policy: PathPolicy) -> Result<SpecDocument, SpecErrors> {
        let source = path.display().to_string();
        let whole_file = |message: String| {
            SpecErrors(vec![SpecError {
                source: source.clone(),
                line: 0,
                column: 0,
                path: String::new(),
                message,
            }])
        };
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("json") => Format::Json,
            Some("yaml" | "yml") => Format::Yaml,
            other => {
                return Err(whole_file(format!(
                    "unknown spec file extension {:?}: expected .yaml, .yml or .json",
                    other.unwrap_or("")
                )));
            }
        };
        let text = std::fs::read_to_string(path)
            .map_err(|e| whole_file(format!("cannot read the spec file: {e}")))?;
        SpecDocument::parse(&source, &text, format, policy)
    }

    /// The source name given to [`SpecDocument::parse`] (the file path for
    /// [`SpecDocument::read`]).
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The jobs, in document order.
    pub fn jobs(&self) -> &[SpecJob] {
        &self.jobs
    }

    /// A located error for a field path (e.g. `jobs.orders.tasks[0].wasm_task.module`) — used
    /// by the CLI for problems it finds later (a module file that does not exist). When the
    /// exact path is not in the document, the nearest ancestor that is locates it.
    pub fn error(&self, path: &str, message: impl Into<String>) -> SpecError {
        Issue::new(FieldPath::from_rendered(path), message).locate(&self.source, &self.spans)
    }
}

fn syntax_errors(source: &str, error: SyntaxError) -> SpecErrors {
    SpecErrors(vec![
        Issue::at(error.path, error.pos, error.message).locate(source, &SpanIndex::default()),
    ])
}

/// Parses job settings from a JSON request body (the API): `at` is the field that holds the
/// settings ("" = the whole body, "new_settings" for jobs/reset). Errors carry the request
/// body's line/column and paths like `new_settings.tasks[1].depends_on[0].task_key`. Always
/// [`PathPolicy::Server`].
pub fn settings_from_json(source: &str, body: &str, at: &str) -> Result<JobSettings, SpecErrors> {
    let mut root = source::parse(body, Format::Json).map_err(|e| syntax_errors(source, e))?;
    if let Some(root) = &mut root {
        inputs_as_text(root);
    }
    let mut spans = SpanIndex::default();
    if let Some(root) = &root {
        root.index_into(&FieldPath::root(), &mut spans);
    }
    let fail = |issues: Vec<Issue>| SpecErrors(locate_all(issues, source, &spans));
    let (path, node) = settings_node(root.as_ref(), at).map_err(|i| fail(vec![i]))?;
    let settings = decode_job(node, &path).map_err(fail)?;
    let issues = validate_job(&settings, &path, PathPolicy::Server, &spans);
    if !issues.is_empty() {
        return Err(fail(issues));
    }
    Ok(settings)
}

/// The node at `at` (dot-separated keys) and its path.
fn settings_node<'n>(root: Option<&'n Node>, at: &str) -> Result<(FieldPath, &'n Node), Issue> {
    let start = Pos { line: 1, column: 1 };
    let mut node = root.ok_or_else(|| {
        Issue::at(
            FieldPath::root(),
            start,
            "the request body is empty: expected a JSON object",
        )
    })?;
    let mut path = FieldPath::root();
    for key in at.split('.').filter(|k| !k.is_empty()) {
        if node.entries().is_none() {
            return Err(Issue::at(
                path,
                node.error_pos(),
                format!("expected a JSON object, found {}", node.describe()),
            ));
        }
        node = node.get(key).ok_or_else(|| {
            Issue::at(
                path.clone(),
                node.error_pos(),
                format!("missing field `{key}`"),
            )
        })?;
        path = path.key(key);
    }
    Ok((path, node))
}

/// Validates settings built in memory (after jobs/update merged fields): errors have paths but
/// line/column 0.
pub fn validate_settings(settings: &JobSettings, policy: PathPolicy) -> Result<(), SpecErrors> {
    let spans = SpanIndex::default();
    let issues = validate_job(settings, &FieldPath::root(), policy, &spans);
    if issues.is_empty() {
        Ok(())
    } else {
        Err(SpecErrors(locate_all(issues, IN_MEMORY_SOURCE, &spans)))
    }
}

#[cfg(test)]
mod tests;
