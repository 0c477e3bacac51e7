//! One tower service for every check a request must pass before the server
//! behind it runs: authentication, rate limits, load shedding. A [`Gate`]
//! admits a request (and may hold something while it runs, such as a
//! concurrency permit) or refuses it with a status, answered at once.

use crate::stack::BoxFuture;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::codegen::http;
use tower::Layer;

/// A check every request passes.
pub trait Gate: Clone + Send + Sync + 'static {
    /// Held while an admitted request runs; dropped when it is answered.
    type Pass: Send + 'static;

    /// Admits `request` (possibly adding to its extensions) or refuses it.
    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<Self::Pass, Status>;
}

/// A layer putting gate `G` in front of a service.
#[derive(Clone, Debug)]
pub struct GateLayer<G> {
    gate: G,
}

impl<G> GateLayer<G> {
    /// A layer checking requests with `gate`.
    pub fn new(gate: G) -> Self {
        Self { gate }
    }
}

impl<S, G: Clone> Layer<S> for GateLayer<G> {
    type Service = Gated<S, G>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            inner,
            gate: self.gate.clone(),
        }
    }
}

/// A service behind a gate.
#[derive(Clone, Debug)]
pub struct Gated<S, G> {
    inner: S,
    gate: G,
}

impl<S, G, B> tower::Service<http::Request<B>> for Gated<S, G>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    G: Gate,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.gate.admit(&mut request) {
            Ok(pass) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let result = response.await;
                    drop(pass);
                    result
                })
            }
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
        }
    }
}
