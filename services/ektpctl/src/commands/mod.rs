//! The commands: each takes the parsed arguments and a [`Ctx`] with the
//! replicas and the output format, calls the cluster and prints the answer.

mod audit;
mod authorize;
mod blanks;
mod import;
mod jobs;
mod printer;
mod status;

use crate::cli::{Cli, Command, Format, ResidentsCommand};
use crate::client::Replicas;
use crate::error::CliError;
use std::io::Write as _;
use std::time::Duration;

/// What every command needs: where the services are and how to print.
pub struct Ctx {
    pub format: Format,
    timeout: Duration,
    registry_endpoints: Vec<String>,
    print_endpoints: Vec<String>,
    purpose: Option<String>,
    identity: crate::cli::IdentityArgs,
    registry: Option<Replicas>,
    print: Option<Replicas>,
}

impl Ctx {
    fn new(cli: &Cli) -> Self {
        Self {
            format: cli.output,
            timeout: Duration::from_secs(cli.timeout_secs),
            registry_endpoints: cli.registry.clone(),
            print_endpoints: cli.print.clone(),
            purpose: cli.purpose.clone(),
            identity: cli.identity.clone(),
            registry: None,
            print: None,
        }
    }

    /// The registry replicas (endpoints checked on first use).
    pub fn registry(&mut self) -> Result<&mut Replicas, CliError> {
        if self.registry.is_none() {
            let replicas = Replicas::new("registry", &self.registry_endpoints, self.timeout)?
                .with_purpose(self.purpose.as_deref())?
                .with_identity(
                    crate::client::client_tls(&self.identity)?,
                    crate::client::bearer(&self.identity)?.as_deref(),
                )?;
            self.registry = Some(replicas);
        }
        self.registry
            .as_mut()
            .ok_or_else(|| CliError::Usage("no registry endpoint".into()))
    }

    /// The print-service replicas (endpoints checked on first use).
    pub fn print(&mut self) -> Result<&mut Replicas, CliError> {
        if self.print.is_none() {
            let replicas = Replicas::new("print", &self.print_endpoints, self.timeout)?
                .with_purpose(self.purpose.as_deref())?
                .with_identity(
                    crate::client::client_tls(&self.identity)?,
                    crate::client::bearer(&self.identity)?.as_deref(),
                )?;
            self.print = Some(replicas);
        }
        self.print
            .as_mut()
            .ok_or_else(|| CliError::Usage("no print endpoint".into()))
    }

    /// Prints the text or the JSON rendering, whichever was asked for.
    pub fn emit(&self, text: impl FnOnce() -> String, json: impl FnOnce() -> String) {
        match self.format {
            Format::Text => stdout(&text()),
            Format::Json => stdout(&(json() + "\n")),
        }
    }
}

/// Writes to stdout, ignoring a closed pipe (`ektpctl jobs list | head`).
pub fn stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// Runs the command `cli` names.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut ctx = Ctx::new(&cli);
    match cli.command {
        Command::Status => status::run(&mut ctx).await,
        Command::Residents(ResidentsCommand::Import { file }) => import::run(&mut ctx, &file).await,
        Command::Authorize(args) => authorize::run(&mut ctx, args).await,
        Command::Jobs(command) => jobs::run(&mut ctx, command).await,
        Command::Blanks(command) => blanks::run(&mut ctx, command).await,
        Command::Printer(command) => printer::run(&mut ctx, command).await,
        Command::Audit(command) => audit::run(&mut ctx, command).await,
    }
}
