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
//! of up to 4,096 entries (1 MiB) or 2 ms, not one per entry. A writer that commits a
//! change in its own transaction can put the change's entries in that same
//! transaction instead ([`AuditLog::seal_in_txn`]): one round trip, and the
//! change and its entries are atomic.

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
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// This node's advertised address, stamped on every entry.
    node: String,
    /// Sequence of this node's batches, shared with the group commit.
    seq: Arc<AtomicU64>,
}

/// Audit entries sealed into one `AuditBatch`, to be put by the caller in
/// the transaction of the change they record; committed only with it.
#[derive(Debug)]
pub struct AuditInTxn {
    /// The batch's full etcd key (new: put it only if absent).
    pub key: String,
    /// The encoded `AuditBatch`.
    pub value: Vec<u8>,
    /// Entries in the batch.
    pub entries: usize,
}

impl AuditLog {
    /// Starts the group-commit task of node `node` (its advertised address)
    /// writing under the office prefix `/ektp/{office}/`.
    pub fn spawn(client: Client, office_prefix: &str, node: String, limits: BatchLimits) -> Self {
        let prefix = layout::prefix(office_prefix);
        let (records, rx) = mpsc::channel(QUEUE);
        let (writer, keys) = (client.clone(), prefix.clone());
        let seq = Arc::new(AtomicU64::new(0));
        let run = batch::run(
            rx,
            limits,
            node.clone(),
            seq.clone(),
            move |sealed: Sealed| {
                put_if_absent(
                    writer.clone(),
                    format!("{keys}{}", sealed.name),
                    sealed.value,
                )
            },
        );
        tokio::spawn(run);
        Self {
            records,
            client,
            prefix,
            node,
            seq,
        }
    }

    /// Seals `entries` (stamped now, by this node) as one batch for the
    /// caller's own transaction. The caller puts it only if its key is
    /// absent, and calls [`Self::committed_in_txn`] once that transaction
    /// committed; its callers' answers then need no [`Self::record`].
    pub fn seal_in_txn(&self, entries: Vec<AuditEntry>) -> AuditInTxn {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let sealed = batch::seal_entries(entries, SystemTime::now(), &self.node, seq);
        AuditInTxn {
            key: format!("{}{}", self.prefix, sealed.name),
            value: sealed.value,
            entries: sealed.entries,
        }
    }

    /// Counts a batch sealed by [`Self::seal_in_txn`] whose transaction committed.
    pub fn committed_in_txn(&self, batch: &AuditInTxn) {
        metrics::committed(batch.entries);
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
