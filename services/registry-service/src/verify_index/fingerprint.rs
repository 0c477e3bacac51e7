//! What the index keeps of a resident: a keyed 64-bit hash of each compared
//! field, normalised exactly as [`crate::verify`] compares it, and whether a
//! card is active — never the values. The key is random per process
//! (SipHash through [`RandomState`]), so a memory dump holds nothing that
//! can be matched against a guessed name without this process's key.
//!
//! [`check`] answers a claim from a fingerprint with the same rules as
//! [`crate::verify::check`] answers it from the record (tested below).

use crate::verify::{self, is_claimed, normalise, number};
use ektp_proto::v1::{
    AddressMatch, FieldMatch, Resident, VerifyResidentRequest, VerifyResidentResponse,
};
use std::hash::{BuildHasher, RandomState};

const NAME: usize = 0;
const BIRTH_DATE: usize = 1;
const BIRTH_PLACE: usize = 2;
const STREET: usize = 3;
const RT: usize = 4;
const RW: usize = 5;
const VILLAGE: usize = 6;
const DISTRICT: usize = 7;
const REGENCY: usize = 8;
const PROVINCE: usize = 9;
/// Compared fields.
pub const FIELDS: usize = 10;

/// Set in [`Row::key`] when the resident has an ACTIVE card.
const ACTIVE_CARD: u64 = 1 << 63;
/// Set in [`Row::key`] when the stored value did not decode: answer from etcd.
pub const UNREADABLE: u64 = 1 << 62;
/// The NIK bits of [`Row::key`] (a NIK is 16 digits, below 2^54).
const NIK_BITS: u64 = (1 << 54) - 1;
/// What a recorded RT/RW that is not a number hashes as: `number` never
/// yields it, so such a record matches no claim, as in `verify`.
const NOT_A_NUMBER: &str = "-";

/// One resident in the index: 88 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row {
    /// The NIK as a number, with the flag bits above.
    pub key: u64,
    pub fields: [u64; FIELDS],
}

impl Row {
    pub fn nik(&self) -> u64 {
        self.key & NIK_BITS
    }

    pub fn is_unreadable(&self) -> bool {
        self.key & UNREADABLE != 0
    }

    /// A row standing for a value that did not decode.
    pub fn unreadable(nik: u64) -> Self {
        Self {
            key: nik | UNREADABLE,
            fields: [0; FIELDS],
        }
    }
}

/// A NIK's 16 digits as a number; `None` for anything else.
pub fn nik_number(nik: &str) -> Option<u64> {
    if nik.len() != 16 || !nik.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    nik.parse().ok()
}

/// The process's hashing key.
#[derive(Clone, Debug, Default)]
pub struct Keyed(RandomState);

impl Keyed {
    /// A fresh random key.
    pub fn new() -> Self {
        Self(RandomState::new())
    }

    fn hash(&self, text: &str) -> u64 {
        self.0.hash_one(text)
    }

    fn text(&self, text: &str) -> u64 {
        self.hash(&normalise(text))
    }

    fn date(&self, text: &str) -> u64 {
        self.hash(text.trim())
    }

    fn neighbourhood(&self, text: &str) -> u64 {
        self.hash(number(text).unwrap_or(NOT_A_NUMBER))
    }

    /// The fingerprint of a stored resident; `None` if its NIK is not 16 digits.
    pub fn row(&self, r: &Resident) -> Option<Row> {
        let nik = nik_number(&r.nik)?;
        let a = r.address.clone().unwrap_or_default();
        let mut fields = [0; FIELDS];
        fields[NAME] = self.text(&r.full_name);
        fields[BIRTH_DATE] = self.date(&r.birth_date);
        fields[BIRTH_PLACE] = self.text(&r.birth_place);
        fields[STREET] = self.text(&a.street);
        fields[RT] = self.neighbourhood(&a.rt);
        fields[RW] = self.neighbourhood(&a.rw);
        fields[VILLAGE] = self.text(&a.village);
        fields[DISTRICT] = self.text(&a.district);
        fields[REGENCY] = self.text(&a.regency);
        fields[PROVINCE] = self.text(&a.province);
        let active = if r.active_card_serial.is_empty() {
            0
        } else {
            ACTIVE_CARD
        };
        Some(Row {
            key: nik | active,
            fields,
        })
    }

