//! AuthorizePrint: the central system's decision on a recorded resident.
//! PRINT_READY queues exactly one print job in the same transaction.

use super::{Actor, Ctx, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{get, put};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::v1::{AuthorizationOutcome, EventKind, PrintReason, Resident, ResidentStatus};
use etcd_client::{Compare, CompareOp};

pub struct Decision {
    pub nik: Nik,
    pub outcome: AuthorizationOutcome,
    pub reason: String,
}

impl Actor {
    pub(super) async fn authorize(&self, ctx: Ctx<'_>, decision: Decision) -> Result<Resident> {
        let Ctx { fence, state } = ctx;
        let key = self.keys.resident(&decision.nik);
        let stored = get::<Resident>(&self.client, &key)
            .await?
            .ok_or_else(|| RegistryError::NotFound("resident".into()))?;
        let mut resident = stored.value;
        let status = resident.status();
        if status != ResidentStatus::Recorded {
            return if already_decided(status, decision.outcome) {
                Ok(resident)
            } else {
                Err(RegistryError::FailedPrecondition(format!(
                    "the resident is {}; only RECORDED residents can be authorised",
                    status.as_str_name()
                )))
            };
        }

        let mut stats = state.stats;
        let mut sequences = state.sequences;
        resident.update_time = Some(now());
        resident.status_reason = decision.reason;
        let mut txn = FencedTxn::new([&fence]).when(Compare::mod_revision(
            key.as_str(),
            CompareOp::Equal,
            stored.mod_revision,
        ));
        match decision.outcome {
            AuthorizationOutcome::PrintReady => {
                resident.status = ResidentStatus::PrintReady as i32;
                stats.print_ready += 1;
                stats.backlog += 1;
                let (id, queued) = self.new_job(
                    &mut sequences,
                    &decision.nik,
                    PrintReason::FirstCard,
                    String::new(),
                );
                resident.open_job_id = id.to_string();
                let event = state.outbox.append(
                    EventKind::Authorised,
                    decision.nik.as_str(),
                    &resident.open_job_id,
                    "",
                    "",
                );
                txn = txn
                    .ops(queued)
                    .op(put(&self.keys.sequences(), &sequences))
                    .op(event);
            }
            AuthorizationOutcome::Duplicate => {
                resident.status = ResidentStatus::Duplicate as i32;
                stats.duplicates += 1;
                txn = txn.op(state.outbox.append(
                    EventKind::Duplicate,
                    decision.nik.as_str(),
                    "",
                    "",
                    &resident.status_reason,
                ));
            }
            AuthorizationOutcome::Rejected => {
                resident.status = ResidentStatus::Rejected as i32;
                stats.rejected += 1;
                txn = txn.op(state.outbox.append(
                    EventKind::Rejected,
                    decision.nik.as_str(),
                    "",
                    "",
                    &resident.status_reason,
                ));
            }
            AuthorizationOutcome::Unspecified => {
                return Err(RegistryError::Invalid {
                    field: "outcome",
                    description: "an outcome is required".into(),
                });
            }
        }
        txn = txn
            .op(put(&key, &resident))
            .op(put(&self.keys.stats(), &stats));
        self.commit_expected(txn).await?;
        state.stats = stats;
        state.sequences = sequences;
        Ok(resident)
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
