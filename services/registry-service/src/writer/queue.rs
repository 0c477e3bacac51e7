//! The print queue: claims (QUEUED → PRINTING, serials allocated) and
//! completions (PRINTING → PRINTED / re-queued / FAILED). Both are fenced by
//! this registry's epoch *and* the calling print leader's.

use super::{Actor, Ctx, PrintCall, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{Versioned, bounded, decode, get, put, range};
use crate::ids::{CardSerial, JobId};
use crate::keys::range_end;
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::v1::{
    Card, CardState, PrintJob, PrintJobState, PrintMaterial, PrintOutcome, Resident, ResidentStatus,
};
use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use prost::Message;

/// A claimed job with what the printer needs.
pub struct Claimed {
    pub job: PrintJob,
    pub full_name: String,
    pub material_bytes: u32,
}

/// How one claimed attempt ended.
pub struct Completion {
    pub job_id: JobId,
    pub serial: CardSerial,
    pub outcome: PrintOutcome,
    pub detail: String,
}

impl Actor {
    pub(super) async fn claim(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        max: u32,
    ) -> Result<Vec<Claimed>> {
        let Ctx { fence, state } = ctx;
        let queue = self.keys.queue();
        let queued = range(&self.client, &queue, range_end(&queue), i64::from(max)).await?;
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        // One read transaction for every job, resident and material of the batch.
        let mut reads = Vec::new();
        let mut ids = Vec::new();
        for kv in &queued {
            let id = String::from_utf8_lossy(kv.key())
                .rsplit('/')
                .next()
                .and_then(JobId::parse)
                .ok_or_else(|| RegistryError::Internal("malformed queue key".into()))?;
            let nik = stored_nik(kv.value())?;
            reads.push(TxnOp::get(self.keys.job(id), None));
            reads.push(TxnOp::get(self.keys.resident(&nik), None));
            reads.push(TxnOp::get(self.keys.material(&nik), None));
            ids.push(id);
        }
        let mut client = self.client.clone();
        let read = bounded(client.txn(Txn::new().and_then(reads))).await?;
        let values: Vec<_> = read
            .op_responses()
            .into_iter()
            .map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                _ => None,
            })
            .collect();

        let mut sequences = state.sequences;
        let at = now();
        let mut txn = FencedTxn::new([&fence, &call.fence]);
        let mut claimed = Vec::new();
        for (id, chunk) in ids.iter().zip(values.chunks(3)) {
            let [Some(job_kv), Some(resident_kv), material_kv] = chunk else {
                return Err(RegistryError::Internal(format!(
                    "queued job {id} lacks its job or resident"
                )));
            };
            let Versioned {
                value: mut job,
                mod_revision,
            } = decode::<PrintJob>(job_kv)?;
            if job.state() != PrintJobState::Queued {
                return Err(RegistryError::Internal(format!(
                    "queued job {id} is {:?}",
                    job.state()
                )));
            }
            let resident = Resident::decode(resident_kv.value())?;
            let material_bytes = material_kv
                .as_ref()
                .and_then(|kv| PrintMaterial::decode(kv.value()).ok())
                .map_or(0, |m| m.photo.len() + m.signature.len());
            sequences.last_card_serial += 1;
            let serial = CardSerial::from_sequence(sequences.last_card_serial);
            job.state = PrintJobState::Printing as i32;
            job.card_serial = serial.to_string();
            job.claim_epoch = call.fence.epoch.0;
            job.printer = call.printer.clone();
            job.update_time = Some(at);
            let card = Card {
                serial: serial.to_string(),
                nik: job.nik.clone(),
                job_id: job.job_id.clone(),
                state: CardState::Allocated as i32,
                epoch: call.fence.epoch.0,
                update_time: Some(at),
            };
            let job_key = self.keys.job(*id);
            txn = txn
                .when(Compare::mod_revision(
                    job_key.as_str(),
                    CompareOp::Equal,
                    mod_revision,
                ))
                .op(put(&job_key, &job))
                .op(TxnOp::delete(self.keys.queued(*id), None))
                .op(put(&self.keys.card(&serial), &card));
            claimed.push(Claimed {
                job,
                full_name: resident.full_name,
                material_bytes: u32::try_from(material_bytes).unwrap_or(u32::MAX),
            });
        }
        txn = txn.op(put(&self.keys.sequences(), &sequences));
        self.commit_expected(txn).await?;
        state.sequences = sequences;
        Ok(claimed)
    }

    pub(super) async fn complete(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        done: Completion,
    ) -> Result<PrintJob> {
        let Ctx { fence, state } = ctx;
        let job_key = self.keys.job(done.job_id);
        let card_key = self.keys.card(&done.serial);
        let job = get::<PrintJob>(&self.client, &job_key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("print job".into()))?;
        let card = get::<Card>(&self.client, &card_key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("card serial".into()))?;
        if card.value.job_id != job.value.job_id {
            return Err(RegistryError::FailedPrecondition(
                "the card serial belongs to another job".into(),
            ));
        }
        if job.value.state() != PrintJobState::Printing
            || job.value.card_serial != done.serial.as_str()
        {
            return if already_completed(&card.value, done.outcome) {
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

        let mut job_value = job.value;
        let mut card_value = card.value;
        let at = now();
        job_value.update_time = Some(at);
        card_value.update_time = Some(at);
        let mut stats = state.stats;
        let mut txn = FencedTxn::new([&fence, &call.fence])
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
        let requeue = |job: &mut PrintJob| {
            job.state = PrintJobState::Queued as i32;
            job.card_serial.clear();
            TxnOp::put(self.keys.queued(done.job_id), job.nik.as_str(), None)
        };
        match done.outcome {
            PrintOutcome::Printed => {
                let serial = done.serial.to_string();
                txn = self
                    .update_resident(txn, &job_value.nik, |resident| {
                        if !resident.active_card_serial.is_empty() {
                            // At most one ACTIVE card per NIK; reprints revoke the old card first.
                            return Err(RegistryError::FailedPrecondition(
                                "the resident already has an ACTIVE card".into(),
                            ));
                        }
                        resident.status = ResidentStatus::Printed as i32;
                        resident.active_card_serial = serial;
                        resident.update_time = Some(at);
                        Ok(())
                    })
                    .await?;
                job_value.state = PrintJobState::Printed as i32;
                card_value.state = CardState::Active as i32;
                stats.printed += 1;
            }
            PrintOutcome::Spoiled => {
                card_value.state = CardState::Spoiled as i32;
                job_value.failed_attempts += 1;
                job_value.last_error = done.detail;
                stats.spoiled += 1;
                if job_value.failed_attempts >= self.config.max_print_attempts {
                    job_value.state = PrintJobState::Failed as i32;
                    stats.print_failed += 1;
                    txn = self
                        .update_resident(txn, &job_value.nik, |resident| {
                            resident.status = ResidentStatus::PrintFailed as i32;
                            resident.update_time = Some(at);
                            Ok(())
                        })
                        .await?;
                } else {
                    txn = txn.op(requeue(&mut job_value));
                }
            }
            PrintOutcome::NotPrinted => {
                card_value.state = CardState::Void as i32;
                job_value.last_error = done.detail;
                txn = txn.op(requeue(&mut job_value));
            }
            PrintOutcome::Unspecified => {
                return Err(RegistryError::Invalid {
                    field: "outcome",
                    description: "an outcome is required".into(),
                });
            }
        }
        txn = txn
            .op(put(&job_key, &job_value))
            .op(put(&card_key, &card_value))
            .op(put(&self.keys.stats(), &stats));
        self.commit_expected(txn).await?;
        state.stats = stats;
        Ok(job_value)
    }
}

impl Actor {
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

/// Whether a repeated completion matches what its serial already became.
fn already_completed(card: &Card, outcome: PrintOutcome) -> bool {
    matches!(
        (outcome, card.state()),
        (PrintOutcome::Printed, CardState::Active)
            | (PrintOutcome::Spoiled, CardState::Spoiled)
            | (PrintOutcome::NotPrinted, CardState::Void)
    )
}

/// A NIK the registry stored itself; failing to parse means corrupt data.
fn stored_nik(raw: &[u8]) -> Result<Nik> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| Nik::parse(s).ok())
        .ok_or_else(|| RegistryError::Internal("malformed nik stored in etcd".into()))
}
