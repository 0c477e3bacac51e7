//! Blank card stock (*blangko*) in etcd at `/ektp/{office}/stock/blanks`,
//! written only by the print leader under its fence. Every print attempt
//! consumes one blank before the card goes to the printer: a batch takes its
//! blanks in one transaction that also records the batch's serials, so the
//! blank of a card the printer never saw (its leader died or stepped down
//! first) is given back when that card is reconciled.

use ektp_election::{Fence, FencedTxn, TxnError, TxnOutcome};
use ektp_proto::storage::BlankStockRecord;
use ektp_proto::v1::EventKind;
use ektp_server::Outbox;
use etcd_client::{Client, Compare, CompareOp, PutOptions, TxnOp};
use prost::Message;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const ETCD_TIMEOUT: Duration = Duration::from_secs(3);
/// How long AddBlankStock request ids are remembered.
const REQUEST_RETENTION_SECS: i64 = 24 * 3600;

/// Why reading or changing print state in etcd failed.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the print leader's fence no longer holds")]
    FenceLost,
    #[error("etcd: {0}")]
    Etcd(String),
    #[error("undecodable stock record: {0}")]
    Corrupt(#[from] prost::DecodeError),
}

impl From<etcd_client::Error> for StateError {
    fn from(e: etcd_client::Error) -> Self {
        StateError::Etcd(e.to_string())
    }
}

impl From<TxnError> for StateError {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::FenceLost(_) => StateError::FenceLost,
            TxnError::Etcd(e) => e.into(),
        }
    }
}

/// Runs an etcd call with a timeout, timed as `op`.
pub(crate) async fn bounded<T, E: Into<StateError>>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, StateError> {
    match tokio::time::timeout(ETCD_TIMEOUT, ektp_election::timed_etcd(op, call)).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(StateError::Etcd("etcd request timed out".into())),
    }
}

/// The stock record and where it lives.
#[derive(Clone)]
pub struct Stock {
    client: Client,
    prefix: String,
    key: String,
    requests: String,
}

impl Stock {
    pub fn new(client: Client, prefix: &str) -> Self {
        Self {
            client,
            prefix: prefix.to_owned(),
            key: format!("{prefix}stock/blanks"),
            requests: format!("{prefix}stock/requests/"),
        }
    }

    /// The record and its mod revision (0 when never written).
    pub async fn read(&self) -> Result<(BlankStockRecord, i64), StateError> {
        let mut client = self.client.clone();
        let response = bounded("get", client.get(self.key.as_str(), None)).await?;
        match response.kvs().first() {
            Some(kv) => Ok((BlankStockRecord::decode(kv.value())?, kv.mod_revision())),
            None => Ok((BlankStockRecord::default(), 0)),
        }
    }

    /// Applies `change` to the current record under `fence`, retrying when
    /// another change slipped in between read and write.
    async fn update(
        &self,
        fence: &Fence,
        extra: impl Fn(FencedTxn) -> FencedTxn,
        change: impl Fn(&mut BlankStockRecord) -> Result<(), StateError>,
    ) -> Result<Option<BlankStockRecord>, StateError> {
        for _ in 0..10 {
            let (mut record, revision) = self.read().await?;
            change(&mut record)?;
            let txn = extra(FencedTxn::new([fence]))
                .when(Compare::mod_revision(
                    self.key.as_str(),
                    CompareOp::Equal,
                    revision,
                ))
                .op(TxnOp::put(self.key.as_str(), record.encode_to_vec(), None));
            let mut client = self.client.clone();
            match bounded("txn", txn.commit(&mut client)).await? {
                TxnOutcome::Applied(_) => return Ok(Some(record)),
                TxnOutcome::ConditionFailed => continue,
            }
        }
        Ok(None)
    }

