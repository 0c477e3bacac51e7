//! AuthorizePrint: the central system's decision on a recorded resident.
//! PRINT_READY queues exactly one print job in the same transaction. A batch
//! of decisions shares one fenced transaction (`batch.rs`).

use super::{Actor, Ctx, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{decode, get_many, put};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::storage::Sequences;
use ektp_proto::v1::{
    AuthorizationOutcome, EventKind, PrintReason, Resident, ResidentStatus, Stats,
};
use ektp_server::Outbox;
use etcd_client::{Compare, CompareOp, TxnOp};
use std::collections::HashMap;

pub struct Decision {
    pub nik: Nik,
    pub outcome: AuthorizationOutcome,
    pub reason: String,
}

/// Operations one decision adds to a transaction: resident, job, queue
/// entry, event (the batch adds the counter and sequence puts).
const OPS_PER_DECISION: usize = 4;
/// Decisions per batch within etcd's operation limit.
pub(super) const MAX_BATCH: usize = (super::batch::MAX_TXN_OPS - 2) / OPS_PER_DECISION;

/// A resident as the batch sees it: stored, or changed earlier in the batch.
struct Current {
    resident: Resident,
    /// Changed by this batch: its put joins the transaction at the end.
    changed: bool,
}

impl Actor {
    /// Applies a batch of decisions in one fenced transaction and returns one
    /// answer per decision, in order. Each decision sees the residents as
    /// stored (read first; the fence keeps anyone else from writing) with
    /// the earlier decisions of the batch applied, so a second decision on
    /// one NIK answers as a retry would.
    pub(super) async fn authorize_batch(
        &self,
        ctx: Ctx<'_>,
        batch: Vec<Decision>,
    ) -> Result<Vec<Result<Resident>>> {
        let Ctx { fence, state } = ctx;
        let keys: Vec<String> = batch.iter().map(|d| self.keys.resident(&d.nik)).collect();
        let stored = get_many(&self.client, &keys).await?;
        let mut txn = FencedTxn::new([&fence]);
        let mut current: HashMap<&str, Current> = HashMap::new();
        for (key, found) in keys.iter().zip(stored) {
            if let Some(kv) = found
                && !current.contains_key(key.as_str())
            {
                let stored = decode::<Resident>(&kv)?;
                txn = txn.when(Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    stored.mod_revision,
                ));
                let resident = stored.value;
                current.insert(
                    key.as_str(),
                    Current {
                        resident,
                        changed: false,
                    },
                );
            }
        }

        let mut stats = state.stats;
        let mut sequences = state.sequences;
        let mut answers = Vec::with_capacity(batch.len());
        for (decision, key) in batch.into_iter().zip(&keys) {
            let Some(entry) = current.get_mut(key.as_str()) else {
                answers.push(Err(RegistryError::NotFound("resident".into())));
                continue;
            };
            let answer = self.decide(
                decision,
                &mut entry.resident,
                (&mut stats, &mut sequences),
                &mut state.outbox,
            );
            match answer {
                Ok(Some(ops)) => {
                    entry.changed = true;
                    txn = txn.ops(ops);
                    answers.push(Ok(entry.resident.clone()));
                }
                Ok(None) => answers.push(Ok(entry.resident.clone())),
                Err(e) => answers.push(Err(e)),
            }
        }
        let changes: Vec<_> = current
            .iter()
            .filter(|(_, entry)| entry.changed)
            .map(|(key, entry)| put(key, &entry.resident))
            .collect();
        if !changes.is_empty() {
            txn = txn
                .ops(changes)
                .op(put(&self.keys.stats(), &stats))
                .op(put(&self.keys.sequences(), &sequences));
            self.commit_expected(txn).await?;
            state.stats = stats;
            state.sequences = sequences;
        }
        Ok(answers)
    }

    /// Applies one decision to `resident`: the job and event puts it needs
    /// (the resident's own put is the batch's), `None` when it was already
    /// decided that way, or why it cannot apply.
    fn decide(
        &self,
        decision: Decision,
        resident: &mut Resident,
        (stats, sequences): (&mut Stats, &mut Sequences),
        outbox: &mut Outbox,
    ) -> Result<Option<Vec<TxnOp>>> {
        let status = resident.status();
        if status != ResidentStatus::Recorded {
            return if already_decided(status, decision.outcome) {
                Ok(None)
            } else {
                Err(RegistryError::FailedPrecondition(format!(
                    "the resident is {}; only RECORDED residents can be authorised",
                    status.as_str_name()
                )))
            };
        }
        let nik = decision.nik.as_str();
        let mut changed = resident.clone();
        changed.update_time = Some(now());
        changed.status_reason = decision.reason;
        let ops = match decision.outcome {
            AuthorizationOutcome::PrintReady => {
                changed.status = ResidentStatus::PrintReady as i32;
                stats.print_ready += 1;
                stats.backlog += 1;
                let (id, mut ops) = self.new_job(
                    sequences,
                    &decision.nik,
                    PrintReason::FirstCard,
                    String::new(),
                );
                changed.open_job_id = id.to_string();
                ops.push(outbox.append(EventKind::Authorised, nik, &changed.open_job_id, "", ""));
                ops
            }
            AuthorizationOutcome::Duplicate => {
                changed.status = ResidentStatus::Duplicate as i32;
                stats.duplicates += 1;
                let reason = &changed.status_reason;
                vec![outbox.append(EventKind::Duplicate, nik, "", "", reason)]
            }
            AuthorizationOutcome::Rejected => {
                changed.status = ResidentStatus::Rejected as i32;
                stats.rejected += 1;
                let reason = &changed.status_reason;
                vec![outbox.append(EventKind::Rejected, nik, "", "", reason)]
            }
            AuthorizationOutcome::Unspecified => {
                return Err(RegistryError::Invalid {
                    field: "outcome",
                    description: "an outcome is required".into(),
                });
            }
        };
        *resident = changed;
        Ok(Some(ops))
    }
}

/// Whether a repeated decision matches what was already decided, so a retry
/// succeeds instead of failing on the state it caused.
fn already_decided(status: ResidentStatus, outcome: AuthorizationOutcome) -> bool {
    use ResidentStatus as S;
    match outcome {
        AuthorizationOutcome::PrintReady => matches!(
            status,
            S::PrintReady | S::Printed | S::Collected | S::PrintFailed
        ),
        AuthorizationOutcome::Duplicate => status == S::Duplicate,
        AuthorizationOutcome::Rejected => status == S::Rejected,
        AuthorizationOutcome::Unspecified => false,
    }
}
