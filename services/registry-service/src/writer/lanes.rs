//! Record batches in flight together. One batch at a time left etcd idle
//! between commits; with lanes, up to [`LANES`] record batches are in etcd's
//! hands at once, each on its own lane.
//!
//! Batches in flight must not depend on each other, because etcd may apply
//! them in any order. So a record batch writes no shared counter: each lane
//! counts the residents recorded through it in a key of its own
//! (`counters/stats-lanes/{lane}`, an `ektp.v1.Stats` with only `recorded`
//! set, summed into the totals when read), guarded by a compare on that
//! key's version, and a lane carries one batch at a time. Everything else a
//! batch writes is its own: new keys guarded by `create_revision == 0`, its
//! events and its audit entry under unique keys.
//!
//! A batch is committed optimistically, as if every record in it were new.
//! When one fails its compares (a retried request, a NIK already recorded,
//! or a record of the same NIK in another batch in flight), the writer lets
//! every other batch in flight settle first, then decides the failed ones one
//! at a time from what is stored — the same answers as if the requests had
//! come one after another. Any other command also waits for the lanes to
//! settle, and the cached state is only re-read while no batch is in flight.

use super::actor::{self, Actor};
use super::batch::{self, RecordCall, Reply};
use super::record::{Decided, NewResident};
use crate::error::{RegistryError, Result};
use crate::etcd::{decode, range};
use crate::keys::range_end;
use ektp_election::{Epoch, FencedTxn};
use ektp_proto::v1::{Resident, Stats};
use etcd_client::{Compare, CompareOp, TxnResponse};
use std::collections::VecDeque;
use tokio::task::JoinHandle;

/// Record batches in flight at most. Measured with the throughput benchmark
/// at 64 in flight, three alternating runs each: one lane (the earlier
/// one-commit-at-a-time writer) 5,500–5,800 records/s, four lanes
/// 6,200–6,700 (`tests/bench/README.md`).
pub(super) const LANES: usize = 4;

/// Residents recorded through one lane, as stored, and the version of the
/// lane's key (0 while it does not exist).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(super) struct LaneCount {
    pub(super) recorded: u64,
    pub(super) version: i64,
}

impl LaneCount {
    /// Adds to `txn` the lane's new count after `created` more records,
    /// guarded by the version this count was read or written at.
    pub(super) fn count(self, key: &str, created: u64, txn: FencedTxn) -> FencedTxn {
        let stored = Stats {
            recorded: self.recorded + created,
            ..Stats::default()
        };
        txn.when(Compare::version(key, CompareOp::Equal, self.version))
            .op(crate::etcd::put(key, &stored))
    }

    /// The count once a batch's transaction applied: one that created no
    /// record wrote no count (see `record.rs`), so leaves it as it was.
    pub(super) fn after(self, created: u64) -> Self {
        if created == 0 {
            return self;
        }
        Self {
            recorded: self.recorded + created,
            version: self.version + 1,
        }
    }
}

/// A record batch whose transaction is in etcd's hands.
pub(super) struct InFlight {
    lane: usize,
    epoch: Epoch,
    batch: Vec<NewResident>,
    replies: Vec<Reply<Result<Resident>>>,
    decided: Decided,
    commit: JoinHandle<Result<Option<TxnResponse>>>,
}

/// The record batches in flight, oldest first, and those whose optimistic
/// commit failed, waiting to be decided from what is stored.
#[derive(Default)]
pub(super) struct Lanes {
    in_flight: VecDeque<InFlight>,
    failed: Vec<InFlight>,
}

/// A batch whose commit ended, with how it ended.
pub(super) type Settled = (InFlight, Result<Option<TxnResponse>>);

impl Lanes {
    pub(super) fn is_empty(&self) -> bool {
        self.in_flight.is_empty()
    }

    pub(super) fn is_full(&self) -> bool {
        self.in_flight.len() >= LANES
    }

    /// A lane no batch in flight uses (callers check [`Lanes::is_full`]).
    fn free_lane(&self) -> usize {
        (0..LANES)
            .find(|lane| self.in_flight.iter().all(|f| f.lane != *lane))
            .unwrap_or_default()
    }

    /// The oldest batch in flight once its commit ended; never, while none is.
    pub(super) async fn next_settled(&mut self) -> Settled {
        let outcome = match self.in_flight.front_mut() {
            Some(oldest) => (&mut oldest.commit).await.unwrap_or_else(|e| {
                Err(RegistryError::Unavailable(format!(
                    "a record commit did not finish: {e}"
                )))
            }),
            None => std::future::pending().await,
        };
        match self.in_flight.pop_front() {
            Some(oldest) => (oldest, outcome),
            None => std::future::pending().await,
        }
    }
}

