//! Unit tests for [`crate::nik`].

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

/// Jawa Timur (35), regency 27, district 01, born 5 July 1990, serial 0001.
const MAN: &str = "3527010507900001";
/// The same, but a woman (day 05 + 40 = 45).
const WOMAN: &str = "3527014507900001";

fn date(year: u16, month: u8, day: u8) -> CivilDate {
    CivilDate::new(year, month, day).unwrap()
}

#[test]
fn a_well_formed_nik_exposes_its_parts() {
    let nik = Nik::parse(MAN).unwrap();
    assert_eq!(nik.as_str(), MAN);
    assert_eq!(nik.province_code(), 35);
    assert_eq!(nik.regency_code(), 27);
    assert_eq!(nik.district_code(), 1);
    assert_eq!(nik.birth_day(), 5);
    assert_eq!(nik.birth_month(), 7);
    assert_eq!(nik.birth_year_2(), 90);
    assert_eq!(nik.serial(), 1);
    assert_eq!(nik.encoded_sex(), Sex::Male);
}

#[test]
fn women_have_forty_added_to_the_birth_day() {
    let nik = Nik::parse(WOMAN).unwrap();
    assert_eq!(nik.encoded_sex(), Sex::Female);
    assert_eq!(nik.birth_day(), 5);
    assert_eq!(Nik::parse("3527017107900001").unwrap().birth_day(), 31);
    assert_eq!(Nik::parse("3527014101900001").unwrap().birth_day(), 1);
}

#[test]
fn day_fields_between_the_male_and_female_ranges_are_rejected() {
    for day in ["00", "32", "39", "40", "72", "99"] {
        let s = format!("352701{day}07900001");
        assert_eq!(
            Nik::parse(&s),
            Err(NikError::ImpossibleBirthDate),
            "day {day}"
        );
    }
}

#[test]
fn a_nik_of_the_wrong_length_is_rejected_with_its_length() {
    assert_eq!(Nik::parse(""), Err(NikError::WrongLength { len: 0 }));
    assert_eq!(
        Nik::parse("352701050790000"),
        Err(NikError::WrongLength { len: 15 })
    );
    assert_eq!(
        Nik::parse("35270105079000011"),
        Err(NikError::WrongLength { len: 17 })
    );
}

#[test]
fn length_counts_characters_not_bytes() {
    // 16 characters, but one of them is a multi-byte Arabic-Indic digit.
    assert_eq!(Nik::parse("352701050790000١"), Err(NikError::NotDigits));
    assert_eq!(
        Nik::parse("35270105079000é"),
        Err(NikError::WrongLength { len: 15 })
    );
}

#[test]
fn anything_but_ascii_digits_is_rejected() {
    for s in [
        "35270105079O0001",
        "3527-10507900001",
        " 527010507900001",
        "+527010507900001",
    ] {
        assert_eq!(Nik::parse(s), Err(NikError::NotDigits), "{s:?}");
    }
}

#[test]
fn an_unknown_province_is_rejected_with_its_code() {
    for code in [0u8, 10, 20, 37, 99] {
        let s = format!("{code:02}27010507900001");
        assert_eq!(Nik::parse(&s), Err(NikError::UnknownProvince { code }));
    }
}

#[test]
fn regency_code_zero_is_rejected() {
    assert_eq!(Nik::parse("3500010507900001"), Err(NikError::ZeroRegency));
}

#[test]
fn district_code_zero_is_rejected() {
    assert_eq!(Nik::parse("3527000507900001"), Err(NikError::ZeroDistrict));
}

#[test]
fn serial_zero_is_rejected() {
    assert_eq!(Nik::parse("3527010507900000"), Err(NikError::ZeroSerial));
    assert_eq!(Nik::parse("3527010507909999").unwrap().serial(), 9999);
}

#[test]
fn impossible_months_and_days_are_rejected() {
    for (day_month, why) in [
        ("0100", "month 00"),
        ("0113", "month 13"),
        ("3104", "31 april"),
        ("7104", "31 april, female"),
        ("3002", "30 february"),
        ("3111", "31 november"),
    ] {
        let s = format!("352701{day_month}900001");
        assert_eq!(Nik::parse(&s), Err(NikError::ImpossibleBirthDate), "{why}");
    }
}

#[test]
fn twenty_ninth_of_february_in_year_00_is_valid_because_2000_is_leap() {
    assert!(Nik::parse("3527012902000001").is_ok());
    assert!(Nik::parse("3527016902000001").is_ok());
}

#[test]
fn twenty_ninth_of_february_in_year_01_is_invalid() {
    assert_eq!(
        Nik::parse("3527012902010001"),
        Err(NikError::ImpossibleBirthDate)
    );
    assert_eq!(
        Nik::parse("3527016902010001"),
        Err(NikError::ImpossibleBirthDate)
    );
}

#[test]
fn twenty_ninth_of_february_is_valid_in_years_divisible_by_four() {
    assert!(Nik::parse("3527012902240001").is_ok());
    assert!(Nik::parse("3527012902960001").is_ok());
    assert_eq!(
        Nik::parse("3527012902230001"),
        Err(NikError::ImpossibleBirthDate)
    );
}

#[test]
fn masking_keeps_the_first_four_and_last_two_digits() {
    let nik = Nik::parse("3527014507901201").unwrap();
    assert_eq!(nik.masked(), "3527**********01");
}

