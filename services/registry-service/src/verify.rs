//! Identity verification: does what someone claims about a NIK match the
//! record? Only claimed (non-empty) fields are compared, and the answer is
//! match / no match per field — never a value from the record.

use ektp_proto::v1::{
    Address, AddressMatch, FieldMatch, Resident, VerifyResidentRequest, VerifyResidentResponse,
};

/// Text as compared: lowercased (Unicode-aware), anything not alphanumeric
/// read as a space, runs of spaces collapsed, trimmed.
///
/// `"SITI  Rahmawati,"` and `"siti rahmawati"` normalise alike, as do
/// `"Jl. Trunojoyo No.5"` and `"jl trunojoyo no 5"`.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars() {
        if c.is_alphanumeric() {
            if gap && !out.is_empty() {
                out.push(' ');
            }
            gap = false;
            out.extend(c.to_lowercase());
        } else {
            gap = true;
        }
    }
    out
}

/// Compares a claim with the record for its NIK (`None`: the NIK is not
/// recorded). The response echoes the claimed NIK and nothing else given.
pub fn check(resident: Option<&Resident>, claim: &VerifyResidentRequest) -> VerifyResidentResponse {
    let Some(resident) = resident else {
        return not_checked(&claim.nik);
    };
    let recorded = resident.address.clone().unwrap_or_default();
    let claimed = claim.address.clone().unwrap_or_default();
    VerifyResidentResponse {
        nik: claim.nik.clone(),
        found: true,
        full_name: text(&claim.full_name, &resident.full_name) as i32,
        birth_date: date(&claim.birth_date, &resident.birth_date) as i32,
        birth_place: text(&claim.birth_place, &resident.birth_place) as i32,
        address: Some(address(&claimed, &recorded)),
        has_active_card: !resident.active_card_serial.is_empty(),
        error: String::new(),
    }
}

/// The answer when nothing was compared: the NIK as given, not found, every
/// field NOT_CLAIMED.
pub fn not_checked(nik: &str) -> VerifyResidentResponse {
    let none = FieldMatch::NotClaimed as i32;
    VerifyResidentResponse {
        nik: nik.to_owned(),
        found: false,
        full_name: none,
        birth_date: none,
        birth_place: none,
        address: Some(AddressMatch {
            street: none,
            rt: none,
            rw: none,
            village: none,
            district: none,
            regency: none,
            province: none,
        }),
        has_active_card: false,
        error: String::new(),
    }
}

fn address(claimed: &Address, recorded: &Address) -> AddressMatch {
    AddressMatch {
        street: text(&claimed.street, &recorded.street) as i32,
        rt: neighbourhood(&claimed.rt, &recorded.rt) as i32,
        rw: neighbourhood(&claimed.rw, &recorded.rw) as i32,
        village: text(&claimed.village, &recorded.village) as i32,
        district: text(&claimed.district, &recorded.district) as i32,
        regency: text(&claimed.regency, &recorded.regency) as i32,
        province: text(&claimed.province, &recorded.province) as i32,
    }
}

/// Whether `claimed` was claimed at all (blank counts as not claimed).
pub(crate) fn is_claimed(claimed: &str) -> bool {
    !claimed.trim().is_empty()
}

fn outcome(claimed: &str, matches: impl FnOnce() -> bool) -> FieldMatch {
    if !is_claimed(claimed) {
        FieldMatch::NotClaimed
    } else if matches() {
        FieldMatch::Match
    } else {
        FieldMatch::NoMatch
    }
}

/// Free text, compared after [`normalise`].
fn text(claimed: &str, recorded: &str) -> FieldMatch {
    outcome(claimed, || normalise(claimed) == normalise(recorded))
}

/// A `YYYY-MM-DD` date, compared exactly after trimming.
fn date(claimed: &str, recorded: &str) -> FieldMatch {
    outcome(claimed, || claimed.trim() == recorded.trim())
}

/// RT / RW: digits compared as numbers, so `5` matches `005`; anything but
/// digits never matches.
fn neighbourhood(claimed: &str, recorded: &str) -> FieldMatch {
    outcome(claimed, || match (number(claimed), number(recorded)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    })
}

