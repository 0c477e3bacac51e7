//! The audit trail: every call about one person leaves exactly one entry per
//! person — caller, role, method, NIK, purpose, time, outcome and the replica
//! that executed it — written before the answer, readable by auditors through
//! any replica, filtered and paged, and dropped after the audit retention.

use ektp_proto::v1::audit_client::AuditClient;
use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::residents::{record_request, resident};
use ektp_tests::wait::until;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

type Result = ektp_tests::Result<()>;

const VERIFY_RESIDENTS: &str = "/ektp.v1.Registry/VerifyResidents";
const RECORD_RESIDENT: &str = "/ektp.v1.Registry/RecordResident";
const GET_RESIDENT: &str = "/ektp.v1.Registry/GetResident";

/// A request stating `purpose` in `x-ektp-purpose`.
fn with_purpose<T>(message: T, purpose: &'static str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-ektp-purpose",
        tonic::metadata::MetadataValue::from_static(purpose),
    );
    request
}

async fn audit_client(cluster: &Cluster, i: usize) -> ektp_tests::Result<AuditClient<Channel>> {
    let node = cluster.registry.get(i).ok_or("no such registry replica")?;
    Ok(AuditClient::new(node.channel().await?))
}

/// Every entry `request` selects, following the page tokens; also how many pages.
async fn all_entries(
    client: &mut AuditClient<Channel>,
    mut request: ListAuditEntriesRequest,
) -> ektp_tests::Result<(Vec<AuditEntry>, usize)> {
    let mut entries = Vec::new();
    let mut pages = 0;
    loop {
        let page = client
            .list_audit_entries(request.clone())
            .await?
            .into_inner();
        pages += 1;
        entries.extend(page.entries);
        if page.next_page_token.is_empty() {
            return Ok((entries, pages));
        }
        request.page_token = page.next_page_token;
    }
}

