//! print-service binary: wiring only.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = print_service::PrintConfig::parse();
    ektp_server::init_tracing(config.node.log_format);
    let result = print_service::run(config, ektp_server::shutdown_signal()).await;
    ektp_server::exit_code("print-service", result)
}
