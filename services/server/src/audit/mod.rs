//! The audit trail: every call that reads or changes one person's data is
//! recorded — caller, role, method, NIK, stated purpose, time, outcome and
//! the replica that executed it — append-only in etcd under
//! `/ektp/{office}/audit/` ([`layout`]), and readable through the
//! `ektp.v1.Audit` service ([`AuditApi`]).
//!
//! **No answer without its audit entry**: a handler runs the call, then hands
//! its result to [`AuditLog::answer`], which gives the result back only once
//! the call's entries are committed, and UNAVAILABLE instead when they could
//! not be. Entries are group-committed ([`batch`]): one etcd write per batch
//! of up to 4,096 entries (1 MiB) or 2 ms, not one per entry.

mod api;
mod batch;
mod context;
mod layout;
mod metrics;
mod read;
mod retention;

pub use api::AuditApi;
pub use batch::BatchLimits;
pub use context::{AuditContext, Method, caller_or_anonymous};
pub use metrics::{BATCH_SIZE_BUCKETS, describe as describe_metrics};
pub use read::{Page, Query, ReadError};

use batch::{Pending, Sealed};
use ektp_election::ElectionHandle;
use ektp_proto::v1::AuditEntry;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, oneshot};
use tonic::{Code, Status};
use tracing::{info, warn};

/// Records waiting for a batch; beyond this, callers wait (back-pressure).
const QUEUE: usize = 16_384;
/// Longest one batch write may take.
const ETCD_TIMEOUT: Duration = Duration::from_secs(3);

/// Handle to one node's audit trail writer (cheap to clone).
#[derive(Clone)]
pub struct AuditLog {
    records: mpsc::Sender<Pending>,
    client: Client,
    prefix: String,
}

impl AuditLog {
    /// Starts the group-commit task of node `node` (its advertised address)
    /// writing under the office prefix `/ektp/{office}/`.
    pub fn spawn(client: Client, office_prefix: &str, node: String, limits: BatchLimits) -> Self {
        let prefix = layout::prefix(office_prefix);
        let (records, rx) = mpsc::channel(QUEUE);
        let (writer, keys) = (client.clone(), prefix.clone());
        tokio::spawn(batch::run(rx, limits, node, move |sealed: Sealed| {
            put_if_absent(
                writer.clone(),
                format!("{keys}{}", sealed.name),
                sealed.value,
            )
        }));
        Self {
            records,
            client,
            prefix,
        }
    }

    /// Records `entries` and returns once they are committed; UNAVAILABLE
    /// when they could not be.
    pub async fn record(&self, entries: Vec<AuditEntry>) -> Result<(), Status> {
        if entries.is_empty() {
            return Ok(());
        }
        let unavailable = || Status::unavailable("audit trail unavailable; retry");
        let (done, committed) = oneshot::channel();
        self.records
            .send(Pending { entries, done })
            .await
            .map_err(|_| unavailable())?;
        match committed.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(unavailable()),
        }
    }

    /// The answer to an audited call: `result`, once one entry per NIK in
    /// `niks` (with the result's code as outcome) is committed. A request
    /// rejected as INVALID_ARGUMENT is not recorded: it identifies no person
    /// and changes nothing.
    pub async fn answer<R>(
        &self,
        ctx: &AuditContext,
        result: Result<R, Status>,
        niks: impl IntoIterator<Item = String>,
    ) -> Result<R, Status> {
        let outcome = match &result {
            Ok(_) => Code::Ok,
            Err(status) if status.code() == Code::InvalidArgument => return result,
            Err(status) => status.code(),
        };
        let entries = niks
            .into_iter()
            .map(|nik| ctx.entry(&nik, outcome))
            .collect();
        self.record(entries).await?;
        result
    }

    /// One page of the trail.
    pub async fn list(&self, query: &Query) -> Result<Page, ReadError> {
        read::list(&self.client, &self.prefix, query).await
    }

    /// Deletes batches older than `retention` every `every` while this node
    /// leads (followers leave it to the leader).
    pub fn spawn_retention(&self, election: ElectionHandle, retention: Duration, every: Duration) {
        let (client, prefix) = (self.client.clone(), self.prefix.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if !election.role().is_leader() {
                    continue;
                }
                match retention::sweep(&client, &prefix, retention, SystemTime::now()).await {
                    Ok(0) => {}
                    Ok(deleted) => info!(deleted, "audit retention sweep"),
                    Err(e) => warn!(error = %e, "audit retention sweep failed"),
                }
            }
        });
    }
}

/// Writes one batch, append-only: the put happens only if the key is new.
async fn put_if_absent(mut client: Client, key: String, value: Vec<u8>) -> Result<(), String> {
    let txn = Txn::new()
        .when([Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(key.as_str(), value, None)]);
    let write = ektp_election::timed_etcd("txn", client.txn(txn));
    match tokio::time::timeout(ETCD_TIMEOUT, write).await {
        Ok(Ok(response)) if response.succeeded() => Ok(()),
        Ok(Ok(_)) => Err(format!("audit key {key} already exists")),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("etcd write timed out".to_owned()),
    }
}

/// The end of a prefix range: the prefix with its last byte incremented.
pub(crate) fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}
