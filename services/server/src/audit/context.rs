//! Who is asking and why, taken from a request before it runs (or is
//! forwarded): the caller the auth layer established (or `anonymous` when it
//! established none), and the purpose stated in `x-ektp-purpose`.

use crate::{Caller, PURPOSE_HEADER, Role, Violations, stated_purpose};
use ektp_proto::v1::AuditEntry;
use tonic::{Code, Request, Status};

/// Longest stated purpose, in characters.
const MAX_PURPOSE_CHARS: usize = 200;
/// The purpose recorded when authentication is off and none was stated.
pub const UNSTATED: &str = "unstated";

/// One audited method.
#[derive(Clone, Copy, Debug)]
pub struct Method {
    /// Full gRPC path, `/ektp.v1.Registry/GetResident`.
    pub path: &'static str,
    /// The purpose the method itself implies when none is stated (the
    /// print node's calls: `printing`).
    pub implied_purpose: Option<&'static str>,
}

/// The caller of `request`, or `anonymous` (unauthenticated) under the
/// first role the role table allows `path` when no auth layer put one there.
pub fn caller_or_anonymous<T>(request: &Request<T>, path: &str) -> Caller {
    Caller::of(request).cloned().unwrap_or_else(|| Caller {
        identity: "anonymous".to_owned(),
        role: match crate::access(path) {
            crate::Access::Roles(roles) => roles.first().copied().unwrap_or(Role::Operator),
            _ => Role::Operator,
        },
        authenticated: false,
    })
}

/// What an audit entry of one call records besides its NIK and outcome.
#[derive(Clone, Debug)]
pub struct AuditContext {
    caller: Caller,
    method: &'static str,
    /// The purpose recorded.
    purpose: String,
}

impl AuditContext {
    /// The context of `request`: INVALID_ARGUMENT (a violation on `purpose`)
    /// when an authenticated caller in an outside role states no purpose, or
    /// an over-long one. Run it before anything else happens.
    pub fn of<T>(request: &Request<T>, method: Method) -> Result<Self, Status> {
        let caller = caller_or_anonymous(request, method.path);
        let stated = stated_purpose(request);
        let mut v = Violations::new();
        if let Some(purpose) = &stated {
            v.require(
                purpose.chars().count() <= MAX_PURPOSE_CHARS,
                "purpose",
                "at most 200 characters",
            );
        }
        let inside = matches!(caller.role, Role::PrintNode | Role::Replica);
        if caller.authenticated && !inside && stated.is_none() {
            v.add(
                "purpose",
                format!("state why this person's data is needed in the {PURPOSE_HEADER} metadata"),
            );
        }
        v.into_result()?;
        let purpose = stated
            .or_else(|| method.implied_purpose.map(str::to_owned))
            .unwrap_or_else(|| UNSTATED.to_owned());
        Ok(Self {
            caller,
            method: method.path,
            purpose,
        })
    }

    /// The caller recorded.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The purpose recorded.
    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The entry for one person; time and node are stamped at commit.
    pub fn entry(&self, nik: &str, outcome: Code) -> AuditEntry {
        AuditEntry {
            time: None,
            caller: self.caller.identity.clone(),
            role: self.caller.role.as_str().to_owned(),
            method: self.method.to_owned(),
            nik: nik.to_owned(),
            purpose: self.purpose.clone(),
            outcome: ektp_proto::code_name(outcome).to_owned(),
            node: String::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GET: Method = Method {
        path: "/ektp.v1.Registry/GetResident",
        implied_purpose: None,
    };

    fn request(caller: Option<Caller>, purpose: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        if let Some(p) = purpose {
            request.metadata_mut().insert(
                PURPOSE_HEADER,
                tonic::metadata::MetadataValue::try_from(p).unwrap(),
            );
        }
        request
    }

    fn signed_in(role: Role) -> Caller {
        Caller {
            identity: "clerk-1".into(),
            role,
            authenticated: true,
        }
    }

    #[test]
    fn without_an_auth_layer_the_caller_is_anonymous_under_the_methods_first_role() {
        let ctx = AuditContext::of(&request(None, None), GET).unwrap();
        let entry = ctx.entry("3527014107900001", Code::NotFound);
        assert_eq!(
            (entry.caller.as_str(), entry.role.as_str()),
            ("anonymous", "operator")
        );
        assert_eq!(
            (entry.purpose.as_str(), entry.outcome.as_str()),
            ("unstated", "NOT_FOUND")
        );
        assert_eq!(entry.method, GET.path);
    }

    #[test]
    fn an_authenticated_outside_caller_must_state_a_purpose() {
        let status = AuditContext::of(&request(Some(signed_in(Role::Operator)), None), GET)
            .err()
            .unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        let ctx = AuditContext::of(
            &request(Some(signed_in(Role::Operator)), Some(" complaint 17 ")),
            GET,
        )
        .unwrap();
        assert_eq!(ctx.purpose(), "complaint 17");
    }

    #[test]
    fn the_print_node_needs_no_purpose_and_gets_the_implied_one() {
        let claim = Method {
            implied_purpose: Some("printing"),
            ..GET
        };
        let ctx =
            AuditContext::of(&request(Some(signed_in(Role::PrintNode)), None), claim).unwrap();
        assert_eq!(ctx.purpose(), "printing");
    }

    #[test]
    fn an_over_long_purpose_is_refused() {
        let long = "x".repeat(201);
        let status = AuditContext::of(&request(None, Some(&long)), GET)
            .err()
            .unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
}
