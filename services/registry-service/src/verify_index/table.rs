//! The index's storage, kept compact: a vector of [`Row`]s sorted by NIK
//! (loaded in key order, exactly sized, searched by bisection) plus a small
//! map of NIKs recorded since, folded into the vector once it grows. An
//! update of a known NIK is made in place; a deletion leaves a tombstone
//! until the next fold. 1 M residents take about 88 MB.

use super::fingerprint::Row;
use std::collections::HashMap;

/// Residents recorded since the last fold before they are folded in.
const FOLD_AT: usize = 16_384;
/// NIK value of a tombstone (no NIK is 0).
const TOMBSTONE: u64 = 0;

/// Rows by NIK.
#[derive(Default)]
pub struct Table {
    sorted: Vec<Row>,
    fresh: HashMap<u64, Row>,
    live: usize,
}

impl Table {
    /// An empty table with room for `n` rows loaded in NIK order.
    pub fn with_capacity(n: usize) -> Self {
        Self {
            sorted: Vec::with_capacity(n),
            ..Self::default()
        }
    }

    /// Adds a row while loading (rows come in NIK order; a fold sorts otherwise).
    pub fn push_loaded(&mut self, row: Row) {
        if self
            .sorted
            .last()
            .is_some_and(|last| last.nik() >= row.nik())
        {
            self.upsert(row);
            return;
        }
        self.sorted.push(row);
        self.live += 1;
    }

    /// Residents in the table.
    pub fn len(&self) -> usize {
        self.live
    }

    fn position(&self, nik: u64) -> Option<usize> {
        self.sorted.binary_search_by_key(&nik, Row::nik).ok()
    }

    /// The row of `nik`, if recorded.
    pub fn get(&self, nik: u64) -> Option<&Row> {
        if let Some(row) = self.fresh.get(&nik) {
            return Some(row);
        }
        self.position(nik).map(|i| &self.sorted[i])
    }

    /// Adds or replaces the row of its NIK.
    pub fn upsert(&mut self, row: Row) {
        if let Some(i) = self.position(row.nik()) {
            self.sorted[i] = row;
            return;
        }
        if self.fresh.insert(row.nik(), row).is_none() {
            self.live += 1;
        }
        if self.fresh.len() >= FOLD_AT {
            self.fold();
        }
    }

    /// Forgets `nik`.
    pub fn remove(&mut self, nik: u64) {
        if self.fresh.remove(&nik).is_some() {
            self.live -= 1;
        } else if let Some(i) = self.position(nik) {
            // Keeps the vector sorted: the tombstone sorts first at the next fold.
            self.sorted[i] = Row {
                key: TOMBSTONE,
                fields: self.sorted[i].fields,
            };
            self.live -= 1;
            self.fold();
        }
    }

    /// Moves fresh rows into the sorted vector and drops tombstones.
    fn fold(&mut self) {
        self.sorted.retain(|r| r.key != TOMBSTONE);
        self.sorted.reserve_exact(self.fresh.len());
        self.sorted.extend(self.fresh.drain().map(|(_, row)| row));
        self.sorted.sort_unstable_by_key(Row::nik);
        self.fresh.shrink_to(FOLD_AT);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(nik: u64, v: u64) -> Row {
        Row {
            key: nik,
            fields: [v; super::super::fingerprint::FIELDS],
        }
    }

    #[test]
    fn rows_are_found_whether_loaded_recorded_since_updated_or_removed() {
        let mut t = Table::with_capacity(4);
        for nik in [10, 20, 30] {
            t.push_loaded(row(nik, 1));
        }
        t.push_loaded(row(20, 2));
        assert_eq!(t.len(), 3);
        assert_eq!(t.get(20).map(|r| r.fields[0]), Some(2));
        for nik in 100..(100 + FOLD_AT as u64 + 5) {
            t.upsert(row(nik, 3));
        }
        t.upsert(row(15, 4));
        t.upsert(row(30, 5));
        assert_eq!(t.len(), 3 + FOLD_AT + 5 + 1);
        assert_eq!(t.get(15).map(|r| r.fields[0]), Some(4));
        assert_eq!(t.get(30).map(|r| r.fields[0]), Some(5));
        assert_eq!(t.get(100).map(|r| r.fields[0]), Some(3));
        assert!(t.get(25).is_none());
        t.remove(20);
        t.remove(15);
        t.remove(25);
        assert!(t.get(20).is_none() && t.get(15).is_none());
        assert_eq!(t.get(10).map(|r| r.fields[0]), Some(1));
        assert_eq!(t.len(), 3 + FOLD_AT + 5 + 1 - 2);
    }
}
