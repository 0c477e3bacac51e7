//! The one table saying which roles may call each RPC. Anything not listed
//! here is refused to every identity (PERMISSION_DENIED), except health
//! checks (anyone) and reflection (any authenticated caller).

use super::Role::{self, *};

/// Who may call a method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, even without an identity: load balancers and probes.
    Anyone,
    /// Any authenticated caller, whatever its roles.
    Authenticated,
    /// Callers holding one of these roles.
    Roles(&'static [Role]),
    /// Not an ektp method: refused.
    Unknown,
}

/// Methods by full gRPC path, and the roles allowed to call each.
pub const TABLE: &[(&str, &[Role])] = &[
    ("/ektp.v1.Registry/RecordResident", &[Registrar]),
    ("/ektp.v1.Registry/GetResident", &[Operator, PrintNode]),
    ("/ektp.v1.Registry/ListResidents", &[Operator]),
    ("/ektp.v1.Registry/AuthorizePrint", &[Central]),
    ("/ektp.v1.Registry/RequestReprint", &[Operator]),
    ("/ektp.v1.Registry/GetPrintJob", &[Operator, PrintNode]),
    ("/ektp.v1.Registry/ListPrintJobs", &[Operator, PrintNode]),
    ("/ektp.v1.Registry/CancelPrintJob", &[Operator]),
    ("/ektp.v1.Registry/ResolveInDoubtJob", &[Operator]),
    ("/ektp.v1.Registry/RecordCollection", &[Operator]),
    ("/ektp.v1.Registry/VerifyResident", &[Verifier]),
    ("/ektp.v1.Registry/VerifyResidents", &[Verifier]),
    (
        "/ektp.v1.Registry/GetStats",
        &[Operator, Central, PrintNode],
    ),
    ("/ektp.v1.Registry/WatchEvents", &[Central]),
    ("/ektp.v1.PrintQueue/ClaimJobs", &[PrintNode]),
    ("/ektp.v1.PrintQueue/CompleteJob", &[PrintNode]),
    ("/ektp.v1.PrintQueue/CompleteJobs", &[PrintNode]),
    ("/ektp.v1.PrintControl/GetStatus", &[Operator]),
    ("/ektp.v1.PrintControl/AddBlankStock", &[Operator]),
    ("/ektp.v1.PrintControl/PausePrinter", &[Operator]),
    ("/ektp.v1.PrintControl/ResumePrinter", &[Operator]),
    ("/ektp.v1.PrintControl/GetCardPreview", &[Operator]),
    ("/ektp.v1.Audit/ListAuditEntries", &[Auditor]),
];

/// Who may call the method at `path`.
pub fn access(path: &str) -> Access {
    if path.starts_with("/grpc.health.v1.Health/") {
        return Access::Anyone;
    }
    if path.starts_with("/grpc.reflection.") {
        return Access::Authenticated;
    }
    TABLE
        .iter()
        .find(|(method, _)| *method == path)
        .map_or(Access::Unknown, |(_, roles)| Access::Roles(roles))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_method_names_at_least_one_role_and_appears_once() {
        for (i, (method, roles)) in TABLE.iter().enumerate() {
            assert!(!roles.is_empty(), "{method} allows nobody");
            assert!(
                TABLE[i + 1..].iter().all(|(m, _)| m != method),
                "{method} is listed twice"
            );
        }
    }

    #[test]
    fn health_is_open_reflection_needs_an_identity_and_unknown_methods_are_refused() {
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Anyone);
        assert_eq!(
            access("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Access::Authenticated
        );
        assert_eq!(access("/ektp.v1.Registry/DropEverything"), Access::Unknown);
        assert_eq!(
            access("/ektp.v1.Registry/VerifyResidents"),
            Access::Roles(&[Verifier])
        );
    }
}
