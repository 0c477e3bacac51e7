//! The leader's single writer. Every change goes through one task
//! (`actor.rs`) that owns the counters and sequences of the current epoch,
//! so a change and its counter updates are one fenced etcd transaction and
//! no two changes race. RecordResident and AuthorizePrint, the bulk paths,
//! are group-committed: the commands of one kind queued together share one
//! transaction (`batch.rs`); record batches also overlap, several in flight
//! at once on lanes of their own (`lanes.rs`); the rarer commands keep one
//! transaction each.
//!
//! On any error the cached counters are dropped and re-read before the next
//! change: a transaction that timed out may still have been applied.

mod actor;
mod authorize;
mod batch;
mod complete;
mod lanes;
mod lifecycle;
mod material;
mod queue;
mod record;
mod retention;
mod settle;

use crate::error::{RegistryError, Result};
use crate::keys::Keys;
use crate::sealing::MaterialKeys;
use actor::{Actor, Ctx, State};
use ektp_election::{ElectionHandle, Fence};
use ektp_proto::v1::{AuthorizationOutcome, PrintJob, PrintOutcome, Resident};
use ektp_server::AuditLog;
use etcd_client::Client;
use std::sync::Arc;
use std::time::Duration;
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

/// The current time as a protobuf timestamp.
pub(crate) fn now() -> prost_types::Timestamp {
    prost_types::Timestamp::from(std::time::SystemTime::now())
}
