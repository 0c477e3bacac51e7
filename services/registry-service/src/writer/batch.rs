//! Group commit: the writer takes the commands of one kind that are queued
//! right now (it never waits for more, so a lone request is not delayed) and
//! answers all of them from one fenced etcd transaction, each caller only
//! after that transaction committed. A batch stays within etcd's default
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

/// The RecordResident commands queued behind `first`, up to the caps; also
/// the first command that did not join (another kind, or too big to fit).
pub(super) fn records(
    first: RecordCall,
    commands: &mut mpsc::Receiver<Command>,
) -> (Vec<RecordCall>, Option<Command>) {
    let mut bytes = first.0.size();
    let mut batch = vec![first];
    while batch.len() < super::record::MAX_BATCH {
        match commands.try_recv() {
            Ok(Command::Record(new, reply)) if bytes + new.size() <= MAX_BATCH_BYTES => {
                bytes += new.size();
                batch.push((*new, reply));
            }
            Ok(other) => return (batch, Some(other)),
            Err(_) => break,
        }
    }
    (batch, None)
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
    use ektp_proto::v1::PrintMaterial;

    fn record(photo_bytes: usize) -> (Command, oneshot::Receiver<Result<Result<Resident>>>) {
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
        (Command::Record(Box::new(new), reply), answer)
    }

    const NIK: &str = "3527091604810001";

    #[tokio::test]
    async fn a_batch_takes_only_what_is_queued_up_to_the_operation_cap() {
        let (tx, mut rx) = mpsc::channel(1024);
        let mut answers = Vec::new();
        for _ in 0..super::super::record::MAX_BATCH + 3 {
            let (command, answer) = record(10);
            tx.send(command).await.expect("queued");
            answers.push(answer);
        }
        let Some(Command::Record(first, reply)) = rx.recv().await else {
            panic!("a record first");
        };
        let (batch, next) = records((*first, reply), &mut rx);
        assert_eq!(batch.len(), super::super::record::MAX_BATCH);
        assert!(next.is_none(), "a full batch leaves the rest queued");
        let (rest, next) = match rx.try_recv() {
            Ok(Command::Record(first, reply)) => records((*first, reply), &mut rx),
            _ => panic!("the rest is queued"),
        };
        assert_eq!(rest.len(), 3, "nothing is waited for");
        assert!(next.is_none());
    }

    #[tokio::test]
    async fn a_batch_ends_at_another_kind_of_command_or_at_the_byte_cap() {
        let (tx, mut rx) = mpsc::channel(16);
        let (first, _a) = record(10);
        let (second, _b) = record(10);
        let (sweep, _c) = oneshot::channel();
        tx.send(second).await.expect("queued");
        tx.send(Command::SweepEvents(sweep)).await.expect("queued");
        let Command::Record(first, reply) = first else {
            panic!("a record");
        };
        let (batch, next) = records((*first, reply), &mut rx);
        assert_eq!(batch.len(), 2);
        assert!(matches!(next, Some(Command::SweepEvents(_))));

        let big = MAX_BATCH_BYTES / 2;
        let (first, _d) = record(big);
        let (second, _e) = record(big);
        tx.send(second).await.expect("queued");
        let Command::Record(first, reply) = first else {
            panic!("a record");
        };
        let (batch, next) = records((*first, reply), &mut rx);
        assert_eq!(batch.len(), 1, "two halves and their overhead do not fit");
        assert!(
            matches!(next, Some(Command::Record(..))),
            "kept for the next batch"
        );
    }
}
