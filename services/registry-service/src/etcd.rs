//! Small typed helpers over the etcd client: protobuf values, bounded waits.

use crate::error::{RegistryError, Result};
use etcd_client::{Client, GetOptions, KeyValue, Txn, TxnOp, TxnOpResponse};
use prost::Message;
use std::future::Future;
use std::time::Duration;

/// Longest a single etcd request may take before the caller gets UNAVAILABLE.
pub const ETCD_TIMEOUT: Duration = Duration::from_secs(3);

/// Runs an etcd call with [`ETCD_TIMEOUT`], timed as `op`.
pub async fn bounded<T, E: Into<RegistryError>>(
    op: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T> {
    match tokio::time::timeout(ETCD_TIMEOUT, ektp_election::timed_etcd(op, call)).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => Err(RegistryError::Unavailable("etcd request timed out".into())),
    }
}

/// A decoded value and the revision it was last modified at.
pub struct Versioned<M> {
    pub value: M,
    pub mod_revision: i64,
}

/// Decodes one key-value.
pub fn decode<M: Message + Default>(kv: &KeyValue) -> Result<Versioned<M>> {
    Ok(Versioned {
        value: M::decode(kv.value())?,
        mod_revision: kv.mod_revision(),
    })
}

/// Reads and decodes one key (linearizable).
pub async fn get<M: Message + Default>(client: &Client, key: &str) -> Result<Option<Versioned<M>>> {
    let mut client = client.clone();
    let response = bounded("get", client.get(key, None)).await?;
    response.kvs().first().map(decode).transpose()
}

/// Reads several keys at one revision (one linearizable read-only
/// transaction); the answer is in the order of `keys`.
pub async fn get_many(client: &Client, keys: &[String]) -> Result<Vec<Option<KeyValue>>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut client = client.clone();
    let reads = keys
        .iter()
        .map(|k| TxnOp::get(k.as_str(), None))
        .collect::<Vec<_>>();
    let response = bounded("get", client.txn(Txn::new().and_then(reads))).await?;
    let mut found = Vec::with_capacity(keys.len());
    for op in response.op_responses() {
        match op {
            TxnOpResponse::Get(mut get) => found.push(get.take_kvs().into_iter().next()),
            _ => return Err(RegistryError::Internal("a read returned no range".into())),
        }
    }
    if found.len() != keys.len() {
        return Err(RegistryError::Internal(
            "a read returned too few ranges".into(),
        ));
    }
    Ok(found)
}

/// Reads up to `limit` key-values in `[from, end)`, in key order.
pub async fn range(client: &Client, from: &str, end: Vec<u8>, limit: i64) -> Result<Vec<KeyValue>> {
    let mut client = client.clone();
    let options = GetOptions::new().with_range(end).with_limit(limit);
    let mut response = bounded("range", client.get(from, Some(options))).await?;
    Ok(response.take_kvs())
}

/// Counts the keys in `[from, end)`.
pub async fn count(client: &Client, from: &str, end: Vec<u8>) -> Result<u64> {
    let mut client = client.clone();
    let options = GetOptions::new().with_range(end).with_count_only();
    let response = bounded("count", client.get(from, Some(options))).await?;
    Ok(u64::try_from(response.count()).unwrap_or(0))
}

/// A put of a protobuf value.
pub fn put(key: &str, value: &impl Message) -> TxnOp {
    TxnOp::put(key, value.encode_to_vec(), None)
}
