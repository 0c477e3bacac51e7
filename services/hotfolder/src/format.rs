//! The text encodings: ticket and result files as `key=value` lines, log
//! lines as tab-separated fields, and the file names derived from
//! `(job_id, card_serial)`.
//!
//! Values are escaped (`\\`, `\n`, `\r`, `\t`) so a full name can never
//! break a line or a log field.

use std::collections::HashMap;

use crate::{HotFolderError, JobResult, JobTicket, LogEntry, Outcome};

pub(crate) const TICKET_SUFFIX: &str = ".job";
pub(crate) const RESULT_SUFFIX: &str = ".result";
/// The card image beside a ticket: `{job_id}_{card_serial}.png`.
pub(crate) const IMAGE_SUFFIX: &str = ".png";

/// Keeps `{job_id}_{card_serial}.result` well under the usual 255-byte
/// file-name limit.
const MAX_NAME_LEN: usize = 100;

fn is_valid_name(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= MAX_NAME_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Job ids and serials become file names, so only `[A-Za-z0-9-]` is allowed.
pub(crate) fn validate_name(kind: &str, value: &str) -> Result<(), HotFolderError> {
    if is_valid_name(value) {
        Ok(())
    } else {
        Err(HotFolderError::BadName(format!(
            "{kind} {value:?} must be 1 to {MAX_NAME_LEN} characters of [A-Za-z0-9-]"
        )))
    }
}

/// Validates both names and returns the shared file stem `{job_id}_{card_serial}`.
pub(crate) fn stem(job_id: &str, card_serial: &str) -> Result<String, HotFolderError> {
    validate_name("job id", job_id)?;
    validate_name("card serial", card_serial)?;
    Ok(format!("{job_id}_{card_serial}"))
}

/// Splits `{job_id}_{card_serial}{suffix}`; `None` for any other file name,
/// which the printer leaves alone.
pub(crate) fn parse_file_name(file_name: &str, suffix: &str) -> Option<(String, String)> {
    let (job_id, card_serial) = file_name.strip_suffix(suffix)?.split_once('_')?;
    (is_valid_name(job_id) && is_valid_name(card_serial))
        .then(|| (job_id.to_owned(), card_serial.to_owned()))
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
}

fn unescape(value: &str) -> Result<String, String> {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some(other) => return Err(format!("unknown escape \\{other}")),
            None => return Err("value ends in a lone backslash".to_owned()),
        }
    }
    Ok(out)
}

fn encode_fields(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(key, value)| format!("{key}={}\n", escape(value)))
        .collect()
}

/// `key=value` lines; blank lines are skipped and unknown keys kept so
/// readers can ignore them.
struct Fields(HashMap<String, String>);

impl Fields {
    fn decode(text: &str) -> Result<Self, String> {
        let mut map = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            // The line itself may hold card data (a name, a NIK): never echo it.
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| format!("line {} has no '='", index + 1))?;
            map.insert(key.trim().to_owned(), unescape(value)?);
        }
        Ok(Fields(map))
    }

    fn take(&mut self, key: &str) -> Result<String, String> {
        self.0.remove(key).ok_or_else(|| format!("missing {key}"))
    }

    fn take_optional(&mut self, key: &str) -> Option<String> {
        self.0.remove(key)
    }

    fn take_name(&mut self, key: &str) -> Result<String, String> {
        let value = self.take(key)?;
        if is_valid_name(&value) {
            Ok(value)
        } else {
            Err(format!("{key} {value:?} is not [A-Za-z0-9-]"))
        }
    }
}

/// The image file name of `(job_id, card_serial)`: `{stem}.png`.
pub(crate) fn image_name(job_id: &str, card_serial: &str) -> Result<String, HotFolderError> {
    Ok(format!("{}{IMAGE_SUFFIX}", stem(job_id, card_serial)?))
}

pub(crate) fn ticket_to_text(ticket: &JobTicket) -> String {
    let epoch = ticket.epoch.to_string();
    let mut fields = vec![
        ("job_id", ticket.job_id.as_str()),
        ("card_serial", ticket.card_serial.as_str()),
        ("epoch", epoch.as_str()),
        ("nik", ticket.nik.as_str()),
        ("full_name", ticket.full_name.as_str()),
    ];
    // A ticket without an image reads the same as one written before
    // images existed.
    if !ticket.image.is_empty() {
        fields.push(("image", ticket.image.as_str()));
    }
    encode_fields(&fields)
}

