//! `card-printer-sim`: serves one hot folder as a simulated card printer
//! until killed. All logic lives in [`card_printer_sim::printer`]; this file
//! only reads the configuration and starts the loop.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use card_printer_sim::printer::{self, Printer, PrinterConfig};
use clap::Parser;
use clap::error::ErrorKind;
use ektp_hotfolder::HotFolder;

/// A simulated hot-folder card printer with an append-only job log.
#[derive(Parser, Debug)]
#[command(name = "card-printer-sim", version, about)]
struct Cli {
    /// Hot folder root (created if missing).
    #[arg(long, env = "EKTP_PRINTER_SIM_DIR", value_name = "PATH")]
    dir: PathBuf,

    /// Printer name, written into every result.
    #[arg(
        long,
        env = "EKTP_PRINTER_SIM_NAME",
        value_name = "NAME",
        default_value = "printer-1"
    )]
    name: String,

    /// Print rate; 36000 means 100 ms per card.
    #[arg(
        long,
        env = "EKTP_PRINTER_SIM_CARDS_PER_HOUR",
        value_name = "N",
        default_value_t = 3600
    )]
    cards_per_hour: u64,

    /// Inbox poll interval in milliseconds.
    #[arg(
        long,
        env = "EKTP_PRINTER_SIM_POLL_MS",
        value_name = "N",
        default_value_t = 20
    )]
    poll_ms: u64,

    /// Jam every Nth card (0 = never).
    #[arg(
        long,
        env = "EKTP_PRINTER_SIM_JAM_EVERY",
        value_name = "N",
        default_value_t = 0
    )]
    jam_every: u64,
}

const BIN: &str = "card-printer-sim";

/// Bad configuration is reported as one line rather than clap's usage block.
fn parse_cli() -> Result<Cli, String> {
    let cli = Cli::try_parse().map_err(|err| {
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            err.exit();
        }
        // clap's message runs until the first blank line (then usage
        // hints); a list of missing arguments follows on indented lines.
        let text = err.to_string();
        let message: Vec<&str> = text
            .lines()
            .take_while(|line| !line.trim().is_empty())
            .map(str::trim)
            .collect();
        message.join(" ").trim_start_matches("error: ").to_owned()
    })?;
    if cli.poll_ms == 0 {
        return Err("--poll-ms must be greater than 0".to_owned());
    }
    if cli.name.trim().is_empty() || cli.name.contains(['\n', '\r']) {
        return Err("--name must be a non-empty single line".to_owned());
    }
    Ok(cli)
}

fn main() -> ExitCode {
    let cli = match parse_cli() {
        Ok(cli) => cli,
        Err(reason) => {
            eprintln!("{BIN}: {reason}");
            return ExitCode::from(2);
        }
    };
    let Some(print_time) = printer::print_time(cli.cards_per_hour) else {
        eprintln!("{BIN}: --cards-per-hour must be greater than 0");
        return ExitCode::from(2);
    };

    let folder = HotFolder::new(&cli.dir);
    if let Err(err) = folder.ensure_dirs() {
        eprintln!("{BIN}: cannot prepare hot folder: {err}");
        return ExitCode::FAILURE;
    }
    let config = PrinterConfig {
        name: cli.name,
        print_time,
        jam_every: cli.jam_every,
    };
    eprintln!(
        "{BIN}: {} serving {} at {} cards/hour",
        config.name,
        cli.dir.display(),
        cli.cards_per_hour
    );
    let mut printer = Printer::new(folder, config);
    if let Err(err) = printer.recover() {
        eprintln!("{BIN}: recovery of work/ failed: {err}");
        return ExitCode::FAILURE;
    }
    printer.run(Duration::from_millis(cli.poll_ms))
}
