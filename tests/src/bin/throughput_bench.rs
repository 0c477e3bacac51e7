//! The throughput benchmark, beside raw etcd measured in the same run: raw
//! etcd puts of a record-sized value at 1, 16 and 64 in flight; RecordResident
//! at the same concurrencies (throughput, p50, p99, records per writer commit
//! from the leader's `ektp_registry_commit_batch_size`) and, at 64, the
//! storage ceiling ([`ceiling`]: etcd alone given the same writes); the print pipeline with an
//! instant printer (claimed-and-completed cards per second); peak RSS of the
//! print leader; then verification at voter-list scale ([`verify`]):
//! `--residents` seeded straight into etcd, the registry replicas restarted
//! to load their indexes, `VerifyResidents` streams driven at them, and the
//! registry replicas' peak RSS holding those residents. Prints one summary
//! line last.

#[path = "throughput_bench/ceiling.rs"]
mod ceiling;
#[path = "throughput_bench/verify.rs"]
mod verify;

use clap::Parser;
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::{PausePrinterRequest, ResumePrinterRequest};
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape, stats, wait_printed};
use ektp_tests::residents::{authorize_request, record_request};
use ektp_tests::retry::lazy_clients;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "ektp-throughput-bench")]
struct Args {
    /// Requests per concurrency level (raw puts and records alike).
    #[arg(long, default_value_t = 2000)]
    requests: u32,
    /// Cards printed in the pipeline measurement.
    #[arg(long, default_value_t = 1000)]
    cards: u32,
    /// Residents seeded for the verification measurement.
    #[arg(long, default_value_t = 1_000_000)]
    residents: u32,
    /// Verifications streamed in the verification measurement.
    #[arg(long, default_value_t = 1_000_000)]
    verify_claims: u32,
    /// Concurrent VerifyResidents streams (spread over the registry replicas).
    #[arg(long, default_value_t = 4)]
    verify_streams: usize,
    /// Working directory (logs), kept after the run.
    #[arg(long, default_value = "target/bench-throughput")]
    dir: std::path::PathBuf,
}

type Result<T> = ektp_tests::Result<T>;

/// The registry writer's cap on records per commit (etcd's default 128
/// operations per transaction level), for reading the batch sizes.
const RECORD_BATCH_CAP: u32 = 29;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs `total` calls of `call(i)` with `concurrency` in flight; (ops/s, latencies).
async fn drive<F, Fut>(total: u32, concurrency: u32, call: F) -> Result<(f64, Vec<Duration>)>
where
    F: Fn(u32) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let call = Arc::new(call);
    let next = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (call, next) = (call.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return Ok::<_, ektp_tests::Error>(latencies);
                }
                let t = Instant::now();
                call(i).await?;
                latencies.push(t.elapsed());
            }
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    let rate = f64::from(total) / started.elapsed().as_secs_f64();
    all.sort();
    Ok((rate, all))
}

fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len().saturating_sub(1)) as f64).round() as usize;
    sorted
        .get(rank)
        .map_or(f64::NAN, |d| d.as_secs_f64() * 1000.0)
}

