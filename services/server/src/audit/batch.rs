//! Group commit: records queue on a channel; one task takes the first waiting
//! record, then more until the batch holds `max_entries` or `linger` has
//! passed since the first, seals them into one `AuditBatch` and hands it to
//! the committer (a few batches may be committing at once). Every caller
//! whose entries are in the batch is told the batch's fate only once the
//! committer has answered: committed, or failed.

use super::layout;
use super::metrics;
use ektp_proto::storage::AuditBatch;
use ektp_proto::v1::AuditEntry;
use prost::Message;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;
use tracing::warn;

/// Why a batch did not commit (logged; callers only learn that it failed).
pub type CommitError = String;

/// One caller's entries, and where to tell it whether they committed.
pub struct Pending {
    pub entries: Vec<AuditEntry>,
    pub done: oneshot::Sender<Result<(), ()>>,
}

/// How batches are formed.
#[derive(Clone, Copy, Debug)]
pub struct BatchLimits {
    /// A batch is sealed once it holds this many entries.
    pub max_entries: usize,
    /// ... or about this many encoded bytes (etcd refuses requests over 1.5 MiB).
    pub max_bytes: usize,
    /// ... or this long after its first record arrived.
    pub linger: Duration,
    /// Most batches committing at once.
    pub max_in_flight: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            // Verification streams send tens of thousands of entries a
            // second: big batches keep that to a few etcd writes.
            max_entries: 4_096,
            max_bytes: 1024 * 1024,
            linger: Duration::from_millis(2),
            max_in_flight: 8,
        }
    }
}

/// A batch ready to write: its key name and encoded `AuditBatch`.
#[derive(Debug)]
pub struct Sealed {
    pub name: String,
    pub value: Vec<u8>,
    pub entries: usize,
}

/// Waits for a first record, then collects more until the limits; `None`
/// once every sender is gone and nothing is left.
async fn collect(rx: &mut mpsc::Receiver<Pending>, limits: BatchLimits) -> Option<Vec<Pending>> {
    let first = rx.recv().await?;
    let deadline = Instant::now() + limits.linger;
    let mut count = first.entries.len();
    let mut bytes = encoded_len(&first);
    let mut batch = vec![first];
    while count < limits.max_entries && bytes < limits.max_bytes {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(pending)) => {
                count += pending.entries.len();
                bytes += encoded_len(&pending);
                batch.push(pending);
            }
            Ok(None) | Err(_) => break,
        }
    }
    Some(batch)
}

/// About what a record adds to a batch: its entries, plus the node and time
/// stamped at commit.
fn encoded_len(pending: &Pending) -> usize {
    pending
        .entries
        .iter()
        .map(|e| e.encoded_len() + STAMP_BYTES)
        .sum()
}

/// Room for the node address and commit time stamped on each entry.
const STAMP_BYTES: usize = 80;

/// Stamps every entry with the commit time and node and encodes the batch;
/// also returns the callers to answer.
pub fn seal(
    batch: Vec<Pending>,
    now: SystemTime,
    node: &str,
    seq: u64,
) -> (Sealed, Vec<oneshot::Sender<Result<(), ()>>>) {
    let mut entries = Vec::new();
    let mut waiters = Vec::with_capacity(batch.len());
    for pending in batch {
        entries.extend(pending.entries);
        waiters.push(pending.done);
    }
    (seal_entries(entries, now, node, seq), waiters)
}

/// Stamps `entries` with the commit time and node and encodes them as one
/// `AuditBatch` named by time, node and sequence.
pub fn seal_entries(mut entries: Vec<AuditEntry>, now: SystemTime, node: &str, seq: u64) -> Sealed {
    let time = prost_types::Timestamp::from(now);
    for entry in &mut entries {
        entry.time = Some(time);
        entry.node = node.to_owned();
    }
    let name = layout::batch_name(layout::unix_nanos(now), &layout::node_part(node), seq);
    let count = entries.len();
    let value = AuditBatch { entries }.encode_to_vec();
    Sealed {
        name,
        value,
        entries: count,
    }
}