/// The digits of a number without leading zeros (any length, no overflow).
pub(crate) fn number(text: &str) -> Option<&str> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.trim_start_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resident() -> Resident {
        Resident {
            nik: "3527014107900001".into(),
            full_name: "Siti Rahmawati".into(),
            birth_place: "Sampang".into(),
            birth_date: "1990-07-01".into(),
            address: Some(Address {
                street: "Jl. Trunojoyo No. 5".into(),
                rt: "005".into(),
                rw: "012".into(),
                village: "Dharma Camplong".into(),
                district: "Camplong".into(),
                regency: "Sampang".into(),
                province: "Jawa Timur".into(),
            }),
            ..Resident::default()
        }
    }

    fn full_claim() -> VerifyResidentRequest {
        VerifyResidentRequest {
            nik: "3527014107900001".into(),
            full_name: "SITI  Rahmawati,".into(),
            birth_date: " 1990-07-01 ".into(),
            birth_place: "sampang".into(),
            address: Some(Address {
                street: "jl trunojoyo no 5".into(),
                rt: "5".into(),
                rw: "12".into(),
                village: "DHARMA-CAMPLONG".into(),
                district: "camplong".into(),
                regency: "Sampang.".into(),
                province: "jawa  timur".into(),
            }),
            linearizable: false,
        }
    }

    fn nik_only() -> VerifyResidentRequest {
        VerifyResidentRequest {
            nik: "3527014107900001".into(),
            ..VerifyResidentRequest::default()
        }
    }

    fn addr(response: &VerifyResidentResponse) -> AddressMatch {
        response.address.unwrap_or_default()
    }

    #[test]
    fn normalising_ignores_case_spacing_and_punctuation() {
        assert_eq!(normalise("SITI  Rahmawati,"), "siti rahmawati");
        assert_eq!(normalise("siti rahmawati"), "siti rahmawati");
        assert_eq!(normalise("Jl. Trunojoyo No.5"), "jl trunojoyo no 5");
        assert_eq!(normalise("  \t Dharma-Camplong \n"), "dharma camplong");
        assert_eq!(normalise("...,"), "");
        assert_eq!(normalise(""), "");
    }

    #[test]
    fn normalising_lowercases_beyond_ascii() {
        assert_eq!(normalise("ÉLODIE Ömer"), "élodie ömer");
        assert_eq!(normalise("ΣΟΦΙΑ"), "σοφια");
        assert_eq!(normalise("Đặng  Văn"), "đặng văn");
    }

    #[test]
    fn every_claimed_field_that_agrees_matches() {
        let r = resident();
        let response = check(Some(&r), &full_claim());
        assert!(response.found);
        assert_eq!(response.nik, "3527014107900001");
        assert_eq!(response.full_name(), FieldMatch::Match);
        assert_eq!(response.birth_date(), FieldMatch::Match);
        assert_eq!(response.birth_place(), FieldMatch::Match);
        let a = addr(&response);
        for part in [
            a.street(),
            a.rt(),
            a.rw(),
            a.village(),
            a.district(),
            a.regency(),
            a.province(),
        ] {
            assert_eq!(part, FieldMatch::Match);
        }
        assert!(!response.has_active_card);
        assert!(response.error.is_empty());
    }

    #[test]
    fn a_different_name_does_not_match() {
        let r = resident();
        let claim = VerifyResidentRequest {
            full_name: "Siti Rahmawat".into(),
            ..nik_only()
        };
        assert_eq!(check(Some(&r), &claim).full_name(), FieldMatch::NoMatch);
    }

    #[test]
    fn a_different_birth_date_or_place_does_not_match() {
        let r = resident();
        let claim = VerifyResidentRequest {
            birth_date: "1990-07-02".into(),
            birth_place: "Bangkalan".into(),
            ..nik_only()
        };
        let response = check(Some(&r), &claim);
        assert_eq!(response.birth_date(), FieldMatch::NoMatch);
        assert_eq!(response.birth_place(), FieldMatch::NoMatch);
    }

    #[test]
    fn birth_dates_are_compared_exactly_not_normalised() {
        let r = resident();
        let claim = VerifyResidentRequest {
            birth_date: "1990/07/01".into(),
            ..nik_only()
        };
        assert_eq!(check(Some(&r), &claim).birth_date(), FieldMatch::NoMatch);
    }

    #[test]
    fn each_address_part_is_judged_on_its_own() {
        let r = resident();
        let claim = VerifyResidentRequest {
            address: Some(Address {
                street: "Jl. Trunojoyo No. 6".into(),
                village: "dharma camplong".into(),
                province: "Jawa Barat".into(),
                ..Address::default()
            }),
            ..nik_only()
        };
        let a = addr(&check(Some(&r), &claim));
        assert_eq!(a.street(), FieldMatch::NoMatch);
        assert_eq!(a.village(), FieldMatch::Match);
        assert_eq!(a.province(), FieldMatch::NoMatch);
        assert_eq!(a.rt(), FieldMatch::NotClaimed);
        assert_eq!(a.rw(), FieldMatch::NotClaimed);
        assert_eq!(a.district(), FieldMatch::NotClaimed);
        assert_eq!(a.regency(), FieldMatch::NotClaimed);
    }

    #[test]
    fn rt_and_rw_are_compared_as_numbers() {
        let r = resident();
        let claim = |rt: &str, rw: &str| VerifyResidentRequest {
            address: Some(Address {
                rt: rt.into(),
                rw: rw.into(),
                ..Address::default()
            }),
            ..nik_only()
        };
        let a = addr(&check(Some(&r), &claim("5", "012")));
        assert_eq!((a.rt(), a.rw()), (FieldMatch::Match, FieldMatch::Match));
        let a = addr(&check(Some(&r), &claim("005", " 12 ")));
        assert_eq!((a.rt(), a.rw()), (FieldMatch::Match, FieldMatch::Match));
        let a = addr(&check(Some(&r), &claim("50", "0012")));
        assert_eq!((a.rt(), a.rw()), (FieldMatch::NoMatch, FieldMatch::Match));
        let a = addr(&check(Some(&r), &claim("RT 5", "1x")));
        assert_eq!((a.rt(), a.rw()), (FieldMatch::NoMatch, FieldMatch::NoMatch));
    }

    #[test]
    fn zero_rt_matches_only_zero() {
        let mut r = resident();
        if let Some(a) = r.address.as_mut() {
            a.rt = "000".into();
        }
        let claim = |rt: &str| VerifyResidentRequest {
            address: Some(Address {
                rt: rt.into(),
                ..Address::default()
            }),
            ..nik_only()
        };
        assert_eq!(addr(&check(Some(&r), &claim("0"))).rt(), FieldMatch::Match);
        assert_eq!(
            addr(&check(Some(&r), &claim("1"))).rt(),
            FieldMatch::NoMatch
        );
    }

    #[test]
    fn fields_left_empty_or_blank_are_not_claimed() {
        let r = resident();
        let claim = VerifyResidentRequest {
            birth_place: "   ".into(),
            ..nik_only()
        };
        let response = check(Some(&r), &claim);
        assert!(response.found);
        assert_eq!(response.full_name(), FieldMatch::NotClaimed);
        assert_eq!(response.birth_date(), FieldMatch::NotClaimed);
        assert_eq!(response.birth_place(), FieldMatch::NotClaimed);
        assert_eq!(addr(&response), not_checked("").address.unwrap_or_default());
    }

    #[test]
    fn an_unknown_nik_is_not_found_and_nothing_is_claimed() {
        let response = check(None, &full_claim());
        assert!(!response.found);
        assert!(!response.has_active_card);
        assert_eq!(response.nik, "3527014107900001");
        assert_eq!(response.full_name(), FieldMatch::NotClaimed);
        assert_eq!(response.birth_date(), FieldMatch::NotClaimed);
        assert_eq!(response.birth_place(), FieldMatch::NotClaimed);
        let a = addr(&response);
        for part in [
            a.street(),
            a.rt(),
            a.rw(),
            a.village(),
            a.district(),
            a.regency(),
            a.province(),
        ] {
            assert_eq!(part, FieldMatch::NotClaimed);
        }
    }

    #[test]
    fn an_active_card_is_reported() {
        let mut r = resident();
        r.active_card_serial = "KTP-0000000001".into();
        assert!(check(Some(&r), &nik_only()).has_active_card);
    }

    #[test]
    fn the_answer_never_contains_the_records_values() {
        let mut r = resident();
        r.active_card_serial = "KTP-0000000001".into();
        r.occupation = "Petani".into();
        let claims = [
            full_claim(),
            nik_only(),
            VerifyResidentRequest {
                full_name: "Someone Else".into(),
                birth_place: "Bangkalan".into(),
                ..nik_only()
            },
        ];
        for claim in claims {
            let shown = format!("{:?}", check(Some(&r), &claim));
            for secret in [
                "Siti Rahmawati",
                "Rahmawati",
                "Sampang",
                "1990-07-01",
                "Trunojoyo",
                "Camplong",
                "Jawa Timur",
                "KTP-0000000001",
                "Petani",
            ] {
                assert!(!shown.contains(secret), "{secret} leaked in {shown}");
            }
        }
    }

    #[test]
    fn the_nik_is_echoed_as_given() {
        let claim = VerifyResidentRequest {
            nik: "whatever was sent".into(),
            ..VerifyResidentRequest::default()
        };
        assert_eq!(check(None, &claim).nik, "whatever was sent");
    }
}
