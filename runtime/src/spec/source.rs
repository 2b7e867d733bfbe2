//! Parsing of YAML and JSON into a tree of values with positions.
//!
//! Both syntaxes produce the same [`Node`] tree. Scalars keep their source text next to their
//! typed value, so a field that expects a string gets exactly what the user wrote
//! (`default: 1.10` is "1.10", not "1.1"). The tree deserializes with serde (see [`decode`]) and
//! yields a [`SpanIndex`] for locating problems found later.

mod de;
mod json;
mod yaml;

pub(crate) use de::decode;

use super::Format;
use super::location::{FieldPath, Pos, SpanIndex};

/// Nesting deeper than this is refused (a spec needs about ten levels).
pub(crate) const MAX_DEPTH: usize = 64;

/// More values than this (after expanding YAML aliases) are refused.
pub(crate) const MAX_NODES: usize = 250_000;

/// A value with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub pos: Pos,
    /// Where its key starts, when the node is the value of a map entry.
    pub key_pos: Option<Pos>,
}

/// The value of a node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    /// A null, boolean, number or string.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A map, in document order; keys are unique.
    Map(Vec<Entry>),
}

/// A scalar: its typed value and the text it was written as.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    /// The kind and typed value.
    pub kind: ScalarKind,
    /// The source text (unescaped for strings).
    pub text: String,
}

/// The kind of a scalar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ScalarKind {
    /// `null`, `~` or nothing.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// An integer in the range of `i64` or `u64`.
    Int(i128),
    /// Any other number.
    Float(f64),
    /// A string.
    Str,
}

/// One entry of a map.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    /// The key's text.
    pub key: String,
    /// The value; its `key_pos` is the key's position.
    pub node: Node,
}

/// A problem in the syntax of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// Where it is.
    pub pos: Pos,
    /// The path of the enclosing field, when known (duplicate keys).
    pub path: FieldPath,
    /// What is wrong.
    pub message: String,
}

/// Parses a document; `Ok(None)` when it holds no value at all (empty or only comments).
pub(crate) fn parse(text: &str, format: Format) -> Result<Option<Node>, SyntaxError> {
    match format {
        Format::Yaml => yaml::parse(text),
        Format::Json => json::parse(text),
    }
}

impl Node {
    /// A string node at `pos`.
    pub fn string(text: &str, pos: Pos) -> Node {
        Node {
            value: Value::Scalar(Scalar {
                kind: ScalarKind::Str,
                text: text.to_string(),
            }),
            pos,
            key_pos: None,
        }
    }

    /// Where problems with this node are shown: a scalar at its value, a map or sequence at its
    /// key (or its start when it has no key).
    pub fn error_pos(&self) -> Pos {
        match &self.value {
            Value::Scalar(_) => self.pos,
            Value::Seq(_) | Value::Map(_) => self.key_pos.unwrap_or(self.pos),
        }
    }

    /// The entries when the node is a map.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The value of entry `key` of a map node.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.node)
    }

    /// What the node is, for messages: "a map", "a list", "the string \"x\"", ...
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Map(_) => "a map".to_string(),
            Value::Seq(_) => "a list".to_string(),
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => "null".to_string(),
                ScalarKind::Str => format!("the string {:?}", s.text),
                _ => format!("the value `{}`", s.text),
            },
        }
    }

    /// The node as JSON (a float that JSON cannot hold, such as `.nan`, stays text).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as Json;
        match &self.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => Json::Null,
                ScalarKind::Bool(b) => Json::Bool(b),
                ScalarKind::Int(i) => match u64::try_from(i) {
                    Ok(u) => Json::from(u),
                    Err(_) => Json::from(i as i64),
                },
                ScalarKind::Float(f) => serde_json::Number::from_f64(f)
                    .map_or_else(|| Json::String(s.text.clone()), Json::Number),
                ScalarKind::Str => Json::String(s.text.clone()),
            },
            Value::Seq(items) => Json::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.node.to_json()))
                    .collect(),
            ),
        }
    }

    /// Adds the position of this node and of everything below it to `index`, under `path`.
    pub fn index_into(&self, path: &FieldPath, index: &mut SpanIndex) {
        index.insert(path.clone(), self.error_pos(), self.key_pos);
        match &self.value {
            Value::Scalar(_) => {}
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    item.index_into(&path.index(i), index);
                }
            }
            Value::Map(entries) => {
                for e in entries {
                    e.node.index_into(&path.key(&e.key), index);
                }
            }
        }
    }
}

/// Counts values and nesting while a document is built, refusing documents over the limits.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    nodes: usize,
}

impl Budget {
    /// Accounts for `count` more values at nesting `depth`.
    pub fn spend(&mut self, count: usize, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "the document nests deeper than {MAX_DEPTH} levels: a job spec needs far fewer"
            ));
        }
        self.nodes += count;
        if self.nodes > MAX_NODES {
            return Err(format!(
                "the document has more than {MAX_NODES} values (counting expanded aliases)"
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn indexes_scalars_at_their_value_and_collections_at_their_key() {
        let text = "name: x\ntasks:\n  - task_key: a\n    env: {A: '1'}\n";
        let node = parse(text, Format::Yaml).unwrap().unwrap();
        let mut index = SpanIndex::default();
        node.index_into(&FieldPath::root(), &mut index);
        let at = |p: &str| index.locate(&FieldPath::from_rendered(p), false).unwrap();
        assert_eq!(at(""), pos(1, 1));
        assert_eq!(at("name"), pos(1, 7));
        assert_eq!(at("tasks"), pos(2, 1));
        assert_eq!(at("tasks[0]"), pos(3, 5));
        assert_eq!(at("tasks[0].task_key"), pos(3, 15));
        assert_eq!(at("tasks[0].env"), pos(4, 5));
        assert_eq!(at("tasks[0].env.A"), pos(4, 14));
    }

    #[test]
    fn converts_to_json() {
        let node = parse(
            "{a: [1, -2, 1.5, .nan, ~, true, x], b: {c: '3'}}",
            Format::Yaml,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            node.to_json(),
            serde_json::json!({"a": [1, -2, 1.5, ".nan", null, true, "x"], "b": {"c": "3"}})
        );
    }

    #[test]
    fn budget_refuses_deep_and_large_documents() {
        let mut budget = Budget::default();
        assert!(budget.spend(1, MAX_DEPTH).is_ok());
        assert!(
            budget
                .spend(1, MAX_DEPTH + 1)
                .unwrap_err()
                .contains("deeper")
        );
        assert!(
            budget
                .spend(MAX_NODES, 1)
                .unwrap_err()
                .contains("more than")
        );
    }
}
