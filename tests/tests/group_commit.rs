//! The registry leader group-commits concurrent writes: many RecordResident
//! and AuthorizePrint calls arriving together, duplicates of one NIK among
//! them, each get exactly the answer they would get one after the other, one
//! record is stored per NIK, and the leader's batch-size histogram shows that
//! batches of more than one change were committed.

use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{sample, scrape};
use ektp_tests::residents::{authorize_request, record_request, resident};
use std::time::Duration;
use tokio::task::JoinSet;
use tonic::Code;
use tonic::transport::Channel;

type Result = ektp_tests::Result<()>;

/// Distinct residents recorded in the burst.
const RESIDENTS: u32 = 60;

/// Sends every request at once; answers in the order of `requests`.
async fn burst(
    client: &RegistryClient<Channel>,
    requests: Vec<RecordResidentRequest>,
) -> ektp_tests::Result<Vec<std::result::Result<Resident, Code>>> {
    let mut calls = JoinSet::new();
    for (i, request) in requests.into_iter().enumerate() {
        let mut client = client.clone();
        calls.spawn(async move {
            let answer = client.record_resident(request).await;
            (i, answer.map(|r| r.into_inner()).map_err(|s| s.code()))
        });
    }
    let mut answers = Vec::new();
    while let Some(done) = calls.join_next().await {
        answers.push(done?);
    }
    answers.sort_by_key(|(i, _)| *i);
    Ok(answers.into_iter().map(|(_, answer)| answer).collect())
}

/// A record of resident `i` under another request id.
fn record_under(id: &str, i: u32) -> RecordResidentRequest {
    RecordResidentRequest {
        request_id: id.into(),
        ..record_request(i)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_records_with_duplicates_are_answered_as_if_one_after_another() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(30))
        .await?;
    let client = cluster.registry_client(leader).await?;

    // Resident 0 three times under its own id and three times under others;
    // id `rec-1` also for resident 100 (another request under a used id).
    let mut requests: Vec<_> = (0..RESIDENTS).map(record_request).collect();
    requests.extend([record_request(0), record_request(0)]);
    requests.extend((0..3).map(|k| record_under(&format!("rec-0-other-{k}"), 0)));
    requests.push(record_under("rec-1", 100));
    let answers = burst(&client, requests.clone()).await?;

    // Of all requests for resident 0, one request id wins: each of its
    // requests gets the same stored resident, every other id ALREADY_EXISTS.
    let for_zero: Vec<_> = requests
        .iter()
        .zip(&answers)
        .filter(|(r, _)| r.resident.as_ref().map(|r| &r.nik) == Some(&resident(0).nik))
        .collect();
    assert_eq!(for_zero.len(), 6);
    let winners: Vec<_> = for_zero.iter().filter(|(_, a)| a.is_ok()).collect();
    let winning_id = &winners[0].0.request_id;
    assert!(
        winners.iter().all(|(r, _)| &r.request_id == winning_id),
        "one request id wins resident 0"
    );
    let stored: Vec<_> = winners
        .iter()
        .filter_map(|(_, a)| a.as_ref().ok())
        .collect();
    assert!(
        stored.windows(2).all(|w| w[0] == w[1]),
        "retries get one record"
    );
    for (request, answer) in &for_zero {
        if &request.request_id != winning_id {
            assert_eq!(answer.as_ref().err(), Some(&Code::AlreadyExists));
        }
    }

    // `rec-1` was used for two residents: one stored, the other refused.
    let one = &answers[1];
    let hundred = &answers[answers.len() - 1];
    assert!(
        matches!(
            (one, hundred),
            (Ok(_), Err(Code::InvalidArgument)) | (Err(Code::InvalidArgument), Ok(_))
        ),
        "a reused request id: {one:?} / {hundred:?}"
    );

    // Every other resident recorded once; nothing stored twice or for the loser.
    for (i, answer) in answers.iter().enumerate().take(RESIDENTS as usize).skip(2) {
        assert!(answer.is_ok(), "resident {i}: {answer:?}");
    }
    let mut reader = client.clone();
    let stats = reader.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(stats.recorded, u64::from(RESIDENTS), "one record per nik");
    let loser = if one.is_ok() { 100 } else { 1 };
    let missing = reader
        .get_resident(GetResidentRequest {
            nik: resident(loser).nik,
        })
        .await;
    assert_eq!(missing.err().map(|s| s.code()), Some(Code::NotFound));

    // Authorisations arriving together, resident 2 twice: all PRINT_READY,
    // one job each.
    let mut calls = JoinSet::new();
    for i in (2..RESIDENTS).chain([2]) {
        let mut client = client.clone();
        calls.spawn(async move { client.authorize_print(authorize_request(i)).await });
    }
    while let Some(done) = calls.join_next().await {
        assert_eq!(done??.into_inner().status(), ResidentStatus::PrintReady);
    }
    let stats = reader.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(stats.print_ready, u64::from(RESIDENTS - 2));
    assert_eq!(
        stats.queued,
        u64::from(RESIDENTS - 2),
        "one job per resident"
    );

    // Batches of more than one change were committed.
    let metrics = scrape(cluster.registry[leader].metrics_port).await?;
    let count = sample(&metrics, "ektp_registry_commit_batch_size_count").unwrap_or(0.0);
    let sum = sample(&metrics, "ektp_registry_commit_batch_size_sum").unwrap_or(0.0);
    assert!(count > 0.0 && sum > count, "batches {count}, changes {sum}");
    Ok(())
}
