//! Authentication and authorisation: who the caller is (client certificate,
//! or a bearer token in development), which roles that identity holds, and
//! the one table saying which roles may call each RPC.

mod caller;
mod identity;
mod layer;
mod policy;
mod role;
mod table;

pub use caller::{Caller, PURPOSE_HEADER, stated_purpose};
pub use layer::{AuthGate, CALLER_HEADER, REFUSED};
pub use policy::{AuthArgs, Policy};
pub use role::Role;
pub use table::{Access, TABLE, access};
