//! Identity verification: a claim about a NIK is answered match / no match
//! per claimed field, by any replica, one at a time or streamed in order —
//! and never with the record's data; from each replica's in-memory index,
//! which follows records, cards and data changes, or from etcd when a claim
//! asks for `linearizable` and while a restarted replica rebuilds its index.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape, wait_printed};
use ektp_tests::residents::{authorize_request, photo, record_request, resident, signature};
use ektp_tests::retry::lazy_clients;
use ektp_tests::wait::until;
use std::time::{Duration, Instant};
use tonic::Code;
use tonic_types::StatusExt;

type Result = ektp_tests::Result<()>;

/// How many residents the tests record (indices `0..RECORDED`).
const RECORDED: u32 = 3;

async fn cluster_with_residents(dir: &std::path::Path) -> ektp_tests::Result<Cluster> {
    let cluster = Cluster::start(Spec::registry_only(dir)?).await?;
    let mut client = cluster.registry_client(0).await?;
    for i in 0..RECORDED {
        client.record_resident(record_request(i)).await?;
    }
    // An index may answer up to its lag bound behind etcd: these tests are
    // about the answers, so they start once every replica's index holds
    // the records (staleness has its own test below).
    for replica in 0..cluster.registry.len() {
        until_index_holds(&cluster, replica, RECORDED).await?;
    }
    Ok(cluster)
}

/// Everything resident `i` has on record, claimed the way a clerk might type
/// it: different case, extra spaces and punctuation, RT/RW without zeros.
fn faithful_claim(i: u32) -> VerifyResidentRequest {
    let r = resident(i);
    let a = r.address.unwrap_or_default();
    VerifyResidentRequest {
        nik: r.nik,
        full_name: format!("  {}. ", r.full_name.to_uppercase().replace(' ', "   ")),
        birth_date: r.birth_date,
        birth_place: r.birth_place.to_lowercase(),
        address: Some(Address {
            street: a.street.replace('.', "").to_lowercase(),
            rt: a.rt.trim_start_matches('0').to_owned(),
            rw: a.rw.trim_start_matches('0').to_owned(),
            village: a.village.to_uppercase(),
            district: a.district,
            regency: format!("{},", a.regency),
            province: a.province.to_lowercase(),
        }),
        linearizable: false,
    }
}

fn nik_only(nik: String) -> VerifyResidentRequest {
    VerifyResidentRequest {
        nik,
        ..VerifyResidentRequest::default()
    }
}

fn address_parts(response: &VerifyResidentResponse) -> [FieldMatch; 7] {
    let a = response.address.unwrap_or_default();
    [
        a.street(),
        a.rt(),
        a.rw(),
        a.village(),
        a.district(),
        a.regency(),
        a.province(),
    ]
}

/// Fails if the answer shows any recorded resident's name.
fn assert_discloses_no_name(response: &VerifyResidentResponse) {
    let shown = format!("{response:?}");
    for i in 0..RECORDED {
        let name = resident(i).full_name;
        assert!(!shown.contains(&name), "{name} disclosed in {shown}");
    }
}

/// The fields a rejected call's `BadRequest` names.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_answered_field_by_field_on_the_leader_and_the_follower_alike() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = cluster_with_residents(dir.path()).await?;
    for replica in 0..cluster.registry.len() {
        let mut client = cluster.registry_client(replica).await?;

        for i in 0..RECORDED {
            let claim = faithful_claim(i);
            let answer = client.verify_resident(claim.clone()).await?.into_inner();
            assert_eq!(answer.nik, claim.nik, "replica {replica}");
            assert!(answer.found, "replica {replica}, resident {i}");
            assert_eq!(answer.full_name(), FieldMatch::Match, "{answer:?}");
            assert_eq!(answer.birth_date(), FieldMatch::Match, "{answer:?}");
            assert_eq!(answer.birth_place(), FieldMatch::Match, "{answer:?}");
            assert_eq!(address_parts(&answer), [FieldMatch::Match; 7], "{answer:?}");
            assert!(!answer.has_active_card);
            assert!(answer.error.is_empty());
            assert_discloses_no_name(&answer);
        }

        let wrong_date = VerifyResidentRequest {
            full_name: resident(0).full_name,
            birth_date: "1999-12-31".into(),
            ..nik_only(resident(0).nik)
        };
        let answer = client.verify_resident(wrong_date).await?.into_inner();
        assert!(answer.found);
        assert_eq!(answer.full_name(), FieldMatch::Match);
        assert_eq!(answer.birth_date(), FieldMatch::NoMatch);
        assert_eq!(answer.birth_place(), FieldMatch::NotClaimed);
        assert_eq!(address_parts(&answer), [FieldMatch::NotClaimed; 7]);
        assert_discloses_no_name(&answer);

        let mut unknown = faithful_claim(0);
        unknown.nik = resident(999).nik;
        let answer = client.verify_resident(unknown.clone()).await?.into_inner();
        assert_eq!(answer.nik, unknown.nik);
        assert!(!answer.found);
        assert!(!answer.has_active_card);
        assert_eq!(answer.full_name(), FieldMatch::NotClaimed);
        assert_eq!(answer.birth_date(), FieldMatch::NotClaimed);
        assert_eq!(address_parts(&answer), [FieldMatch::NotClaimed; 7]);
        assert_discloses_no_name(&answer);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_claim_is_rejected_with_field_violations_on_every_replica() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = cluster_with_residents(dir.path()).await?;
    for replica in 0..cluster.registry.len() {
        let mut client = cluster.registry_client(replica).await?;
        let status = client
            .verify_resident(nik_only("35270141079".into()))
            .await
            .expect_err("a short nik");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), ["nik"]);

        let status = client
            .verify_resident(VerifyResidentRequest {
                birth_date: "31-12-1999".into(),
                full_name: "x".repeat(201),
                ..nik_only(resident(0).nik)
            })
            .await
            .expect_err("a bad date and an over-long name");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(violated_fields(&status), ["birth_date", "full_name"]);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_streamed_claims_are_answered_in_order_and_a_bad_one_does_not_end_the_stream()
