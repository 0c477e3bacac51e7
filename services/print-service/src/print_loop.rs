//! The print leader's loop: reconcile cards left in flight by an earlier
//! leader, then claim jobs in batches (never more than the blanks left),
//! take one blank per attempt, print, and complete each job at the registry.
//! Every registry call carries this node's fence; a stale-epoch answer or a
//! lost fence makes it step down at once.

use crate::board::Board;
use crate::metrics;
use crate::printer::{Attempt, CardJob, Printer, Recovery};
use crate::printer_state::PrinterState;
use crate::registry_link::RegistryLink;
use crate::stock::{StateError, Stock};
use ektp_election::{ElectionHandle, Fence, Role};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use ektp_proto::v1::registry_client::RegistryClient;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::{Code, Status};
use tracing::{error, info, warn};

/// How long a completion is retried before the job is left for reconciliation.
const COMPLETE_DEADLINE: Duration = Duration::from_secs(30);
const CLAIM_DEADLINE: Duration = Duration::from_secs(5);

/// Print loop settings.
#[derive(Clone, Debug)]
pub struct LoopConfig {
    /// Most jobs claimed at once.
    pub batch: u32,
    /// Wait between claims when the queue is empty or blanks ran out.
    pub idle_poll: Duration,
    /// Below this many blanks, first cards are claimed before replacements.
    pub low_stock_threshold: u32,
}

/// Why leading stopped.
#[derive(Debug, thiserror::Error)]
enum Stop {
    #[error("no longer the leader")]
    NotLeader,
    #[error("the registry says this epoch is stale")]
    Stale,
    #[error("{0}")]
    Failed(String),
}

/// The print loop of one node; it prints only while the node leads.
pub struct PrintLoop<P: Printer> {
    pub printer: Arc<P>,
    pub state: PrinterState,
    pub link: Arc<RegistryLink>,
    pub stock: Stock,
    pub election: ElectionHandle,
    pub board: Arc<Board>,
    pub config: LoopConfig,
}

impl<P: Printer> PrintLoop<P> {
    /// Runs until the election ends.
    pub async fn run(self) {
        let mut role = self.election.subscribe();
        loop {
            let fence = match role.borrow_and_update().clone() {
                Role::Leader { fence, .. } => Some(fence),
                _ => None,
            };
            if let Some(fence) = fence {
                info!(epoch = %fence.epoch, printer = self.printer.name(), "print leader: printing");
                match self.lead(&fence, &mut role).await {
                    Err(Stop::Stale) => self.election.step_down(fence.epoch),
                    Err(Stop::Failed(reason)) => {
                        error!(%reason, "print loop failed; retrying");
                        tokio::time::sleep(self.config.idle_poll).await;
                    }
                    Err(Stop::NotLeader) | Ok(()) => {}
                }
                // Cluster-wide gauges are the leader's to report.
                metrics::blank_stock(0, false);
                metrics::printer_up(self.printer.name(), false);
                continue;
            }
            if role.changed().await.is_err() {
                return;
            }
        }
    }

    fn still_leading(&self, fence: &Fence) -> Result<(), Stop> {
        match self.election.role().fence() {
            Some(current) if current == fence => Ok(()),
            _ => Err(Stop::NotLeader),
        }
    }

    async fn lead(&self, fence: &Fence, role: &mut watch::Receiver<Role>) -> Result<(), Stop> {
        // Fence the printer first: from now on it refuses cards from older
        // epochs, so a paused ex-leader cannot print anything we reconcile.
        self.printer
            .fence(fence.epoch.0)
            .await
            .map_err(|e| Stop::Failed(format!("cannot fence the printer: {e}")))?;
        metrics::printer_up(self.printer.name(), true);
        if let Ok((record, _)) = self.stock.read().await {
            self.board.start_rate_window(record.consumed_total);
        }
        self.reconcile(fence).await?;
        loop {
            self.still_leading(fence)?;
            if self.state.paused().await.map_err(stock_stop)? {
                idle(role, self.config.idle_poll).await;
                continue;
            }
            let (record, _) = self.stock.read().await.map_err(stock_stop)?;
            let empty = record.remaining == 0;
            self.board.set_out_of_blanks(empty);
            metrics::blank_stock(record.remaining, empty);
            if empty {
                warn!("out of blank stock: printing paused");
                idle(role, self.config.idle_poll).await;
                continue;
            }
            let max = u32::try_from(record.remaining)
                .unwrap_or(u32::MAX)
                .min(self.config.batch);
            let low_stock = record.remaining < u64::from(self.config.low_stock_threshold);
            let claimed = match self.claim(fence, max, low_stock).await {
                Ok(claimed) => claimed,
                Err(status) => {
                    // The claim may have been applied with its answer lost:
                    // pick up our own orphaned claims before claiming more.
                    warn!(error = %status.message(), "claim failed; reconciling");
                    if ektp_server::is_stale_epoch(&status) {
                        return Err(Stop::Stale);
                    }
                    idle(role, self.config.idle_poll).await;
                    self.reconcile(fence).await?;
                    continue;
                }
            };
            if claimed.is_empty() {
                idle(role, self.config.idle_poll).await;
                continue;
            }
            for job in claimed {
                self.print_one(fence, job).await?;
            }
        }
    }

