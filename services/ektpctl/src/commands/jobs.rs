//! `jobs list|show|resolve`: print jobs (ListPrintJobs, page by page;
//! GetPrintJob; ResolveInDoubtJob).

use super::Ctx;
use crate::cli::{JobState, JobsCommand, ResolveArgs};
use crate::error::CliError;
use crate::output::{Table, array};
use crate::view::{JOB_COLUMNS, JOB_COUNTS, job_json, job_row, job_text};
use ektp_proto::v1 as pb;
use ektp_proto::v1::registry_client::RegistryClient;

/// Largest page the registry serves.
const MAX_PAGE: usize = 1000;

pub async fn run(ctx: &mut Ctx, command: JobsCommand) -> Result<(), CliError> {
    match command {
        JobsCommand::List { state, limit } => list(ctx, state, limit).await,
        JobsCommand::Show { job_id } => show(ctx, job_id).await,
        JobsCommand::Resolve(args) => resolve(ctx, args).await,
    }
}

fn state(s: JobState) -> pb::PrintJobState {
    match s {
        JobState::Queued => pb::PrintJobState::Queued,
        JobState::Printing => pb::PrintJobState::Printing,
        JobState::Printed => pb::PrintJobState::Printed,
        JobState::Failed => pb::PrintJobState::Failed,
        JobState::InDoubt => pb::PrintJobState::InDoubt,
        JobState::Cancelled => pb::PrintJobState::Cancelled,
    }
}

async fn list(
    ctx: &mut Ctx,
    filter: Option<JobState>,
    limit: Option<usize>,
) -> Result<(), CliError> {
    let filter = filter.map_or(pb::PrintJobState::Unspecified, state);
    let registry = ctx.registry()?;
    let mut jobs: Vec<pb::PrintJob> = Vec::new();
    let mut token = String::new();
    loop {
        let want = limit.map_or(MAX_PAGE, |l| l.saturating_sub(jobs.len()).min(MAX_PAGE));
        if want == 0 {
            break;
        }
        let request = pb::ListPrintJobsRequest {
            state: filter as i32,
            page_size: i32::try_from(want).unwrap_or(1000),
            page_token: token.clone(),
        };
        let page = registry
            .call(|ch| {
                let r = request.clone();
                async move { RegistryClient::new(ch).list_print_jobs(r).await }
            })
            .await?;
        jobs.extend(page.jobs);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    if let Some(limit) = limit {
        jobs.truncate(limit);
    }
    ctx.emit(
        || {
            if jobs.is_empty() {
                return "no jobs\n".to_owned();
            }
            let mut table = Table::new(JOB_COLUMNS).counts(JOB_COUNTS);
            for job in &jobs {
                table.row(job_row(job));
            }
            table.render("")
        },
        || array(jobs.iter().map(job_json).collect()),
    );
    Ok(())
}

/// A job id as the registry spells it: digits are zero-padded to 12 (`7`
/// is `000000000007`); anything else is passed on for the registry to judge.
fn job_id(id: &str) -> String {
    let id = id.trim();
    if !id.is_empty() && id.len() < 12 && id.bytes().all(|b| b.is_ascii_digit()) {
        format!("{id:0>12}")
    } else {
        id.to_owned()
    }
}

async fn show(ctx: &mut Ctx, id: String) -> Result<(), CliError> {
    let request = pb::GetPrintJobRequest {
        job_id: job_id(&id),
    };
    let job = ctx
        .registry()?
        .call(|ch| {
            let r = request.clone();
            async move { RegistryClient::new(ch).get_print_job(r).await }
        })
        .await?;
    ctx.emit(|| job_text(&job), || job_json(&job));
    Ok(())
}

async fn resolve(ctx: &mut Ctx, args: ResolveArgs) -> Result<(), CliError> {
    let request = pb::ResolveInDoubtJobRequest {
        job_id: job_id(&args.job_id),
        printed: args.printed && !args.not_printed,
        note: args.note,
    };
    let job = ctx
        .registry()?
        .call(|ch| {
            let r = request.clone();
            async move { RegistryClient::new(ch).resolve_in_doubt_job(r).await }
        })
        .await?;
    ctx.emit(|| job_text(&job), || job_json(&job));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_job_ids_are_zero_padded() {
        assert_eq!(job_id("7"), "000000000007");
        assert_eq!(job_id("000000000042"), "000000000042");
        assert_eq!(job_id("abc"), "abc");
    }
}
