//! Cluster-wide registry gauges, exported by the leader only (followers
//! export 0, so `max()` or `sum()` across replicas never double counts):
//! residents by status, the print backlog, and cumulative totals.

use crate::store::Store;
use ektp_election::ElectionHandle;
use ektp_proto::v1::Stats;
use metrics::{describe_gauge, describe_histogram, gauge};
use std::time::Duration;
use tracing::debug;

const RESIDENTS: &str = "ektp_registry_residents";
const BACKLOG: &str = "ektp_registry_backlog";
const TOTALS: &str = "ektp_registry_totals";
/// Set by the leader's re-seal pass (`writer/material.rs`).
pub const MATERIAL_STALE_KEY: &str = "ektp_registry_material_stale_key_values";
/// Changes per fenced commit of the writer (group commit size; recorded by
/// `writer/batch.rs`). Its buckets are the shared batch-size buckets
/// (`ektp_server`'s recorder: 1, 2, 4 … 8192).
pub const COMMIT_BATCH_SIZE: &str = "ektp_registry_commit_batch_size";
const REFRESH: Duration = Duration::from_secs(5);

/// Describes the registry's metrics.
pub fn describe() {
    describe_gauge!(
        RESIDENTS,
        "Residents by current status (leader only; followers report 0)."
    );
    describe_gauge!(
        BACKLOG,
        "Print-ready residents not printed yet (leader only; followers report 0)."
    );
    describe_gauge!(
        TOTALS,
        "Cumulative totals since the office started, by kind (leader only; followers report 0)."
    );
    describe_histogram!(
        COMMIT_BATCH_SIZE,
        "Writer commands answered by one fenced etcd transaction (group commit size; leader only)."
    );
    describe_gauge!(
        MATERIAL_STALE_KEY,
        "Print material values the last complete re-seal pass found not sealed with the active key (re-sealed since, or unopenable); 0 means old keys can be removed (leader only; followers report 0)."
    );
}

/// Refreshes the gauges every few seconds from the counters in etcd.
pub fn spawn(store: Store, election: ElectionHandle) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(REFRESH);
        loop {
            tick.tick().await;
            let stats = if election.role().is_leader() {
                match store.stats().await {
                    Ok(stats) => stats,
                    Err(e) => {
                        debug!(error = %e, "registry gauges not refreshed");
                        continue;
                    }
                }
            } else {
                Stats::default()
            };
            export(&stats);
        }
    });
}

fn export(s: &Stats) {
    let undecided = s
        .recorded
        .saturating_sub(s.print_ready + s.duplicates + s.rejected);
    let by_status = [
        ("recorded", undecided),
        ("print_ready", s.backlog),
        ("printed", s.printed),
        ("duplicate", s.duplicates),
        ("rejected", s.rejected),
        ("print_failed", s.print_failed),
    ];
    for (status, value) in by_status {
        gauge!(RESIDENTS, "status" => status).set(value as f64);
    }
    gauge!(BACKLOG).set(s.backlog as f64);
    let totals = [
        ("recorded", s.recorded),
        ("print_ready", s.print_ready),
        ("printed", s.printed),
        ("duplicates", s.duplicates),
        ("rejected", s.rejected),
        ("print_failed", s.print_failed),
        ("spoiled", s.spoiled),
    ];
    for (kind, value) in totals {
        gauge!(TOTALS, "kind" => kind).set(value as f64);
    }
}
