//! registry-service binary: wiring only.

use clap::Parser;
use registry_service::{App, RegistryConfig, bind, install_metrics};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = RegistryConfig::parse();
    ektp_server::init_tracing(config.node.log_format);
    install_metrics();
    let metrics_listener = match bind(config.metrics_listen()).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("registry-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    let app = match App::build(config).await {
        Ok(app) => app,
        Err(e) => {
            eprintln!("registry-service: {e}");
            return ExitCode::FAILURE;
        }
    };
    match app.run(Some(metrics_listener), ektp_server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("registry-service: {e}");
            ExitCode::FAILURE
        }
    }
}