/// Runs the group commit until every sender is gone. `seq` numbers this
/// node's batches; it is shared with batches sealed into other transactions
/// ([`super::AuditLog::seal_in_txn`]), so no two keys of a node collide.
pub async fn run<C, F>(
    mut rx: mpsc::Receiver<Pending>,
    limits: BatchLimits,
    node: String,
    seq: Arc<AtomicU64>,
    commit: C,
) where
    C: Fn(Sealed) -> F + Clone + Send + 'static,
    F: Future<Output = Result<(), CommitError>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_in_flight.max(1)));
    while let Some(batch) = collect(&mut rx, limits).await {
        // Seal only once a slot is free, so the stamped time is close to the write.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let next = seq.fetch_add(1, Ordering::Relaxed) + 1;
        let (sealed, waiters) = seal(batch, SystemTime::now(), &node, next);
        let commit = commit.clone();
        tokio::spawn(async move {
            let entries = sealed.entries;
            let result = commit(sealed).await;
            match &result {
                Ok(()) => metrics::committed(entries),
                Err(e) => {
                    metrics::failed();
                    warn!(error = %e, entries, "audit batch not committed");
                }
            }
            for waiter in waiters {
                let _ = waiter.send(result.as_ref().map(|_| ()).map_err(|_| ()));
            }
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ektp_proto::storage::AuditBatch;
    use std::sync::Mutex;

    fn entry(nik: &str) -> AuditEntry {
        AuditEntry {
            nik: nik.into(),
            ..AuditEntry::default()
        }
    }

    /// Starts the loop over a committer that keeps what it was given (or
    /// refuses everything), and returns the sender and the kept batches.
    fn start(
        limits: BatchLimits,
        refuse: bool,
    ) -> (mpsc::Sender<Pending>, Arc<Mutex<Vec<AuditBatch>>>) {
        let (tx, rx) = mpsc::channel(10_000);
        let kept = Arc::new(Mutex::new(Vec::new()));
        let keep = kept.clone();
        tokio::spawn(run(
            rx,
            limits,
            "http://n:1".into(),
            Arc::new(AtomicU64::new(0)),
            move |sealed: Sealed| {
                let keep = keep.clone();
                async move {
                    if refuse {
                        return Err("refused".to_owned());
                    }
                    let batch =
                        AuditBatch::decode(sealed.value.as_slice()).map_err(|e| e.to_string())?;
                    keep.lock().map_err(|e| e.to_string())?.push(batch);
                    Ok(())
                }
            },
        ));
        (tx, kept)
    }

    async fn record(tx: &mpsc::Sender<Pending>, nik: &str) -> Result<(), ()> {
        let (done, answer) = oneshot::channel();
        let pending = Pending {
            entries: vec![entry(nik)],
            done,
        };
        tx.send(pending).await.map_err(|_| ())?;
        answer.await.map_err(|_| ())?
    }

    #[tokio::test]
    async fn concurrent_records_share_batches_and_each_is_answered_after_its_commit() {
        let limits = BatchLimits {
            max_entries: 64,
            max_bytes: 1024 * 1024,
            linger: Duration::from_millis(20),
            max_in_flight: 2,
        };
        let (tx, kept) = start(limits, false);
        let calls = (0..1_000).map(|i| {
            let tx = tx.clone();
            tokio::spawn(async move { record(&tx, &format!("{i:016}")).await })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.ok(), Some(Ok(())));
        }
        let batches = kept.lock().map(|b| b.clone()).unwrap_or_default();
        let sizes: Vec<usize> = batches.iter().map(|b| b.entries.len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1_000);
        assert!(sizes.iter().all(|s| *s <= 64), "{sizes:?}");
        assert!(
            batches.len() < 100,
            "{} batches: not grouped",
            batches.len()
        );
        let node_and_time = batches
            .iter()
            .flat_map(|b| &b.entries)
            .all(|e| e.node == "http://n:1" && e.time.is_some());
        assert!(node_and_time);
    }

    #[tokio::test]
    async fn a_batch_is_sealed_before_it_outgrows_its_byte_limit() {
        let limits = BatchLimits {
            max_bytes: 2_000,
            linger: Duration::from_millis(50),
            ..BatchLimits::default()
        };
        let (tx, kept) = start(limits, false);
        let calls = (0..200).map(|i| {
            let tx = tx.clone();
            tokio::spawn(async move { record(&tx, &format!("{i:016}")).await })
        });
        for call in calls.collect::<Vec<_>>() {
            assert_eq!(call.await.ok(), Some(Ok(())));
        }
        let batches = kept.lock().map(|b| b.clone()).unwrap_or_default();
        assert!(batches.len() > 1, "one batch of {} entries", batches.len());
        for batch in &batches {
            // The limit, plus the one record that crossed it.
            assert!(batch.encoded_len() < 2_000 + 200, "{}", batch.encoded_len());
        }
    }

    #[tokio::test]
    async fn a_lone_record_is_committed_after_the_linger() {
        let limits = BatchLimits {
            linger: Duration::from_millis(5),
            ..BatchLimits::default()
        };
        let (tx, kept) = start(limits, false);
        assert_eq!(record(&tx, "1").await, Ok(()));
        assert_eq!(kept.lock().map(|b| b.len()).unwrap_or_default(), 1);
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_caller_in_the_batch() {
        let (tx, _) = start(BatchLimits::default(), true);
        let (a, b) = tokio::join!(record(&tx, "1"), record(&tx, "2"));
        assert_eq!((a, b), (Err(()), Err(())));
    }

    #[test]
    fn sealing_names_the_batch_by_commit_time_node_and_sequence() {
        let now = layout::from_unix_nanos(1_700_000_000_123_456_789);
        let (done, _answer) = oneshot::channel();
        let pending = Pending {
            entries: vec![entry("1"), entry("2")],
            done,
        };
        let (sealed, waiters) = seal(vec![pending], now, "http://127.0.0.1:9", 3);
        assert_eq!(
            sealed.name,
            "01700000000123456789-http___127_0_0_1_9-000000000003"
        );
        assert_eq!((sealed.entries, waiters.len()), (2, 1));
    }
}
