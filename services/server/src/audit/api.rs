//! The `ektp.v1.Audit` service: auditors list the trail through any replica.

use super::layout::Position;
use super::{AuditLog, Query, ReadError};
use crate::Violations;
use ektp_proto::v1::audit_server::Audit;
use ektp_proto::v1::{ListAuditEntriesRequest, ListAuditEntriesResponse};
use std::time::SystemTime;
use tonic::{Request, Response, Status};
use tracing::error;

/// Entries per page when the caller does not say.
const DEFAULT_PAGE: usize = 100;
/// Most entries per page.
const MAX_PAGE: usize = 1_000;

/// The Audit API over one node's [`AuditLog`].
pub struct AuditApi {
    log: AuditLog,
}

impl AuditApi {
    pub fn new(log: AuditLog) -> Self {
        Self { log }
    }
}

#[tonic::async_trait]
impl Audit for AuditApi {
    async fn list_audit_entries(
        &self,
        request: Request<ListAuditEntriesRequest>,
    ) -> Result<Response<ListAuditEntriesResponse>, Status> {
        let query = validate(request.into_inner())?;
        let page = self.log.list(&query).await.map_err(|e| match e {
            ReadError::Corrupt(name) => {
                error!(batch = %name, "undecodable audit batch");
                Status::internal("internal error")
            }
            other => {
                error!(error = %other, "audit trail unreadable");
                Status::unavailable("audit trail unavailable; retry")
            }
        })?;
        Ok(Response::new(ListAuditEntriesResponse {
            entries: page.entries,
            next_page_token: page.next.map(|p| p.token()).unwrap_or_default(),
        }))
    }
}

/// The query a request asks for, or INVALID_ARGUMENT naming every bad field.
fn validate(r: ListAuditEntriesRequest) -> Result<Query, Status> {
    let mut v = Violations::new();
    let nik = r.nik.trim().to_owned();
    v.require(
        nik.is_empty() || (nik.len() == 16 && nik.bytes().all(|b| b.is_ascii_digit())),
        "nik",
        "a NIK has 16 digits",
    );
    let caller = r.caller.trim().to_owned();
    v.require(caller.len() <= 256, "caller", "at most 256 characters");
    let mut time = |field: &str, t: Option<prost_types::Timestamp>| {
        let parsed = t.map(SystemTime::try_from).transpose();
        v.require(parsed.is_ok(), field, "not a valid timestamp");
        parsed.ok().flatten()
    };
    let since = time("since", r.since);
    let until = time("until", r.until);
    if let (Some(s), Some(u)) = (since, until) {
        v.require(s < u, "until", "must be after since");
    }
    let size = usize::try_from(r.page_size).ok();
    v.require(
        size.is_some_and(|s| s <= MAX_PAGE),
        "page_size",
        "must be 0-1000",
    );
    let after = (!r.page_token.is_empty()).then(|| Position::parse(&r.page_token));
    v.require(
        after.as_ref().is_none_or(Option::is_some),
        "page_token",
        "not a token this server issued",
    );
    v.into_result()?;
    Ok(Query {
        nik: (!nik.is_empty()).then_some(nik),
        caller: (!caller.is_empty()).then_some(caller),
        since,
        until,
        page_size: match size {
            Some(0) | None => DEFAULT_PAGE,
            Some(s) => s,
        },
        after: after.flatten(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::Code;

    #[test]
    fn an_empty_request_lists_everything_a_default_page_at_a_time() {
        let query = validate(ListAuditEntriesRequest::default()).unwrap();
        assert_eq!(query.page_size, DEFAULT_PAGE);
        assert!(query.nik.is_none() && query.caller.is_none() && query.after.is_none());
    }

    #[test]
    fn bad_filters_are_invalid_arguments() {
        for bad in [
            ListAuditEntriesRequest {
                nik: "123".into(),
                ..Default::default()
            },
            ListAuditEntriesRequest {
                page_size: 1_001,
                ..Default::default()
            },
            ListAuditEntriesRequest {
                page_token: "nope".into(),
                ..Default::default()
            },
            ListAuditEntriesRequest {
                since: Some(prost_types::Timestamp {
                    seconds: 10,
                    nanos: 0,
                }),
                until: Some(prost_types::Timestamp {
                    seconds: 5,
                    nanos: 0,
                }),
                ..Default::default()
            },
        ] {
            assert_eq!(
                validate(bad).err().map(|s| s.code()),
                Some(Code::InvalidArgument)
            );
        }
    }
}
