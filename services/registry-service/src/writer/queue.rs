//! The print queue: claims (QUEUED → PRINTING, serials allocated) and
//! completions (PRINTING → PRINTED / re-queued / FAILED). Both are fenced by
//! this registry's epoch *and* the calling print leader's.

use super::settle::stored_nik;
use super::{Actor, Ctx, PrintCall, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{Versioned, bounded, decode, put, range};
use crate::ids::{CardSerial, JobId};
use crate::keys::range_end;
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::v1::{
    Card, CardState, PrintJob, PrintJobState, PrintMaterial, PrintReason, Resident,
};
use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use prost::Message;

/// A claimed job with what the printer needs.
pub struct Claimed {
    pub job: PrintJob,
    pub resident: Resident,
    pub material: PrintMaterial,
}

/// Gets per read transaction: etcd refuses more than 128 operations in one.
const READS_PER_TXN: usize = 100;

/// How far down the queue a low-stock claim looks for first cards.
const FIRST_CARD_WINDOW: i64 = 1000;

impl Actor {
    /// Runs many gets in as few read transactions as etcd allows; one value
    /// (or `None`) per get, in order.
    pub(super) async fn read_many(
        &self,
        reads: Vec<TxnOp>,
    ) -> Result<Vec<Option<etcd_client::KeyValue>>> {
        let mut values = Vec::with_capacity(reads.len());
        let mut reads = reads.into_iter().peekable();
        while reads.peek().is_some() {
            let chunk: Vec<TxnOp> = reads.by_ref().take(READS_PER_TXN).collect();
            let mut client = self.client.clone();
            let read = bounded("txn", client.txn(Txn::new().and_then(chunk))).await?;
            values.extend(read.op_responses().into_iter().map(|op| match op {
                TxnOpResponse::Get(get) => get.kvs().first().cloned(),
                _ => None,
            }));
        }
        Ok(values)
    }

    /// The queued jobs to claim, FIFO; with `first_cards_first`, first cards
    /// (within the first [`FIRST_CARD_WINDOW`] queued jobs) go before replacements.
    async fn pick_queued(&self, max: u32, first_cards_first: bool) -> Result<Vec<(JobId, Nik)>> {
        let queue = self.keys.queue();
        let window = if first_cards_first {
            FIRST_CARD_WINDOW
        } else {
            i64::from(max)
        };
        let mut queued = Vec::new();
        for kv in range(&self.client, &queue, range_end(&queue), window).await? {
            let id = String::from_utf8_lossy(kv.key())
                .rsplit('/')
                .next()
                .and_then(JobId::parse)
                .ok_or_else(|| RegistryError::Internal("malformed queue key".into()))?;
            queued.push((id, stored_nik(kv.value())?));
        }
        if first_cards_first && queued.len() > max as usize {
            let reads = queued
                .iter()
                .map(|(id, _)| TxnOp::get(self.keys.job(*id), None))
                .collect();
            let first: Vec<bool> = self
                .read_many(reads)
                .await?
                .into_iter()
                .map(|kv| {
                    kv.and_then(|kv| PrintJob::decode(kv.value()).ok())
                        .is_some_and(|job| job.reason() == PrintReason::FirstCard)
                })
                .collect();
            let mut order: Vec<usize> = (0..queued.len()).collect();
            order.sort_by_key(|i| !first[*i]); // stable: FIFO within each group
            let mut picked: Vec<(JobId, Nik)> =
                order.into_iter().map(|i| queued[i].clone()).collect();
            picked.truncate(max as usize);
            return Ok(picked);
        }
        queued.truncate(max as usize);
        Ok(queued)
    }

    pub(super) async fn claim(
        &self,
        ctx: Ctx<'_>,
        call: PrintCall,
        max: u32,
    ) -> Result<Vec<Claimed>> {
        let Ctx { fence, state } = ctx;
        let queued = self.pick_queued(max, call.first_cards_first).await?;
        if queued.is_empty() {
            return Ok(Vec::new());
        }
        // One read transaction for every job, resident and material of the batch.
        let mut reads = Vec::new();
        let mut ids = Vec::new();
        for (id, nik) in queued {
            reads.push(TxnOp::get(self.keys.job(id), None));
            reads.push(TxnOp::get(self.keys.resident(&nik), None));
            reads.push(TxnOp::get(self.keys.material(&nik), None));
            ids.push(id);
        }
        let values = self.read_many(reads).await?;

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
            // Dropped by retention (a collected card): nothing to open.
            let material = match material_kv {
                Some(kv) => self.open_material(*id, kv)?,
                None => PrintMaterial::default(),
            };
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
                resident,
                material,
            });
        }
        txn = txn.op(put(&self.keys.sequences(), &sequences));
        self.commit_expected(txn).await?;
        state.sequences = sequences;
        Ok(claimed)
    }
}
