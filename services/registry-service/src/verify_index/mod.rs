//! The verification index: every replica keeps in memory what answering a
//! claim needs — keyed hashes of each resident's compared fields
//! ([`fingerprint`]), never the data — loaded by a paged read of
//! `residents/` and kept current by an etcd watch from that read's revision
//! ([`feed`]).
//!
//! **Staleness**: the index is trusted only while the watch has confirmed it
//! current (an etcd progress answer) within `max_lag`; the confirmation time
//! is that of the progress request one round before the answer, so the
//! bound holds even though etcd 3.4 may answer a progress request ahead of
//! events already queued for the stream. An index answer therefore reflects
//! every change committed more than `max_lag` before it. While the index is
//! loading, reloading after a compaction, or lagging beyond `max_lag`, and
//! for a claim asking `linearizable`, the answer comes from etcd as before.

mod feed;
mod fingerprint;
mod table;

pub use fingerprint::Keyed;

use crate::keys::Keys;
use ektp_proto::v1::{VerifyResidentRequest, VerifyResidentResponse};
use etcd_client::Client;
use fingerprint::{Row, nik_number};
use metrics::{describe_gauge, gauge};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};
use table::Table;

const RESIDENTS: &str = "ektp_verify_index_residents";
const LAG: &str = "ektp_verify_index_lag_seconds";
const READY: &str = "ektp_verify_index_ready";

/// Describes the index's metrics.
pub fn describe() {
    describe_gauge!(RESIDENTS, "Residents in this replica's verification index.");
    describe_gauge!(
        LAG,
        "Seconds since this replica's verification index was last confirmed current by its etcd watch (answers come from etcd above the configured bound)."
    );
    describe_gauge!(
        READY,
        "1 when this replica answers verifications from its in-memory index, 0 while it loads or lags (answers then come from etcd)."
    );
}

/// A replica's verification index (cheap to clone).
#[derive(Clone)]
pub struct VerifyIndex {
    inner: Arc<Inner>,
}

struct Inner {
    table: RwLock<Table>,
    keyed: Keyed,
    /// Whether `table` holds a complete snapshot kept current by the watch.
    loaded: AtomicBool,
    /// When the table was last known current, in nanoseconds after `epoch`.
    confirmed: AtomicU64,
    epoch: Instant,
    max_lag: Duration,
}

/// What the index knows of a NIK.
pub struct Snapshot<'a> {
    table: RwLockReadGuard<'a, Table>,
    keyed: &'a Keyed,
}

impl Snapshot<'_> {
    /// The answer to `claim` (its NIK already validated), or `None` when the
    /// index cannot answer it (its stored value did not decode): ask etcd.
    pub fn check(&self, claim: &VerifyResidentRequest) -> Option<VerifyResidentResponse> {
        let nik = nik_number(claim.nik.trim())?;
        let row = self.table.get(nik);
        if row.is_some_and(Row::is_unreadable) {
            return None;
        }
        Some(self.keyed.check(row, claim))
    }
}

impl VerifyIndex {
    /// Starts loading and watching the residents under `keys`; answers are
    /// trusted while the watch confirmed the index within `max_lag`.
    pub fn spawn(client: Client, keys: Keys, max_lag: Duration) -> Self {
        let index = Self {
            inner: Arc::new(Inner {
                table: RwLock::new(Table::default()),
                keyed: Keyed::new(),
                loaded: AtomicBool::new(false),
                confirmed: AtomicU64::new(0),
                epoch: Instant::now(),
                max_lag,
            }),
        };
        tokio::spawn(feed::run(client, keys, index.clone()));
        tokio::spawn(index.clone().export());
        index
    }

    /// The index to answer from now, or `None` when it must not be used
    /// (loading, or not confirmed current within the bound).
    pub fn snapshot(&self) -> Option<Snapshot<'_>> {
        if !self.is_ready() {
            return None;
        }
        let table = self.inner.table.read().ok()?;
        Some(Snapshot {
            table,
            keyed: &self.inner.keyed,
        })
    }

    fn is_ready(&self) -> bool {
        self.inner.loaded.load(Ordering::Acquire) && self.lag() <= self.inner.max_lag
    }

    /// Time since the index was last confirmed current.
    fn lag(&self) -> Duration {
        let confirmed = Duration::from_nanos(self.inner.confirmed.load(Ordering::Acquire));
        self.inner.epoch.elapsed().saturating_sub(confirmed)
    }

    /// Records that the index held everything committed up to `at`.
    fn confirm(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.inner.epoch).as_nanos();
        self.inner
            .confirmed
            .fetch_max(u64::try_from(nanos).unwrap_or(u64::MAX), Ordering::AcqRel);
    }

    /// Drops the table (before a reload, so two never coexist in memory).
    fn unload(&self) {
        self.inner.loaded.store(false, Ordering::Release);
        if let Ok(mut table) = self.inner.table.write() {
            *table = Table::default();
        }
    }

    /// Installs a freshly loaded table, current as of `at`.
    fn install(&self, table: Table, at: Instant) {
        if let Ok(mut current) = self.inner.table.write() {
            *current = table;
        }
        self.inner.confirmed.store(0, Ordering::Release);
        self.confirm(at);
        self.inner.loaded.store(true, Ordering::Release);
    }

    /// Applies a watch batch under one lock.
    fn apply(&self, change: impl FnOnce(&mut Table)) {
        if let Ok(mut table) = self.inner.table.write() {
            change(&mut table);
        }
    }

    fn keyed(&self) -> &Keyed {
        &self.inner.keyed
    }

    /// Keeps the gauges current.
    async fn export(self) {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            let residents = self.inner.table.read().map_or(0, |t| t.len());
            gauge!(RESIDENTS).set(residents as f64);
            let lag = if self.inner.loaded.load(Ordering::Acquire) {
                self.lag().as_secs_f64()
            } else {
                0.0
            };
            gauge!(LAG).set(lag);
            gauge!(READY).set(if self.is_ready() { 1.0 } else { 0.0 });
        }
    }
}
