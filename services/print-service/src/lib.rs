//! print-service: its leader claims print jobs from the registry, takes one
//! blank per attempt from the stock in etcd, prints through a [`Printer`],
//! and reports each outcome back, all under its election fence. Followers
//! are hot backups that answer status and forward stock changes.

mod board;
mod config;
mod grpc;
mod metrics;
mod print_loop;
pub mod printer;
mod printer_state;
mod registry_leader;
mod registry_link;
pub mod render;
mod stock;

pub use config::{Driver, PrintConfig};
pub use printer::Printer;

use ektp_election::{ElectionConfig, ElectionHandle};
use ektp_proto::v1::print_control_server::PrintControlServer;
use ektp_server::{AuditLog, StartError};
use printer::{AnyPrinter, hotfolder::HotFolderPrinter, sim::SimPrinter};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::info;

/// How often the leader sweeps audit entries past their retention.
const AUDIT_SWEEP: Duration = Duration::from_secs(60);

/// A built print node, listening but not yet serving.
pub struct App {
    config: PrintConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    election: ElectionHandle,
    stock: stock::Stock,
    printer_state: printer_state::PrinterState,
    printer: Arc<AnyPrinter>,
    link: Arc<registry_link::RegistryLink>,
    setup: ektp_server::ServerSetup,
    audit: AuditLog,
}

impl App {
    /// Binds, connects to etcd, sets up the printer and starts campaigning.
    pub async fn build(config: PrintConfig) -> Result<Self, StartError> {
        let setup = ektp_server::ServerSetup::load(&config.node)?;
        let listener = ektp_server::bind(config.listen()).await?;
        let local_addr = ektp_server::local_addr(&listener, config.listen())?;
        let printer = Arc::new(match config.printer_driver {
            Driver::Sim => AnyPrinter::Sim(SimPrinter::new(
                config.printer_name.clone(),
                config.sim_cards_per_hour,
                config.sim_failure_rate,
                u64::from(local_addr.port()),
            )),
            Driver::Hotfolder => AnyPrinter::HotFolder(
                HotFolderPrinter::new(
                    config.printer_name.clone(),
                    config.hotfolder_dir.clone().unwrap_or_default(),
                    Duration::from_secs(config.card_timeout_secs),
                )
                .map_err(|e| StartError::Setup(e.to_string()))?,
            ),
        });
        let client = ektp_server::connect_etcd(&config.node.etcd).await?;
        let prefix = config.node.key_prefix();
        let election = ektp_election::spawn(
            client.clone(),
            ElectionConfig {
                service: "print",
                name: format!("{prefix}print/leader"),
                address: config.node.advertised(local_addr),
                ttl: config.node.lease_ttl(),
                keepalive: config.node.keepalive_interval(),
                margin: config.node.lease_margin(),
            },
        );
        let printer_state =
            printer_state::PrinterState::new(client.clone(), &prefix, &config.printer_name);
        let audit = AuditLog::spawn(
            client.clone(),
            &prefix,
            config.node.advertised(local_addr),
            ektp_server::AuditBatchLimits::default(),
        );
        let stock = stock::Stock::new(client.clone(), &prefix);
        let link = Arc::new(registry_link::RegistryLink::new(
            config.registry_endpoints.clone(),
            setup.tls.client.clone(),
        ));
        registry_leader::spawn(client, format!("{prefix}registry/leader"), link.clone());
        Ok(Self {
            config,
            listener,
            local_addr,
            election,
            stock,
            printer_state,
            printer,
            link,
            setup,
            audit,
        })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Prints while leading and serves until `shutdown`; then stops the print
    /// loop (a card at the printer is finished by whoever leads next, from the
    /// printer's log), drains requests and resigns.
    pub async fn run(
        self,
        metrics_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        if let Some(listener) = metrics_listener {
            ektp_server::serve_installed_metrics(listener);
        }
        let board = Arc::new(board::Board::default());
        self.audit.spawn_retention(
            self.election.clone(),
            Duration::from_secs(self.config.audit_retention_secs),
            AUDIT_SWEEP,
        );
        spawn_queue_gauges(self.link.clone(), self.election.clone());
        let print_loop = tokio::spawn(
            print_loop::PrintLoop {
                printer: self.printer.clone(),
                state: self.printer_state.clone(),
                link: self.link.clone(),
                stock: self.stock.clone(),
                election: self.election.clone(),
                board: board.clone(),
                config: print_loop::LoopConfig {
                    batch: self.config.claim_batch,
                    idle_poll: self.config.idle_poll(),
                    low_stock_threshold: self.config.low_stock_threshold,
                },
            }
            .run(),
        );
        let control = grpc::PrintControlApi {
            election: self.election.clone(),
            stock: self.stock.clone(),
            printer_state: self.printer_state.clone(),
            board,
            link: self.link.clone(),
            printer: grpc::PrinterInfo {
                name: self.printer.name().to_owned(),
                driver: self.printer.driver(),
            },
            forwarder: ektp_server::Forwarder::new(
                self.election.clone(),
                self.setup.tls.client.clone(),
            ),
            audit: self.audit.clone(),
        };
        let max = self.setup.limits.max_message_bytes();
        let router =
            ektp_server::base_router(&self.setup, &self.election, &["ektp.v1.PrintControl"])?
                .add_service(
                    PrintControlServer::new(control)
                        .max_decoding_message_size(max)
                        .max_encoding_message_size(max),
                );
        info!(addr = %self.local_addr, printer = self.printer.name(), "print-service serving");
        let drain = self.config.node.drain_timeout();
        // Stop printing first: a card at the printer is finished by whoever
        // leads next, from the printer's log.
        let stop_printing = move || print_loop.abort();
        ektp_server::serve(
            router,
            self.listener,
            shutdown,
            stop_printing,
            drain,
            &self.election,
        )
        .await
    }
}

/// Runs a node until `shutdown`: metrics, listeners, the app.
pub async fn run(
    config: PrintConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    ektp_server::install_metrics("print", metrics::describe);
    let metrics_listener = ektp_server::bind(config.metrics_listen()).await?;
    App::build(config)
        .await?
        .run(Some(metrics_listener), shutdown)
        .await
}

/// Exports the registry's queue depth and in-doubt count while leading
/// (followers report 0, so `max()` across replicas is the cluster's value).
fn spawn_queue_gauges(link: Arc<registry_link::RegistryLink>, election: ElectionHandle) {
    use ektp_proto::v1::{GetStatsRequest, registry_client::RegistryClient};
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            if !election.role().is_leader() {
                metrics::queue(0, 0);
                continue;
            }
            let stats = link
                .call(Duration::from_secs(2), |ch| async move {
                    RegistryClient::new(ch).get_stats(GetStatsRequest {}).await
                })
                .await;
            if let Ok(stats) = stats {
                metrics::queue(stats.queued, stats.in_doubt);
            }
        }
    });
}
