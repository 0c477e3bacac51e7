//! Audit retention: the leader deletes batches committed longer ago than the
//! retention, a bounded page of keys per etcd delete. Batch names start with
//! their commit time, so "older than the cutoff" is one key range and no
//! value needs reading. Deleting is idempotent: both services' leaders sweep
//! the same prefix without harm (the shorter retention wins).

use super::layout;
use etcd_client::{Client, DeleteOptions, GetOptions};
use std::time::{Duration, SystemTime};

/// Keys deleted per etcd request.
const PAGE: i64 = 1_000;
/// Most pages one sweep deletes; the rest waits for the next sweep.
const MAX_PAGES: usize = 100;
/// Longest an etcd request may take.
const ETCD_TIMEOUT: Duration = Duration::from_secs(3);

/// Deletes the batches under `prefix` committed before `now - retention`;
/// how many were deleted.
pub async fn sweep(
    client: &Client,
    prefix: &str,
    retention: Duration,
    now: SystemTime,
) -> Result<i64, etcd_client::Error> {
    let Some(cutoff) = now.checked_sub(retention) else {
        return Ok(0);
    };
    let end = format!("{prefix}{}", layout::time_bound(layout::unix_nanos(cutoff)));
    let mut client = client.clone();
    let mut deleted = 0;
    for _ in 0..MAX_PAGES {
        let options = GetOptions::new()
            .with_range(end.as_str())
            .with_keys_only()
            .with_limit(PAGE);
        let read = tokio::time::timeout(ETCD_TIMEOUT, client.get(prefix, Some(options))).await;
        let Ok(page) = read else {
            return Ok(deleted);
        };
        let page = page?;
        let (Some(first), Some(last)) = (page.kvs().first(), page.kvs().last()) else {
            return Ok(deleted);
        };
        let mut past_last = last.key().to_vec();
        past_last.push(0);
        let options = DeleteOptions::new().with_range(past_last);
        let delete = client.delete(first.key(), Some(options));
        match tokio::time::timeout(ETCD_TIMEOUT, delete).await {
            Ok(response) => deleted += response?.deleted(),
            Err(_) => return Ok(deleted),
        }
        if !page.more() {
            break;
        }
    }
    Ok(deleted)
}
