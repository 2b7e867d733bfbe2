//! YAML 1.2 into [`Node`]s, from `yaml-rust2`'s marked events.
//!
//! Plain scalars follow the core schema (null, booleans, integers, floats; anything else is a
//! string); quoted and block scalars are strings. Anchors, aliases and `<<` merge keys are
//! expanded. Duplicate keys, tags other than `!!str`, and a second document are refused.

use super::{Budget, Entry, Node, Scalar, ScalarKind, SyntaxError, Value};
use crate::spec::location::{FieldPath, Pos};
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// The handle of the YAML core tags (`!!str` and friends).
const CORE_TAG_HANDLE: &str = "tag:yaml.org,2002:";

/// Parses a YAML document; `Ok(None)` when it is empty or null.
pub(super) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let loaded = Parser::new_from_str(text).load(&mut builder, true);
    if let Some(error) = builder.error {
        return Err(error);
    }
    if let Err(e) = loaded {
        return Err(SyntaxError {
            pos: pos_of(e.marker()),
            path: builder.current_path(),
            message: format!("yaml syntax error: {}", e.info()),
        });
    }
    Ok(builder.root.filter(|n| {
        !matches!(
            &n.value,
            Value::Scalar(Scalar {
                kind: ScalarKind::Null,
                ..
            })
        )
    }))
}

fn pos_of(mark: &Marker) -> Pos {
    Pos {
        line: mark.line(),
        column: mark.col() + 1,
    }
}

/// A collection being built.
#[derive(Debug)]
struct Frame {
    path: FieldPath,
    pos: Pos,
    anchor: usize,
    kind: FrameKind,
}

#[derive(Debug)]
enum FrameKind {
    Seq(Vec<Node>),
    Map {
        entries: Vec<Entry>,
        /// Keys seen so far, with their positions.
        seen: HashMap<String, Pos>,
        /// A key waiting for its value.
        pending: Option<(String, Pos)>,
    },
}

/// Receives parser events and builds the tree; keeps the first error.
#[derive(Debug, Default)]
struct Builder {
    stack: Vec<Frame>,
    root: Option<Node>,
    anchors: HashMap<usize, (Node, usize)>,
    documents: usize,
    budget: Budget,
    error: Option<SyntaxError>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        if let Err(message) = self.handle(event, &mark) {
            self.error = Some(SyntaxError {
                pos: pos_of(&mark),
                path: self.current_path(),
                message,
            });
        }
    }
}

