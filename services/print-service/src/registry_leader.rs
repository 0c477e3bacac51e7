//! Following the registry's election: the print node calls the registry
//! leader directly instead of a follower that would forward — one hop less
//! on every claim and completion, which matters most when the registry
//! replicas are busy (a flood of outside calls).

use crate::registry_link::RegistryLink;
use etcd_client::{Client, WatchOptions};
use std::sync::Arc;
use std::time::Duration;
use tracing::debug;

/// Keeps `link` preferring the registry leader named by election `name`,
/// until the process ends. Re-reads the leader whenever the election's keys
/// change (a watch), and at least every few seconds in case the watch broke.
pub fn spawn(client: Client, name: String, link: Arc<RegistryLink>) {
    tokio::spawn(async move {
        loop {
            if let Some(leader) = ektp_election::current_leader(&client, &name).await {
                link.prefer_leader(leader.address);
            }
            let mut watcher = client.clone();
            let watch = watcher
                .watch(name.as_str(), Some(WatchOptions::new().with_prefix()))
                .await;
            let Ok(mut events) = watch else {
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            };
            // Wait for the next change of the election, bounded so a silently
            // broken watch is replaced.
            match tokio::time::timeout(Duration::from_secs(10), events.message()).await {
                Ok(Ok(Some(_))) | Err(_) => {}
                Ok(Ok(None)) | Ok(Err(_)) => {
                    debug!("registry election watch ended; reopening");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    });
}
