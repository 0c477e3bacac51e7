//! Turning one CSV row of a resident import into a RecordResidentRequest:
//! columns, enum names, image files (relative to the CSV's directory) and
//! the idempotent request id `import-<nik>`.

use crate::csv::{Record, Sheet};
use crate::enums::{ProtoEnum, parse};
use ektp_proto::v1 as pb;
use std::path::Path;

/// The columns an import file's header must name.
pub const COLUMNS: &[&str] = &[
    "nik",
    "full_name",
    "birth_place",
    "birth_date",
    "sex",
    "blood_type",
    "street",
    "rt",
    "rw",
    "village",
    "district",
    "regency",
    "province",
    "religion",
    "marital_status",
    "occupation",
    "citizenship",
    "photo_file",
    "signature_file",
];

/// A problem with one column of a row: (column, description).
pub type Violation = (String, String);

/// A request id `<prefix>-<nik>` (e.g. `import-<nik>`), kept to the
/// characters and length the registry accepts.
pub fn request_id(prefix: &str, nik: &str) -> String {
    let id: String = format!("{prefix}-{nik}")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c))
        .collect();
    id.chars().take(64).collect()
}

/// The NIK column of a row, trimmed.
pub fn nik<'a>(sheet: &Sheet, record: &'a Record) -> &'a str {
    sheet.get(record, "nik").trim()
}

/// The request for one row, or every problem found in it.
pub fn request(
    sheet: &Sheet,
    record: &Record,
    base: &Path,
) -> Result<pb::RecordResidentRequest, Vec<Violation>> {
    let mut problems = Vec::new();
    if record.fields.len() != sheet.width() {
        problems.push((
            "row".to_owned(),
            format!(
                "has {} fields; the header has {}",
                record.fields.len(),
                sheet.width()
            ),
        ));
        return Err(problems);
    }
    let text = |column: &str| sheet.get(record, column).trim().to_owned();
    let mut choice = |column: &str, value: Result<i32, String>| {
        value.unwrap_or_else(|e| {
            problems.push((column.to_owned(), e));
            0
        })
    };
    let sex = choice("sex", number::<pb::Sex>(&text("sex")));
    let blood_type = choice("blood_type", number::<pb::BloodType>(&text("blood_type")));
    let religion = choice("religion", number::<pb::Religion>(&text("religion")));
    let marital_status = choice(
        "marital_status",
        number::<pb::MaritalStatus>(&text("marital_status")),
    );
    let citizenship = choice(
        "citizenship",
        number::<pb::Citizenship>(&text("citizenship")),
    );
    let photo = read(base, "photo_file", &text("photo_file"), &mut problems);
    let signature = read(
        base,
        "signature_file",
        &text("signature_file"),
        &mut problems,
    );
    if !problems.is_empty() {
        return Err(problems);
    }
    let nik = text("nik");
    Ok(pb::RecordResidentRequest {
        request_id: request_id("import", &nik),
        resident: Some(pb::Resident {
            nik,
            full_name: text("full_name"),
            birth_place: text("birth_place"),
            birth_date: text("birth_date"),
            sex,
            blood_type,
            address: Some(pb::Address {
                street: text("street"),
                rt: text("rt"),
                rw: text("rw"),
                village: text("village"),
                district: text("district"),
                regency: text("regency"),
                province: text("province"),
            }),
            religion,
            marital_status,
            occupation: text("occupation"),
            citizenship,
            ..pb::Resident::default()
        }),
        material: Some(pb::PrintMaterial { photo, signature }),
    })
}

fn number<E: ProtoEnum + Into<i32>>(value: &str) -> Result<i32, String> {
    parse::<E>(value).map(Into::into)
}

/// The bytes of an image file named in a row (relative to `base`).
fn read(base: &Path, column: &str, name: &str, problems: &mut Vec<Violation>) -> Vec<u8> {
    if name.is_empty() {
        problems.push((column.to_owned(), "is required".to_owned()));
        return Vec::new();
    }
    let path = base.join(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        problems.push((
            column.to_owned(),
            format!("cannot read {}: {e}", path.display()),
        ));
        Vec::new()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(row: &str) -> Sheet {
        Sheet::parse(&format!("{}\n{row}\n", COLUMNS.join(",")), COLUMNS).unwrap()
    }

    #[test]
    fn a_row_becomes_a_request() {
        let dir = std::env::temp_dir().join(format!("ektpctl-rows-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("p.jpg"), [0xFF, 0xD8, 0xFF]).unwrap();
        std::fs::write(dir.join("s.png"), b"\x89PNG").unwrap();
        let s = sheet(
            "3527015001600001,Siti Rahmawati,Sampang,1960-01-10,female,O,\
             \"Jl. Trunojoyo, No. 1\",001,002,Polagan,Sampang,Sampang,Jawa Timur,\
             ISLAM,Married,Petani,wni,p.jpg,s.png",
        );
        let request = request(&s, &s.rows[0], &dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(request.request_id, "import-3527015001600001");
        let r = request.resident.unwrap();
        assert_eq!(r.sex, pb::Sex::Female as i32);
        assert_eq!(r.blood_type, pb::BloodType::O as i32);
        assert_eq!(r.citizenship, pb::Citizenship::Wni as i32);
        assert_eq!(r.address.unwrap().street, "Jl. Trunojoyo, No. 1");
        assert_eq!(request.material.unwrap().photo, [0xFF, 0xD8, 0xFF]);
    }

    #[test]
    fn every_problem_of_a_row_is_reported() {
        let s = sheet("1,A,B,2000-01-01,X,O,S,1,1,V,D,R,P,ISLAM,SINGLE,O,WNI,,missing.png");
        let problems = request(&s, &s.rows[0], Path::new("/nonexistent")).unwrap_err();
        let columns: Vec<&str> = problems.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(columns, ["sex", "photo_file", "signature_file"]);
        let short = sheet("1,2,3");
        let problems = request(&short, &short.rows[0], Path::new(".")).unwrap_err();
        assert_eq!(problems[0].1, "has 3 fields; the header has 19");
    }

    #[test]
    fn request_ids_keep_to_the_allowed_characters() {
        assert_eq!(request_id("import", "12 34/x"), "import-1234x");
        assert_eq!(request_id("import", &"9".repeat(100)).len(), 64);
    }
}
