//! Batched completions (`CompleteJobs`): many print outcomes settled in as
//! few transactions as etcd's 128-operation limit allows, each fenced on both
//! leaders' epochs, each card checked and guarded exactly as a single
//! `CompleteJob` is (a single completion is a batch of one). One result per
//! completion; only a lost fence or etcd failing fails the whole batch —
//! chunks already committed stay, and a retry finds them done.

use super::settle::{Change, Completion, Settle, already_completed, check_pair};
use super::{Actor, Ctx, PrintCall};
use crate::error::{RegistryError, Result};
use crate::etcd::{Versioned, decode, put};
use ektp_election::{Fence, FencedTxn};
use ektp_proto::v1::{Card, PrintJob, PrintJobState, Stats};
use etcd_client::TxnOp;
use std::collections::HashSet;

/// etcd's default limit on operations, and on conditions, per transaction level.
const MAX_TXN_OPS: usize = 128;

/// A completion whose job and card passed the checks, ready to settle.
struct Ready {
    index: usize,
    job: Versioned<PrintJob>,
    card: Versioned<Card>,
    settle: Settle,
}

/// Settlements gathered for one transaction, and the stats after them.
struct Chunk {
    change: Change,
    settled: Vec<(usize, PrintJob)>,
    stats: Stats,
}

impl Chunk {
    fn new(stats: Stats) -> Self {
        Self {
            change: Change::default(),
            settled: Vec::new(),
            stats,
        }
    }

    /// Whether `more` still fits, with the one stats put every chunk adds.
    fn fits(&self, more: &Change) -> bool {
        self.change.ops.len() + more.ops.len() < MAX_TXN_OPS
            && self.change.compares.len() + more.compares.len() <= MAX_TXN_OPS
    }

    fn add(&mut self, change: Change, index: usize, job: PrintJob, stats: Stats) {
        self.change.compares.extend(change.compares);
        self.change.ops.extend(change.ops);
        self.settled.push((index, job));
        self.stats = stats;
    }
}

type Results = Vec<Option<Result<PrintJob>>>;

impl Actor {
    /// Settles `done` under the registry's and the print leader's fences; a
    /// result per completion, in order.
    pub(super) async fn complete_many(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        done: Vec<Completion>,
    ) -> Result<Vec<Result<PrintJob>>> {
        let Ctx { fence, state } = ctx;
        let mut results: Results = done.iter().map(|_| None).collect();
        let mut pending: Vec<(usize, Completion)> = done.into_iter().enumerate().collect();
        // Rounds: a second completion of the same job or resident waits for
        // the next round, which reads what the first one wrote.
        while !pending.is_empty() {
            let (ready, later) = self.check(pending, &mut results).await?;
            let jobs: Vec<_> = ready.iter().map(|r| (&r.job.value, &r.settle)).collect();
            let arounds = self.arounds(&jobs).await?;
            let mut chunk = Chunk::new(state.stats);
            for (r, around) in ready.into_iter().zip(arounds) {
                let mut stats = chunk.stats;
                let settled = self.settle(
                    (r.job, r.card),
                    around,
                    r.settle,
                    call.fence.epoch.0,
                    &mut stats,
                    &mut state.outbox,
                );
                match settled {
                    Err(e) => results[r.index] = Some(Err(e)),
                    Ok((change, job)) => {
                        if !chunk.fits(&change) {
                            let next = Chunk::new(chunk.stats);
                            let full = std::mem::replace(&mut chunk, next);
                            state.stats = self
                                .commit_chunk([&fence, &call.fence], full, &mut results)
                                .await?;
                        }
                        chunk.add(change, r.index, job, stats);
                    }
                }
            }
            state.stats = self
                .commit_chunk([&fence, &call.fence], chunk, &mut results)
                .await?;
            pending = later;
        }
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(RegistryError::Internal("no result".into()))))
            .collect())
    }

    /// Reads every pending job and card (batched) and sorts the completions:
    /// answered now (not found, wrong state, or already done — a retry),
    /// ready to settle, or left for the next round.
    async fn check(
        &self,
        pending: Vec<(usize, Completion)>,
        results: &mut Results,
    ) -> Result<(Vec<Ready>, Vec<(usize, Completion)>)> {
        let reads = pending
            .iter()
            .flat_map(|(_, c)| {
                [
                    TxnOp::get(self.keys.job(c.job_id), None),
                    TxnOp::get(self.keys.card(&c.serial), None),
                ]
            })
            .collect();
        let values = self.read_many(reads).await?;
        let mut ready = Vec::new();
        let mut later = Vec::new();
        let mut seen = HashSet::new();
        for ((index, done), pair) in pending.into_iter().zip(values.chunks(2)) {
            let (job, card) = match pair {
                [Some(job), Some(card)] => match (decode::<PrintJob>(job), decode::<Card>(card)) {
                    (Ok(job), Ok(card)) => (job, card),
                    // Corrupt data refuses this completion, not the batch.
                    (Err(e), _) | (_, Err(e)) => {
                        results[index] = Some(Err(e));
                        continue;
                    }
                },
                [None, _] => {
                    results[index] = Some(Err(RegistryError::NotFound("print job".into())));
                    continue;
                }
                _ => {
                    results[index] = Some(Err(RegistryError::NotFound("card serial".into())));
                    continue;
                }
            };
            if let Err(e) = check_pair(&job.value, &card.value) {
                results[index] = Some(Err(e));
                continue;
            }
            if job.value.state() != PrintJobState::Printing
                || job.value.card_serial != done.serial.as_str()
            {
                results[index] = Some(
                    if already_completed(&job.value, &card.value, done.outcome) {
                        Ok(job.value)
                    } else {
                        Err(RegistryError::FailedPrecondition(format!(
                            "the job is {} and its card {}; it cannot complete as {}",
                            job.value.state().as_str_name(),
                            card.value.state().as_str_name(),
                            done.outcome.as_str_name()
                        )))
                    },
                );
                continue;
            }
            let settle = match Settle::of(done.outcome, done.detail.clone()) {
                Ok(settle) => settle,
                Err(e) => {
                    results[index] = Some(Err(e));
                    continue;
                }
            };
            let first_of_job = seen.insert(job.value.job_id.clone());
            let first_of_resident = seen.insert(format!("nik:{}", job.value.nik));
            if !(first_of_job && first_of_resident) {
                later.push((index, done));
                continue;
            }
            ready.push(Ready {
                index,
                job,
                card,
                settle,
            });
        }
        Ok((ready, later))
    }

    /// Commits one chunk under `fences` and answers its completions; the
    /// stats as stored.
    async fn commit_chunk(
        &self,
        fences: [&Fence; 2],
        chunk: Chunk,
        results: &mut Results,
    ) -> Result<Stats> {
        if chunk.settled.is_empty() {
            return Ok(chunk.stats);
        }
        let txn = chunk
            .change
            .into_txn(FencedTxn::new(fences))
            .op(put(&self.keys.stats(), &chunk.stats));
        self.commit_expected(txn).await?;
        for (index, job) in chunk.settled {
            results[index] = Some(Ok(job));
        }
        Ok(chunk.stats)
    }
}