    async fn claim(
        &self,
        fence: &Fence,
        max: u32,
        first_cards_first: bool,
    ) -> Result<Vec<pb::ClaimedJob>, Status> {
        let request = pb::ClaimJobsRequest {
            fence: Some(proto_fence(fence)),
            max_jobs: max,
            printer: self.printer.name().to_owned(),
            first_cards_first,
        };
        let response = self
            .link
            .call(CLAIM_DEADLINE, |ch| {
                let request = request.clone();
                async move { PrintQueueClient::new(ch).claim_jobs(request).await }
            })
            .await?;
        Ok(response.jobs)
    }

    async fn print_one(&self, fence: &Fence, claimed: pb::ClaimedJob) -> Result<(), Stop> {
        let job = claimed.job.unwrap_or_default();
        let card = CardJob {
            epoch: fence.epoch.0,
            job_id: job.job_id.clone(),
            card_serial: job.card_serial.clone(),
            nik: job.nik.clone(),
            full_name: claimed
                .resident
                .as_ref()
                .map(|r| r.full_name.clone())
                .unwrap_or_default(),
            resident: claimed.resident,
            material: claimed.material,
            issued: job.update_time,
        };
        // Check leadership right before the blank is taken and the card printed.
        self.still_leading(fence)?;
        match self.stock.consume_one(fence).await {
            Ok(remaining) => metrics::blank_stock(remaining, remaining == 0),
            Err(StateError::Empty) => {
                return self
                    .complete(
                        fence,
                        &card,
                        pb::PrintOutcome::NotPrinted,
                        "no blank stock left",
                    )
                    .await;
            }
            Err(e) => return Err(stock_stop(e)),
        }
        let started = Instant::now();
        let printer = self.printer.name();
        let outcome = match self.printer.print(&card).await {
            Ok(attempt) => Recovery::Finished(attempt),
            Err(e) => {
                error!(error = %e, job = %card.job_id, "printer failed; asking it what became of the card");
                metrics::printer_up(printer, false);
                match self.printer.recover(&card.job_id, &card.card_serial).await {
                    Ok(recovery) => recovery,
                    // Printer unreachable: stop and back off; the card stays
                    // PRINTING and the next reconciliation settles it.
                    Err(e) => return Err(Stop::Failed(e.to_string())),
                }
            }
        };
        let (result, detail, label) = match outcome {
            Recovery::Finished(Attempt::Printed) => {
                (pb::PrintOutcome::Printed, String::new(), "printed")
            }
            Recovery::Finished(Attempt::Spoiled(d)) => (pb::PrintOutcome::Spoiled, d, "spoiled"),
            Recovery::Finished(Attempt::Refused(reason)) => {
                // A newer leader fenced the printer: this node is stale.
                warn!(job = %card.job_id, %reason, "the printer refused the card; stepping down");
                return Err(Stop::Stale);
            }
            Recovery::NotPrinted => (
                pb::PrintOutcome::NotPrinted,
                "never reached the printer".into(),
                "not_printed",
            ),
            Recovery::Unknown => {
                warn!(job = %card.job_id, serial = %card.card_serial, "printer cannot tell whether the card printed; job in doubt");
                (
                    pb::PrintOutcome::Unknown,
                    "the printer cannot tell whether it printed".into(),
                    "unknown",
                )
            }
        };
        metrics::printer_up(printer, true);
        metrics::attempt(printer, label, started.elapsed());
        self.complete(fence, &card, result, &detail).await
    }