-> Result {
    const CLAIMS: u32 = 1_000;
    const INVALID_AT: u32 = 500;
    let dir = tempfile::tempdir()?;
    let cluster = cluster_with_residents(dir.path()).await?;

    // Per claim: the request and whether its NIK is recorded. Known NIKs
    // alternate a right and a wrong birth date so the order shows in the answers.
    let claims: Vec<(VerifyResidentRequest, bool)> = (0..CLAIMS)
        .map(|i| match i {
            INVALID_AT => (nik_only("not-a-nik".into()), false),
            i if i % 2 == 0 => {
                let mut claim = faithful_claim(i % RECORDED);
                if i % 4 == 2 {
                    claim.birth_date = "1999-12-31".into();
                }
                (claim, true)
            }
            i => (faithful_claim(1_000 + i), false),
        })
        .collect();

    for replica in 0..cluster.registry.len() {
        let mut client = cluster.registry_client(replica).await?;
        let requests: Vec<_> = claims.iter().map(|(c, _)| c.clone()).collect();
        let mut answers = client
            .verify_residents(tokio_stream::iter(requests))
            .await?
            .into_inner();
        let mut received = Vec::new();
        while let Some(answer) = answers.message().await? {
            received.push(answer);
        }
        assert_eq!(received.len(), claims.len(), "replica {replica}");

        for (i, ((claim, known), answer)) in (0..CLAIMS).zip(claims.iter().zip(&received)) {
            assert_eq!(answer.nik, claim.nik, "answer {i} out of order");
            assert_discloses_no_name(answer);
            if i == INVALID_AT {
                assert!(!answer.found);
                assert!(answer.error.contains("nik"), "{answer:?}");
                assert_eq!(answer.full_name(), FieldMatch::NotClaimed);
                continue;
            }
            assert!(answer.error.is_empty(), "answer {i}: {answer:?}");
            assert_eq!(answer.found, *known, "answer {i}");
            if !known {
                assert_eq!(answer.full_name(), FieldMatch::NotClaimed, "answer {i}");
                continue;
            }
            let date = if i % 4 == 2 {
                FieldMatch::NoMatch
            } else {
                FieldMatch::Match
            };
            assert_eq!(answer.birth_date(), date, "answer {i}");
            assert_eq!(answer.full_name(), FieldMatch::Match, "answer {i}");
            assert_eq!(address_parts(answer), [FieldMatch::Match; 7], "answer {i}");
        }
    }
    Ok(())
}

/// `ektp_verify_index_*` of registry replica `i`: (ready, residents, lag seconds).
async fn index_gauges(cluster: &Cluster, i: usize) -> Option<(f64, f64, f64)> {
    let text = scrape(cluster.registry[i].metrics_port).await.ok()?;
    Some((
        sample(&text, "ektp_verify_index_ready")?,
        sample(&text, "ektp_verify_index_residents")?,
        sample(&text, "ektp_verify_index_lag_seconds")?,
    ))
}

/// Waits until replica `i`'s index is ready and holds at least `residents`.
async fn until_index_holds(cluster: &Cluster, i: usize, residents: u32) -> Result {
    until(
        "a replica's index to be ready and hold the residents",
        Duration::from_secs(30),
        || async {
            index_gauges(cluster, i)
                .await
                .filter(|(ready, held, _)| *ready == 1.0 && *held >= f64::from(residents))
        },
    )
    .await?;
    Ok(())
}

