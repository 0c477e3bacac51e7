//! registry-service: the office's registry of residents, its print queue and
//! its card ledger. All state lives in etcd under `/ektp/{office}/` (layout in
//! [`keys`]). Replicas elect a leader; the leader is the single writer and
//! fences every write on its epoch; followers serve reads and forward writes.

mod config;
mod error;
mod etcd;
mod events;
mod gauges;
mod grpc;
mod ids;
pub mod keys;
pub mod sealing;
mod store;
mod validate;
mod validate_lifecycle;
#[cfg(test)]
mod validate_props;
mod verify;
mod verify_index;
mod writer;

pub use config::RegistryConfig;
pub use ids::{CardSerial, JobId};

use ektp_election::{ElectionConfig, ElectionHandle};
use ektp_proto::v1::audit_server::AuditServer;
use ektp_proto::v1::print_queue_server::PrintQueueServer;
use ektp_proto::v1::registry_server::RegistryServer;
use ektp_server::{AuditApi, AuditLog, StartError};
use keys::Keys;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tracing::info;

/// A built registry node, listening but not yet serving.
pub struct App {
    config: RegistryConfig,
    listener: TcpListener,
    local_addr: SocketAddr,
    election: ElectionHandle,
    writer: writer::Writer,
    store: store::Store,
    keys: Keys,
    setup: ektp_server::ServerSetup,
    audit: AuditLog,
    verify_index: verify_index::VerifyIndex,
}

impl App {
    /// Binds the listeners, connects to etcd and starts campaigning.
    pub async fn build(config: RegistryConfig) -> Result<Self, StartError> {
        // Keys first: a node that could not open print material must not start.
        let material_keys = sealing::MaterialKeys::load(
            &config.material_keys_dir,
            config.material_key_id.as_deref(),
        )
        .map_err(|e| StartError::Setup(e.to_string()))?;
        info!(active = material_keys.active_id(), keys = ?material_keys.ids().collect::<Vec<_>>(), "print material keys loaded");
        let listener = ektp_server::bind(config.listen()).await?;
        let local_addr = ektp_server::local_addr(&listener, config.listen())?;
        let setup = ektp_server::ServerSetup::load(&config.node)?;
        let client = ektp_server::connect_etcd(&config.node.etcd).await?;
        let keys = Keys::new(config.node.key_prefix());
        let election = ektp_election::spawn(
            client.clone(),
            ElectionConfig {
                service: "registry",
                name: keys.registry_election(),
                address: config.node.advertised(local_addr),
                ttl: config.node.lease_ttl(),
                keepalive: config.node.keepalive_interval(),
                margin: config.node.lease_margin(),
            },
        );
        let audit = AuditLog::spawn(
            client.clone(),
            keys.prefix(),
            config.node.advertised(local_addr),
            ektp_server::AuditBatchLimits::default(),
        );
        let writer = writer::Writer::spawn(
            client.clone(),
            keys.clone(),
            election.clone(),
            std::sync::Arc::new(material_keys),
            audit.clone(),
            writer::WriterConfig {
                max_print_attempts: config.max_print_attempts,
                request_retention: config.request_retention(),
                event_retention: config.event_retention(),
                material_retention: Duration::from_secs(config.material_retention_secs),
            },
        );
        // Loads in the background; verification answers from etcd meanwhile.
        let verify_index = verify_index::VerifyIndex::spawn(
            client.clone(),
            keys.clone(),
            config.verify_index_max_lag(),
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
            setup,
            audit,
            verify_index,
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
        gauges::spawn(self.store.clone(), self.election.clone());
        self.writer.spawn_retention(
            self.election.clone(),
            Duration::from_secs(self.config.retention_sweep_secs),
        );
        self.writer.spawn_reseal(
            self.election.clone(),
            Duration::from_secs(self.config.retention_sweep_secs),
        );
        self.audit.spawn_retention(
            self.election.clone(),
            Duration::from_secs(self.config.audit_retention_secs),
            Duration::from_secs(self.config.retention_sweep_secs),
        );
        let forwarder = grpc::Forwarder::new(self.election.clone(), self.setup.tls.client.clone());
        let auditor = grpc::Auditor {
            log: self.audit.clone(),
            store: self.store.clone(),
        };
        let registry = grpc::RegistryApi {
            store: self.store.clone(),
            writer: self.writer.clone(),
            forwarder: forwarder.clone(),
            audit: auditor.clone(),
            verify_index: self.verify_index.clone(),
        };
        let print_queue = grpc::PrintQueueApi {
            writer: self.writer.clone(),
            forwarder,
            keys: self.keys.clone(),
            audit: auditor,
        };
        let max = self.setup.limits.max_message_bytes();
        let router = ektp_server::base_router(
            &self.setup,
            &self.election,
            &["ektp.v1.Registry", "ektp.v1.PrintQueue", "ektp.v1.Audit"],
        )?
        .add_service(
            RegistryServer::new(registry)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        .add_service(
            PrintQueueServer::new(print_queue)
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        )
        // Auditors read the trail through any replica.
        .add_service(
            AuditServer::new(AuditApi::new(self.audit.clone()))
                .max_decoding_message_size(max)
                .max_encoding_message_size(max),
        );
        info!(addr = %self.local_addr, office = %self.config.node.office, "registry serving");
        let drain = self.config.node.drain_timeout();
        ektp_server::serve(
            router,
            self.listener,
            shutdown,
            || {},
            drain,
            &self.election,
        )
        .await
    }
}

/// Runs a node until `shutdown`: metrics, listeners, the app.
pub async fn run(
    config: RegistryConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    ektp_server::install_metrics("registry", || {
        gauges::describe();
        verify_index::describe();
    });
    let metrics_listener = ektp_server::bind(config.metrics_listen()).await?;
    App::build(config)
        .await?
        .run(Some(metrics_listener), shutdown)
        .await
}
