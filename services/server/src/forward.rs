//! Forwarding writes from a follower to the leader: a cache of lazily
//! connected channels by leader address (over mutual TLS when configured),
//! and a header that stops a forwarded request from being forwarded again (no
//! loops while leadership moves). The original caller and its stated purpose
//! travel with the request, so the leader authorises and audits the caller,
//! not the forwarding replica.

use crate::auth::{CALLER_HEADER, Caller, PURPOSE_HEADER};
use crate::status::{leader_address_of, not_leader};
use ektp_election::ElectionHandle;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Response, Status};

/// Metadata key set on a request a follower forwarded.
pub const FORWARDED_HEADER: &str = "x-ektp-forwarded";

/// Marks a request as forwarded.
pub fn mark_forwarded<T>(request: &mut Request<T>) {
    request.metadata_mut().insert(
        FORWARDED_HEADER,
        tonic::metadata::MetadataValue::from_static("1"),
    );
}

/// Whether a request was forwarded by a follower.
pub fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_HEADER)
}

/// Channels to leaders, by address. Connections are made lazily and reused.
#[derive(Default)]
pub struct LeaderChannels {
    channels: Mutex<HashMap<String, Channel>>,
    tls: Option<ClientTlsConfig>,
}

impl LeaderChannels {
    /// An empty cache; channels to `https://` addresses use `tls` (the
    /// node's certificate as client identity, the peers' CA).
    pub fn new(tls: Option<ClientTlsConfig>) -> Self {
        Self {
            channels: Mutex::default(),
            tls,
        }
    }

    /// A channel to `address`, or `None` if the address is not a valid URI
    /// (or is `https://` and this node has no TLS for peers).
    pub fn channel(&self, address: &str) -> Option<Channel> {
        let mut channels = self.channels.lock().ok()?;
        if let Some(channel) = channels.get(address) {
            return Some(channel.clone());
        }
        let mut endpoint = Endpoint::from_shared(address.to_owned()).ok()?;
        if address.starts_with("https://") {
            endpoint = endpoint.tls_config(self.tls.clone()?).ok()?;
        }
        let channel = endpoint
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Some(channel)
    }
}

/// Decides, per write, whether to run it here or forward it to the leader.
#[derive(Clone)]
pub struct Forwarder {
    election: ElectionHandle,
    channels: Arc<LeaderChannels>,
}

impl Forwarder {
    /// Forwards to the leader `election` names, over `tls` for `https://` leaders.
    pub fn new(election: ElectionHandle, tls: Option<ClientTlsConfig>) -> Self {
        Self {
            election,
            channels: Arc::new(LeaderChannels::new(tls)),
        }
    }

    /// `None` when this node leads; otherwise a channel to the leader, or
    /// NOT_LEADER when there is none, or the request was already forwarded once.
    async fn leader_channel<T>(&self, request: &Request<T>) -> Result<Option<Channel>, Status> {
        if self.election.role().is_leader() {
            return Ok(None);
        }
        let leader = self.election.lookup_leader().await;
        let address = leader.as_ref().map(|l| l.address.as_str());
        if is_forwarded(request) {
            return Err(not_leader(address));
        }
        let channel = address.and_then(|a| self.channels.channel(a));
        channel.map(Some).ok_or_else(|| not_leader(address))
    }

    /// Runs `local` here when leading, else sends the request to the leader
    /// through `remote`.
    pub async fn write<T, R, L, LF, F, FF>(
        &self,
        request: Request<T>,
        local: L,
        remote: F,
    ) -> Result<Response<R>, Status>
    where
        L: FnOnce(T) -> LF,
        LF: Future<Output = Result<R, Status>>,
        F: FnOnce(Channel, Request<T>) -> FF,
        FF: Future<Output = Result<Response<R>, Status>>,
    {
        match self.leader_channel(&request).await? {
            None => local(request.into_inner()).await.map(Response::new),
            Some(channel) => {
                let leader = self.election.lookup_leader().await.map(|l| l.address);
                let on_behalf = on_behalf_of(&request);
                let mut forwarded = Request::new(request.into_inner());
                *forwarded.metadata_mut() = on_behalf;
                mark_forwarded(&mut forwarded);
                remote(channel, forwarded).await.map_err(|status| {
                    // Transport failures mean the leader moved or died: tell the
                    // caller to retry rather than leak a connection error.
                    // (Answers the leader itself sent carry no source and pass through.)
                    let transport = std::error::Error::source(&status).is_some();
                    if transport
                        && status.code() == Code::Unavailable
                        && leader_address_of(&status).is_none()
                    {
                        not_leader(leader.as_deref())
                    } else {
                        status
                    }
                })
            }
        }
    }
}

/// The metadata a forwarded request carries for the leader: the original
/// caller's identity (trusted by the leader only from a replica) and the
/// purpose it stated.
fn on_behalf_of<T>(request: &Request<T>) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    if let Some(caller) = Caller::of(request).filter(|c| c.authenticated)
        && let Ok(value) = MetadataValue::try_from(caller.identity.as_str())
    {
        metadata.insert(CALLER_HEADER, value);
    }
    if let Some(purpose) = request.metadata().get(PURPOSE_HEADER) {
        metadata.insert(PURPOSE_HEADER, purpose.clone());
    }
    metadata
}
