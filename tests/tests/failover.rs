//! Crash failover with real processes: SIGKILL a leader mid-work and check
//! that the backup takes over and nothing acknowledged is lost or printed twice.

use ektp_hotfolder::{HotFolder, Outcome};
use ektp_proto::v1::*;
use ektp_tests::audit::Audit;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::retry::{lazy_clients, retrying};
use ektp_tests::wait::until;
use std::time::{Duration, Instant};

type Result = ektp_tests::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_print_node_takes_over_when_the_print_leader_is_killed_mid_run() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.cards_per_hour = 36_000; // 100 ms a card: the kill lands mid-run
    let mut cluster = Cluster::start(spec).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    let n = 120u32;
    for i in 0..n {
        retrying(&clients, Duration::from_secs(10), |mut c| async move {
            c.record_resident(record_request(i)).await
        })
        .await?;
        retrying(&clients, Duration::from_secs(10), |mut c| async move {
            c.authorize_print(authorize_request(i)).await
        })
        .await?;
    }
    let printed = |clients: Vec<_>| async move {
        retrying(&clients, Duration::from_secs(5), |mut c| async move {
            c.get_stats(GetStatsRequest {}).await
        })
        .await
        .map(|s| s.printed)
        .unwrap_or(0)
    };
    until("30 cards printed", Duration::from_secs(60), || {
        let clients = clients.clone();
        async move { (printed(clients).await >= 30).then_some(()) }
    })
    .await?;

    let old = cluster
        .leader_index(Service::Print)
        .await
        .ok_or("no print leader")?;
    let killed_at = Instant::now();
    cluster.nodes_mut(Service::Print)[old].proc.kill();
    let before = printed(clients.clone()).await;
    let new = cluster
        .wait_new_leader(Service::Print, old, Duration::from_secs(10))
        .await?;
    assert_ne!(new, old);
    until("the backup's first card", Duration::from_secs(20), || {
        let clients = clients.clone();
        async move { (printed(clients).await > before).then_some(()) }
    })
    .await?;
    let failover = killed_at.elapsed();
    assert!(
        failover < Duration::from_secs(10),
        "failover took {failover:?}"
    );

    until("every card printed", Duration::from_secs(120), || {
        let clients = clients.clone();
        async move { (printed(clients).await == u64::from(n)).then_some(()) }
    })
    .await?;
    let expected: Vec<String> = (0..n).map(|i| resident(i).nik).collect();
    let mut client = clients[0].clone();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "audit problems: {:#?}", audit.problems);
    assert_eq!(audit.active_cards, n as usize);
    assert_eq!(audit.printer_printed, n as usize, "no card printed twice");
    // Blanks the killed leader took for cards it never handed over were
    // given back by its successor: one blank per card the printer fed.
    let fed = HotFolder::new(&cluster.hotfolder)
        .read_log()?
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Printed | Outcome::Jammed))
        .count();
    let control = cluster.print_client(new).await?;
    let blanks = until("the blank stock", Duration::from_secs(10), || {
        let mut c = control.clone();
        async move { Some(c.get_status(GetStatusRequest {}).await.ok()?.into_inner()) }
    })
    .await?
    .blank_stock;
    assert_eq!(
        blanks,
        10_000 - fed as u64,
        "a blank per card fed, none lost"
    );
    println!(
        "print failover: {:.2} s from SIGKILL to the backup's first card",
        failover.as_secs_f64()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_acknowledged_record_is_lost_when_the_registry_leader_is_killed_under_load() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    // Enough writers that the leader's record batches fill and several are
    // in flight on its lanes when it is killed.
    let writers = 60u32;
    let per_writer = 5u32;
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for w in 0..writers {
        let clients = clients.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            for k in 0..per_writer {
                let i = w * per_writer + k;
                let stored = retrying(&clients, Duration::from_secs(20), |mut c| async move {
                    c.record_resident(record_request(i)).await
                })
                .await;
                match stored {
                    Ok(resident) => acked.lock().map(|mut a| a.push(resident.nik)).unwrap_or(()),
                    Err(status) => return Err(format!("record {i} failed: {status:?}")),
                }
            }
            Ok(())
        }));
    }
    until("100 records acknowledged", Duration::from_secs(60), || {
        let acked = acked.clone();
        async move { (acked.lock().map(|a| a.len()).unwrap_or(0) >= 100).then_some(()) }
    })
    .await?;
    let old = cluster
        .leader_index(Service::Registry)
        .await
        .ok_or("no registry leader")?;
    cluster.nodes_mut(Service::Registry)[old].proc.kill();
    let new = cluster
        .wait_new_leader(Service::Registry, old, Duration::from_secs(10))
        .await?;
    assert_ne!(new, old);
    for task in tasks {
        task.await??;
    }
    let expected = acked.lock().map(|a| a.clone()).unwrap_or_default();
    assert_eq!(expected.len(), (writers * per_writer) as usize);
    let mut survivor = clients[new].clone();
    let audit = Audit::collect(&mut survivor, &cluster.hotfolder, &expected).await?;
    assert_eq!(audit.lost, 0, "{:#?}", audit.problems);
    assert_eq!(audit.recorded, expected.len());
    let stats = survivor.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(
        stats.recorded,
        expected.len() as u64,
        "each record counted once"
    );
    let mut etcd = cluster.etcd.client().await?;
    let lanes = etcd
        .get(
            format!("/ektp/{}/counters/stats-lanes/", cluster.office),
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_keys_only(),
            ),
        )
        .await?;
    assert!(
        lanes.kvs().len() > 1,
        "record batches were in flight on more than one lane"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminated_leader_resigns_so_the_backup_leads_without_waiting_for_the_lease() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::registry_only(dir.path())?;
    spec.lease_ttl_secs = 10; // far longer than the handover may take
    let mut cluster = Cluster::start(spec).await?;
    let old = cluster
        .leader_index(Service::Registry)
        .await
        .ok_or("no registry leader")?;
    let stopped = Instant::now();
    cluster.nodes_mut(Service::Registry)[old]
        .proc
        .signal("TERM")?;
    let new = cluster
        .wait_new_leader(Service::Registry, old, Duration::from_secs(3))
        .await?;
    let handover = stopped.elapsed();
    assert_ne!(new, old);
    let exit = cluster.nodes_mut(Service::Registry)[old]
        .proc
        .wait_exit(Duration::from_secs(10));
    assert!(
        exit.is_some_and(|s| s.success()),
        "the old leader exits cleanly: {exit:?}"
    );
    println!("graceful handover: {} ms", handover.as_millis());
    Ok(())
}
