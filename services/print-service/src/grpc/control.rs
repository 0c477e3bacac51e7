//! The `ektp.v1.PrintControl` service: status from any replica; stock changes
//! run on the leader (a follower forwards them).

use crate::board::Board;
use crate::registry_link::RegistryLink;
use crate::stock::{Stock, StockError};
use ektp_election::{ElectionHandle, Role};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::print_control_server::PrintControl;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_server::{Forwarder, Violations, not_leader};
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Response, Status};
use tracing::error;

/// What GetStatus reports about the printer.
pub struct PrinterInfo {
    pub name: String,
    pub driver: &'static str,
}

/// The PrintControl API.
pub struct PrintControlApi {
    pub election: ElectionHandle,
    pub stock: Stock,
    pub board: Arc<Board>,
    pub link: Arc<RegistryLink>,
    pub printer: PrinterInfo,
    pub forwarder: Forwarder,
}

fn stock_status(e: StockError) -> Status {
    match e {
        StockError::FenceLost => not_leader(None),
        StockError::Empty => Status::failed_precondition("no blanks left"),
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
                paused: false,
                printed: self.board.printed(),
            }],
            blank_stock: stock.remaining,
            queue_depth: stats.map(|s| s.queued).unwrap_or_default(),
            printed_today: self.board.printed_today(),
            out_of_blanks: role.is_leader() && self.board.out_of_blanks(),
        }))
    }

    async fn add_blank_stock(
        &self,
        request: Request<pb::AddBlankStockRequest>,
    ) -> Result<Response<pb::BlankStock>, Status> {
        let r = request.get_ref();
        // Validated here so a follower refuses bad input without a hop.
        let mut v = Violations::new();
        v.require(
            (1..=1_000_000).contains(&r.count),
            "count",
            "must be 1-1000000",
        );
        v.require(
            r.reference.chars().count() <= 100 && !r.reference.chars().any(char::is_control),
            "reference",
            "at most 100 characters, no control characters",
        );
        let id_ok = r.request_id.len() <= 64
            && r.request_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b));
        v.require(
            id_ok,
            "request_id",
            "at most 64 characters of A-Z a-z 0-9 . _ : -",
        );
        v.into_result()?;

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
                        .add(&fence, r.count, &r.request_id)
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
        _: Request<pb::PausePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        Err(Status::unimplemented("PausePrinter is not implemented yet"))
    }

    async fn resume_printer(
        &self,
        _: Request<pb::ResumePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        Err(Status::unimplemented(
            "ResumePrinter is not implemented yet",
        ))
    }
}
