//! registry-service: the office's registry of residents, its print queue and
//! its card ledger. All state lives in etcd under `/ektp/{office}/` (layout in
//! [`keys`]). Replicas elect a leader; the leader is the single writer and
//! fences every write on its epoch; followers serve reads and forward writes.

mod config;
mod error;
mod etcd;
mod grpc;
mod ids;
pub mod keys;
mod store;
mod validate;
mod writer;

pub use config::RegistryConfig;
pub use ids::{CardSerial, JobId};

use ektp_election::{ElectionConfig, ElectionHandle};
use ektp_proto::v1::print_queue_server::PrintQueueServer;
use ektp_proto::v1::registry_server::RegistryServer;
use ektp_server::StartError;
use keys::Keys;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tracing::{info, warn};

/// A built registry node, listening but not yet serving.
pub struct App {
    config: RegistryConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    election: ElectionHandle,
    writer: writer::Writer,
    store: store::Store,
    keys: Keys,
}

impl App {
    /// Binds the listeners, connects to etcd and starts campaigning.
    pub async fn build(config: RegistryConfig) -> Result<Self, StartError> {
        let listener = ektp_server::bind(config.listen()).await?;
        let local_addr = ektp_server::local_addr(&listener, config.listen())?;
        let client = ektp_server::connect_etcd(&config.node.etcd_endpoints).await?;
        let keys = Keys::new(config.node.key_prefix());
        let election = ektp_election::spawn(
            client.clone(),
            ElectionConfig {
                service: "registry",
                name: keys.registry_election(),
                address: config.node.advertised(local_addr),
                ttl: config.node.lease_ttl(),
                margin: config.node.lease_margin(),
            },
        );
        let writer = writer::Writer::spawn(
            client.clone(),
            keys.clone(),
            election.clone(),
            writer::WriterConfig {
                max_print_attempts: config.max_print_attempts,
                request_retention: config.request_retention(),
            },
        );
        let store = store::Store::new(client, keys.clone());
        Ok(Self {
            config,
            listener,
            local_addr,
            election,
            writer,
            store,
            keys,
        })
    }

    /// The bound gRPC address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, drains in-flight requests (bounded by
    /// the drain timeout), then resigns so the peer takes over at once.
    pub async fn run(
        self,
        metrics_listener: Option<TcpListener>,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), StartError> {
        if let Some(listener) = metrics_listener {
            ektp_server::serve_installed_metrics(listener);
        }
        let (health_reporter, health) = tonic_health::server::health_reporter();
        ektp_server::spawn_readiness(
            health_reporter,
            &self.election,
            vec!["ektp.v1.Registry".into(), "ektp.v1.PrintQueue".into()],
        );
        let (reflection_v1, reflection_v1alpha) = ektp_server::reflection_services()?;
        let forwarder = grpc::Forwarder::new(self.election.clone());
        let registry = grpc::RegistryApi {
            store: self.store.clone(),
            writer: self.writer.clone(),
            forwarder: forwarder.clone(),
        };
        let print_queue = grpc::PrintQueueApi {
            writer: self.writer.clone(),
            forwarder,
            keys: self.keys.clone(),
        };
        info!(addr = %self.local_addr, office = %self.config.node.office, "registry serving");
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = ektp_server::server_builder(self.config.node.request_timeout())
            .add_service(health)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(RegistryServer::new(registry))
            .add_service(PrintQueueServer::new(print_queue))
            .serve_with_incoming_shutdown(TcpListenerStream::new(self.listener), async {
                let _ = stop_rx.await;
            });
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => return result.map_err(StartError::from),
            () = shutdown => {}
        }
        info!("stopping: draining in-flight requests");
        let _ = stop_tx.send(());
        if tokio::time::timeout(self.config.node.drain_timeout(), &mut server)
            .await
            .is_err()
        {
            warn!("drain timed out; stopping anyway");
        }
        self.election.resign().await;
        info!("resigned; bye");
        Ok(())
    }
}

/// Runs a node until `shutdown`: metrics, listeners, the app.
pub async fn run(
    config: RegistryConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    ektp_server::install_metrics("registry", || {});
    let metrics_listener = ektp_server::bind(config.metrics_listen()).await?;
    App::build(config)
        .await?
        .run(Some(metrics_listener), shutdown)
        .await
}
