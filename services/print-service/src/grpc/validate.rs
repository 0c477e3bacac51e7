//! Validation of PrintControl requests: every field checked, every violation
//! reported at once as INVALID_ARGUMENT with `BadRequest` field violations,
//! before anything is forwarded or written. Messages say what is wrong, never
//! echo what was sent.

use ektp_proto::v1 as pb;
use ektp_server::Violations;
use tonic::Status;

/// Most blanks one AddBlankStock may add.
const MAX_BLANKS: u64 = 1_000_000;

/// Checks an AddBlankStockRequest.
pub fn add_blank_stock(r: &pb::AddBlankStockRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.require(
        (1..=MAX_BLANKS).contains(&r.count),
        "count",
        "must be 1-1000000",
    );
    v.require(
        r.reference.chars().count() <= 100 && !r.reference.chars().any(char::is_control),
        "reference",
        "at most 100 characters, no control characters",
    );
    let id_ok = r.request_id.len() <= 64
        && r.request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
    v.require(
        id_ok,
        "request_id",
        "at most 64 characters of A-Z a-z 0-9 . _ : -",
    );
    v.into_result()
}

/// Checks the printer name of a Pause/ResumePrinter request: required, and
/// `ours` (NOT_FOUND otherwise; the name is not echoed, it may be anything).
pub fn printer_name(name: &str, ours: &str) -> Result<(), Status> {
    let mut v = Violations::new();
    v.require(!name.is_empty(), "name", "a printer name is required");
    v.into_result()?;
    if name != ours {
        return Err(Status::not_found("no printer by that name here"));
    }
    Ok(())
}

/// Checks a GetCardPreviewRequest: a job id as the registry writes them.
pub fn card_preview(r: &pb::GetCardPreviewRequest) -> Result<(), Status> {
    let mut v = Violations::new();
    v.require(is_job_id(&r.job_id), "job_id", "a job id has 12 digits");
    v.into_result()
}

/// Whether `job_id` is a job id as the registry writes them: 12 digits.
fn is_job_id(job_id: &str) -> bool {
    job_id.len() == 12 && job_id.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    //! Hostile input: whatever arrives, validation answers Ok or
    //! INVALID_ARGUMENT with at least one field violation, and never panics.

    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;
    use tonic::Code;
    use tonic_types::StatusExt;

    /// Empty, short, huge (up to 1 MiB), control characters, NUL, unicode.
    fn hostile_text() -> impl Strategy<Value = String> {
        prop_oneof![
            Just(String::new()),
            "\\PC{0,80}",
            "[\\x00-\\x1f\\x7f]{1,20}",
            "[0-9]{0,20}",
            any::<String>(),
            (0usize..=1 << 20, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
        ]
    }

    fn rejected_or_ok(result: Result<(), Status>) -> Result<(), TestCaseError> {
        if let Err(status) = result {
            prop_assert_eq!(status.code(), Code::InvalidArgument, "{:?}", status);
            let violations = status
                .get_details_bad_request()
                .map(|b| b.field_violations.len())
                .unwrap_or(0);
            prop_assert!(violations > 0, "no field violations: {:?}", status);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn add_blank_stock_answers_ok_or_invalid_argument(
            count in prop_oneof![Just(0u64), Just(u64::MAX), any::<u64>(), 1u64..=1_000_000],
            reference in hostile_text(),
            request_id in hostile_text(),
        ) {
            let request = pb::AddBlankStockRequest { count, reference, request_id };
            rejected_or_ok(add_blank_stock(&request))?;
        }

        #[test]
        fn card_preview_answers_ok_or_invalid_argument(job_id in hostile_text()) {
            rejected_or_ok(card_preview(&pb::GetCardPreviewRequest { job_id }))?;
        }

        #[test]
        fn a_printer_name_is_ours_unknown_or_invalid(name in hostile_text()) {
            match printer_name(&name, "printer-1") {
                Ok(()) => prop_assert_eq!(name, "printer-1"),
                Err(status) if status.code() == Code::NotFound => {
                    prop_assert!(!status.message().contains(&name) || name.is_empty());
                }
                other => rejected_or_ok(other)?,
            }
        }
    }
}
