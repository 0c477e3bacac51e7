//! Leadership metrics, labelled by service.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use std::future::Future;
use std::time::Instant;

pub(crate) const IS_LEADER: &str = "ektp_leader_is_leader";
pub(crate) const EPOCH: &str = "ektp_leader_epoch";
pub(crate) const TRANSITIONS: &str = "ektp_leader_transitions_total";
pub(crate) const LAST_TRANSITION: &str = "ektp_leader_last_transition_timestamp_seconds";
pub(crate) const KEEPALIVE_FAILURES: &str = "ektp_etcd_keepalive_failures_total";
const ETCD_DURATION: &str = "ektp_etcd_request_duration_seconds";

/// Describes the election metrics to the installed recorder.
pub fn describe() {
    describe_gauge!(IS_LEADER, "1 while this replica leads its service, else 0.");
    describe_gauge!(
        EPOCH,
        "Epoch (leader key create revision) this replica leads at; 0 when following."
    );
    describe_counter!(TRANSITIONS, "Times this replica gained or lost leadership.");
    describe_gauge!(
        LAST_TRANSITION,
        "Unix time of this replica's last leadership change."
    );
    describe_counter!(
        KEEPALIVE_FAILURES,
        "Lease keep-alives that failed or reported the lease lost."
    );
    describe_histogram!(
        ETCD_DURATION,
        metrics::Unit::Seconds,
        "etcd request latency by operation (get, range, count, txn, lease)."
    );
}

/// Exports a follower's gauges before any transition, so every replica has them.
pub(crate) fn start(service: &'static str) {
    gauge!(IS_LEADER, "service" => service).set(0.0);
    gauge!(EPOCH, "service" => service).set(0.0);
    counter!(TRANSITIONS, "service" => service).increment(0);
    counter!(KEEPALIVE_FAILURES, "service" => service).increment(0);
}

pub(crate) fn record_role(service: &'static str, leader: bool, epoch: u64) {
    gauge!(IS_LEADER, "service" => service).set(if leader { 1.0 } else { 0.0 });
    gauge!(EPOCH, "service" => service).set(epoch as f64);
    counter!(TRANSITIONS, "service" => service).increment(1);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    gauge!(LAST_TRANSITION, "service" => service).set(now);
}

pub(crate) fn keepalive_failed(service: &'static str) {
    counter!(KEEPALIVE_FAILURES, "service" => service).increment(1);
}

/// Runs one etcd request, recording its latency under `op` (a fixed name:
/// get, range, count, txn, lease).
pub async fn timed<T>(op: &'static str, request: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let result = request.await;
    histogram!(ETCD_DURATION, "op" => op).record(started.elapsed().as_secs_f64());
    result
}
