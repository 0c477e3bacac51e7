//! gRPC server metrics with the go-grpc-prometheus names, from one tower
//! layer shared by every ektp server: `grpc_server_started_total`,
//! `grpc_server_handled_total{grpc_code}` and `grpc_server_handling_seconds`.
//! The code is read from the response headers (errors are trailers-only
//! responses there); a response without one counts as OK. Handling time runs
//! to the response headers, which for unary calls is the whole call.

use metrics::{counter, describe_counter, describe_histogram, histogram};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;
use tower::Layer;

const STARTED: &str = "grpc_server_started_total";
const HANDLED: &str = "grpc_server_handled_total";
const HANDLING: &str = "grpc_server_handling_seconds";

/// Requests being handled right now, across every server of the process.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How many requests are being handled right now.
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

/// Counts one request in flight until dropped (also when cancelled).
struct InFlight;

impl InFlight {
    fn start() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Describes the gRPC server metrics.
pub fn describe() {
    describe_counter!(STARTED, "RPCs started on the server.");
    describe_counter!(HANDLED, "RPCs completed on the server, by status code.");
    describe_histogram!(
        HANDLING,
        metrics::Unit::Seconds,
        "Time to handle an RPC, to its response headers."
    );
}

/// Counts and times every RPC.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcMetricsLayer;

impl<S> Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetrics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetrics { inner }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around.
#[derive(Clone, Debug)]
pub struct GrpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for GrpcMetrics<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let kind = grpc_type(&method);
        counter!(STARTED, "grpc_type" => kind, "grpc_service" => service.clone(), "grpc_method" => method.clone())
            .increment(1);
        let started = Instant::now();
        let guard = InFlight::start();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            drop(guard);
            let code = match &result {
                Ok(response) => code_name(response.headers()),
                Err(_) => "Unavailable",
            };
            counter!(HANDLED, "grpc_type" => kind, "grpc_service" => service.clone(), "grpc_method" => method.clone(), "grpc_code" => code)
                .increment(1);
            histogram!(HANDLING, "grpc_type" => kind, "grpc_service" => service, "grpc_method" => method)
                .record(started.elapsed().as_secs_f64());
            result
        })
    }
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`); labels stay bounded
/// because only registered services answer anything but UNIMPLEMENTED.
fn split_path(path: &str) -> (String, String) {
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    let service = parts.next().unwrap_or_default();
    let method = parts.next().unwrap_or_default();
    if service.is_empty() || method.is_empty() || service.len() > 100 || method.len() > 100 {
        return ("unknown".into(), "unknown".into());
    }
    (service.to_owned(), method.to_owned())
}

fn grpc_type(method: &str) -> &'static str {
    match method {
        "VerifyResidents" | "ServerReflectionInfo" => "bidi_stream",
        "WatchEvents" | "Watch" => "server_stream",
        _ => "unary",
    }
}

/// The go-grpc-prometheus name of the response's status code.
fn code_name(headers: &http::HeaderMap) -> &'static str {
    let code = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or(0);
    const NAMES: [&str; 17] = [
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    ];
    usize::try_from(code)
        .ok()
        .and_then(|i| NAMES.get(i))
        .copied()
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        assert_eq!(
            split_path("/ektp.v1.Registry/RecordResident"),
            ("ektp.v1.Registry".into(), "RecordResident".into())
        );
        assert_eq!(split_path("/"), ("unknown".into(), "unknown".into()));
    }

    #[test]
    fn status_codes_get_their_go_names() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(code_name(&headers), "OK");
        headers.insert("grpc-status", http::HeaderValue::from_static("3"));
        assert_eq!(code_name(&headers), "InvalidArgument");
        headers.insert("grpc-status", http::HeaderValue::from_static("14"));
        assert_eq!(code_name(&headers), "Unavailable");
    }
}
