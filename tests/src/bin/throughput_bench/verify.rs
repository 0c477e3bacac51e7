//! Verification at voter-list scale: seeds residents straight into etcd in
//! the registry's storage format (`residents/{nik}` → `ektp.v1.Resident`,
//! transactions of 128 puts, many in flight — recording a million through
//! the API would take hours), restarts the registry replicas so each loads
//! its index from etcd, then drives `VerifyResidents` streams against them.

use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::{
    Address, FieldMatch, Resident, VerifyResidentRequest, VerifyResidentResponse,
};
use ektp_tests::cluster::{Cluster, Service};
use ektp_tests::probe::{sample, scrape};
use ektp_tests::residents::resident;
use ektp_tests::wait::until;
use etcd_client::{Txn, TxnOp};
use prost::Message;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

type Result<T> = ektp_tests::Result<T>;

/// Distinct NIKs `residents::resident` yields before repeating.
const DISTINCT: u32 = 99 * 9_999;
/// Puts per seeding transaction (etcd's default limit is 128 operations).
const TXN_OPS: u32 = 128;
/// Seeding transactions in flight.
const SEED_IN_FLIGHT: u32 = 32;
/// Distinct claims the streams cycle through.
const CLAIM_POOL: u32 = 20_000;
/// Claims a stream has sent and not had answered (as a client keeping a
/// window would; without one, latency only measures HTTP/2 buffering).
const CLIENT_WINDOW: usize = 2_048;

/// Seeded resident `i`: `resident(i)` moved to regency 28 and up, so its NIK
/// is unique up to 99 × 989,901 residents and never one the record phase used.
pub fn seeded(i: u32) -> Resident {
    let mut r = resident(i % DISTINCT);
    let regency = 28 + i / DISTINCT;
    r.nik = format!("{}{regency:02}{}", &r.nik[..2], &r.nik[4..]);
    r
}

/// Writes residents `0..n` under the office's prefix; returns residents/s.
pub async fn seed(cluster: &Cluster, n: u32) -> Result<f64> {
    let etcd = cluster.etcd.client().await?;
    let prefix = format!("/ektp/{}/residents/", cluster.office);
    let txns = n.div_ceil(TXN_OPS);
    let (rate, _) = super::drive(txns, SEED_IN_FLIGHT, move |t| {
        let (mut etcd, prefix) = (etcd.clone(), prefix.clone());
        async move {
            let ops: Vec<TxnOp> = (t * TXN_OPS..((t + 1) * TXN_OPS).min(n))
                .map(|i| {
                    let r = seeded(i);
                    TxnOp::put(format!("{prefix}{}", r.nik), r.encode_to_vec(), None)
                })
                .collect();
            etcd.txn(Txn::new().and_then(ops)).await?;
            Ok(())
        }
    })
    .await?;
    Ok(rate * f64::from(TXN_OPS))
}

/// Restarts every registry replica (followers first) and waits until each
/// has loaded its index of `n` or more residents; the slowest load time.
pub async fn restart_registries(cluster: &mut Cluster, n: u32) -> Result<Duration> {
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(30))
        .await?;
    let mut order: Vec<usize> = (0..cluster.registry.len())
        .filter(|i| *i != leader)
        .collect();
    order.push(leader);
    let mut slowest = Duration::ZERO;
    for i in order {
        let started = Instant::now();
        cluster.registry[i].proc.restart()?;
        let port = cluster.registry[i].metrics_port;
        until(
            "the verification index to load",
            Duration::from_secs(600),
            || async move {
                let text = scrape(port).await.ok()?;
                let ready = sample(&text, "ektp_verify_index_ready")? == 1.0;
                (ready && sample(&text, "ektp_verify_index_residents")? >= f64::from(n))
                    .then_some(())
            },
        )
        .await?;
        slowest = slowest.max(started.elapsed());
    }
    cluster
        .wait_leader(Service::Registry, Duration::from_secs(30))
        .await?;
    Ok(slowest)
}

/// What the streams measured.
pub struct Verified {
    pub per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub wrong: u64,
}

