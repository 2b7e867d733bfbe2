//! serde deserialization from a [`Node`] tree, with the position of the failing value and
//! (through `serde_path_to_error`) its path.
//!
//! Two departures from a plain JSON deserializer: a field that expects a string accepts a number
//! or boolean as the text it was written as (`default: 10`, `env: {N: 3}`), and a struct must
//! be a map (never a positional list).

use super::{Entry, Node, ScalarKind, Value};
use crate::spec::location::{FieldPath, Issue, Pos};
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Unexpected, Visitor,
};
use std::fmt;

/// Deserializes `node`; a failure is located at the failing value and named by its path
/// (relative to `node`, appended to `base`).
pub(crate) fn decode<T: DeserializeOwned>(node: &Node, base: &FieldPath) -> Result<T, Issue> {
    serde_path_to_error::deserialize(node).map_err(|err| {
        let path = base.join(&relative_path(err.path()));
        let inner = err.into_inner();
        Issue {
            pos: inner.pos,
            ..Issue::new(path, inner.message)
        }
    })
}

fn relative_path(path: &serde_path_to_error::Path) -> FieldPath {
    use serde_path_to_error::Segment;
    path.iter()
        .fold(FieldPath::root(), |p, segment| match segment {
            Segment::Seq { index } => p.index(*index),
            Segment::Map { key } => p.key(key),
            Segment::Enum { variant } => p.key(variant),
            Segment::Unknown => p,
        })
}

/// A deserialization failure and where it happened.
#[derive(Debug)]
pub(crate) struct DeError {
    message: String,
    pos: Option<Pos>,
}

impl DeError {
    /// Sets the position unless an inner value already did.
    fn at(mut self, pos: Pos) -> DeError {
        self.pos.get_or_insert(pos);
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            message: msg.to_string(),
            pos: None,
        }
    }
}

impl Node {
    fn unexpected(&self) -> Unexpected<'_> {
        match &self.value {
            Value::Seq(_) => Unexpected::Seq,
            Value::Map(_) => Unexpected::Map,
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => Unexpected::Other("null"),
                ScalarKind::Bool(b) => Unexpected::Bool(b),
                ScalarKind::Int(i) => match u64::try_from(i) {
                    Ok(u) => Unexpected::Unsigned(u),
                    Err(_) => Unexpected::Signed(i as i64),
                },
                ScalarKind::Float(f) => Unexpected::Float(f),
                ScalarKind::Str => Unexpected::Str(&s.text),
            },
        }
    }

    fn refuse_null<'de, V: Visitor<'de>>(&self, visitor: &V) -> Result<(), DeError> {
        match &self.value {
            Value::Scalar(s) if s.kind == ScalarKind::Null => {
                let e: DeError = de::Error::invalid_type(Unexpected::Other("null"), visitor);
                Err(e.at(self.error_pos()))
            }
            _ => Ok(()),
        }
    }

    fn visit<'de, V: Visitor<'de>>(&'de self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Scalar(s) => match s.kind {
                ScalarKind::Null => visitor.visit_unit(),
                ScalarKind::Bool(b) => visitor.visit_bool(b),
                ScalarKind::Int(i) => match u64::try_from(i) {
                    Ok(u) => visitor.visit_u64(u),
                    Err(_) => visitor.visit_i64(i as i64),
                },
                ScalarKind::Float(f) => visitor.visit_f64(f),
                ScalarKind::Str => visitor.visit_borrowed_str(&s.text),
            },
            Value::Seq(items) => {
                let mut access = Items {
                    items: items.iter(),
                    seen: 0,
                };
                let value = visitor.visit_seq(&mut access)?;
                match access.items.len() {
                    0 => Ok(value),
                    rest => Err(de::Error::invalid_length(
                        access.seen + rest,
                        &"fewer elements",
                    )),
                }
            }
            Value::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
        }
    }
}

/// Typed hints refuse null as "null" (serde would call it a "unit value").
macro_rules! refuse_null {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.refuse_null(&visitor)?;
            self.deserialize_any(visitor)
        }
    )*};
}

