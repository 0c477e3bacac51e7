//! Leader election through etcd for the ektp services. One task per process
//! owns the lease, its keep-alive and the campaign, and publishes the node's
//! [`Role`] on a `tokio::sync::watch` channel; everything else reacts to that
//! channel. A leader's epoch is its leader key's create revision, and every
//! write a leader makes is an etcd transaction guarded by that revision
//! ([`Fence`]), so a paused or partitioned ex-leader cannot write.

mod campaign;
mod fence;
mod lease_clock;
mod metrics;
mod role;

pub use campaign::{ElectionConfig, ElectionHandle, current_leader, spawn};
pub use fence::{Epoch, Fence, FencedTxn, TxnError, TxnOutcome};
pub use lease_clock::LeaseClock;
pub use metrics::{describe as describe_metrics, timed as timed_etcd};
pub use role::{LeaderInfo, Role};