#[test]
fn error_messages_never_echo_the_nik() {
    let bad = [
        "3527014507900000",
        "9927014507900001",
        "3527017707900001",
        "35270145079000011",
    ];
    for s in bad {
        let message = Nik::parse(s).unwrap_err().to_string();
        assert!(!message.contains(&s[..12]), "{message}");
        assert_eq!(message, message.to_lowercase());
    }
    assert_eq!(
        NikError::WrongLength { len: 3 }.to_string(),
        "a nik has 16 digits, got 3 characters"
    );
    assert_eq!(
        NikError::NotDigits.to_string(),
        "a nik has only the digits 0-9"
    );
    assert_eq!(
        NikError::ImpossibleBirthDate.to_string(),
        "the birth date encoded in the nik is not a real date"
    );
}

#[test]
fn declared_data_that_matches_gives_no_warnings() {
    let nik = Nik::parse(WOMAN).unwrap();
    assert!(nik.check_declared(date(1990, 7, 5), Sex::Female).is_empty());
    // Only the two-digit year is encoded, so another century still agrees.
    assert!(nik.check_declared(date(1890, 7, 5), Sex::Female).is_empty());
}

#[test]
fn a_different_declared_birth_date_gives_a_date_warning() {
    let nik = Nik::parse(MAN).unwrap();
    for declared in [date(1990, 7, 6), date(1990, 8, 5), date(1991, 7, 5)] {
        assert_eq!(
            nik.check_declared(declared, Sex::Male),
            [NikWarning::BirthDateMismatch]
        );
    }
}

#[test]
fn a_different_declared_sex_gives_a_sex_warning() {
    let nik = Nik::parse(MAN).unwrap();
    assert_eq!(
        nik.check_declared(date(1990, 7, 5), Sex::Female),
        [NikWarning::SexMismatch]
    );
    let nik = Nik::parse(WOMAN).unwrap();
    assert_eq!(
        nik.check_declared(date(1990, 7, 5), Sex::Male),
        [NikWarning::SexMismatch]
    );
}

#[test]
fn a_different_date_and_sex_give_both_warnings() {
    let nik = Nik::parse(WOMAN).unwrap();
    assert_eq!(
        nik.check_declared(date(1990, 7, 45 - 40 + 1), Sex::Male),
        [NikWarning::BirthDateMismatch, NikWarning::SexMismatch]
    );
}

#[test]
fn warnings_have_stable_codes_and_lowercase_messages() {
    assert_eq!(
        NikWarning::BirthDateMismatch.code(),
        "NIK_BIRTH_DATE_MISMATCH"
    );
    assert_eq!(NikWarning::SexMismatch.code(), "NIK_SEX_MISMATCH");
    assert_eq!(
        NikWarning::BirthDateMismatch.to_string(),
        "nik birth date disagrees with the declared birth date"
    );
    assert_eq!(
        NikWarning::SexMismatch.to_string(),
        "nik sex disagrees with the declared sex"
    );
}

#[test]
fn from_str_and_display_round_trip() {
    let nik: Nik = WOMAN.parse().unwrap();
    assert_eq!(nik.to_string(), WOMAN);
    assert_eq!(nik.to_string().parse::<Nik>(), Ok(nik));
    assert_eq!("123".parse::<Nik>(), Err(NikError::WrongLength { len: 3 }));
}

#[test]
fn compose_builds_the_nik_parse_would_accept() {
    let nik = compose(35, 27, 1, date(1990, 7, 5), Sex::Female, 1).unwrap();
    assert_eq!(nik.as_str(), WOMAN);
    let nik = compose(11, 1, 1, date(2000, 2, 29), Sex::Male, 9999).unwrap();
    assert_eq!(nik.as_str(), "1101012902009999");
}

#[test]
fn compose_rejects_what_parse_would_reject() {
    let d = date(1990, 7, 5);
    assert_eq!(
        compose(10, 27, 1, d, Sex::Male, 1),
        Err(NikError::UnknownProvince { code: 10 })
    );
    assert_eq!(
        compose(35, 0, 1, d, Sex::Male, 1),
        Err(NikError::ZeroRegency)
    );
    assert_eq!(
        compose(35, 27, 0, d, Sex::Male, 1),
        Err(NikError::ZeroDistrict)
    );
    assert_eq!(
        compose(35, 27, 1, d, Sex::Male, 0),
        Err(NikError::ZeroSerial)
    );
    assert_eq!(
        compose(35, 27, 1, d, Sex::Male, 10000),
        Err(NikError::WrongLength { len: 17 })
    );
    assert_eq!(
        compose(35, 100, 1, d, Sex::Male, 1),
        Err(NikError::WrongLength { len: 17 })
    );
}

#[test]
fn compose_rejects_a_hand_built_impossible_date() {
    let bad = CivilDate {
        year: 2023,
        month: 2,
        day: 29,
    };
    assert_eq!(
        compose(35, 27, 1, bad, Sex::Male, 1),
        Err(NikError::ImpossibleBirthDate)
    );
    let bad = CivilDate {
        year: 2023,
        month: 1,
        day: 45,
    };
    assert_eq!(
        compose(35, 27, 1, bad, Sex::Male, 1),
        Err(NikError::ImpossibleBirthDate)
    );
}

#[test]
fn niks_order_by_their_digits() {
    let a = Nik::parse("1101010101000001").unwrap();
    let b = Nik::parse("3527010507900001").unwrap();
    assert!(a < b);
}