pub(crate) fn ticket_from_text(text: &str) -> Result<JobTicket, String> {
    let mut fields = Fields::decode(text)?;
    let job_id = fields.take_name("job_id")?;
    let card_serial = fields.take_name("card_serial")?;
    // The image, if any, must be the ticket's own: a ticket can never point
    // the printer at another file.
    let image = fields.take_optional("image").unwrap_or_default();
    let expected = format!("{job_id}_{card_serial}{IMAGE_SUFFIX}");
    if !image.is_empty() && image != expected {
        return Err(format!("image {image:?} is not {expected:?}"));
    }
    Ok(JobTicket {
        nik: fields.take("nik")?,
        full_name: fields.take("full_name")?,
        // Tickets written before fencing existed have no epoch: 0, below
        // any fence a leader sets.
        epoch: match fields.take_optional("epoch") {
            Some(value) => parse_epoch(&value)?,
            None => 0,
        },
        image,
        job_id,
        card_serial,
    })
}

/// A decimal epoch, as in a ticket's `epoch` key or the `control/fence` file;
/// surrounding whitespace is ignored.
pub(crate) fn parse_epoch(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    // `u64::from_str` alone would also take a leading `+`.
    let digits_only = !trimmed.is_empty() && trimmed.bytes().all(|b| b.is_ascii_digit());
    if let (true, Ok(epoch)) = (digits_only, trimmed.parse()) {
        return Ok(epoch);
    }
    Err(format!(
        "epoch {trimmed:?} is not a non-negative 64-bit integer"
    ))
}

pub(crate) fn result_to_text(result: &JobResult) -> String {
    encode_fields(&[
        ("job_id", &result.job_id),
        ("card_serial", &result.card_serial),
        ("outcome", result.outcome.as_str()),
        ("detail", &result.detail),
        ("printer", &result.printer),
    ])
}

fn parse_outcome(text: &str) -> Result<Outcome, String> {
    Outcome::parse(text).ok_or_else(|| format!("unknown outcome {text:?}"))
}

pub(crate) fn result_from_text(text: &str) -> Result<JobResult, String> {
    let mut fields = Fields::decode(text)?;
    Ok(JobResult {
        job_id: fields.take_name("job_id")?,
        card_serial: fields.take_name("card_serial")?,
        outcome: parse_outcome(&fields.take("outcome")?)?,
        detail: fields.take("detail")?,
        printer: fields.take("printer")?,
    })
}

/// One log line, newline included.
pub(crate) fn log_line(entry: &LogEntry) -> String {
    format!(
        "{}\t{}\t{}\t{}\t{}\n",
        entry.unix_ms,
        entry.job_id,
        entry.card_serial,
        entry.outcome.as_str(),
        escape(&entry.detail)
    )
}

