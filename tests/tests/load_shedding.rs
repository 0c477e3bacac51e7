//! A flood of verification requests far beyond a registry's concurrency
//! limit is shed with RESOURCE_EXHAUSTED at once, while the print leader —
//! whose calls use capacity kept for print nodes — keeps printing at the
//! rate it prints without the flood.
//!
//! The printer prints a card a second — still some twenty times faster than
//! an e-KTP card printer — so the figure is printing throughput as an office
//! sees it. Everything (etcd, both services, the printer simulator and the
//! flood) shares this machine's two cores; with a 100 ms printer the print
//! leader's own CPU work (rendering, in a debug build) competes with the
//! flood's, which measured 79–97 % of the quiet rate here.

use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::*;
use ektp_tests::bin_dir;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::wait::until;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tonic::Request;
use tonic::transport::Channel;

type Result<T = ()> = ektp_tests::Result<T>;

/// Cards printed in each phase.
const CARDS: u32 = 15;
/// Flooding tasks (requests in flight at once), against a limit of 8.
const FLOODERS: usize = 64;
/// Quiet-then-flooded rounds.
const ROUNDS: u32 = 2;

/// Answers the flood got.
#[derive(Default)]
struct FloodTotals {
    shed: u64,
    ok: u64,
    other: u64,
}

impl FloodTotals {
    fn add(&mut self, more: FloodTotals) {
        self.shed += more.shed;
        self.ok += more.ok;
        self.other += more.other;
    }
}

/// Verifiers hammering both registry replicas from their own process, at
/// the lowest CPU priority — on this one machine its CPU stands in for the
/// other machines a flood would come from.
struct Flood {
    child: std::process::Child,
}

impl Flood {
    /// Starts the flood and waits until the registries shed it.
    async fn start(cluster: &Cluster) -> Result<Self> {
        let pki = cluster.pki.as_ref().ok_or("not a TLS cluster")?;
        let verifier = pki.issue("verifier")?;
        let targets: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
        let child = Command::new("nice")
            .args(["-n", "19"])
            .arg(bin_dir()?.join("ektp-flood"))
            .args(["--targets", &targets.join(",")])
            .args(["--ca", &pki.ca_path().display().to_string()])
            .args(["--cert", &verifier.cert.display().to_string()])
            .args(["--key", &verifier.key.display().to_string()])
            .args(["--nik", &resident(0).nik])
            .args(["--concurrency", &FLOODERS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let flood = Self { child };
        let before = shed_count(cluster).await?;
        until("the flood to be shed", Duration::from_secs(20), || async {
            (shed_count(cluster).await.ok()? > before + 100.0).then_some(())
        })
        .await?;
        Ok(flood)
    }

    /// Stops the flood (closing its stdin) and reads its totals.
    fn stop(mut self) -> Result<FloodTotals> {
        drop(self.child.stdin.take());
        let output = self.child.wait_with_output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        let last = text.lines().last().unwrap_or_default();
        let count = |name: &str| -> u64 {
            last.split_whitespace()
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
                .unwrap_or(0)
        };
        Ok(FloodTotals {
            shed: count("shed"),
            ok: count("ok"),
            other: count("other"),
        })
    }
}

fn stated<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "x-ektp-purpose",
        tonic::metadata::MetadataValue::from_static("load test"),
    );
    request
}

/// Calls the registry replicas shed so far, from their metrics.
async fn shed_count(cluster: &Cluster) -> Result<f64> {
    let mut total = 0.0;
    for node in &cluster.registry {
        let text = scrape(node.metrics_port).await?;
        total += sample(&text, "ektp_requests_shed_total{reason=\"concurrency\"}").unwrap_or(0.0);
    }
    Ok(total)
}

/// Cards the print leader has printed, from its own metrics (a plaintext
/// scrape, so the measurement does not compete with the flood).
async fn printed(cluster: &Cluster) -> Result<f64> {
    let leader = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    let text = scrape(cluster.print[leader].metrics_port).await?;
    Ok(sample(
        &text,
        "ektp_print_cards_printed_total{printer=\"printer-1\"}",
    )
    .unwrap_or(0.0))
}

