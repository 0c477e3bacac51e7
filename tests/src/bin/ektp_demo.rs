//! The local demo: starts a 3-member etcd, two registry and two print
//! replicas and the printer simulator on loopback; records synthetic
//! residents, authorises them, shows printing, SIGKILLs the print leader
//! midway, and ends with a summary computed from the registry and the
//! printer's log.

use clap::Parser;
use ektp_proto::v1::{GetStatsRequest, Stats};
use ektp_tests::audit::Audit;
use ektp_tests::cluster::{Cluster, Ports, Service, Spec};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::retry::{lazy_clients_over, retrying};
use ektp_tests::stated;
use ektp_tests::wait::until;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "ektp-demo",
    about = "Runs the ektp cluster on loopback and prints cards through a failover"
)]
struct Args {
    /// Synthetic residents to record and authorise.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(10..=50_000))]
    residents: u32,
    /// Cards per hour of the simulated printer.
    #[arg(long, default_value_t = 36_000)]
    cards_per_hour: u32,
    /// Leader lease TTL in seconds.
    #[arg(long, default_value_t = 2)]
    lease_ttl_secs: u64,
    /// Working directory for data and logs.
    #[arg(long, default_value = ".cluster")]
    dir: PathBuf,
    /// Leave the cluster running and print its endpoints.
    #[arg(long)]
    keep: bool,
    /// Run everything over mutual TLS with role checks: a throwaway CA and
    /// certificates are created under `{dir}/tls`.
    #[arg(long)]
    tls: bool,
}

type Result<T> = ektp_tests::Result<T>;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::from(2)
        }
    }
}

async fn stats(
    clients: &[ektp_proto::v1::registry_client::RegistryClient<tonic::transport::Channel>],
) -> Option<Stats> {
    retrying(clients, Duration::from_secs(5), |mut c| async move {
        c.get_stats(GetStatsRequest {}).await
    })
    .await
    .ok()
}

