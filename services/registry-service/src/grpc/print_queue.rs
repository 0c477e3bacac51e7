//! The `ektp.v1.PrintQueue` service, called by the print leader.

use super::Forwarder;
use super::audited::{self, Auditor};
use crate::keys::Keys;
use crate::validate;
use crate::writer::{Completion, PrintCall, Writer};
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use ektp_proto::v1::print_queue_server::PrintQueue;
use ektp_proto::v1::*;
use ektp_server::{AuditContext, Violations};
use tonic::{Request, Response, Status};

/// Most jobs one claim may take: a claim is one etcd transaction with four
/// operations per job, and etcd refuses more than 128 (its default).
const MAX_CLAIM: u32 = 32;

/// Most completions one CompleteJobs call may carry (settled in chunks that
/// fit etcd's 128 operations per transaction).
const MAX_COMPLETE: usize = 128;

/// The PrintQueue API over the writer.
pub struct PrintQueueApi {
    pub writer: Writer,
    pub forwarder: Forwarder,
    pub keys: Keys,
    pub audit: Auditor,
}

impl PrintQueueApi {
    fn printer(v: &mut Violations, printer: &str) -> String {
        let ok = (1..=64).contains(&printer.len())
            && printer
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        v.require(ok, "printer", "1-64 characters of A-Z a-z 0-9 . _ -");
        printer.to_owned()
    }

    /// One completion's fields, checked under `prefix` (`` or `completions[i].`).
    fn completion(
        v: &mut Violations,
        prefix: &str,
        (job_id, serial, outcome, detail): (&str, &str, i32, String),
    ) -> Option<Completion> {
        let id = crate::ids::JobId::parse(job_id);
        v.require(
            id.is_some(),
            &format!("{prefix}job_id"),
            "a job id has 12 digits",
        );
        let serial = validate::card_serial(v, &format!("{prefix}card_serial"), serial);
        let outcome = PrintOutcome::try_from(outcome)
            .ok()
            .filter(|o| *o != PrintOutcome::Unspecified);
        v.require(
            outcome.is_some(),
            &format!("{prefix}outcome"),
            "must be PRINTED, SPOILED, NOT_PRINTED or UNKNOWN",
        );
        v.require(
            detail.chars().count() <= 500,
            &format!("{prefix}detail"),
            "at most 500 characters",
        );
        Some(Completion {
            job_id: id?,
            serial: serial?,
            outcome: outcome?,
            detail,
        })
    }
}

/// A print-queue call needs only the fence: the printer is already on the job.
fn completing(fence: ektp_election::Fence) -> PrintCall {
    PrintCall {
        fence,
        printer: String::new(),
        first_cards_first: false,
    }
}

