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
use tonic::{Code, Status};
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
        let results = match answer {
            Ok(response) => response
                .results
                .into_iter()
                .map(|r| (Code::from(r.code), r.message))
                .collect(),
            // A registry older than CompleteJobs (mid-upgrade): one call per card.
            Err(status) if status.code() == Code::Unimplemented => {
                self.complete_each(fence, &outcomes).await?
            }
            Err(status) => return refused(&status, outcomes.len()),
        };
        for (sent, (code, message)) in outcomes.iter().zip(results) {
            if code == Code::Ok {
                if sent.outcome == pb::PrintOutcome::Printed {
                    self.board.printed_one();
                    metrics::printed(self.printer.name());
                }
            } else {
                // Refused for good (e.g. a wrong state): keep printing
                // the others; the job stays for an operator.
                error!(job = %sent.job_id, ?code, error = %message, "completion refused");
            }
        }
        Ok(())
    }

    /// Reports `outcomes` with one `CompleteJob` each; a code per card.
    async fn complete_each(
        &self,
        fence: &Fence,
        outcomes: &[Outcome],
    ) -> Result<Vec<(Code, String)>, Stop> {
        let mut results = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            let request = pb::CompleteJobRequest {
                fence: Some(proto_fence(fence)),
                job_id: o.job_id.clone(),
                card_serial: o.card_serial.clone(),
                outcome: o.outcome as i32,
                detail: o.detail.clone(),
            };
            let answer = self
                .link
                .call(COMPLETE_DEADLINE, |ch| {
                    let request = request.clone();
                    async move { PrintQueueClient::new(ch).complete_job(request).await }
                })
                .await;
            results.push(match answer {
                Ok(_) => (Code::Ok, String::new()),
                Err(status) if retryable(&status) || ektp_server::is_stale_epoch(&status) => {
                    return refused(&status, 1).map(|()| Vec::new());
                }
                Err(status) => (status.code(), status.message().to_owned()),
            });
        }
        Ok(results)
    }
}

/// A report refused as a whole: a stale epoch or an unreachable registry
/// stops leading (the cards stay PRINTING for the next reconciliation);
/// anything else is logged and printing goes on, the cards left for an operator.
fn refused(status: &Status, cards: usize) -> Result<(), Stop> {
    if ektp_server::is_stale_epoch(status) {
        return Err(Stop::Stale);
    }
    if retryable(status) {
        error!(cards, error = %status.message(), "completions not recorded; registry unreachable");
        return Err(Stop::Failed("completions not recorded".into()));
    }
    error!(cards, code = ?status.code(), error = %status.message(), "completions refused");
    Ok(())
}

/// Whether the registry may record the same report when asked again.
fn retryable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}
