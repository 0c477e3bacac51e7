//! The card lifecycle after the first print, through the API: handover
//! (collection), replacement cards that revoke their predecessor in the same
//! transaction, and operators cancelling jobs — with the ledger invariants
//! checked in etcd: at most one ACTIVE card per NIK, and every serial ends
//! ACTIVE, VOID, SPOILED or REVOKED.

use ektp_proto::v1::*;
use ektp_tests::audit::Audit;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::probe::{record_and_authorise, wait_printed};
use ektp_tests::residents::{photo, record_request, resident, signature};
use ektp_tests::retry::lazy_clients;
use prost::Message;
use std::collections::HashMap;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

type Result = ektp_tests::Result<()>;

/// Every card in the ledger.
async fn ledger(cluster: &Cluster) -> ektp_tests::Result<Vec<Card>> {
    let mut client = cluster.etcd.client().await?;
    let prefix = format!("/ektp/{}/cards/", cluster.office);
    let response = client
        .get(
            prefix.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await?;
    Ok(response
        .kvs()
        .iter()
        .filter_map(|kv| Card::decode(kv.value()).ok())
        .collect())
}

fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|f| f.field).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collection_reprints_and_cancellation_keep_one_active_card_per_nik() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut registry = clients[1].clone();
    record_and_authorise(&clients, 0..3).await?;
    wait_printed(&clients, 3, Duration::from_secs(60)).await?;
    let nik = |i| resident(i).nik;

    // Handover, retried safely; a second handover of the same card is refused.
    let collect = |proof: &str| RecordCollectionRequest {
        nik: nik(0),
        collected_by: Collector::Representative as i32,
        representative_name: "Ahmad Santoso".into(),
        proof_reference: proof.into(),
    };
    let collected = registry
        .record_collection(collect("TT-001"))
        .await?
        .into_inner();
    assert_eq!(collected.status(), ResidentStatus::Collected);
    let handover = collected
        .collection
        .clone()
        .ok_or("no collection recorded")?;
    assert_eq!(handover.card_serial, collected.active_card_serial);
    assert_eq!(handover.collected_by, "REPRESENTATIVE");
    assert_eq!(
        registry
            .record_collection(collect("TT-001"))
            .await?
            .into_inner(),
        collected
    );
    let twice = registry
        .record_collection(collect("TT-002"))
        .await
        .expect_err("collected already");
    assert_eq!(twice.code(), Code::FailedPrecondition);
    let nameless = RecordCollectionRequest {
        representative_name: String::new(),
        ..collect("TT-3")
    };
    assert_eq!(
        fields(
            &registry
                .record_collection(nameless)
                .await
                .expect_err("no name")
        ),
        ["representative_name"]
    );

    // A lost card: the police report is required; the retry returns the same job.
    let lost = |reference: &str| RequestReprintRequest {
        nik: nik(0),
        reason: PrintReason::Lost as i32,
        reference: reference.into(),
        request_id: "reprint-lost-0".into(),
        ..Default::default()
    };
    let missing = registry
        .request_reprint(lost(""))
        .await
        .expect_err("no police report");
    assert_eq!(fields(&missing), ["reference"]);
    let job = registry
        .request_reprint(lost("LP/123/XI/2026"))
        .await?
        .into_inner();
    assert_eq!(
        (job.state(), job.reason()),
        (PrintJobState::Queued, PrintReason::Lost)
    );
    assert_eq!(job.reference, "LP/123/XI/2026");
    assert_eq!(
        registry
            .request_reprint(lost("LP/123/XI/2026"))
            .await?
            .into_inner()
            .job_id,
        job.job_id
    );
    let open = RequestReprintRequest {
        request_id: "reprint-lost-0-again".into(),
        ..lost("LP/124")
    };
    assert_eq!(
        registry
            .request_reprint(open)
            .await
            .expect_err("job open")
            .code(),
        Code::FailedPrecondition
    );

    // A data change carries the corrected record and new material.
    let mut corrected = resident(1);
    corrected.occupation = "Guru".into();
    let change = RequestReprintRequest {
        nik: nik(1),
        reason: PrintReason::DataChange as i32,
        reference: "KK update".into(),
        request_id: "reprint-change-1".into(),
        resident: Some(corrected),
        material: Some(PrintMaterial {
            photo: photo(),
            signature: signature(),
        }),
    };
    registry.request_reprint(change).await?;
    let first_cards: HashMap<String, String> = (0..2)
        .map(|i| (nik(i), String::new()))
        .collect::<HashMap<_, _>>();
    let mut before = first_cards;
    for (n, serial) in before.iter_mut() {
        *serial = registry
            .get_resident(GetResidentRequest { nik: n.clone() })
            .await?
            .into_inner()
            .active_card_serial;
    }
    wait_printed(&clients, 5, Duration::from_secs(60)).await?;

    for i in 0..2 {
        let now = registry
            .get_resident(GetResidentRequest { nik: nik(i) })
            .await?
            .into_inner();
        assert_eq!(
            now.status(),
            ResidentStatus::Printed,
            "a new card is printed, not yet collected"
        );
        assert_ne!(
            now.active_card_serial,
            before[&nik(i)],
            "the replacement is the ACTIVE card"
        );
        assert!(now.open_job_id.is_empty());
        assert!(now.collection.is_none());
    }
    let changed = registry
        .get_resident(GetResidentRequest { nik: nik(1) })
        .await?
        .into_inner();
    assert_eq!(changed.occupation, "Guru");

    // Cancellation of a queued first card: the resident awaits a new decision.
    let mut control = cluster.print_client(0).await?;
    control
        .pause_printer(PausePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;
    registry.record_resident(record_request(7)).await?;
    registry
        .authorize_print(AuthorizePrintRequest {
            nik: nik(7),
            outcome: AuthorizationOutcome::PrintReady as i32,
            ..Default::default()
        })
        .await?;
    let queued = registry
        .get_resident(GetResidentRequest { nik: nik(7) })
        .await?
        .into_inner()
        .open_job_id;
    let cancel = || CancelPrintJobRequest {
        job_id: queued.clone(),
        reason: "duplicate application".into(),
    };
    let cancelled = registry.cancel_print_job(cancel()).await?.into_inner();
    assert_eq!(cancelled.state(), PrintJobState::Cancelled);
    assert_eq!(
        registry
            .cancel_print_job(cancel())
            .await?
            .into_inner()
            .state(),
        PrintJobState::Cancelled
    );
    let person = registry
        .get_resident(GetResidentRequest { nik: nik(7) })
        .await?
        .into_inner();
    assert_eq!(person.status(), ResidentStatus::Recorded);
    let printed_job = CancelPrintJobRequest {
        job_id: job.job_id.clone(),
        reason: "too late".into(),
    };
    assert_eq!(
        registry
            .cancel_print_job(printed_job)
            .await
            .expect_err("printed")
            .code(),
        Code::FailedPrecondition
    );
    let stats = registry.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(
        (
            stats.backlog,
            stats.queued,
            stats.cancelled,
            stats.reprints,
            stats.collected
        ),
        (0, 0, 1, 2, 1)
    );
    control
        .resume_printer(ResumePrinterRequest {
            name: "printer-1".into(),
        })
        .await?;

    // The ledger: one ACTIVE card per NIK, the replaced ones REVOKED, none left ALLOCATED.
    let cards = ledger(&cluster).await?;
    let mut active: HashMap<&str, usize> = HashMap::new();
    for card in &cards {
        assert_ne!(
            card.state(),
            CardState::Allocated,
            "serial {} never settled",
            card.serial
        );
        if card.state() == CardState::Active {
            *active.entry(card.nik.as_str()).or_default() += 1;
        }
    }
    assert!(active.values().all(|n| *n == 1), "{active:?}");
    assert_eq!(active.len(), 3);
    for i in 0..2 {
        let old = cards
            .iter()
            .find(|c| c.serial == before[&nik(i)])
            .ok_or("old card missing")?;
        assert_eq!(old.state(), CardState::Revoked);
    }
    let expected: Vec<String> = (0..3).map(nik).collect();
    let audit = Audit::collect(&mut registry, &cluster.hotfolder, &expected).await?;
    assert!(audit.is_clean(), "{:#?}", audit.problems);
    assert_eq!(
        audit.printer_printed, 5,
        "three first cards and two replacements"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn print_material_is_dropped_after_collection_and_a_reprint_must_bring_new_material() -> Result
{
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    spec.registry_args = [
        "--material-retention-secs",
        "1",
        "--retention-sweep-secs",
        "1",
    ]
    .map(String::from)
    .to_vec();
    let cluster = Cluster::start(spec).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    let mut registry = clients[0].clone();
    record_and_authorise(&clients, 0..2).await?;
    wait_printed(&clients, 2, Duration::from_secs(60)).await?;
    let nik = resident(0).nik;
    let digest = registry
        .get_resident(GetResidentRequest { nik: nik.clone() })
        .await?
        .into_inner()
        .material_digest;
    assert_eq!(digest.len(), 16, "a digest is kept with the record");
    registry
        .record_collection(RecordCollectionRequest {
            nik: nik.clone(),
            collected_by: Collector::Resident as i32,
            proof_reference: "TT-9".into(),
            ..Default::default()
        })
        .await?;

    let mut etcd = cluster.etcd.client().await?;
    let material_key = format!("/ektp/{}/material/{nik}", cluster.office);
    let dropped = ektp_tests::wait::until(
        "the material to be dropped",
        Duration::from_secs(20),
        || {
            let mut registry = registry.clone();
            let nik = nik.clone();
            async move {
                let r = registry
                    .get_resident(GetResidentRequest { nik })
                    .await
                    .ok()?
                    .into_inner();
                r.material_dropped.then_some(r)
            }
        },
    )
    .await?;
    assert_eq!(dropped.material_digest, digest, "the digest stays");
    assert!(
        etcd.get(material_key.as_str(), None)
            .await?
            .kvs()
            .is_empty(),
        "the photo is gone from etcd"
    );
    let other = format!("/ektp/{}/material/{}", cluster.office, resident(1).nik);
    assert!(
        !etcd.get(other.as_str(), None).await?.kvs().is_empty(),
        "uncollected material stays"
    );

    let reprint = |material: Option<PrintMaterial>, id: &str| RequestReprintRequest {
        nik: nik.clone(),
        reason: PrintReason::Damaged as i32,
        request_id: id.into(),
        material,
        ..Default::default()
    };
    let refused = registry
        .request_reprint(reprint(None, "damaged-1"))
        .await
        .expect_err("no material");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    let material = PrintMaterial {
        photo: photo(),
        signature: signature(),
    };
    registry
        .request_reprint(reprint(Some(material), "damaged-2"))
        .await?;
    wait_printed(&clients, 3, Duration::from_secs(60)).await?;
    let after = registry
        .get_resident(GetResidentRequest { nik })
        .await?
        .into_inner();
    assert!(!after.material_dropped);
    assert_eq!(after.status(), ResidentStatus::Printed);
    Ok(())
}
