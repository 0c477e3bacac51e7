//! The tower stack every ektp gRPC server runs behind, built in one place.

use crate::grpc_metrics::GrpcMetricsLayer;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::codegen::http;
use tonic::transport::Server;
use tower::Layer;
use tower::layer::util::{Identity, Stack};

/// The layers every ektp server runs behind, outermost first.
pub type NodeLayers = Stack<DeadlineLayer, Stack<GrpcMetricsLayer, Identity>>;

/// The server builder with ektp's layers, outermost first:
/// - HTTP/2 keep-alive pings, so half-open connections from crashed peers are
///   noticed and dropped instead of pinning resources;
/// - [`GrpcMetricsLayer`]: counts and times every call, outside the deadline
///   so that deadline answers are counted too;
/// - [`DeadlineLayer`]: every request ends within the server's deadline (or
///   the client's `grpc-timeout`, when shorter) and answers DEADLINE_EXCEEDED
///   — tonic's own `timeout()` would answer CANCELLED.
pub fn server_builder(request_timeout: Duration) -> Server<NodeLayers> {
    Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(10)))
        .http2_keepalive_timeout(Some(Duration::from_secs(5)))
        .tcp_nodelay(true)
        .layer(GrpcMetricsLayer)
        .layer(DeadlineLayer::new(request_timeout))
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

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

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
