//! Calling the registry the way a well-behaved client does: on UNAVAILABLE,
//! retry the same request (same `request_id`) on the next replica, with
//! backoff, until a deadline.

use crate::Result;
use ektp_proto::v1::registry_client::RegistryClient;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Response, Status};

/// Calls `call` on the clients in turn until one answers other than
/// UNAVAILABLE / DEADLINE_EXCEEDED, or `deadline` passes.
pub async fn retrying<R, F, Fut>(
    clients: &[RegistryClient<Channel>],
    deadline: Duration,
    call: F,
) -> Result<R, Status>
where
    F: Fn(RegistryClient<Channel>) -> Fut,
    Fut: Future<Output = Result<Response<R>, Status>>,
{
    let until = Instant::now() + deadline;
    let mut backoff = Duration::from_millis(20);
    let mut turn = 0usize;
    loop {
        let client = clients[turn % clients.len()].clone();
        turn += 1;
        match tokio::time::timeout(Duration::from_secs(5), call(client)).await {
            Ok(Ok(response)) => return Ok(response.into_inner()),
            Ok(Err(status)) if !retryable(status.code()) => {
                return Err(status);
            }
            Ok(Err(status)) if Instant::now() >= until => return Err(status),
            Err(_) if Instant::now() >= until => {
                return Err(Status::deadline_exceeded("retries exhausted"));
            }
            _ => {}
        }
        if turn.is_multiple_of(clients.len()) {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
}

/// Connects one client per address, lazily (a dead replica does not fail this).
pub fn lazy_clients(addresses: &[String]) -> crate::Result<Vec<RegistryClient<Channel>>> {
    lazy_clients_over(addresses, None)
}

/// [`lazy_clients`] over `tls` (for `https://` addresses).
pub fn lazy_clients_over(
    addresses: &[String],
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> crate::Result<Vec<RegistryClient<Channel>>> {
    addresses
        .iter()
        .map(|a| {
            let mut endpoint = tonic::transport::Endpoint::from_shared(a.clone())?;
            if let Some(tls) = tls.clone() {
                endpoint = endpoint.tls_config(tls)?;
            }
            let channel = endpoint
                .connect_timeout(Duration::from_millis(500))
                .timeout(Duration::from_secs(5))
                .connect_lazy();
            Ok(RegistryClient::new(channel))
        })
        .collect()
}

/// Answers a retry (same request id) may fix: the replica was unreachable,
/// died mid-call (the stream is cancelled or reset) or ran out of time.
fn retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled
    )
}