fn peak_rss_mib(pid: Option<u32>) -> f64 {
    let Some(pid) = pid else { return f64::NAN };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// The leader's commit batch histogram so far: (sum, count).
async fn commit_batches(metrics_port: u16) -> (f64, f64) {
    let Ok(text) = scrape(metrics_port).await else {
        return (f64::NAN, f64::NAN);
    };
    // Not exported before the first commit: none yet.
    let series = |suffix| sample(&text, &format!("ektp_registry_commit_batch_size_{suffix}"));
    (series("sum").unwrap_or(0.0), series("count").unwrap_or(0.0))
}

async fn run(args: Args) -> Result<()> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let mut spec = Spec::test(&args.dir)?;
    spec.lease_ttl_secs = 5;
    spec.sim_printer = Some(u32::MAX);
    spec.claim_batch = 32;
    spec.blanks = 1_000_000;
    let mut cluster = Cluster::start(spec).await?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(10))
        .await?;
    let leader_client = lazy_clients(&[cluster.registry[leader].address.clone()])?;
    let value = vec![0x5a_u8; 1024];
    let mut record_ratio_64 = f64::NAN;
    let mut record_p99_64 = f64::NAN;
    let mut recorded = 0u32;
    for concurrency in [1u32, 16, 64] {
        let etcd = cluster.etcd.client().await?;
        let value = value.clone();
        let (raw, _) = drive(args.requests, concurrency, move |i| {
            let (mut etcd, value) = (etcd.clone(), value.clone());
            async move {
                etcd.put(format!("/bench/raw/{concurrency}/{i}"), value, None)
                    .await?;
                Ok(())
            }
        })
        .await?;
        let base = recorded;
        let metrics_port = cluster.registry[leader].metrics_port;
        let batches_before = commit_batches(metrics_port).await;
        let clients = leader_client.clone();
        let (records, latencies) = drive(args.requests, concurrency, move |i| {
            let mut client = clients[0].clone();
            async move {
                client.record_resident(record_request(base + i)).await?;
                Ok(())
            }
        })
        .await?;
        recorded += args.requests;
        let (p50, p99) = (
            percentile_ms(&latencies, 50.0),
            percentile_ms(&latencies, 99.0),
        );
        println!(
            "concurrency {concurrency:>2}: raw etcd puts {raw:>7.0}/s  RecordResident {records:>7.0}/s (ratio {:.2})  p50 {p50:.1} ms  p99 {p99:.1} ms",
            records / raw
        );
        let batches_after = commit_batches(metrics_port).await;
        let (sum, count) = (
            batches_after.0 - batches_before.0,
            batches_after.1 - batches_before.1,
        );
        println!(
            "concurrency {concurrency:>2}: {count:.0} record commits, {:.1} records per commit (cap {})",
            sum / count,
            RECORD_BATCH_CAP
        );
        if concurrency == 64 {
            record_ratio_64 = records / raw;
            record_p99_64 = p99;
            let etcd = cluster.etcd.client().await?;
            for in_flight in [1, 4] {
                let ceiling = ceiling::records_per_second(
                    &etcd,
                    &in_flight.to_string(),
                    args.requests,
                    in_flight,
                )
                .await?;
                println!(
                    "storage ceiling: etcd alone commits record-shaped transactions ({} records, {in_flight} in flight) at {ceiling:>7.0} records/s (ratio {:.2})",
                    ceiling::BATCH,
                    ceiling / raw
                );
            }
        }
    }

    // The print pipeline: queue the cards while the printer is paused, then time them through.
    let cards = args.cards.min(recorded);
    let mut control = PrintControlClient::new(cluster.print[0].channel().await?);
    control
        .pause_printer(PausePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;
    let clients = leader_client.clone();
    drive(cards, 16, move |i| {
        let mut client = clients[0].clone();
        async move {
            client.authorize_print(authorize_request(i)).await?;
            Ok(())
        }
    })
    .await?;
    let started = Instant::now();
    control
        .resume_printer(ResumePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;
    wait_printed(&leader_client, u64::from(cards), Duration::from_secs(600)).await?;
    let print_cards_s = f64::from(cards) / started.elapsed().as_secs_f64();
    let printed = stats(&leader_client).await.map_or(0, |s| s.printed);
    println!(
        "print pipeline: {printed} cards at {print_cards_s:.0} cards/s (instant printer, batches of 32)"
    );

    let print_leader = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    let registry_rss_recorded = peak_rss_mib(cluster.registry[leader].proc.pid());
    let print_rss = peak_rss_mib(cluster.print[print_leader].proc.pid());
    println!(
        "peak RSS: registry leader {registry_rss_recorded:.0} MiB holding {recorded} residents; print leader {print_rss:.0} MiB"
    );

    // Verification at scale, against freshly started replicas.
    let seed_rate = verify::seed(&cluster, args.residents).await?;
    println!(
        "seeded {} residents straight into etcd at {seed_rate:.0}/s; restarting the registry replicas to load their indexes",
        args.residents
    );
    let load = verify::restart_registries(&mut cluster, args.residents).await?;
    println!(
        "verification indexes loaded ({} residents, slowest replica ready {:.1} s after restart)",
        args.residents,
        load.as_secs_f64()
    );
    let mut channels = Vec::new();
    for node in &cluster.registry {
        channels.push(node.channel().await?);
    }
    let v = verify::drive(
        &channels,
        args.verify_streams,
        args.verify_claims,
        args.residents,
    )
    .await?;
    println!(
        "VerifyResidents: {:.0}/s over {} streams on {} replicas, {} residents  p50 {:.1} ms  p99 {:.1} ms per verification (in a saturated stream)  wrong answers {}",
        v.per_s,
        args.verify_streams,
        channels.len(),
        args.residents,
        v.p50_ms,
        v.p99_ms,
        v.wrong
    );
    if v.wrong > 0 {
        return Err(format!("{} verifications answered wrong", v.wrong).into());
    }
    let registry_rss = cluster
        .registry
        .iter()
        .map(|n| peak_rss_mib(n.proc.pid()))
        .fold(f64::NAN, f64::max);
    println!(
        "peak RSS: registry replicas up to {registry_rss:.0} MiB holding {} residents in their indexes",
        args.residents
    );
    println!(
        "bench record_ratio_64={record_ratio_64:.2} record_p99_ms_64={record_p99_64:.1} print_cards_s={print_cards_s:.0} verify_s={:.0} registry_rss_mib={registry_rss:.0} print_rss_mib={print_rss:.0}",
        v.per_s
    );
    Ok(())
}
