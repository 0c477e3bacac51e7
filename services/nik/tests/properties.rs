//! Property tests for the public API of `ektp_nik`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use ektp_nik::{CivilDate, Nik, NikError, PROVINCES, Sex, compose, days_in_month};
use proptest::prelude::*;

fn any_civil_date() -> impl Strategy<Value = CivilDate> {
    (1800u16..=2200, 1u8..=12)
        .prop_flat_map(|(y, m)| (Just(y), Just(m), 1..=days_in_month(y, m)))
        .prop_map(|(y, m, d)| CivilDate::new(y, m, d).unwrap())
}

fn any_sex() -> impl Strategy<Value = Sex> {
    prop_oneof![Just(Sex::Male), Just(Sex::Female)]
}

fn any_province() -> impl Strategy<Value = u8> {
    proptest::sample::select(PROVINCES.iter().map(|&(code, _)| code).collect::<Vec<_>>())
}

/// Valid parts of a NIK: province, regency, district, birth date, sex, serial.
fn valid_parts() -> impl Strategy<Value = (u8, u8, u8, CivilDate, Sex, u16)> {
    (
        any_province(),
        1u8..=99,
        1u8..=99,
        any_civil_date(),
        any_sex(),
        1u16..=9999,
    )
}

fn any_valid_nik() -> impl Strategy<Value = Nik> {
    valid_parts()
        .prop_map(|(p, r, d, birth, sex, serial)| compose(p, r, d, birth, sex, serial).unwrap())
}

proptest! {
    #[test]
    fn composing_valid_parts_parses_back_to_the_same_parts(
        (province, regency, district, birth, sex, serial) in valid_parts()
    ) {
        let nik = compose(province, regency, district, birth, sex, serial).unwrap();
        let parsed = Nik::parse(nik.as_str()).unwrap();
        prop_assert_eq!(&parsed, &nik);
        prop_assert_eq!(parsed.province_code(), province);
        prop_assert_eq!(parsed.regency_code(), regency);
        prop_assert_eq!(parsed.district_code(), district);
        prop_assert_eq!(parsed.birth_day(), birth.day);
        prop_assert_eq!(parsed.birth_month(), birth.month);
        prop_assert_eq!(u16::from(parsed.birth_year_2()), birth.year % 100);
        prop_assert_eq!(parsed.encoded_sex(), sex);
        prop_assert_eq!(parsed.serial(), serial);
    }

    #[test]
    fn parsing_any_string_never_panics_and_accepts_only_sixteen_digits(s in "\\PC*") {
        if let Ok(nik) = Nik::parse(&s) {
            prop_assert_eq!(nik.as_str(), s.as_str());
            prop_assert_eq!(s.len(), 16);
            prop_assert!(s.bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn parsing_any_sixteen_digits_never_panics_and_keeps_the_digits(s in "[0-9]{16}") {
        match Nik::parse(&s) {
            Ok(nik) => {
                prop_assert_eq!(nik.as_str(), s.as_str());
                prop_assert_eq!(nik.to_string(), s);
            }
            Err(e) => prop_assert!(
                !matches!(e, NikError::WrongLength { .. } | NikError::NotDigits),
                "{e:?}"
            ),
        }
    }

    #[test]
    fn a_string_that_is_not_sixteen_ascii_digits_is_rejected(
        s in "[0-9]{0,15}|[0-9]{17,24}|[0-9]{0,8}[^0-9][0-9]{0,8}"
    ) {
        prop_assert!(Nik::parse(&s).is_err());
    }

    #[test]
    fn a_valid_nik_agrees_with_its_own_encoded_date_and_sex(
        nik in any_valid_nik(),
        twentieth_century_first in any::<bool>()
    ) {
        let yy = u16::from(nik.birth_year_2());
        let centuries = if twentieth_century_first { [1900, 2000] } else { [2000, 1900] };
        let own_date = centuries
            .into_iter()
            .find_map(|c| CivilDate::new(c + yy, nik.birth_month(), nik.birth_day()).ok())
            .unwrap();
        prop_assert!(nik.check_declared(own_date, nik.encoded_sex()).is_empty());
    }

    #[test]
    fn a_valid_nik_with_serial_0000_is_rejected(nik in any_valid_nik()) {
        let zeroed = format!("{}0000", &nik.as_str()[..12]);
        prop_assert_eq!(Nik::parse(&zeroed), Err(NikError::ZeroSerial));
    }

    #[test]
    fn a_displayed_date_parses_back_to_itself(d in any_civil_date()) {
        prop_assert_eq!(CivilDate::parse(&d.to_string()), Ok(d));
    }
}
