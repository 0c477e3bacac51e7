//! The `ektp.v1.PrintControl` service: status and card previews from any
//! replica; stock changes run on the leader (a follower forwards them).

use super::validate;
use crate::board::Board;
use crate::printer_state::PrinterState;
use crate::registry_link::RegistryLink;
use crate::render::{CardFace, render_front};
use crate::stock::{StateError, Stock};
use ektp_election::{ElectionHandle, Role};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::print_control_server::PrintControl;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_server::{AuditContext, AuditLog, AuditedMethod, Forwarder, not_leader};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};
use tracing::error;

/// How long a preview waits for the registry (retrying elsewhere on UNAVAILABLE).
const PREVIEW_REGISTRY_DEADLINE: Duration = Duration::from_secs(5);

/// GetCardPreview shows one person's data: audited.
const GET_CARD_PREVIEW: AuditedMethod = AuditedMethod {
    path: "/ektp.v1.PrintControl/GetCardPreview",
    implied_purpose: None,
};

/// What GetStatus reports about the printer.
pub struct PrinterInfo {
    pub name: String,
    pub driver: &'static str,
}

/// The PrintControl API.
pub struct PrintControlApi {
    pub election: ElectionHandle,
    pub stock: Stock,
    pub printer_state: PrinterState,
    pub board: Arc<Board>,
    pub link: Arc<RegistryLink>,
    pub printer: PrinterInfo,
    pub forwarder: Forwarder,
    pub audit: AuditLog,
}

fn stock_status(e: StateError) -> Status {
    match e {
        StateError::FenceLost => not_leader(None),
        other => {
            error!(error = %other, "blank stock update failed");
            Status::unavailable("blank stock unavailable; retry")
        }
    }
}

#[tonic::async_trait]
impl PrintControl for PrintControlApi {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::PrintStatus>, Status> {
        let role = self.election.role();
        let leader = role.leader();
        let (stock, _) = self.stock.read().await.map_err(stock_status)?;
        let stats = self
            .link
            .call(Duration::from_secs(2), |ch| async move {
                RegistryClient::new(ch)
                    .get_stats(pb::GetStatsRequest {})
                    .await
            })
            .await
            .ok();
        Ok(Response::new(pb::PrintStatus {
            role: match role {
                Role::Leader { .. } => pb::Role::Leader,
                _ => pb::Role::Follower,
            } as i32,
            leader_address: leader
                .as_ref()
                .map(|l| l.address.clone())
                .unwrap_or_default(),
            epoch: leader.map(|l| l.epoch.0).unwrap_or_default(),
            printers: vec![pb::PrinterStatus {
                name: self.printer.name.clone(),
                driver: self.printer.driver.to_owned(),
                paused: self.printer_state.paused().await.map_err(stock_status)?,
                printed: self.board.printed(),
            }],
            blank_stock: stock.remaining,
            queue_depth: stats.map(|s| s.queued).unwrap_or_default(),
            printed_today: self.board.printed_today(),
            out_of_blanks: role.is_leader() && self.board.out_of_blanks(),
            blank_days_left: if role.is_leader() {
                self.board.days_left(stock.remaining, stock.consumed_total)
            } else {
                -1.0
            },
        }))
    }

    async fn add_blank_stock(
        &self,
        request: Request<pb::AddBlankStockRequest>,
    ) -> Result<Response<pb::BlankStock>, Status> {
        // Validated here so a follower refuses bad input without a hop.
        validate::add_blank_stock(request.get_ref())?;

        let stock = self.stock.clone();
        let election = self.election.clone();
        self.forwarder
            .write(
                request,
                |r| async move {
                    let fence = election
                        .role()
                        .fence()
                        .cloned()
                        .ok_or_else(|| not_leader(None))?;
                    let remaining = stock
                        .add(&fence, r.count, &r.reference, &r.request_id)
                        .await
                        .map_err(stock_status)?;
                    Ok(pb::BlankStock { remaining })
                },
                |ch, r| async move { PrintControlClient::new(ch).add_blank_stock(r).await },
            )
            .await
    }

