//! WatchEvents: the replayable outbox stream. A consumer passes the cursor
//! of the last event it processed and receives every later event exactly
//! once, in order — first the stored ones (read at one snapshot revision),
//! then live ones from an etcd watch starting right after that snapshot.
//! Any replica serves it; events are written by the leaders in the same
//! transaction as the change they describe, so failovers lose nothing.

use crate::error::{RegistryError, Result};
use crate::etcd::{ETCD_TIMEOUT, bounded};
use crate::keys::{Keys, range_end};
use ektp_proto::v1::Event;
use ektp_server::event_cursor;
use etcd_client::{Client, EventType, GetOptions, KeyValue, SortOrder, SortTarget, WatchOptions};
use prost::Message;
use tokio::sync::mpsc;
use tonic::Status;

/// Events read per page while catching up.
const PAGE: i64 = 500;

/// Where a consumer resumes: after (revision, key name).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub revision: i64,
    pub name: String,
}

/// Streams events after `after` into `out` until the receiver goes away or
/// etcd fails (the error is sent as the stream's last item).
pub async fn stream(
    client: Client,
    keys: Keys,
    after: Position,
    out: mpsc::Sender<Result<Event, Status>>,
) {
    if let Err(status) = pump(client, keys, after, &out).await {
        let _ = out.send(Err(status)).await;
    }
}

async fn pump(
    client: Client,
    keys: Keys,
    mut after: Position,
    out: &mpsc::Sender<Result<Event, Status>>,
) -> Result<(), Status> {
    let floor = events_floor(&client, &keys).await?;
    if after.revision > 0 && after.revision <= floor {
        return Err(Status::out_of_range(
            "the cursor is older than the retained events; resume from an empty cursor",
        ));
    }
    let prefix = keys.events();
    let mut etcd = client.clone();
    // Catch up at one snapshot revision, then watch from right after it.
    let snapshot = bounded("get", etcd.get(keys.events_floor(), None))
        .await
        .map_err(Status::from)?
        .header()
        .map(|h| h.revision())
        .unwrap_or_default();
    loop {
        let options = GetOptions::new()
            .with_range(range_end(&prefix))
            .with_revision(snapshot)
            .with_min_mod_revision(after.revision.max(1))
            .with_sort(SortTarget::Mod, SortOrder::Ascend)
            .with_limit(PAGE);
        let page = bounded("range", etcd.get(prefix.as_str(), Some(options)))
            .await
            .map_err(Status::from)?;
        let mut kvs: Vec<&KeyValue> = page.kvs().iter().collect();
        kvs.sort_by(|a, b| (a.mod_revision(), a.key()).cmp(&(b.mod_revision(), b.key())));
        let mut progressed = false;
        for kv in kvs {
            if let Some(position) = send_if_after(kv, &after, out).await? {
                after = position;
                progressed = true;
            }
        }
        if !page.more() || !progressed {
            break;
        }
    }
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(snapshot + 1);
    let mut watch = tokio::time::timeout(ETCD_TIMEOUT, etcd.watch(prefix.as_str(), Some(options)))
        .await
        .map_err(|_| Status::unavailable("etcd watch timed out; retry from your cursor"))?
        .map_err(|e| Status::from(RegistryError::from(e)))?;
    loop {
        let response = tokio::select! {
            response = watch.message() => response,
            () = out.closed() => return Ok(()),
        };
        let Some(response) = response.map_err(|e| Status::from(RegistryError::from(e)))? else {
            return Err(Status::unavailable(
                "event watch ended; retry from your cursor",
            ));
        };
        if response.compact_revision() > 0 {
            return Err(Status::out_of_range(
                "events were compacted; resume from an empty cursor",
            ));
        }
        for event in response.events() {
            if event.event_type() != EventType::Put {
                continue;
            }
            if let Some(kv) = event.kv()
                && let Some(position) = send_if_after(kv, &after, out).await?
            {
                after = position;
            }
        }
    }
}

/// Sends the event in `kv` if it comes after `after`; its position if sent.
async fn send_if_after(
    kv: &KeyValue,
    after: &Position,
    out: &mpsc::Sender<Result<Event, Status>>,
) -> Result<Option<Position>, Status> {
    let name = String::from_utf8_lossy(kv.key().rsplit(|b| *b == b'/').next().unwrap_or_default())
        .into_owned();
    let position = Position {
        revision: kv.mod_revision(),
        name,
    };
    if position <= *after {
        return Ok(None);
    }
    let mut event = Event::decode(kv.value()).map_err(|e| Status::from(RegistryError::from(e)))?;
    event.cursor = event_cursor(kv.mod_revision(), kv.key());
    out.send(Ok(event))
        .await
        .map_err(|_| Status::cancelled("consumer went away"))?;
    Ok(Some(position))
}

/// The highest revision whose events retention dropped (0 when none).
pub async fn events_floor(client: &Client, keys: &Keys) -> Result<i64, Status> {
    let mut etcd = client.clone();
    let response = bounded("get", etcd.get(keys.events_floor(), None))
        .await
        .map_err(Status::from)?;
    Ok(response
        .kvs()
        .first()
        .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
        .unwrap_or(0))
}
