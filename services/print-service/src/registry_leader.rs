//! Following the registry's election: the print node calls the registry
//! leader directly instead of a follower that would forward — one hop less
//! on every claim and completion, which matters most when the registry
//! replicas are busy (a flood of outside calls).

use crate::registry_link::RegistryLink;
use etcd_client::{Client, WatchOptions};
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// How long a watch may stay silent before the leader is read anyway, in
/// case the watch broke without ending.
const RECHECK: Duration = Duration::from_secs(10);
/// Pause before a broken or unopenable watch is opened again.
const REOPEN_AFTER: Duration = Duration::from_millis(500);
/// Bound on opening a watch.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// Keeps `link` preferring the registry leader named by election `name`,
/// until the process ends: one long-lived watch on the election's keys, and
/// the leader re-read only when they change (or the watch stays silent for
/// [`RECHECK`]).
pub fn spawn(client: Client, name: String, link: Arc<RegistryLink>) {
    tokio::spawn(async move {
        loop {
            follow(&client, &name, &link).await;
            tokio::time::sleep(REOPEN_AFTER).await;
        }
    });
}

/// Follows the election over one watch; returns when the watch breaks.
async fn follow(client: &Client, name: &str, link: &RegistryLink) {
    let mut watcher = client.clone();
    let options = WatchOptions::new().with_prefix();
    let mut stream =
        match tokio::time::timeout(OPEN_TIMEOUT, watcher.watch(name, Some(options))).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                debug!(error = %e, "registry election watch failed to open");
                return;
            }
            Err(_) => {
                debug!("registry election watch open timed out");
                return;
            }
        };
    // Read once the watch is open, so no change in between goes unseen.
    refresh(client, name, link).await;
    loop {
        match tokio::time::timeout(RECHECK, stream.message()).await {
            Ok(Ok(Some(response))) if response.canceled() => {
                debug!("registry election watch cancelled; reopening");
                return;
            }
            // The creation answer and progress notices carry no events.
            Ok(Ok(Some(response))) if response.events().is_empty() => {}
            Ok(Ok(Some(_))) | Err(_) => refresh(client, name, link).await,
            Ok(Ok(None)) | Ok(Err(_)) => {
                debug!("registry election watch ended; reopening");
                return;
            }
        }
    }
}

async fn refresh(client: &Client, name: &str, link: &RegistryLink) {
    if let Some(leader) = ektp_election::current_leader(client, name).await {
        link.prefer_leader(leader.address);
    }
}
