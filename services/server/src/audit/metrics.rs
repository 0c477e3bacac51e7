//! The audit trail's metrics, declared and described in one place.

use metrics::{counter, describe_counter, describe_histogram, histogram};

/// Audit entries committed.
pub const ENTRIES: &str = "ektp_audit_entries_total";
/// Entries per committed batch (group commit size).
pub const BATCH_SIZE: &str = "ektp_audit_batch_size";
/// Batches that could not be committed (their callers answered UNAVAILABLE).
pub const WRITE_FAILURES: &str = "ektp_audit_write_failures_total";

/// Buckets of [`BATCH_SIZE`]: entries, up to past the largest batch.
pub const BATCH_SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 8192.0,
];

/// Describes the audit metrics.
pub fn describe() {
    describe_counter!(ENTRIES, "Audit entries committed to etcd by this replica.");
    describe_histogram!(
        BATCH_SIZE,
        "Audit entries per group commit (one etcd write)."
    );
    describe_counter!(
        WRITE_FAILURES,
        "Audit batches that failed to commit; their calls were answered UNAVAILABLE."
    );
    // Exported from the start, so rate() and increase() see the first failure.
    counter!(WRITE_FAILURES).absolute(0);
}

/// A batch of `entries` was committed.
pub fn committed(entries: usize) {
    counter!(ENTRIES).increment(entries as u64);
    histogram!(BATCH_SIZE).record(entries as f64);
}

/// A batch failed to commit.
pub fn failed() {
    counter!(WRITE_FAILURES).increment(1);
}
