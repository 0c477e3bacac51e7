//! A small CSV reader (RFC 4180): comma-separated fields, quoted fields that
//! may hold commas, line breaks and doubled quotes, LF or CRLF line ends, an
//! optional UTF-8 BOM, blank lines skipped. Records keep the line they start on.

use std::collections::HashMap;

/// One record and the (1-based) line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub line: usize,
    pub fields: Vec<String>,
}

/// A file that cannot be read as the expected CSV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CsvError {
    #[error("line {0}: a quoted field is never closed")]
    Unterminated(usize),
    #[error("line {0}: unexpected character after a closing quote")]
    AfterQuote(usize),
    #[error("the file is empty; a header row is required")]
    Empty,
    #[error("header (line {line}): {}", header_problems(.unknown, .missing))]
    Header {
        line: usize,
        unknown: Vec<String>,
        missing: Vec<String>,
    },
    #[error("header (line {line}): column {column:?} appears twice")]
    Duplicate { line: usize, column: String },
}

fn header_problems(unknown: &[String], missing: &[String]) -> String {
    let mut parts = Vec::new();
    if !unknown.is_empty() {
        parts.push(format!("unknown column(s): {}", unknown.join(", ")));
    }
    if !missing.is_empty() {
        parts.push(format!("missing column(s): {}", missing.join(", ")));
    }
    parts.join("; ")
}

/// Every non-blank record of `text`.
pub fn parse(text: &str) -> Result<Vec<Record>, CsvError> {
    let mut records = Vec::new();
    let mut chars = text
        .strip_prefix('\u{feff}')
        .unwrap_or(text)
        .chars()
        .peekable();
    let mut line = 1;
    let mut start = 1;
    let mut fields = Vec::new();
    let mut field = String::new();
    // Whether the current field was quoted (so `""` is a value, not a blank line).
    let mut quoted_seen = false;
    while let Some(c) = chars.next() {
        match c {
            '"' if field.is_empty() && !quoted_seen => {
                quoted_seen = true;
                loop {
                    match chars.next() {
                        None => return Err(CsvError::Unterminated(start)),
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            field.push('"');
                        }
                        Some('"') => break,
                        Some(c) => {
                            if c == '\n' {
                                line += 1;
                            }
                            field.push(c);
                        }
                    }
                }
                match chars.peek() {
                    None | Some(',' | '\n' | '\r') => {}
                    Some(_) => return Err(CsvError::AfterQuote(line)),
                }
            }
            ',' => {
                fields.push(std::mem::take(&mut field));
                quoted_seen = false;
            }
            '\r' | '\n' => {
                if c == '\r' && chars.peek() == Some(&'\n') {
                    chars.next();
                }
                end_record(&mut records, &mut fields, &mut field, start, quoted_seen);
                quoted_seen = false;
                line += 1;
                start = line;
            }
            c => field.push(c),
        }
    }
    end_record(&mut records, &mut fields, &mut field, start, quoted_seen);
    Ok(records)
}

fn end_record(
    records: &mut Vec<Record>,
    fields: &mut Vec<String>,
    field: &mut String,
    line: usize,
    quoted: bool,
) {
    if fields.is_empty() && field.is_empty() && !quoted {
        return; // a blank line
    }
    fields.push(std::mem::take(field));
    records.push(Record {
        line,
        fields: std::mem::take(fields),
    });
}

/// Records under a header row naming exactly the expected columns (in any
/// order, case-insensitive).
#[derive(Debug)]
pub struct Sheet {
    columns: HashMap<String, usize>,
    pub rows: Vec<Record>,
}

impl Sheet {
    /// Parses `text` and checks its header against `expected`.
    pub fn parse(text: &str, expected: &[&str]) -> Result<Self, CsvError> {
        let mut records = parse(text)?.into_iter();
        let header = records.next().ok_or(CsvError::Empty)?;
        let mut columns = HashMap::new();
        let mut unknown = Vec::new();
        for (i, name) in header.fields.iter().enumerate() {
            let name = name.trim().to_ascii_lowercase();
            if !expected.contains(&name.as_str()) {
                unknown.push(name);
                continue;
            }
            if columns.insert(name.clone(), i).is_some() {
                return Err(CsvError::Duplicate {
                    line: header.line,
                    column: name,
                });
            }
        }
        let missing: Vec<String> = expected
            .iter()
            .filter(|c| !columns.contains_key(**c))
            .map(|c| (*c).to_owned())
            .collect();
        if !missing.is_empty() || !unknown.is_empty() {
            return Err(CsvError::Header {
                line: header.line,
                unknown,
                missing,
            });
        }
        Ok(Self {
            columns,
            rows: records.collect(),
        })
    }

    /// Number of columns of the header.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// The value of `column` in `record` (empty when absent).
    pub fn get<'a>(&self, record: &'a Record, column: &str) -> &'a str {
        self.columns
            .get(column)
            .and_then(|i| record.fields.get(*i))
            .map_or("", String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Vec<Vec<String>> {
        parse(text).unwrap().into_iter().map(|r| r.fields).collect()
    }

    #[test]
    fn plain_fields_and_line_ends() {
        assert_eq!(fields("a,b\r\nc,d\n"), [["a", "b"], ["c", "d"]]);
        assert_eq!(fields("a,,b"), [["a", "", "b"]]);
        assert_eq!(fields("\u{feff}x,y"), [["x", "y"]]);
    }

    #[test]
    fn quoted_fields_hold_commas_quotes_and_line_breaks() {
        let text = "\"Jl. Trunojoyo, No. 5\",\"say \"\"hi\"\"\",\"two\nlines\",\"\"\nnext,row\n";
        let records = parse(text).unwrap();
        assert_eq!(
            records[0].fields,
            ["Jl. Trunojoyo, No. 5", "say \"hi\"", "two\nlines", ""]
        );
        assert_eq!(records[0].line, 1);
        assert_eq!(records[1].line, 3, "a record's line counts embedded breaks");
        assert_eq!(records[1].fields, ["next", "row"]);
    }

    #[test]
    fn blank_lines_are_skipped_and_lines_counted() {
        let records = parse("h\n\n\nx\n").unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(records[1].line, 4);
        assert_eq!(fields("\"\"\n"), [[""]], "a quoted empty field is a record");
    }

    #[test]
    fn malformed_quotes_are_errors() {
        assert_eq!(parse("a\n\"open,b\n"), Err(CsvError::Unterminated(2)));
        assert_eq!(parse("\"closed\"x,b"), Err(CsvError::AfterQuote(1)));
        assert_eq!(fields("ab\"c\",d"), [["ab\"c\"", "d"]]);
    }

    #[test]
    fn the_header_must_name_exactly_the_expected_columns() {
        let sheet = Sheet::parse("B, a\n2,1\n", &["a", "b"]).unwrap();
        assert_eq!(sheet.get(&sheet.rows[0], "a"), "1");
        assert_eq!(sheet.get(&sheet.rows[0], "b"), "2");
        assert_eq!(sheet.width(), 2);
        assert_eq!(
            Sheet::parse("a\n1\n", &["a", "b", "c"])
                .unwrap_err()
                .to_string(),
            "header (line 1): missing column(s): b, c"
        );
        assert_eq!(
            Sheet::parse("a,x\n", &["a", "b"]).unwrap_err().to_string(),
            "header (line 1): unknown column(s): x; missing column(s): b"
        );
        assert!(matches!(
            Sheet::parse("a,a,b\n", &["a", "b"]),
            Err(CsvError::Duplicate { .. })
        ));
        assert!(matches!(Sheet::parse("", &["a"]), Err(CsvError::Empty)));
    }
}
