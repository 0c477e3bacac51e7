//! gRPC error details shared by both services: `BadRequest` field violations
//! for bad input, and `ErrorInfo{reason: "NOT_LEADER"}` naming the leader.

use std::collections::HashMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

/// `ErrorInfo.reason` when a follower cannot forward a write to the leader.
pub const NOT_LEADER: &str = "NOT_LEADER";
/// `ErrorInfo.reason` when a caller's fence (epoch) no longer holds.
pub const STALE_EPOCH: &str = "STALE_EPOCH";
const ERROR_DOMAIN: &str = "ektp";
const LEADER_METADATA_KEY: &str = "leader";

/// Field violations collected while validating one request.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    /// No violations yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `field` is invalid, and why.
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }

    /// Records a violation unless `ok` holds.
    pub fn require(&mut self, ok: bool, field: &str, description: &str) {
        if !ok {
            self.add(field, description);
        }
    }

    /// How many violations were found so far.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing was found wrong.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when nothing was found wrong, else INVALID_ARGUMENT with a
    /// `BadRequest` listing every violation.
    pub fn into_result(self) -> Result<(), Status> {
        let Some(first) = self.0.first() else {
            return Ok(());
        };
        let message = format!("invalid {}: {}", first.field, first.description);
        Err(Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_bad_request(self.0),
        ))
    }
}

/// UNAVAILABLE with `ErrorInfo{reason: NOT_LEADER}` and the leader's address
/// (when known) in its metadata, so a client can retry there.
pub fn not_leader(leader: Option<&str>) -> Status {
    let mut metadata = HashMap::new();
    if let Some(address) = leader {
        metadata.insert(LEADER_METADATA_KEY.to_owned(), address.to_owned());
    }
    let message = match leader {
        Some(address) => format!("not the leader; the leader is at {address}"),
        None => "not the leader, and no leader is known right now".to_owned(),
    };
    Status::with_error_details(
        Code::Unavailable,
        message,
        ErrorDetails::with_error_info(NOT_LEADER, ERROR_DOMAIN, metadata),
    )
}

/// FAILED_PRECONDITION with `ErrorInfo{reason: STALE_EPOCH}`: the caller
/// lost leadership and must step down.
pub fn stale_epoch(message: impl Into<String>) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        message,
        ErrorDetails::with_error_info(STALE_EPOCH, ERROR_DOMAIN, HashMap::new()),
    )
}

/// Whether a status says the caller's epoch is stale.
pub fn is_stale_epoch(status: &Status) -> bool {
    status.code() == Code::FailedPrecondition
        && status
            .get_details_error_info()
            .is_some_and(|info| info.reason == STALE_EPOCH)
}

/// The leader address carried by a NOT_LEADER status, if any.
pub fn leader_address_of(status: &Status) -> Option<String> {
    let info = status.get_details_error_info()?;
    if info.reason != NOT_LEADER {
        return None;
    }
    info.metadata.get(LEADER_METADATA_KEY).cloned()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn violations_become_invalid_argument_with_every_field() {
        let mut v = Violations::new();
        v.add("resident.nik", "a nik has 16 digits");
        v.require(false, "request_id", "required");
        let status = v.into_result().unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        let fields: Vec<_> = status
            .get_details_bad_request()
            .unwrap()
            .field_violations
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["resident.nik", "request_id"]);
    }

    #[test]
    fn not_leader_carries_the_leader_address() {
        let status = not_leader(Some("http://127.0.0.1:50052"));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(
            leader_address_of(&status).as_deref(),
            Some("http://127.0.0.1:50052")
        );
    }
}
