//! Group commit: the writer answers many commands of one kind from one
//! fenced etcd transaction, each caller only after that transaction
//! committed. Authorisations take what is queued right now; records gather
//! while other record batches are in flight and start when full, or at once
//! when nothing else is in flight (`Forming`), so a lone request is never
//! delayed. A batch stays within etcd's default
//! limits, so no etcd flag has to change: `--max-txn-ops` (128 operations or
//! compares per transaction level) and the 1.5 MiB request size.

use super::Command;
use super::authorize::Decision;
use super::record::NewResident;
use crate::error::Result;
use crate::gauges::COMMIT_BATCH_SIZE;
use ektp_proto::v1::Resident;
use metrics::histogram;
use tokio::sync::{mpsc, oneshot};

/// Operations (or compares) one batch may put in its transaction's innermost
/// level: etcd's default `--max-txn-ops` is 128 per level, the fences take
/// one per level above it (at most two), and the rest is headroom.
pub(super) const MAX_TXN_OPS: usize = 120;
/// Bytes of values one batch may write; etcd refuses requests over 1.5 MiB.
pub(super) const MAX_BATCH_BYTES: usize = 1024 * 1024;

/// Where a command's answer goes.
pub(super) type Reply<T> = oneshot::Sender<Result<T>>;

/// A RecordResident command waiting for its batch: the outer result is the
/// batch's, the inner one the record's own answer.
pub(super) type RecordCall = (NewResident, Reply<Result<Resident>>);
/// An AuthorizePrint command waiting for its batch.
pub(super) type AuthorizeCall = (Decision, Reply<Resident>);

/// The RecordResident commands gathering for the next batch, up to the
/// caps; a record that would break the byte cap waits for the batch after.
#[derive(Default)]
pub(super) struct Forming {
    calls: Vec<RecordCall>,
    bytes: usize,
    overflow: Option<RecordCall>,
}

impl Forming {
    pub(super) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// No more records fit.
    pub(super) fn is_full(&self) -> bool {
        self.calls.len() >= super::record::MAX_BATCH || self.overflow.is_some()
    }

    /// Whether the batch should start now: it is full, or nothing else is
    /// in flight (`idle`), so waiting for more would only delay it.
    pub(super) fn ready(&self, idle: bool) -> bool {
        !self.is_empty() && (idle || self.is_full())
    }

    /// Adds a record (callers check [`Forming::is_full`] first).
    pub(super) fn push(&mut self, call: RecordCall) {
        let size = call.0.size();
        if !self.calls.is_empty() && self.bytes + size > MAX_BATCH_BYTES {
            self.overflow = Some(call);
        } else {
            self.bytes += size;
            self.calls.push(call);
        }
    }

    /// The batch so far; the record that did not fit begins the next one.
    pub(super) fn take(&mut self) -> Vec<RecordCall> {
        let batch = std::mem::take(&mut self.calls);
        self.bytes = 0;
        if let Some(call) = self.overflow.take() {
            self.push(call);
        }
        batch
    }
}

/// The AuthorizePrint commands queued behind `first`, up to the cap; also
/// the first command of another kind.
pub(super) fn authorizations(
    first: AuthorizeCall,
    commands: &mut mpsc::Receiver<Command>,
) -> (Vec<AuthorizeCall>, Option<Command>) {
    let mut batch = vec![first];
    while batch.len() < super::authorize::MAX_BATCH {
        match commands.try_recv() {
            Ok(Command::Authorize(decision, reply)) => batch.push((decision, reply)),
            Ok(other) => return (batch, Some(other)),
            Err(_) => break,
        }
    }
    (batch, None)
}

/// Answers each caller of a batch with its own answer once the batch
/// committed, or every caller with the batch's failure. `answers` holds one
/// answer per reply, in order.
pub(super) fn answer<T>(replies: Vec<Reply<T>>, result: Result<Vec<Result<T>>>) {
    match result {
        Ok(answers) => {
            histogram!(COMMIT_BATCH_SIZE).record(replies.len() as f64);
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::record::MAX_BATCH;
    use ektp_proto::v1::PrintMaterial;

    fn record(photo_bytes: usize) -> (RecordCall, oneshot::Receiver<Result<Result<Resident>>>) {
        let (reply, answer) = oneshot::channel();
        let new = NewResident {
            request_id: "rec".into(),
            digest: vec![1],
            nik: ektp_nik::Nik::parse(NIK).expect("a valid nik"),
            resident: Resident::default(),
            material: PrintMaterial {
                photo: vec![0; photo_bytes],
                signature: Vec::new(),
            },
            audit: None,
        };
        ((new, reply), answer)
    }

    const NIK: &str = "3527091604810001";

    #[test]
    fn a_lone_record_starts_at_once_and_a_busy_writer_waits_for_a_full_batch() {
        let mut forming = Forming::default();
        assert!(!forming.ready(true), "nothing to start");
        let (call, _a) = record(10);
        forming.push(call);
        assert!(forming.ready(true), "nothing else in flight: no waiting");
        assert!(!forming.ready(false), "a batch in flight: gather more");
        let mut answers = Vec::new();
        while !forming.is_full() {
            let (call, answer) = record(10);
            forming.push(call);
            answers.push(answer);
        }
        assert!(forming.ready(false), "a full batch starts beside others");
        assert_eq!(forming.take().len(), MAX_BATCH);
        assert!(forming.is_empty());
    }

    #[test]
    fn a_record_past_the_byte_cap_begins_the_next_batch() {
        let mut forming = Forming::default();
        let big = MAX_BATCH_BYTES / 2;
        let (first, _a) = record(big);
        let (second, _b) = record(big);
        forming.push(first);
        assert!(!forming.is_full());
        forming.push(second);
        assert!(
            forming.is_full(),
            "two halves and their overhead do not fit"
        );
        assert_eq!(forming.take().len(), 1);
        assert!(!forming.is_empty(), "kept for the next batch");
        assert_eq!(forming.take().len(), 1);
        assert!(forming.is_empty());

        let (huge, _c) = record(2 * MAX_BATCH_BYTES);
        forming.push(huge);
        assert_eq!(
            forming.take().len(),
            1,
            "alone, a record over the cap still goes"
        );
    }
}