fn since(time: SystemTime) -> ListAuditEntriesRequest {
    ListAuditEntriesRequest {
        since: Some(time.into()),
        page_size: 1_000,
        ..ListAuditEntriesRequest::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_streamed_verification_is_audited_once_with_its_method_nik_and_outcome() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let mut registry = cluster.registry_client(0).await?;
    const RECORDED: u32 = 100;
    for i in 0..RECORDED {
        registry.record_resident(record_request(i)).await?;
    }
    let start = SystemTime::now();

    // 300 claims over the recorded residents, plus one malformed claim
    // (answered with its error, identifying no one: not audited).
    let mut claims: Vec<VerifyResidentRequest> = (0..300)
        .map(|i| VerifyResidentRequest {
            nik: resident(i % RECORDED).nik,
            ..VerifyResidentRequest::default()
        })
        .collect();
    claims.insert(
        150,
        VerifyResidentRequest {
            nik: "not a nik".into(),
            ..VerifyResidentRequest::default()
        },
    );
    let request = with_purpose(tokio_stream::iter(claims), "bank account opening");
    let answers: Vec<_> = registry
        .verify_residents(request)
        .await?
        .into_inner()
        .collect::<std::result::Result<_, _>>()
        .await?;
    assert_eq!(answers.len(), 301);
    assert_eq!(answers.iter().filter(|a| a.found).count(), 300);

    let mut audit = audit_client(&cluster, 1).await?;
    let (entries, _) = all_entries(&mut audit, since(start)).await?;
    let verifications: Vec<_> = entries
        .iter()
        .filter(|e| e.method == VERIFY_RESIDENTS)
        .collect();
    assert_eq!(verifications.len(), 300, "one entry per verification");
    let mut per_nik: HashMap<&str, usize> = HashMap::new();
    for entry in &verifications {
        *per_nik.entry(entry.nik.as_str()).or_default() += 1;
        assert_eq!(entry.outcome, "OK");
        assert_eq!(entry.purpose, "bank account opening");
        assert_eq!(entry.caller, "anonymous");
        assert_eq!(entry.role, "verifier");
        assert_eq!(
            entry.node, cluster.registry[0].address,
            "written by the replica that answered"
        );
        assert!(entry.time.is_some());
    }
    assert_eq!(per_nik.len(), RECORDED as usize);
    assert!(per_nik.values().all(|n| *n == 3), "{per_nik:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_forwarded_by_the_follower_is_audited_once_by_the_leader() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(10))
        .await?;
    let follower = 1 - leader;
    let start = SystemTime::now();

    let mut client = cluster.registry_client(follower).await?;
    let request = with_purpose(record_request(7), "perekaman desk 3");
    client.record_resident(request).await?;

    // A rejected request identifies no one and leaves etcd as it was.
    let revision = cluster.etcd.revision().await?;
    let mut bad = record_request(8);
    if let Some(r) = bad.resident.as_mut() {
        r.nik = "35270112".into();
    }
    let status = client
        .record_resident(bad)
        .await
        .expect_err("malformed nik");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(cluster.etcd.revision().await?, revision);

    let nik = resident(7).nik;
    let mut audit = audit_client(&cluster, follower).await?;
    let (entries, _) = all_entries(&mut audit, since(start)).await?;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.method, RECORD_RESIDENT);
    assert_eq!(entry.nik, nik);
    assert_eq!(entry.outcome, "OK");
    assert_eq!(
        entry.purpose, "perekaman desk 3",
        "the follower carries the purpose"
    );
    assert_eq!(
        entry.node, cluster.registry[leader].address,
        "the leader wrote it"
    );

    // A second record of the NIK through the follower: ALREADY_EXISTS, audited as such.
    let mut again = record_request(7);
    again.request_id = "rec-7-again".into();
    let status = client
        .record_resident(again)
        .await
        .expect_err("recorded twice");
    assert_eq!(status.code(), Code::AlreadyExists);
    let (entries, _) = all_entries(&mut audit, since(start)).await?;
    let outcomes: Vec<_> = entries.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["OK", "ALREADY_EXISTS"]);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_are_filtered_by_nik_caller_and_time_and_paged_on_any_replica() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let mut registry = cluster.registry_client(0).await?;
    for i in 0..2 {
        registry.record_resident(record_request(i)).await?;
    }
    let (a, b, unknown) = (resident(0).nik, resident(1).nik, resident(2).nik);
    let start = SystemTime::now();
    for _ in 0..5 {
        let request = with_purpose(GetResidentRequest { nik: a.clone() }, "complaint 17");
        registry.get_resident(request).await?;
    }
    let middle = SystemTime::now();
    for _ in 0..3 {
        registry
            .get_resident(GetResidentRequest { nik: b.clone() })
            .await?;
    }
    let status = registry
        .get_resident(GetResidentRequest {
            nik: unknown.clone(),
        })
        .await
        .expect_err("not recorded");
    assert_eq!(status.code(), Code::NotFound);
    let status = registry
        .get_resident(GetResidentRequest { nik: "123".into() })
        .await
        .expect_err("malformed");
    assert_eq!(status.code(), Code::InvalidArgument);

    for replica in [0, 1] {
        let mut audit = audit_client(&cluster, replica).await?;
        let (all, _) = all_entries(&mut audit, since(start)).await?;
        assert_eq!(all.len(), 9, "the malformed call is not audited: {all:?}");
        assert!(all.iter().all(|e| e.method == GET_RESIDENT));
        let times: Vec<_> = all
            .iter()
            .map(|e| e.time.map(|t| (t.seconds, t.nanos)))
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "oldest first");

        let by_nik = |nik: &str| ListAuditEntriesRequest {
            nik: nik.to_owned(),
            ..since(start)
        };
        let (of_a, _) = all_entries(&mut audit, by_nik(&a)).await?;
        assert_eq!(of_a.len(), 5);
        assert!(of_a.iter().all(|e| e.purpose == "complaint 17"));
        let (of_b, _) = all_entries(&mut audit, by_nik(&b)).await?;
        assert!(of_b.len() == 3 && of_b.iter().all(|e| e.purpose == "unstated"));
        let (of_unknown, _) = all_entries(&mut audit, by_nik(&unknown)).await?;
        assert_eq!(of_unknown.len(), 1);
        assert_eq!(of_unknown[0].outcome, "NOT_FOUND");

        let by_caller = |caller: &str| ListAuditEntriesRequest {
            caller: caller.to_owned(),
            ..since(start)
        };
        assert_eq!(
            all_entries(&mut audit, by_caller("anonymous"))
                .await?
                .0
                .len(),
            9
        );
        assert!(
            all_entries(&mut audit, by_caller("nobody"))
                .await?
                .0
                .is_empty()
        );

        let (later, _) = all_entries(&mut audit, since(middle)).await?;
        assert_eq!(later.len(), 4);
        let before = ListAuditEntriesRequest {
            until: Some(middle.into()),
            ..since(start)
        };
        assert_eq!(all_entries(&mut audit, before).await?.0.len(), 5);

        let paged = ListAuditEntriesRequest {
            page_size: 2,
            ..since(start)
        };
        let (pages_of_two, pages) = all_entries(&mut audit, paged).await?;
        assert_eq!(pages_of_two, all, "paging yields the same entries in order");
        assert!(pages >= 5, "{pages} pages");
    }

    let mut audit = audit_client(&cluster, 0).await?;
    let bad = ListAuditEntriesRequest {
        page_token: "not a token".into(),
        ..ListAuditEntriesRequest::default()
    };
    let status = audit.list_audit_entries(bad).await.expect_err("bad token");
    assert_eq!(status.code(), Code::InvalidArgument);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_entries_past_their_retention_are_removed() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::registry_only(dir.path())?;
    spec.registry_args = ["--audit-retention-secs", "2", "--retention-sweep-secs", "1"]
        .map(String::from)
        .to_vec();
    let cluster = Cluster::start(spec).await?;
    let mut registry = cluster.registry_client(0).await?;
    registry.record_resident(record_request(0)).await?;
    let nik = resident(0).nik;
    registry
        .get_resident(GetResidentRequest { nik: nik.clone() })
        .await?;

    let mut audit = audit_client(&cluster, 0).await?;
    let of_nik = ListAuditEntriesRequest {
        nik: nik.clone(),
        ..ListAuditEntriesRequest::default()
    };
    let (entries, _) = all_entries(&mut audit, of_nik.clone()).await?;
    assert!(!entries.is_empty(), "committed before the answer");

    until(
        "the audit entries to expire",
        Duration::from_secs(20),
        || {
            let (mut audit, of_nik) = (audit.clone(), of_nik.clone());
            async move {
                let (entries, _) = all_entries(&mut audit, of_nik).await.ok()?;
                entries.is_empty().then_some(())
            }
        },
    )
    .await?;
    let mut etcd = cluster.etcd.client().await?;
    let prefix = format!("/ektp/{}/audit/", cluster.office);
    let left = etcd
        .get(
            prefix.as_str(),
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await?
        .count();
    assert_eq!(left, 0, "no audit batch is left in etcd");
    Ok(())
}
