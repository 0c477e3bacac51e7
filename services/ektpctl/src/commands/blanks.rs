//! `blanks add <COUNT>`: a delivery of blank cards (PrintControl.AddBlankStock),
//! applied once per request id. Without `--request-id` a fresh id is made
//! from the time and the process id, and shown, so a failed or doubtful
//! attempt can be retried with it without adding the delivery twice.

use super::Ctx;
use crate::cli::BlanksCommand;
use crate::error::CliError;
use crate::output::{Json, pairs};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;
use std::time::{SystemTime, UNIX_EPOCH};
use tonic::Code;

pub async fn run(ctx: &mut Ctx, command: BlanksCommand) -> Result<(), CliError> {
    let BlanksCommand::Add {
        count,
        reference,
        request_id,
    } = command;
    let request_id = request_id.unwrap_or_else(fresh_request_id);
    let request = pb::AddBlankStockRequest {
        count,
        reference,
        request_id,
    };
    let answer = ctx
        .print()?
        .call(|ch| {
            let r = request.clone();
            async move { PrintControlClient::new(ch).add_blank_stock(r).await }
        })
        .await;
    let stock = match answer {
        Ok(stock) => stock,
        Err(status) if outcome_unknown(status.code()) => {
            eprintln!(
                "ektpctl: the delivery may or may not have been added; retry with --request-id {}",
                request.request_id
            );
            return Err(status.into());
        }
        Err(status) => return Err(status.into()),
    };
    ctx.emit(
        || {
            pairs(
                "",
                &[
                    ("request id", request.request_id.clone()),
                    ("delivered", request.count.to_string()),
                    ("blank stock", stock.remaining.to_string()),
                ],
            )
        },
        || {
            Json::new()
                .str("request_id", &request.request_id)
                .num("count", request.count)
                .str("reference", &request.reference)
                .num("remaining", stock.remaining)
                .build()
        },
    );
    Ok(())
}

/// Whether a failed call may still have been applied.
fn outcome_unknown(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::Unknown
            | Code::Internal
            | Code::Cancelled
    )
}

/// `blanks-<unix nanos>-<pid>`: unique per attempt, never derived from the
/// delivery's content (two equal deliveries in a minute are two deliveries).
fn fresh_request_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("blanks-{nanos}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_ids_are_valid_and_differ() {
        let a = fresh_request_id();
        let b = fresh_request_id();
        assert_ne!(a, b);
        assert!(a.len() <= 64);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._:-".contains(&c))
        );
    }
}
