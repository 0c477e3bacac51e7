//! Identifier newtypes: print job ids and card serials.

use std::fmt;

/// A print job id: a monotonic sequence, shown zero-padded to 12 digits so
/// that key order is FIFO order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(pub u64);

impl JobId {
    /// Parses the 12-digit form.
    pub fn parse(s: &str) -> Option<JobId> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok().map(JobId))
            .flatten()
            .filter(|id| id.0 > 0)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:012}", self.0)
    }
}

/// A card serial: allocated when a job is claimed and printed on the card.
/// Shown as `KTP-` and 10 zero-padded digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CardSerial(String);

impl CardSerial {
    const PREFIX: &'static str = "KTP-";

    /// The serial for sequence number `n`.
    pub fn from_sequence(n: u64) -> Self {
        CardSerial(format!("{}{n:010}", Self::PREFIX))
    }

    /// Parses the printed form.
    pub fn parse(s: &str) -> Option<CardSerial> {
        let digits = s.strip_prefix(Self::PREFIX)?;
        (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
            .then(|| CardSerial(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CardSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_round_trip_through_their_padded_form() {
        let id = JobId(42);
        assert_eq!(id.to_string(), "000000000042");
        assert_eq!(JobId::parse("000000000042"), Some(id));
        assert_eq!(JobId::parse("42"), None);
        assert_eq!(JobId::parse("000000000000"), None);
    }

    #[test]
    fn card_serials_round_trip_through_their_printed_form() {
        let serial = CardSerial::from_sequence(7);
        assert_eq!(serial.as_str(), "KTP-0000000007");
        assert_eq!(CardSerial::parse("KTP-0000000007"), Some(serial));
        assert_eq!(CardSerial::parse("KTP-7"), None);
    }
}
