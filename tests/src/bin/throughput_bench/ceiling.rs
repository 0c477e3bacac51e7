//! The storage ceiling of RecordResident: etcd alone, given the writes of
//! recorded residents grouped as the registry writer groups them, with no
//! service in between. Each record is its resident, its sealed print
//! material, its idempotency record and its event — values of the sizes the
//! registry writes for `record_request(i)`, new keys guarded by
//! `create_revision == 0` compares — and each transaction carries up to
//! [`BATCH`] records plus one counter put. Whatever a registry on this
//! storage layout does, its records per second stay below this.

use ektp_tests::residents::record_request;
use etcd_client::{Client, Compare, CompareOp, Txn, TxnOp};
use prost::Message;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

type Result<T> = ektp_tests::Result<T>;

/// Records per transaction: the registry writer's cap.
pub const BATCH: u32 = 29;
/// Bytes sealing adds to print material (key id, nonce, tag, framing).
const SEAL_OVERHEAD: usize = 48;
/// Bytes of a stored idempotency record and of an outbox event (both carry
/// a NIK, a digest or kind, and a timestamp).
const REQUEST_RECORD: usize = 48;
const EVENT: usize = 64;

/// One record's puts, sized as the registry's.
fn record_ops(run: &str, i: u32) -> (Vec<Compare>, Vec<TxnOp>) {
    let request = record_request(i);
    let resident = request.resident.map_or(0, |r| r.encoded_len()) + 32;
    let material = request.material.map_or(0, |m| m.encoded_len()) + SEAL_OVERHEAD;
    let keys = ["residents", "material", "requests", "events"]
        .map(|kind| format!("/bench/ceiling/{run}/{kind}/{i:010}"));
    let sizes = [resident, material, REQUEST_RECORD, EVENT];
    let compares = vec![
        Compare::create_revision(keys[0].as_str(), CompareOp::Equal, 0),
        Compare::create_revision(keys[2].as_str(), CompareOp::Equal, 0),
    ];
    let ops = keys
        .iter()
        .zip(sizes)
        .map(|(key, size)| TxnOp::put(key.as_str(), vec![0x5a_u8; size], None))
        .collect();
    (compares, ops)
}

/// Records per second etcd commits when given `records` in transactions of
/// [`BATCH`], `in_flight` transactions at a time.
pub async fn records_per_second(
    etcd: &Client,
    run: &str,
    records: u32,
    in_flight: usize,
) -> Result<f64> {
    let mut transactions = Vec::new();
    for first in (0..records).step_by(BATCH as usize) {
        let mut compares = Vec::new();
        let mut ops = Vec::new();
        for i in first..(first + BATCH).min(records) {
            let (c, o) = record_ops(run, i);
            compares.extend(c);
            ops.extend(o);
        }
        ops.push(TxnOp::put(
            format!("/bench/ceiling/{run}/count"),
            first.to_be_bytes().to_vec(),
            None,
        ));
        transactions.push(Txn::new().when(compares).and_then(ops));
    }
    let permits = Arc::new(Semaphore::new(in_flight));
    let started = Instant::now();
    let mut commits = Vec::new();
    for txn in transactions {
        let permit = permits.clone().acquire_owned().await?;
        let mut etcd = etcd.clone();
        commits.push(tokio::spawn(async move {
            let response = etcd.txn(txn).await;
            drop(permit);
            response
        }));
    }
    for commit in commits {
        if !commit.await??.succeeded() {
            return Err("a ceiling transaction's compares failed".into());
        }
    }
    Ok(f64::from(records) / started.elapsed().as_secs_f64())
}
