//! Configuration every ektp node shares, flattened into each service's own.

use crate::auth::AuthArgs;
use crate::etcd::EtcdArgs;
use crate::limits::LimitArgs;
use crate::tls::TlsArgs;
use clap::{Args, ValueEnum};
use std::net::SocketAddr;
use std::time::Duration;

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Settings shared by every ektp node.
#[derive(Args, Clone, Debug)]
pub struct NodeArgs {
    /// Office id: every key lives under `/ektp/{office}/`.
    #[arg(long, env = "EKTP_OFFICE", default_value = "dev", value_parser = parse_office)]
    pub office: String,
    /// How to reach etcd.
    #[command(flatten)]
    pub etcd: EtcdArgs,
    /// Address the gRPC server binds.
    #[arg(long, env = "EKTP_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Address peers and clients reach this node at (`http://host:port`);
    /// defaults to the bound address.
    #[arg(long, env = "EKTP_ADVERTISE")]
    pub advertise: Option<String>,
    /// Address the Prometheus `/metrics` listener binds.
    #[arg(long, env = "EKTP_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Leader lease TTL in seconds (etcd's minimum is 2 at its default heartbeat).
    #[arg(long, env = "EKTP_LEASE_TTL_SECS", default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=60))]
    pub lease_ttl_secs: u64,
    /// How often the lease is kept alive, in milliseconds (default TTL/3).
    #[arg(long, env = "EKTP_KEEPALIVE_INTERVAL_MS", value_parser = clap::value_parser!(u64).range(50..=20_000))]
    pub keepalive_interval_ms: Option<u64>,
    /// How long before its lease could expire a leader stops on its own, in
    /// milliseconds (default TTL/5, at most 1000).
    #[arg(long, env = "EKTP_LEASE_MARGIN_MS", value_parser = clap::value_parser!(u64).range(0..=20_000))]
    pub lease_margin_ms: Option<u64>,
    /// Server-side deadline for one request, in milliseconds.
    #[arg(long, env = "EKTP_REQUEST_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=600_000))]
    pub request_timeout_ms: u64,
    /// How long a stopping node drains in-flight requests, in milliseconds.
    #[arg(long, env = "EKTP_DRAIN_TIMEOUT_MS", default_value_t = 5_000)]
    pub drain_timeout_ms: u64,
    /// TLS of the gRPC listener and of calls to peers.
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Who may call what.
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Concurrency, rate and size limits.
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Log format.
    #[arg(long, env = "EKTP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

impl NodeArgs {
    /// The lease TTL.
    pub fn lease_ttl(&self) -> Duration {
        Duration::from_secs(self.lease_ttl_secs)
    }

    /// How long before its lease could expire a leader stops on its own.
    pub fn lease_margin(&self) -> Duration {
        match self.lease_margin_ms {
            Some(ms) => Duration::from_millis(ms).min(self.lease_ttl() / 2),
            None => (self.lease_ttl() / 5).min(Duration::from_millis(1_000)),
        }
    }

    /// How often the lease is kept alive: at most TTL/3, so two keep-alives
    /// can be lost before the lease is at risk.
    pub fn keepalive_interval(&self) -> Duration {
        let third = self.lease_ttl() / 3;
        self.keepalive_interval_ms
            .map_or(third, |ms| Duration::from_millis(ms).min(third))
    }

    /// The per-request server deadline.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    /// The drain timeout.
    pub fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.drain_timeout_ms)
    }

    /// The etcd key prefix of this office: `/ektp/{office}/`.
    pub fn key_prefix(&self) -> String {
        format!("/ektp/{}/", self.office)
    }

    /// The advertised address, given the address actually bound
    /// (`https://` when the listener serves TLS).
    pub fn advertised(&self, bound: SocketAddr) -> String {
        let scheme = if self.tls.tls_cert.is_some() {
            "https"
        } else {
            "http"
        };
        self.advertise
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{bound}"))
    }
}

fn parse_office(value: &str) -> Result<String, String> {
    let ok = !value.is_empty()
        && value.len() <= 32
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(value.to_owned())
    } else {
        Err("office ids are 1-32 characters of a-z, 0-9 and '-'".into())
    }
}
