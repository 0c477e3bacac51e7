//! Masked views of NIKs for logs and error text: a NIK is personal data, so
//! only its first 4 digits (province and regency, which say where, not who)
//! and its last 2 are ever shown, e.g. `3527**********01`.
//!
//! [`Nik::masked`](crate::Nik::masked) masks a parsed NIK; [`mask_raw`] masks
//! any string that might be one (a rejected NIK field, a key fragment), so
//! raw input is never logged as is.

use std::fmt;

/// Digits kept at the start of a masked NIK.
const KEEP_HEAD: usize = 4;
/// Digits kept at the end of a masked NIK.
const KEEP_TAIL: usize = 2;
/// Longest digit run still shown in the NIK shape; longer input says only
/// its length.
const MAX_SHAPED: usize = 20;

/// A NIK (or NIK-like input) that displays masked. Borrows the raw text and
/// never exposes it: there is no accessor, and `Debug` masks too.
#[derive(Clone, Copy)]
pub struct Masked<'a>(&'a str);

/// Masks any raw string that might be a NIK. A run of 10 to 20 ASCII digits
/// keeps its first 4 and last 2 digits with `*` between, so a mistyped NIK is
/// still recognisable in a log; anything else shows only its length, as
/// `<redacted N chars>` — it may be a name or an address typed in the wrong
/// field.
pub fn mask_raw(raw: &str) -> Masked<'_> {
    Masked(raw)
}

impl<'a> Masked<'a> {
    pub(crate) fn new(raw: &'a str) -> Self {
        Masked(raw)
    }
}

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let raw = self.0;
        let len = raw.len();
        let shaped = (KEEP_HEAD + KEEP_TAIL + 4..=MAX_SHAPED).contains(&len)
            && raw.bytes().all(|b| b.is_ascii_digit());
        if !shaped {
            return write!(f, "<redacted {} chars>", raw.chars().count());
        }
        // All ASCII digits, so byte slicing is on character boundaries.
        let head = raw.get(..KEEP_HEAD).unwrap_or_default();
        let tail = raw.get(len - KEEP_TAIL..).unwrap_or_default();
        f.write_str(head)?;
        for _ in 0..len - KEEP_HEAD - KEEP_TAIL {
            f.write_str("*")?;
        }
        f.write_str(tail)
    }
}

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl PartialEq<str> for Masked<'_> {
    fn eq(&self, other: &str) -> bool {
        shows(self, other)
    }
}

impl PartialEq<&str> for Masked<'_> {
    fn eq(&self, other: &&str) -> bool {
        shows(self, other)
    }
}

/// Whether `masked` displays exactly as `expected`, without allocating.
fn shows(masked: &Masked<'_>, expected: &str) -> bool {
    /// Consumes `rest` as the text is written; fails at the first difference.
    struct Compare<'e> {
        rest: &'e str,
    }
    impl fmt::Write for Compare<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.rest = self.rest.strip_prefix(s).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let mut compare = Compare { rest: expected };
    fmt::write(&mut compare, format_args!("{masked}")).is_ok() && compare.rest.is_empty()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Nik;
    use proptest::prelude::*;

    #[test]
    fn a_nik_shows_only_its_first_four_and_last_two_digits() {
        let nik = Nik::parse("3527014507901201").unwrap();
        assert_eq!(nik.masked().to_string(), "3527**********01");
        assert_eq!(format!("{:?}", nik.masked()), "\"3527**********01\"");
    }

    #[test]
    fn a_raw_nik_like_string_is_masked_in_the_nik_shape() {
        assert_eq!(mask_raw("3527014507901201"), "3527**********01");
        assert_eq!(mask_raw("352701450790120"), "3527*********20");
        assert_eq!(mask_raw("3527014507"), "3527****07");
    }

    #[test]
    fn anything_else_shows_only_its_length() {
        assert_eq!(mask_raw(""), "<redacted 0 chars>");
        assert_eq!(mask_raw("35270"), "<redacted 5 chars>");
        assert_eq!(mask_raw("Siti Rahayu"), "<redacted 11 chars>");
        assert_eq!(mask_raw("35270145079A0001"), "<redacted 16 chars>");
        assert_eq!(mask_raw("Ñoño"), "<redacted 4 chars>");
        assert_eq!(mask_raw("352701450790120135270145"), "<redacted 24 chars>");
    }

    proptest! {
        /// Whatever the input, the masked text never holds a run of more than
        /// 4 of its digits, nor any of its letters.
        #[test]
        fn masked_text_never_reveals_the_middle(raw in "\\PC{0,40}|[0-9]{0,24}") {
            let shown = mask_raw(&raw).to_string();
            let longest_digit_run = shown
                .split(|c: char| !c.is_ascii_digit())
                .map(str::len)
                .max()
                .unwrap_or(0);
            prop_assert!(longest_digit_run <= 4 || shown.starts_with("<redacted"), "{shown}");
            if raw.chars().count() > 0 && !raw.bytes().all(|b| b.is_ascii_digit()) {
                prop_assert!(shown.starts_with("<redacted"), "{shown}");
            }
        }
    }
}
