//! From a parsed document to job settings: the document's shape (one job, or a `jobs:` map
//! whose keys name jobs without a `name`), and decoding that reports a problem in every task
//! rather than only the first one serde meets.

use super::location::{FieldPath, Issue, Pos};
use super::source::{Entry, Node, Value, decode};
use super::{JobSettings, Task};

/// What a document must look like, for messages.
const EXPECTED_DOCUMENT: &str =
    "expected a job (a map with `name` and `tasks`) or `jobs: {<key>: <job>, ...}`";

/// Gives every job of a `jobs:` map without a `name` its key as name.
pub(crate) fn fill_in_names(root: &mut Node) {
    let Value::Map(entries) = &mut root.value else {
        return;
    };
    let Some(jobs) = entries.iter_mut().find(|e| e.key == "jobs") else {
        return;
    };
    let Value::Map(jobs) = &mut jobs.node.value else {
        return;
    };
    for job in jobs {
        let key_pos = job.node.key_pos.unwrap_or(job.node.pos);
        if let Value::Map(fields) = &mut job.node.value
            && !fields.iter().any(|f| f.key == "name")
        {
            let mut name = Node::string(&job.key, key_pos);
            name.key_pos = Some(key_pos);
            fields.push(Entry {
                key: "name".to_string(),
                node: name,
            });
        }
    }
}

/// Turns every for-each `inputs` written as a list (`inputs: [a, b]`) into the JSON text the
/// Jobs API field holds (`inputs: '["a","b"]'`).
pub(crate) fn inputs_as_text(node: &mut Node) {
    match &mut node.value {
        Value::Scalar(_) => {}
        Value::Seq(items) => items.iter_mut().for_each(inputs_as_text),
        Value::Map(entries) => {
            for entry in entries {
                if entry.key == "for_each_task"
                    && let Value::Map(fields) = &mut entry.node.value
                    && let Some(inputs) = fields.iter_mut().find(|f| f.key == "inputs")
                    && let Value::Seq(_) = inputs.node.value
                {
                    let text = inputs.node.to_json().to_string();
                    inputs.node = Node {
                        key_pos: inputs.node.key_pos,
                        ..Node::string(&text, inputs.node.pos)
                    };
                }
                inputs_as_text(&mut entry.node);
            }
        }
    }
}

/// The jobs of a document with their paths: the root itself, or the entries of `jobs:`.
pub(crate) fn jobs_of(root: Option<&Node>) -> Result<Vec<(FieldPath, &Node)>, Vec<Issue>> {
    let start = Pos { line: 1, column: 1 };
    let Some(root) = root else {
        return Err(vec![Issue::at(
            FieldPath::root(),
            start,
            format!("the document is empty: {EXPECTED_DOCUMENT}"),
        )]);
    };
    let Some(entries) = root.entries() else {
        return Err(vec![Issue::at(
            FieldPath::root(),
            root.pos,
            format!("the document is {}: {EXPECTED_DOCUMENT}", root.describe()),
        )]);
    };
    let Some(jobs) = root.get("jobs") else {
        return Ok(vec![(FieldPath::root(), root)]);
    };
    let mut issues: Vec<Issue> = entries
        .iter()
        .filter(|e| e.key != "jobs")
        .map(|e| {
            Issue::at(
                FieldPath::root().key(&e.key),
                e.node.key_pos.unwrap_or(e.node.pos),
                format!(
                    "unexpected top-level key `{}` next to `jobs`: a file with `jobs` holds only \
                     `jobs: {{<key>: <job>, ...}}`",
                    e.key
                ),
            )
        })
        .collect();
    let jobs_path = FieldPath::root().key("jobs");
    match jobs.entries() {
        Some(list) if !list.is_empty() => {
            if issues.is_empty() {
                return Ok(list
                    .iter()
                    .map(|e| (jobs_path.key(&e.key), &e.node))
                    .collect());
            }
        }
        _ => issues.push(Issue::at(
            jobs_path,
            jobs.error_pos(),
            format!(
                "`jobs` is {}: expected a map of job keys to jobs, e.g. `jobs: {{orders: \
                 {{tasks: [...]}}}}`",
                jobs.describe()
            ),
        )),
    }
    Err(issues)
}

