//! Which registry calls are audited, and the one helper every audited
//! handler answers through: run the call, record its entries (one per
//! person it concerned, with its outcome), then answer — never the answer
//! without the entries ([`ektp_server::AuditLog::answer`]).
//!
//! Writes forwarded by a follower are audited by the leader that executes
//! them: the audit runs inside the forwarder's local closure, which only the
//! leader runs; the follower only carries the stated purpose along.

use crate::ids::JobId;
use crate::store::Store;
use ektp_proto::v1::PrintJob;
use ektp_server::{AuditContext, AuditLog, AuditedMethod};
use std::future::Future;
use tonic::{Code, Status};

/// An audited registry method.
const fn method(path: &'static str) -> AuditedMethod {
    AuditedMethod {
        path,
        implied_purpose: None,
    }
}

/// A print-node method: purpose `printing` unless another is stated.
const fn printing(path: &'static str) -> AuditedMethod {
    AuditedMethod {
        path,
        implied_purpose: Some("printing"),
    }
}

pub const RECORD_RESIDENT: AuditedMethod = method("/ektp.v1.Registry/RecordResident");
pub const GET_RESIDENT: AuditedMethod = method("/ektp.v1.Registry/GetResident");
pub const LIST_RESIDENTS: AuditedMethod = method("/ektp.v1.Registry/ListResidents");
pub const AUTHORIZE_PRINT: AuditedMethod = method("/ektp.v1.Registry/AuthorizePrint");
pub const REQUEST_REPRINT: AuditedMethod = method("/ektp.v1.Registry/RequestReprint");
pub const GET_PRINT_JOB: AuditedMethod = method("/ektp.v1.Registry/GetPrintJob");
pub const CANCEL_PRINT_JOB: AuditedMethod = method("/ektp.v1.Registry/CancelPrintJob");
pub const RESOLVE_IN_DOUBT_JOB: AuditedMethod = method("/ektp.v1.Registry/ResolveInDoubtJob");
pub const RECORD_COLLECTION: AuditedMethod = method("/ektp.v1.Registry/RecordCollection");
pub const VERIFY_RESIDENT: AuditedMethod = method("/ektp.v1.Registry/VerifyResident");
pub const VERIFY_RESIDENTS: AuditedMethod = method("/ektp.v1.Registry/VerifyResidents");
pub const CLAIM_JOBS: AuditedMethod = printing("/ektp.v1.PrintQueue/ClaimJobs");
pub const COMPLETE_JOB: AuditedMethod = printing("/ektp.v1.PrintQueue/CompleteJob");
pub const COMPLETE_JOBS: AuditedMethod = printing("/ektp.v1.PrintQueue/CompleteJobs");

/// What a call did to one print job, for its audit entry: the job id, its
/// NIK when the answer carries it, and the outcome.
pub type JobOutcome = (String, Option<String>, Code);

/// Audits registry calls into the node's audit log.
#[derive(Clone)]
pub struct Auditor {
    pub log: AuditLog,
    pub store: Store,
}

impl Auditor {
    /// Runs `work`, a call about the person `nik` (as the request named it).
    pub async fn about<R>(
        &self,
        ctx: AuditContext,
        nik: &str,
        work: impl Future<Output = Result<R, Status>>,
    ) -> Result<R, Status> {
        let result = work.await;
        self.log.answer(&ctx, result, [nik.trim().to_owned()]).await
    }

    /// Runs `work`, a write about the person `nik` whose writer commits the
    /// call's audit entry in the change's own transaction: an `Ok(answer)`
    /// already has its entry and is returned as it is; an `Err` (refused
    /// before the writer, or the writer's transaction failed, so no entry
    /// committed) is audited here, as [`Self::about`].
    pub async fn about_written<R>(
        &self,
        ctx: AuditContext,
        nik: &str,
        work: impl Future<Output = Result<Result<R, Status>, Status>>,
    ) -> Result<R, Status> {
        match work.await {
            Ok(answer) => answer,
            Err(status) => {
                let niks = [nik.trim().to_owned()];
                self.log.answer(&ctx, Err(status), niks).await
            }
        }
    }

    /// Runs `work`, a call about one person each of `niks` finds in its answer
    /// (none when it fails).
    pub async fn about_each<R>(
        &self,
        ctx: AuditContext,
        work: impl Future<Output = Result<R, Status>>,
        niks: impl FnOnce(&R) -> Vec<String>,
    ) -> Result<R, Status> {
        let result = work.await;
        let niks = result.as_ref().map(niks).unwrap_or_default();
        self.log.answer(&ctx, result, niks).await
    }

    /// Runs `work`, a call about the print job `job_id` and so about its
    /// resident: the answer's NIK, or on failure the stored job's (empty
    /// when there is no such job).
    pub async fn about_job(
        &self,
        ctx: AuditContext,
        job_id: &str,
        work: impl Future<Output = Result<PrintJob, Status>>,
    ) -> Result<PrintJob, Status> {
        let result = work.await;
        let nik = match &result {
            Ok(job) => job.nik.clone(),
            Err(status) if status.code() == Code::InvalidArgument => return result,
            Err(_) => self.job_nik(job_id).await,
        };
        self.log.answer(&ctx, result, [nik]).await
    }

    /// Runs `work`, a call about the print jobs `job_ids`: one entry per job
    /// with the outcome `work` reports for it beside its answer (job id, the
    /// NIK when the answer has it, code), or with the call's code when it
    /// failed; a missing NIK is the stored job's — as [`Self::about_job`].
    pub async fn about_jobs<R>(
        &self,
        ctx: AuditContext,
        job_ids: &[String],
        work: impl Future<Output = Result<(R, Vec<JobOutcome>), Status>>,
    ) -> Result<R, Status> {
        let (result, outcomes) = match work.await {
            Ok((answer, outcomes)) => (Ok(answer), outcomes),
            Err(status) if status.code() == Code::InvalidArgument => return Err(status),
            Err(status) => {
                let code = status.code();
                let all = job_ids.iter().map(|id| (id.clone(), None, code)).collect();
                (Err(status), all)
            }
        };
        let mut entries = Vec::with_capacity(outcomes.len());
        for (job_id, nik, code) in outcomes {
            let nik = match nik {
                Some(nik) => nik,
                None => self.job_nik(&job_id).await,
            };
            entries.push(ctx.entry(&nik, code));
        }
        self.log.record(entries).await?;
        result
    }

    async fn job_nik(&self, job_id: &str) -> String {
        let Some(id) = JobId::parse(job_id.trim()) else {
            return String::new();
        };
        self.store
            .job(id)
            .await
            .map(|job| job.nik)
            .unwrap_or_default()
    }
}