    /// Compares a claim with a fingerprint (`None`: the NIK is not recorded),
    /// as [`verify::check`] compares it with the record.
    pub fn check(
        &self,
        row: Option<&Row>,
        claim: &VerifyResidentRequest,
    ) -> VerifyResidentResponse {
        let Some(row) = row else {
            return verify::not_checked(&claim.nik);
        };
        let f = &row.fields;
        let a = claim.address.clone().unwrap_or_default();
        let text = |claimed: &str, i: usize| outcome(claimed, || self.text(claimed) == f[i]);
        let neighbourhood = |claimed: &str, i: usize| {
            outcome(claimed, || {
                number(claimed).is_some_and(|n| self.hash(n) == f[i])
            })
        };
        VerifyResidentResponse {
            nik: claim.nik.clone(),
            found: true,
            full_name: text(&claim.full_name, NAME) as i32,
            birth_date: outcome(&claim.birth_date, || {
                self.date(&claim.birth_date) == f[BIRTH_DATE]
            }) as i32,
            birth_place: text(&claim.birth_place, BIRTH_PLACE) as i32,
            address: Some(AddressMatch {
                street: text(&a.street, STREET) as i32,
                rt: neighbourhood(&a.rt, RT) as i32,
                rw: neighbourhood(&a.rw, RW) as i32,
                village: text(&a.village, VILLAGE) as i32,
                district: text(&a.district, DISTRICT) as i32,
                regency: text(&a.regency, REGENCY) as i32,
                province: text(&a.province, PROVINCE) as i32,
            }),
            has_active_card: row.key & ACTIVE_CARD != 0,
            error: String::new(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use ektp_proto::v1::Address;

    fn resident(rt: &str, serial: &str) -> Resident {
        Resident {
            nik: "3527014107900001".into(),
            full_name: "Siti Rahmawati".into(),
            birth_place: "Sampang".into(),
            birth_date: "1990-07-01".into(),
            active_card_serial: serial.into(),
            address: Some(Address {
                street: "Jl. Trunojoyo No. 5".into(),
                rt: rt.into(),
                rw: "012".into(),
                village: "Dharma Camplong".into(),
                district: "Camplong".into(),
                regency: "Sampang".into(),
                province: "Jawa Timur".into(),
            }),
            ..Resident::default()
        }
    }

    /// Claims that exercise every rule: faithful, sloppy, wrong, blank,
    /// punctuation only, numbers with zeros, non-numbers.
    fn claims() -> Vec<VerifyResidentRequest> {
        let texts = [
            "",
            "  ",
            "...,",
            "SITI  Rahmawati,",
            "Siti Rahmawat",
            "sampang",
            "Jl Trunojoyo no 5",
            "dharma-camplong",
            "CAMPLONG",
            "jawa timur",
            "Jawa Barat",
        ];
        let dates = ["", " 1990-07-01 ", "1990-07-02"];
        let numbers = ["", "5", "005", "12", "0012", "50", "RT 5", "0", "000", "-"];
        let mut out = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            for (j, d) in dates.iter().enumerate() {
                let n = numbers[(i + j) % numbers.len()];
                let m = numbers[(i * 3 + j) % numbers.len()];
                out.push(VerifyResidentRequest {
                    nik: "3527014107900001".into(),
                    full_name: (*t).into(),
                    birth_date: (*d).into(),
                    birth_place: texts[(i + 5) % texts.len()].into(),
                    address: Some(Address {
                        street: texts[(i + 6) % texts.len()].into(),
                        rt: n.into(),
                        rw: m.into(),
                        village: texts[(i + 7) % texts.len()].into(),
                        district: texts[(i + 8) % texts.len()].into(),
                        regency: texts[(i + 5 + j) % texts.len()].into(),
                        province: texts[(i + 9) % texts.len()].into(),
                    }),
                    linearizable: false,
                });
            }
        }
        out
    }

    #[test]
    fn a_fingerprint_answers_every_claim_as_the_record_does() {
        let keyed = Keyed::new();
        for rt in ["005", "000", "x", ""] {
            for serial in ["", "KTP-0000000001"] {
                let record = resident(rt, serial);
                let row = keyed.row(&record);
                assert!(row.is_some());
                for claim in claims() {
                    assert_eq!(
                        keyed.check(row.as_ref(), &claim),
                        verify::check(Some(&record), &claim),
                        "rt {rt:?}, claim {claim:?}"
                    );
                }
            }
        }
        let claim = &claims()[3];
        assert_eq!(keyed.check(None, claim), verify::check(None, claim));
    }

    #[test]
    fn the_nik_is_kept_as_a_number_beside_its_flags() {
        let keyed = Keyed::new();
        let row = keyed
            .row(&resident("005", "KTP-1"))
            .unwrap_or(Row::unreadable(0));
        assert_eq!(row.nik(), 3_527_014_107_900_001);
        assert!(!row.is_unreadable());
        assert!(Row::unreadable(7).is_unreadable());
        assert_eq!(nik_number("352701410790000"), None);
        assert_eq!(nik_number("35270141079000x1"), None);
    }

    #[test]
    fn two_processes_hash_alike_values_differently() {
        let record = resident("005", "");
        let (a, b) = (Keyed::new().row(&record), Keyed::new().row(&record));
        assert_ne!(a.map(|r| r.fields), b.map(|r| r.fields));
    }
}