pub(crate) fn parse_log_line(line: &str) -> Result<LogEntry, String> {
    let parts: Vec<&str> = line.split('\t').collect();
    let [unix_ms, job_id, card_serial, outcome, detail] = parts[..] else {
        return Err(format!(
            "expected 5 tab-separated fields, got {}",
            parts.len()
        ));
    };
    if !is_valid_name(job_id) || !is_valid_name(card_serial) {
        return Err("bad job id or serial".to_owned());
    }
    Ok(LogEntry {
        unix_ms: unix_ms
            .parse()
            .map_err(|_| format!("bad timestamp {unix_ms:?}"))?,
        job_id: job_id.to_owned(),
        card_serial: card_serial.to_owned(),
        outcome: parse_outcome(outcome)?,
        detail: unescape(detail)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn awkward_values_survive_a_round_trip() {
        let ticket = JobTicket {
            job_id: "000001".into(),
            card_serial: "S-1".into(),
            nik: "3527014507900001".into(),
            full_name: "Line\nbreak\ttab \\ back=slash é".into(),
            epoch: 12,
            image: String::new(),
        };
        let text = ticket_to_text(&ticket);
        assert_eq!(text.lines().count(), 5);
        assert_eq!(ticket_from_text(&text).unwrap(), ticket);
    }

    #[test]
    fn a_malformed_ticket_error_never_echoes_its_card_data() {
        let text = "job_id=1\ncard_serial=2\n3527014507900001 Siti Rahayu\n";
        let error = ticket_from_text(text).unwrap_err();
        assert_eq!(error, "line 3 has no '='");
    }

    #[test]
    fn unknown_ticket_keys_are_ignored() {
        let text = "job_id=1\ncard_serial=2\nnik=3\nfull_name=4\nphoto=abc\n";
        assert_eq!(ticket_from_text(text).unwrap().full_name, "4");
    }

    #[test]
    fn a_ticket_epoch_survives_a_round_trip() {
        for epoch in [0, 1, 7, u64::MAX] {
            let ticket = JobTicket {
                job_id: "000001".into(),
                card_serial: "S-1".into(),
                nik: "3527014507900001".into(),
                full_name: "Siti Rahayu".into(),
                epoch,
                image: "000001_S-1.png".into(),
            };
            let text = ticket_to_text(&ticket);
            assert!(text.contains(&format!("epoch={epoch}\n")), "{text}");
            assert_eq!(ticket_from_text(&text).unwrap(), ticket);
        }
    }

    #[test]
    fn a_ticket_names_its_own_image_or_none() {
        let text = "job_id=1\ncard_serial=2\nnik=3\nfull_name=4\nimage=1_2.png\n";
        assert_eq!(ticket_from_text(text).unwrap().image, "1_2.png");
        let text = "job_id=1\ncard_serial=2\nnik=3\nfull_name=4\n";
        assert_eq!(ticket_from_text(text).unwrap().image, "");
        for image in ["../1_2.png", "1_3.png", "1_2.jpg", "/etc/passwd"] {
            let text = format!("job_id=1\ncard_serial=2\nnik=3\nfull_name=4\nimage={image}\n");
            assert!(
                ticket_from_text(&text).is_err(),
                "image={image:?} was accepted"
            );
        }
        assert_eq!(image_name("000001", "S-1").unwrap(), "000001_S-1.png");
        assert!(image_name("../x", "S-1").is_err());
    }

    #[test]
    fn a_ticket_text_without_an_epoch_reads_as_epoch_zero() {
        let text = "job_id=1\ncard_serial=2\nnik=3\nfull_name=4\n";
        assert_eq!(ticket_from_text(text).unwrap().epoch, 0);
    }

    #[test]
    fn a_ticket_with_a_garbled_epoch_is_malformed() {
        for epoch in ["", "-1", "+3", "seven", "1.5", "18446744073709551616"] {
            let text = format!("job_id=1\ncard_serial=2\nnik=3\nfull_name=4\nepoch={epoch}\n");
            assert!(
                ticket_from_text(&text).is_err(),
                "epoch={epoch:?} was accepted"
            );
        }
    }

    #[test]
    fn the_refused_outcome_survives_a_result_and_a_log_line() {
        assert_eq!(Outcome::parse("refused"), Some(Outcome::Refused));
        let entry = LogEntry {
            unix_ms: 17,
            job_id: "7".into(),
            card_serial: "x".into(),
            outcome: Outcome::Refused,
            detail: "stale epoch 6 below fence 7".into(),
        };
        let line = log_line(&entry);
        assert!(line.contains("\trefused\t"), "{line}");
        assert_eq!(parse_log_line(line.trim_end_matches('\n')).unwrap(), entry);
        let result = entry.to_result("printer-1");
        assert_eq!(result_from_text(&result_to_text(&result)).unwrap(), result);
    }

    #[test]
    fn a_log_detail_with_tabs_stays_one_field() {
        let entry = LogEntry {
            unix_ms: 17,
            job_id: "7".into(),
            card_serial: "x".into(),
            outcome: Outcome::Jammed,
            detail: "a\tb\nc".into(),
        };
        let line = log_line(&entry);
        assert_eq!(line.matches('\t').count(), 4);
        assert_eq!(parse_log_line(line.trim_end_matches('\n')).unwrap(), entry);
    }

    #[test]
    fn file_names_only_parse_when_both_parts_are_valid() {
        assert_eq!(
            parse_file_name("0001_AB-9.job", TICKET_SUFFIX),
            Some(("0001".to_owned(), "AB-9".to_owned()))
        );
        assert_eq!(parse_file_name("0001_AB_9.job", TICKET_SUFFIX), None);
        assert_eq!(parse_file_name("0001_AB.tmp", TICKET_SUFFIX), None);
        assert_eq!(parse_file_name("_AB.job", TICKET_SUFFIX), None);
    }
}
