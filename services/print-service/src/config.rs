//! print-service configuration: flags, or `EKTP_*` environment variables.

use clap::{Parser, ValueEnum};
use ektp_server::NodeArgs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Printer driver kinds.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Driver {
    /// In-process simulated printer.
    Sim,
    /// Hot-folder card printer (one job file per card, result files back).
    Hotfolder,
}

/// The ektp print-service: its leader drives the card printers.
#[derive(Parser, Clone, Debug)]
#[command(name = "print-service", version)]
pub struct PrintConfig {
    #[command(flatten)]
    pub node: NodeArgs,
    /// Registry gRPC endpoints (any replica), comma-separated.
    #[arg(
        long,
        env = "EKTP_REGISTRY_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051,http://127.0.0.1:50052"
    )]
    pub registry_endpoints: Vec<String>,
    /// Printer name (metrics label, recorded on jobs).
    #[arg(long, env = "EKTP_PRINTER_NAME", default_value = "printer-1", value_parser = parse_printer_name)]
    pub printer_name: String,
    /// Printer driver.
    #[arg(long, env = "EKTP_PRINTER_DRIVER", value_enum, default_value_t = Driver::Sim)]
    pub printer_driver: Driver,
    /// Hot folder root (hotfolder driver).
    #[arg(
        long,
        env = "EKTP_HOTFOLDER_DIR",
        required_if_eq("printer_driver", "hotfolder")
    )]
    pub hotfolder_dir: Option<PathBuf>,
    /// Longest wait for one card at a hot-folder printer, in seconds.
    #[arg(long, env = "EKTP_CARD_TIMEOUT_SECS", default_value_t = 120)]
    pub card_timeout_secs: u64,
    /// Cards per hour of the simulated printer (sim driver).
    #[arg(long, env = "EKTP_SIM_CARDS_PER_HOUR", default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub sim_cards_per_hour: u32,
    /// Share of simulated attempts that spoil their blank, 0-1 (sim driver).
    #[arg(long, env = "EKTP_SIM_FAILURE_RATE", default_value_t = 0.0, value_parser = parse_rate)]
    pub sim_failure_rate: f64,
    /// Most jobs claimed at once.
    #[arg(long, env = "EKTP_CLAIM_BATCH", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=32))]
    pub claim_batch: u32,
    /// Below this many blank cards, first cards are printed before replacements.
    #[arg(long, env = "EKTP_LOW_STOCK_THRESHOLD", default_value_t = 100)]
    pub low_stock_threshold: u32,
    /// Seconds audit entries are kept (default 400 days); the leader sweeps.
    #[arg(long, env = "EKTP_AUDIT_RETENTION_SECS", default_value_t = 400 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub audit_retention_secs: u64,
    /// Wait between claims when the queue is empty, in milliseconds.
    #[arg(long, env = "EKTP_IDLE_POLL_MS", default_value_t = 500, value_parser = clap::value_parser!(u64).range(10..=60_000))]
    pub idle_poll_ms: u64,
}

impl PrintConfig {
    pub fn listen(&self) -> SocketAddr {
        self.node
            .listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 50061)))
    }

    pub fn metrics_listen(&self) -> SocketAddr {
        self.node
            .metrics_listen
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9093)))
    }

    pub fn idle_poll(&self) -> Duration {
        Duration::from_millis(self.idle_poll_ms)
    }
}

fn parse_rate(value: &str) -> Result<f64, String> {
    match value.parse::<f64>() {
        Ok(rate) if (0.0..=1.0).contains(&rate) => Ok(rate),
        _ => Err("a rate between 0 and 1".into()),
    }
}

fn parse_printer_name(value: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err("1-64 characters of A-Z a-z 0-9 . _ -".into())
    }
}