    async fn pause_printer(
        &self,
        request: Request<pb::PausePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        let name = request.get_ref().name.clone();
        self.set_paused(request, name, true, |ch, r| async move {
            PrintControlClient::new(ch).pause_printer(r).await
        })
        .await
    }

    async fn resume_printer(
        &self,
        request: Request<pb::ResumePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        let name = request.get_ref().name.clone();
        self.set_paused(request, name, false, |ch, r| async move {
            PrintControlClient::new(ch).resume_printer(r).await
        })
        .await
    }

    async fn get_card_preview(
        &self,
        request: Request<pb::GetCardPreviewRequest>,
    ) -> Result<Response<pb::GetCardPreviewResponse>, Status> {
        let ctx = AuditContext::of(&request, GET_CARD_PREVIEW)?;
        validate::card_preview(request.get_ref())?;
        let job_id = request.into_inner().job_id;
        // The person is the job's resident: known once the job is read.
        let mut nik = String::new();
        let result = self.card_preview(job_id, &mut nik).await;
        self.audit
            .answer(&ctx, result, [nik])
            .await
            .map(Response::new)
    }
}

impl PrintControlApi {
    /// Renders the preview of `job_id`, setting `nik` as soon as it is known.
    async fn card_preview(
        &self,
        job_id: String,
        nik: &mut String,
    ) -> Result<pb::GetCardPreviewResponse, Status> {
        // Read-only: any replica answers, from any registry replica. Errors
        // (NOT_FOUND above all) pass through unchanged.
        let job = self
            .link
            .call(PREVIEW_REGISTRY_DEADLINE, |ch| {
                let request = pb::GetPrintJobRequest {
                    job_id: job_id.clone(),
                };
                async move { RegistryClient::new(ch).get_print_job(request).await }
            })
            .await?;
        nik.clone_from(&job.nik);
        let resident = self
            .link
            .call(PREVIEW_REGISTRY_DEADLINE, |ch| {
                let request = pb::GetResidentRequest {
                    nik: job.nik.clone(),
                };
                async move { RegistryClient::new(ch).get_resident(request).await }
            })
            .await?;
        // Print material is not readable through the registry API: the
        // preview draws the photo and signature placeholders.
        let face = CardFace::new(&resident, &job.card_serial, None, job.update_time.as_ref());
        let png = tokio::task::spawn_blocking(move || render_front(&face))
            .await
            .map_err(|e| {
                error!(error = %e, "card preview task failed");
                Status::internal("card preview failed")
            })?
            .map_err(|e| {
                error!(error = %e, "card preview failed");
                Status::internal("card preview failed")
            })?;
        Ok(pb::GetCardPreviewResponse {
            png,
            card_serial: job.card_serial,
        })
    }

    /// Pauses or resumes the named printer on the leader (a follower forwards).
    async fn set_paused<T, F, Fut>(
        &self,
        request: Request<T>,
        name: String,
        paused: bool,
        remote: F,
    ) -> Result<Response<pb::PrinterStatus>, Status>
    where
        F: FnOnce(tonic::transport::Channel, Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<Response<pb::PrinterStatus>, Status>>,
    {
        validate::printer_name(&name, &self.printer.name)?;
        let state = self.printer_state.clone();
        let election = self.election.clone();
        let status = pb::PrinterStatus {
            name,
            driver: self.printer.driver.to_owned(),
            paused,
            printed: self.board.printed(),
        };
        self.forwarder
            .write(
                request,
                |_| async move {
                    let fence = election
                        .role()
                        .fence()
                        .cloned()
                        .ok_or_else(|| not_leader(None))?;
                    state
                        .set_paused(&fence, paused)
                        .await
                        .map_err(stock_status)?;
                    Ok(status)
                },
                remote,
            )
            .await
    }
}
