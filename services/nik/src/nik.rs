//! The NIK itself: parsing, field access, masking and declared-data checks.

use std::fmt;

use crate::date::{CivilDate, days_in_month};
use crate::mask::Masked;
use crate::province::province_name;

/// The number of digits in a NIK.
const NIK_LEN: usize = 16;

/// The sex of a resident, as declared or as encoded in a NIK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    Male,
    Female,
}

/// Why a string is not a valid NIK.
///
/// Messages never repeat the NIK itself: it is personal data.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum NikError {
    #[error("a nik has 16 digits, got {len} characters")]
    WrongLength { len: usize },
    #[error("a nik has only the digits 0-9")]
    NotDigits,
    #[error("unknown province code {code:02} in the nik")]
    UnknownProvince { code: u8 },
    #[error("the regency code in a nik cannot be 00")]
    ZeroRegency,
    #[error("the district code in a nik cannot be 00")]
    ZeroDistrict,
    #[error("the birth date encoded in the nik is not a real date")]
    ImpossibleBirthDate,
    #[error("the serial number in a nik cannot be 0000")]
    ZeroSerial,
}

/// A disagreement between a NIK and the resident's declared data.
///
/// NIKs are never reissued, so these are warnings, never rejections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NikWarning {
    /// The day, month or two-digit year encoded in the NIK differs from the
    /// declared birth date.
    BirthDateMismatch,
    /// The sex encoded in the NIK differs from the declared sex.
    SexMismatch,
}

impl NikWarning {
    /// A stable machine-readable code for the warning.
    pub fn code(&self) -> &'static str {
        match self {
            NikWarning::BirthDateMismatch => "NIK_BIRTH_DATE_MISMATCH",
            NikWarning::SexMismatch => "NIK_SEX_MISMATCH",
        }
    }
}

impl fmt::Display for NikWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NikWarning::BirthDateMismatch => {
                "nik birth date disagrees with the declared birth date"
            }
            NikWarning::SexMismatch => "nik sex disagrees with the declared sex",
        })
    }
}

/// A valid 16-digit NIK. The only way to get one is [`Nik::parse`] (or
/// [`compose`]), so every `Nik` passed all the validity rules. `Debug` is
/// masked, so a `?nik` in a log never shows the whole number; `Display` and
/// [`Nik::as_str`] give the digits, for keys and answers, not for logs.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nik(String);

