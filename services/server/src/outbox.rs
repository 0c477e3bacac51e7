//! The outbox: every state change is written as an `ektp.v1.Event` under
//! `/ektp/{office}/events/` in the same etcd transaction as the change itself.
//! Events are ordered by the etcd revision that wrote them (and by key within
//! one transaction); keys only need to be unique, so each writer names them
//! after its epoch, a per-load nonce and a counter.

use ektp_proto::v1::{Event, EventKind};
use etcd_client::TxnOp;
use prost::Message;

/// Appends events for one writer (one leader, one epoch).
#[derive(Clone, Debug)]
pub struct Outbox {
    prefix: String,
    next: u64,
}

impl Outbox {
    /// An outbox for `writer` (`r` registry, `p` print) leading at `epoch`,
    /// under the office key prefix `/ektp/{office}/`.
    pub fn new(office_prefix: &str, writer: char, epoch: u64) -> Self {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        Self {
            prefix: format!("{office_prefix}events/{writer}{epoch:020}-{nonce:024}-"),
            next: 0,
        }
    }

    /// The put of one more event; add it to the transaction of the change.
    pub fn append(
        &mut self,
        kind: EventKind,
        nik: &str,
        job_id: &str,
        card_serial: &str,
        detail: &str,
    ) -> TxnOp {
        self.next += 1;
        let event = Event {
            cursor: String::new(),
            kind: kind as i32,
            nik: nik.to_owned(),
            job_id: job_id.to_owned(),
            card_serial: card_serial.to_owned(),
            time: Some(prost_types::Timestamp::from(std::time::SystemTime::now())),
            detail: detail.to_owned(),
        };
        TxnOp::put(
            format!("{}{:08}", self.prefix, self.next),
            event.encode_to_vec(),
            None,
        )
    }
}

/// The cursor of an event stored at `key` by the transaction at `revision`:
/// zero-padded so that cursors compare in stream order.
pub fn event_cursor(revision: i64, key: &[u8]) -> String {
    let name = key.rsplit(|b| *b == b'/').next().unwrap_or_default();
    format!("{revision:020}.{}", String::from_utf8_lossy(name))
}

/// Splits a cursor into (revision, key name); `None` if it is not one.
pub fn parse_cursor(cursor: &str) -> Option<(i64, &str)> {
    let (revision, name) = cursor.split_once('.')?;
    let ok = revision.len() == 20
        && revision.bytes().all(|b| b.is_ascii_digit())
        && !name.is_empty()
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    ok.then(|| revision.parse().ok().map(|r| (r, name)))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_order_by_revision_then_key() {
        let a = event_cursor(7, b"/ektp/x/events/r00000000000000000003-1-00000001");
        let b = event_cursor(7, b"/ektp/x/events/r00000000000000000003-1-00000002");
        let c = event_cursor(12, b"/ektp/x/events/p00000000000000000004-9-00000001");
        assert!(a < b && b < c);
        assert_eq!(
            parse_cursor(&a),
            Some((7, "r00000000000000000003-1-00000001"))
        );
        assert_eq!(parse_cursor("7.x"), None);
        assert_eq!(parse_cursor("garbage"), None);
    }
}
