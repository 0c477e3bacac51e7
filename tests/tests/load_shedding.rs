//! A flood of verification requests far beyond a registry's concurrency
//! limit is shed with RESOURCE_EXHAUSTED at once, while the print leader —
//! whose calls use capacity kept for print nodes — keeps printing at the
//! rate it prints without the flood.

use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::wait::until;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use tonic::{Code, Request};

type Result<T = ()> = ektp_tests::Result<T>;

/// Cards printed in each phase.
const CARDS: u32 = 30;
/// Flooding tasks (requests in flight at once), against a limit of 8.
const FLOODERS: usize = 64;

fn stated<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "x-ektp-purpose",
        tonic::metadata::MetadataValue::from_static("load test"),
    );
    request
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_beyond_the_concurrency_limit_is_shed_while_printing_goes_on() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec {
        tls: true,
        // 100 ms a card: a printer-bound rate, as in an office.
        cards_per_hour: 36_000,
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
    for i in 0..2 * CARDS {
        registrar.record_resident(stated(record_request(i))).await?;
    }

    queue_paused(&mut central, &mut control, 0..CARDS).await?;
    let quiet = print_rate(&cluster, &mut control, CARDS).await?;
    queue_paused(&mut central, &mut control, CARDS..2 * CARDS).await?;

    // The flood: verifiers hammering both registry replicas.
    let stop = Arc::new(AtomicBool::new(false));
    let shed = Arc::new(AtomicU64::new(0));
    let answered = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let mut flood = Vec::new();
    for t in 0..FLOODERS {
        let mut client = RegistryClient::new(as_identity(t % 2, "verifier").await?);
        let (stop, shed, answered, other) =
            (stop.clone(), shed.clone(), answered.clone(), other.clone());
        flood.push(tokio::spawn(async move {
            let claim = VerifyResidentRequest {
                nik: resident(0).nik,
                full_name: resident(0).full_name,
                ..VerifyResidentRequest::default()
            };
            while !stop.load(Ordering::Relaxed) {
                match client.verify_resident(stated(claim.clone())).await {
                    Ok(_) => answered.fetch_add(1, Ordering::Relaxed),
                    Err(s) if s.code() == Code::ResourceExhausted => {
                        shed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(_) => other.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    until("the flood to be shed", Duration::from_secs(20), || async {
        (shed.load(Ordering::Relaxed) > 100).then_some(())
    })
    .await?;
    let flooded = print_rate(&cluster, &mut control, CARDS).await;
    stop.store(true, Ordering::Relaxed);
    for task in flood {
        task.await?;
    }
    let flooded = flooded?;
    let (shed, answered, other) = (
        shed.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed),
        other.load(Ordering::Relaxed),
    );
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
