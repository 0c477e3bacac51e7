//! The PrintQueue contract, driven by the test as the print leader (it wins
//! the real print election): claims allocate serials FIFO, completions are
//! idempotent, a stale epoch is refused with STALE_EPOCH, and a card nobody
//! can account for becomes IN_DOUBT until an operator resolves it.

use ektp_election::Fence;
use ektp_proto::v1::audit_client::AuditClient;
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::probe::record_and_authorise;
use ektp_tests::residents::resident;
use ektp_tests::retry::lazy_clients;
use tonic::Code;
use tonic_types::StatusExt;

type Result = ektp_tests::Result<()>;

fn proto(fence: &Fence) -> Option<ektp_proto::v1::Fence> {
    Some(ektp_proto::v1::Fence {
        leader_key: fence.key.clone(),
        epoch: fence.epoch.0,
    })
}

fn complete(fence: &Fence, job: &PrintJob, outcome: PrintOutcome) -> CompleteJobRequest {
    CompleteJobRequest {
        fence: proto(fence),
        job_id: job.job_id.clone(),
        card_serial: job.card_serial.clone(),
        outcome: outcome as i32,
        detail: "test".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_completions_in_doubt_cards_and_stale_epochs_follow_the_contract() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    record_and_authorise(&clients, 0..3).await?;
    let (election, fence) = cluster.lead_print().await?;
    let mut queue = PrintQueueClient::new(cluster.registry[1].channel().await?);
    let mut registry = clients[0].clone();

    let claimed = queue
        .claim_jobs(ClaimJobsRequest {
            fence: proto(&fence),
            max_jobs: 2,
            printer: "printer-1".into(),
            first_cards_first: false,
        })
        .await?
        .into_inner()
        .jobs;
    assert_eq!(claimed.len(), 2);
    // One claim is one etcd transaction: more than 32 jobs would exceed etcd's 128 operations.
    let too_many = queue
        .claim_jobs(ClaimJobsRequest {
            fence: proto(&fence),
            max_jobs: 33,
            printer: "printer-1".into(),
            first_cards_first: false,
        })
        .await
        .expect_err("too many");
    assert_eq!(too_many.code(), Code::InvalidArgument);
    let jobs: Vec<PrintJob> = claimed.into_iter().filter_map(|c| c.job).collect();
    assert_eq!(jobs[0].nik, resident(0).nik, "FIFO");
    assert!(
        jobs.iter()
            .all(|j| j.state() == PrintJobState::Printing && j.claim_epoch == fence.epoch.0)
    );
    assert_ne!(jobs[0].card_serial, jobs[1].card_serial);

    // Printed, and a retried completion gets the same answer.
    let done = queue
        .complete_job(complete(&fence, &jobs[0], PrintOutcome::Printed))
        .await?
        .into_inner();
    assert_eq!(done.state(), PrintJobState::Printed);
    let again = queue
        .complete_job(complete(&fence, &jobs[0], PrintOutcome::Printed))
        .await?
        .into_inner();
    assert_eq!(again.state(), PrintJobState::Printed);
    let wrong = queue
        .complete_job(complete(&fence, &jobs[0], PrintOutcome::Spoiled))
        .await
        .expect_err("settled");
    assert_eq!(wrong.code(), Code::FailedPrecondition);

    // The printer cannot tell: IN_DOUBT, listed and counted, until resolved.
    let doubt = queue
        .complete_job(complete(&fence, &jobs[1], PrintOutcome::Unknown))
        .await?
        .into_inner();
    assert_eq!(doubt.state(), PrintJobState::InDoubt);
    let listed = registry
        .list_print_jobs(ListPrintJobsRequest {
            state: PrintJobState::InDoubt as i32,
            page_size: 10,
            page_token: String::new(),
        })
        .await?
        .into_inner()
        .jobs;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        registry
            .get_stats(GetStatsRequest {})
            .await?
            .into_inner()
            .in_doubt,
        1
    );
    let empty_note = registry
        .resolve_in_doubt_job(ResolveInDoubtJobRequest {
            job_id: doubt.job_id.clone(),
            printed: false,
            note: String::new(),
        })
        .await
        .expect_err("a note is required");
    assert_eq!(empty_note.code(), Code::InvalidArgument);
    let requeued = registry
        .resolve_in_doubt_job(ResolveInDoubtJobRequest {
            job_id: doubt.job_id.clone(),
            printed: false,
            note: "no card in the output tray".into(),
        })
        .await?
        .into_inner();
    assert_eq!(requeued.state(), PrintJobState::Queued);
    assert_eq!(
        registry
            .get_stats(GetStatsRequest {})
            .await?
            .into_inner()
            .in_doubt,
        0
    );

    // Claimed again under a new serial; this time the operator finds it printed.
    let reclaimed = queue
        .claim_jobs(ClaimJobsRequest {
            fence: proto(&fence),
            max_jobs: 1,
            printer: "printer-1".into(),
            first_cards_first: false,
        })
        .await?
        .into_inner()
        .jobs;
    let job = reclaimed
        .into_iter()
        .find_map(|c| c.job)
        .ok_or("nothing reclaimed")?;
    assert_eq!(job.job_id, doubt.job_id, "a re-queued job keeps its place");
    assert_ne!(
        job.card_serial, doubt.card_serial,
        "a voided serial is never reused"
    );
    queue
        .complete_job(complete(&fence, &job, PrintOutcome::Unknown))
        .await?;
    let resolved = registry
        .resolve_in_doubt_job(ResolveInDoubtJobRequest {
            job_id: job.job_id.clone(),
            printed: true,
            note: "card found in the tray".into(),
        })
        .await?
        .into_inner();
    assert_eq!(resolved.state(), PrintJobState::Printed);
    let person = registry
        .get_resident(GetResidentRequest {
            nik: job.nik.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(person.active_card_serial, job.card_serial);

    // A new print leader makes the old fence stale.
    let stale_claim = queue
        .claim_jobs(ClaimJobsRequest {
            fence: proto(&fence),
            max_jobs: 1,
            printer: "printer-1".into(),
            first_cards_first: false,
        })
        .await?
        .into_inner()
        .jobs;
    let stale_job = stale_claim
        .into_iter()
        .find_map(|c| c.job)
        .ok_or("nothing claimed")?;
    election.resign().await;
    let (_successor, new_fence) = cluster.lead_print().await?;
    assert!(new_fence.epoch > fence.epoch);
    let refused = queue
        .complete_job(complete(&fence, &stale_job, PrintOutcome::Printed))
        .await
        .expect_err("stale");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("STALE_EPOCH".into())
    );
    let current = registry
        .get_print_job(GetPrintJobRequest {
            job_id: stale_job.job_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(
        current.state(),
        PrintJobState::Printing,
        "nothing changed by the stale completion"
    );
    let settled = queue
        .complete_job(complete(&new_fence, &stale_job, PrintOutcome::NotPrinted))
        .await?
        .into_inner();
    assert_eq!(
        settled.state(),
        PrintJobState::Queued,
        "the new leader settles the old epoch's card"
    );
    Ok(())
}

fn completion(job: &PrintJob, outcome: PrintOutcome) -> JobCompletion {
    JobCompletion {
        job_id: job.job_id.clone(),
        card_serial: job.card_serial.clone(),
        outcome: outcome as i32,
        detail: "test".into(),
    }
}

async fn claim(
    queue: &mut PrintQueueClient<tonic::transport::Channel>,
    fence: &Fence,
    max_jobs: u32,
) -> ektp_tests::Result<Vec<PrintJob>> {
    let claimed = queue
        .claim_jobs(ClaimJobsRequest {
            fence: proto(fence),
            max_jobs,
            printer: "printer-1".into(),
            first_cards_first: false,
        })
        .await?
        .into_inner()
        .jobs;
    Ok(claimed.into_iter().filter_map(|c| c.job).collect())
}

fn codes(results: &[JobCompletionResult]) -> Vec<Code> {
    results.iter().map(|r| Code::from(r.code)).collect()
}

fn states(results: &[JobCompletionResult]) -> Vec<Option<PrintJobState>> {
    results
        .iter()
        .map(|r| r.job.as_ref().map(PrintJob::state))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_completions_settle_each_job_are_idempotent_and_refuse_a_stale_epoch() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    // 4 for the mixed call, 40 for one call spanning several transactions, 1 left stale.
    record_and_authorise(&clients, 0..45).await?;
    let (election, fence) = cluster.lead_print().await?;
    // Through the follower: the call is forwarded to the leader.
    let mut queue = PrintQueueClient::new(cluster.registry[1].channel().await?);
    let mut registry = clients[0].clone();
    let started = std::time::SystemTime::now();

    // Mixed outcomes in one call.
    let jobs = claim(&mut queue, &fence, 4).await?;
    let mut wrong = completion(&jobs[3], PrintOutcome::Unknown);
    wrong.card_serial = jobs[0].card_serial.clone();
    let mixed = CompleteJobsRequest {
        fence: proto(&fence),
        completions: vec![
            completion(&jobs[0], PrintOutcome::Printed),
            completion(&jobs[1], PrintOutcome::Spoiled),
            completion(&jobs[2], PrintOutcome::NotPrinted),
            completion(&jobs[3], PrintOutcome::Unknown),
        ],
    };
    let results = queue
        .complete_jobs(mixed.clone())
        .await?
        .into_inner()
        .results;
    assert_eq!(codes(&results), vec![Code::Ok; 4]);
    assert_eq!(
        states(&results),
        vec![
            Some(PrintJobState::Printed),
            Some(PrintJobState::Queued),
            Some(PrintJobState::Queued),
            Some(PrintJobState::InDoubt),
        ]
    );
    assert_eq!(
        results[0].job_id, jobs[0].job_id,
        "results in request order"
    );

    // A retried call gets the same answers and changes nothing.
    let stats_before = registry.get_stats(GetStatsRequest {}).await?.into_inner();
    let retried = queue.complete_jobs(mixed).await?.into_inner().results;
    assert_eq!(codes(&retried), vec![Code::Ok; 4]);
    assert_eq!(states(&retried), states(&results));
    assert_eq!(
        registry.get_stats(GetStatsRequest {}).await?.into_inner(),
        stats_before,
        "a retry settles nothing twice"
    );

    // A completion that contradicts what was recorded, and one naming a
    // serial of another job, are refused each on its own.
    let contradicting = queue
        .complete_jobs(CompleteJobsRequest {
            fence: proto(&fence),
            completions: vec![completion(&jobs[0], PrintOutcome::Spoiled), wrong],
        })
        .await?
        .into_inner()
        .results;
    assert_eq!(
        codes(&contradicting),
        vec![Code::FailedPrecondition, Code::FailedPrecondition]
    );
    assert!(contradicting.iter().all(|r| r.job.is_none()));

    // The same job twice in one call is bad input.
    let twice = queue
        .complete_jobs(CompleteJobsRequest {
            fence: proto(&fence),
            completions: vec![
                completion(&jobs[0], PrintOutcome::Printed),
                completion(&jobs[0], PrintOutcome::Printed),
            ],
        })
        .await
        .expect_err("duplicate job");
    assert_eq!(twice.code(), Code::InvalidArgument);

    // One entry per job in the audit trail, with each job's own outcome.
    let mut audit = AuditClient::new(cluster.registry[0].channel().await?);
    let entries = audit
        .list_audit_entries(ListAuditEntriesRequest {
            since: Some(started.into()),
            page_size: 1_000,
            ..ListAuditEntriesRequest::default()
        })
        .await?
        .into_inner()
        .entries;
    let batched: Vec<&AuditEntry> = entries
        .iter()
        .filter(|e| e.method == "/ektp.v1.PrintQueue/CompleteJobs")
        .collect();
    assert_eq!(batched.len(), 4 + 4 + 2, "one entry per job per call");
    assert!(
        batched
            .iter()
            .any(|e| e.nik == jobs[0].nik && e.outcome == "FAILED_PRECONDITION")
    );

    // Forty completions (40 PRINTED cards are more than one etcd transaction holds).
    let mut claimed = claim(&mut queue, &fence, 32).await?;
    claimed.extend(claim(&mut queue, &fence, 32).await?);
    // The re-queued jobs[1] and jobs[2] come first (FIFO) and are left, with
    // the last one claimed, for the stale leader below.
    let (mut many, mut stale_jobs): (Vec<PrintJob>, Vec<PrintJob>) = claimed
        .into_iter()
        .partition(|j| !jobs.iter().any(|k| k.job_id == j.job_id));
    stale_jobs.extend(many.split_off(40));
    assert_eq!(many.len(), 40);
    let printed_before = registry
        .get_stats(GetStatsRequest {})
        .await?
        .into_inner()
        .printed;
    let all = queue
        .complete_jobs(CompleteJobsRequest {
            fence: proto(&fence),
            completions: many
                .iter()
                .map(|j| completion(j, PrintOutcome::Printed))
                .collect(),
        })
        .await?
        .into_inner()
        .results;
    assert_eq!(codes(&all), vec![Code::Ok; 40]);
    assert_eq!(
        registry
            .get_stats(GetStatsRequest {})
            .await?
            .into_inner()
            .printed,
        printed_before + 40
    );

    // A new print leader makes the old fence stale: the whole call is refused.
    assert_eq!(stale_jobs.len(), 3);
    election.resign().await;
    let (_successor, new_fence) = cluster.lead_print().await?;
    let stale = CompleteJobsRequest {
        fence: proto(&fence),
        completions: stale_jobs
            .iter()
            .map(|j| completion(j, PrintOutcome::Printed))
            .collect(),
    };
    let refused = queue.complete_jobs(stale).await.expect_err("stale");
    assert_eq!(refused.code(), Code::FailedPrecondition);
    assert_eq!(
        refused.get_details_error_info().map(|i| i.reason),
        Some("STALE_EPOCH".into())
    );
    for job in &stale_jobs {
        let current = registry
            .get_print_job(GetPrintJobRequest {
                job_id: job.job_id.clone(),
            })
            .await?
            .into_inner();
        assert_eq!(current.state(), PrintJobState::Printing, "nothing changed");
    }
    let settled = queue
        .complete_jobs(CompleteJobsRequest {
            fence: proto(&new_fence),
            completions: stale_jobs
                .iter()
                .map(|j| completion(j, PrintOutcome::NotPrinted))
                .collect(),
        })
        .await?
        .into_inner()
        .results;
    assert!(
        states(&settled)
            .iter()
            .all(|s| *s == Some(PrintJobState::Queued))
    );
    Ok(())
}