impl Actor {
    /// Plans a batch of records as all new and sends its transaction on a
    /// free lane; its callers are answered when it settles.
    pub(super) async fn start_records(&mut self, lanes: &mut Lanes, calls: Vec<RecordCall>) {
        let (batch, replies): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
        let Some(fence) = self.election.role().fence().cloned() else {
            batch::answer(replies, Err(RegistryError::NotLeader));
            return;
        };
        let stale = |actor: &Self| actor.state.as_ref().is_none_or(|s| s.epoch != fence.epoch);
        if stale(self) {
            // State is (re-)read only while nothing is in flight.
            self.drain(lanes).await;
        }
        if stale(self) {
            match self.load_state(fence.epoch).await {
                Ok(state) => self.state = Some(state),
                Err(e) => {
                    batch::answer(replies, Err(e));
                    return;
                }
            }
        }
        let Some(mut state) = self.state.take() else {
            return batch::answer(replies, Err(RegistryError::NotLeader));
        };
        let lane = lanes.free_lane();
        match self.plan_new(&fence, &mut state, lane, &batch).await {
            Ok((txn, decided)) => {
                self.state = Some(state);
                let commit = tokio::spawn(actor::commit(self.client.clone(), txn));
                lanes.in_flight.push_back(InFlight {
                    lane,
                    epoch: fence.epoch,
                    batch,
                    replies,
                    decided,
                    commit,
                });
            }
            Err(e) => {
                self.forget_after(fence.epoch, &e);
                batch::answer(replies, Err(e));
            }
        }
    }

    /// Handles a settled batch: answers it, or, when its compares failed,
    /// settles every other batch first and decides it from what is stored.
    pub(super) async fn settle_records(&mut self, lanes: &mut Lanes, settled: Settled) {
        self.settle_one(lanes, settled);
        if !lanes.failed.is_empty() {
            self.drain(lanes).await;
        }
    }

    /// Settles every batch in flight, then decides the failed ones in order.
    pub(super) async fn drain(&mut self, lanes: &mut Lanes) {
        while !lanes.in_flight.is_empty() {
            let settled = lanes.next_settled().await;
            self.settle_one(lanes, settled);
        }
        for failed in std::mem::take(&mut lanes.failed) {
            let calls = failed.batch.into_iter().zip(failed.replies).collect();
            self.record_alone(failed.lane, calls).await;
        }
    }

    fn settle_one(&mut self, lanes: &mut Lanes, (flight, outcome): Settled) {
        match outcome {
            Ok(Some(_)) => {
                if let Some(state) = self.state.as_mut().filter(|s| s.epoch == flight.epoch)
                    && let Some(count) = state.lanes.get_mut(flight.lane)
                {
                    *count = count.after(flight.decided.created);
                }
                self.audited(flight.decided.audit.as_ref());
                let answers = flight.decided.answers.into_iter().map(Ok).collect();
                batch::answer(flight.replies, Ok(answers));
            }
            Ok(None) => lanes.failed.push(flight),
            Err(e) => {
                self.forget_after(flight.epoch, &e);
                batch::answer(flight.replies, Err(e));
            }
        }
    }

    /// Decides a batch from what is stored and commits it alone on `lane`
    /// (nothing else in flight).
    pub(super) async fn record_alone(&mut self, lane: usize, calls: Vec<RecordCall>) {
        let (batch, replies): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
        let result = self
            .with_ctx(|a, ctx| Box::pin(a.record_decided(ctx, lane, batch)))
            .await
            .map(|answers| answers.into_iter().map(Ok).collect());
        batch::answer(replies, result);
    }

    /// Each lane's count as stored.
    pub(super) async fn load_lanes(&self) -> Result<Vec<LaneCount>> {
        let mut lanes = vec![LaneCount::default(); LANES];
        let prefix = self.keys.stats_lanes();
        for kv in range(&self.client, &prefix, range_end(&prefix), 0).await? {
            let lane = std::str::from_utf8(kv.key())
                .ok()
                .and_then(|key| key.strip_prefix(prefix.as_str()))
                .and_then(|lane| lane.parse::<usize>().ok());
            if let Some(count) = lane.and_then(|lane| lanes.get_mut(lane)) {
                *count = LaneCount {
                    recorded: decode::<Stats>(&kv)?.value.recorded,
                    version: kv.version(),
                };
            }
        }
        Ok(lanes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lane_count_moves_only_with_a_transaction_that_wrote_it() {
        let stored = LaneCount {
            recorded: 5,
            version: 2,
        };
        assert_eq!(stored.after(0), stored, "nothing created, nothing written");
        assert_eq!(
            stored.after(3),
            LaneCount {
                recorded: 8,
                version: 3
            }
        );
    }
}
