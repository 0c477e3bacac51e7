//! Serving a node: the router every node starts from (health tied to
//! readiness, reflection, the tower stack), and the stop sequence — stop
//! accepting, drain in-flight requests within a bound, then resign so the
//! backup takes over at once.

use crate::stack::{NodeLayers, ServerSetup, server_builder};
use crate::startup::StartError;
use ektp_election::ElectionHandle;
use std::future::Future;
use std::time::Duration;
use tokio::net::TcpListener;
use tonic::transport::server::{Router, TcpIncoming};
use tracing::{info, warn};

/// A router behind ektp's tower stack.
pub type NodeRouter = Router<NodeLayers>;

/// The router with `grpc.health.v1` (SERVING while the node can take over;
/// `services` are reported too) and reflection v1 and v1alpha.
pub fn base_router(
    setup: &ServerSetup,
    election: &ElectionHandle,
    services: &[&str],
) -> Result<NodeRouter, StartError> {
    let (reporter, health) = tonic_health::server::health_reporter();
    crate::health::spawn_readiness(
        reporter,
        election,
        services.iter().map(|s| (*s).to_owned()).collect(),
    );
    let (reflection_v1, reflection_v1alpha) = crate::reflection::reflection_services()?;
    Ok(server_builder(setup)?
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha))
}

/// Serves `router` on `listener` until `shutdown`; then runs `on_stop`, stops
/// accepting, waits (at most `drain`) for requests under way, resigns from the
/// election, and gives open connections the rest of `drain` to close.
pub async fn serve(
    router: NodeRouter,
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    on_stop: impl FnOnce(),
    drain: Duration,
    election: &ElectionHandle,
) -> Result<(), StartError> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    // Replies are small and latency-bound: no Nagle delay on accepted sockets.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let server = router.serve_with_incoming_shutdown(incoming, async {
        let _ = stop_rx.await;
    });
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(StartError::from),
        () = shutdown => {}
    }
    info!("stopping: draining in-flight requests");
    on_stop();
    let _ = stop_tx.send(());
    // Resign as soon as the requests under way are answered — not when every
    // client connection has closed — so the backup takes over in milliseconds.
    let deadline = tokio::time::Instant::now() + drain;
    while crate::grpc_metrics::in_flight() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    election.resign().await;
    info!("resigned");
    if tokio::time::timeout_at(deadline, &mut server)
        .await
        .is_err()
    {
        warn!("connections still open at the drain deadline; stopping anyway");
    }
    Ok(())
}
