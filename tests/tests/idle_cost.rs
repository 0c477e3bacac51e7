//! What an idle cluster costs etcd. Every node shares etcd (and, on small
//! offices, the machine) with the work that matters, so a node waiting for
//! work must not keep etcd busy: a print node once re-opened its watch of the
//! registry election in a tight loop, ~1,000 etcd calls a second per node.
//! Measured from etcd's own request counters over a few idle seconds.

use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape};
use std::time::{Duration, Instant};

type Result = ektp_tests::Result<()>;

/// How long the idle cluster is watched.
const WINDOW: Duration = Duration::from_secs(4);
/// etcd calls a second the whole idle cluster (two registry and two print
/// nodes) may make: lease keep-alives, the print leader's idle claims every
/// 100 ms (`Spec::test`), gauge refreshes and retention ticks stay well
/// below it; a polling loop does not.
const MAX_CALLS_PER_SECOND: f64 = 150.0;

/// etcd's counts of unary calls received and streams started so far.
fn calls(text: &str) -> (f64, f64) {
    let mut unary = 0.0;
    let mut streams = 0.0;
    for line in text.lines() {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        if series.starts_with("grpc_server_msg_received_total{") && series.contains("unary") {
            unary += value;
        } else if series.starts_with("grpc_server_started_total{") && series.contains("bidi_stream")
        {
            streams += value;
        }
    }
    (unary, streams)
}

async fn etcd_calls(cluster: &Cluster) -> ektp_tests::Result<(f64, f64)> {
    let endpoint = cluster.etcd.endpoints.first().ok_or("no etcd endpoint")?;
    let port: u16 = endpoint
        .rsplit(':')
        .next()
        .ok_or("an etcd endpoint without a port")?
        .parse()?;
    let text = scrape(port).await?;
    if sample(&text, "etcd_server_has_leader").is_none() {
        return Err("not an etcd metrics page".into());
    }
    Ok(calls(&text))
}

#[tokio::test]
async fn an_idle_cluster_leaves_etcd_nearly_idle() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    cluster
        .wait_leader(Service::Registry, Duration::from_secs(15))
        .await?;
    cluster
        .wait_leader(Service::Print, Duration::from_secs(15))
        .await?;

    let (unary_before, streams_before) = etcd_calls(&cluster).await?;
    let started = Instant::now();
    // A measurement window, not a wait for a condition: a rate needs time.
    tokio::time::sleep(WINDOW).await;
    let (unary_after, streams_after) = etcd_calls(&cluster).await?;
    let seconds = started.elapsed().as_secs_f64();
    let unary = (unary_after - unary_before) / seconds;
    let streams = (streams_after - streams_before) / seconds;
    println!("idle cluster: {unary:.1} etcd calls/s, {streams:.1} streams opened/s");
    assert!(
        unary + streams < MAX_CALLS_PER_SECOND,
        "an idle cluster made {unary:.0} etcd calls and opened {streams:.0} streams a second"
    );
    assert!(
        streams < 1.0,
        "idle nodes keep their watches open, yet {streams:.1} streams a second were opened"
    );
    Ok(())
}
