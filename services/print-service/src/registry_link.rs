//! The print-service's client of the registry: any registry replica will do
//! (followers forward to their leader); on UNAVAILABLE the call is retried —
//! at the leader a NOT_LEADER answer names, or at the next endpoint — with
//! backoff, until a deadline. Requests are idempotent on the registry side,
//! so a retry after a lost answer is safe.

use ektp_server::{LeaderChannels, leader_address_of};
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::{Channel, ClientTlsConfig};
use tonic::{Code, Response, Status};
use tracing::debug;

/// A retrying link to the registry replicas.
pub struct RegistryLink {
    endpoints: Vec<String>,
    channels: LeaderChannels,
    /// The endpoint to try first: the last one that answered, or a leader hint.
    preferred: Mutex<Option<String>>,
}

impl RegistryLink {
    /// A link to `endpoints`, over `tls` (this node's certificate as its
    /// print-node identity) for `https://` ones.
    pub fn new(endpoints: Vec<String>, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            endpoints,
            channels: LeaderChannels::new(tls),
            preferred: Mutex::new(None),
        }
    }

    fn candidates(&self) -> Vec<String> {
        let mut list = Vec::with_capacity(self.endpoints.len() + 1);
        if let Some(p) = self.preferred.lock().ok().and_then(|p| p.clone()) {
            list.push(p);
        }
        for e in &self.endpoints {
            if !list.contains(e) {
                list.push(e.clone());
            }
        }
        list
    }

    /// Tries the registry leader at `address` first from now on.
    pub fn prefer_leader(&self, address: String) {
        self.prefer(Some(address));
    }

    fn prefer(&self, endpoint: Option<String>) {
        if let Ok(mut p) = self.preferred.lock() {
            *p = endpoint;
        }
    }

    /// Calls `call` until it answers something other than UNAVAILABLE or
    /// `deadline` passes.
    pub async fn call<R, F, Fut>(&self, deadline: Duration, call: F) -> Result<R, Status>
    where
        F: Fn(Channel) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let until = Instant::now() + deadline;
        let mut backoff = Duration::from_millis(25);
        loop {
            let mut last = Status::unavailable("no registry endpoint configured");
            for endpoint in self.candidates() {
                let Some(channel) = self.channels.channel(&endpoint) else {
                    continue;
                };
                let attempt = tokio::time::timeout_at(
                    until.max(Instant::now() + Duration::from_millis(100)),
                    call(channel),
                )
                .await;
                match attempt {
                    Ok(Ok(response)) => {
                        self.prefer(Some(endpoint));
                        return Ok(response.into_inner());
                    }
                    // A replica that died mid-call cancels the stream: as retryable as UNAVAILABLE.
                    Ok(Err(status))
                        if matches!(status.code(), Code::Unavailable | Code::Cancelled) =>
                    {
                        debug!(%endpoint, error = %status.message(), "registry unavailable; trying elsewhere");
                        if let Some(leader) = leader_address_of(&status) {
                            self.prefer(Some(leader));
                        }
                        last = status;
                    }
                    Ok(Err(status)) => return Err(status),
                    Err(_) => last = Status::deadline_exceeded("registry call timed out"),
                }
                if Instant::now() >= until {
                    return Err(last);
                }
            }
            if Instant::now() >= until {
                return Err(last);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }
}
