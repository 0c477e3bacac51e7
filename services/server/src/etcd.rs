//! The etcd connection each node makes.

use etcd_client::{Client, ConnectOptions};
use std::time::Duration;

/// Connects to etcd. No request timeout is set on purpose: it would also cut
/// the campaign call, which blocks until the node wins. Callers bound their
/// own requests instead. `require_leader` makes a member cut off from its
/// quorum refuse requests rather than serve stale reads.
pub async fn connect(endpoints: &[String]) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    Client::connect(endpoints, Some(options)).await
}
