//! `ektpctl`: the operator CLI of an ektp cluster. It talks gRPC to the
//! registry and print-service replicas — the first that answers, retrying
//! the same request elsewhere (or at the named leader) on UNAVAILABLE — and
//! prints aligned text or JSON. Exit codes: 0 ok, 1 a call failed, 2 bad
//! usage or unreadable input.

mod cli;
mod client;
mod commands;
mod csv;
mod enums;
mod error;
mod output;
mod progress;
mod rows;
mod view;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match commands::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprint!("{}", error.report());
            ExitCode::from(error.exit_code())
        }
    }
}
