//! `residents import <file.csv>`: records every row with RecordResident under
//! the request id `import-<nik>`, so re-running an import is idempotent. A
//! resident recorded before (by an earlier run or otherwise) counts as
//! "already"; a row the registry or the reader refuses counts as failed and
//! is reported with its line and field violations.

use super::Ctx;
use crate::csv::{Record, Sheet};
use crate::error::{CliError, code_name};
use crate::output::{Json, array};
use crate::progress::{Counts, Progress};
use crate::rows::{self, COLUMNS, Violation};
use ektp_proto::v1 as pb;
use ektp_proto::v1::registry_client::RegistryClient;
use std::path::Path;
use tonic::{Code, Status};
use tonic_types::StatusExt;

/// One failed row, for the report.
struct Failure {
    line: usize,
    nik: String,
    code: Option<Code>,
    message: String,
    violations: Vec<Violation>,
}

/// Codes that say the cluster, not the row, is the problem: the import stops.
fn stops_import(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unimplemented
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::Cancelled
    )
}

pub async fn run(ctx: &mut Ctx, file: &Path) -> Result<(), CliError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    let sheet = Sheet::parse(&text, COLUMNS)
        .map_err(|e| CliError::Usage(format!("{}: {e}", file.display())))?;
    let base = file.parent().unwrap_or(Path::new("."));
    let mut progress = Progress::new(sheet.rows.len());
    let mut counts = Counts::default();
    let mut failures = Vec::new();
    let mut stopped = None;
    for record in &sheet.rows {
        match import_row(ctx, &sheet, record, base).await? {
            Outcome::Imported => counts.imported += 1,
            Outcome::Already => counts.already += 1,
            Outcome::Failed(failure) => {
                progress.message(&failure_text(&failure));
                failures.push(failure);
                counts.failed += 1;
            }
            Outcome::Stop(status) => {
                stopped = Some((record.line, status));
                break;
            }
        }
        progress.update(counts);
    }
    progress.finish();
    let rows = sheet.rows.len();
    ctx.emit(
        || {
            format!(
                "imported={} already={} failed={}\n",
                counts.imported, counts.already, counts.failed
            )
        },
        || summary_json(counts, rows, &failures),
    );
    if let Some((line, status)) = stopped {
        let message = format!("import stopped at line {line}: {}", status.message());
        return Err(Status::new(status.code(), message).into());
    }
    if counts.failed > 0 {
        let noun = if counts.failed == 1 { "row" } else { "rows" };
        return Err(CliError::Failed(format!(
            "{} {noun} of {rows} failed",
            counts.failed
        )));
    }
    Ok(())
}

enum Outcome {
    Imported,
    Already,
    Failed(Failure),
    Stop(Status),
}

async fn import_row(
    ctx: &mut Ctx,
    sheet: &Sheet,
    record: &Record,
    base: &Path,
) -> Result<Outcome, CliError> {
    let nik = rows::nik(sheet, record).to_owned();
    let request = match rows::request(sheet, record, base) {
        Ok(request) => request,
        Err(problems) => {
            return Ok(Outcome::Failed(Failure {
                line: record.line,
                nik,
                code: None,
                message: "invalid row".into(),
                violations: problems,
            }));
        }
    };
    let registry = ctx.registry()?;
    // A retried record with the same request id answers OK, so whether the
    // resident existed before is asked first.
    let lookup = pb::GetResidentRequest { nik: nik.clone() };
    let existed = match registry
        .call(|ch| {
            let r = lookup.clone();
            async move { RegistryClient::new(ch).get_resident(r).await }
        })
        .await
    {
        Ok(_) => true,
        Err(status) if stops_import(status.code()) => return Ok(Outcome::Stop(status)),
        // NOT_FOUND, or a NIK the registry refuses: RecordResident reports it.
        Err(_) => false,
    };
    let answer = registry
        .call(|ch| {
            let r = request.clone();
            async move { RegistryClient::new(ch).record_resident(r).await }
        })
        .await;
    Ok(match answer {
        Ok(_) if existed => Outcome::Already,
        Ok(_) => Outcome::Imported,
        Err(status) if status.code() == Code::AlreadyExists => Outcome::Already,
        Err(status) if stops_import(status.code()) => Outcome::Stop(status),
        Err(status) => Outcome::Failed(Failure {
            line: record.line,
            nik,
            code: Some(status.code()),
            message: status.message().to_owned(),
            violations: field_violations(&status),
        }),
    })
}

fn field_violations(status: &Status) -> Vec<Violation> {
    status
        .get_details_bad_request()
        .map(|bad| {
            bad.field_violations
                .into_iter()
                .map(|v| (v.field, v.description))
                .collect()
        })
        .unwrap_or_default()
}

fn failure_text(f: &Failure) -> String {
    let nik = if f.nik.is_empty() {
        String::new()
    } else {
        format!(" (nik {})", f.nik)
    };
    let code = f
        .code
        .map(|c| format!("{}: ", code_name(c)))
        .unwrap_or_default();
    let mut out = format!("line {}{nik}: {code}{}\n", f.line, f.message);
    for (field, description) in &f.violations {
        out.push_str(&format!("  {field}: {description}\n"));
    }
    out
}

fn summary_json(counts: Counts, rows: usize, failures: &[Failure]) -> String {
    let failures = failures
        .iter()
        .map(|f| {
            let violations = f
                .violations
                .iter()
                .map(|(field, description)| {
                    Json::new()
                        .str("field", field)
                        .str("description", description)
                        .build()
                })
                .collect();
            Json::new()
                .num("line", f.line as u64)
                .str("nik", &f.nik)
                .str("code", f.code.map_or("INVALID_ROW", code_name))
                .str("message", &f.message)
                .raw("violations", array(violations))
                .build()
        })
        .collect();
    Json::new()
        .num("rows", rows as u64)
        .num("imported", counts.imported as u64)
        .num("already", counts.already as u64)
        .num("failed", counts.failed as u64)
        .raw("failures", array(failures))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lists_its_line_and_violations() {
        let f = Failure {
            line: 7,
            nik: "123".into(),
            code: Some(Code::InvalidArgument),
            message: "invalid resident.nik: too short".into(),
            violations: vec![("resident.nik".into(), "a NIK has 16 digits".into())],
        };
        assert_eq!(
            failure_text(&f),
            "line 7 (nik 123): INVALID_ARGUMENT: invalid resident.nik: too short\n  \
             resident.nik: a NIK has 16 digits\n"
        );
        let json = summary_json(
            Counts {
                imported: 1,
                already: 0,
                failed: 1,
            },
            2,
            std::slice::from_ref(&f),
        );
        assert!(json.starts_with(r#"{"rows":2,"imported":1,"already":0,"failed":1,"#));
        assert!(json.contains(r#"{"field":"resident.nik","description":"a NIK has 16 digits"}"#));
    }
}
