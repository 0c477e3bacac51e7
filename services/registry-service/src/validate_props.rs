//! Hostile input for every registry request's validation: arbitrary and
//! extreme strings (empty, 1 MiB, control characters, NUL, unicode),
//! out-of-range enum values, missing sub-messages and huge repeated fields.
//! Whatever arrives, validation never panics and answers either Ok or
//! INVALID_ARGUMENT with at least one field violation.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::validate;
use crate::validate_lifecycle;
use ektp_proto::v1 as pb;
use ektp_server::Violations;
use proptest::prelude::*;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// A NIK that passes every rule, so the other fields get their turn.
const GOOD_NIK: &str = "3527014507900001";

/// Empty, short, huge (up to 1 MiB), control characters, NUL, unicode, and
/// NIK-like digit runs.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        Just(GOOD_NIK.to_owned()),
        Just("\0".to_owned()),
        "\\PC{0,60}",
        "[\\x00-\\x1f\\x7f]{1,20}",
        "[0-9]{0,20}",
        any::<String>(),
        (0usize..=1 << 20, any::<char>()).prop_map(|(n, c)| c.to_string().repeat(n)),
    ]
    .boxed()
}

/// Any enum value: known ones, zero, negative and far out of range.
fn enum_value() -> BoxedStrategy<i32> {
    prop_oneof![0i32..=12, Just(i32::MIN), Just(i32::MAX), any::<i32>()].boxed()
}

fn bytes() -> BoxedStrategy<Vec<u8>> {
    prop_oneof![
        Just(Vec::new()),
        Just(vec![0xFF, 0xD8, 0xFF]),
        Just(b"\x89PNG".to_vec()),
        proptest::collection::vec(any::<u8>(), 0..256),
        (0usize..=1 << 20).prop_map(|n| vec![0xFF; n]),
    ]
    .boxed()
}

fn address() -> BoxedStrategy<Option<pb::Address>> {
    proptest::option::of(
        (text(), text(), text(), text(), text(), text(), text()).prop_map(
            |(street, rt, rw, village, district, regency, province)| pb::Address {
                street,
                rt,
                rw,
                village,
                district,
                regency,
                province,
            },
        ),
    )
    .boxed()
}

fn resident() -> BoxedStrategy<pb::Resident> {
    (
        (text(), text(), text(), text(), text()),
        (
            enum_value(),
            enum_value(),
            enum_value(),
            enum_value(),
            enum_value(),
        ),
        address(),
        // Output-only repeated field, huge: must be cleared or ignored.
        proptest::collection::vec(text(), 0..4),
        0usize..=100_000,
    )
        .prop_map(
            |(
                (nik, full_name, birth_place, birth_date, occupation),
                (sex, blood_type, religion, marital_status, citizenship),
                address,
                mut warnings,
                extra,
            )| {
                warnings.extend(std::iter::repeat_n(String::from("w"), extra));
                pb::Resident {
                    nik,
                    full_name,
                    birth_place,
                    birth_date,
                    sex,
                    blood_type,
                    address,
                    religion,
                    marital_status,
                    occupation,
                    citizenship,
                    warnings,
                    ..pb::Resident::default()
                }
            },
        )
        .boxed()
}

fn material() -> BoxedStrategy<Option<pb::PrintMaterial>> {
    proptest::option::of(
        (bytes(), bytes()).prop_map(|(photo, signature)| pb::PrintMaterial { photo, signature }),
    )
    .boxed()
}

/// Ok, or INVALID_ARGUMENT naming at least one field.
fn ok_or_invalid<T>(result: Result<T, Status>) -> Result<(), TestCaseError> {
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
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn record_resident(
        request_id in text(),
        resident in proptest::option::of(resident()),
        material in material(),
    ) {
        let request = pb::RecordResidentRequest { request_id, resident, material };
        ok_or_invalid(validate::record(request))?;
    }

    #[test]
    fn authorize_print(nik in text(), outcome in enum_value(), reason in text(), request_id in text()) {
        let request = pb::AuthorizePrintRequest { nik, outcome, reason, request_id };
        ok_or_invalid(validate::authorize(&request))?;
    }

    #[test]
    fn resolve_in_doubt_job(job_id in text(), printed in any::<bool>(), note in text()) {
        let request = pb::ResolveInDoubtJobRequest { job_id, printed, note };
        ok_or_invalid(validate::resolve(&request))?;
    }

    #[test]
    fn lone_nik_job_id_and_paging(value in text(), size in any::<i32>(), token in text()) {
        ok_or_invalid(validate::nik_only("nik", &value))?;
        ok_or_invalid(validate::job_id("job_id", &value))?;
        ok_or_invalid(validate::page(size, &token, crate::JobId::parse))?;
    }

    #[test]
    fn print_fence_and_card_serial(
        fence in proptest::option::of((text(), any::<u64>())),
        serial in text(),
    ) {
        let fence = fence.map(|(leader_key, epoch)| pb::Fence { leader_key, epoch });
        let mut v = Violations::new();
        let checked = validate::print_fence(&mut v, fence.as_ref(), "/ektp/test/print/leader");
        let card = validate::card_serial(&mut v, "card_serial", &serial);
        let all_good = checked.is_some() && card.is_some();
        let result = v.into_result();
        prop_assert_eq!(result.is_ok(), all_good);
        ok_or_invalid(result)?;
    }

    #[test]
    fn request_reprint(
        nik in text(),
        reason in enum_value(),
        reference in text(),
        request_id in text(),
        resident in proptest::option::of(resident()),
        material in material(),
    ) {
        let request = pb::RequestReprintRequest { nik, reason, reference, request_id, resident, material };
        ok_or_invalid(validate_lifecycle::reprint(request))?;
    }

    #[test]
    fn record_collection(
        nik in text(),
        collected_by in enum_value(),
        representative_name in text(),
        proof_reference in text(),
    ) {
        let request = pb::RecordCollectionRequest { nik, collected_by, representative_name, proof_reference };
        ok_or_invalid(validate_lifecycle::collection(request))?;
    }

    #[test]
    fn cancel_print_job(job_id in text(), reason in text()) {
        let request = pb::CancelPrintJobRequest { job_id, reason };
        ok_or_invalid(validate_lifecycle::cancel(&request))?;
    }

    #[test]
    fn verify_resident(
        nik in text(),
        full_name in text(),
        birth_date in text(),
        birth_place in text(),
        address in address(),
    ) {
        let request = pb::VerifyResidentRequest { nik, full_name, birth_date, birth_place, address, linearizable: false };
        ok_or_invalid(crate::grpc::verification::check_claim(&request))?;
    }
}

/// Messages describe the problem; they never repeat what was sent.
#[test]
fn violations_never_echo_personal_data() {
    let name = "Siti Rahayu\u{7}";
    let request = pb::RecordResidentRequest {
        request_id: "r-1".into(),
        resident: Some(pb::Resident {
            nik: "3527014507900000".into(),
            full_name: name.into(),
            ..pb::Resident::default()
        }),
        material: None,
    };
    let Err(status) = validate::record(request) else {
        panic!("an invalid record was accepted");
    };
    let details = format!("{status:?} {:?}", status.get_details_bad_request());
    assert!(!details.contains("352701450790"), "{details}");
    assert!(!details.contains("Siti"), "{details}");
}