impl Nik {
    /// Parses and validates a NIK. Checks, in order: length (16 characters),
    /// ASCII digits only, known province, non-zero regency and district, a
    /// birth date that is real in 19YY or 20YY, non-zero serial.
    pub fn parse(s: &str) -> Result<Nik, NikError> {
        let len = s.chars().count();
        if len != NIK_LEN {
            return Err(NikError::WrongLength { len });
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NikError::NotDigits);
        }
        let nik = Nik(s.to_owned());
        let province = nik.province_code();
        if province_name(province).is_none() {
            return Err(NikError::UnknownProvince { code: province });
        }
        if nik.regency_code() == 0 {
            return Err(NikError::ZeroRegency);
        }
        if nik.district_code() == 0 {
            return Err(NikError::ZeroDistrict);
        }
        if !encoded_date_is_real(nik.day_field(), nik.birth_month(), nik.birth_year_2()) {
            return Err(NikError::ImpossibleBirthDate);
        }
        if nik.serial() == 0 {
            return Err(NikError::ZeroSerial);
        }
        Ok(nik)
    }

    /// The 16 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The province code (digits 1–2).
    pub fn province_code(&self) -> u8 {
        self.two_digits(0)
    }

    /// The regency (*kabupaten*/*kota*) code within the province (digits 3–4).
    pub fn regency_code(&self) -> u8 {
        self.two_digits(2)
    }

    /// The district (*kecamatan*) code within the regency (digits 5–6).
    pub fn district_code(&self) -> u8 {
        self.two_digits(4)
    }

    /// The sex encoded in the NIK: female when the day field exceeds 40.
    pub fn encoded_sex(&self) -> Sex {
        if self.day_field() > 40 {
            Sex::Female
        } else {
            Sex::Male
        }
    }

    /// The day of birth, with the +40 for women removed (1–31).
    pub fn birth_day(&self) -> u8 {
        let day = self.day_field();
        if day > 40 { day - 40 } else { day }
    }

    /// The month of birth (1–12).
    pub fn birth_month(&self) -> u8 {
        self.two_digits(8)
    }

    /// The last two digits of the year of birth (0–99).
    pub fn birth_year_2(&self) -> u8 {
        self.two_digits(10)
    }

    /// The serial number (1–9999).
    pub fn serial(&self) -> u16 {
        u16::from(self.two_digits(12)) * 100 + u16::from(self.two_digits(14))
    }

    /// The NIK safe for logs: the first 4 and last 2 digits kept, the rest
    /// replaced by `*`, e.g. `3527**********01`. Log this, never the NIK.
    pub fn masked(&self) -> Masked<'_> {
        Masked::new(&self.0)
    }

    /// Warnings for a declared birth date and sex that disagree with the NIK.
    /// Empty when they agree. The birth date agrees when day, month and the
    /// year modulo 100 match.
    pub fn check_declared(&self, birth_date: CivilDate, sex: Sex) -> Vec<NikWarning> {
        let mut warnings = Vec::new();
        let date_agrees = birth_date.day == self.birth_day()
            && birth_date.month == self.birth_month()
            && birth_date.year % 100 == u16::from(self.birth_year_2());
        if !date_agrees {
            warnings.push(NikWarning::BirthDateMismatch);
        }
        if sex != self.encoded_sex() {
            warnings.push(NikWarning::SexMismatch);
        }
        warnings
    }

    /// The raw day field (digits 7–8), 41–71 for women.
    fn day_field(&self) -> u8 {
        self.two_digits(6)
    }

    /// The value of the two digits starting at byte `at`. Every `Nik` holds
    /// exactly 16 ASCII digits, so this is always in 0–99.
    fn two_digits(&self, at: usize) -> u8 {
        let b = self.0.as_bytes();
        match (b.get(at), b.get(at + 1)) {
            (Some(&hi), Some(&lo)) => (hi - b'0') * 10 + (lo - b'0'),
            _ => 0,
        }
    }
}

/// Whether the raw day field, month and two-digit year form a real date in
/// 19YY or in 20YY.
fn encoded_date_is_real(day_field: u8, month: u8, yy: u8) -> bool {
    let day = match day_field {
        1..=31 => day_field,
        41..=71 => day_field - 40,
        _ => return false,
    };
    let yy = u16::from(yy);
    [1900 + yy, 2000 + yy]
        .into_iter()
        .any(|year| day <= days_in_month(year, month))
}

impl fmt::Debug for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nik({})", self.masked())
    }
}

impl fmt::Display for Nik {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Nik {
    type Err = NikError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Nik::parse(s)
    }
}

impl AsRef<str> for Nik {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Builds a NIK from its parts; errors as [`Nik::parse`] would on the
/// resulting digits. A part too large for its field (a code above 99 or a
/// serial above 9999) gives [`NikError::WrongLength`], as the digits would
/// not fit in 16 characters; a `birth` that is not a real calendar date
/// gives [`NikError::ImpossibleBirthDate`].
pub fn compose(
    province: u8,
    regency: u8,
    district: u8,
    birth: CivilDate,
    sex: Sex,
    serial: u16,
) -> Result<Nik, NikError> {
    // The fields of `CivilDate` are public, so `birth` may not be a real date.
    if birth.day == 0 || birth.day > days_in_month(birth.year, birth.month) {
        return Err(NikError::ImpossibleBirthDate);
    }
    let day_field = match sex {
        Sex::Male => birth.day,
        Sex::Female => birth.day + 40,
    };
    let digits = format!(
        "{province:02}{regency:02}{district:02}{day_field:02}{:02}{:02}{serial:04}",
        birth.month,
        birth.year % 100,
    );
    Nik::parse(&digits)
}

#[cfg(test)]
mod tests;
