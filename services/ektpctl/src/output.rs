//! Rendering: aligned text tables and key/value lists for people, and compact
//! JSON (built by hand, with a proper string escaper) for programs.

use prost_types::Timestamp;
use std::fmt::Write as _;

/// `s` as a JSON string literal, quotes included.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0C}' => out.push_str("\\f"),
            // Other control characters, and the two separators JavaScript
            // treats as line ends, as \u escapes.
            c if c < '\u{20}' || c == '\u{2028}' || c == '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object under construction; keys keep their insertion order.
#[derive(Debug, Default)]
pub struct Json {
    fields: Vec<(String, String)>,
}

impl Json {
    pub fn new() -> Self {
        Self::default()
    }

    /// A string member.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.fields.push((key.to_owned(), json_string(value)));
        self
    }

    /// A number member.
    pub fn num(mut self, key: &str, value: impl Into<u64>) -> Self {
        self.fields.push((key.to_owned(), value.into().to_string()));
        self
    }

    /// A boolean member.
    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.fields.push((key.to_owned(), value.to_string()));
        self
    }

    /// A member that is already JSON (an object, an array).
    pub fn raw(mut self, key: &str, json: String) -> Self {
        self.fields.push((key.to_owned(), json));
        self
    }

    /// A list of strings.
    pub fn strs(self, key: &str, values: &[String]) -> Self {
        let items = values.iter().map(|v| json_string(v)).collect();
        self.raw(key, array(items))
    }

    /// The object as compact JSON.
    pub fn build(self) -> String {
        let members: Vec<String> = self
            .fields
            .into_iter()
            .map(|(k, v)| format!("{}:{v}", json_string(&k)))
            .collect();
        format!("{{{}}}", members.join(","))
    }
}

/// A JSON array of already-rendered values.
pub fn array(items: Vec<String>) -> String {
    format!("[{}]", items.join(","))
}

/// A timestamp as RFC 3339 (UTC), or `-` when unset.
pub fn time(t: Option<&Timestamp>) -> String {
    t.map_or_else(|| "-".to_owned(), Timestamp::to_string)
}

/// A text cell: the value, or `-` when empty.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// `yes` / `no`.
pub fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// A table with a header row; columns marked as counts are right-aligned
/// (while every cell in them is a number).
#[derive(Debug)]
pub struct Table {
    header: Vec<String>,
    counts: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            counts: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// Marks the named columns as counts.
    pub fn counts(mut self, columns: &[&str]) -> Self {
        self.counts = columns.iter().map(|c| (*c).to_owned()).collect();
        self
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table, each line prefixed by `indent`, without trailing spaces.
    pub fn render(&self, indent: &str) -> String {
        let columns = self.header.len();
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..columns).map(width).collect();
        let numeric: Vec<bool> = (0..columns)
            .map(|i| {
                self.counts.contains(&self.header[i])
                    && self
                        .rows
                        .iter()
                        .filter_map(|r| r.get(i))
                        .all(|c| c.parse::<u64>().is_ok())
            })
            .collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = indent.to_owned();
            for (i, cell) in row.iter().enumerate().take(columns) {
                let w = widths.get(i).copied().unwrap_or(0);
                let right = numeric.get(i).copied().unwrap_or(false);
                if i > 0 {
                    line.push_str("  ");
                }
                if right {
                    let _ = write!(line, "{cell:>w$}");
                } else {
                    let _ = write!(line, "{cell:<w$}");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `key  value` lines with the values aligned, each prefixed by `indent`.
pub fn pairs(indent: &str, items: &[(&str, String)]) -> String {
    let w = items
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    items
        .iter()
        .map(|(k, v)| format!("{indent}{k:<w$}  {v}").trim_end().to_owned() + "\n")
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("plain"), r#""plain""#);
        assert_eq!(json_string(r#"a "q" \ b"#), r#""a \"q\" \\ b""#);
        assert_eq!(json_string("l1\nl2\r\t"), r#""l1\nl2\r\t""#);
        assert_eq!(json_string("\u{0}\u{1f}\u{7f}"), "\"\\u0000\\u001f\u{7f}\"");
        assert_eq!(json_string("\u{8}\u{c}"), r#""\b\f""#);
        assert_eq!(json_string("Désa\u{2028}"), "\"Désa\\u2028\"");
    }

    #[test]
    fn objects_keep_order_and_types() {
        let json = Json::new()
            .str("name", "printer-1")
            .num("printed", 5u64)
            .bool("paused", false)
            .raw("list", array(vec!["1".into(), "2".into()]))
            .strs("w", &["x\"".to_owned()])
            .build();
        assert_eq!(
            json,
            r#"{"name":"printer-1","printed":5,"paused":false,"list":[1,2],"w":["x\""]}"#
        );
    }

    #[test]
    fn tables_align_and_right_align_numbers() {
        let mut t = Table::new(&["NAME", "ID", "COUNT"]).counts(&["COUNT"]);
        t.row(vec!["a".into(), "0001".into(), "5".into()]);
        t.row(vec!["longer".into(), "02".into(), "1234".into()]);
        assert_eq!(
            t.render(""),
            "NAME    ID    COUNT\na       0001      5\nlonger  02     1234\n"
        );
    }

    #[test]
    fn pairs_align_values() {
        let text = pairs("  ", &[("a", "1".into()), ("long key", "2".into())]);
        assert_eq!(text, "  a         1\n  long key  2\n");
    }
}
