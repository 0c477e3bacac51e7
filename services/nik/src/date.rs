//! Gregorian calendar dates without time zones.

use std::fmt;

/// The earliest year a [`CivilDate`] accepts.
const MIN_YEAR: u16 = 1800;
/// The latest year a [`CivilDate`] accepts.
const MAX_YEAR: u16 = 2200;

/// Why a calendar date was rejected.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DateError {
    /// The text is not of the form `YYYY-MM-DD`.
    #[error("expected YYYY-MM-DD")]
    Format,
    /// The date does not exist in the calendar, or its year is outside 1800–2200.
    #[error("not a real calendar date")]
    OutOfRange,
}

/// A calendar date (proleptic Gregorian), ordered chronologically.
///
/// Build one with [`CivilDate::new`] or [`CivilDate::parse`] to be sure it is
/// a real date; the fields are public for convenient reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CivilDate {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

impl CivilDate {
    /// A real calendar date with a year in 1800..=2200.
    pub fn new(year: u16, month: u8, day: u8) -> Result<CivilDate, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) || day == 0 || day > days_in_month(year, month) {
            return Err(DateError::OutOfRange);
        }
        Ok(CivilDate { year, month, day })
    }

    /// Parses strictly `YYYY-MM-DD` (four, two and two ASCII digits).
    pub fn parse(s: &str) -> Result<CivilDate, DateError> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(DateError::Format);
        }
        let year = digits(&b[0..4]).ok_or(DateError::Format)?;
        let month = digits(&b[5..7]).ok_or(DateError::Format)?;
        let day = digits(&b[8..10]).ok_or(DateError::Format)?;
        // Two-digit fields are at most 99, so the narrowing cannot fail.
        let month = u8::try_from(month).map_err(|_| DateError::Format)?;
        let day = u8::try_from(day).map_err(|_| DateError::Format)?;
        CivilDate::new(year, month, day)
    }
}

/// The value of a run of ASCII digits, or `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u16> {
    b.iter().try_fold(0u16, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u16::from(c - b'0'))
    })
}

impl fmt::Display for CivilDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for CivilDate {
    type Err = DateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CivilDate::parse(s)
    }
}

/// Whether `year` is a Gregorian leap year: divisible by 4, except
/// centuries, except centuries divisible by 400.
pub fn is_leap_year(year: u16) -> bool {
    // Written with remainders rather than `is_multiple_of` to stay within the
    // workspace's declared minimum Rust version (1.85).
    match (year % 4, year % 100, year % 400) {
        (_, _, 0) => true,
        (_, 0, _) => false,
        (0, _, _) => true,
        _ => false,
    }
}

/// The number of days in `month` (1–12) of `year`, or 0 for an invalid month.
pub fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn nineteen_hundred_is_not_a_leap_year() {
        assert!(!is_leap_year(1900));
        assert_eq!(days_in_month(1900, 2), 28);
    }

    #[test]
    fn two_thousand_is_a_leap_year() {
        assert!(is_leap_year(2000));
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn twenty_twenty_four_is_a_leap_year() {
        assert!(is_leap_year(2024));
        assert!(!is_leap_year(2023));
        assert!(!is_leap_year(2100));
    }

    #[test]
    fn months_have_the_usual_lengths_and_invalid_months_have_none() {
        let lengths: Vec<u8> = (1..=12).map(|m| days_in_month(2023, m)).collect();
        assert_eq!(lengths, [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]);
        assert_eq!(days_in_month(2023, 0), 0);
        assert_eq!(days_in_month(2023, 13), 0);
    }

    #[test]
    fn new_accepts_real_dates_and_rejects_impossible_ones() {
        assert!(CivilDate::new(2024, 2, 29).is_ok());
        assert_eq!(CivilDate::new(2023, 2, 29), Err(DateError::OutOfRange));
        assert_eq!(CivilDate::new(2023, 4, 31), Err(DateError::OutOfRange));
        assert_eq!(CivilDate::new(2023, 1, 0), Err(DateError::OutOfRange));
        assert_eq!(CivilDate::new(2023, 13, 1), Err(DateError::OutOfRange));
        assert_eq!(CivilDate::new(2023, 0, 1), Err(DateError::OutOfRange));
    }

    #[test]
    fn new_accepts_years_from_1800_to_2200_only() {
        assert!(CivilDate::new(1800, 1, 1).is_ok());
        assert!(CivilDate::new(2200, 12, 31).is_ok());
        assert_eq!(CivilDate::new(1799, 12, 31), Err(DateError::OutOfRange));
        assert_eq!(CivilDate::new(2201, 1, 1), Err(DateError::OutOfRange));
    }

    #[test]
    fn parse_reads_iso_dates_and_display_writes_them_back() {
        let d = CivilDate::parse("1990-07-05").unwrap();
        assert_eq!(
            d,
            CivilDate {
                year: 1990,
                month: 7,
                day: 5
            }
        );
        assert_eq!(d.to_string(), "1990-07-05");
        assert_eq!(
            "2000-02-29".parse::<CivilDate>().unwrap().to_string(),
            "2000-02-29"
        );
    }

    #[test]
    fn parse_rejects_anything_but_strict_yyyy_mm_dd() {
        for s in [
            "",
            "1990-7-05",
            "1990-07-5",
            "90-07-05",
            "1990/07/05",
            "19900705",
            " 1990-07-05",
            "1990-07-05 ",
            "199a-07-05",
            "1990-+7-05",
            "1990-07-0٥",
            "+990-07-05",
        ] {
            assert_eq!(CivilDate::parse(s), Err(DateError::Format), "{s:?}");
        }
    }

    #[test]
    fn parse_rejects_well_formed_but_impossible_dates() {
        for s in [
            "2023-02-29",
            "2024-04-31",
            "2024-00-10",
            "2024-13-10",
            "2024-01-00",
            "1799-12-31",
        ] {
            assert_eq!(CivilDate::parse(s), Err(DateError::OutOfRange), "{s:?}");
        }
    }

    #[test]
    fn dates_order_chronologically() {
        let a = CivilDate::new(1999, 12, 31).unwrap();
        let b = CivilDate::new(2000, 1, 1).unwrap();
        let c = CivilDate::new(2000, 1, 2).unwrap();
        assert!(a < b && b < c);
    }

    #[test]
    fn date_errors_read_as_lowercase_messages() {
        assert_eq!(DateError::Format.to_string(), "expected YYYY-MM-DD");
        assert_eq!(
            DateError::OutOfRange.to_string(),
            "not a real calendar date"
        );
    }
}
