//! Validation of the lifecycle requests: reprints, collection, cancellation.
//! Same rules as `validate`: every violation reported at once, nothing stored.

use crate::ids::JobId;
use crate::validate::{material_fields, resident_fields};
use crate::writer::{Handover, Reprint};
use ektp_nik::Nik;
use ektp_proto::v1 as pb;
use ektp_server::Violations;
use prost::Message;
use tonic::Status;

/// Checks a RequestReprintRequest.
pub fn reprint(request: pb::RequestReprintRequest) -> Result<Reprint, Status> {
    let mut v = Violations::new();
    crate::validate::request_id(&mut v, "request_id", &request.request_id, true);
    let digest = crate::writer::request_digest(&request.encode_to_vec());
    let nik = Nik::parse(&request.nik)
        .map_err(|e| v.add("nik", e.to_string()))
        .ok();
    let reason = match pb::PrintReason::try_from(request.reason) {
        Ok(
            r @ (pb::PrintReason::Lost | pb::PrintReason::Damaged | pb::PrintReason::DataChange),
        ) => Some(r),
        _ => {
            v.add("reason", "must be LOST, DAMAGED or DATA_CHANGE");
            None
        }
    };
    let reference = request.reference.trim().to_owned();
    if reason == Some(pb::PrintReason::Lost) && reference.is_empty() {
        v.add("reference", "a lost card needs the police report number");
    }
    v.require(
        reference.chars().count() <= 100 && !reference.chars().any(char::is_control),
        "reference",
        "at most 100 characters, no control characters",
    );
    let material = request.material;
    if let Some(material) = &material {
        material_fields(&mut v, material);
    }
    let changed = match (reason, request.resident) {
        (Some(pb::PrintReason::DataChange), Some(mut resident)) => {
            let changed = resident_fields(&mut v, &mut resident);
            if changed.is_some() && changed != nik {
                v.add(
                    "resident.nik",
                    "a data change keeps the NIK; NIKs are never reissued",
                );
            }
            v.require(
                material.is_some(),
                "material",
                "a data change needs new print material",
            );
            Some(resident)
        }
        (Some(pb::PrintReason::DataChange), None) => {
            v.add("resident", "a data change needs the corrected record");
            v.require(
                material.is_some(),
                "material",
                "a data change needs new print material",
            );
            None
        }
        (_, resident) => {
            v.require(
                resident.is_none(),
                "resident",
                "only a DATA_CHANGE carries a record",
            );
            None
        }
    };
    v.into_result()?;
    match (nik, reason) {
        (Some(nik), Some(reason)) => Ok(Reprint {
            request_id: request.request_id,
            digest,
            nik,
            reason,
            reference,
            changed,
            material,
        }),
        _ => Err(Status::invalid_argument("invalid reprint request")),
    }
}

/// Checks a RecordCollectionRequest.
pub fn collection(request: pb::RecordCollectionRequest) -> Result<Handover, Status> {
    let mut v = Violations::new();
    let nik = Nik::parse(&request.nik)
        .map_err(|e| v.add("nik", e.to_string()))
        .ok();
    let collector = pb::Collector::try_from(request.collected_by)
        .ok()
        .filter(|c| *c != pb::Collector::Unspecified);
    v.require(
        collector.is_some(),
        "collected_by",
        "must be RESIDENT or REPRESENTATIVE",
    );
    let name = request.representative_name.trim().to_owned();
    match collector {
        Some(pb::Collector::Representative) => {
            crate::validate::text(&mut v, "representative_name", &name, 100);
        }
        _ => v.require(
            name.is_empty(),
            "representative_name",
            "only for a representative",
        ),
    }
    crate::validate::text(&mut v, "proof_reference", &request.proof_reference, 100);
    v.into_result()?;
    match (nik, collector) {
        (Some(nik), Some(collector)) => Ok(Handover {
            nik,
            collector,
            representative_name: name,
            proof_reference: request.proof_reference.trim().to_owned(),
        }),
        _ => Err(Status::invalid_argument("invalid collection request")),
    }
}

/// Checks a CancelPrintJobRequest.
pub fn cancel(request: &pb::CancelPrintJobRequest) -> Result<(JobId, String), Status> {
    let mut v = Violations::new();
    let id = JobId::parse(&request.job_id);
    v.require(id.is_some(), "job_id", "a job id has 12 digits");
    crate::validate::text(&mut v, "reason", &request.reason, 500);
    v.into_result()?;
    let id = id.ok_or_else(|| Status::invalid_argument("invalid job id"))?;
    Ok((id, request.reason.trim().to_owned()))
}
