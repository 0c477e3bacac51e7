//! Settling a claimed card: the print leader's completions (CompleteJob) and
//! an operator's verdict on an in-doubt job (ResolveInDoubtJob). Every
//! outcome leaves the serial ACTIVE, SPOILED or VOID — or, when nobody can
//! tell, the job IN_DOUBT with its serial still ALLOCATED until an operator
//! decides.

use super::{Actor, Ctx, PrintCall, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{Versioned, get, put};
use crate::ids::{CardSerial, JobId};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::v1::{
    Card, CardState, EventKind, PrintJob, PrintJobState, PrintOutcome, PrintReason, Resident,
    ResidentStatus, Stats,
};
use ektp_server::Outbox;
use etcd_client::{Compare, CompareOp, TxnOp};

/// How one claimed attempt ended, as the print leader reports it.
pub struct Completion {
    pub job_id: JobId,
    pub serial: CardSerial,
    pub outcome: PrintOutcome,
    pub detail: String,
}

/// An operator's verdict on an IN_DOUBT job.
pub struct Verdict {
    pub job_id: JobId,
    pub printed: bool,
    pub note: String,
}

/// What becomes of a card.
enum Settle {
    /// Printed; with an operator's note when an operator said so.
    Printed(Option<String>),
    Spoiled(String),
    Void(String),
    InDoubt(String),
}

impl Actor {
    pub(super) async fn complete(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        done: Completion,
    ) -> Result<PrintJob> {
        let Ctx { fence, state } = ctx;
        let (job, card) = self.job_and_card(done.job_id, &done.serial).await?;
        if job.value.state() != PrintJobState::Printing
            || job.value.card_serial != done.serial.as_str()
        {
            return if already_completed(&job.value, &card.value, done.outcome) {
                Ok(job.value)
            } else {
                Err(RegistryError::FailedPrecondition(format!(
                    "the job is {} and its card {}; it cannot complete as {}",
                    job.value.state().as_str_name(),
                    card.value.state().as_str_name(),
                    done.outcome.as_str_name()
                )))
            };
        }
        let settle = match done.outcome {
            PrintOutcome::Printed => Settle::Printed(None),
            PrintOutcome::Spoiled => Settle::Spoiled(done.detail),
            PrintOutcome::NotPrinted => Settle::Void(done.detail),
            PrintOutcome::Unknown => Settle::InDoubt(done.detail),
            PrintOutcome::Unspecified => {
                return Err(RegistryError::Invalid {
                    field: "outcome",
                    description: "an outcome is required".into(),
                });
            }
        };
        let mut stats = state.stats;
        let txn = FencedTxn::new([&fence, &call.fence]);
        let (txn, settled) = self
            .settle(
                txn,
                (job, card),
                settle,
                call.fence.epoch.0,
                &mut stats,
                &mut state.outbox,
            )
            .await?;
        self.commit_expected(txn).await?;
        state.stats = stats;
        Ok(settled)
    }

    pub(super) async fn resolve(&self, ctx: Ctx<'_>, verdict: Verdict) -> Result<PrintJob> {
        let Ctx { fence, state } = ctx;
        let job = get::<PrintJob>(&self.client, &self.keys.job(verdict.job_id))
            .await?
            .ok_or_else(|| RegistryError::NotFound("print job".into()))?;
        let serial = CardSerial::parse(&job.value.card_serial);
        if job.value.state() != PrintJobState::InDoubt {
            return Err(RegistryError::FailedPrecondition(format!(
                "the job is {}; only IN_DOUBT jobs can be resolved",
                job.value.state().as_str_name()
            )));
        }
        let serial = serial
            .ok_or_else(|| RegistryError::Internal("in-doubt job without a serial".into()))?;
        let (job, card) = self.job_and_card(verdict.job_id, &serial).await?;
        let settle = if verdict.printed {
            Settle::Printed(Some(format!(
                "resolved as printed by an operator: {}",
                verdict.note
            )))
        } else {
            Settle::Void(format!("resolved by an operator: {}", verdict.note))
        };
        let mut stats = state.stats;
        // An operator's verdict needs only this registry's fence: the print
        // leader no longer holds anything of this job.
        let (txn, settled) = self
            .settle(
                FencedTxn::new([&fence]),
                (job, card),
                settle,
                0,
                &mut stats,
                &mut state.outbox,
            )
            .await?;
        let resolved = state.outbox.append(
            EventKind::Resolved,
            &settled.nik,
            &settled.job_id,
            &serial.to_string(),
            &format!("printed={}: {}", verdict.printed, verdict.note),
        );
        self.commit_expected(txn.op(resolved)).await?;
        state.stats = stats;
        Ok(settled)
    }

    /// A job and the card of `serial`, checked to belong together.
    async fn job_and_card(
        &self,
        id: JobId,
        serial: &CardSerial,
    ) -> Result<(Versioned<PrintJob>, Versioned<Card>)> {
        let job = get::<PrintJob>(&self.client, &self.keys.job(id))
            .await?
            .ok_or_else(|| RegistryError::NotFound("print job".into()))?;
        let card = get::<Card>(&self.client, &self.keys.card(serial))
            .await?
            .ok_or_else(|| RegistryError::NotFound("card serial".into()))?;
        if card.value.job_id != job.value.job_id {
            return Err(RegistryError::FailedPrecondition(
                "the card serial belongs to another job".into(),
            ));
        }
        Ok((job, card))
    }

    /// Adds to `txn` the changes that settle the job's current card, guarded
    /// by the revisions read, and returns the job as it will be stored.
    async fn settle(
        &self,
        txn: FencedTxn,
        (job, card): (Versioned<PrintJob>, Versioned<Card>),
        settle: Settle,
        settled_by: u64,
        stats: &mut Stats,
        outbox: &mut Outbox,
    ) -> Result<(FencedTxn, PrintJob)> {
        let id = JobId::parse(&job.value.job_id)
            .ok_or_else(|| RegistryError::Internal("malformed job id".into()))?;
        let serial = CardSerial::parse(&card.value.serial)
            .ok_or_else(|| RegistryError::Internal("malformed card serial".into()))?;
        let (job_key, card_key) = (self.keys.job(id), self.keys.card(&serial));
        let mut txn = txn
            .when(Compare::mod_revision(
                job_key.as_str(),
                CompareOp::Equal,
                job.mod_revision,
            ))
            .when(Compare::mod_revision(
                card_key.as_str(),
                CompareOp::Equal,
                card.mod_revision,
            ));
        let (mut job, mut card) = (job.value, card.value);
        let at = now();
        job.update_time = Some(at);
        job.settled_epoch = settled_by;
        card.update_time = Some(at);
        let requeue = |job: &mut PrintJob| {
            job.state = PrintJobState::Queued as i32;
            job.card_serial.clear();
            TxnOp::put(self.keys.queued(id), job.nik.as_str(), None)
        };
        match settle {
            Settle::Printed(note) => {
                if let Some(note) = note {
                    job.last_error = note;
                }
                txn = self.activate(txn, &job, &serial, stats, outbox).await?;
                job.state = PrintJobState::Printed as i32;
                card.state = CardState::Active as i32;
                stats.printed += 1;
            }
            Settle::Spoiled(detail) => {
                txn = txn.op(outbox.append(
                    EventKind::Spoiled,
                    &job.nik,
                    &job.job_id,
                    serial.as_str(),
                    &detail,
                ));
                card.state = CardState::Spoiled as i32;
                job.failed_attempts += 1;
                job.last_error = detail;
                stats.spoiled += 1;
                if job.failed_attempts >= self.config.max_print_attempts {
                    job.state = PrintJobState::Failed as i32;
                    stats.print_failed += 1;
                    txn = txn.op(outbox.append(
                        EventKind::Failed,
                        &job.nik,
                        &job.job_id,
                        "",
                        "too many failed attempts",
                    ));
                    let first_card = job.reason() == PrintReason::FirstCard;
                    if first_card {
                        stats.backlog = stats.backlog.saturating_sub(1);
                    }
                    txn = self
                        .update_resident(txn, &job.nik, |resident| {
                            resident.open_job_id.clear();
                            // A failed replacement leaves the old card ACTIVE.
                            if first_card {
                                resident.status = ResidentStatus::PrintFailed as i32;
                            }
                            resident.update_time = Some(at);
                            Ok(())
                        })
                        .await?;
                } else {
                    txn = txn.op(requeue(&mut job));
                }
            }
            Settle::Void(detail) => {
                txn = txn.op(outbox.append(
                    EventKind::Voided,
                    &job.nik,
                    &job.job_id,
                    serial.as_str(),
                    &detail,
                ));
                card.state = CardState::Void as i32;
                job.last_error = detail;
                txn = txn.op(requeue(&mut job));
            }
            Settle::InDoubt(detail) => {
                txn = txn.op(outbox.append(
                    EventKind::InDoubt,
                    &job.nik,
                    &job.job_id,
                    serial.as_str(),
                    &detail,
                ));
                job.state = PrintJobState::InDoubt as i32;
                job.last_error = detail;
                txn = txn.op(TxnOp::put(self.keys.in_doubt(id), job.nik.as_str(), None));
            }
        }
        if job.state() != PrintJobState::InDoubt {
            txn = txn.op(TxnOp::delete(self.keys.in_doubt(id), None));
        }
        let txn = txn
            .op(put(&job_key, &job))
            .op(put(&card_key, &card))
            .op(put(&self.keys.stats(), stats));
        Ok((txn, job))
    }

    /// Adds to `txn` what makes `serial` the resident's ACTIVE card: the
    /// resident PRINTED with the new card, and — for a replacement — the
    /// previous card REVOKED in the same transaction. A first card for a
    /// resident who already has an ACTIVE one is refused (one ACTIVE card per NIK).
    async fn activate(
        &self,
        txn: FencedTxn,
        job: &PrintJob,
        serial: &CardSerial,
        stats: &mut Stats,
        outbox: &mut Outbox,
    ) -> Result<FencedTxn> {
        let key = self.keys.resident(&stored_nik(job.nik.as_bytes())?);
        let stored = get::<Resident>(&self.client, &key)
            .await?
            .ok_or_else(|| RegistryError::Internal("job without its resident".into()))?;
        let mut resident = stored.value;
        let mut txn = txn.when(Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            stored.mod_revision,
        ));
        let first_card = job.reason() == PrintReason::FirstCard;
        if let Some(previous) = CardSerial::parse(&resident.active_card_serial) {
            if first_card {
                return Err(RegistryError::FailedPrecondition(
                    "the resident already has an ACTIVE card".into(),
                ));
            }
            let card_key = self.keys.card(&previous);
            let old = get::<Card>(&self.client, &card_key).await?.ok_or_else(|| {
                RegistryError::Internal("active card missing from the ledger".into())
            })?;
            let mut revoked = old.value;
            revoked.state = CardState::Revoked as i32;
            revoked.update_time = Some(now());
            txn = txn
                .when(Compare::mod_revision(
                    card_key.as_str(),
                    CompareOp::Equal,
                    old.mod_revision,
                ))
                .op(put(&card_key, &revoked));
        }
        if first_card {
            stats.backlog = stats.backlog.saturating_sub(1);
        }
        txn = txn.op(outbox.append(
            EventKind::Printed,
            &job.nik,
            &job.job_id,
            serial.as_str(),
            "",
        ));
        resident.status = ResidentStatus::Printed as i32;
        resident.active_card_serial = serial.to_string();
        resident.open_job_id.clear();
        resident.collection = None;
        resident.update_time = Some(now());
        Ok(txn.op(put(&key, &resident)))
    }

    /// Adds a change of the job's resident to `txn`, guarded by the revision read.
    async fn update_resident(
        &self,
        txn: FencedTxn,
        nik: &str,
        change: impl FnOnce(&mut Resident) -> Result<()>,
    ) -> Result<FencedTxn> {
        let key = self.keys.resident(&stored_nik(nik.as_bytes())?);
        let stored = get::<Resident>(&self.client, &key)
            .await?
            .ok_or_else(|| RegistryError::Internal("job without its resident".into()))?;
        let mut resident = stored.value;
        change(&mut resident)?;
        Ok(txn
            .when(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                stored.mod_revision,
            ))
            .op(put(&key, &resident)))
    }
}

/// Whether a repeated completion matches what its serial already became, so
/// a retry after a lost answer succeeds.
fn already_completed(job: &PrintJob, card: &Card, outcome: PrintOutcome) -> bool {
    match outcome {
        PrintOutcome::Printed => card.state() == CardState::Active,
        PrintOutcome::Spoiled => card.state() == CardState::Spoiled,
        PrintOutcome::NotPrinted => card.state() == CardState::Void,
        PrintOutcome::Unknown => {
            job.state() == PrintJobState::InDoubt && job.card_serial == card.serial
        }
        PrintOutcome::Unspecified => false,
    }
}

/// A NIK the registry stored itself; failing to parse means corrupt data.
pub(super) fn stored_nik(raw: &[u8]) -> Result<Nik> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| Nik::parse(s).ok())
        .ok_or_else(|| RegistryError::Internal("malformed nik stored in etcd".into()))
}
