//! The outbox through WatchEvents: a consumer that disconnects at random
//! points and resumes from its cursor — across a registry leader SIGKILL and
//! a print leader SIGKILL — receives every event exactly once, in order; a
//! cursor older than the retained events answers OUT_OF_RANGE.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{record_and_authorise, wait_printed};
use ektp_tests::retry::lazy_clients;
use ektp_tests::wait::until;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::Code;

type Result = ektp_tests::Result<()>;

/// Every event in etcd, as (cursor, kind), in stream order.
async fn stored_events(cluster: &Cluster) -> ektp_tests::Result<Vec<(String, i32)>> {
    use prost::Message;
    let mut client = cluster.etcd.client().await?;
    let prefix = format!("/ektp/{}/events/", cluster.office);
    let response = client
        .get(
            prefix.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await?;
    let mut events: Vec<(String, i32)> = response
        .kvs()
        .iter()
        .map(|kv| {
            let name =
                String::from_utf8_lossy(kv.key().rsplit(|b| *b == b'/').next().unwrap_or_default())
                    .into_owned();
            let kind = Event::decode(kv.value())
                .map(|e| e.kind)
                .unwrap_or_default();
            (format!("{:020}.{name}", kv.mod_revision()), kind)
        })
        .collect();
    events.sort();
    Ok(events)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resuming_from_its_cursor_sees_every_event_once_across_failovers() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.cards_per_hour = 72_000;
    let mut cluster = Cluster::start(spec).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;

    // The consumer: reconnects after a pseudo-random number of events, to
    // alternating replicas, always from the last cursor it processed.
    let seen: Arc<Mutex<Vec<(String, i32)>>> = Arc::default();
    let reconnects = Arc::new(Mutex::new(0u32));
    let consumer = {
        let (clients, seen, reconnects) = (clients.clone(), seen.clone(), reconnects.clone());
        tokio::spawn(async move {
            let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
            let mut turn = 0usize;
            loop {
                let cursor = seen
                    .lock()
                    .ok()
                    .and_then(|s| s.last().map(|e| e.0.clone()))
                    .unwrap_or_default();
                let mut client = clients[turn % clients.len()].clone();
                turn += 1;
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                let budget = 5 + (seed >> 59) as usize * 3;
                if let Ok(response) = client
                    .watch_events(WatchEventsRequest {
                        after_cursor: cursor,
                    })
                    .await
                {
                    let mut stream = response.into_inner();
                    let mut taken = 0;
                    while taken < budget {
                        match tokio::time::timeout(Duration::from_millis(500), stream.message())
                            .await
                        {
                            Ok(Ok(Some(event))) => {
                                if let Ok(mut s) = seen.lock() {
                                    s.push((event.cursor, event.kind));
                                }
                                taken += 1;
                            }
                            _ => break,
                        }
                    }
                }
                if let Ok(mut r) = reconnects.lock() {
                    *r += 1;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    record_and_authorise(&clients, 0..20).await?;
    let registry_leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(5))
        .await?;
    cluster.nodes_mut(Service::Registry)[registry_leader]
        .proc
        .kill();
    record_and_authorise(&clients, 20..40).await?;
    cluster.nodes_mut(Service::Registry)[registry_leader]
        .proc
        .restart()?;
    wait_printed(&clients, 30, Duration::from_secs(60)).await?;
    let print_leader = cluster
        .wait_leader(Service::Print, Duration::from_secs(5))
        .await?;
    cluster.nodes_mut(Service::Print)[print_leader].proc.kill();
    record_and_authorise(&clients, 40..60).await?;
    wait_printed(&clients, 60, Duration::from_secs(120)).await?;
    cluster.add_blanks(7).await?;

    let expected = stored_events(&cluster).await?;
    until("the consumer to catch up", Duration::from_secs(60), || {
        let seen = seen.clone();
        let n = expected.len();
        async move { (seen.lock().ok()?.len() >= n).then_some(()) }
    })
    .await?;
    consumer.abort();
    let got = seen.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(got, expected, "every event exactly once, in order");
    let count = |kind: EventKind| got.iter().filter(|e| e.1 == kind as i32).count();
    assert_eq!(count(EventKind::Recorded), 60);
    assert_eq!(count(EventKind::Authorised), 60);
    assert_eq!(count(EventKind::Printed), 60);
    assert_eq!(
        count(EventKind::StockAdded),
        2,
        "the harness's stock and ours"
    );
    let reconnects = reconnects.lock().map(|r| *r).unwrap_or_default();
    println!(
        "outbox: events={} reconnects={reconnects} failovers=2",
        got.len()
    );

    // Retention dropped everything up to the middle: an older cursor is out of range.
    let mut etcd = cluster.etcd.client().await?;
    let middle: i64 = got[got.len() / 2]
        .0
        .split('.')
        .next()
        .unwrap_or("0")
        .parse()?;
    etcd.put(
        format!("/ektp/{}/counters/events-floor", cluster.office),
        middle.to_string(),
        None,
    )
    .await?;
    let mut client = clients[0].clone();
    let mut stream = client
        .watch_events(WatchEventsRequest {
            after_cursor: got[1].0.clone(),
        })
        .await?
        .into_inner();
    let status = stream.message().await.expect_err("out of range");
    assert_eq!(status.code(), Code::OutOfRange);
    let bad = client
        .watch_events(WatchEventsRequest {
            after_cursor: "nonsense".into(),
        })
        .await
        .expect_err("bad cursor");
    assert_eq!(bad.code(), Code::InvalidArgument);
    Ok(())
}
