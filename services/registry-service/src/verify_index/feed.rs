//! Feeds the index: a paged read of `residents/` at one revision (NIK keys
//! only: `residents/{16 digits}`), then a
//! watch from the next revision. A broken watch resumes after the last
//! revision applied; a compacted one (history gone) reloads from scratch.
//! Progress is requested every [`PROGRESS_EVERY`] to confirm the index is
//! current. Nothing here logs a NIK or any field of a resident.

use super::VerifyIndex;
use super::fingerprint::{Row, nik_number};
use super::table::Table;
use crate::etcd::{ETCD_TIMEOUT, bounded};
use crate::keys::{Keys, range_end};
use ektp_proto::v1::Resident;
use etcd_client::{Client, EventType, GetOptions, KeyValue, WatchOptions, WatchResponse};
use prost::Message;
use std::collections::VecDeque;
use std::time::Duration;
use tokio::time::Instant;
use tracing::{info, warn};

/// Residents read per page while loading (a few hundred KB).
const PAGE: i64 = 1_000;
/// How often the watch is asked to confirm it is current.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// Wait before retrying after etcd failed.
const BACKOFF: Duration = Duration::from_millis(500);

/// Why watching stopped.
enum Stop {
    /// History up to the resume point is gone: reload.
    Compacted,
    /// The stream broke: resume after the last revision applied.
    Broken(String),
}

