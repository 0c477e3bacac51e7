//! `grpc.health.v1`: a node is SERVING while it is connected to etcd and able
//! to take over (it holds a live lease) — never "while it leads", so that a
//! load balancer keeps both replicas in rotation.

use ektp_election::ElectionHandle;
use std::sync::atomic::{AtomicBool, Ordering};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

static READY: AtomicBool = AtomicBool::new(false);

/// Whether the node is ready (what `/readyz` answers).
pub fn is_ready() -> bool {
    READY.load(Ordering::Relaxed)
}

/// Keeps the overall health status and each named service's status in step
/// with the election's readiness, until the election task ends.
pub fn spawn_readiness(reporter: HealthReporter, election: &ElectionHandle, services: Vec<String>) {
    let mut role = election.subscribe();
    tokio::spawn(async move {
        loop {
            let ready = role.borrow_and_update().is_ready();
            READY.store(ready, Ordering::Relaxed);
            let status = if ready {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            reporter.set_service_status("", status).await;
            for name in &services {
                reporter.set_service_status(name, status).await;
            }
            if role.changed().await.is_err() {
                READY.store(false, Ordering::Relaxed);
                reporter
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
                return;
            }
        }
    });
}
