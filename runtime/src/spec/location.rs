//! Field paths (`jobs.orders.tasks[0].wasm_task.module`), source positions, the index from one
//! to the other, and the located problems that become [`SpecError`]s.

use super::SpecError;
use std::collections::HashMap;
use std::fmt;

/// A 1-based line and column in a source text; columns count characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// The path of a field: map keys joined by `.`, sequence indexes in `[i]`. Keys that are not
/// plain words (letters, digits, `_`, `-`) are quoted: `env["A.B"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub(crate) struct FieldPath(String);

impl FieldPath {
    /// The path of the whole document.
    pub fn root() -> FieldPath {
        FieldPath::default()
    }

    /// Parses a rendered path, e.g. a `at` argument; plain text is taken as written.
    pub fn from_rendered(path: &str) -> FieldPath {
        FieldPath(path.to_string())
    }

    /// The path of entry `key` of the map at this path.
    pub fn key(&self, key: &str) -> FieldPath {
        let plain = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if plain && self.0.is_empty() {
            FieldPath(key.to_string())
        } else if plain {
            FieldPath(format!("{}.{key}", self.0))
        } else {
            FieldPath(format!("{}[{key:?}]", self.0))
        }
    }

    /// The path of element `index` of the sequence at this path.
    pub fn index(&self, index: usize) -> FieldPath {
        FieldPath(format!("{}[{index}]", self.0))
    }

    /// The path with `other` (relative to this one) appended.
    pub fn join(&self, other: &FieldPath) -> FieldPath {
        if self.0.is_empty() || other.0.is_empty() || other.0.starts_with('[') {
            FieldPath(format!("{}{}", self.0, other.0))
        } else {
            FieldPath(format!("{}.{}", self.0, other.0))
        }
    }

    /// The enclosing path, `None` for the root.
    pub fn parent(&self) -> Option<FieldPath> {
        if self.0.is_empty() {
            return None;
        }
        let start = segment_starts(&self.0).last().copied().unwrap_or(0);
        Some(FieldPath(self.0[..start].to_string()))
    }

    /// The rendered path.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Byte offsets where each segment of a rendered path starts (at its `.` or `[`).
fn segment_starts(path: &str) -> Vec<usize> {
    let bytes = path.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'.' if i > 0 => starts.push(i),
            b'[' if i > 0 => starts.push(i),
            _ => {}
        }
        if bytes[i] == b'[' && bytes.get(i + 1) == Some(&b'"') {
            // A quoted key: skip to its closing `"]`, honouring escapes.
            i += 2;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
        }
        i += 1;
    }
    starts.dedup();
    starts
}

/// Where each field path of a document is: for a scalar its value, for a map or sequence its
/// key (or, without a key, its first character); and where its key is.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct SpanIndex(HashMap<FieldPath, Span>);

/// The positions of one field.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    pos: Pos,
    key: Option<Pos>,
}

impl SpanIndex {
    /// Records the positions of `path`: where problems with it are shown, and its key's.
    pub fn insert(&mut self, path: FieldPath, pos: Pos, key: Option<Pos>) {
        self.0.insert(path, Span { pos, key });
    }

    /// The position of `path` or of its nearest ancestor in the index; with `on_key`, the
    /// position of the key of `path` itself when it has one.
    pub fn locate(&self, path: &FieldPath, on_key: bool) -> Option<Pos> {
        let mut current = Some(path.clone());
        while let Some(p) = current {
            if let Some(span) = self.0.get(&p) {
                return Some(match span.key {
                    Some(key) if on_key && p == *path => key,
                    _ => span.pos,
                });
            }
            current = p.parent();
        }
        None
    }

    /// "line 4" when `path` is in the index, else the path itself: for "(first at ...)".
    pub fn describe(&self, path: &FieldPath) -> String {
        match self.0.get(path) {
            Some(span) => format!("line {}", span.pos.line),
            None => format!("`{path}`"),
        }
    }
}

/// A problem found while decoding or validating, before it is located in its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// The offending field.
    pub path: FieldPath,
    /// Its position when the decoder knew it; otherwise the span index finds it.
    pub pos: Option<Pos>,
    /// Whether the problem is with the field's key (a name) rather than its value.
    pub on_key: bool,
    /// What is wrong and what was expected.
    pub message: String,
}

impl Issue {
    /// A problem at `path`, to be located by the span index.
    pub fn new(path: FieldPath, message: impl Into<String>) -> Issue {
        Issue {
            path,
            pos: None,
            on_key: false,
            message: message.into(),
        }
    }

