//! The roles a caller can hold, and which RPC each role may call.

use std::fmt;
use std::str::FromStr;

/// What a caller is allowed to do. A caller may hold several roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Records residents (a registration desk).
    Registrar,
    /// Authorises printing and follows the event feed (the national centre).
    Central,
    /// Claims and settles print jobs (a print-service node).
    PrintNode,
    /// Verifies claims about residents, nothing else (another agency).
    Verifier,
    /// Reads, reprints, collection, cancel, resolve, print control (office staff).
    Operator,
    /// Reads the audit trail.
    Auditor,
    /// Another replica of the same service, forwarding a caller's request to
    /// its leader; the original caller travels with the request.
    Replica,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Role; 7] = [
        Role::Registrar,
        Role::Central,
        Role::PrintNode,
        Role::Verifier,
        Role::Operator,
        Role::Auditor,
        Role::Replica,
    ];

    /// The role's name in configuration, metadata and audit entries.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Registrar => "registrar",
            Role::Central => "central",
            Role::PrintNode => "print-node",
            Role::Verifier => "verifier",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Replica => "replica",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}"))
    }
}