impl Builder {
    fn handle(&mut self, event: Event, mark: &Marker) -> Result<(), String> {
        let pos = pos_of(mark);
        match event {
            Event::DocumentStart => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(
                        "a spec file holds one yaml document; a second one starts here \
                                (put several jobs under `jobs:` instead)"
                            .to_string(),
                    );
                }
                Ok(())
            }
            Event::Scalar(text, style, anchor, tag) => {
                let kind = scalar_kind(&text, style, tag.as_ref())?;
                self.budget.spend(1, self.stack.len() + 1)?;
                let node = Node {
                    value: Value::Scalar(Scalar { kind, text }),
                    pos,
                    key_pos: None,
                };
                self.remember(anchor, &node, 1);
                self.add(node, pos)
            }
            Event::SequenceStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "seq")?;
                self.open(anchor, mark, FrameKind::Seq(Vec::new()))
            }
            Event::MappingStart(anchor, tag) => {
                check_collection_tag(tag.as_ref(), "map")?;
                let kind = FrameKind::Map {
                    entries: Vec::new(),
                    seen: HashMap::new(),
                    pending: None,
                };
                self.open(anchor, mark, kind)
            }
            Event::SequenceEnd | Event::MappingEnd => self.close(),
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| "alias to an unknown anchor".to_string())?;
                self.budget.spend(size, self.stack.len() + 1)?;
                let node = Node { pos, ..node };
                self.add(node, pos)
            }
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => Ok(()),
        }
    }

    /// The path of the value being built: where an error is.
    fn current_path(&self) -> FieldPath {
        match self.stack.last() {
            None => FieldPath::root(),
            Some(frame) => match &frame.kind {
                FrameKind::Seq(items) => frame.path.index(items.len()),
                FrameKind::Map {
                    pending: Some((key, _)),
                    ..
                } => frame.path.key(key),
                FrameKind::Map { .. } => frame.path.clone(),
            },
        }
    }

    fn open(&mut self, anchor: usize, mark: &Marker, kind: FrameKind) -> Result<(), String> {
        if let Some(Frame {
            kind: FrameKind::Map { pending: None, .. },
            ..
        }) = self.stack.last()
        {
            return Err("map keys must be plain values, not lists or maps".to_string());
        }
        self.budget.spend(1, self.stack.len() + 1)?;
        self.stack.push(Frame {
            path: self.current_path(),
            pos: pos_of(mark),
            anchor,
            kind,
        });
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let frame = self
            .stack
            .pop()
            .ok_or_else(|| "unbalanced end of a collection".to_string())?;
        let value = match frame.kind {
            FrameKind::Seq(items) => Value::Seq(items),
            FrameKind::Map { entries, .. } => Value::Map(merge(entries)?),
        };
        let node = Node {
            value,
            pos: frame.pos,
            key_pos: None,
        };
        let size = count(&node);
        self.remember(frame.anchor, &node, size);
        self.add(node, frame.pos)
    }

    fn remember(&mut self, anchor: usize, node: &Node, size: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), size));
        }
    }

    /// Adds a finished node to the collection being built, as a key, a value or an element.
    fn add(&mut self, mut node: Node, pos: Pos) -> Result<(), String> {
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node);
            return Ok(());
        };
        match &mut frame.kind {
            FrameKind::Seq(items) => items.push(node),
            FrameKind::Map {
                entries,
                seen,
                pending,
            } => match pending.take() {
                Some((key, key_pos)) => {
                    node.key_pos = Some(key_pos);
                    entries.push(Entry { key, node });
                }
                None => {
                    let Value::Scalar(scalar) = node.value else {
                        return Err("map keys must be plain values, not lists or maps".into());
                    };
                    if let Some(first) = seen.get(&scalar.text) {
                        return Err(format!(
                            "duplicate key `{}` (first at line {})",
                            scalar.text, first.line
                        ));
                    }
                    if entries.is_empty() && pos < frame.pos {
                        // A block map's start event comes after its first key.
                        frame.pos = pos;
                    }
                    seen.insert(scalar.text.clone(), pos);
                    *pending = Some((scalar.text, pos));
                }
            },
        }
        Ok(())
    }
}

/// Expands `<<` merge keys: the merged maps' entries come after the map's own, which win.
fn merge(entries: Vec<Entry>) -> Result<Vec<Entry>, String> {
    if !entries.iter().any(|e| e.key == "<<") {
        return Ok(entries);
    }
    let (merges, mut own): (Vec<Entry>, Vec<Entry>) =
        entries.into_iter().partition(|e| e.key == "<<");
    for merge in merges {
        let sources = match merge.node.value {
            Value::Map(_) => vec![merge.node],
            Value::Seq(items) => items,
            Value::Scalar(_) => Vec::new(),
        };
        if sources.is_empty() {
            return Err("`<<` merges a map or a list of maps".to_string());
        }
        for source in sources {
            let Value::Map(merged) = source.value else {
                return Err("`<<` merges a map or a list of maps".to_string());
            };
            for entry in merged {
                if !own.iter().any(|e| e.key == entry.key) {
                    own.push(entry);
                }
            }
        }
    }
    Ok(own)
}

/// The number of values in a tree.
fn count(node: &Node) -> usize {
    match &node.value {
        Value::Scalar(_) => 1,
        Value::Seq(items) => 1 + items.iter().map(count).sum::<usize>(),
        Value::Map(entries) => 1 + entries.iter().map(|e| count(&e.node)).sum::<usize>(),
    }
}

fn tag_name(tag: &Tag) -> String {
    if tag.handle == CORE_TAG_HANDLE {
        format!("!!{}", tag.suffix)
    } else {
        format!("{}{}", tag.handle, tag.suffix)
    }
}

