//! JSON (RFC 8259) into [`Node`]s: a small scanner that tracks lines and columns.
//!
//! Duplicate keys are refused; numbers keep their source text.

use super::{Budget, Entry, Node, Scalar, ScalarKind, SyntaxError, Value};
use crate::spec::location::{FieldPath, Pos};
use std::collections::HashMap;

/// Parses a JSON document; `Ok(None)` when the text is only whitespace.
pub(super) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut reader = Reader {
        bytes: text.as_bytes(),
        text,
        at: 0,
        line: 1,
        column: 1,
        budget: Budget::default(),
    };
    reader.skip_whitespace();
    if reader.peek().is_none() {
        return Ok(None);
    }
    let root = reader.value(&FieldPath::root(), 1)?;
    reader.skip_whitespace();
    if let Some(c) = reader.peek_char() {
        return Err(reader.error(
            &FieldPath::root(),
            format!("unexpected {} after the end of the document", show(c)),
        ));
    }
    Ok(Some(root))
}

struct Reader<'a> {
    bytes: &'a [u8],
    text: &'a str,
    at: usize,
    line: usize,
    column: usize,
    budget: Budget,
}

/// How a character is shown in messages.
fn show(c: char) -> String {
    format!("`{}`", c.escape_debug())
}

impl Reader<'_> {
    fn pos(&self) -> Pos {
        Pos {
            line: self.line,
            column: self.column,
        }
    }

    fn error(&self, path: &FieldPath, message: String) -> SyntaxError {
        SyntaxError {
            pos: self.pos(),
            path: path.clone(),
            message: format!("json syntax error: {message}"),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn peek_char(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    /// What is next, for messages.
    fn found(&self) -> String {
        match self.peek_char() {
            Some(c) => show(c),
            None => "the end of the text".to_string(),
        }
    }

    fn bump(&mut self) {
        let Some(b) = self.peek() else { return };
        self.at += 1;
        if b == b'\n' {
            self.line += 1;
            self.column = 1;
        } else if b & 0xC0 != 0x80 {
            self.column += 1;
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.bump();
        }
    }

    fn expect(&mut self, byte: u8, path: &FieldPath, context: &str) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.bump();
            Ok(())
        } else {
            Err(self.error(
                path,
                format!(
                    "expected `{}` {context}, found {}",
                    byte as char,
                    self.found()
                ),
            ))
        }
    }

    fn value(&mut self, path: &FieldPath, depth: usize) -> Result<Node, SyntaxError> {
        let pos = self.pos();
        self.budget
            .spend(1, depth)
            .map_err(|m| self.error(path, m))?;
        let value = match self.peek() {
            Some(b'{') => self.object(path, depth)?,
            Some(b'[') => self.array(path, depth)?,
            Some(b'"') => {
                let text = self.string(path)?;
                Value::Scalar(Scalar {
                    kind: ScalarKind::Str,
                    text,
                })
            }
            Some(b'-' | b'0'..=b'9') => self.number(path)?,
            Some(b't') => self.word("true", ScalarKind::Bool(true), path)?,
            Some(b'f') => self.word("false", ScalarKind::Bool(false), path)?,
            Some(b'n') => self.word("null", ScalarKind::Null, path)?,
            _ => {
                return Err(self.error(
                    path,
                    format!(
                        "expected a value (object, array, string, number, true, false or null), \
                         found {}",
                        self.found()
                    ),
                ));
            }
        };
        Ok(Node {
            value,
            pos,
            key_pos: None,
        })
    }

    fn word(
        &mut self,
        word: &str,
        kind: ScalarKind,
        path: &FieldPath,
    ) -> Result<Value, SyntaxError> {
        if !self.text[self.at..].starts_with(word) {
            return Err(self.error(
                path,
                format!(
                    "expected a value (did you mean `{word}`?), found {}",
                    self.found()
                ),
            ));
        }
        for _ in 0..word.len() {
            self.bump();
        }
        Ok(Value::Scalar(Scalar {
            kind,
            text: word.to_string(),
        }))
    }

    fn object(&mut self, path: &FieldPath, depth: usize) -> Result<Value, SyntaxError> {
        self.bump();
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: HashMap<String, Pos> = HashMap::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.bump();
            return Ok(Value::Map(entries));
        }
        loop {
            self.skip_whitespace();
            let key_pos = self.pos();
            if self.peek() != Some(b'"') {
                return Err(self.error(
                    path,
                    format!("expected a key in double quotes, found {}", self.found()),
                ));
            }
            let key = self.string(path)?;
            if let Some(first) = seen.get(&key) {
                return Err(SyntaxError {
                    pos: key_pos,
                    path: path.clone(),
                    message: format!("duplicate key `{key}` (first at line {})", first.line),
                });
            }
            seen.insert(key.clone(), key_pos);
            self.skip_whitespace();
            self.expect(b':', &path.key(&key), "after a key")?;
            self.skip_whitespace();
            let mut node = self.value(&path.key(&key), depth + 1)?;
            node.key_pos = Some(key_pos);
            entries.push(Entry { key, node });
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Map(entries));
                }
                _ => {
                    return Err(self.error(
                        path,
                        format!(
                            "expected `,` or `}}` after an entry, found {}",
                            self.found()
                        ),
                    ));
                }
            }
        }
    }

    fn array(&mut self, path: &FieldPath, depth: usize) -> Result<Value, SyntaxError> {
        self.bump();
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.bump();
            return Ok(Value::Seq(items));
        }
        loop {
            self.skip_whitespace();
            items.push(self.value(&path.index(items.len()), depth + 1)?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.bump(),
                Some(b']') => {
                    self.bump();
                    return Ok(Value::Seq(items));
                }
                _ => {
                    return Err(self.error(
                        path,
                        format!(
                            "expected `,` or `]` after an element, found {}",
                            self.found()
                        ),
                    ));
                }
            }
        }
    }

    fn string(&mut self, path: &FieldPath) -> Result<String, SyntaxError> {
        self.bump();
        let mut out = String::new();
        loop {
            let start = self.at;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.text[start..self.at]);
            match self.peek() {
                Some(b'"') => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.bump();
                    out.push(self.escape(path)?);
                }
                Some(_) => {
                    return Err(self.error(
                        path,
                        format!("control character {} in a string: escape it", self.found()),
                    ));
                }
                None => {
                    return Err(self.error(path, "unterminated string: expected `\"`".into()));
                }
            }
        }
    }

    fn escape(&mut self, path: &FieldPath) -> Result<char, SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.bump();
                let high = self.hex4(path)?;
                if !(0xD800..0xDC00).contains(&high) {
                    return char::from_u32(high).ok_or_else(|| {
                        self.error(path, format!("\\u{high:04x} is not a character"))
                    });
                }
                if !self.text[self.at..].starts_with("\\u") {
                    return Err(self.error(
                        path,
                        format!("\\u{high:04x} starts a surrogate pair: expected a second \\u"),
                    ));
                }
                self.bump();
                self.bump();
                let low = self.hex4(path)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return Err(self.error(
                        path,
                        format!("\\u{low:04x} does not end the surrogate pair \\u{high:04x}"),
                    ));
                }
                let code = 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return char::from_u32(code)
                    .ok_or_else(|| self.error(path, "invalid surrogate pair".into()));
            }
            _ => {
                return Err(self.error(
                    path,
                    format!(
                        "unknown escape \\{}: expected one of \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u",
                        self.peek_char().map(String::from).unwrap_or_default()
                    ),
                ));
            }
        };
        self.bump();
        Ok(c)
    }

    fn hex4(&mut self, path: &FieldPath) -> Result<u32, SyntaxError> {
        let digits = self.text.get(self.at..self.at + 4).unwrap_or("");
        let value = (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u32::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or_else(|| self.error(path, "expected 4 hex digits after \\u".into()))?;
        for _ in 0..4 {
            self.bump();
        }
        Ok(value)
    }

    fn number(&mut self, path: &FieldPath) -> Result<Value, SyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error(path, format!("expected a digit, found {}", self.found()))),
        }
        let mut integer = true;
        if self.peek() == Some(b'.') {
            integer = false;
            self.bump();
            self.required_digits(path, "after `.`")?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer = false;
            self.bump();
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.bump();
            }
            self.required_digits(path, "in the exponent")?;
        }
        let text = self.text[start..self.at].to_string();
        let int = integer
            .then(|| text.parse::<i128>().ok())
            .flatten()
            .filter(|v| (i64::MIN as i128..=u64::MAX as i128).contains(v));
        let kind = match int {
            Some(v) => ScalarKind::Int(v),
            None => ScalarKind::Float(text.parse::<f64>().unwrap_or(f64::INFINITY)),
        };
        Ok(Value::Scalar(Scalar { kind, text }))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.bump();
        }
    }

    fn required_digits(&mut self, path: &FieldPath, context: &str) -> Result<(), SyntaxError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error(
                path,
                format!("expected a digit {context}, found {}", self.found()),
            ));
        }
        self.digits();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> (ScalarKind, &str) {
        match &node.value {
            Value::Scalar(s) => (s.kind, s.text.as_str()),
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn parses_values_with_positions() {
        let text =
            "{\n\t\"a\": [1, -2.50, 1e2, true, null],\n\t\"é\": \"x\\u00e9\\ud83d\\ude00\\n\"\n}";
        let node = parse(text).unwrap().unwrap();
        assert_eq!(node.pos, Pos { line: 1, column: 1 });
        let a = node.get("a").unwrap();
        assert_eq!(a.key_pos, Some(Pos { line: 2, column: 2 }));
        assert_eq!(a.pos, Pos { line: 2, column: 7 });
        let Value::Seq(items) = &a.value else {
            unreachable!()
        };
        assert_eq!(scalar(&items[0]), (ScalarKind::Int(1), "1"));
        assert_eq!(scalar(&items[1]), (ScalarKind::Float(-2.5), "-2.50"));
        assert_eq!(scalar(&items[2]), (ScalarKind::Float(100.0), "1e2"));
        assert_eq!(scalar(&items[3]), (ScalarKind::Bool(true), "true"));
        assert_eq!(scalar(&items[4]), (ScalarKind::Null, "null"));
        assert_eq!(
            items[4].pos,
            Pos {
                line: 2,
                column: 29
            }
        );
        let e = node.get("é").unwrap();
        assert_eq!(scalar(e), (ScalarKind::Str, "xé😀\n"));
        assert_eq!(e.pos, Pos { line: 3, column: 7 });
    }

    #[test]
    fn big_integers_become_floats() {
        let node = parse("[18446744073709551615, 18446744073709551616, -9223372036854775808]")
            .unwrap()
            .unwrap();
        let Value::Seq(items) = &node.value else {
            unreachable!()
        };
        assert_eq!(scalar(&items[0]).0, ScalarKind::Int(u64::MAX as i128));
        assert!(matches!(scalar(&items[1]).0, ScalarKind::Float(_)));
        assert_eq!(scalar(&items[2]).0, ScalarKind::Int(i64::MIN as i128));
    }

    #[test]
    fn locates_syntax_errors() {
        let cases = [
            (
                "{\"a\": 1,}",
                (1, 9),
                "expected a key in double quotes, found `}`",
            ),
            ("{\"a\" 1}", (1, 6), "expected `:` after a key, found `1`"),
            (
                "{\"a\": 1\n \"b\": 2}",
                (2, 2),
                "expected `,` or `}` after an entry",
            ),
            ("[1, 2", (1, 6), "found the end of the text"),
            ("{\"a\": tru}", (1, 7), "did you mean `true`?"),
            ("{\"a\": 01}", (1, 8), "expected `,` or `}`"),
            ("{\"a\": -}", (1, 8), "expected a digit"),
            ("{\"a\": 1.}", (1, 9), "expected a digit after `.`"),
            ("\"a\tb\"", (1, 3), "control character"),
            ("\"\\x\"", (1, 3), "unknown escape \\x"),
            ("\"\\ud800\"", (1, 8), "surrogate pair"),
            ("{} x", (1, 4), "unexpected `x` after the end"),
            (
                "{\"a\": 1, \"a\": 2}",
                (1, 10),
                "duplicate key `a` (first at line 1)",
            ),
            ("'a'", (1, 1), "expected a value"),
        ];
        for (text, (line, column), fragment) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(
                (err.pos.line, err.pos.column),
                (line, column),
                "{text}: {err:?}"
            );
            assert!(err.message.contains(fragment), "{text}: {}", err.message);
            let syntax = err.message.starts_with("json syntax error: ");
            assert_eq!(
                syntax,
                !fragment.starts_with("duplicate"),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn duplicate_keys_name_the_enclosing_path() {
        let err = parse("{\"tasks\": [{\"a\": 1, \"a\": 2}]}").unwrap_err();
        assert_eq!(err.path.as_str(), "tasks[0]");
    }

    #[test]
    fn empty_text_holds_nothing_and_deep_nesting_is_refused() {
        assert_eq!(parse(" \n\t").unwrap(), None);
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).unwrap_err().message.contains("deeper"));
    }
}
