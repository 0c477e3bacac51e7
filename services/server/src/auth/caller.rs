//! The caller of a request, as the auth layer established it, and the
//! purpose a caller states for reading or changing a person's data.

use super::Role;
use tonic::Request;

/// Metadata key carrying the caller's stated purpose.
pub const PURPOSE_HEADER: &str = "x-ektp-purpose";

/// Who is calling, put into every request's extensions by the auth layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The identity: a client certificate's common name, a development
    /// token's identity, or `anonymous` when authentication is off.
    pub identity: String,
    /// The role under which the called method was allowed.
    pub role: Role,
    /// Whether the identity was proven (certificate or token). `false` only
    /// when authentication is off (development), where every caller is
    /// `anonymous` and holds every role.
    pub authenticated: bool,
}

impl Caller {
    /// The caller of `request`; `None` only outside the auth layer (unit tests).
    pub fn of<T>(request: &Request<T>) -> Option<&Caller> {
        request.extensions().get::<Caller>()
    }
}

/// The purpose the caller stated in `x-ektp-purpose`, if any (trimmed; empty
/// counts as none).
pub fn stated_purpose<T>(request: &Request<T>) -> Option<String> {
    let value = request
        .metadata()
        .get(PURPOSE_HEADER)?
        .to_str()
        .ok()?
        .trim();
    (!value.is_empty()).then(|| value.to_owned())
}
