//! `printer pause|resume <NAME>`: PrintControl.PausePrinter / ResumePrinter.

use super::Ctx;
use crate::cli::PrinterCommand;
use crate::error::CliError;
use crate::view::{printer_json, printer_text};
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;

pub async fn run(ctx: &mut Ctx, command: PrinterCommand) -> Result<(), CliError> {
    let print = ctx.print()?;
    let printer = match command {
        PrinterCommand::Pause { name } => {
            let request = pb::PausePrinterRequest { name };
            print
                .call(|ch| {
                    let r = request.clone();
                    async move { PrintControlClient::new(ch).pause_printer(r).await }
                })
                .await?
        }
        PrinterCommand::Resume { name } => {
            let request = pb::ResumePrinterRequest { name };
            print
                .call(|ch| {
                    let r = request.clone();
                    async move { PrintControlClient::new(ch).resume_printer(r).await }
                })
                .await?
        }
    };
    ctx.emit(|| printer_text(&printer), || printer_json(&printer));
    Ok(())
}