    /// A problem with the key of the field at `path`, to be located by the span index.
    pub fn on_key(path: FieldPath, message: impl Into<String>) -> Issue {
        Issue {
            on_key: true,
            ..Issue::new(path, message)
        }
    }

    /// A problem at a known position.
    pub fn at(path: FieldPath, pos: Pos, message: impl Into<String>) -> Issue {
        Issue {
            pos: Some(pos),
            ..Issue::new(path, message)
        }
    }

    /// The located error; line and column are 0 when neither the issue nor the index knows them.
    pub fn locate(self, source: &str, index: &SpanIndex) -> SpecError {
        let pos = self.pos.or_else(|| index.locate(&self.path, self.on_key));
        SpecError {
            source: source.to_string(),
            line: pos.map_or(0, |p| p.line),
            column: pos.map_or(0, |p| p.column),
            path: self.path.0,
            message: self.message,
        }
    }
}

/// Locates every issue and sorts the errors by position (unlocated ones keep their order and
/// come first).
pub(crate) fn locate_all(issues: Vec<Issue>, source: &str, index: &SpanIndex) -> Vec<SpecError> {
    let mut errors: Vec<SpecError> = issues
        .into_iter()
        .map(|i| i.locate(source, index))
        .collect();
    errors.sort_by_key(|e| (e.line, e.column));
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_keys_indexes_and_quoted_keys() {
        let p = FieldPath::root()
            .key("jobs")
            .key("orders")
            .key("tasks")
            .index(0)
            .key("wasm_task")
            .key("env")
            .key("A.B");
        assert_eq!(p.as_str(), r#"jobs.orders.tasks[0].wasm_task.env["A.B"]"#);
        assert_eq!(FieldPath::root().index(2).as_str(), "[2]");
        assert_eq!(FieldPath::root().key("a b").as_str(), r#"["a b"]"#);
    }

    #[test]
    fn parents_strip_one_segment() {
        let p = FieldPath::from_rendered(r#"jobs.o.tasks[10].env["x.\"]y"]"#);
        let mut chain = vec![];
        let mut current = Some(p);
        while let Some(c) = current {
            chain.push(c.as_str().to_string());
            current = c.parent();
        }
        assert_eq!(
            chain,
            [
                r#"jobs.o.tasks[10].env["x.\"]y"]"#,
                "jobs.o.tasks[10].env",
                "jobs.o.tasks[10]",
                "jobs.o.tasks",
                "jobs.o",
                "jobs",
                ""
            ]
        );
    }

    #[test]
    fn joins_relative_paths() {
        let base = FieldPath::from_rendered("new_settings");
        assert_eq!(
            base.join(&FieldPath::from_rendered("tasks[1].task_key"))
                .as_str(),
            "new_settings.tasks[1].task_key"
        );
        assert_eq!(
            base.join(&FieldPath::from_rendered("[2]")).as_str(),
            "new_settings[2]"
        );
        assert_eq!(FieldPath::root().join(&base).as_str(), "new_settings");
    }

    #[test]
    fn locates_the_nearest_ancestor() {
        let mut index = SpanIndex::default();
        index.insert(FieldPath::root(), Pos { line: 1, column: 1 }, None);
        index.insert(
            FieldPath::from_rendered("tasks[0]"),
            Pos { line: 4, column: 5 },
            None,
        );
        index.insert(
            FieldPath::from_rendered("tasks[0].env.A"),
            Pos {
                line: 5,
                column: 12,
            },
            Some(Pos { line: 5, column: 9 }),
        );
        let deep = FieldPath::from_rendered("tasks[0].wasm_task.module");
        assert_eq!(index.locate(&deep, false), Some(Pos { line: 4, column: 5 }));
        assert_eq!(
            index.locate(&FieldPath::from_rendered("name"), false),
            Some(Pos { line: 1, column: 1 })
        );
        let env = FieldPath::from_rendered("tasks[0].env.A");
        assert_eq!(
            index.locate(&env, false),
            Some(Pos {
                line: 5,
                column: 12
            })
        );
        assert_eq!(index.locate(&env, true), Some(Pos { line: 5, column: 9 }));
        assert_eq!(index.locate(&deep, true), Some(Pos { line: 4, column: 5 }));
        assert_eq!(
            index.describe(&FieldPath::from_rendered("tasks[0]")),
            "line 4"
        );
        assert_eq!(index.describe(&deep), "`tasks[0].wasm_task.module`");
    }
}