fn check_collection_tag(tag: Option<&Tag>, expected: &str) -> Result<(), String> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == CORE_TAG_HANDLE && t.suffix == expected => Ok(()),
        Some(t) => Err(format!(
            "unsupported yaml tag `{}` here: expected no tag or `!!{expected}`",
            tag_name(t)
        )),
    }
}

/// Resolves a scalar with the YAML 1.2 core schema.
fn scalar_kind(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Result<ScalarKind, String> {
    if let Some(tag) = tag {
        if tag.handle == CORE_TAG_HANDLE && tag.suffix == "str" {
            return Ok(ScalarKind::Str);
        }
        return Err(format!(
            "unsupported yaml tag `{}`: only `!!str` is understood (write numbers and booleans \
             plainly)",
            tag_name(tag)
        ));
    }
    if style != TScalarStyle::Plain {
        return Ok(ScalarKind::Str);
    }
    Ok(plain_kind(text))
}

fn plain_kind(text: &str) -> ScalarKind {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return ScalarKind::Null,
        "true" | "True" | "TRUE" => return ScalarKind::Bool(true),
        "false" | "False" | "FALSE" => return ScalarKind::Bool(false),
        ".nan" | ".NaN" | ".NAN" => return ScalarKind::Float(f64::NAN),
        _ => {}
    }
    let (sign, digits) = match text.as_bytes().first() {
        Some(b'-') => (-1.0, &text[1..]),
        Some(b'+') => (1.0, &text[1..]),
        _ => (1.0, text),
    };
    if matches!(digits, ".inf" | ".Inf" | ".INF") {
        return ScalarKind::Float(sign * f64::INFINITY);
    }
    if let Some(hex) = text.strip_prefix("0x") {
        return int_kind(hex, 16, 1).unwrap_or(ScalarKind::Str);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        return int_kind(oct, 8, 1).unwrap_or(ScalarKind::Str);
    }
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        let sign = if sign < 0.0 { -1 } else { 1 };
        return int_kind(digits, 10, sign).unwrap_or(ScalarKind::Str);
    }
    if is_core_float(digits)
        && let Ok(f) = digits.parse::<f64>()
    {
        return ScalarKind::Float(sign * f);
    }
    ScalarKind::Str
}

/// An integer in `radix`; beyond the `i64`/`u64` range it is a float.
fn int_kind(digits: &str, radix: u32, sign: i128) -> Option<ScalarKind> {
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    match i128::from_str_radix(digits, radix) {
        Ok(v) if (i64::MIN as i128..=u64::MAX as i128).contains(&(sign * v)) => {
            Some(ScalarKind::Int(sign * v))
        }
        _ => digits
            .parse::<f64>()
            .ok()
            .map(|f| ScalarKind::Float(sign as f64 * f)),
    }
}

