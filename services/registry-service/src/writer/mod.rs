//! The leader's single writer. Every change goes through one task that owns
//! the counters and sequences of the current epoch, so a change and its
//! counter updates are one fenced etcd transaction and no two changes race.
//! RecordResident and AuthorizePrint, the bulk paths, are group-committed:
//! the commands of one kind queued together share one transaction
//! (`batch.rs`); the rarer commands keep one transaction each.
//!
//! On any error the cached counters are dropped and re-read before the next
//! change: a transaction that timed out may still have been applied.

mod authorize;
mod batch;
mod complete;
mod lifecycle;
mod material;
mod queue;
mod record;
mod retention;
mod settle;

use crate::error::{RegistryError, Result};
use crate::etcd::{ETCD_TIMEOUT, get};
use crate::keys::Keys;
use crate::sealing::MaterialKeys;
use ektp_election::{ElectionHandle, Epoch, Fence, FencedTxn, TxnError, TxnOutcome};
use ektp_proto::storage::Sequences;
use ektp_proto::v1::{AuthorizationOutcome, PrintJob, PrintOutcome, Resident, Stats};
use ektp_server::{AuditLog, Outbox};
use etcd_client::{Client, TxnResponse};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

pub use lifecycle::{Handover, Reprint};
pub use queue::Claimed;
pub use record::{NewResident, request_digest};
pub use settle::Completion;

/// Writer settings.
#[derive(Clone, Debug)]
pub struct WriterConfig {
    /// Failed print attempts after which a job is FAILED.
    pub max_print_attempts: u32,
    /// How long idempotency records are kept.
    pub request_retention: Duration,
    /// How long outbox events are kept.
    pub event_retention: Duration,
    /// How long print material is kept after its card was collected.
    pub material_retention: Duration,
}

/// The print leader's part of a print-queue call.
#[derive(Clone, Debug)]
pub struct PrintCall {
    pub fence: Fence,
    pub printer: String,
    /// Blank stock is low: first cards go before replacements.
    pub first_cards_first: bool,
}

enum Command {
    /// Answered `Err` when the batch failed (no audit entry committed),
    /// else with the record's answer (its entry committed with the batch).
    Record(Box<NewResident>, oneshot::Sender<Result<Result<Resident>>>),
    Authorize(authorize::Decision, oneshot::Sender<Result<Resident>>),
    Claim(PrintCall, u32, oneshot::Sender<Result<Vec<Claimed>>>),
    Complete(
        PrintCall,
        settle::Completion,
        oneshot::Sender<Result<PrintJob>>,
    ),
    CompleteMany(
        PrintCall,
        Vec<settle::Completion>,
        oneshot::Sender<Result<Vec<Result<PrintJob>>>>,
    ),
    Resolve(settle::Verdict, oneshot::Sender<Result<PrintJob>>),
    Reprint(Box<lifecycle::Reprint>, oneshot::Sender<Result<PrintJob>>),
    Collect(lifecycle::Handover, oneshot::Sender<Result<Resident>>),
    Cancel(crate::ids::JobId, String, oneshot::Sender<Result<PrintJob>>),
    SweepEvents(oneshot::Sender<Result<usize>>),
    SweepMaterial(String, oneshot::Sender<Result<(usize, String)>>),
    Reseal(String, oneshot::Sender<Result<material::ResealPage>>),
}

/// Handle to the writer task.
#[derive(Clone)]
pub struct Writer {
    commands: mpsc::Sender<Command>,
}

impl Writer {
    /// Starts the writer task.
    pub fn spawn(
        client: Client,
        keys: Keys,
        election: ElectionHandle,
        sealer: Arc<MaterialKeys>,
        audit: AuditLog,
        config: WriterConfig,
    ) -> Self {
        let (commands, rx) = mpsc::channel(1024);
        let actor = Actor {
            client,
            keys,
            election,
            sealer,
            audit,
            config,
            state: None,
        };
        tokio::spawn(actor.run(rx));
        Self { commands }
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(make(reply))
            .await
            .map_err(|_| RegistryError::Unavailable("writer stopped".into()))?;
        answer
            .await
            .map_err(|_| RegistryError::Unavailable("writer stopped".into()))?
    }

