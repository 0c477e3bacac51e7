//! The card lifecycle after the first print: replacement cards (reprints),
//! the handover of a card (collection), and an operator cancelling a job.
//! Each is one fenced transaction with its counters, like every write.

use super::record::unix_now;
use super::settle::stored_nik;
use super::{Actor, Ctx, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{get, put};
use crate::ids::{CardSerial, JobId};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::storage::{RequestRecord, Sequences};
use ektp_proto::v1::{
    Card, CardState, Collection, Collector, EventKind, PrintJob, PrintJobState, PrintMaterial,
    PrintReason, Resident, ResidentStatus,
};
use etcd_client::{Compare, CompareOp, PutOptions, TxnOp};
use prost::Message;

/// A validated reprint request.
pub struct Reprint {
    pub request_id: String,
    pub digest: Vec<u8>,
    pub nik: Nik,
    pub reason: PrintReason,
    pub reference: String,
    /// DATA_CHANGE: the corrected record.
    pub changed: Option<Resident>,
    /// New print material, if sent (required for DATA_CHANGE).
    pub material: Option<PrintMaterial>,
}

/// A validated collection record.
pub struct Handover {
    pub nik: Nik,
    pub collector: Collector,
    pub representative_name: String,
    pub proof_reference: String,
}

impl Actor {
    /// A new QUEUED job for `nik`, and the operations that store and queue it.
    pub(super) fn new_job(
        &self,
        sequences: &mut Sequences,
        nik: &Nik,
        reason: PrintReason,
        reference: String,
    ) -> (JobId, Vec<TxnOp>) {
        sequences.last_job_id += 1;
        let id = JobId(sequences.last_job_id);
        let at = now();
        let job = PrintJob {
            job_id: id.to_string(),
            nik: nik.as_str().to_owned(),
            state: PrintJobState::Queued as i32,
            reason: reason as i32,
            reference,
            create_time: Some(at),
            update_time: Some(at),
            ..PrintJob::default()
        };
        let ops = vec![
            put(&self.keys.job(id), &job),
            TxnOp::put(self.keys.queued(id), nik.as_str(), None),
        ];
        (id, ops)
    }

    pub(super) async fn reprint(&self, ctx: Ctx<'_>, request: Reprint) -> Result<PrintJob> {
        let Ctx { fence, state } = ctx;
        let request_key = self.keys.request(&request.request_id);
        if let Some(seen) = get::<RequestRecord>(&self.client, &request_key).await? {
            return self.replayed_reprint(seen.value, &request.digest).await;
        }
        let key = self.keys.resident(&request.nik);
        let stored = get::<Resident>(&self.client, &key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("resident".into()))?;
        let mut resident = stored.value;
        if resident.active_card_serial.is_empty() {
            return Err(RegistryError::FailedPrecondition(
                "the resident has no ACTIVE card to replace; a first card comes from AuthorizePrint".into(),
            ));
        }
        if !resident.open_job_id.is_empty() {
            return Err(RegistryError::FailedPrecondition(format!(
                "print job {} is still open for this resident",
                resident.open_job_id
            )));
        }
        let mut sequences = state.sequences;
        let mut stats = state.stats;
        let (id, queued) = self.new_job(
            &mut sequences,
            &request.nik,
            request.reason,
            request.reference,
        );
        let mut txn = FencedTxn::new([&fence])
            .when(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                stored.mod_revision,
            ))
            .when(Compare::create_revision(
                request_key.as_str(),
                CompareOp::Equal,
                0,
            ))
            .ops(queued);
        if let Some(changed) = request.changed {
            resident = Resident {
                status: resident.status,
                warnings: changed.warnings,
                create_time: resident.create_time,
                active_card_serial: resident.active_card_serial,
                status_reason: resident.status_reason,
                collection: resident.collection,
                material_digest: resident.material_digest,
                material_dropped: resident.material_dropped,
                ..changed
            };
        }
        match request.material {
            Some(material) => {
                resident.material_digest = super::record::material_digest(&material);
                resident.material_dropped = false;
                txn = txn.op(self.put_material(&request.nik, &material)?);
            }
            None if resident.material_dropped => {
                return Err(RegistryError::FailedPrecondition(
                    "the print material was dropped after collection; send new material with the reprint".into(),
                ));
            }
            None => {}
        }
        resident.open_job_id = id.to_string();
        resident.update_time = Some(now());
        stats.reprints += 1;
        let record = RequestRecord {
            request_digest: request.digest,
            nik: request.nik.as_str().to_owned(),
            create_time_unix: unix_now(),
            job_id: id.to_string(),
        };
        let lease = self.retention_lease(&mut state.retention_lease).await?;
        txn = txn
            .op(put(&key, &resident))
            .op(TxnOp::put(
                request_key.as_str(),
                record.encode_to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            ))
            .op(put(&self.keys.sequences(), &sequences))
            .op(put(&self.keys.stats(), &stats))
            .op(state.outbox.append(
                EventKind::ReprintRequested,
                request.nik.as_str(),
                &id.to_string(),
                "",
                request.reason.as_str_name(),
            ));
        self.commit_expected(txn).await?;
        state.sequences = sequences;
        state.stats = stats;
        get::<PrintJob>(&self.client, &self.keys.job(id))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| RegistryError::Internal("reprint job vanished".into()))
    }

    /// A retried reprint gets the job it created; another request under
    /// the same id is refused.
    async fn replayed_reprint(&self, seen: RequestRecord, digest: &[u8]) -> Result<PrintJob> {
        if seen.request_digest != digest || seen.job_id.is_empty() {
            return Err(RegistryError::Invalid {
                field: "request_id",
                description: "this request_id was already used for a different request".into(),
            });
        }
        let id = JobId::parse(&seen.job_id)
            .ok_or_else(|| RegistryError::Internal("malformed job id".into()))?;
        get::<PrintJob>(&self.client, &self.keys.job(id))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| RegistryError::Internal("reprint job vanished".into()))
    }

    pub(super) async fn collect(&self, ctx: Ctx<'_>, handover: Handover) -> Result<Resident> {
        let Ctx { fence, state } = ctx;
        let key = self.keys.resident(&handover.nik);
        let stored = get::<Resident>(&self.client, &key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("resident".into()))?;
        let mut resident = stored.value;
        match resident.status() {
            ResidentStatus::Printed => {}
            ResidentStatus::Collected if same_handover(&resident, &handover) => {
                return Ok(resident);
            }
            other => {
                return Err(RegistryError::FailedPrecondition(format!(
                    "the resident is {}; only a PRINTED card not yet collected can be handed over",
                    other.as_str_name()
                )));
            }
        }
        let at = now();
        resident.status = ResidentStatus::Collected as i32;
        resident.update_time = Some(at);
        resident.collection = Some(Collection {
            card_serial: resident.active_card_serial.clone(),
            collect_time: Some(at),
            collected_by: match handover.collector {
                Collector::Representative => "REPRESENTATIVE",
                _ => "RESIDENT",
            }
            .into(),
            representative_name: handover.representative_name,
            proof_reference: handover.proof_reference,
        });
        let mut stats = state.stats;
        stats.collected += 1;
        let txn = FencedTxn::new([&fence])
            .when(Compare::mod_revision(
                key.as_str(),
                CompareOp::Equal,
                stored.mod_revision,
            ))
            .op(put(&key, &resident))
            .op(put(&self.keys.stats(), &stats));
        self.commit_expected(txn).await?;
        state.stats = stats;
        Ok(resident)
    }

    pub(super) async fn cancel(&self, ctx: Ctx<'_>, id: JobId, reason: String) -> Result<PrintJob> {
        let Ctx { fence, state } = ctx;
        let job_key = self.keys.job(id);
        let stored = get::<PrintJob>(&self.client, &job_key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("print job".into()))?;
        let mut job = stored.value;
        let mut txn = FencedTxn::new([&fence]).when(Compare::mod_revision(
            job_key.as_str(),
            CompareOp::Equal,
            stored.mod_revision,
        ));
        match job.state() {
            PrintJobState::Queued => txn = txn.op(TxnOp::delete(self.keys.queued(id), None)),
            PrintJobState::InDoubt => {
                // The allocated serial was never handed out as a card.
                let serial = CardSerial::parse(&job.card_serial).ok_or_else(|| {
                    RegistryError::Internal("in-doubt job without a serial".into())
                })?;
                let card_key = self.keys.card(&serial);
                let card = get::<Card>(&self.client, &card_key).await?.ok_or_else(|| {
                    RegistryError::Internal("in-doubt job without its card".into())
                })?;
                let mut voided = card.value;
                voided.state = CardState::Void as i32;
                voided.update_time = Some(now());
                txn = txn
                    .when(Compare::mod_revision(
                        card_key.as_str(),
                        CompareOp::Equal,
                        card.mod_revision,
                    ))
                    .op(put(&card_key, &voided))
                    .op(TxnOp::delete(self.keys.in_doubt(id), None));
            }
            PrintJobState::Cancelled => return Ok(job),
            other => {
                return Err(RegistryError::FailedPrecondition(format!(
                    "the job is {}; only QUEUED or IN_DOUBT jobs can be cancelled",
                    other.as_str_name()
                )));
            }
        }
        let first_card = job.reason() == PrintReason::FirstCard;
        job.state = PrintJobState::Cancelled as i32;
        job.last_error = format!("cancelled by an operator: {reason}");
        job.update_time = Some(now());
        let mut stats = state.stats;
        stats.cancelled += 1;
        if first_card {
            stats.backlog = stats.backlog.saturating_sub(1);
        }
        let resident_key = self.keys.resident(&stored_nik(job.nik.as_bytes())?);
        let resident = get::<Resident>(&self.client, &resident_key)
            .await?
            .ok_or_else(|| RegistryError::Internal("job without its resident".into()))?;
        let mut person = resident.value;
        person.open_job_id.clear();
        if first_card {
            // Back to awaiting a decision: the central system may authorise again.
            person.status = ResidentStatus::Recorded as i32;
        }
        person.update_time = job.update_time;
        txn = txn
            .when(Compare::mod_revision(
                resident_key.as_str(),
                CompareOp::Equal,
                resident.mod_revision,
            ))
            .op(put(&resident_key, &person))
            .op(put(&job_key, &job))
            .op(put(&self.keys.stats(), &stats))
            .op(state
                .outbox
                .append(EventKind::Cancelled, &job.nik, &job.job_id, "", &reason));
        self.commit_expected(txn).await?;
        state.stats = stats;
        Ok(job)
    }
}

fn same_handover(resident: &Resident, handover: &Handover) -> bool {
    resident.collection.as_ref().is_some_and(|c| {
        c.card_serial == resident.active_card_serial
            && c.proof_reference == handover.proof_reference
    })
}
