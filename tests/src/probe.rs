//! Looking at a running cluster the way its operators do: registry totals,
//! print status, Prometheus scrapes — and driving it like a client.

use crate::Result;
use crate::residents::{authorize_request, record_request};
use crate::retry::retrying;
use crate::wait::until;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::{GetStatsRequest, Stats};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::transport::Channel;

/// Registry totals, from whichever replica answers.
pub async fn stats(clients: &[RegistryClient<Channel>]) -> Option<Stats> {
    retrying(clients, Duration::from_secs(5), |mut c| async move {
        c.get_stats(GetStatsRequest {}).await
    })
    .await
    .ok()
}

/// Waits until at least `n` cards are printed.
pub async fn wait_printed(
    clients: &[RegistryClient<Channel>],
    n: u64,
    timeout: Duration,
) -> Result<Stats> {
    until(&format!("{n} cards printed"), timeout, || async move {
        stats(clients).await.filter(|s| s.printed >= n)
    })
    .await
}

/// Records and authorises residents `range` as a retrying client would.
pub async fn record_and_authorise(
    clients: &[RegistryClient<Channel>],
    range: std::ops::Range<u32>,
) -> Result<()> {
    for i in range {
        retrying(clients, Duration::from_secs(20), |mut c| async move {
            c.record_resident(record_request(i)).await
        })
        .await?;
        retrying(clients, Duration::from_secs(20), |mut c| async move {
            c.authorize_print(authorize_request(i)).await
        })
        .await?;
    }
    Ok(())
}

/// One scrape of a node's `/metrics`.
pub async fn scrape(port: u16) -> Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    // HTTP/1.0: the body is never chunked, and ends when the server closes.
    if !(body.starts_with("HTTP/1.1 200 OK") || body.starts_with("HTTP/1.0 200 OK")) {
        return Err(format!("scrape of :{port} failed: {body}").into());
    }
    Ok(body)
}

/// The value of one series (name with labels, as exported) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// Whether the node on `metrics_port` says it leads `service`.
pub async fn says_it_leads(metrics_port: u16, service: &str) -> Option<bool> {
    let text = scrape(metrics_port).await.ok()?;
    sample(
        &text,
        &format!("ektp_leader_is_leader{{service=\"{service}\"}}"),
    )
    .map(|v| v == 1.0)
}
