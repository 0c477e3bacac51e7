//! Tracing setup: `RUST_LOG`-style filtering (default `info`), text or JSON.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber, writing to stderr.
pub fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
