//! `authorize <NIK>`: the central system's decision (AuthorizePrint),
//! PRINT_READY unless `--duplicate` or `--rejected`; request id `authorize-<nik>`.

use super::Ctx;
use crate::cli::AuthorizeArgs;
use crate::error::CliError;
use crate::rows::request_id;
use crate::view::{resident_json, resident_text};
use ektp_proto::v1 as pb;
use ektp_proto::v1::registry_client::RegistryClient;

pub async fn run(ctx: &mut Ctx, args: AuthorizeArgs) -> Result<(), CliError> {
    let outcome = if args.duplicate {
        pb::AuthorizationOutcome::Duplicate
    } else if args.rejected {
        pb::AuthorizationOutcome::Rejected
    } else {
        pb::AuthorizationOutcome::PrintReady
    };
    let nik = args.nik.trim().to_owned();
    let request = pb::AuthorizePrintRequest {
        request_id: request_id("authorize", &nik),
        nik,
        outcome: outcome as i32,
        reason: args.reason,
    };
    let resident = ctx
        .registry()?
        .call(|ch| {
            let r = request.clone();
            async move { RegistryClient::new(ch).authorize_print(r).await }
        })
        .await?;
    ctx.emit(|| resident_text(&resident), || resident_json(&resident));
    Ok(())
}
