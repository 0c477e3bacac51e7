//! Reading the trail: a key range (the time range) read a few batches at a
//! time, filtered by NIK and caller, paginated by (batch, entry index). One
//! call scans a bounded number of batches, so a sparse filter cannot turn a
//! request into a scan of the whole trail; the caller continues from the token.

use super::layout::{self, Position};
use ektp_proto::storage::AuditBatch;
use ektp_proto::v1::AuditEntry;
use etcd_client::{Client, GetOptions};
use prost::Message;
use std::time::{Duration, SystemTime};

/// Batches per etcd range read (a batch is at most a few hundred KiB).
const CHUNK: i64 = 16;
/// Most batches one call examines.
const MAX_SCAN: usize = 256;
/// Longest an etcd read may take.
const ETCD_TIMEOUT: Duration = Duration::from_secs(3);

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// Only this NIK.
    pub nik: Option<String>,
    /// Only this caller identity.
    pub caller: Option<String>,
    /// Entries at or after.
    pub since: Option<SystemTime>,
    /// Entries before.
    pub until: Option<SystemTime>,
    /// Most entries.
    pub page_size: usize,
    /// Continue after this position.
    pub after: Option<Position>,
}

impl Query {
    fn matches(&self, entry: &AuditEntry) -> bool {
        self.nik.as_ref().is_none_or(|n| *n == entry.nik)
            && self.caller.as_ref().is_none_or(|c| *c == entry.caller)
    }
}

/// One page of entries.
#[derive(Debug, Default)]
pub struct Page {
    pub entries: Vec<AuditEntry>,
    /// Where the next page starts; `None` at the end.
    pub next: Option<Position>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    #[error("etcd read timed out")]
    Timeout,
    #[error("undecodable audit batch {0}")]
    Corrupt(String),
}

/// Lists one page of the trail under `prefix` (`/ektp/{office}/audit/`).
pub async fn list(client: &Client, prefix: &str, query: &Query) -> Result<Page, ReadError> {
    let lower = query
        .since
        .map_or_else(String::new, |t| layout::time_bound(layout::unix_nanos(t)));
    let mut from = match &query.after {
        // Resume at the token's batch (its entries after `index` remain).
        Some(after) if after.name >= lower => format!("{prefix}{}", after.name),
        _ => format!("{prefix}{lower}"),
    };
    let end = match query.until {
        Some(t) => format!("{prefix}{}", layout::time_bound(layout::unix_nanos(t))).into_bytes(),
        None => crate::audit::range_end(prefix),
    };
    let mut page = Page::default();
    let mut scanned = 0;
    loop {
        let options = GetOptions::new().with_range(end.clone()).with_limit(CHUNK);
        let mut client = client.clone();
        let read = ektp_election::timed_etcd("range", client.get(from.as_str(), Some(options)));
        let response = tokio::time::timeout(ETCD_TIMEOUT, read)
            .await
            .map_err(|_| ReadError::Timeout)??;
        let Some(last) = response.kvs().last() else {
            return Ok(page);
        };
        from = format!("{}\0", String::from_utf8_lossy(last.key()));
        for kv in response.kvs() {
            let key = String::from_utf8_lossy(kv.key());
            let name = key.strip_prefix(prefix).unwrap_or(&key).to_owned();
            let batch =
                AuditBatch::decode(kv.value()).map_err(|_| ReadError::Corrupt(name.clone()))?;
            let skip = match &query.after {
                Some(after) if after.name == name => after.index + 1,
                _ => 0,
            };
            scanned += 1;
            let count = batch.entries.len();
            for (index, entry) in batch.entries.into_iter().enumerate().skip(skip) {
                if !query.matches(&entry) {
                    continue;
                }
                page.entries.push(entry);
                if page.entries.len() >= query.page_size {
                    // More may follow: the rest of this batch, or later ones.
                    page.next = Some(Position {
                        name: name.clone(),
                        index,
                    });
                    return Ok(page);
                }
            }
            if scanned >= MAX_SCAN {
                page.next = Some(Position {
                    name,
                    index: count.max(1) - 1,
                });
                return Ok(page);
            }
        }
        if !response.more() {
            return Ok(page);
        }
    }
}
