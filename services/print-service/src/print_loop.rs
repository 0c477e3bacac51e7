//! The print leader's loop: reconcile cards left in flight by an earlier
//! leader (`reconcile.rs`), then a pipeline — claim a batch (never more
//! jobs than blanks left), take its blanks in one transaction, hand the cards
//! to the printer one by one while the next batch is claimed, and report the
//! outcomes at the registry in batches as they finish (`report.rs`).
//! Every registry call carries this node's fence; a stale-epoch answer or a
//! lost fence makes it step down at once.

mod reconcile;
mod report;

use crate::board::Board;
use crate::metrics;
use crate::printer::{Attempt, CardJob, Printer, Recovery};
use crate::printer_state::PrinterState;
use crate::registry_link::RegistryLink;
use crate::stock::{StateError, Stock};
use ektp_election::{ElectionHandle, Fence, Role};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use report::Outcome;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tonic::Status;
use tracing::{error, info, warn};

const CLAIM_DEADLINE: Duration = Duration::from_secs(5);
/// Outcomes printed but not yet reported, at most: the printer waits for the
/// registry beyond that.
const UNREPORTED: usize = 128;

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
pub(crate) enum Stop {
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
        // Printing and reporting run side by side; when printing stops, the
        // outcomes already printed are still reported, and when reporting
        // fails, printing stops (unreported cards stay PRINTING for the next
        // reconciliation).
        let (outcomes, unreported) = mpsc::channel(UNREPORTED);
        let (printed, reported) = tokio::join!(
            self.produce(fence, role, outcomes),
            self.report(fence, unreported)
        );
        reported?;
        printed
    }

    /// Claims, takes blanks and prints until leading stops; every attempt's
    /// outcome goes to `outcomes`. Returns `Ok` when the reporter stopped.
    async fn produce(
        &self,
        fence: &Fence,
        role: &mut watch::Receiver<Role>,
        outcomes: mpsc::Sender<Outcome>,
    ) -> Result<(), Stop> {
        // A batch claimed while the previous one printed.
        let mut next: Option<Vec<pb::ClaimedJob>> = None;
        loop {
            self.still_leading(fence)?;
            if outcomes.is_closed() {
                return Ok(());
            }
            if self.state.paused().await.map_err(stock_stop)? {
                // A batch already claimed waits, PRINTING, for the resume.
                idle(role, self.config.idle_poll).await;
                continue;
            }
            let batch = match next.take() {
                Some(batch) => batch,
                None => {
                    let (record, _) = self.stock.read().await.map_err(stock_stop)?;
                    let empty = record.remaining == 0;
                    self.board.set_out_of_blanks(empty);
                    metrics::blank_stock(record.remaining, empty);
                    if empty {
                        warn!("out of blank stock: printing paused");
                        idle(role, self.config.idle_poll).await;
                        continue;
                    }
                    match self.claim_within(fence, record.remaining).await {
                        Ok(batch) => batch,
                        Err(status) => {
                            self.claim_failed(fence, role, &status).await?;
                            continue;
                        }
                    }
                }
            };
            if batch.is_empty() {
                idle(role, self.config.idle_poll).await;
                continue;
            }
            // Leadership is checked right before blanks are taken and cards printed.
            self.still_leading(fence)?;
            let serials: Vec<String> = batch
                .iter()
                .map(|c| {
                    c.job
                        .as_ref()
                        .map(|j| j.card_serial.clone())
                        .unwrap_or_default()
                })
                .collect();
            let (taken, remaining) = self.stock.take(fence, &serials).await.map_err(stock_stop)?;
            metrics::blank_stock(remaining, remaining == 0);
            // Claim the next batch while this one prints: both fenced by the
            // same epoch, and never more jobs than the blanks now left.
            let (printed, claimed) =
                tokio::join!(self.print_batch(fence, batch, taken, &outcomes), async {
                    if remaining == 0 {
                        return None;
                    }
                    Some(self.claim_within(fence, remaining).await)
                });
            printed?;
            match claimed {
                Some(Ok(batch)) => next = Some(batch),
                Some(Err(status)) => self.claim_failed(fence, role, &status).await?,
                None => {}
            }
        }
    }

    /// Claims up to a batch, never more jobs than `blanks`.
    async fn claim_within(
        &self,
        fence: &Fence,
        blanks: u64,
    ) -> Result<Vec<pb::ClaimedJob>, Status> {
        let max = u32::try_from(blanks)
            .unwrap_or(u32::MAX)
            .min(self.config.batch);
        let low_stock = blanks < u64::from(self.config.low_stock_threshold);
        self.claim(fence, max, low_stock).await
    }

    /// After a failed claim: the claim may have been applied with its answer
    /// lost, so our own orphaned claims are picked up before claiming more.
    async fn claim_failed(
        &self,
        fence: &Fence,
        role: &mut watch::Receiver<Role>,
        status: &Status,
    ) -> Result<(), Stop> {
        warn!(error = %status.message(), "claim failed; reconciling");
        if ektp_server::is_stale_epoch(status) {
            return Err(Stop::Stale);
        }
        idle(role, self.config.idle_poll).await;
        self.reconcile(fence).await
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

    /// Prints a batch whose first `taken` cards have blanks, in order; the
    /// others were never attempted and are reported NOT_PRINTED. Stops early
    /// (`Ok`) when the reporter is gone: the cards left stay PRINTING, and
    /// their blanks are given back when they are reconciled.
    async fn print_batch(
        &self,
        fence: &Fence,
        batch: Vec<pb::ClaimedJob>,
        taken: usize,
        outcomes: &mpsc::Sender<Outcome>,
    ) -> Result<(), Stop> {
        for (i, claimed) in batch.into_iter().enumerate() {
            let card = card_job(fence, claimed);
            let outcome = if i < taken {
                // Checked again before every card goes to the printer.
                self.still_leading(fence)?;
                if outcomes.is_closed() {
                    return Ok(());
                }
                let outcome = self.attempt(&card).await?;
                if outcome.outcome == pb::PrintOutcome::NotPrinted {
                    // The card never reached the printer: its blank is unused.
                    self.stock
                        .give_back(fence, &card.card_serial)
                        .await
                        .map_err(stock_stop)?;
                }
                outcome
            } else {
                Outcome::of(&card, pb::PrintOutcome::NotPrinted, "no blank stock left")
            };
            if outcomes.send(outcome).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Hands one card (its blank taken) to the printer and tells how it ended.
    async fn attempt(&self, card: &CardJob) -> Result<Outcome, Stop> {
        let started = Instant::now();
        let printer = self.printer.name();
        let outcome = match self.printer.print(card).await {
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
        Ok(Outcome::of(card, result, &detail))
    }
}

/// What the printer needs of a claimed job (moved, not copied: the material
/// holds the photo).
fn card_job(fence: &Fence, claimed: pb::ClaimedJob) -> CardJob {
    let job = claimed.job.unwrap_or_default();
    CardJob {
        epoch: fence.epoch.0,
        full_name: claimed
            .resident
            .as_ref()
            .map(|r| r.full_name.clone())
            .unwrap_or_default(),
        job_id: job.job_id,
        card_serial: job.card_serial,
        nik: job.nik,
        resident: claimed.resident,
        material: claimed.material,
        issued: job.update_time,
    }
}

pub(crate) fn proto_fence(fence: &Fence) -> pb::Fence {
    pb::Fence {
        leader_key: fence.key.clone(),
        epoch: fence.epoch.0,
    }
}

pub(crate) fn stock_stop(e: StateError) -> Stop {
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
