//! Forwarding writes from a follower to the leader: a cache of lazily
//! connected channels by leader address, and a header that stops a forwarded
//! request from being forwarded again (no loops while leadership moves).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tonic::Request;
use tonic::transport::{Channel, Endpoint};

/// Metadata key set on a request a follower forwarded.
pub const FORWARDED_HEADER: &str = "x-ektp-forwarded";

/// Marks a request as forwarded.
pub fn mark_forwarded<T>(request: &mut Request<T>) {
    request
        .metadata_mut()
        .insert(FORWARDED_HEADER, tonic::metadata::MetadataValue::from_static("1"));
}

/// Whether a request was forwarded by a follower.
pub fn is_forwarded<T>(request: &Request<T>) -> bool {
    request.metadata().contains_key(FORWARDED_HEADER)
}

/// Channels to leaders, by address. Connections are made lazily and reused.
#[derive(Default)]
pub struct LeaderChannels {
    channels: Mutex<HashMap<String, Channel>>,
}

impl LeaderChannels {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// A channel to `address`, or `None` if the address is not a valid URI.
    pub fn channel(&self, address: &str) -> Option<Channel> {
        let mut channels = self.channels.lock().ok()?;
        if let Some(channel) = channels.get(address) {
            return Some(channel.clone());
        }
        let channel = Endpoint::from_shared(address.to_owned())
            .ok()?
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .connect_lazy();
        channels.insert(address.to_owned(), channel.clone());
        Some(channel)
    }
}
