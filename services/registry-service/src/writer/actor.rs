//! The writer task: takes commands one at a time, keeps the epoch's cached
//! counters, and commits each change as a fenced transaction. Record
//! batches go through the lanes (`lanes.rs`), several in flight at once;
//! any other command first lets those settle, then runs alone.

use super::lanes::{LaneCount, Lanes};
use super::{Command, WriterConfig, batch};
use crate::error::{RegistryError, Result};
use crate::etcd::{ETCD_TIMEOUT, get};
use crate::keys::Keys;
use crate::sealing::MaterialKeys;
use ektp_election::{ElectionHandle, Epoch, Fence, FencedTxn, TxnError, TxnOutcome};
use ektp_proto::storage::Sequences;
use ektp_proto::v1::Stats;
use ektp_server::{AuditLog, Outbox};
use etcd_client::{Client, TxnResponse};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;
use tracing::warn;

/// What the writer caches for one epoch.
pub(super) struct State {
    pub(super) epoch: Epoch,
    /// The totals in `counters/stats` (residents recorded are counted per
    /// lane instead, in `lanes`).
    pub(super) stats: Stats,
    pub(super) sequences: Sequences,
    /// Residents recorded through each lane, as stored.
    pub(super) lanes: Vec<LaneCount>,
    /// Lease the idempotency records of this period are attached to.
    pub(super) retention_lease: Option<(i64, Instant)>,
    /// Where this epoch's events go.
    pub(super) outbox: Outbox,
}

pub(super) struct Actor {
    pub(super) client: Client,
    pub(super) keys: Keys,
    pub(super) election: ElectionHandle,
    /// Seals print material before it is written, opens it for claims.
    pub(super) sealer: Arc<MaterialKeys>,
    /// Seals the audit entries a batch commits with its change.
    pub(super) audit: AuditLog,
    pub(super) config: WriterConfig,
    pub(super) state: Option<State>,
}

/// Context one command runs in: the fence and the epoch's cached state.
pub(super) struct Ctx<'a> {
    pub(super) fence: Fence,
    pub(super) state: &'a mut State,
}

