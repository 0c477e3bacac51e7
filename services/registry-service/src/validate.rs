//! Request validation: every field checked, every violation reported at once
//! as INVALID_ARGUMENT with `BadRequest` field violations; nothing is stored
//! for a rejected request.

use crate::ids::{CardSerial, JobId};
use crate::writer::NewResident;
use ektp_election::{Epoch, Fence};
use ektp_nik::{CivilDate, Nik, Sex as NikSex};
use ektp_proto::v1 as pb;
use ektp_server::Violations;
use prost::Message;
use tonic::Status;

pub const MAX_PHOTO_BYTES: usize = 64 * 1024;
pub const MAX_SIGNATURE_BYTES: usize = 16 * 1024;
const MAX_PAGE_SIZE: i32 = 1000;
const DEFAULT_PAGE_SIZE: usize = 100;

/// Checks a RecordResidentRequest and builds what the writer stores.
pub fn record(request: pb::RecordResidentRequest) -> Result<NewResident, Status> {
    let mut v = Violations::new();
    request_id(&mut v, "request_id", &request.request_id, true);
    let digest = crate::writer::request_digest(&request.encode_to_vec());
    let Some(mut resident) = request.resident else {
        v.add("resident", "a resident is required");
        v.into_result()?;
        return Err(Status::invalid_argument("a resident is required"));
    };
    let nik = resident_fields(&mut v, &mut resident);
    let material = request.material.unwrap_or_default();
    material_fields(&mut v, &material);
    v.into_result()?;
    let nik = nik.ok_or_else(|| Status::invalid_argument("invalid resident"))?;
    Ok(NewResident {
        request_id: request.request_id,
        digest,
        nik,
        resident,
        material,
        audit: None,
    })
}

/// Checks a resident's fields (under `resident.`), fills in the NIK warnings
/// and clears output-only fields; the NIK when the record is valid.
pub fn resident_fields(v: &mut Violations, resident: &mut pb::Resident) -> Option<Nik> {
    let before = v.len();
    let nik = nik(v, "resident.nik", &resident.nik);
    text(v, "resident.full_name", &resident.full_name, 100);
    if resident
        .full_name
        .chars()
        .any(|c| !(c.is_alphabetic() || " .,'-".contains(c)))
    {
        v.add(
            "resident.full_name",
            "only letters, spaces and . , ' - are allowed",
        );
    }
    text(v, "resident.birth_place", &resident.birth_place, 50);
    let birth_date = match CivilDate::parse(&resident.birth_date) {
        Ok(date) if date.to_string() > today() => {
            v.add("resident.birth_date", "the birth date is in the future");
            None
        }
        Ok(date) => Some(date),
        Err(e) => {
            v.add("resident.birth_date", e.to_string());
            None
        }
    };
    let sex = match pb::Sex::try_from(resident.sex) {
        Ok(pb::Sex::Male) => Some(NikSex::Male),
        Ok(pb::Sex::Female) => Some(NikSex::Female),
        _ => {
            v.add("resident.sex", "must be SEX_MALE or SEX_FEMALE");
            None
        }
    };
    enum_set::<pb::BloodType>(v, "resident.blood_type", resident.blood_type);
    enum_set::<pb::Religion>(v, "resident.religion", resident.religion);
    enum_set::<pb::MaritalStatus>(v, "resident.marital_status", resident.marital_status);
    enum_set::<pb::Citizenship>(v, "resident.citizenship", resident.citizenship);
    text(v, "resident.occupation", &resident.occupation, 50);
    match &resident.address {
        None => v.add("resident.address", "an address is required"),
        Some(a) => {
            text(v, "resident.address.street", &a.street, 100);
            neighbourhood(v, "resident.address.rt", &a.rt);
            neighbourhood(v, "resident.address.rw", &a.rw);
            text(v, "resident.address.village", &a.village, 50);
            text(v, "resident.address.district", &a.district, 50);
            text(v, "resident.address.regency", &a.regency, 50);
            text(v, "resident.address.province", &a.province, 50);
        }
    }

    let (Some(nik), Some(birth_date), Some(sex)) = (nik, birth_date, sex) else {
        return None;
    };
    resident.warnings = nik
        .check_declared(birth_date, sex)
        .iter()
        .map(|w| format!("{}: {w}", w.code()))
        .collect();
    resident.active_card_serial.clear();
    resident.status_reason.clear();
    resident.open_job_id.clear();
    resident.collection = None;
    resident.material_digest.clear();
    resident.material_dropped = false;
    (v.len() == before).then_some(nik)
}

/// Checks print material (under `material.`): a JPEG photo and a PNG signature within their limits.
pub fn material_fields(v: &mut Violations, material: &pb::PrintMaterial) {
    image(
        v,
        "material.photo",
        &material.photo,
        MAX_PHOTO_BYTES,
        &[0xFF, 0xD8, 0xFF],
        "JPEG",
    );
    image(
        v,
        "material.signature",
        &material.signature,
        MAX_SIGNATURE_BYTES,
        b"\x89PNG",
        "PNG",
    );
}

/// Checks an AuthorizePrintRequest.
pub fn authorize(
    request: &pb::AuthorizePrintRequest,
) -> Result<(Nik, pb::AuthorizationOutcome), Status> {
    let mut v = Violations::new();
    let nik = nik(&mut v, "nik", &request.nik);
    request_id(&mut v, "request_id", &request.request_id, false);
    let outcome = match pb::AuthorizationOutcome::try_from(request.outcome) {
        Ok(pb::AuthorizationOutcome::Unspecified) | Err(_) => {
            v.add("outcome", "must be PRINT_READY, DUPLICATE or REJECTED");
            None
        }
        Ok(outcome) => Some(outcome),
    };
    if outcome.is_some_and(|o| o != pb::AuthorizationOutcome::PrintReady)
        && request.reason.trim().is_empty()
    {
        v.add("reason", "a reason is required for DUPLICATE and REJECTED");
    }
    if request.reason.chars().count() > 500 || request.reason.chars().any(char::is_control) {
        v.add("reason", "at most 500 characters, no control characters");
    }
    v.into_result()?;
    match (nik, outcome) {
        (Some(nik), Some(outcome)) => Ok((nik, outcome)),
        _ => Err(Status::invalid_argument("invalid request")),
    }
}