/// `( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?` (the sign already removed).
fn is_core_float(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match frac {
        Some(f) => digits(int) && digits(f) && !(int.is_empty() && f.is_empty()),
        None => !int.is_empty() && digits(int),
    };
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok && (frac.is_some() || exponent.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(text: &str) -> Node {
        parse(text).unwrap().unwrap()
    }

    fn kind_of(text: &str) -> ScalarKind {
        match root(&format!("v: {text}")).get("v").unwrap().value {
            Value::Scalar(Scalar { kind, .. }) => kind,
            ref other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn resolves_plain_scalars_with_the_core_schema() {
        let cases = [
            ("~", ScalarKind::Null),
            ("", ScalarKind::Null),
            ("True", ScalarKind::Bool(true)),
            ("false", ScalarKind::Bool(false)),
            ("yes", ScalarKind::Str),
            ("on", ScalarKind::Str),
            ("10", ScalarKind::Int(10)),
            ("-7", ScalarKind::Int(-7)),
            ("+7", ScalarKind::Int(7)),
            ("007", ScalarKind::Int(7)),
            ("0x1F", ScalarKind::Int(31)),
            ("0o17", ScalarKind::Int(15)),
            ("18446744073709551615", ScalarKind::Int(u64::MAX as i128)),
            ("1.5", ScalarKind::Float(1.5)),
            ("-.5e1", ScalarKind::Float(-5.0)),
            ("1e3", ScalarKind::Float(1000.0)),
            ("-.inf", ScalarKind::Float(f64::NEG_INFINITY)),
            ("1.2.3", ScalarKind::Str),
            ("0x", ScalarKind::Str),
            ("1_000", ScalarKind::Str),
            (".", ScalarKind::Str),
            ("'10'", ScalarKind::Str),
            ("\"true\"", ScalarKind::Str),
            ("!!str 10", ScalarKind::Str),
            ("2024-01-01", ScalarKind::Str),
        ];
        for (text, want) in cases {
            assert_eq!(kind_of(text), want, "{text}");
        }
        assert!(matches!(kind_of(".nan"), ScalarKind::Float(f) if f.is_nan()));
    }

    #[test]
    fn keeps_the_source_text_of_scalars() {
        let node = root("a: 1.10\nb: 'x'\n");
        let text = |k: &str| match &node.get(k).unwrap().value {
            Value::Scalar(s) => s.text.clone(),
            _ => unreachable!(),
        };
        assert_eq!(text("a"), "1.10");
        assert_eq!(text("b"), "x");
    }

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let node = root("name: é\ntasks:\n  - task_key: a\n    x: {y: [1, 'z']}\n");
        assert_eq!(node.pos, Pos { line: 1, column: 1 });
        let tasks = node.get("tasks").unwrap();
        assert_eq!(tasks.key_pos, Some(Pos { line: 2, column: 1 }));
        let Value::Seq(items) = &tasks.value else {
            unreachable!()
        };
        assert_eq!(items[0].pos, Pos { line: 3, column: 5 });
        let x = items[0].get("x").unwrap();
        assert_eq!(x.key_pos, Some(Pos { line: 4, column: 5 }));
        assert_eq!(x.pos, Pos { line: 4, column: 8 });
        let y = x.get("y").unwrap();
        let Value::Seq(ys) = &y.value else {
            unreachable!()
        };
        assert_eq!(
            ys[1].pos,
            Pos {
                line: 4,
                column: 16
            }
        );
    }

    #[test]
    fn expands_aliases_and_merge_keys() {
        let node = root(
            "base: &b {module: m, memory_limit_mb: 64}\n\
             one: {<<: *b, memory_limit_mb: 128}\n\
             two: *b\n",
        );
        let one = node.get("one").unwrap();
        let keys: Vec<&str> = one
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.key.as_str())
            .collect();
        assert_eq!(keys, ["memory_limit_mb", "module"]);
        assert!(matches!(
            &one.get("memory_limit_mb").unwrap().value,
            Value::Scalar(Scalar {
                kind: ScalarKind::Int(128),
                ..
            })
        ));
        let two = node.get("two").unwrap();
        assert_eq!(two.pos, Pos { line: 3, column: 6 });
        assert_eq!(two.key_pos, Some(Pos { line: 3, column: 1 }));
        assert_eq!(two.entries().unwrap().len(), 2);
    }

    #[test]
    fn refuses_duplicate_keys_where_the_second_one_is() {
        let err = parse("a: 1\nb:\n  c: 1\n  c: 2\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 4, column: 3 });
        assert_eq!(err.path.as_str(), "b");
        assert_eq!(err.message, "duplicate key `c` (first at line 3)");
    }

    #[test]
    fn locates_syntax_errors() {
        let err = parse("a: [1,\n").unwrap_err();
        assert_eq!(err.pos, Pos { line: 2, column: 1 });
        assert!(
            err.message.starts_with("yaml syntax error: "),
            "{}",
            err.message
        );
        let err = parse("a: 1\n b: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
    }

    #[test]
    fn refuses_a_second_document_tags_and_alias_bombs() {
        let err = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(err.pos.line, 2);
        assert!(err.message.contains("one yaml document"));
        let err = parse("a: !!int 3\n").unwrap_err();
        assert!(err.message.contains("`!!int`"), "{}", err.message);
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse(&bomb).unwrap_err();
        assert!(err.message.contains("more than"), "{}", err.message);
    }

    #[test]
    fn empty_and_null_documents_hold_nothing() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# only a comment\n").unwrap(), None);
        assert_eq!(parse("---\n").unwrap(), None);
        assert_eq!(parse("~\n").unwrap(), None);
    }
}
