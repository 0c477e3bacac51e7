//! registry-service binary: wiring only.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = registry_service::RegistryConfig::parse();
    ektp_server::init_tracing(config.node.log_format);
    let result = registry_service::run(config, ektp_server::shutdown_signal()).await;
    ektp_server::exit_code("registry-service", result)
}