/// Decodes one job. On failure, decodes the job without its tasks and then each task on its
/// own, so that a problem in every task is reported.
pub(crate) fn decode_job(node: &Node, path: &FieldPath) -> Result<JobSettings, Vec<Issue>> {
    let first = match decode::<JobSettings>(node, path) {
        Ok(settings) => return Ok(settings),
        Err(issue) => issue,
    };
    let mut issues = Vec::new();
    if let (Some(fields), Some(Value::Seq(tasks))) =
        (node.entries(), node.get("tasks").map(|t| &t.value))
    {
        let without_tasks = Node {
            value: Value::Map(
                fields
                    .iter()
                    .map(|e| match &e.node.value {
                        Value::Seq(_) if e.key == "tasks" => Entry {
                            key: e.key.clone(),
                            node: Node {
                                value: Value::Seq(Vec::new()),
                                ..e.node
                            },
                        },
                        _ => e.clone(),
                    })
                    .collect(),
            ),
            ..*node
        };
        issues.extend(decode::<JobSettings>(&without_tasks, path).err());
        let tasks_path = path.key("tasks");
        for (i, task) in tasks.iter().enumerate() {
            issues.extend(decode::<Task>(task, &tasks_path.index(i)).err());
        }
    }
    if issues.is_empty() {
        issues.push(first);
    }
    Err(issues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Format;
    use crate::spec::source::parse;

    fn root(text: &str) -> Option<Node> {
        parse(text, Format::Yaml).unwrap()
    }

    #[test]
    fn a_map_without_jobs_is_one_job() {
        let node = root("name: a\ntasks: []\n");
        let jobs = jobs_of(node.as_ref()).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].0, FieldPath::root());
    }

    #[test]
    fn jobs_without_a_name_take_their_key() {
        let mut node = root("jobs:\n  a: {tasks: []}\n  b: {name: bee, tasks: []}\n").unwrap();
        fill_in_names(&mut node);
        let jobs = jobs_of(Some(&node)).unwrap();
        let paths: Vec<&str> = jobs.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(paths, ["jobs.a", "jobs.b"]);
        let name_of = |n: &Node| match &n.get("name").unwrap().value {
            Value::Scalar(s) => s.text.clone(),
            _ => unreachable!(),
        };
        assert_eq!(name_of(jobs[0].1), "a");
        assert_eq!(
            jobs[0].1.get("name").unwrap().pos,
            Pos { line: 2, column: 3 }
        );
        assert_eq!(name_of(jobs[1].1), "bee");
    }

    #[test]
    fn for_each_inputs_written_as_lists_become_json_text() {
        let mut node = root("tasks:\n  - for_each_task:\n      inputs: [a, 2, {b: c}]\n").unwrap();
        inputs_as_text(&mut node);
        let Value::Seq(tasks) = &node.get("tasks").unwrap().value else {
            unreachable!()
        };
        let inputs = tasks[0]
            .get("for_each_task")
            .unwrap()
            .get("inputs")
            .unwrap();
        assert_eq!(
            inputs.to_json(),
            serde_json::json!("[\"a\",2,{\"b\":\"c\"}]")
        );
        assert_eq!(
            inputs.pos,
            Pos {
                line: 3,
                column: 15
            }
        );
        assert_eq!(inputs.key_pos, Some(Pos { line: 3, column: 7 }));
    }

    #[test]
    fn refuses_documents_that_are_not_jobs() {
        let cases: [(&str, (usize, usize), &str); 5] = [
            ("", (1, 1), "the document is empty: expected a job"),
            (
                "- a\n- b\n",
                (1, 1),
                "the document is a list: expected a job",
            ),
            (
                "just text\n",
                (1, 1),
                "the document is the string \"just text\"",
            ),
            (
                "jobs: []\n",
                (1, 1),
                "`jobs` is a list: expected a map of job keys",
            ),
            (
                "name: x\njobs: {a: {}}\n",
                (1, 1),
                "unexpected top-level key `name` next to `jobs`",
            ),
        ];
        for (text, (line, column), fragment) in cases {
            let issues = jobs_of(root(text).as_ref()).unwrap_err();
            let pos = issues[0].pos.unwrap();
            assert_eq!((pos.line, pos.column), (line, column), "{text}");
            assert!(
                issues[0].message.contains(fragment),
                "{}",
                issues[0].message
            );
        }
    }

    #[test]
    fn reports_a_problem_in_every_task() {
        let node = root(
            "name: a\nmax_concurrent_runs: x\ntasks:\n  - task_key: a\n    dependson: []\n  \
             - task_key: b\n    max_retries: many\n",
        )
        .unwrap();
        let issues = decode_job(&node, &FieldPath::root()).unwrap_err();
        let found: Vec<(&str, usize)> = issues
            .iter()
            .map(|i| (i.path.as_str(), i.pos.unwrap().line))
            .collect();
        assert_eq!(
            found,
            [
                ("max_concurrent_runs", 2),
                ("tasks[0].dependson", 5),
                ("tasks[1].max_retries", 7)
            ]
        );
        assert!(
            issues[1]
                .message
                .starts_with("unknown field `dependson`, expected one of")
        );
    }
}