/// Polls replica `i` with `claim` until `accept` holds for its answer.
async fn until_answer(
    cluster: &Cluster,
    i: usize,
    what: &str,
    claim: VerifyResidentRequest,
    accept: impl Fn(&VerifyResidentResponse) -> bool,
) -> Result {
    until(what, Duration::from_secs(60), || async {
        let mut client = cluster.registry_client(i).await.ok()?;
        let answer = client.verify_resident(claim.clone()).await.ok()?;
        accept(answer.get_ref()).then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_follows_records_cards_and_data_changes_and_linearizable_claims_see_them_at_once()
-> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(10))
        .await?;
    let follower = 1 - leader;
    until_index_holds(&cluster, follower, 0).await?;

    // A linearizable claim sees a record at once, on the follower too.
    let mut registry = cluster.registry_client(leader).await?;
    registry.record_resident(record_request(0)).await?;
    let mut on_follower = cluster.registry_client(follower).await?;
    let linearizable = VerifyResidentRequest {
        linearizable: true,
        ..faithful_claim(0)
    };
    let answer = on_follower
        .verify_resident(linearizable)
        .await?
        .into_inner();
    assert!(answer.found);
    assert_eq!(address_parts(&answer), [FieldMatch::Match; 7]);

    // The index catches up with the record, then with the printed card.
    until_answer(
        &cluster,
        follower,
        "the index to know the record",
        faithful_claim(0),
        |a| a.found && a.full_name() == FieldMatch::Match && !a.has_active_card,
    )
    .await?;
    registry.authorize_print(authorize_request(0)).await?;
    wait_printed(&clients, 1, Duration::from_secs(60)).await?;
    until_answer(
        &cluster,
        follower,
        "the index to see the card",
        faithful_claim(0),
        |a| a.has_active_card,
    )
    .await?;

    // A data-change reprint: the corrected name matches, the old one no longer.
    let mut corrected = resident(0);
    corrected.full_name = "Siti Nurhaliza".into();
    registry
        .request_reprint(RequestReprintRequest {
            nik: corrected.nik.clone(),
            reason: PrintReason::DataChange as i32,
            reference: "KK update".into(),
            request_id: "verify-change-0".into(),
            resident: Some(corrected.clone()),
            material: Some(PrintMaterial {
                photo: photo(),
                signature: signature(),
            }),
        })
        .await?;
    let new_name = VerifyResidentRequest {
        full_name: "siti  NURHALIZA".into(),
        ..nik_only(corrected.nik.clone())
    };
    let flipped = Instant::now();
    until_answer(
        &cluster,
        follower,
        "the index to see the data change",
        new_name.clone(),
        |a| a.full_name() == FieldMatch::Match,
    )
    .await?;
    let linearizable = VerifyResidentRequest {
        linearizable: true,
        ..new_name
    };
    let answer = on_follower
        .verify_resident(linearizable)
        .await?
        .into_inner();
    assert_eq!(answer.full_name(), FieldMatch::Match);
    let old = on_follower
        .verify_resident(faithful_claim(0))
        .await?
        .into_inner();
    assert_eq!(old.full_name(), FieldMatch::NoMatch);
    assert_eq!(old.birth_date(), FieldMatch::Match);
    assert!(flipped.elapsed() < Duration::from_secs(60));

    // The index is confirmed current well within its bound.
    let (ready, residents, lag) = until("a fresh lag figure", Duration::from_secs(10), || async {
        index_gauges(&cluster, follower).await.filter(|g| g.2 < 1.0)
    })
    .await?;
    assert_eq!((ready, residents), (1.0, 1.0), "lag {lag}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_replica_answers_from_etcd_then_rebuilds_its_index() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = cluster_with_residents(dir.path()).await?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(10))
        .await?;
    let restarted = 1 - leader;
    cluster.registry[restarted].proc.restart()?;
    // Right answers from the first one it gives, index loaded or not.
    for i in 0..RECORDED {
        until_answer(
            &cluster,
            restarted,
            "a right answer after restart",
            faithful_claim(i),
            |a| a.found && address_parts(a) == [FieldMatch::Match; 7],
        )
        .await?;
    }
    until(
        "the restarted replica's index",
        Duration::from_secs(30),
        || async {
            index_gauges(&cluster, restarted)
                .await
                .filter(|g| g.0 == 1.0 && g.1 == f64::from(RECORDED))
        },
    )
    .await?;
    let mut client = cluster.registry_client(restarted).await?;
    let requests: Vec<_> = (0..RECORDED).map(faithful_claim).collect();
    let mut answers = client
        .verify_residents(tokio_stream::iter(requests))
        .await?
        .into_inner();
    let mut count = 0;
    while let Some(answer) = answers.message().await? {
        assert!(answer.found, "{answer:?}");
        assert_eq!(answer.full_name(), FieldMatch::Match);
        assert_eq!(address_parts(&answer), [FieldMatch::Match; 7]);
        count += 1;
    }
    assert_eq!(count, RECORDED);
    Ok(())
}