/// Integers also come as strings of digits: the proto3 JSON mapping that the Jobs API and its
/// clients follow writes 64-bit integers that way.
macro_rules! integers {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.refuse_null(&visitor)?;
            if let Value::Scalar(s) = &self.value
                && s.kind == ScalarKind::Str
            {
                let text = s.text.trim();
                if let Ok(u) = text.parse::<u64>() {
                    return visitor.visit_u64(u).map_err(|e: DeError| e.at(self.error_pos()));
                }
                if let Ok(i) = text.parse::<i64>() {
                    return visitor.visit_i64(i).map_err(|e: DeError| e.at(self.error_pos()));
                }
            }
            self.deserialize_any(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &'de Node {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.visit(visitor).map_err(|e| e.at(self.error_pos()))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Scalar(s) if s.kind == ScalarKind::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
        .map_err(|e| e.at(self.error_pos()))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.refuse_null(&visitor)?;
        match &self.value {
            // A number or boolean where text is expected is the text it was written as.
            Value::Scalar(s)
                if matches!(
                    s.kind,
                    ScalarKind::Bool(_) | ScalarKind::Int(_) | ScalarKind::Float(_)
                ) =>
            {
                visitor.visit_borrowed_str(&s.text)
            }
            _ => self.visit(visitor),
        }
        .map_err(|e| e.at(self.error_pos()))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Map(_) => self.visit(visitor),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
        .map_err(|e| e.at(self.error_pos()))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.value {
            Value::Scalar(s) if s.kind == ScalarKind::Str => {
                let variant = de::value::BorrowedStrDeserializer::<DeError>::new(&s.text);
                visitor.visit_enum(variant)
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        }
        .map_err(|e| e.at(self.error_pos()))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor
            .visit_newtype_struct(self)
            .map_err(|e| e.at(self.error_pos()))
    }

    refuse_null! {
        deserialize_bool deserialize_f32 deserialize_f64 deserialize_char deserialize_bytes
        deserialize_byte_buf deserialize_seq deserialize_map
    }

    integers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    serde::forward_to_deserialize_any! {
        unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

/// Elements of a sequence.
struct Items<'de> {
    items: std::slice::Iter<'de, Node>,
    seen: usize,
}

impl<'de> SeqAccess<'de> for &mut Items<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => {
                self.seen += 1;
                seed.deserialize(node).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// Entries of a map; keys are located at the key, values at the value.
struct Entries<'de> {
    entries: std::slice::Iter<'de, Entry>,
    value: Option<&'de Node>,
}

impl<'de> MapAccess<'de> for Entries<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some(entry) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(&entry.node);
        let key_pos = entry.node.key_pos.unwrap_or(entry.node.pos);
        let key = de::value::BorrowedStrDeserializer::<DeError>::new(&entry.key);
        seed.deserialize(key).map(Some).map_err(|e| e.at(key_pos))
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a map value was read before its key"))?;
        seed.deserialize(node)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::Format;
    use crate::spec::source::parse;
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Outer {
        name: String,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        inner: Option<Inner>,
        #[serde(default)]
        mode: Option<Mode>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        flag: bool,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
    enum Mode {
        Fast,
        Slow,
    }

    fn decode_yaml(text: &str) -> Result<Outer, Issue> {
        let node = parse(text, Format::Yaml).unwrap().unwrap();
        decode(&node, &FieldPath::root())
    }

    fn failure(text: &str) -> (String, (usize, usize), String) {
        let issue = decode_yaml(text).unwrap_err();
        let pos = issue.pos.expect("located");
        (
            issue.path.to_string(),
            (pos.line, pos.column),
            issue.message,
        )
    }

    #[test]
    fn numbers_and_booleans_become_their_text_where_strings_are_expected() {
        let outer = decode_yaml(
            "name: 1.10\nenv: {N: 3, B: true, S: x}\nargs: [--n, 5, 0x1F, -0.0]\nmode: SLOW\n",
        )
        .unwrap();
        assert_eq!(outer.name, "1.10");
        assert_eq!(outer.env["N"], "3");
        assert_eq!(outer.env["B"], "true");
        assert_eq!(outer.args, ["--n", "5", "0x1F", "-0.0"]);
        assert_eq!(outer.mode, Some(Mode::Slow));
    }

    #[test]
    fn failures_carry_path_position_and_serde_message() {
        let (path, pos, message) = failure("name: a\ncount: -1\n");
        assert_eq!((path.as_str(), pos), ("count", (2, 8)));
        assert!(
            message.contains("invalid value: integer `-1`, expected u32"),
            "{message}"
        );

        let (path, pos, message) = failure("name: a\ninner:\n  flag: true\n  flgg: 1\n");
        assert_eq!((path.as_str(), pos), ("inner.flgg", (4, 3)));
        assert_eq!(message, "unknown field `flgg`, expected `flag`");

        let (path, pos, message) = failure("name: a\ninner: {}\n");
        assert_eq!((path.as_str(), pos), ("inner", (2, 1)));
        assert_eq!(message, "missing field `flag`");

        let (path, pos, message) = failure("name: a\nmode: MEDIUM\n");
        assert_eq!((path.as_str(), pos), ("mode", (2, 7)));
        assert!(message.contains("unknown variant `MEDIUM`, expected `FAST` or `SLOW`"));

        let (path, pos, message) = failure("name: a\nargs: [x, [y]]\n");
        assert_eq!((path.as_str(), pos), ("args[1]", (2, 11)));
        assert!(message.contains("invalid type: sequence, expected a string"));

        let (path, pos, message) = failure("name: a\ninner: [true]\n");
        assert_eq!((path.as_str(), pos), ("inner", (2, 1)));
        assert!(message.contains("invalid type: sequence, expected struct Inner"));

        let (path, pos, message) = failure("name: {a: 1}\n");
        assert_eq!((path.as_str(), pos), ("name", (1, 1)));
        assert!(message.contains("invalid type: map, expected a string"));

        let (path, pos, message) = failure("name: ~\n");
        assert_eq!((path.as_str(), pos), ("name", (1, 7)));
        assert!(message.contains("invalid type: null, expected a string"));
    }

    #[test]
    fn paths_are_appended_to_the_base() {
        let node = parse("{\"flag\": 3}", Format::Json).unwrap().unwrap();
        let issue = decode::<Inner>(&node, &FieldPath::from_rendered("new_settings")).unwrap_err();
        assert_eq!(issue.path.as_str(), "new_settings.flag");
        assert_eq!(
            issue.pos,
            Some(Pos {
                line: 1,
                column: 10
            })
        );
    }
}
