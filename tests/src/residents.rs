//! Synthetic residents with valid NIKs (province 35, regency 27 — Sampang,
//! East Java), deterministic from an index so tests and the demo are repeatable.

use ektp_nik::{CivilDate, Sex, compose};
use ektp_proto::v1::*;

const GIVEN: &[&str] = &[
    "Siti", "Ahmad", "Dewi", "Budi", "Nur", "Agus", "Sri", "Moh", "Rina", "Hasan", "Wulan",
    "Rizky", "Fitri", "Slamet", "Aisyah", "Imam", "Lestari", "Yusuf",
];
const FAMILY: &[&str] = &[
    "Rahmawati",
    "Santoso",
    "Hidayat",
    "Wijaya",
    "Maulana",
    "Susanti",
    "Fauzi",
    "Kurniawan",
    "Handayani",
    "Saputra",
    "Rohman",
    "Anggraini",
    "Setiawan",
];
const VILLAGES: &[&str] = &[
    "Banyuanyar",
    "Dharma Camplong",
    "Gunung Sekar",
    "Polagan",
    "Rongtengah",
];

/// A minimal JPEG-looking photo (JPEG magic, then filler).
pub fn photo() -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.resize(2048, 0x42);
    bytes
}

/// A minimal PNG-looking signature (PNG magic, then filler).
pub fn signature() -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.resize(512, 0x17);
    bytes
}

/// The resident number `i` (0-based; up to 99 × 9,999 distinct NIKs).
pub fn resident(i: u32) -> Resident {
    let sex = if i.is_multiple_of(2) {
        Sex::Female
    } else {
        Sex::Male
    };
    let year = 1960 + (i % 45) as u16;
    let month = 1 + (i % 12) as u8;
    let day = 1 + (i % 28) as u8;
    let district = 1 + (i / 9_999 % 99) as u8;
    let serial = 1 + (i % 9_999) as u16;
    let birth = CivilDate { year, month, day };
    let nik = compose(35, 27, district, birth, sex, serial)
        .map(|n| n.as_str().to_owned())
        .unwrap_or_default();
    let name = format!(
        "{} {}",
        GIVEN[i as usize % GIVEN.len()],
        FAMILY[(i as usize / GIVEN.len()) % FAMILY.len()]
    );
    Resident {
        nik,
        full_name: name,
        birth_place: "Sampang".into(),
        birth_date: birth.to_string(),
        sex: match sex {
            Sex::Male => ektp_proto::v1::Sex::Male,
            Sex::Female => ektp_proto::v1::Sex::Female,
        } as i32,
        blood_type: BloodType::O as i32,
        address: Some(Address {
            street: format!("Jl. Trunojoyo No. {}", 1 + i % 200),
            rt: format!("{:03}", 1 + i % 12),
            rw: format!("{:03}", 1 + i % 6),
            village: VILLAGES[i as usize % VILLAGES.len()].into(),
            district: "Sampang".into(),
            regency: "Sampang".into(),
            province: "Jawa Timur".into(),
        }),
        religion: Religion::Islam as i32,
        marital_status: MaritalStatus::Married as i32,
        occupation: "Petani".into(),
        citizenship: Citizenship::Wni as i32,
        ..Resident::default()
    }
}

/// A RecordResidentRequest for resident `i` with request id `rec-{i}`.
pub fn record_request(i: u32) -> RecordResidentRequest {
    RecordResidentRequest {
        request_id: format!("rec-{i}"),
        resident: Some(resident(i)),
        material: Some(PrintMaterial {
            photo: photo(),
            signature: signature(),
        }),
    }
}

/// An AuthorizePrintRequest marking resident `i` print-ready.
pub fn authorize_request(i: u32) -> AuthorizePrintRequest {
    AuthorizePrintRequest {
        nik: resident(i).nik,
        outcome: AuthorizationOutcome::PrintReady as i32,
        reason: String::new(),
        request_id: format!("auth-{i}"),
    }
}