/// Loads, then watches, forever.
pub async fn run(client: Client, keys: Keys, index: VerifyIndex) {
    loop {
        index.unload();
        let started = Instant::now();
        let (table, revision) = loop {
            match load(&client, &keys, &index).await {
                Ok(loaded) => break loaded,
                Err(e) => {
                    warn!(error = %e, "verification index load failed; retrying");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        };
        let residents = table.len();
        // Current as of the snapshot, which was read after `started`.
        index.install(table, started.into_std());
        info!(
            residents,
            revision,
            load_ms = started.elapsed().as_millis() as u64,
            "verification index loaded"
        );
        let mut applied = revision;
        loop {
            match watch(&client, &keys, &index, &mut applied).await {
                Stop::Compacted => {
                    warn!(applied, "verification index watch compacted; reloading");
                    break;
                }
                Stop::Broken(e) => {
                    warn!(error = %e, applied, "verification index watch broke; resuming");
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }
}

/// Reads every resident at one revision, page by page; the table and that
/// revision.
///
/// Pages are read over a window of NIK numbers that adapts to hold about a
/// page, never up to the end of the prefix: etcd 3.4 walks the whole range
/// of a read before applying its limit, so "the next 1,000 from here to the
/// end" would make a load quadratic (minutes for 1 M residents).
async fn load(
    client: &Client,
    keys: &Keys,
    index: &VerifyIndex,
) -> Result<(Table, i64), crate::error::RegistryError> {
    let mut etcd = client.clone();
    let prefix = keys.residents();
    let end = range_end(&prefix);
    let counted = GetOptions::new().with_range(end.clone()).with_count_only();
    let first = bounded("count", etcd.get(prefix.as_str(), Some(counted))).await?;
    let revision = first.header().map(|h| h.revision()).unwrap_or_default();
    let expected = usize::try_from(first.count()).unwrap_or(0);
    // A little room for residents recorded while loading.
    let mut table = Table::with_capacity(expected + expected / 64);
    let key = |nik: u64| format!("{prefix}{nik:016}").into_bytes();
    // Residents spread evenly would fill a page per this many NIK numbers.
    let mut width = (NIKS / (expected as u64 / PAGE as u64 + 1)).max(1);
    let mut cursor = 0_u64;
    while cursor < NIKS {
        let upto = cursor.saturating_add(width);
        let options = GetOptions::new()
            .with_range(if upto >= NIKS { end.clone() } else { key(upto) })
            .with_revision(revision)
            .with_limit(PAGE);
        let mut page = bounded("range", etcd.get(key(cursor), Some(options))).await?;
        let kvs = page.take_kvs();
        for kv in &kvs {
            if let Some(row) = row_of(index, kv) {
                table.push_loaded(row);
            }
        }
        if page.more() {
            // Too wide: go on after the last key read, in a narrower window.
            let last = kvs.last().and_then(|kv| nik_of(kv.key())).unwrap_or(cursor);
            cursor = last.max(cursor) + 1;
            width = (width / 2).max(1);
        } else {
            cursor = upto;
            if kvs.len() < PAGE_USIZE / 2 {
                width = width.saturating_mul(2);
            }
        }
    }
    Ok((table, revision))
}

/// NIK numbers: 16 digits.
const NIKS: u64 = 10_000_000_000_000_000;
const PAGE_USIZE: usize = PAGE as usize;

/// The row for a stored resident; a value that does not decode becomes an
/// unreadable row (answered from etcd), a key that is not a NIK nothing.
fn row_of(index: &VerifyIndex, kv: &KeyValue) -> Option<Row> {
    let nik = nik_of(kv.key())?;
    match Resident::decode(kv.value()) {
        Ok(resident) => index.keyed().row(&resident).filter(|r| r.nik() == nik),
        Err(e) => {
            warn!(error = %e, revision = kv.mod_revision(), "stored resident does not decode");
            Some(Row::unreadable(nik))
        }
    }
}

/// The NIK in a `residents/{nik}` key.
fn nik_of(key: &[u8]) -> Option<u64> {
    let name = key.rsplit(|b| *b == b'/').next()?;
    nik_number(std::str::from_utf8(name).ok()?)
}

/// Watches from `applied + 1`, applying events and advancing `applied`.
async fn watch(client: &Client, keys: &Keys, index: &VerifyIndex, applied: &mut i64) -> Stop {
    let mut etcd = client.clone();
    let options = WatchOptions::new()
        .with_prefix()
        .with_start_revision(*applied + 1);
    let opened = tokio::time::timeout(ETCD_TIMEOUT, etcd.watch(keys.residents(), Some(options)));
    let stream = match opened.await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return Stop::Broken(e.to_string()),
        Err(_) => return Stop::Broken("watch open timed out".into()),
    };
    let (mut requests, mut responses) = stream.split();
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    // Send times of progress requests not answered yet, oldest first.
    let mut asked: VecDeque<Instant> = VecDeque::new();
    // Send time of the request answered last: what the next answer confirms.
    let mut previous: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                // Unanswered requests are not piled up: one at a time.
                if asked.is_empty() {
                    if let Err(e) = requests.request_progress().await {
                        return Stop::Broken(e.to_string());
                    }
                    asked.push_back(Instant::now());
                }
            }
            message = responses.message() => {
                let response = match message {
                    Ok(Some(response)) => response,
                    Ok(None) => return Stop::Broken("watch ended".into()),
                    Err(e) => return Stop::Broken(e.to_string()),
                };
                if response.compact_revision() > 0 {
                    return Stop::Compacted;
                }
                if response.canceled() {
                    return Stop::Broken(format!("watch cancelled: {}", response.cancel_reason()));
                }
                if is_progress(&response) {
                    // Answers the oldest request; confirms the one before it,
                    // a round earlier, since etcd 3.4 may answer ahead of
                    // events already queued for this stream.
                    if let Some(sent) = asked.pop_front()
                        && let Some(earlier) = previous.replace(sent)
                    {
                        index.confirm(earlier.into_std());
                    }
                    continue;
                }
                apply(index, &response, applied);
            }
        }
    }
}

/// A progress answer: no events, not the creation or end of a watch.
fn is_progress(response: &WatchResponse) -> bool {
    response.events().is_empty() && !response.created() && !response.canceled()
}

/// Applies a response's events in order under one lock.
fn apply(index: &VerifyIndex, response: &WatchResponse, applied: &mut i64) {
    let events = response.events();
    if events.is_empty() {
        return;
    }
    let mut changes = Vec::with_capacity(events.len());
    for event in events {
        let Some(kv) = event.kv() else { continue };
        *applied = (*applied).max(kv.mod_revision());
        match event.event_type() {
            EventType::Put => changes.push((nik_of(kv.key()), row_of(index, kv))),
            EventType::Delete => changes.push((nik_of(kv.key()), None)),
        }
    }
    index.apply(|table| {
        for (nik, row) in changes {
            match (nik, row) {
                (_, Some(row)) => table.upsert(row),
                (Some(nik), None) => table.remove(nik),
                (None, None) => {}
            }
        }
    });
}
