//! What both service binaries do around their app: bind listeners, install
//! the metrics recorder once, and turn a startup failure into one clear line
//! and a non-zero exit.

use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::OnceLock;
use tokio::net::TcpListener;
use tracing::warn;

/// Why a service could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot connect to etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("cannot set up server reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("{0}")]
    Setup(String),
}

/// Binds a TCP listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// The address a listener is bound to.
pub fn local_addr(listener: &TcpListener, wanted: SocketAddr) -> Result<SocketAddr, StartError> {
    listener.local_addr().map_err(|source| StartError::Bind {
        addr: wanted,
        source,
    })
}

static METRICS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process's Prometheus recorder once and describes the
/// service's metrics with `describe`. Later calls do nothing.
pub fn install_metrics(service: &'static str, describe: impl FnOnce()) {
    if METRICS.get().is_some() {
        return;
    }
    match crate::metrics_http::install_recorder(service) {
        Ok(handle) => {
            ektp_election::describe_metrics();
            crate::grpc_metrics::describe();
            crate::limits::describe();
            crate::audit::describe_metrics();
            describe();
            let _ = METRICS.set(handle);
        }
        Err(e) => warn!(error = %e, "metrics recorder not installed"),
    }
}

/// Serves `/metrics` on `listener` if a recorder is installed.
pub fn serve_installed_metrics(listener: TcpListener) {
    if let Some(handle) = METRICS.get().cloned() {
        crate::metrics_http::serve_metrics(listener, handle);
    }
}

/// The exit code for a service's result, printing a failure as one line.
pub fn exit_code(binary: &str, result: Result<(), StartError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{binary}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads a file named by a configuration flag; failure is one clear line.
pub(crate) fn read_config_file(path: &std::path::Path, flag: &str) -> Result<Vec<u8>, StartError> {
    std::fs::read(path)
        .map_err(|e| StartError::Setup(format!("cannot read {flag} {}: {e}", path.display())))
}
