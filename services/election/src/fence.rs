//! Fenced writes: every write a leader makes is one etcd transaction guarded
//! by `create_revision(leader_key) == epoch` of each fence it carries.

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse, TxnResponse};
use std::fmt;

/// A leader's epoch: the create revision of its leader key. It only grows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Epoch(pub u64);

impl fmt::Display for Epoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A leader key and the epoch it was won at.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Fence {
    /// Full etcd key of the leader key (election name + lease id).
    pub key: String,
    /// Create revision of `key` when it was won.
    pub epoch: Epoch,
}

impl Fence {
    /// The compare that holds only while this fence is current.
    pub fn guard(&self) -> Compare {
        let revision = i64::try_from(self.epoch.0).unwrap_or(i64::MAX);
        Compare::create_revision(self.key.as_str(), CompareOp::Equal, revision)
    }
}

/// Why a fenced transaction did not apply.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    /// The fence at this index (in the order given) no longer holds: its
    /// holder lost leadership.
    #[error("fence {0} lost: its leader key changed since its epoch")]
    FenceLost(usize),
    /// etcd could not be reached or refused the request.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
}

/// How a fenced transaction ended when the fences held.
#[derive(Debug)]
pub enum TxnOutcome {
    /// The conditions held and the operations were applied.
    Applied(TxnResponse),
    /// A condition other than the fences failed; nothing was applied.
    ConditionFailed,
}

/// A transaction under one or more fences, with optional conditions of its own.
/// Built as nested `if fence_0 then (if fence_1 then … (if conditions then ops))`
/// so the answer tells which fence was lost, or that only a condition failed.
pub struct FencedTxn {
    fences: Vec<Compare>,
    conditions: Vec<Compare>,
    ops: Vec<TxnOp>,
}

impl FencedTxn {
    /// A transaction guarded by `fences`.
    pub fn new<'a>(fences: impl IntoIterator<Item = &'a Fence>) -> Self {
        Self {
            fences: fences.into_iter().map(Fence::guard).collect(),
            conditions: Vec::new(),
            ops: Vec::new(),
        }
    }

    /// Adds a condition besides the fences.
    pub fn when(mut self, compare: Compare) -> Self {
        self.conditions.push(compare);
        self
    }

    /// Adds an operation applied when everything holds.
    pub fn op(mut self, op: TxnOp) -> Self {
        self.ops.push(op);
        self
    }

    /// Adds operations applied when everything holds.
    pub fn ops(mut self, ops: impl IntoIterator<Item = TxnOp>) -> Self {
        self.ops.extend(ops);
        self
    }

    /// Commits the transaction.
    pub async fn commit(self, client: &mut etcd_client::Client) -> Result<TxnOutcome, TxnError> {
        let levels = self.fences.len();
        let mut txn = Txn::new().when(self.conditions).and_then(self.ops);
        for fence in self.fences.into_iter().rev() {
            txn = Txn::new().when(vec![fence]).and_then(vec![TxnOp::txn(txn)]);
        }
        let mut response = crate::metrics::timed("txn", client.txn(txn)).await?;
        for level in 0..levels {
            if !response.succeeded() {
                return Err(TxnError::FenceLost(level));
            }
            response = match response.op_responses().into_iter().next() {
                Some(TxnOpResponse::Txn(inner)) => inner,
                _ => return Err(TxnError::FenceLost(level)),
            };
        }
        if response.succeeded() {
            Ok(TxnOutcome::Applied(response))
        } else {
            Ok(TxnOutcome::ConditionFailed)
        }
    }
}
