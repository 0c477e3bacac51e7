//! What a node is at a given moment, as published by the election task.

use crate::fence::{Epoch, Fence};

/// The leader as seen by a follower: where to forward writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaderInfo {
    /// The leader's advertised gRPC address (the election value).
    pub address: String,
    /// The leader's epoch.
    pub epoch: Epoch,
}

/// A node's role in its service's election.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Role {
    /// Not connected to etcd yet, or between leases: cannot take over right now.
    Starting,
    /// Holds a live lease and campaigns; `leader` is the current leader if known.
    Follower { leader: Option<LeaderInfo> },
    /// Leads at the fence's epoch.
    Leader { fence: Fence, address: String },
}

impl Role {
    /// The fence to write under, when leading.
    pub fn fence(&self) -> Option<&Fence> {
        match self {
            Role::Leader { fence, .. } => Some(fence),
            _ => None,
        }
    }

    /// Whether this node leads.
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    /// Whether the node holds a live lease and could take over (readiness).
    pub fn is_ready(&self) -> bool {
        !matches!(self, Role::Starting)
    }

    /// The current leader's address and epoch, whoever it is.
    pub fn leader(&self) -> Option<LeaderInfo> {
        match self {
            Role::Starting => None,
            Role::Follower { leader } => leader.clone(),
            Role::Leader { fence, address } => Some(LeaderInfo {
                address: address.clone(),
                epoch: fence.epoch,
            }),
        }
    }
}
