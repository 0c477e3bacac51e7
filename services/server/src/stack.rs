//! The tower stack every ektp gRPC server runs behind, built in one place.

use crate::NodeArgs;
use crate::auth::{AuthGate, Policy};
use crate::gate::GateLayer;
use crate::grpc_metrics::GrpcMetricsLayer;
use crate::limits::{LimitArgs, LoadShedGate, RateLimitGate};
use crate::startup::StartError;
use crate::tls::Tls;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::Server;
use tower::Layer;
use tower::layer::util::{Identity, Stack};

/// The layers every ektp server runs behind, outermost first.
pub type NodeLayers = Stack<
    GateLayer<LoadShedGate>,
    Stack<
        GateLayer<RateLimitGate>,
        Stack<GateLayer<AuthGate>, Stack<DeadlineLayer, Stack<GrpcMetricsLayer, Identity>>>,
    >,
>;

/// Everything a node's gRPC server is built from, loaded once at startup.
#[derive(Clone, Debug)]
pub struct ServerSetup {
    /// Server-side deadline of one request.
    pub request_timeout: Duration,
    /// TLS of the listener and of calls to peers.
    pub tls: Tls,
    /// Who may call what.
    pub policy: Arc<Policy>,
    /// Concurrency, rate and size limits.
    pub limits: LimitArgs,
}

impl ServerSetup {
    /// Reads certificates and the access policy that `node` names.
    pub fn load(node: &NodeArgs) -> Result<Self, StartError> {
        let policy = Policy::load(&node.auth)?;
        if !policy.enabled {
            tracing::warn!(
                "authentication is off: every caller holds every role (development only)"
            );
        }
        Ok(Self {
            request_timeout: node.request_timeout(),
            tls: Tls::load(&node.tls)?,
            policy: Arc::new(policy),
            limits: node.limits.clone(),
        })
    }
}

/// The server builder with ektp's layers, outermost first:
/// - TLS (when configured) and HTTP/2 keep-alive pings, so half-open
///   connections from crashed peers are dropped; a maximum connection age so
///   clients rebalance; a cap on streams per connection;
/// - [`GrpcMetricsLayer`]: counts and times every call, outside everything
///   else so that refusals and deadline answers are counted too;
/// - [`DeadlineLayer`]: every request ends within the server's deadline (or
///   the client's `grpc-timeout`, when shorter) and answers DEADLINE_EXCEEDED
///   — tonic's own `timeout()` would answer CANCELLED;
/// - [`AuthGate`]: who is calling and whether its roles allow the method,
///   before anything is spent on the request;
/// - [`RateLimitGate`]: per-caller rate, after auth because it needs the
///   caller, before the concurrency limit so one caller cannot take it all;
/// - [`LoadShedGate`]: a global concurrency limit answering
///   RESOURCE_EXHAUSTED at once, with capacity kept for print nodes.
pub fn server_builder(setup: &ServerSetup) -> Result<Server<NodeLayers>, StartError> {
    let mut server = Server::builder();
    if let Some(tls) = &setup.tls.server {
        server = server.tls_config(tls.clone())?;
    }
    if let Some(age) = setup.limits.max_connection_age() {
        server = server
            .max_connection_age(age)
            .max_connection_age_grace(Duration::from_secs(30));
    }
    Ok(server
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .max_concurrent_streams(Some(1024))
        .tcp_nodelay(true)
        .layer(GrpcMetricsLayer)
        .layer(DeadlineLayer::new(setup.request_timeout))
        .layer(GateLayer::new(AuthGate::new(setup.policy.clone())))
        .layer(GateLayer::new(RateLimitGate::new(
            setup.limits.rate_limit_per_caller,
        )))
        .layer(GateLayer::new(LoadShedGate::new(
            setup.limits.max_concurrent_requests,
            setup.limits.reserved_print_requests,
        ))))
}

/// Ends requests that run past a deadline with DEADLINE_EXCEEDED.
#[derive(Clone, Copy, Debug)]
pub struct DeadlineLayer {
    limit: Duration,
}

impl DeadlineLayer {
    /// A layer with `limit` as the server-side deadline.
    pub fn new(limit: Duration) -> Self {
        Self { limit }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Deadline {
            inner,
            limit: self.limit,
        }
    }
}

/// The service [`DeadlineLayer`] wraps around.
#[derive(Clone, Debug)]
pub struct Deadline<S> {
    inner: S,
    limit: Duration,
}

pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody> tower::Service<http::Request<ReqBody>> for Deadline<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let limit =
            client_timeout(request.headers()).map_or(self.limit, |client| client.min(self.limit));
        let response = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(limit, response).await {
                Ok(result) => result,
                Err(_) => Ok(Status::deadline_exceeded(format!(
                    "request exceeded its {} ms deadline",
                    limit.as_millis()
                ))
                .into_http()),
            }
        })
    }
}

/// Parses the `grpc-timeout` header: up to 8 digits and a unit (H M S m u n).
fn client_timeout(headers: &http::HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn grpc_timeout_header_units_are_understood() {
        let mut headers = http::HeaderMap::new();
        headers.insert("grpc-timeout", "250m".parse().unwrap());
        assert_eq!(client_timeout(&headers), Some(Duration::from_millis(250)));
        headers.insert("grpc-timeout", "3S".parse().unwrap());
        assert_eq!(client_timeout(&headers), Some(Duration::from_secs(3)));
        headers.insert("grpc-timeout", "x".parse().unwrap());
        assert_eq!(client_timeout(&headers), None);
    }
}
