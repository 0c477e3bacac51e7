//! How API messages look to operators: key/value text, table rows and JSON
//! objects for residents, print jobs and printers.

use crate::enums::short_of;
use crate::output::{Json, or_dash, pairs, time, yes_no};
use ektp_proto::v1 as pb;

/// A resident as JSON.
pub fn resident_json(r: &pb::Resident) -> String {
    Json::new()
        .str("nik", &r.nik)
        .str("full_name", &r.full_name)
        .str("birth_place", &r.birth_place)
        .str("birth_date", &r.birth_date)
        .str("sex", &short_of::<pb::Sex>(r.sex))
        .str("status", &short_of::<pb::ResidentStatus>(r.status))
        .str("status_reason", &r.status_reason)
        .str("active_card_serial", &r.active_card_serial)
        .strs("warnings", &r.warnings)
        .str("create_time", &time(r.create_time.as_ref()))
        .str("update_time", &time(r.update_time.as_ref()))
        .build()
}

/// A resident as aligned text.
pub fn resident_text(r: &pb::Resident) -> String {
    let mut items = vec![
        ("nik", r.nik.clone()),
        ("name", r.full_name.clone()),
        ("status", short_of::<pb::ResidentStatus>(r.status)),
        ("reason", or_dash(&r.status_reason)),
        ("active card", or_dash(&r.active_card_serial)),
        ("updated", time(r.update_time.as_ref())),
    ];
    for w in &r.warnings {
        items.push(("warning", w.clone()));
    }
    pairs("", &items)
}

/// A print job as JSON (numbers as numbers).
pub fn job_json(j: &pb::PrintJob) -> String {
    Json::new()
        .str("job_id", &j.job_id)
        .str("nik", &j.nik)
        .str("state", &short_of::<pb::PrintJobState>(j.state))
        .str("reason", &short_of::<pb::PrintReason>(j.reason))
        .str("card_serial", &j.card_serial)
        .num("failed_attempts", j.failed_attempts)
        .num("claim_epoch", j.claim_epoch)
        .num("settled_epoch", j.settled_epoch)
        .str("printer", &j.printer)
        .str("last_error", &j.last_error)
        .str("create_time", &time(j.create_time.as_ref()))
        .str("update_time", &time(j.update_time.as_ref()))
        .build()
}

/// A print job as aligned text.
pub fn job_text(j: &pb::PrintJob) -> String {
    pairs(
        "",
        &[
            ("job", j.job_id.clone()),
            ("nik", j.nik.clone()),
            ("state", short_of::<pb::PrintJobState>(j.state)),
            ("reason", short_of::<pb::PrintReason>(j.reason)),
            ("card serial", or_dash(&j.card_serial)),
            ("failed attempts", j.failed_attempts.to_string()),
            ("printer", or_dash(&j.printer)),
            ("claim epoch", j.claim_epoch.to_string()),
            ("settled epoch", j.settled_epoch.to_string()),
            ("last error", or_dash(&j.last_error)),
            ("created", time(j.create_time.as_ref())),
            ("updated", time(j.update_time.as_ref())),
        ],
    )
}

/// Header of the jobs table.
pub const JOB_COLUMNS: &[&str] = &[
    "JOB", "NIK", "STATE", "REASON", "SERIAL", "FAILED", "PRINTER", "UPDATED",
];

/// Right-aligned columns of the jobs table.
pub const JOB_COUNTS: &[&str] = &["FAILED"];

/// A print job as a row of the jobs table.
pub fn job_row(j: &pb::PrintJob) -> Vec<String> {
    vec![
        j.job_id.clone(),
        j.nik.clone(),
        short_of::<pb::PrintJobState>(j.state),
        short_of::<pb::PrintReason>(j.reason),
        or_dash(&j.card_serial),
        j.failed_attempts.to_string(),
        or_dash(&j.printer),
        time(j.update_time.as_ref()),
    ]
}

/// A printer as JSON.
pub fn printer_json(p: &pb::PrinterStatus) -> String {
    Json::new()
        .str("name", &p.name)
        .str("driver", &p.driver)
        .bool("paused", p.paused)
        .num("printed", p.printed)
        .build()
}

/// A printer as aligned text.
pub fn printer_text(p: &pb::PrinterStatus) -> String {
    pairs(
        "",
        &[
            ("printer", p.name.clone()),
            ("driver", or_dash(&p.driver)),
            ("paused", yes_no(p.paused).to_owned()),
            ("printed", p.printed.to_string()),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_renders_states_by_name_and_numbers_as_numbers() {
        let job = pb::PrintJob {
            job_id: "000000000007".into(),
            nik: "3527015001600001".into(),
            state: pb::PrintJobState::InDoubt as i32,
            reason: pb::PrintReason::FirstCard as i32,
            failed_attempts: 2,
            last_error: "printer said \"jam\"".into(),
            ..Default::default()
        };
        let json = job_json(&job);
        assert!(json.contains(r#""state":"IN_DOUBT""#), "{json}");
        assert!(json.contains(r#""failed_attempts":2,"#), "{json}");
        assert!(
            json.contains(r#""last_error":"printer said \"jam\"""#),
            "{json}"
        );
        assert!(job_text(&job).contains("state            IN_DOUBT\n"));
        assert_eq!(job_row(&job)[4], "-");
    }
}