impl Actor {
    /// Takes commands until the handle is dropped. Records gather into the
    /// forming batch, which starts on a lane when it is full, or at once
    /// while no other batch is in flight (a lone record is never delayed);
    /// any other command first lets every record batch settle.
    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut lanes = Lanes::default();
        let mut forming = batch::Forming::default();
        // A command taken from the queue behind a batch of authorisations.
        let mut next = None;
        loop {
            if forming.ready(lanes.is_empty()) && !lanes.is_full() {
                self.start_records(&mut lanes, forming.take()).await;
                continue;
            }
            let command = match next.take() {
                Some(command) => command,
                None => tokio::select! {
                    biased;
                    settled = lanes.next_settled() => {
                        self.settle_records(&mut lanes, settled).await;
                        continue;
                    }
                    command = commands.recv(), if !forming.is_full() => match command {
                        Some(command) => command,
                        None => break,
                    },
                },
            };
            match command {
                Command::Record(r, reply) => forming.push((*r, reply)),
                other => {
                    if !forming.is_empty() {
                        self.start_records(&mut lanes, forming.take()).await;
                    }
                    self.drain(&mut lanes).await;
                    match other {
                        Command::Authorize(d, reply) => {
                            let (calls, after) = batch::authorizations((d, reply), &mut commands);
                            next = after;
                            self.run_authorizations(calls).await;
                        }
                        other => self.run_one(other).await,
                    }
                }
            }
        }
        while !forming.is_empty() {
            if lanes.is_full() {
                let settled = lanes.next_settled().await;
                self.settle_records(&mut lanes, settled).await;
            }
            self.start_records(&mut lanes, forming.take()).await;
        }
        self.drain(&mut lanes).await;
    }

    /// Commits one batch of authorisation decisions and answers its callers.
    async fn run_authorizations(&mut self, calls: Vec<batch::AuthorizeCall>) {
        let (batch, replies): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
        let result = self
            .with_ctx(|a, ctx| Box::pin(a.authorize_batch(ctx, batch)))
            .await;
        batch::answer(replies, result);
    }

    /// Runs one command in a transaction of its own.
    async fn run_one(&mut self, command: Command) {
        match command {
            // Records normally go through the lanes; one alone is decided here.
            Command::Record(r, reply) => self.record_alone(0, vec![(*r, reply)]).await,
            Command::Authorize(d, reply) => self.run_authorizations(vec![(d, reply)]).await,
            Command::Claim(call, max, reply) => {
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.claim(ctx, call, max)))
                    .await;
                let _ = reply.send(result);
            }
            Command::Reprint(r, reply) => {
                let result = self.with_ctx(|a, ctx| Box::pin(a.reprint(ctx, *r))).await;
                let _ = reply.send(result);
            }
            Command::Collect(h, reply) => {
                let result = self.with_ctx(|a, ctx| Box::pin(a.collect(ctx, h))).await;
                let _ = reply.send(result);
            }
            Command::SweepMaterial(after, reply) => {
                let retention = self.config.material_retention;
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.sweep_material(ctx, retention, after)))
                    .await;
                let _ = reply.send(result);
            }
            Command::Reseal(after, reply) => {
                let result = self.with_ctx(|a, ctx| Box::pin(a.reseal(ctx, after))).await;
                let _ = reply.send(result);
            }
            Command::SweepEvents(reply) => {
                let retention = self.config.event_retention;
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.sweep_events(ctx, retention)))
                    .await;
                let _ = reply.send(result);
            }
            Command::Cancel(id, reason, reply) => {
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.cancel(ctx, id, reason)))
                    .await;
                let _ = reply.send(result);
            }
            Command::Resolve(verdict, reply) => {
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.resolve(ctx, verdict)))
                    .await;
                let _ = reply.send(result);
            }
            Command::CompleteMany(call, c, reply) => {
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.complete_many(ctx, call, c)))
                    .await;
                let _ = reply.send(result);
            }
            Command::Complete(call, c, reply) => {
                let result = self
                    .with_ctx(|a, ctx| Box::pin(a.complete(ctx, call, c)))
                    .await;
                let _ = reply.send(result);
            }
        }
    }

    /// Runs one command under the current fence with the epoch's state,
    /// loading that state first when the epoch changed.
    pub(super) async fn with_ctx<T>(
        &mut self,
        run: impl for<'a> FnOnce(
            &'a Actor,
            Ctx<'a>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<T>> + Send + 'a>,
        >,
    ) -> Result<T> {
        let fence = self
            .election
            .role()
            .fence()
            .cloned()
            .ok_or(RegistryError::NotLeader)?;
        let mut state = match self.state.take() {
            Some(state) if state.epoch == fence.epoch => state,
            _ => self.load_state(fence.epoch).await?,
        };
        let epoch = fence.epoch;
        let result = run(
            self,
            Ctx {
                fence,
                state: &mut state,
            },
        )
        .await;
        match &result {
            Ok(_) => self.state = Some(state),
            Err(e) => self.forget_after(epoch, e),
        }
        result
    }

    /// After a change of `epoch` failed: the cached state is dropped (a
    /// transaction that timed out may still apply) and re-read before the
    /// next change; a lost fence steps down.
    pub(super) fn forget_after(&mut self, epoch: Epoch, error: &RegistryError) {
        self.state = None;
        if matches!(error, RegistryError::NotLeader) {
            warn!(%epoch, "a fenced write failed; stepping down");
            self.election.step_down(epoch);
        }
    }

    pub(super) async fn load_state(&self, epoch: Epoch) -> Result<State> {
        let stats = get::<Stats>(&self.client, &self.keys.stats()).await?;
        let sequences = get::<Sequences>(&self.client, &self.keys.sequences()).await?;
        let lanes = self.load_lanes().await?;
        Ok(State {
            epoch,
            stats: stats.map(|v| v.value).unwrap_or_default(),
            sequences: sequences.map(|v| v.value).unwrap_or_default(),
            lanes,
            retention_lease: None,
            outbox: Outbox::new(self.keys.prefix(), 'r', epoch.0),
        })
    }

    /// Commits a fenced transaction; `None` when a non-fence condition failed.
    pub(super) async fn commit(&self, txn: FencedTxn) -> Result<Option<TxnResponse>> {
        commit(self.client.clone(), txn).await
    }

    /// Commits a transaction whose conditions only fail if someone else
    /// wrote behind the leader's back.
    pub(super) async fn commit_expected(&self, txn: FencedTxn) -> Result<TxnResponse> {
        self.commit(txn).await?.ok_or_else(|| {
            RegistryError::Unavailable("a concurrent change was detected; retry".into())
        })
    }
}

/// Commits a fenced transaction on `client`; `None` when a non-fence
/// condition failed. Fence 0 is always this registry's own; a lost fence 1
/// is the print leader's, which makes the caller's epoch stale.
pub(super) async fn commit(mut client: Client, txn: FencedTxn) -> Result<Option<TxnResponse>> {
    let outcome = tokio::time::timeout(ETCD_TIMEOUT, txn.commit(&mut client))
        .await
        .map_err(|_| RegistryError::Unavailable("etcd transaction timed out".into()))?;
    match outcome {
        Ok(TxnOutcome::Applied(response)) => Ok(Some(response)),
        Ok(TxnOutcome::ConditionFailed) => Ok(None),
        Err(TxnError::FenceLost(0)) => Err(RegistryError::NotLeader),
        Err(TxnError::FenceLost(_)) => Err(RegistryError::StaleEpoch(
            "the print leader's fence no longer holds".into(),
        )),
        Err(e) => Err(e.into()),
    }
}
