//! registry-service configuration: flags, or `EKTP_*` environment variables.

use clap::Parser;
use ektp_server::NodeArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The ektp registry: residents, print queue and card ledger in etcd.
#[derive(Parser, Clone, Debug)]
#[command(name = "registry-service", version)]
pub struct RegistryConfig {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Failed print attempts (spoiled blanks) after which a job is FAILED.
    #[arg(long, env = "EKTP_MAX_PRINT_ATTEMPTS", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub max_print_attempts: u32,
    /// Hours an idempotency record (`request_id`) is kept.
    #[arg(long, env = "EKTP_REQUEST_RETENTION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=24 * 30))]
    pub request_retention_hours: u64,
    /// Hours outbox events are kept for consumers to catch up (default 90 days).
    #[arg(long, env = "EKTP_EVENT_RETENTION_HOURS", default_value_t = 24 * 90, value_parser = clap::value_parser!(u64).range(1..=24 * 3650))]
    pub event_retention_hours: u64,
    /// Seconds print material (photo, signature) is kept after its card was collected (default 30 days).
    #[arg(long, env = "EKTP_MATERIAL_RETENTION_SECS", default_value_t = 30 * 24 * 3600)]
    pub material_retention_secs: u64,
    /// Seconds audit entries are kept (default 400 days).
    #[arg(long, env = "EKTP_AUDIT_RETENTION_SECS", default_value_t = 400 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_secs: u64,
    /// Seconds between retention sweeps (events, print material, audit trail).
    #[arg(long, env = "EKTP_RETENTION_SWEEP_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub retention_sweep_secs: u64,
    /// Longest a replica answers verifications from its in-memory index
    /// after the index was last confirmed current (ms); beyond it, and while
    /// the index loads, answers come from etcd.
    #[arg(long, env = "EKTP_VERIFY_INDEX_MAX_LAG_MS", default_value_t = 2_000, value_parser = clap::value_parser!(u64).range(250..=600_000))]
    pub verify_index_max_lag_ms: u64,
    /// Directory of print material keys (a mounted Secret): one file per key,
    /// named by its id (`[a-z0-9-]`), holding 32 random bytes or 64 hex characters.
    #[arg(long, env = "EKTP_MATERIAL_KEYS_DIR")]
    pub material_keys_dir: PathBuf,
    /// Id of the key that seals new print material (required when the directory holds several).
    #[arg(long, env = "EKTP_MATERIAL_KEY_ID")]
    pub material_key_id: Option<String>,
}

impl RegistryConfig {
    /// Where the gRPC server binds when not configured.
    pub fn listen(&self) -> SocketAddr {
        self.node
            .listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50051)))
    }

    /// Where `/metrics` binds when not configured.
    pub fn metrics_listen(&self) -> SocketAddr {
        self.node
            .metrics_listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9091)))
    }

    pub fn event_retention(&self) -> Duration {
        Duration::from_secs(self.event_retention_hours * 3600)
    }

    pub fn verify_index_max_lag(&self) -> Duration {
        Duration::from_millis(self.verify_index_max_lag_ms)
    }

    pub fn request_retention(&self) -> Duration {
        Duration::from_secs(self.request_retention_hours * 3600)
    }
}
