//! The Prometheus recorder and the `/metrics` listener. The listener runs on
//! an already-bound socket (tests bind port 0) and answers plain HTTP/1.1
//! GETs: `/metrics` with the exposition text, `/livez` (the process answers)
//! and `/readyz` (the node can serve and take over, as gRPC health says) —
//! plaintext probes for orchestrators that cannot speak mTLS to the API
//! port — anything else 404.

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tracing::debug;

/// Histogram buckets (seconds) for every ektp histogram: from 1 ms to a minute.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Installs the global Prometheus recorder and starts its upkeep task.
/// `service` and `version` label every series through `ektp_build_info`.
pub fn install_recorder(service: &'static str) -> Result<PrometheusHandle, BuildError> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)?
        // Batch sizes (the audit trail's, the registry writer's commits)
        // count items, not seconds.
        .set_buckets_for_metric(
            Matcher::Suffix("_batch_size".to_owned()),
            crate::audit::BATCH_SIZE_BUCKETS,
        )?
        .install_recorder()?;
    metrics::describe_gauge!(
        "ektp_build_info",
        "Always 1; labels carry the version and service."
    );
    metrics::gauge!("ektp_build_info", "version" => env!("CARGO_PKG_VERSION"), "service" => service)
        .set(1.0);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

/// Serves `/metrics` on `listener` until the task is dropped.
pub fn serve_metrics(listener: TcpListener, handle: PrometheusHandle) {
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                if let Err(e) = answer(stream, &handle).await {
                    debug!(error = %e, "metrics scrape connection failed");
                }
            });
        }
    });
}

async fn answer(mut stream: TcpStream, handle: &PrometheusHandle) -> std::io::Result<()> {
    let mut request = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 16 * 1024 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        Ok::<_, std::io::Error>(())
    };
    if tokio::time::timeout(Duration::from_secs(5), read_head)
        .await
        .is_err()
    {
        return Ok(());
    }
    let line = request.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let get = method == "GET";
    let (status, content_type, body) = match path.split('?').next().unwrap_or("") {
        "/metrics" if get => ("200 OK", "text/plain; version=0.0.4", handle.render()),
        "/livez" if get => ("200 OK", "text/plain", "ok\n".to_owned()),
        "/readyz" if get && crate::health::is_ready() => {
            ("200 OK", "text/plain", "ready\n".to_owned())
        }
        "/readyz" if get => (
            "503 Service Unavailable",
            "text/plain",
            "not ready\n".to_owned(),
        ),
        _ => (
            "404 Not Found",
            "text/plain",
            "not found; try /metrics, /livez or /readyz\n".to_owned(),
        ),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}