/// What a claim (by pool index) should be answered.
fn claim(i: u32, residents: u32) -> (VerifyResidentRequest, bool) {
    // Spread over all residents; every tenth NIK is not recorded (regency 99).
    let n = (u64::from(i) * 2_654_435_761 % u64::from(residents)) as u32;
    let mut r = seeded(n);
    let known = !i.is_multiple_of(10);
    if !known {
        r.nik = format!("{}99{}", &r.nik[..2], &r.nik[4..]);
    }
    let a = r.address.unwrap_or_default();
    let request = VerifyResidentRequest {
        nik: r.nik,
        full_name: r.full_name.to_uppercase(),
        birth_date: r.birth_date,
        birth_place: r.birth_place,
        address: Some(Address {
            rt: a.rt.trim_start_matches('0').to_owned(),
            ..a
        }),
        linearizable: false,
    };
    (request, known)
}

fn right(answer: &VerifyResidentResponse, known: bool) -> bool {
    let a = answer.address.unwrap_or_default();
    answer.found == known
        && (!known
            || [
                answer.full_name(),
                answer.birth_date(),
                answer.birth_place(),
                a.street(),
                a.rt(),
                a.province(),
            ]
            .iter()
            .all(|m| *m == FieldMatch::Match))
}

/// `claims` verifications over `streams` concurrent streams spread across
/// `channels` (one per replica).
pub async fn drive(
    channels: &[Channel],
    streams: usize,
    claims: u32,
    residents: u32,
) -> Result<Verified> {
    let pool: Arc<Vec<(VerifyResidentRequest, bool)>> =
        Arc::new((0..CLAIM_POOL).map(|i| claim(i, residents)).collect());
    let per_stream = claims / streams as u32;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for s in 0..streams {
        let mut client = RegistryClient::new(channels[s % channels.len()].clone())
            .max_decoding_message_size(16 << 20);
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Arc::new(Mutex::new(VecDeque::<Instant>::new()));
            let offset = s as u32 * 7_919;
            let window = Arc::new(Semaphore::new(CLIENT_WINDOW));
            let (tx, rx) = mpsc::channel(64);
            let (requests_pool, stamps, room) = (pool.clone(), sent.clone(), window.clone());
            tokio::spawn(async move {
                for i in 0..per_stream {
                    let Ok(permit) = room.acquire().await else {
                        return;
                    };
                    permit.forget();
                    let claim = requests_pool[((offset + i) % CLAIM_POOL) as usize]
                        .0
                        .clone();
                    if let Ok(mut q) = stamps.lock() {
                        q.push_back(Instant::now());
                    }
                    if tx.send(claim).await.is_err() {
                        return;
                    }
                }
            });
            let requests = ReceiverStream::new(rx);
            let request = ektp_tests::stated(requests, "throughput benchmark");
            let mut answers = client.verify_residents(request).await?.into_inner();
            let mut latencies = Vec::with_capacity(per_stream as usize);
            let (mut wrong, mut i) = (0_u64, 0_u32);
            while let Some(answer) = answers.message().await? {
                window.add_permits(1);
                let at = sent.lock().ok().and_then(|mut q| q.pop_front());
                if let Some(at) = at {
                    latencies.push(at.elapsed());
                }
                let known = pool[((offset + i) % CLAIM_POOL) as usize].1;
                if !right(&answer, known) {
                    wrong += 1;
                }
                i += 1;
            }
            if i != per_stream {
                return Err(format!("stream ended after {i} of {per_stream} answers").into());
            }
            Ok::<_, ektp_tests::Error>((latencies, wrong))
        }));
    }
    let (mut all, mut wrong) = (Vec::new(), 0);
    for task in tasks {
        let (latencies, w) = task.await??;
        all.extend(latencies);
        wrong += w;
    }
    let per_s = f64::from(per_stream * streams as u32) / started.elapsed().as_secs_f64();
    all.sort();
    Ok(Verified {
        per_s,
        p50_ms: super::percentile_ms(&all, 50.0),
        p99_ms: super::percentile_ms(&all, 99.0),
        wrong,
    })
}
