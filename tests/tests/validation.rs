//! Bad input gets INVALID_ARGUMENT with `BadRequest` field violations, on the
//! leader and on a follower alike, and leaves etcd untouched; retries are
//! answered identically and stored once.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::residents::{record_request, resident};
use tonic::Code;
use tonic_types::StatusExt;

type Result = ektp_tests::Result<()>;

/// The fields a rejected call's `BadRequest` names.
fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_rejected_with_field_violations_and_changes_nothing() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let revision = cluster.etcd.revision().await?;

    type Breaker = fn(&mut RecordResidentRequest);
    let cases: Vec<(&str, Breaker, &str)> = vec![
        (
            "malformed nik",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.nik = "35270112".into())
            },
            "resident.nik",
        ),
        (
            "non-digit nik",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.nik = "35270141079A0001".into())
            },
            "resident.nik",
        ),
        (
            "impossible birth date in nik",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.nik = "3527013102900001".into())
            },
            "resident.nik",
        ),
        (
            "unknown province",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.nik = "9927014107900001".into())
            },
            "resident.nik",
        ),
        (
            "serial 0000",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.nik = "3527014107900000".into())
            },
            "resident.nik",
        ),
        (
            "empty name",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.full_name = "  ".into())
            },
            "resident.full_name",
        ),
        (
            "unknown sex value",
            |r| r.resident.as_mut().map_or((), |x| x.sex = 99),
            "resident.sex",
        ),
        (
            "unknown religion value",
            |r| r.resident.as_mut().map_or((), |x| x.religion = -3),
            "resident.religion",
        ),
        (
            "impossible birth date",
            |r| {
                r.resident
                    .as_mut()
                    .map_or((), |x| x.birth_date = "1990-02-30".into())
            },
            "resident.birth_date",
        ),
        (
            "bad rt",
            |r| {
                r.resident
                    .as_mut()
                    .and_then(|x| x.address.as_mut())
                    .map_or((), |a| a.rt = "12a4".into())
            },
            "resident.address.rt",
        ),
        (
            "oversized photo",
            |r| {
                r.material
                    .as_mut()
                    .map_or((), |m| m.photo.resize(65 * 1024, 0))
            },
            "material.photo",
        ),
        (
            "photo that is not a JPEG",
            |r| {
                r.material
                    .as_mut()
                    .map_or((), |m| m.photo = b"GIF89a".to_vec())
            },
            "material.photo",
        ),
        ("missing request_id", |r| r.request_id.clear(), "request_id"),
        ("missing resident", |r| r.resident = None, "resident"),
    ];
    for replica in 0..2 {
        let mut client = cluster.registry_client(replica).await?;
        for (what, breaker, field) in &cases {
            let mut request = record_request(1);
            breaker(&mut request);
            let status = client.record_resident(request).await.expect_err(what);
            assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
            assert!(
                violated_fields(&status).iter().any(|f| f == field),
                "{what}: {:?}",
                violated_fields(&status)
            );
        }
        let status = client
            .authorize_print(AuthorizePrintRequest {
                nik: resident(1).nik,
                outcome: 7,
                ..Default::default()
            })
            .await
            .expect_err("unknown outcome");
        assert_eq!(violated_fields(&status), ["outcome"]);
        let status = client
            .list_residents(ListResidentsRequest {
                page_size: 5000,
                page_token: "x".into(),
            })
            .await
            .expect_err("bad paging");
        assert_eq!(violated_fields(&status), ["page_size", "page_token"]);
        let status = client
            .get_resident(GetResidentRequest { nik: "123".into() })
            .await
            .expect_err("bad nik");
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    // Several faults at once are all reported.
    let mut request = record_request(2);
    request.request_id.clear();
    if let Some(r) = request.resident.as_mut() {
        r.full_name.clear();
        r.sex = 0;
    }
    let status = cluster
        .registry_client(0)
        .await?
        .record_resident(request)
        .await
        .expect_err("many faults");
    let fields = violated_fields(&status);
    for field in ["request_id", "resident.full_name", "resident.sex"] {
        assert!(
            fields.iter().any(|f| f == field),
            "{field} missing from {fields:?}"
        );
    }
    assert_eq!(
        cluster.etcd.revision().await?,
        revision,
        "a rejected request wrote to etcd"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_record_is_answered_identically_and_stored_once() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let mut leader = cluster.registry_client(0).await?;
    let mut follower = cluster.registry_client(1).await?;

    let first = leader
        .record_resident(record_request(3))
        .await?
        .into_inner();
    let retry = follower
        .record_resident(record_request(3))
        .await?
        .into_inner();
    assert_eq!(first, retry, "a retry gets the stored answer");
    let stats = leader.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(stats.recorded, 1);

    // The same id for other content is refused, and changes nothing.
    let revision = cluster.etcd.revision().await?;
    let mut reused = record_request(4);
    reused.request_id = "rec-3".into();
    let status = leader.record_resident(reused).await.expect_err("reused id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&status), ["request_id"]);
    assert_eq!(cluster.etcd.revision().await?, revision);

    // Another request for a recorded NIK is ALREADY_EXISTS.
    let mut again = record_request(3);
    again.request_id = "rec-3-second-visit".into();
    let status = follower
        .record_resident(again)
        .await
        .expect_err("second record");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        leader
            .get_stats(GetStatsRequest {})
            .await?
            .into_inner()
            .recorded,
        1
    );

    // A NIK that disagrees with the declared sex is stored with a warning.
    let mut mismatched = record_request(5);
    if let Some(r) = mismatched.resident.as_mut() {
        r.sex = if r.sex() == Sex::Female {
            Sex::Male
        } else {
            Sex::Female
        } as i32;
    }
    let stored = leader.record_resident(mismatched).await?.into_inner();
    assert_eq!(stored.warnings.len(), 1, "{:?}", stored.warnings);
    assert!(stored.warnings[0].starts_with("NIK_SEX_MISMATCH"));
    Ok(())
}
