//! The failover benchmark: on its own loopback cluster (TTL 2 s), measures
//! crash failover — SIGKILL of the print leader until the backup completes
//! its first card — and graceful handover — SIGTERM of the print leader until
//! the backup holds the election — over N rounds each, then audits that no
//! card was lost or printed twice. Prints one summary line last.

use clap::Parser;
use ektp_tests::audit::Audit;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{record_and_authorise, sample, scrape, stats, wait_printed};
use ektp_tests::residents::resident;
use ektp_tests::retry::lazy_clients;
use ektp_tests::wait::until;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(name = "ektp-failover-bench")]
struct Args {
    /// Rounds of each kind.
    #[arg(long, default_value_t = 10)]
    rounds: u32,
    /// Lease TTL in seconds.
    #[arg(long, default_value_t = 2)]
    lease_ttl_secs: u64,
    /// Working directory (logs), kept after the run.
    #[arg(long, default_value = "target/bench-failover")]
    dir: std::path::PathBuf,
}

type Result<T> = ektp_tests::Result<T>;

#[tokio::main]
async fn main() -> ExitCode {
    match run(Args::parse()).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::from(2)
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn percentile(samples: &mut [f64], p: f64) -> f64 {
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (samples.len() as f64 - 1.0)).round() as usize;
    samples.get(rank).copied().unwrap_or(f64::NAN)
}

async fn run(args: Args) -> Result<bool> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    let mut spec = Spec::test(&args.dir)?;
    spec.lease_ttl_secs = args.lease_ttl_secs;
    spec.cards_per_hour = 360_000;
    let mut cluster = Cluster::start(spec).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut residents = 0u32;

    let mut crash = Vec::new();
    for round in 1..=args.rounds {
        // Keep work queued so the backup has a card to complete at once.
        if stats(&clients).await.map_or(0, |s| s.queued) < 100 {
            record_and_authorise(&clients, residents..residents + 300).await?;
            residents += 300;
        }
        let old = cluster
            .wait_leader(Service::Print, Duration::from_secs(10))
            .await?;
        // The backup's own counter: completions still in flight from the
        // killed leader cannot count as the backup's first card.
        let backup_port = cluster.print[1 - old].metrics_port;
        let printed_by_backup = || async move {
            let text = scrape(backup_port).await.ok()?;
            Some(
                sample(
                    &text,
                    "ektp_print_cards_printed_total{printer=\"printer-1\"}",
                )
                .unwrap_or(0.0),
            )
        };
        let before = printed_by_backup()
            .await
            .ok_or("backup metrics unavailable")?;
        let killed = Instant::now();
        cluster.nodes_mut(Service::Print)[old].proc.kill();
        until(
            "the backup's first card",
            Duration::from_secs(30),
            || async { printed_by_backup().await.filter(|now| *now > before) },
        )
        .await?;
        let took = killed.elapsed().as_secs_f64();
        println!("crash round {round}: {took:.2} s from SIGKILL to the backup's first card");
        crash.push(took);
        cluster.nodes_mut(Service::Print)[old].proc.restart()?;
        cluster.print[old]
            .wait_ready(Duration::from_secs(20))
            .await?;
    }

    let mut graceful = Vec::new();
    for round in 1..=args.rounds {
        let old = cluster
            .wait_leader(Service::Print, Duration::from_secs(10))
            .await?;
        let backup_port = cluster.print[1 - old].metrics_port;
        let stopped = unix_now();
        cluster.print[old].proc.signal("TERM")?;
        // The backup records when it became leader; polling only finds out that it did.
        let became = until("the backup to lead", Duration::from_secs(30), || async {
            let text = scrape(backup_port).await.ok()?;
            let leads = sample(&text, "ektp_leader_is_leader{service=\"print\"}")? == 1.0;
            let at = sample(
                &text,
                "ektp_leader_last_transition_timestamp_seconds{service=\"print\"}",
            )?;
            (leads && at >= stopped).then_some(at)
        })
        .await?;
        let took = (became - stopped) * 1000.0;
        println!("graceful round {round}: {took:.0} ms from SIGTERM until the backup leads");
        graceful.push(took);
        cluster.print[old].proc.wait_exit(Duration::from_secs(10));
        cluster.nodes_mut(Service::Print)[old].proc.restart()?;
        cluster.print[old]
            .wait_ready(Duration::from_secs(20))
            .await?;
    }

    let total = stats(&clients).await.ok_or("no stats")?;
    wait_printed(&clients, total.print_ready, Duration::from_secs(600)).await?;
    let expected: Vec<String> = (0..residents).map(|i| resident(i).nik).collect();
    let mut client = clients[0].clone();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    for problem in audit.problems.iter().take(20) {
        println!("problem: {problem}");
    }
    println!(
        "failover ttl_s={} crash_p50_s={:.2} crash_max_s={:.2} graceful_p50_ms={:.0} graceful_max_ms={:.0} rounds={} duplicates={} lost={}",
        args.lease_ttl_secs,
        percentile(&mut crash, 50.0),
        percentile(&mut crash, 100.0),
        percentile(&mut graceful, 50.0),
        percentile(&mut graceful, 100.0),
        args.rounds,
        audit.duplicates,
        audit.lost
    );
    Ok(audit.is_clean())
}
