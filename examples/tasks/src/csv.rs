//! Splitting CSV lines (RFC 4180 fields on one line: quotes, doubled quotes inside them).

/// The fields of one CSV line, unquoted, without surrounding spaces.
pub fn split_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.trim().is_empty() => {
                field.clear();
                quoted = true;
            }
            (',', false) => fields.push(std::mem::take(&mut field).trim().to_string()),
            (c, _) => field.push(c),
        }
    }
    fields.push(field.trim().to_string());
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_plain_fields() {
        assert_eq!(
            split_line("1001,eu,120.50,2025-11-20\r\n"),
            ["1001", "eu", "120.50", "2025-11-20"]
        );
        assert_eq!(split_line("a,,c"), ["a", "", "c"]);
        assert_eq!(split_line(" a , b "), ["a", "b"]);
    }

    #[test]
    fn unquotes_quoted_fields() {
        assert_eq!(
            split_line(r#"1,"Paris, FR","say ""hi""",x"#),
            ["1", "Paris, FR", r#"say "hi""#, "x"]
        );
    }
}
