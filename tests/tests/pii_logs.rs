//! Personal data stays out of the logs: a scenario that touches every
//! person-data RPC — record (also a rejected and a duplicate record), get,
//! authorise, print, preview, collection, reprint (lost with a police report,
//! damaged), verify (one and streamed) — against a real cluster, then a scan
//! of every process log and the printer's job log: no NIK written out in
//! full, no resident's name. Error answers are checked not to echo the NIK
//! or the name either.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::log_scan;
use ektp_tests::probe::{record_and_authorise, wait_printed};
use ektp_tests::residents::{record_request, resident};
use ektp_tests::retry::{lazy_clients, retrying};
use std::time::Duration;
use tonic::Code;

type Result = ektp_tests::Result<()>;

const REPRESENTATIVE: &str = "Bambang Sutrisno";

/// Whether an error answer repeats personal data it was sent.
fn echoes(status: &tonic::Status, nik: &str, name: &str) -> bool {
    let text = format!("{status:?}");
    text.contains(&nik[..12]) || text.contains(name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_nik_or_name_reaches_any_log_through_every_person_data_rpc() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    // The follower forwards writes, so both replicas handle the data.
    let leader = cluster
        .wait_leader(
            ektp_tests::cluster::Service::Registry,
            Duration::from_secs(10),
        )
        .await?;
    let mut follower = clients[1 - leader].clone();

    // Record, authorise and print three residents.
    record_and_authorise(&clients, 0..3).await?;
    wait_printed(&clients, 3, Duration::from_secs(60)).await?;
    let nik = |i| resident(i).nik;
    let name = |i| resident(i).full_name;

    // Rejections and absent residents: answered without echoing the data.
    let mut bad = record_request(10);
    if let Some(r) = bad.resident.as_mut() {
        r.nik = format!("{}0000", &r.nik[..12]);
        r.full_name.push('\u{7}');
    }
    let status = follower
        .record_resident(bad)
        .await
        .expect_err("invalid record");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(!echoes(&status, &nik(10), &name(10)), "{status:?}");
    let mut again = record_request(0);
    again.request_id = "pii-duplicate".into();
    let status = follower
        .record_resident(again)
        .await
        .expect_err("duplicate");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert!(!echoes(&status, &nik(0), &name(0)), "{status:?}");
    let status = follower
        .get_resident(GetResidentRequest { nik: nik(11) })
        .await
        .expect_err("never recorded");
    assert_eq!(status.code(), Code::NotFound);
    assert!(!echoes(&status, &nik(11), &name(11)), "{status:?}");
    follower
        .get_resident(GetResidentRequest { nik: nik(1) })
        .await?;

    // Card preview of a printed card, from a print replica.
    let jobs = follower
        .list_print_jobs(ListPrintJobsRequest {
            state: PrintJobState::Printed as i32,
            ..Default::default()
        })
        .await?
        .into_inner()
        .jobs;
    let job = jobs.first().ok_or("no printed job")?;
    let mut control = cluster.print_client(1).await?;
    control
        .get_card_preview(GetCardPreviewRequest {
            job_id: job.job_id.clone(),
        })
        .await?;

    // Collection by a representative, then reprints: lost (police report) and damaged.
    retrying(&clients, Duration::from_secs(20), |mut c| async move {
        c.record_collection(RecordCollectionRequest {
            nik: resident(0).nik,
            collected_by: Collector::Representative as i32,
            representative_name: REPRESENTATIVE.into(),
            proof_reference: "TT-PII-1".into(),
        })
        .await
    })
    .await?;
    for (i, reason, reference) in [
        (0, PrintReason::Lost, "LP/77/XI/2026"),
        (1, PrintReason::Damaged, ""),
    ] {
        retrying(&clients, Duration::from_secs(20), |mut c| async move {
            c.request_reprint(RequestReprintRequest {
                nik: resident(i).nik,
                reason: reason as i32,
                reference: reference.into(),
                request_id: format!("pii-reprint-{i}"),
                ..Default::default()
            })
            .await
        })
        .await?;
    }
    wait_printed(&clients, 5, Duration::from_secs(60)).await?;

    // Verification: a match, a mismatch, an unknown NIK, a malformed claim, streamed too.
    let claim = |i: u32, full_name: String| VerifyResidentRequest {
        nik: nik(i),
        full_name,
        birth_date: resident(i).birth_date,
        ..Default::default()
    };
    follower.verify_resident(claim(2, name(2))).await?;
    follower.verify_resident(claim(2, name(5))).await?;
    follower.verify_resident(claim(12, name(12))).await?;
    let malformed = VerifyResidentRequest {
        nik: format!("{}X", &nik(2)[..15]),
        full_name: name(2),
        ..Default::default()
    };
    let status = follower
        .verify_resident(malformed.clone())
        .await
        .expect_err("malformed claim");
    assert!(!echoes(&status, &nik(2), &name(2)), "{status:?}");
    let claims = vec![claim(1, name(1)), claim(2, name(0)), malformed];
    let mut answers = follower
        .verify_residents(tokio_stream::iter(claims))
        .await?
        .into_inner();
    while answers.message().await?.is_some() {}

    // Scan every log of the run: services, printer simulator, printer job log.
    let mut logs: Vec<_> = cluster
        .registry
        .iter()
        .chain(cluster.print.iter())
        .map(|n| n.proc.log_path().to_path_buf())
        .collect();
    logs.push(cluster.printer.log_path().to_path_buf());
    logs.push(cluster.hotfolder.join("printer.log"));
    let mut names: Vec<String> = (0..13).map(name).collect();
    names.push(REPRESENTATIVE.into());
    names.extend((0..3).filter_map(|i| resident(i).address.map(|a| a.street)));
    let findings = log_scan::scan(&logs, &names);
    let listed: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(
        findings.is_empty(),
        "personal data in logs:\n{}",
        listed.join("\n")
    );
    // The scan read real logs: the services did log.
    let registry_log = std::fs::read_to_string(cluster.registry[0].proc.log_path())?;
    assert!(registry_log.contains("registry serving"), "{registry_log}");
    Ok(())
}
