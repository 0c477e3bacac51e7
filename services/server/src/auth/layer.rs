//! The gate that establishes who is calling and refuses what the
//! caller's roles do not allow, before any handler runs.

use super::identity::of_certificate;
use super::table::{Access, access};
use super::{Caller, Policy, Role};
use crate::gate::Gate;
use std::sync::Arc;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tracing::warn;

/// Calls refused, by code.
pub const REFUSED: &str = "ektp_auth_refused_total";

/// Metadata key a replica sets when forwarding a caller's request to its
/// leader: the original caller's identity. Trusted only from replicas.
pub const CALLER_HEADER: &str = "x-ektp-caller";

/// Authenticates and authorises every request against a [`Policy`], putting
/// the [`Caller`] into the request's extensions.
#[derive(Clone, Debug)]
pub struct AuthGate {
    policy: Arc<Policy>,
}

impl AuthGate {
    /// A gate enforcing `policy`.
    pub fn new(policy: Arc<Policy>) -> Self {
        Self { policy }
    }
}

impl Gate for AuthGate {
    type Pass = ();

    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        match authorise(&self.policy, request) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                Ok(())
            }
            Err(status) => {
                metrics::counter!(REFUSED, "code" => code_label(&status)).increment(1);
                Err(status)
            }
        }
    }
}

fn code_label(status: &Status) -> &'static str {
    match status.code() {
        tonic::Code::Unauthenticated => "unauthenticated",
        _ => "permission_denied",
    }
}

/// The caller of `request`, or why it is refused. `Ok(None)`: an open
/// method (health) called without an identity.
fn authorise<B>(policy: &Policy, request: &http::Request<B>) -> Result<Option<Caller>, Status> {
    let method = request.uri().path();
    let access = access(method);
    if !policy.enabled {
        let role = match access {
            Access::Roles(roles) => roles.first().copied().unwrap_or(Role::Operator),
            _ => Role::Operator,
        };
        return Ok(Some(Caller {
            identity: "anonymous".into(),
            role,
            authenticated: false,
        }));
    }
    let peer = peer_identity(policy, request);
    let Some(peer) = peer else {
        return match access {
            Access::Anyone => Ok(None),
            _ => Err(Status::unauthenticated(
                "no identity: present a client certificate (or a bearer token)",
            )),
        };
    };
    let identity = forwarded_caller(policy, &peer, request).unwrap_or(peer);
    let roles = policy.roles_of(&identity);
    let role = match access {
        Access::Anyone | Access::Authenticated => roles.first().copied().unwrap_or(Role::Operator),
        Access::Unknown => return Err(refuse(&identity, method, "is not an ektp method")),
        Access::Roles(allowed) => match allowed.iter().find(|r| roles.contains(r)) {
            Some(role) => *role,
            None => return Err(refuse(&identity, method, &needs(allowed))),
        },
    };
    Ok(Some(Caller {
        identity,
        role,
        authenticated: true,
    }))
}

fn needs(allowed: &[Role]) -> String {
    let names: Vec<&str> = allowed.iter().map(|r| r.as_str()).collect();
    format!("needs role {}", names.join(" or "))
}

fn refuse(identity: &str, method: &str, why: &str) -> Status {
    warn!(identity, method, why, "call refused");
    Status::permission_denied(format!("{identity} may not call {method}: {why}"))
}

/// The identity proven by the connection's client certificate, else by a
/// bearer token.
fn peer_identity<B>(policy: &Policy, request: &http::Request<B>) -> Option<String> {
    let from_cert = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()
        .and_then(TlsConnectInfo::peer_certs)
        .and_then(|certs| certs.first().and_then(|c| of_certificate(c.as_ref())));
    if from_cert.is_some() {
        return from_cert;
    }
    let header = request.headers().get(http::header::AUTHORIZATION)?;
    let token = header.to_str().ok()?.strip_prefix("Bearer ")?;
    policy.identity_of_token(token.trim()).map(str::to_owned)
}

/// The original caller of a request a replica forwarded to this leader;
/// `None` when the peer is not a replica or forwards nobody.
fn forwarded_caller<B>(policy: &Policy, peer: &str, request: &http::Request<B>) -> Option<String> {
    let original = request.headers().get(CALLER_HEADER)?.to_str().ok()?;
    if !policy.roles_of(peer).contains(&Role::Replica) {
        warn!(identity = peer, "caller header from a non-replica ignored");
        return None;
    }
    Some(original.to_owned())
}