    /// Records a resident (idempotent by request id) and, in the same
    /// transaction, its audit `entry`
    /// (outcome filled in). `Err`: the batch failed and no entry was
    /// committed; `Ok(answer)`: the answer's entry is committed (none for an
    /// INVALID_ARGUMENT answer).
    pub async fn record_audited(
        &self,
        mut resident: NewResident,
        entry: ektp_proto::v1::AuditEntry,
    ) -> Result<Result<Resident>> {
        resident.audit = Some(entry);
        self.ask(|reply| Command::Record(Box::new(resident), reply))
            .await
    }

    /// Applies the central system's decision on a record.
    pub async fn authorize(
        &self,
        nik: ektp_nik::Nik,
        outcome: AuthorizationOutcome,
        reason: String,
    ) -> Result<Resident> {
        let decision = authorize::Decision {
            nik,
            outcome,
            reason,
        };
        self.ask(|reply| Command::Authorize(decision, reply)).await
    }

    /// Claims up to `max` queued jobs for the print leader.
    pub async fn claim(&self, call: PrintCall, max: u32) -> Result<Vec<Claimed>> {
        self.ask(|reply| Command::Claim(call, max, reply)).await
    }

    /// Records how a claimed job's attempt ended.
    pub async fn complete(
        &self,
        call: PrintCall,
        job_id: crate::ids::JobId,
        serial: crate::ids::CardSerial,
        outcome: PrintOutcome,
        detail: String,
    ) -> Result<PrintJob> {
        let completion = settle::Completion {
            job_id,
            serial,
            outcome,
            detail,
        };
        self.ask(|reply| Command::Complete(call, completion, reply))
            .await
    }

    /// Records how many claimed jobs' attempts ended: a result per completion.
    pub async fn complete_many(
        &self,
        call: PrintCall,
        completions: Vec<settle::Completion>,
    ) -> Result<Vec<Result<PrintJob>>> {
        self.ask(|reply| Command::CompleteMany(call, completions, reply))
            .await
    }
}

impl Writer {
    /// Drops one page of expired outbox events (leader only); how many.
    pub async fn sweep_events(&self) -> Result<usize> {
        self.ask(Command::SweepEvents).await
    }