/// Pauses the printer and authorises residents `range`: their cards wait.
async fn queue_paused(
    central: &mut RegistryClient<Channel>,
    control: &mut PrintControlClient<Channel>,
    range: std::ops::Range<u32>,
) -> Result {
    control
        .pause_printer(PausePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;
    for i in range {
        central
            .authorize_print(stated(authorize_request(i)))
            .await?;
    }
    Ok(())
}

/// Resumes the printer and returns the printing rate (cards/s) from the 5th
/// to the `n`th card.
async fn print_rate(
    cluster: &Cluster,
    control: &mut PrintControlClient<Channel>,
    n: u32,
) -> Result<f64> {
    let base = printed(cluster).await?;
    control
        .resume_printer(ResumePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;
    let n = f64::from(n);
    until("the first cards", Duration::from_secs(60), || async {
        (printed(cluster).await.ok()? >= base + 5.0).then_some(())
    })
    .await?;
    let started = Instant::now();
    until("every card", Duration::from_secs(120), || async {
        (printed(cluster).await.ok()? >= base + n).then_some(())
    })
    .await?;
    Ok((n - 5.0) / started.elapsed().as_secs_f64())
}

#[tokio::test]
async fn a_flood_beyond_the_concurrency_limit_is_shed_while_printing_goes_on() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec {
        tls: true,
        // A card a second: printer-bound, as in an office.
        cards_per_hour: 3_600,
        registry_args: vec![
            "--max-concurrent-requests".into(),
            "8".into(),
            "--rate-limit-per-caller".into(),
            "0".into(),
        ],
        ..Spec::test(dir.path())?
    })
    .await?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(10))
        .await?;
    let as_identity =
        |i: usize, identity: &'static str| cluster.channel_as(&cluster.registry[i], identity);
    let mut registrar = RegistryClient::new(as_identity(leader, "registrar").await?);
    let mut central = RegistryClient::new(as_identity(leader, "central").await?);
    let mut control = cluster.print_client(0).await?;
    for i in 0..2 * ROUNDS * CARDS {
        registrar.record_resident(stated(record_request(i))).await?;
    }

    // Quiet and flooded phases alternate, so that drift in the machine's
    // other load falls on both alike.
    let (mut quiet, mut flooded) = (Vec::new(), Vec::new());
    let mut totals = FloodTotals::default();
    for round in 0..ROUNDS {
        let first = 2 * round * CARDS;
        queue_paused(&mut central, &mut control, first..first + CARDS).await?;
        quiet.push(print_rate(&cluster, &mut control, CARDS).await?);
        queue_paused(&mut central, &mut control, first + CARDS..first + 2 * CARDS).await?;
        let flood = Flood::start(&cluster).await?;
        let rate = print_rate(&cluster, &mut control, CARDS).await;
        totals.add(flood.stop()?);
        flooded.push(rate?);
    }
    let quiet = quiet.iter().sum::<f64>() / quiet.len() as f64;
    let flooded = flooded.iter().sum::<f64>() / flooded.len() as f64;
    let FloodTotals {
        shed,
        ok: answered,
        other,
    } = totals;
    println!(
        "flood: printing {quiet:.2} cards/s quiet, {flooded:.2} cards/s flooded ({:.0} %); flood answers: {shed} RESOURCE_EXHAUSTED, {answered} OK, {other} other",
        100.0 * flooded / quiet
    );
    assert!(shed > 0, "nothing was shed");
    assert_eq!(
        other, 0,
        "flood answers other than OK and RESOURCE_EXHAUSTED"
    );
    assert!(
        flooded >= 0.9 * quiet,
        "printing slowed under the flood: {flooded:.2} vs {quiet:.2} cards/s"
    );
    Ok(())
}
