//! Limits that keep a node serving under abuse: load shedding at a global
//! concurrency limit (with capacity reserved for print nodes, so a flood from
//! outside cannot stop printing) and per-caller rate limits. Both answer
//! RESOURCE_EXHAUSTED at once instead of queueing.

use crate::auth::{Caller, Role};
use crate::gate::Gate;
use clap::Args;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::codegen::http;

/// Calls shed, by reason.
const SHED: &str = "ektp_requests_shed_total";

/// Describes the limits' and the auth gate's metrics, exported at 0 from
/// the start so that alerts see the first refusal.
pub fn describe() {
    metrics::describe_counter!(
        SHED,
        "Calls answered RESOURCE_EXHAUSTED, by reason (concurrency, rate_limit)."
    );
    metrics::describe_counter!(
        crate::auth::REFUSED,
        "Calls refused by authentication or the role table, by code (unauthenticated, permission_denied)."
    );
    for reason in ["concurrency", "rate_limit"] {
        metrics::counter!(SHED, "reason" => reason).absolute(0);
    }
    for code in ["unauthenticated", "permission_denied"] {
        metrics::counter!(crate::auth::REFUSED, "code" => code).absolute(0);
    }
}

/// Limit settings.
#[derive(Args, Clone, Debug)]
pub struct LimitArgs {
    /// Requests handled at once by this node; beyond it, callers get
    /// RESOURCE_EXHAUSTED at once.
    #[arg(long, env = "EKTP_MAX_CONCURRENT_REQUESTS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_requests: u32,
    /// Further requests only print nodes may use, so that a flood from other
    /// callers cannot stop printing.
    #[arg(long, env = "EKTP_RESERVED_PRINT_REQUESTS", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub reserved_print_requests: u32,
    /// Requests per second one authenticated caller may make to this node
    /// (bursts up to one second's worth); 0 turns the limit off.
    #[arg(long, env = "EKTP_RATE_LIMIT_PER_CALLER", default_value_t = 2_000)]
    pub rate_limit_per_caller: u32,
    /// Largest request or response message, in bytes.
    #[arg(long, env = "EKTP_MAX_MESSAGE_BYTES", default_value_t = 8 * 1024 * 1024, value_parser = clap::value_parser!(u32).range(4096..=64 * 1024 * 1024))]
    pub max_message_bytes: u32,
    /// Connections are closed gracefully after this many seconds, so that
    /// clients rebalance across replicas; 0 keeps them open.
    #[arg(long, env = "EKTP_MAX_CONNECTION_AGE_SECS", default_value_t = 600)]
    pub max_connection_age_secs: u64,
}

impl LimitArgs {
    /// The maximum connection age, if any.
    pub fn max_connection_age(&self) -> Option<Duration> {
        (self.max_connection_age_secs > 0)
            .then(|| Duration::from_secs(self.max_connection_age_secs))
    }

    /// The largest message, in bytes.
    pub fn max_message_bytes(&self) -> usize {
        usize::try_from(self.max_message_bytes).unwrap_or(usize::MAX)
    }
}

/// Sheds load beyond the concurrency limit.
#[derive(Clone, Debug)]
pub struct LoadShedGate {
    general: Arc<Semaphore>,
    print: Arc<Semaphore>,
}

impl LoadShedGate {
    /// `general` requests at once from anyone, `reserved_print` more for print nodes.
    pub fn new(general: u32, reserved_print: u32) -> Self {
        Self {
            general: Arc::new(Semaphore::new(general as usize)),
            print: Arc::new(Semaphore::new(reserved_print as usize)),
        }
    }

    fn permit(&self, caller: Option<&Caller>) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.general.clone().try_acquire_owned() {
            return Some(permit);
        }
        let print_node = caller.is_some_and(|c| c.role == Role::PrintNode);
        if print_node {
            return self.print.clone().try_acquire_owned().ok();
        }
        None
    }
}

impl Gate for LoadShedGate {
    /// The concurrency permit, held until the request is answered (`None`
    /// for health checks, which are never shed: a busy node is still alive).
    type Pass = Option<OwnedSemaphorePermit>;

    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<Self::Pass, Status> {
        if request.uri().path().starts_with("/grpc.health.v1.") {
            return Ok(None);
        }
        match self.permit(request.extensions().get::<Caller>()) {
            Some(permit) => Ok(Some(permit)),
            None => {
                metrics::counter!(SHED, "reason" => "concurrency").increment(1);
                Err(Status::resource_exhausted(
                    "server is at its concurrency limit; retry with backoff",
                ))
            }
        }
    }
}

/// Limits each authenticated caller to a request rate (token bucket).
#[derive(Clone, Debug)]
pub struct RateLimitGate {
    per_second: u32,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

/// Callers remembered at most; idle buckets beyond it are forgotten (full).
const MAX_TRACKED_CALLERS: usize = 10_000;

impl RateLimitGate {
    /// `per_second` requests per caller; 0 turns the limit off.
    pub fn new(per_second: u32) -> Self {
        Self {
            per_second,
            buckets: Arc::default(),
        }
    }

    /// Takes one token from `identity`'s bucket.
    fn admit_one(&self, identity: &str, now: Instant) -> bool {
        let rate = f64::from(self.per_second);
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        if buckets.len() >= MAX_TRACKED_CALLERS && !buckets.contains_key(identity) {
            buckets.retain(|_, b| now.duration_since(b.refilled) < Duration::from_secs(1));
        }
        let bucket = buckets.entry(identity.to_owned()).or_insert(Bucket {
            tokens: rate,
            refilled: now,
        });
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(rate);
        bucket.refilled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Gate for RateLimitGate {
    type Pass = ();

    fn admit<B>(&self, request: &mut http::Request<B>) -> Result<(), Status> {
        // Anonymous (authentication off) and print nodes are not limited:
        // the former share one identity, the latter must keep printing.
        let limited = self.per_second > 0
            && request
                .extensions()
                .get::<Caller>()
                .filter(|c| c.authenticated && c.role != Role::PrintNode)
                .is_some_and(|c| !self.admit_one(&c.identity, Instant::now()));
        if limited {
            metrics::counter!(SHED, "reason" => "rate_limit").increment(1);
            return Err(Status::resource_exhausted(
                "caller is over its request rate limit; retry with backoff",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_gets_its_rate_then_is_refused_until_tokens_refill() {
        let limits = RateLimitGate::new(10);
        let start = Instant::now();
        let admitted = (0..20).filter(|_| limits.admit_one("a", start)).count();
        assert_eq!(admitted, 10);
        assert!(
            limits.admit_one("b", start),
            "callers have separate buckets"
        );
        assert!(limits.admit_one("a", start + Duration::from_millis(150)));
    }

    #[test]
    fn print_nodes_get_reserved_capacity_beyond_the_general_limit() {
        let shed = LoadShedGate::new(1, 1);
        let verifier = Caller {
            identity: "v".into(),
            role: Role::Verifier,
            authenticated: true,
        };
        let printer = Caller {
            role: Role::PrintNode,
            ..verifier.clone()
        };
        let held = shed.permit(Some(&verifier));
        assert!(held.is_some());
        assert!(shed.permit(Some(&verifier)).is_none());
        assert!(shed.permit(Some(&printer)).is_some());
    }
}
