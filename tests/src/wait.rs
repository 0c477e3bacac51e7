//! Waiting for a condition by polling it until a deadline — never a bare sleep.

use crate::Result;
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it yields `Some`, failing with `what` after `timeout`.
pub async fn until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Ok(value);
        }
        if Instant::now() >= deadline {
            return Err(format!("timed out after {timeout:?} waiting for {what}").into());
        }
        tokio::time::sleep(POLL).await;
    }
}
