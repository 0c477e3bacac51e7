//! print-service binary: wiring only.

use clap::Parser;
use print_service::{App, PrintConfig, bind, install_metrics};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = PrintConfig::parse();
    ektp_server::init_tracing(config.node.log_format);
    install_metrics();
    let metrics_listener = match bind(config.metrics_listen()).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("print-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("print-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run(Some(metrics_listener), ektp_server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("print-service: {e}");
            ExitCode::FAILURE
        }
    }
}
