//! Where audit batches live in etcd and how a page token names a position.
//!
//! A batch is one key, `/ektp/{office}/audit/{unix_nanos:020}-{node}-{seq:012}`,
//! so a range read is in time order and a time range is a key range. The
//! nanoseconds are the batch's commit time, which is also every entry's time.
//! `node` is the writing replica's address reduced to `[A-Za-z0-9_]`, so a
//! key never holds a `.` (the page token's separator).

use std::time::{SystemTime, UNIX_EPOCH};

/// The audit key prefix of an office: `/ektp/{office}/audit/`.
pub fn prefix(office_prefix: &str) -> String {
    format!("{office_prefix}audit/")
}

/// The node part of a key: `node` with everything outside `[A-Za-z0-9_]` as `_`.
pub fn node_part(node: &str) -> String {
    node.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Nanoseconds since the Unix epoch (0 before it, saturating far after).
pub fn unix_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The time `nanos` after the Unix epoch.
#[cfg(test)]
pub fn from_unix_nanos(nanos: u64) -> SystemTime {
    UNIX_EPOCH + std::time::Duration::from_nanos(nanos)
}

/// The name (key without prefix) of a batch committed at `nanos`.
pub fn batch_name(nanos: u64, node_part: &str, seq: u64) -> String {
    format!("{nanos:020}-{node_part}-{seq:012}")
}

/// The smallest name at or after time `nanos`: a range bound.
pub fn time_bound(nanos: u64) -> String {
    format!("{nanos:020}")
}

/// A position in the trail: the entry at `index` of the batch `name`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    pub name: String,
    pub index: usize,
}

impl Position {
    /// The page token resuming after this position.
    pub fn token(&self) -> String {
        format!("{}.{}", self.name, self.index)
    }

    /// The position a token names; `None` for anything this server did not issue.
    pub fn parse(token: &str) -> Option<Self> {
        let (name, index) = token.rsplit_once('.')?;
        let index = index.parse().ok()?;
        let (nanos, rest) = name.split_once('-')?;
        let (node, seq) = rest.rsplit_once('-')?;
        let ok = nanos.len() == 20
            && nanos.bytes().all(|b| b.is_ascii_digit())
            && seq.len() == 12
            && seq.bytes().all(|b| b.is_ascii_digit())
            && !node.is_empty()
            && node.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        ok.then(|| Position {
            name: name.to_owned(),
            index,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_sort_in_time_order_and_time_bounds_enclose_them() {
        let node = node_part("http://127.0.0.1:50051");
        assert_eq!(node, "http___127_0_0_1_50051");
        let early = batch_name(999, &node, 7);
        let late = batch_name(1_000, &node, 1);
        assert!(early < late);
        assert!(time_bound(999) <= early && early < time_bound(1_000));
        assert!(time_bound(1_000) <= late && late < time_bound(1_001));
    }

    #[test]
    fn page_tokens_round_trip_and_foreign_tokens_are_refused() {
        let position = Position {
            name: batch_name(1_700_000_000_000_000_000, "n_1", 42),
            index: 17,
        };
        assert_eq!(Position::parse(&position.token()), Some(position));
        for bad in [
            "",
            "garbage",
            "1.2",
            "00000000000000000001-n-000000000001",
            "00000000000000000001-n.x-000000000001.3",
            "00000000000000000001--000000000001.3",
            "0000000000000000001-n-000000000001.3",
        ] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }
}
