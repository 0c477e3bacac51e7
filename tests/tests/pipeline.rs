//! Residents flow from recording through authorisation to printed cards, on
//! a real cluster: etcd, two registry and two print replicas, and the printer
//! simulator.

use ektp_proto::v1::*;
use ektp_tests::audit::Audit;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::wait::until;
use std::time::Duration;

type Result = ektp_tests::Result<()>;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_residents_are_recorded_authorised_and_printed_once_each() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    // Half the traffic goes to each replica: followers forward writes.
    let mut clients = [
        cluster.registry_client(0).await?,
        cluster.registry_client(1).await?,
    ];
    let n = 200u32;
    for i in 0..n {
        let client = &mut clients[i as usize % 2];
        let stored = client
            .record_resident(record_request(i))
            .await?
            .into_inner();
        assert_eq!(stored.status(), ResidentStatus::Recorded);
        assert!(
            stored.warnings.is_empty(),
            "synthetic NIKs agree with their records: {:?}",
            stored.warnings
        );
    }
    for i in 0..n {
        let client = &mut clients[i as usize % 2];
        let authorised = client
            .authorize_print(authorize_request(i))
            .await?
            .into_inner();
        assert_eq!(authorised.status(), ResidentStatus::PrintReady);
    }

    let stats = until("every card printed", Duration::from_secs(120), || {
        let mut client = clients[0].clone();
        async move {
            let stats = client
                .get_stats(GetStatsRequest {})
                .await
                .ok()?
                .into_inner();
            (stats.printed == u64::from(n)).then_some(stats)
        }
    })
    .await?;
    assert_eq!(stats.recorded, u64::from(n));
    assert_eq!(stats.print_ready, u64::from(n));
    assert_eq!(stats.backlog, 0);
    assert_eq!(stats.queued, 0);

    let expected: Vec<String> = (0..n).map(|i| resident(i).nik).collect();
    let audit = Audit::collect(&mut clients[1], &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "audit problems: {:#?}", audit.problems);
    assert_eq!(audit.active_cards, n as usize);
    assert_eq!(audit.printed_jobs, n as usize);
    assert_eq!(audit.printer_printed, n as usize, "the printer log agrees");

    let one = clients[1]
        .get_resident(GetResidentRequest {
            nik: resident(7).nik,
        })
        .await?
        .into_inner();
    assert_eq!(one.status(), ResidentStatus::Printed);
    assert!(one.active_card_serial.starts_with("KTP-"));
    Ok(())
}
