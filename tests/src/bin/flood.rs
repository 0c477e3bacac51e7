//! A flood of VerifyResident calls, for the load-shedding test: `concurrency`
//! callers on their own connections, each calling again as soon as it is
//! answered, until stdin closes. Prints a line per second and the totals:
//! `flood shed=N ok=N other=N`. Run it at low priority (`nice`) so that, on a
//! one-machine test, its own CPU stands in for other machines'.

use clap::Parser;
use ektp_proto::v1::VerifyResidentRequest;
use ektp_proto::v1::registry_client::RegistryClient;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tonic::Code;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

#[derive(Parser)]
struct Args {
    /// Registry addresses (`https://…`), comma-separated; callers spread over them.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
    #[arg(long)]
    ca: PathBuf,
    #[arg(long)]
    cert: PathBuf,
    #[arg(long)]
    key: PathBuf,
    /// The NIK every call asks about.
    #[arg(long)]
    nik: String,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
}

#[derive(Default)]
struct Counts {
    shed: AtomicU64,
    ok: AtomicU64,
    other: AtomicU64,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ektp_tests::Result<()> {
    let args = Args::parse();
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(std::fs::read(&args.ca)?))
        .identity(Identity::from_pem(
            std::fs::read(&args.cert)?,
            std::fs::read(&args.key)?,
        ));
    let counts = Arc::new(Counts::default());
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for i in 0..args.concurrency {
        let target = &args.targets[i % args.targets.len()];
        let channel = Endpoint::from_shared(target.clone())?
            .tls_config(tls.clone())?
            .connect()
            .await?;
        let mut client = RegistryClient::new(channel);
        let (counts, stop) = (counts.clone(), stop.clone());
        let claim = VerifyResidentRequest {
            nik: args.nik.clone(),
            ..VerifyResidentRequest::default()
        };
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let request = ektp_tests::stated(claim.clone(), "load test");
                let counter = match client.verify_resident(request).await {
                    Ok(_) => &counts.ok,
                    Err(s) if s.code() == Code::ResourceExhausted => &counts.shed,
                    Err(_) => &counts.other,
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    println!("flood started");
    // Flood until whoever started us closes our stdin.
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink)
    })
    .await??;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await?;
    }
    println!(
        "flood shed={} ok={} other={}",
        counts.shed.load(Ordering::Relaxed),
        counts.ok.load(Ordering::Relaxed),
        counts.other.load(Ordering::Relaxed)
    );
    Ok(())
}
