//! Reporting print outcomes at the registry: the outcomes that finished since
//! the last report go in one `CompleteJobs` call (settled there in as few
//! fenced transactions as etcd allows, a result per card). A card whose
//! report is not recorded stays PRINTING at the registry and is settled by
//! the next reconciliation from the printer's own log, as before.

use super::{PrintLoop, Stop, proto_fence};
use crate::metrics;
use crate::printer::{CardJob, Printer};
use ektp_election::Fence;
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::Code;
use tracing::error;

/// Most outcomes in one report (the registry takes up to 128).
const REPORT_BATCH: usize = 64;
/// How long a report is retried before its cards are left for reconciliation.
const COMPLETE_DEADLINE: Duration = Duration::from_secs(30);

/// How one card's attempt ended, to report.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    pub job_id: String,
    pub card_serial: String,
    pub outcome: pb::PrintOutcome,
    pub detail: String,
}

impl Outcome {
    pub fn of(card: &CardJob, outcome: pb::PrintOutcome, detail: &str) -> Self {
        Self {
            job_id: card.job_id.clone(),
            card_serial: card.card_serial.clone(),
            outcome,
            detail: detail.to_owned(),
        }
    }
}

impl<P: Printer> PrintLoop<P> {
    /// Reports outcomes as they arrive, gathering those already waiting,
    /// until the printing side hangs up; stops at the first report that
    /// cannot be recorded.
    pub(super) async fn report(
        &self,
        fence: &Fence,
        mut unreported: mpsc::Receiver<Outcome>,
    ) -> Result<(), Stop> {
        while let Some(first) = unreported.recv().await {
            let mut batch = vec![first];
            while batch.len() < REPORT_BATCH {
                match unreported.try_recv() {
                    Ok(outcome) => batch.push(outcome),
                    Err(_) => break,
                }
            }
            self.complete(fence, batch).await?;
        }
        Ok(())
    }

    /// Reports `outcomes` (at most 128) in one call.
    pub(super) async fn complete(&self, fence: &Fence, outcomes: Vec<Outcome>) -> Result<(), Stop> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let request = pb::CompleteJobsRequest {
            fence: Some(proto_fence(fence)),
            completions: outcomes
                .iter()
                .map(|o| pb::JobCompletion {
                    job_id: o.job_id.clone(),
                    card_serial: o.card_serial.clone(),
                    outcome: o.outcome as i32,
                    detail: o.detail.clone(),
                })
                .collect(),
        };
        let answer = self
            .link
            .call(COMPLETE_DEADLINE, |ch| {
                let request = request.clone();
                async move { PrintQueueClient::new(ch).complete_jobs(request).await }
            })
            .await;
        match answer {
            Ok(response) => {
                for (sent, result) in outcomes.iter().zip(response.results) {
                    if result.code == Code::Ok as i32 {
                        if sent.outcome == pb::PrintOutcome::Printed {
                            self.board.printed_one();
                            metrics::printed(self.printer.name());
                        }
                    } else {
                        // Refused for good (e.g. a wrong state): keep printing
                        // the others; the job stays for an operator.
                        error!(job = %sent.job_id, code = ?Code::from(result.code), error = %result.message, "completion refused");
                    }
                }
                Ok(())
            }
            Err(status) if ektp_server::is_stale_epoch(&status) => Err(Stop::Stale),
            Err(status)
                if matches!(
                    status.code(),
                    Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
                ) =>
            {
                // Left PRINTING: the next reconciliation completes them from the printer's log.
                error!(cards = outcomes.len(), error = %status.message(), "completions not recorded; registry unreachable");
                Err(Stop::Failed("completions not recorded".into()))
            }
            Err(status) => {
                error!(cards = outcomes.len(), code = ?status.code(), error = %status.message(), "completions refused");
                Ok(())
            }
        }
    }
}
