//! Printing details on a real cluster: a blank per attempt, a pause at zero
//! stock that lifts when stock arrives, and jammed cards spoiling their serial
//! and printing again under a new one.

use ektp_hotfolder::{HotFolder, Outcome};
use ektp_proto::v1::*;
use ektp_tests::audit::{Audit, all_jobs};
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::wait::until;
use std::time::Duration;

type Result = ektp_tests::Result<()>;

async fn record_and_authorise(cluster: &Cluster, n: u32) -> Result {
    let mut client = cluster.registry_client(0).await?;
    for i in 0..n {
        client.record_resident(record_request(i)).await?;
        client.authorize_print(authorize_request(i)).await?;
    }
    Ok(())
}

async fn wait_printed(cluster: &Cluster, n: u64) -> ektp_tests::Result<Stats> {
    let client = cluster.registry_client(0).await?;
    until(
        &format!("{n} cards printed"),
        Duration::from_secs(60),
        || {
            let mut c = client.clone();
            async move {
                let stats = c.get_stats(GetStatsRequest {}).await.ok()?.into_inner();
                (stats.printed == n).then_some(stats)
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printing_pauses_when_blanks_run_out_and_resumes_when_stock_arrives() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.blanks = 5;
    let cluster = Cluster::start(spec).await?;
    record_and_authorise(&cluster, 8).await?;
    wait_printed(&cluster, 5).await?;

    let mut control = cluster.print_client(0).await?;
    let status = until(
        "the print leader to report no blanks",
        Duration::from_secs(10),
        || {
            let mut c = control.clone();
            async move {
                let leader = c
                    .get_status(GetStatusRequest {})
                    .await
                    .ok()?
                    .into_inner()
                    .leader_address;
                let endpoint = tonic::transport::Endpoint::from_shared(leader).ok()?;
                let mut at_leader = ektp_proto::v1::print_control_client::PrintControlClient::new(
                    endpoint.connect().await.ok()?,
                );
                let status = at_leader
                    .get_status(GetStatusRequest {})
                    .await
                    .ok()?
                    .into_inner();
                status.out_of_blanks.then_some(status)
            }
        },
    )
    .await?;
    assert_eq!(status.blank_stock, 0);
    let stats = cluster
        .registry_client(1)
        .await?
        .get_stats(GetStatsRequest {})
        .await?
        .into_inner();
    assert_eq!(stats.printed, 5, "nothing printed without a blank");
    assert_eq!(stats.queued, 3);

    let added = control
        .add_blank_stock(AddBlankStockRequest {
            count: 10,
            reference: "DO-2026-11".into(),
            request_id: "delivery-1".into(),
        })
        .await?
        .into_inner();
    assert_eq!(added.remaining, 10);
    let retried = control
        .add_blank_stock(AddBlankStockRequest {
            count: 10,
            reference: "DO-2026-11".into(),
            request_id: "delivery-1".into(),
        })
        .await?
        .into_inner();
    assert!(
        retried.remaining <= 10,
        "a retried delivery is not added twice"
    );
    wait_printed(&cluster, 8).await?;
    let status = control.get_status(GetStatusRequest {}).await?.into_inner();
    assert_eq!(status.blank_stock, 7, "one blank per printed card");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jammed_card_spoils_its_serial_and_prints_again_under_a_new_one() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    HotFolder::new(&cluster.hotfolder).request_jams(3)?;
    let n = 10;
    record_and_authorise(&cluster, n).await?;
    let stats = wait_printed(&cluster, u64::from(n)).await?;
    assert_eq!(stats.spoiled, 3, "each jam spoils one blank");
    assert_eq!(
        stats.print_failed, 0,
        "fewer jams per job than the attempt limit"
    );

    let log = HotFolder::new(&cluster.hotfolder).read_log()?;
    assert_eq!(
        log.iter().filter(|e| e.outcome == Outcome::Jammed).count(),
        3
    );
    let mut client = cluster.registry_client(0).await?;
    let jobs = all_jobs(&mut client).await?;
    let retried: Vec<_> = jobs.iter().filter(|j| j.failed_attempts > 0).collect();
    assert!(!retried.is_empty());
    assert!(
        retried
            .iter()
            .all(|j| j.state() == PrintJobState::Printed && j.last_error.contains("jam"))
    );
    let expected: Vec<String> = (0..n).map(|i| resident(i).nik).collect();
    let audit = Audit::collect(&mut client, &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "{:#?}", audit.problems);
    let status = cluster
        .print_client(0)
        .await?
        .get_status(GetStatusRequest {})
        .await?
        .into_inner();
    assert_eq!(
        status.blank_stock,
        10_000 - u64::from(n) - 3,
        "jammed attempts used blanks too"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_printer_gets_no_cards_until_resumed_even_across_a_failover() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let mut control = cluster.print_client(0).await?;
    let paused = control
        .pause_printer(PausePrinterRequest {
            name: "printer-1".into(),
        })
        .await?
        .into_inner();
    assert!(paused.paused);
    let unknown = control
        .pause_printer(PausePrinterRequest {
            name: "nope".into(),
        })
        .await
        .expect_err("unknown printer");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    record_and_authorise(&cluster, 5).await?;
    let registry = cluster.registry_client(0).await?;
    // The leader sees the pause within one idle poll; give it several.
    let old = cluster
        .leader_index(ektp_tests::cluster::Service::Print)
        .await
        .ok_or("no print leader")?;
    cluster.nodes_mut(ektp_tests::cluster::Service::Print)[old]
        .proc
        .kill();
    cluster
        .wait_new_leader(
            ektp_tests::cluster::Service::Print,
            old,
            Duration::from_secs(15),
        )
        .await?;
    let status = cluster
        .print_client(1 - old)
        .await?
        .get_status(GetStatusRequest {})
        .await?
        .into_inner();
    assert!(status.printers[0].paused, "the pause survives the failover");
    let stats = registry
        .clone()
        .get_stats(GetStatsRequest {})
        .await?
        .into_inner();
    assert_eq!(stats.printed, 0, "nothing printed while paused");
    assert_eq!(stats.queued, 5);

    let mut control = cluster.print_client(1 - old).await?;
    let resumed = control
        .resume_printer(ResumePrinterRequest {
            name: "printer-1".into(),
        })
        .await?
        .into_inner();
    assert!(!resumed.paused);
    wait_printed(&cluster, 5).await?;
    Ok(())
}
