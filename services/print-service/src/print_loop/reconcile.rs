//! Reconciliation: every job still PRINTING — left by an earlier leader, or
//! by this one when a report was lost — is settled from what the printer's
//! own job log says, one page of jobs per report. A card the printer never
//! saw gets its blank back first when the last batch took one for it
//! (`Stock::give_back`), so a leader that died mid-batch costs no blank.

use super::report::Outcome;
use super::{CLAIM_DEADLINE, PrintLoop, Stop, stock_stop};
use crate::metrics;
use crate::printer::{Attempt, Printer, Recovery};
use ektp_election::Fence;
use ektp_proto::v1 as pb;
use ektp_proto::v1::registry_client::RegistryClient;
use tracing::{info, warn};

impl<P: Printer> PrintLoop<P> {
    /// Completes every job still PRINTING from what the printer knows.
    pub(super) async fn reconcile(&self, fence: &Fence) -> Result<(), Stop> {
        let mut token = String::new();
        loop {
            self.still_leading(fence)?;
            let request = pb::ListPrintJobsRequest {
                state: pb::PrintJobState::Printing as i32,
                page_size: 100,
                page_token: token.clone(),
            };
            let page = self
                .link
                .call(CLAIM_DEADLINE, |ch| {
                    let request = request.clone();
                    async move { RegistryClient::new(ch).list_print_jobs(request).await }
                })
                .await
                .map_err(|s| {
                    Stop::Failed(format!("cannot list in-flight jobs: {}", s.message()))
                })?;
            let mut settled = Vec::with_capacity(page.jobs.len());
            for job in page.jobs {
                let recovery = self.printer.recover(&job.job_id, &job.card_serial).await;
                info!(job = %job.job_id, serial = %job.card_serial, claimed_at = job.claim_epoch, ?recovery, "reconciling an in-flight card");
                let (outcome, detail) = match recovery {
                    Ok(Recovery::Finished(Attempt::Printed)) => (
                        pb::PrintOutcome::Printed,
                        "reconciled from the printer log".to_owned(),
                    ),
                    // Our own fence refused a ticket of an older leader: never printed.
                    Ok(Recovery::Finished(Attempt::Refused(_))) => (
                        pb::PrintOutcome::NotPrinted,
                        "refused by the printer's fence".to_owned(),
                    ),
                    Ok(Recovery::Finished(Attempt::Spoiled(detail))) => {
                        (pb::PrintOutcome::Spoiled, detail)
                    }
                    Ok(Recovery::NotPrinted) => (
                        pb::PrintOutcome::NotPrinted,
                        "not in the printer log".to_owned(),
                    ),
                    Ok(Recovery::Unknown) => {
                        warn!(job = %job.job_id, "printer cannot tell whether the card printed; job in doubt for an operator");
                        (
                            pb::PrintOutcome::Unknown,
                            "not found in the printer's log after a failover".to_owned(),
                        )
                    }
                    Err(e) => {
                        // The printer did not answer: leave the job PRINTING and
                        // try again at the next reconciliation.
                        warn!(job = %job.job_id, error = %e, "printer unreachable while reconciling");
                        metrics::printer_up(self.printer.name(), false);
                        continue;
                    }
                };
                if outcome == pb::PrintOutcome::NotPrinted
                    && self
                        .stock
                        .give_back(fence, &job.card_serial)
                        .await
                        .map_err(stock_stop)?
                {
                    info!(job = %job.job_id, serial = %job.card_serial, "blank given back: the card never reached the printer");
                }
                settled.push(Outcome {
                    job_id: job.job_id,
                    card_serial: job.card_serial,
                    outcome,
                    detail,
                });
            }
            self.complete(fence, settled).await?;
            if page.next_page_token.is_empty() {
                return Ok(());
            }
            token = page.next_page_token;
        }
    }
}
