//! Settling a claimed card: the print leader's completions (CompleteJob) and
//! an operator's verdict on an in-doubt job (ResolveInDoubtJob). Every
//! outcome leaves the serial ACTIVE, SPOILED or VOID — or, when nobody can
//! tell, the job IN_DOUBT with its serial still ALLOCATED until an operator
//! decides.

use super::{Actor, Ctx, PrintCall, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{Versioned, decode, get, put};
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
pub(super) enum Settle {
    /// Printed; with an operator's note when an operator said so.
    Printed(Option<String>),
    Spoiled(String),
    Void(String),
    InDoubt(String),
}

/// What settling a card reads besides its job and card: the resident (when
/// the card printed or the job may fail) and, for a replacement that
/// printed, the ACTIVE card it replaces.
#[derive(Default)]
pub(super) struct Around {
    pub resident: Option<Versioned<Resident>>,
    pub previous: Option<Versioned<Card>>,
}

/// The conditions and operations settling one card adds to a transaction.
#[derive(Default)]
pub(super) struct Change {
    pub compares: Vec<Compare>,
    pub ops: Vec<TxnOp>,
}

impl Change {
    fn when(&mut self, key: &str, mod_revision: i64) {
        self.compares
            .push(Compare::mod_revision(key, CompareOp::Equal, mod_revision));
    }

    /// `txn` with this change added.
    pub fn into_txn(self, mut txn: FencedTxn) -> FencedTxn {
        for compare in self.compares {
            txn = txn.when(compare);
        }
        txn.ops(self.ops)
    }
}

impl Settle {
    /// The outcome a print leader reported, as a settlement.
    pub(super) fn of(outcome: PrintOutcome, detail: String) -> Result<Self> {
        match outcome {
            PrintOutcome::Printed => Ok(Settle::Printed(None)),
            PrintOutcome::Spoiled => Ok(Settle::Spoiled(detail)),
            PrintOutcome::NotPrinted => Ok(Settle::Void(detail)),
            PrintOutcome::Unknown => Ok(Settle::InDoubt(detail)),
            PrintOutcome::Unspecified => Err(RegistryError::Invalid {
                field: "outcome",
                description: "an outcome is required".into(),
            }),
        }
    }

    /// Whether settling needs the resident's record.
    pub(super) fn needs_resident(&self) -> bool {
        matches!(self, Settle::Printed(_) | Settle::Spoiled(_))
    }
}

impl Actor {
    pub(super) async fn complete(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        done: Completion,
    ) -> Result<PrintJob> {
        // One completion is a batch of one: the same checks, the same transaction.
        self.complete_many(ctx, call, vec![done])
            .await?
            .pop()
            .unwrap_or_else(|| {
                Err(RegistryError::Internal(
                    "a completion without result".into(),
                ))
            })
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
        let card = get::<Card>(&self.client, &self.keys.card(&serial))
            .await?
            .ok_or_else(|| RegistryError::NotFound("card serial".into()))?;
        check_pair(&job.value, &card.value)?;
        let settle = if verdict.printed {
            Settle::Printed(Some(format!(
                "resolved as printed by an operator: {}",
                verdict.note
            )))
        } else {
            Settle::Void(format!("resolved by an operator: {}", verdict.note))
        };
        let around = self
            .arounds(&[(&job.value, &settle)])
            .await?
            .pop()
            .unwrap_or_default();
        let mut stats = state.stats;
        // An operator's verdict needs only this registry's fence: the print
        // leader no longer holds anything of this job.
        let (change, settled) = self.settle(
            (job, card),
            around,
            settle,
            0,
            &mut stats,
            &mut state.outbox,
        )?;
        let resolved = state.outbox.append(
            EventKind::Resolved,
            &settled.nik,
            &settled.job_id,
            &serial.to_string(),
            &format!("printed={}: {}", verdict.printed, verdict.note),
        );
        let txn = change
            .into_txn(FencedTxn::new([&fence]))
            .op(resolved)
            .op(put(&self.keys.stats(), &stats));
        self.commit_expected(txn).await?;
        state.stats = stats;
        Ok(settled)
    }

    /// Reads what settling each job needs besides its job and card, in as
    /// few read transactions as etcd allows.
    pub(super) async fn arounds(&self, jobs: &[(&PrintJob, &Settle)]) -> Result<Vec<Around>> {
        let mut arounds: Vec<Around> = jobs.iter().map(|_| Around::default()).collect();
        let mut wanted = Vec::new();
        let mut reads = Vec::new();
        for (i, (job, settle)) in jobs.iter().enumerate() {
            // A malformed NIK or record is left out: settling that one job
            // then fails on its own ("job without its resident").
            if let (true, Ok(nik)) = (settle.needs_resident(), stored_nik(job.nik.as_bytes())) {
                reads.push(TxnOp::get(self.keys.resident(&nik), None));
                wanted.push(i);
            }
        }
        for (i, kv) in wanted.into_iter().zip(self.read_many(reads).await?) {
            arounds[i].resident = kv.as_ref().and_then(|kv| decode(kv).ok());
        }
        // A replacement that printed revokes the resident's ACTIVE card.
        let mut wanted = Vec::new();
        let mut reads = Vec::new();
        for (i, (job, settle)) in jobs.iter().enumerate() {
            let active = arounds[i]
                .resident
                .as_ref()
                .and_then(|r| CardSerial::parse(&r.value.active_card_serial));
            if let (Some(active), Settle::Printed(_)) = (active, settle)
                && job.reason() != PrintReason::FirstCard
            {
                reads.push(TxnOp::get(self.keys.card(&active), None));
                wanted.push(i);
            }
        }
        if !reads.is_empty() {
            for (i, kv) in wanted.into_iter().zip(self.read_many(reads).await?) {
                arounds[i].previous = kv.as_ref().and_then(|kv| decode(kv).ok());
            }
        }
        Ok(arounds)
    }

    /// The change that settles the job's current card, guarded by the
    /// revisions read, and the job as it will be stored. Checks everything
    /// before touching `stats` or `outbox`, so a refused card changes neither.
    /// The caller puts `stats` once per transaction.
    pub(super) fn settle(
        &self,
        (job, card): (Versioned<PrintJob>, Versioned<Card>),
        around: Around,
        settle: Settle,
        settled_by: u64,
        stats: &mut Stats,
        outbox: &mut Outbox,
    ) -> Result<(Change, PrintJob)> {
        let id = JobId::parse(&job.value.job_id)
            .ok_or_else(|| RegistryError::Internal("malformed job id".into()))?;
        let serial = CardSerial::parse(&card.value.serial)
            .ok_or_else(|| RegistryError::Internal("malformed card serial".into()))?;
        let (job_key, card_key) = (self.keys.job(id), self.keys.card(&serial));
        let mut change = Change::default();
        change.when(&job_key, job.mod_revision);
        change.when(&card_key, card.mod_revision);
        let was_in_doubt = job.value.state() == PrintJobState::InDoubt;
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
                self.activate(&mut change, &job, &serial, around, stats, outbox)?;
                if let Some(note) = note {
                    job.last_error = note;
                }
                job.state = PrintJobState::Printed as i32;
                card.state = CardState::Active as i32;
                stats.printed += 1;
            }
            Settle::Spoiled(detail) => {
                let fails = job.failed_attempts + 1 >= self.config.max_print_attempts;
                let resident = match around.resident {
                    None if fails => {
                        return Err(RegistryError::Internal("job without its resident".into()));
                    }
                    resident => resident,
                };
                change.ops.push(outbox.append(
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
                if fails {
                    job.state = PrintJobState::Failed as i32;
                    stats.print_failed += 1;
                    change.ops.push(outbox.append(
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
                    if let Some(resident) = resident {
                        let key = self.keys.resident(&stored_nik(job.nik.as_bytes())?);
                        let mut person = resident.value;
                        person.open_job_id.clear();
                        // A failed replacement leaves the old card ACTIVE.
                        if first_card {
                            person.status = ResidentStatus::PrintFailed as i32;
                        }
                        person.update_time = Some(at);
                        change.when(&key, resident.mod_revision);
                        change.ops.push(put(&key, &person));
                    }
                } else {
                    change.ops.push(requeue(&mut job));
                }
            }
            Settle::Void(detail) => {
                change.ops.push(outbox.append(
                    EventKind::Voided,
                    &job.nik,
                    &job.job_id,
                    serial.as_str(),
                    &detail,
                ));
                card.state = CardState::Void as i32;
                job.last_error = detail;
                change.ops.push(requeue(&mut job));
            }
            Settle::InDoubt(detail) => {
                change.ops.push(outbox.append(
                    EventKind::InDoubt,
                    &job.nik,
                    &job.job_id,
                    serial.as_str(),
                    &detail,
                ));
                job.state = PrintJobState::InDoubt as i32;
                job.last_error = detail;
                change
                    .ops
                    .push(TxnOp::put(self.keys.in_doubt(id), job.nik.as_str(), None));
            }
        }
        // `in_doubt/{id}` exists exactly while the job is IN_DOUBT.
        if was_in_doubt && job.state() != PrintJobState::InDoubt {
            change.ops.push(TxnOp::delete(self.keys.in_doubt(id), None));
        }
        change.ops.push(put(&job_key, &job));
        change.ops.push(put(&card_key, &card));
        Ok((change, job))
    }

    /// Adds to `change` what makes `serial` the resident's ACTIVE card: the
    /// resident PRINTED with the new card, and — for a replacement — the
    /// previous card REVOKED in the same transaction. A first card for a
    /// resident who already has an ACTIVE one is refused (one ACTIVE card per NIK).
    fn activate(
        &self,
        change: &mut Change,
        job: &PrintJob,
        serial: &CardSerial,
        around: Around,
        stats: &mut Stats,
        outbox: &mut Outbox,
    ) -> Result<()> {
        let Around { resident, previous } = around;
        let stored =
            resident.ok_or_else(|| RegistryError::Internal("job without its resident".into()))?;
        let key = self.keys.resident(&stored_nik(job.nik.as_bytes())?);
        let mut resident = stored.value;
        let first_card = job.reason() == PrintReason::FirstCard;
        let mut revoke = None;
        if let Some(active) = CardSerial::parse(&resident.active_card_serial) {
            if first_card {
                return Err(RegistryError::FailedPrecondition(
                    "the resident already has an ACTIVE card".into(),
                ));
            }
            let old = previous
                .filter(|old| old.value.serial == active.as_str())
                .ok_or_else(|| {
                    RegistryError::Internal("active card missing from the ledger".into())
                })?;
            revoke = Some((self.keys.card(&active), old));
        }
        change.when(&key, stored.mod_revision);
        if let Some((card_key, old)) = revoke {
            let mut revoked = old.value;
            revoked.state = CardState::Revoked as i32;
            revoked.update_time = Some(now());
            change.when(&card_key, old.mod_revision);
            change.ops.push(put(&card_key, &revoked));
        }
        if first_card {
            stats.backlog = stats.backlog.saturating_sub(1);
        }
        change.ops.push(outbox.append(
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
        change.ops.push(put(&key, &resident));
        Ok(())
    }
}

/// A job and a card read for it must belong together.
pub(super) fn check_pair(job: &PrintJob, card: &Card) -> Result<()> {
    if card.job_id == job.job_id {
        Ok(())
    } else {
        Err(RegistryError::FailedPrecondition(
            "the card serial belongs to another job".into(),
        ))
    }
}

/// Whether a repeated completion matches what its serial already became, so
/// a retry after a lost answer succeeds.
pub(super) fn already_completed(job: &PrintJob, card: &Card, outcome: PrintOutcome) -> bool {
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
