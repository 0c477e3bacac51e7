//! Server scaffolding shared by registry-service and print-service: the
//! common node configuration, tracing, the Prometheus `/metrics` listener,
//! the tower stack every gRPC server runs behind, health and reflection,
//! gRPC error details (`BadRequest`, `NOT_LEADER`), forwarding to the leader,
//! graceful shutdown, and the audit trail.

mod audit;
mod auth;
mod config;
mod etcd;
mod forward;
mod gate;
mod grpc_metrics;
mod health;
mod limits;
mod metrics_http;
mod outbox;
mod reflection;
mod serve;
mod shutdown;
mod stack;
mod startup;
mod status;
mod telemetry;
mod tls;

pub use audit::{
    AuditApi, AuditContext, AuditInTxn, AuditLog, BatchLimits as AuditBatchLimits,
    Method as AuditedMethod, caller_or_anonymous,
};
pub use auth::{
    Access, AuthArgs, AuthGate, CALLER_HEADER, Caller, PURPOSE_HEADER, Policy, Role, TABLE, access,
    stated_purpose,
};

pub use config::{LogFormat, NodeArgs};
pub use etcd::{EtcdArgs, connect as connect_etcd};
pub use forward::{FORWARDED_HEADER, Forwarder, LeaderChannels, is_forwarded, mark_forwarded};
pub use gate::{Gate, GateLayer, Gated};
pub use grpc_metrics::{GrpcMetrics, GrpcMetricsLayer};
pub use limits::{LimitArgs, LoadShedGate, RateLimitGate};
pub use metrics_http::{install_recorder, serve_metrics};
pub use outbox::{Outbox, event_cursor, parse_cursor};
pub use serve::{NodeRouter, base_router, serve};
pub use shutdown::shutdown_signal;
pub use stack::{Deadline, DeadlineLayer, NodeLayers, ServerSetup, server_builder};
pub use startup::{
    StartError, bind, exit_code, install_metrics, local_addr, serve_installed_metrics,
};
pub use status::{
    NOT_LEADER, STALE_EPOCH, Violations, is_stale_epoch, leader_address_of, not_leader, stale_epoch,
};
pub use telemetry::init_tracing;
pub use tls::{Tls, TlsArgs};
