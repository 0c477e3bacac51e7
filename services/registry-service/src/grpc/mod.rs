//! gRPC adapters: validate → call the store or writer → convert. Followers
//! serve reads themselves and forward writes to the leader. Calls about one
//! person are audited before they are answered ([`audited`]).

mod audited;
mod print_queue;
mod registry;
pub(crate) mod verification;

pub use audited::Auditor;
pub use print_queue::PrintQueueApi;
pub use registry::RegistryApi;

pub use ektp_server::Forwarder;
