//! Authentication and authorisation: who the caller is (client certificate,
//! or a bearer token in development), which roles that identity holds, and
//! the one table saying which roles may call each RPC.

mod caller;
mod role;

pub use caller::{Caller, PURPOSE_HEADER, stated_purpose};
pub use role::Role;