#[tonic::async_trait]
impl PrintQueue for PrintQueueApi {
    async fn claim_jobs(
        &self,
        request: Request<ClaimJobsRequest>,
    ) -> Result<Response<ClaimJobsResponse>, Status> {
        let ctx = AuditContext::of(&request, audited::CLAIM_JOBS)?;
        let writer = self.writer.clone();
        let election = self.keys.print_election();
        // One entry per job handed over (its resident's data goes to the print node).
        let niks = |claimed: &ClaimJobsResponse| {
            let jobs = claimed.jobs.iter().filter_map(|c| c.job.as_ref());
            jobs.map(|job| job.nik.clone()).collect()
        };
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let mut v = Violations::new();
                        let fence = validate::print_fence(&mut v, r.fence.as_ref(), &election);
                        v.require(
                            (1..=MAX_CLAIM).contains(&r.max_jobs),
                            "max_jobs",
                            "must be 1-100",
                        );
                        let printer = Self::printer(&mut v, &r.printer);
                        v.into_result()?;
                        let fence =
                            fence.ok_or_else(|| Status::invalid_argument("invalid fence"))?;
                        let claimed = writer
                            .claim(
                                PrintCall {
                                    fence,
                                    printer,
                                    first_cards_first: r.first_cards_first,
                                },
                                r.max_jobs,
                            )
                            .await?;
                        Ok(ClaimJobsResponse {
                            jobs: claimed
                                .into_iter()
                                .map(|c| ClaimedJob {
                                    job: Some(c.job),
                                    resident: Some(c.resident),
                                    material: Some(c.material),
                                })
                                .collect(),
                        })
                    };
                    self.audit.about_each(ctx, work, niks)
                },
                |ch, r| async move { PrintQueueClient::new(ch).claim_jobs(r).await },
            )
            .await
    }

    async fn complete_job(
        &self,
        request: Request<CompleteJobRequest>,
    ) -> Result<Response<PrintJob>, Status> {
        let ctx = AuditContext::of(&request, audited::COMPLETE_JOB)?;
        let writer = self.writer.clone();
        let election = self.keys.print_election();
        let job_id = request.get_ref().job_id.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let mut v = Violations::new();
                        let fence = validate::print_fence(&mut v, r.fence.as_ref(), &election);
                        let done = Self::completion(
                            &mut v,
                            "",
                            (&r.job_id, &r.card_serial, r.outcome, r.detail),
                        );
                        v.into_result()?;
                        let (Some(fence), Some(done)) = (fence, done) else {
                            return Err(Status::invalid_argument("invalid request"));
                        };
                        Ok(writer
                            .complete(
                                completing(fence),
                                done.job_id,
                                done.serial,
                                done.outcome,
                                done.detail,
                            )
                            .await?)
                    };
                    self.audit.about_job(ctx, &job_id, work)
                },
                |ch, r| async move { PrintQueueClient::new(ch).complete_job(r).await },
            )
            .await
    }

    async fn complete_jobs(
        &self,
        request: Request<CompleteJobsRequest>,
    ) -> Result<Response<CompleteJobsResponse>, Status> {
        let ctx = AuditContext::of(&request, audited::COMPLETE_JOBS)?;
        let writer = self.writer.clone();
        let election = self.keys.print_election();
        let job_ids: Vec<String> = (request.get_ref().completions.iter())
            .map(|c| c.job_id.clone())
            .collect();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let mut v = Violations::new();
                        let fence = validate::print_fence(&mut v, r.fence.as_ref(), &election);
                        v.require(
                            (1..=MAX_COMPLETE).contains(&r.completions.len()),
                            "completions",
                            "1-128 completions",
                        );
                        let mut seen = std::collections::HashSet::new();
                        let mut done = Vec::with_capacity(r.completions.len());
                        for (i, c) in r.completions.into_iter().enumerate() {
                            let prefix = format!("completions[{i}].");
                            v.require(
                                seen.insert(c.job_id.clone()),
                                &format!("{prefix}job_id"),
                                "each job at most once per call",
                            );
                            let completion = (&*c.job_id, &*c.card_serial, c.outcome, c.detail);
                            done.extend(Self::completion(&mut v, &prefix, completion));
                        }
                        v.into_result()?;
                        let fence =
                            fence.ok_or_else(|| Status::invalid_argument("invalid fence"))?;
                        let ids: Vec<String> = done.iter().map(|d| d.job_id.to_string()).collect();
                        let settled = writer.complete_many(completing(fence), done).await?;
                        let mut audit = Vec::with_capacity(settled.len());
                        let mut results = Vec::with_capacity(settled.len());
                        for (job_id, settled) in ids.into_iter().zip(settled) {
                            results.push(match settled {
                                Ok(job) => {
                                    let nik = Some(job.nik.clone());
                                    audit.push((job_id.clone(), nik, tonic::Code::Ok));
                                    JobCompletionResult {
                                        job_id,
                                        code: tonic::Code::Ok as i32,
                                        message: String::new(),
                                        job: Some(job),
                                    }
                                }
                                Err(e) => {
                                    let status = Status::from(e);
                                    audit.push((job_id.clone(), None, status.code()));
                                    JobCompletionResult {
                                        job_id,
                                        code: status.code() as i32,
                                        message: status.message().to_owned(),
                                        job: None,
                                    }
                                }
                            });
                        }
                        Ok((CompleteJobsResponse { results }, audit))
                    };
                    self.audit.about_jobs(ctx, &job_ids, work)
                },
                |ch, r| async move { PrintQueueClient::new(ch).complete_jobs(r).await },
            )
            .await
    }
}
