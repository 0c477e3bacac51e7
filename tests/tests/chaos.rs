//! The chaos suite: real processes, real etcd, and the faults a regency
//! office meets — crashes, pauses, a cut network, lost etcd members, a whole
//! service restarted. Each scenario checks the invariants through the API and
//! the printer's own log: no acknowledged record lost, no NIK with two ACTIVE
//! cards, no card printed twice, no completion accepted from a stale epoch,
//! every authorised job printed (or explicitly IN_DOUBT).

use ektp_proto::v1::*;
use ektp_tests::audit::{Audit, all_jobs};
use ektp_tests::cluster::{Cluster, Ports, Service, Spec};
use ektp_tests::probe::{record_and_authorise, says_it_leads, stats, wait_printed};
use ektp_tests::proxy::Proxy;
use ektp_tests::residents::{record_request, resident};
use ektp_tests::retry::{lazy_clients, retrying};
use ektp_tests::wait::until;
use std::time::Duration;

type Result = ektp_tests::Result<()>;

fn clients_of(
    cluster: &Cluster,
) -> ektp_tests::Result<Vec<registry_client::RegistryClient<tonic::transport::Channel>>> {
    lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )
}

async fn audit_clean(cluster: &Cluster, n: u32) -> Result {
    let clients = clients_of(cluster)?;
    let expected: Vec<String> = (0..n).map(|i| resident(i).nik).collect();
    let mut client = clients[cluster.leader_index(Service::Registry).await.unwrap_or(0)].clone();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "audit problems: {:#?}", audit.problems);
    assert_eq!(audit.active_cards, n as usize);
    assert_eq!(audit.printed_jobs, n as usize);
    assert_eq!(
        audit.printer_printed, n as usize,
        "the printer printed every card exactly once"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_print_leader_killed_five_times_during_500_cards_loses_and_duplicates_nothing() -> Result
{
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.cards_per_hour = 90_000;
    let mut cluster = Cluster::start(spec).await?;
    let clients = clients_of(&cluster)?;
    let n = 500;
    record_and_authorise(&clients, 0..n).await?;
    for round in 1..=5u64 {
        wait_printed(&clients, round * 70, Duration::from_secs(120)).await?;
        let old = cluster
            .wait_leader(Service::Print, Duration::from_secs(10))
            .await?;
        cluster.nodes_mut(Service::Print)[old].proc.kill();
        cluster
            .wait_new_leader(Service::Print, old, Duration::from_secs(15))
            .await?;
        // Bring the killed node back as the new backup.
        cluster.nodes_mut(Service::Print)[old].proc.restart()?;
        cluster.print[old]
            .wait_ready(Duration::from_secs(20))
            .await?;
    }
    wait_printed(&clients, u64::from(n), Duration::from_secs(300)).await?;
    audit_clean(&cluster, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_print_leader_completes_nothing_after_it_wakes_and_steps_down() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.cards_per_hour = 36_000;
    let cluster = Cluster::start(spec).await?;
    let clients = clients_of(&cluster)?;
    let n = 150;
    record_and_authorise(&clients, 0..n).await?;
    wait_printed(&clients, 30, Duration::from_secs(60)).await?;

    let old = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    let old_epoch = cluster
        .print_client(old)
        .await?
        .get_status(GetStatusRequest {})
        .await?
        .into_inner()
        .epoch;
    cluster.print[old].proc.signal("STOP")?;
    let new = cluster
        .wait_new_leader(Service::Print, old, Duration::from_secs(15))
        .await?;
    let settled_by_old =
        |jobs: Vec<PrintJob>| jobs.iter().filter(|j| j.settled_epoch == old_epoch).count();
    let mut client = clients[0].clone();
    let before = settled_by_old(all_jobs(&mut client).await?);
    let printed = stats(&clients).await.map_or(0, |s| s.printed);
    wait_printed(&clients, printed + 10, Duration::from_secs(60)).await?;

    cluster.print[old].proc.signal("CONT")?;
    until(
        "the woken ex-leader to step down",
        Duration::from_secs(15),
        || async {
            (says_it_leads(cluster.print[old].metrics_port, "print").await == Some(false))
                .then_some(())
        },
    )
    .await?;
    wait_printed(&clients, u64::from(n), Duration::from_secs(120)).await?;
    let after = settled_by_old(all_jobs(&mut client).await?);
    assert_eq!(
        after, before,
        "no completion accepted from the stale epoch {old_epoch}"
    );
    assert_eq!(
        cluster
            .wait_leader(Service::Print, Duration::from_secs(5))
            .await?,
        new
    );
    audit_clean(&cluster, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_print_leader_cut_off_from_etcd_stops_leading_and_rejoins_as_backup() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.cards_per_hour = 36_000;
    let etcd_addr = format!("127.0.0.1:{}", spec.ports.etcd.client[0]).parse()?;
    let proxies = [
        Proxy::start(etcd_addr).await?,
        Proxy::start(etcd_addr).await?,
    ];
    spec.etcd_overrides = vec![
        (Service::Print, 0, proxies[0].url()),
        (Service::Print, 1, proxies[1].url()),
    ];
    let cluster = Cluster::start(spec).await?;
    let clients = clients_of(&cluster)?;
    let n = 120;
    record_and_authorise(&clients, 0..n).await?;
    wait_printed(&clients, 20, Duration::from_secs(60)).await?;

    let old = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    proxies[old].cut();
    let new = cluster
        .wait_new_leader(Service::Print, old, Duration::from_secs(15))
        .await?;
    until(
        "the cut-off leader to stop leading",
        Duration::from_secs(10),
        || async {
            (says_it_leads(cluster.print[old].metrics_port, "print").await == Some(false))
                .then_some(())
        },
    )
    .await?;
    proxies[old].restore();
    cluster.print[old]
        .wait_ready(Duration::from_secs(20))
        .await?;
    wait_printed(&clients, u64::from(n), Duration::from_secs(120)).await?;
    assert_eq!(
        cluster
            .wait_leader(Service::Print, Duration::from_secs(5))
            .await?,
        new
    );
    audit_clean(&cluster, n).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_etcd_members_stalls_briefly_then_stops_writes_and_quorum_brings_service_back()
-> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.ports = Ports::free(3, 2, 2)?;
    let mut cluster = Cluster::start(spec).await?;
    let clients = clients_of(&cluster)?;
    record_and_authorise(&clients, 0..40).await?;

    // One member down: a brief stall at most, writes go on.
    cluster.etcd.members[0].kill();
    record_and_authorise(&clients, 40..60).await?;

    // Two down: no quorum. Nothing may be acknowledged falsely.
    cluster.etcd.members[1].kill();
    let mut acknowledged: Vec<String> = (0..60).map(|i| resident(i).nik).collect();
    for i in 60..65 {
        let answer = retrying(&clients, Duration::from_secs(3), |mut c| async move {
            c.record_resident(record_request(i)).await
        })
        .await;
        if let Ok(stored) = answer {
            acknowledged.push(stored.nik);
        }
    }
    assert!(
        acknowledged.len() == 60,
        "a write was acknowledged without an etcd quorum"
    );

    // Quorum back: the same service processes resume on their own.
    cluster.etcd.members[0].restart()?;
    cluster.etcd.members[1].restart()?;
    cluster.etcd.wait_healthy(Duration::from_secs(30)).await?;
    record_and_authorise(&clients, 65..80).await?;
    for node in cluster.registry.iter_mut().chain(cluster.print.iter_mut()) {
        assert!(
            node.proc.is_running(),
            "{} had to be restarted",
            node.proc.name()
        );
    }
    let total = stats(&clients).await.ok_or("no stats")?;
    wait_printed(&clients, total.print_ready, Duration::from_secs(120)).await?;

    let expected: Vec<String> = acknowledged
        .into_iter()
        .chain((65..80).map(|i| resident(i).nik))
        .collect();
    let mut client = clients[0].clone();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "audit problems: {:#?}", audit.problems);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_registry_replicas_restarted_at_once_recover_everything_from_etcd() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let clients = clients_of(&cluster)?;
    record_and_authorise(&clients, 0..40).await?;
    wait_printed(&clients, 40, Duration::from_secs(60)).await?;
    let before = stats(&clients).await.ok_or("no stats")?;

    for node in cluster.nodes_mut(Service::Registry) {
        node.proc.kill();
    }
    for node in cluster.nodes_mut(Service::Registry) {
        node.proc.restart()?;
    }
    cluster
        .wait_leader(Service::Registry, Duration::from_secs(20))
        .await?;
    let after = stats(&clients).await.ok_or("no stats")?;
    assert_eq!(
        (after.recorded, after.printed, after.print_ready),
        (before.recorded, before.printed, before.print_ready)
    );
    record_and_authorise(&clients, 40..60).await?;
    wait_printed(&clients, 60, Duration::from_secs(60)).await?;
    audit_clean(&cluster, 60).await
}