    /// Takes the blanks of a claimed batch in one transaction, one per card,
    /// for as many of `serials` (in order) as there are blanks left, and
    /// records those serials in place of the previous batch's: a leader that
    /// dies before handing them all to the printer leaves them for the next
    /// one to give back ([`Self::give_back`]). Returns how many were taken
    /// and how many blanks remain.
    pub async fn take(
        &self,
        fence: &Fence,
        serials: &[String],
    ) -> Result<(usize, u64), StateError> {
        let record = self
            .update(
                fence,
                |t| t,
                |r| {
                    let taken = usize::try_from(r.remaining)
                        .unwrap_or(usize::MAX)
                        .min(serials.len());
                    let count = taken as u64;
                    r.remaining -= count;
                    r.consumed_total += count;
                    r.batch_serials = serials[..taken].to_vec();
                    Ok(())
                },
            )
            .await?
            .ok_or_else(|| StateError::Etcd("stock kept changing; retry".into()))?;
        Ok((record.batch_serials.len(), record.remaining))
    }

    /// Gives back the blank taken for `serial` when it is still recorded as
    /// taken by the last batch: the printer never saw that card. Only the
    /// serials recorded by [`Self::take`] count, each once, so a blank is
    /// never given back twice. Returns whether one was.
    pub async fn give_back(&self, fence: &Fence, serial: &str) -> Result<bool, StateError> {
        let (record, _) = self.read().await?;
        if !record.batch_serials.iter().any(|s| s == serial) {
            return Ok(false);
        }
        let given = AtomicBool::new(false);
        let record = self
            .update(
                fence,
                |t| t,
                |r| {
                    given.store(false, Ordering::Relaxed);
                    if let Some(at) = r.batch_serials.iter().position(|s| s == serial) {
                        r.batch_serials.swap_remove(at);
                        r.remaining = r.remaining.saturating_add(1);
                        r.consumed_total = r.consumed_total.saturating_sub(1);
                        given.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                },
            )
            .await?;
        Ok(record.is_some() && given.load(Ordering::Relaxed))
    }

    /// Adds a delivery of blanks, once per `request_id` (empty: no dedup).
    pub async fn add(
        &self,
        fence: &Fence,
        count: u64,
        reference: &str,
        request_id: &str,
    ) -> Result<u64, StateError> {
        // The outbox event goes in the same transaction as the stock change.
        let event = Outbox::new(&self.prefix, 'p', fence.epoch.0).append(
            EventKind::StockAdded,
            "",
            "",
            "",
            &format!("count={count} reference={reference}"),
        );
        let request_key = format!("{}{request_id}", self.requests);
        if !request_id.is_empty() && self.seen(&request_key).await? {
            return Ok(self.read().await?.0.remaining);
        }
        let lease = if request_id.is_empty() {
            None
        } else {
            let mut client = self.client.clone();
            Some(
                bounded("lease", client.lease_grant(REQUEST_RETENTION_SECS, None))
                    .await?
                    .id(),
            )
        };
        let record = self
            .update(
                fence,
                |t| match lease {
                    Some(lease) => t
                        .op(event.clone())
                        .when(Compare::create_revision(
                            request_key.as_str(),
                            CompareOp::Equal,
                            0,
                        ))
                        .op(TxnOp::put(
                            request_key.as_str(),
                            count.to_string(),
                            Some(PutOptions::new().with_lease(lease)),
                        )),
                    None => t.op(event.clone()),
                },
                |r| {
                    r.remaining = r.remaining.saturating_add(count);
                    r.added_total = r.added_total.saturating_add(count);
                    Ok(())
                },
            )
            .await?;
        match record {
            Some(r) => Ok(r.remaining),
            // A concurrent retry of the same request applied it first.
            None if !request_id.is_empty() && self.seen(&request_key).await? => {
                Ok(self.read().await?.0.remaining)
            }
            None => Err(StateError::Etcd("stock kept changing; retry".into())),
        }
    }

    async fn seen(&self, request_key: &str) -> Result<bool, StateError> {
        let mut client = self.client.clone();
        let response = bounded("get", client.get(request_key, None)).await?;
        Ok(!response.kvs().is_empty())
    }
}
