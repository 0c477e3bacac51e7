//! The `ektp.v1.PrintQueue` service, called by the print leader.

use super::Forwarder;
use super::audited::{self, Auditor};
use crate::keys::Keys;
use crate::validate;
use crate::writer::{PrintCall, Writer};
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use ektp_proto::v1::print_queue_server::PrintQueue;
use ektp_proto::v1::*;
use ektp_server::{AuditContext, Violations};
use tonic::{Request, Response, Status};

/// Most jobs one claim may take: a claim is one etcd transaction with four
/// operations per job, and etcd refuses more than 128 (its default).
const MAX_CLAIM: u32 = 32;

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
        let carry = ctx.clone();
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
                |ch, mut r| async move {
                    carry.carry(&mut r);
                    PrintQueueClient::new(ch).claim_jobs(r).await
                },
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
        let carry = ctx.clone();
        self.forwarder
            .write(
                request,
                |r| {
                    let work = async move {
                        let mut v = Violations::new();
                        let fence = validate::print_fence(&mut v, r.fence.as_ref(), &election);
                        let job_id = crate::ids::JobId::parse(&r.job_id);
                        v.require(job_id.is_some(), "job_id", "a job id has 12 digits");
                        let serial = validate::card_serial(&mut v, "card_serial", &r.card_serial);
                        let outcome = PrintOutcome::try_from(r.outcome)
                            .ok()
                            .filter(|o| *o != PrintOutcome::Unspecified);
                        v.require(
                            outcome.is_some(),
                            "outcome",
                            "must be PRINTED, SPOILED, NOT_PRINTED or UNKNOWN",
                        );
                        v.require(
                            r.detail.chars().count() <= 500,
                            "detail",
                            "at most 500 characters",
                        );
                        v.into_result()?;
                        let (Some(fence), Some(job_id), Some(serial), Some(outcome)) =
                            (fence, job_id, serial, outcome)
                        else {
                            return Err(Status::invalid_argument("invalid request"));
                        };
                        // The printer name is already on the job; completions only need the fence.
                        let call = PrintCall {
                            fence,
                            printer: String::new(),
                            first_cards_first: false,
                        };
                        Ok(writer
                            .complete(call, job_id, serial, outcome, r.detail)
                            .await?)
                    };
                    self.audit.about_job(ctx, &job_id, work)
                },
                |ch, mut r| async move {
                    carry.carry(&mut r);
                    PrintQueueClient::new(ch).complete_job(r).await
                },
            )
            .await
    }
}
