//! The words printed on an e-KTP for the record's enumerations, and its
//! date format (`DD-MM-YYYY`).

use ektp_proto::v1 as pb;

/// Jenis kelamin.
pub(crate) fn sex(sex: pb::Sex) -> &'static str {
    match sex {
        pb::Sex::Male => "LAKI-LAKI",
        pb::Sex::Female => "PEREMPUAN",
        pb::Sex::Unspecified => "-",
    }
}

/// Golongan darah; "-" when not known.
pub(crate) fn blood_type(blood: pb::BloodType) -> &'static str {
    match blood {
        pb::BloodType::A => "A",
        pb::BloodType::B => "B",
        pb::BloodType::Ab => "AB",
        pb::BloodType::O => "O",
        pb::BloodType::Unknown | pb::BloodType::Unspecified => "-",
    }
}

/// Agama.
pub(crate) fn religion(religion: pb::Religion) -> &'static str {
    match religion {
        pb::Religion::Islam => "ISLAM",
        pb::Religion::Protestant => "KRISTEN",
        pb::Religion::Catholic => "KATOLIK",
        pb::Religion::Hindu => "HINDU",
        pb::Religion::Buddhist => "BUDDHA",
        pb::Religion::Confucian => "KHONGHUCU",
        pb::Religion::Belief => "KEPERCAYAAN",
        pb::Religion::Unspecified => "-",
    }
}

/// Status perkawinan.
pub(crate) fn marital_status(status: pb::MaritalStatus) -> &'static str {
    match status {
        pb::MaritalStatus::Single => "BELUM KAWIN",
        pb::MaritalStatus::Married => "KAWIN",
        pb::MaritalStatus::Divorced => "CERAI HIDUP",
        pb::MaritalStatus::Widowed => "CERAI MATI",
        pb::MaritalStatus::Unspecified => "-",
    }
}

/// Kewarganegaraan.
pub(crate) fn citizenship(citizenship: pb::Citizenship) -> &'static str {
    match citizenship {
        pb::Citizenship::Wni => "WNI",
        pb::Citizenship::Wna => "WNA",
        pb::Citizenship::Unspecified => "-",
    }
}

/// `YYYY-MM-DD` as the card prints it, `DD-MM-YYYY`; anything else unchanged.
pub(crate) fn card_date(iso: &str) -> String {
    let parts: Vec<&str> = iso.split('-').collect();
    match parts[..] {
        [y, m, d]
            if y.len() == 4
                && m.len() == 2
                && d.len() == 2
                && iso.bytes().all(|b| b.is_ascii_digit() || b == b'-') =>
        {
            format!("{d}-{m}-{y}")
        }
        _ => iso.to_owned(),
    }
}

/// The UTC calendar day of a timestamp, as `DD-MM-YYYY`.
pub(crate) fn timestamp_date(ts: &ektp_proto::Timestamp) -> String {
    let days = ts.seconds.div_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{d:02}-{m:02}-{y:04}")
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day)
/// (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn dates_read_day_first() {
        assert_eq!(card_date("1990-07-05"), "05-07-1990");
        assert_eq!(card_date("garbage"), "garbage");
        let ts = ektp_proto::Timestamp {
            seconds: 1_796_000_000,
            nanos: 0,
        };
        // 2026-11-30T00:53:20Z
        assert_eq!(timestamp_date(&ts), "30-11-2026");
        assert_eq!(
            timestamp_date(&ektp_proto::Timestamp {
                seconds: 0,
                nanos: 0
            }),
            "01-01-1970"
        );
        assert_eq!(
            timestamp_date(&ektp_proto::Timestamp {
                seconds: 951_782_400,
                nanos: 0
            }),
            "29-02-2000"
        );
    }
}