    /// Keeps applying retention (events, print material) while this node leads.
    pub fn spawn_retention(&self, election: ElectionHandle, every: Duration) {
        let writer = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut material_cursor = String::new();
            loop {
                tick.tick().await;
                if !election.role().is_leader() {
                    continue;
                }
                if let Err(e) = writer.sweep_events().await {
                    warn!(error = %e, "event retention sweep failed");
                }
                // A bounded number of pages per tick; the scan resumes next tick.
                for _ in 0..50 {
                    let (reply, answer) = oneshot::channel();
                    if writer
                        .commands
                        .send(Command::SweepMaterial(material_cursor.clone(), reply))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    match answer.await {
                        Ok(Ok((_, next))) => {
                            material_cursor = next;
                            if material_cursor.is_empty() {
                                break;
                            }
                        }
                        Ok(Err(e)) => {
                            warn!(error = %e, "print material retention sweep failed");
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        });
    }

    /// Queues a replacement card.
    pub async fn reprint(&self, reprint: lifecycle::Reprint) -> Result<PrintJob> {
        self.ask(|reply| Command::Reprint(Box::new(reprint), reply))
            .await
    }

    /// Records the handover of a printed card.
    pub async fn collect(&self, handover: lifecycle::Handover) -> Result<Resident> {
        self.ask(|reply| Command::Collect(handover, reply)).await
    }

    /// Cancels a QUEUED or IN_DOUBT job.
    pub async fn cancel(&self, job_id: crate::ids::JobId, reason: String) -> Result<PrintJob> {
        self.ask(|reply| Command::Cancel(job_id, reason, reply))
            .await
    }

    /// Applies an operator's verdict on an IN_DOUBT job.
    pub async fn resolve(
        &self,
        job_id: crate::ids::JobId,
        printed: bool,
        note: String,
    ) -> Result<PrintJob> {
        let verdict = settle::Verdict {
            job_id,
            printed,
            note,
        };
        self.ask(|reply| Command::Resolve(verdict, reply)).await
    }
}

/// What the writer caches for one epoch.
struct State {
    epoch: Epoch,
    stats: Stats,
    sequences: Sequences,
    /// Lease the idempotency records of this period are attached to.
    retention_lease: Option<(i64, Instant)>,
    /// Where this epoch's events go.
    outbox: Outbox,
}

struct Actor {
    client: Client,
    keys: Keys,
    election: ElectionHandle,
    /// Seals print material before it is written, opens it for claims.
    sealer: Arc<MaterialKeys>,
    /// Seals the audit entries a batch commits with its change.
    audit: AuditLog,
    config: WriterConfig,
    state: Option<State>,
}

/// Context one command runs in: the fence and the epoch's cached state.
struct Ctx<'a> {
    fence: Fence,
    state: &'a mut State,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        // A command taken from the queue that did not fit the batch before it.
        let mut next = None;
        loop {
            let command = match next.take() {
                Some(command) => command,
                None => match commands.recv().await {
                    Some(command) => command,
                    None => return,
                },
            };
            match command {
                Command::Record(r, reply) => {
                    let (calls, after) = batch::records((*r, reply), &mut commands);
                    next = after;
                    self.run_records(calls).await;
                }
                Command::Authorize(d, reply) => {
                    let (calls, after) = batch::authorizations((d, reply), &mut commands);
                    next = after;
                    self.run_authorizations(calls).await;
                }
                other => self.run_one(other).await,
            }
        }
    }

    /// Commits one batch of records and answers its callers.
    async fn run_records(&mut self, calls: Vec<batch::RecordCall>) {
        let (batch, replies): (Vec<_>, Vec<_>) = calls.into_iter().unzip();
        let result = self
            .with_ctx(|a, ctx| Box::pin(a.record_batch(ctx, batch)))
            .await
            .map(|answers| answers.into_iter().map(Ok).collect());
        batch::answer(replies, result);
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
            Command::Record(r, reply) => self.run_records(vec![(*r, reply)]).await,
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
    async fn with_ctx<T>(
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
            Err(RegistryError::NotLeader) => {
                warn!(%epoch, "a fenced write failed; stepping down");
                self.election.step_down(epoch);
            }
            Err(_) => {}
        }
        result
    }

    async fn load_state(&self, epoch: Epoch) -> Result<State> {
        let stats = get::<Stats>(&self.client, &self.keys.stats()).await?;
        let sequences = get::<Sequences>(&self.client, &self.keys.sequences()).await?;
        Ok(State {
            epoch,
            stats: stats.map(|v| v.value).unwrap_or_default(),
            sequences: sequences.map(|v| v.value).unwrap_or_default(),
            retention_lease: None,
            outbox: Outbox::new(self.keys.prefix(), 'r', epoch.0),
        })
    }

    /// Commits a fenced transaction; `None` when a non-fence condition failed.
    /// Fence 0 is always this registry's own; a lost fence 1 is the print
    /// leader's, which makes the caller's epoch stale.
    async fn commit(&self, txn: FencedTxn) -> Result<Option<TxnResponse>> {
        let mut client = self.client.clone();
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

    /// Commits a transaction whose conditions only fail if someone else
    /// wrote behind the leader's back.
    async fn commit_expected(&self, txn: FencedTxn) -> Result<TxnResponse> {
        self.commit(txn).await?.ok_or_else(|| {
            RegistryError::Unavailable("a concurrent change was detected; retry".into())
        })
    }
}

/// The current time as a protobuf timestamp.
pub(crate) fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}