/// Checks a ResolveInDoubtJobRequest: the job id and the operator's note.
pub fn resolve(request: &pb::ResolveInDoubtJobRequest) -> Result<(JobId, String), Status> {
    let mut v = Violations::new();
    let id = JobId::parse(&request.job_id);
    v.require(id.is_some(), "job_id", "a job id has 12 digits");
    text(&mut v, "note", &request.note, 500);
    v.into_result()?;
    let id = id.ok_or_else(|| Status::invalid_argument("invalid job id"))?;
    Ok((id, request.note.trim().to_owned()))
}

/// Checks a NIK given alone (GetResident).
pub fn nik_only(field: &str, value: &str) -> Result<Nik, Status> {
    let mut v = Violations::new();
    let nik = nik(&mut v, field, value);
    v.into_result()?;
    nik.ok_or_else(|| Status::invalid_argument("invalid nik"))
}

/// Checks a job id given alone.
pub fn job_id(field: &str, value: &str) -> Result<JobId, Status> {
    let mut v = Violations::new();
    let id = JobId::parse(value);
    v.require(id.is_some(), field, "a job id has 12 digits");
    v.into_result()?;
    id.ok_or_else(|| Status::invalid_argument("invalid job id"))
}

/// Checks paging: the page size (0 means the default) and a token (the last
/// id of the previous page, checked by `parse_token`).
pub fn page<T>(
    page_size: i32,
    token: &str,
    parse_token: impl Fn(&str) -> Option<T>,
) -> Result<(usize, Option<T>), Status> {
    let mut v = Violations::new();
    v.require(
        (0..=MAX_PAGE_SIZE).contains(&page_size),
        "page_size",
        "must be 0-1000",
    );
    let after = if token.is_empty() {
        None
    } else {
        let parsed = parse_token(token);
        v.require(
            parsed.is_some(),
            "page_token",
            "not a token this server issued",
        );
        parsed
    };
    v.into_result()?;
    let size = usize::try_from(page_size).unwrap_or(0);
    Ok((if size == 0 { DEFAULT_PAGE_SIZE } else { size }, after))
}

/// Checks the print leader's fence: its key must be a print election key.
pub fn print_fence(
    v: &mut Violations,
    fence: Option<&pb::Fence>,
    print_election: &str,
) -> Option<Fence> {
    let Some(fence) = fence else {
        v.add("fence", "the print leader's fence is required");
        return None;
    };
    let key_ok = fence
        .leader_key
        .strip_prefix(print_election)
        .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1);
    v.require(
        key_ok,
        "fence.leader_key",
        "must be a key under the print election",
    );
    v.require(fence.epoch > 0, "fence.epoch", "must be positive");
    (key_ok && fence.epoch > 0).then(|| Fence {
        key: fence.leader_key.clone(),
        epoch: Epoch(fence.epoch),
    })
}

/// Checks a card serial field.
pub fn card_serial(v: &mut Violations, field: &str, value: &str) -> Option<CardSerial> {
    let serial = CardSerial::parse(value);
    v.require(
        serial.is_some(),
        field,
        "a card serial reads KTP- and 10 digits",
    );
    serial
}

fn nik(v: &mut Violations, field: &str, value: &str) -> Option<Nik> {
    match Nik::parse(value) {
        Ok(nik) => Some(nik),
        Err(e) => {
            v.add(field, e.to_string());
            None
        }
    }
}

pub fn request_id(v: &mut Violations, field: &str, value: &str, required: bool) {
    if value.is_empty() {
        v.require(
            !required,
            field,
            "a request_id is required for safe retries",
        );
        return;
    }
    let ok = value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    v.require(ok, field, "1-64 characters of A-Z a-z 0-9 . _ : -");
}

pub fn text(v: &mut Violations, field: &str, value: &str, max: usize) {
    if value.trim().is_empty() {
        v.add(field, "is required");
    } else if value.chars().count() > max {
        v.add(field, format!("at most {max} characters"));
    } else if value.chars().any(char::is_control) {
        v.add(field, "control characters are not allowed");
    }
}

fn neighbourhood(v: &mut Violations, field: &str, value: &str) {
    let ok = (1..=3).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_digit());
    v.require(ok, field, "1-3 digits");
}

fn enum_set<E: TryFrom<i32> + Into<i32> + Copy>(v: &mut Violations, field: &str, value: i32) {
    let known = E::try_from(value).is_ok();
    v.require(known && value != 0, field, "must be set to a known value");
}

fn image(v: &mut Violations, field: &str, bytes: &[u8], max: usize, magic: &[u8], kind: &str) {
    if bytes.is_empty() {
        v.add(field, format!("a {kind} image is required"));
    } else if bytes.len() > max {
        v.add(field, format!("at most {} KiB", max / 1024));
    } else if !bytes.starts_with(magic) {
        v.add(field, format!("must be a {kind} image"));
    }
}

/// Today's date (UTC) as `YYYY-MM-DD`, for comparing birth dates.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default();
    let (y, m, d) = civil_from_days(i64::try_from(days).unwrap_or(0));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 to a Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn day_numbers_become_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_819), (2027, 1, 1));
    }
}