    async fn complete(
        &self,
        fence: &Fence,
        card: &CardJob,
        outcome: pb::PrintOutcome,
        detail: &str,
    ) -> Result<(), Stop> {
        let request = pb::CompleteJobRequest {
            fence: Some(proto_fence(fence)),
            job_id: card.job_id.clone(),
            card_serial: card.card_serial.clone(),
            outcome: outcome as i32,
            detail: detail.to_owned(),
        };
        let answer = self
            .link
            .call(COMPLETE_DEADLINE, |ch| {
                let request = request.clone();
                async move { PrintQueueClient::new(ch).complete_job(request).await }
            })
            .await;
        match answer {
            Ok(_) => {
                if outcome == pb::PrintOutcome::Printed {
                    self.board.printed_one();
                    metrics::printed(self.printer.name());
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
                // Left PRINTING: the next reconciliation completes it from the printer's log.
                error!(job = %card.job_id, error = %status.message(), "completion not recorded; registry unreachable");
                Err(Stop::Failed("completion not recorded".into()))
            }
            Err(status) => {
                // The registry refused this completion for good (e.g. a wrong
                // state): keep printing the others; the job stays for an operator.
                error!(job = %card.job_id, code = ?status.code(), error = %status.message(), "completion refused");
                Ok(())
            }
        }
    }

    /// Completes every job still PRINTING — left by an earlier leader, or by
    /// this one when an answer was lost — from what the printer knows.
    async fn reconcile(&self, fence: &Fence) -> Result<(), Stop> {
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
            for job in page.jobs {
                let card = CardJob {
                    epoch: fence.epoch.0,
                    job_id: job.job_id.clone(),
                    card_serial: job.card_serial.clone(),
                    nik: job.nik.clone(),
                    full_name: String::new(),
                    // Reconciliation only asks the printer; it never renders.
                    resident: None,
                    material: None,
                    issued: None,
                };
                let recovery = self.printer.recover(&card.job_id, &card.card_serial).await;
                info!(job = %card.job_id, serial = %card.card_serial, claimed_at = job.claim_epoch, ?recovery, "reconciling an in-flight card");
                match recovery {
                    Ok(Recovery::Finished(Attempt::Printed)) => {
                        self.complete(
                            fence,
                            &card,
                            pb::PrintOutcome::Printed,
                            "reconciled from the printer log",
                        )
                        .await?;
                    }
                    Ok(Recovery::Finished(Attempt::Refused(_))) => {
                        // Our own fence refused a ticket of an older leader: never printed.
                        self.complete(
                            fence,
                            &card,
                            pb::PrintOutcome::NotPrinted,
                            "refused by the printer's fence",
                        )
                        .await?;
                    }
                    Ok(Recovery::Finished(Attempt::Spoiled(detail))) => {
                        self.complete(fence, &card, pb::PrintOutcome::Spoiled, &detail)
                            .await?;
                    }
                    Ok(Recovery::NotPrinted) => {
                        self.complete(
                            fence,
                            &card,
                            pb::PrintOutcome::NotPrinted,
                            "not in the printer log",
                        )
                        .await?;
                    }
                    Ok(Recovery::Unknown) => {
                        warn!(job = %card.job_id, "printer cannot tell whether the card printed; job in doubt for an operator");
                        self.complete(
                            fence,
                            &card,
                            pb::PrintOutcome::Unknown,
                            "not found in the printer's log after a failover",
                        )
                        .await?;
                    }
                    Err(e) => {
                        // The printer did not answer: leave the job PRINTING and
                        // try again at the next reconciliation.
                        warn!(job = %card.job_id, error = %e, "printer unreachable while reconciling");
                        metrics::printer_up(self.printer.name(), false);
                    }
                }
            }
            if page.next_page_token.is_empty() {
                return Ok(());
            }
            token = page.next_page_token;
        }
    }
}

fn proto_fence(fence: &Fence) -> pb::Fence {
    pb::Fence {
        leader_key: fence.key.clone(),
        epoch: fence.epoch.0,
    }
}

fn stock_stop(e: StateError) -> Stop {
    match e {
        StateError::FenceLost => Stop::Stale,
        other => Stop::Failed(other.to_string()),
    }
}

/// Waits `pause`, or less if the role changes.
async fn idle(role: &mut watch::Receiver<Role>, pause: Duration) {
    tokio::select! {
        _ = tokio::time::sleep(pause) => {}
        _ = role.changed() => {}
    }
}
