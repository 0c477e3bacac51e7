//! Command-line definitions (clap): global flags and the command tree.

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Operate an ektp cluster: registry totals and print status, bulk resident
/// import, authorisation, print jobs, blank stock and printers.
#[derive(Debug, Parser)]
#[command(name = "ektpctl", version)]
pub struct Cli {
    /// Registry endpoints, comma-separated; the first that answers is used.
    #[arg(
        long = "registry",
        env = "EKTP_REGISTRY_ENDPOINTS",
        value_name = "URL,...",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50051,http://127.0.0.1:50052",
        global = true
    )]
    pub registry: Vec<String>,

    /// Print-service endpoints, comma-separated; the first that answers is used.
    #[arg(
        long = "print",
        env = "EKTP_PRINT_ENDPOINTS",
        value_name = "URL,...",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:50061,http://127.0.0.1:50062",
        global = true
    )]
    pub print: Vec<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub output: Format,

    /// Deadline of each call, retries included, in seconds.
    #[arg(long, value_name = "N", default_value_t = 10, global = true,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub timeout_secs: u64,

    /// Why you need the people's data this command reads or changes (sent
    /// as `x-ektp-purpose`, recorded in the audit trail; required by a
    /// cluster with authentication on).
    #[arg(long, env = "EKTP_PURPOSE", value_name = "TEXT", global = true)]
    pub purpose: Option<String>,

    /// How to reach and prove who you are to a cluster serving TLS.
    #[command(flatten)]
    pub identity: IdentityArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// TLS and identity for `https://` endpoints.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// CA certificate (PEM) the services' certificates must chain to.
    #[arg(long, env = "EKTPCTL_TLS_CA", value_name = "FILE", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Your client certificate (PEM): its common name is your identity.
    #[arg(
        long,
        env = "EKTPCTL_TLS_CERT",
        value_name = "FILE",
        global = true,
        requires = "tls_key"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The key (PEM) of `--tls-cert`.
    #[arg(
        long,
        env = "EKTPCTL_TLS_KEY",
        value_name = "FILE",
        global = true,
        requires = "tls_cert"
    )]
    pub tls_key: Option<PathBuf>,
    /// A file holding a development bearer token, for clusters that accept
    /// them instead of a certificate.
    #[arg(long, env = "EKTPCTL_TOKEN_FILE", value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
}

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned, human-friendly text.
    Text,
    /// One JSON value per command on stdout.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Registry totals, print leader, blank stock and printers.
    Status,
    /// Residents (perekaman).
    #[command(subcommand)]
    Residents(ResidentsCommand),
    /// Records the central system's decision on a resident (AuthorizePrint).
    Authorize(AuthorizeArgs),
    /// Print jobs.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Blank card stock (blangko).
    #[command(subcommand)]
    Blanks(BlanksCommand),
    /// Card printers.
    #[command(subcommand)]
    Printer(PrinterCommand),
    /// The audit trail: who read or changed whose data, when and why.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Lists audit entries, oldest first.
    List {
        /// Only entries about this NIK.
        #[arg(long, value_name = "NIK")]
        nik: Option<String>,
        /// Only entries of this caller identity.
        #[arg(long, value_name = "IDENTITY")]
        caller: Option<String>,
        /// Only entries at or after this time (RFC 3339, e.g. 2024-05-01T00:00:00Z).
        #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
        since: Option<prost_types::Timestamp>,
        /// Most entries to list.
        #[arg(long, value_name = "N", default_value_t = 100)]
        limit: usize,
    },
}

fn parse_time(value: &str) -> Result<prost_types::Timestamp, String> {
    value
        .parse()
        .map_err(|_| "an RFC 3339 time, e.g. 2024-05-01T00:00:00Z".to_owned())
}

#[derive(Debug, Subcommand)]
pub enum ResidentsCommand {
    /// Records every resident of a CSV file; safe to re-run.
    ///
    /// The CSV has a header row naming the columns nik, full_name,
    /// birth_place, birth_date, sex, blood_type, street, rt, rw, village,
    /// district, regency, province, religion, marital_status, occupation,
    /// citizenship, photo_file, signature_file. Enum columns take the enum
    /// value name without its prefix (FEMALE, O, ISLAM, MARRIED, WNI); image
    /// paths are relative to the CSV's directory.
    Import {
        /// CSV file with a header row.
        file: PathBuf,
    },
}

#[derive(Debug, Args)]
pub struct AuthorizeArgs {
    /// NIK of a RECORDED resident.
    pub nik: String,
    /// The record duplicates another resident's (needs --reason).
    #[arg(long, conflicts_with = "rejected")]
    pub duplicate: bool,
    /// The record was rejected (needs --reason).
    #[arg(long)]
    pub rejected: bool,
    /// Reason for the decision.
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// Lists print jobs in FIFO order.
    List {
        /// Only jobs in this state.
        #[arg(long, value_enum)]
        state: Option<JobState>,
        /// At most this many jobs.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Shows one print job.
    Show {
        /// Job id.
        job_id: String,
    },
    /// Settles an IN_DOUBT job after checking the printer.
    Resolve(ResolveArgs),
}

#[derive(Debug, Args)]
#[group(skip)]
#[command(group(ArgGroup::new("verdict").required(true).args(["printed", "not_printed"])))]
pub struct ResolveArgs {
    /// Job id.
    pub job_id: String,
    /// The card was found printed and is handed on as the resident's card.
    #[arg(long)]
    pub printed: bool,
    /// The card was not printed: the serial is voided and the job queued again.
    #[arg(long)]
    pub not_printed: bool,
    /// What was checked.
    #[arg(long, value_name = "TEXT")]
    pub note: String,
}

/// Print job states accepted by `jobs list --state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JobState {
    Queued,
    Printing,
    Printed,
    Failed,
    InDoubt,
    Cancelled,
}

#[derive(Debug, Subcommand)]
pub enum BlanksCommand {
    /// Adds a delivery of blank cards; once per request id.
    Add {
        /// Blanks delivered.
        count: u64,
        /// Delivery reference.
        #[arg(long, value_name = "TEXT", default_value = "")]
        reference: String,
        /// Request id for a retry of an earlier attempt (printed by every attempt).
        #[arg(long, value_name = "ID")]
        request_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrinterCommand {
    /// Pauses a printer.
    Pause {
        /// Printer name, e.g. printer-1.
        name: String,
    },
    /// Resumes a paused printer.
    Resume {
        /// Printer name, e.g. printer-1.
        name: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn resolve_needs_exactly_one_verdict() {
        let parse = |args: &[&str]| Cli::try_parse_from(args);
        assert!(parse(&["ektpctl", "jobs", "resolve", "1", "--note", "x"]).is_err());
        assert!(
            parse(&[
                "ektpctl",
                "jobs",
                "resolve",
                "1",
                "--printed",
                "--not-printed",
                "--note",
                "x"
            ])
            .is_err()
        );
        assert!(
            parse(&[
                "ektpctl",
                "jobs",
                "resolve",
                "1",
                "--printed",
                "--note",
                "x"
            ])
            .is_ok()
        );
    }

    #[test]
    fn endpoints_split_on_commas() {
        let cli = Cli::try_parse_from(["ektpctl", "--registry", "http://a:1,http://b:2", "status"])
            .unwrap();
        assert_eq!(cli.registry, ["http://a:1", "http://b:2"]);
        assert_eq!(cli.output, Format::Text);
    }
}