async fn run(args: Args) -> Result<bool> {
    if args.dir.exists() {
        std::fs::remove_dir_all(&args.dir)?;
    }
    std::fs::create_dir_all(&args.dir)?;
    let dir = std::fs::canonicalize(&args.dir)?;
    println!(
        "starting etcd x3, registry x2, print x2 and the card printer simulator (logs in {})",
        dir.display()
    );
    let spec = Spec {
        dir: dir.clone(),
        ports: Ports::demo(),
        office: "demo".into(),
        lease_ttl_secs: args.lease_ttl_secs,
        cards_per_hour: args.cards_per_hour,
        blanks: u64::from(args.residents) * 2,
        claim_batch: 4,
        etcd_overrides: Vec::new(),
        registry_args: Vec::new(),
        sim_printer: None,
        tls: args.tls,
    };
    let mut cluster = Cluster::start(spec).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let harness_tls = cluster.registry.first().and_then(|n| n.tls.clone());
    let clients = lazy_clients_over(&addresses, harness_tls)?;
    if args.tls {
        refuses_plaintext(&cluster).await?;
    }

    let n = args.residents;
    let started = Instant::now();
    for i in 0..n {
        retrying(&clients, Duration::from_secs(20), |mut c| async move {
            c.record_resident(stated(record_request(i), "demo")).await
        })
        .await?;
    }
    println!(
        "recorded {n} residents in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for i in 0..n {
        retrying(&clients, Duration::from_secs(20), |mut c| async move {
            c.authorize_print(stated(authorize_request(i), "demo"))
                .await
        })
        .await?;
    }
    println!("authorised {n} residents as print-ready; printing…");

    let kill_at = u64::from(n) / 3;
    let mut failover_s = None;
    let mut last_report = Instant::now() - Duration::from_secs(1);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let s = stats(&clients).await.unwrap_or_default();
        if last_report.elapsed() >= Duration::from_secs(1) {
            let leader = cluster
                .leader_index(Service::Print)
                .await
                .map_or("none".into(), |i| format!("print-{i}"));
            println!(
                "  printed {:>5}/{n}  queued {:>5}  print leader {leader}",
                s.printed, s.queued
            );
            last_report = Instant::now();
        }
        if s.printed >= u64::from(n) {
            break;
        }
        if failover_s.is_none() && s.printed >= kill_at {
            failover_s = Some(kill_print_leader(&mut cluster, &clients).await?);
        }
        if Instant::now() > deadline {
            return Err("printing did not finish within 10 minutes".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let expected: Vec<String> = (0..n).map(|i| resident(i).nik).collect();
    let mut client = clients[cluster.leader_index(Service::Registry).await.unwrap_or(0)].clone();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    for problem in audit.problems.iter().take(20) {
        println!("problem: {problem}");
    }
    println!(
        "summary recorded={} printed={} active_cards={} duplicates={} lost={} failover_s={:.2}",
        audit.recorded,
        audit.printed_jobs,
        audit.active_cards,
        audit.duplicates,
        audit.lost,
        failover_s.unwrap_or(f64::NAN)
    );
    let ok = audit.is_clean() && audit.printed_jobs == audit.authorised;
    if args.keep {
        cluster.detach(&dir)?;
        print_endpoints(&cluster, &dir);
    }
    Ok(ok)
}

/// Checks that every API port refuses a plaintext call (mTLS only).
async fn refuses_plaintext(cluster: &Cluster) -> Result<()> {
    let mut refused = Vec::new();
    for node in cluster.registry.iter().chain(&cluster.print) {
        let plain = node.address.replace("https://", "http://");
        let answered = match tonic::transport::Endpoint::from_shared(plain.clone())?
            .connect_timeout(Duration::from_secs(1))
            .connect()
            .await
        {
            Ok(channel) => ektp_proto::v1::registry_client::RegistryClient::new(channel)
                .get_stats(GetStatsRequest {})
                .await
                .is_ok(),
            Err(_) => false,
        };
        if answered {
            return Err(format!("{plain} answered a plaintext call").into());
        }
        refused.push(plain.rsplit(':').next().unwrap_or_default().to_owned());
    }
    println!(
        "mTLS only: plaintext calls refused on ports {}",
        refused.join(" ")
    );
    Ok(())
}

/// SIGKILLs the print leader and returns seconds until the backup completes
/// its first card.
async fn kill_print_leader(
    cluster: &mut Cluster,
    clients: &[ektp_proto::v1::registry_client::RegistryClient<tonic::transport::Channel>],
) -> Result<f64> {
    let old = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    let before = stats(clients).await.map_or(0, |s| s.printed);
    let killed = Instant::now();
    cluster.nodes_mut(Service::Print)[old].proc.kill();
    println!("SIGKILL print leader print-{old} at {before} cards printed");
    let new = cluster
        .wait_new_leader(Service::Print, old, Duration::from_secs(30))
        .await?;
    println!(
        "print-{new} took over as leader after {:.2} s",
        killed.elapsed().as_secs_f64()
    );
    until(
        "the backup's first card",
        Duration::from_secs(60),
        || async {
            let now = stats(clients).await.map_or(0, |s| s.printed);
            (now > before).then_some(())
        },
    )
    .await?;
    let took = killed.elapsed().as_secs_f64();
    println!("print-{new} completed its first card {took:.2} s after the kill");
    Ok(took)
}

fn print_endpoints(cluster: &Cluster, dir: &std::path::Path) {
    println!("cluster left running (stop it with deploy/local/down.sh):");
    println!("  etcd        {}", cluster.etcd.endpoints.join(" "));
    for (i, node) in cluster.registry.iter().enumerate() {
        println!(
            "  registry-{i}  grpc {}  metrics http://127.0.0.1:{}/metrics",
            node.address, node.metrics_port
        );
    }
    for (i, node) in cluster.print.iter().enumerate() {
        let state = if node.proc.pid().is_some() {
            ""
        } else {
            "  (killed by the demo)"
        };
        println!(
            "  print-{i}     grpc {}  metrics http://127.0.0.1:{}/metrics{state}",
            node.address, node.metrics_port
        );
    }
    println!("  printer     hot folder {}", cluster.hotfolder.display());
    if cluster.pki.is_some() {
        println!(
            "  tls         CA, certificates and roles in {}/tls (ektpctl: --tls-ca ca.crt --tls-cert harness.crt --tls-key harness.key)",
            dir.display()
        );
    }
    println!("  logs        {}", dir.display());
}
