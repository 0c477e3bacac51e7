//! `audit list`: the audit trail (ListAuditEntries, page by page), oldest first.

use super::Ctx;
use crate::cli::AuditCommand;
use crate::error::CliError;
use crate::output::{Json, Table, array, time};
use ektp_proto::v1 as pb;
use ektp_proto::v1::audit_client::AuditClient;

/// Largest page the registry serves.
const MAX_PAGE: usize = 1000;
const COLUMNS: &[&str] = &[
    "TIME", "CALLER", "ROLE", "METHOD", "NIK", "PURPOSE", "OUTCOME", "NODE",
];

pub async fn run(ctx: &mut Ctx, command: AuditCommand) -> Result<(), CliError> {
    let AuditCommand::List {
        nik,
        caller,
        since,
        limit,
    } = command;
    let registry = ctx.registry()?;
    let mut entries: Vec<pb::AuditEntry> = Vec::new();
    let mut token = String::new();
    while entries.len() < limit {
        let want = (limit - entries.len()).min(MAX_PAGE);
        let request = pb::ListAuditEntriesRequest {
            nik: nik.clone().unwrap_or_default(),
            caller: caller.clone().unwrap_or_default(),
            since,
            until: None,
            page_size: i32::try_from(want).unwrap_or(1000),
            page_token: token.clone(),
        };
        let page = registry
            .call(|ch| {
                let r = request.clone();
                async move { AuditClient::new(ch).list_audit_entries(r).await }
            })
            .await?;
        entries.extend(page.entries);
        token = page.next_page_token;
        if token.is_empty() {
            break;
        }
    }
    entries.truncate(limit);
    ctx.emit(
        || {
            if entries.is_empty() {
                return "no audit entries\n".to_owned();
            }
            let mut table = Table::new(COLUMNS);
            for e in &entries {
                table.row(vec![
                    time(e.time.as_ref()),
                    e.caller.clone(),
                    e.role.clone(),
                    e.method.rsplit('/').next().unwrap_or_default().to_owned(),
                    e.nik.clone(),
                    e.purpose.clone(),
                    e.outcome.clone(),
                    e.node.clone(),
                ]);
            }
            table.render("")
        },
        || array(entries.iter().map(entry_json).collect()),
    );
    Ok(())
}

fn entry_json(e: &pb::AuditEntry) -> String {
    Json::new()
        .str("time", &time(e.time.as_ref()))
        .str("caller", &e.caller)
        .str("role", &e.role)
        .str("method", &e.method)
        .str("nik", &e.nik)
        .str("purpose", &e.purpose)
        .str("outcome", &e.outcome)
        .str("node", &e.node)
        .build()
}
