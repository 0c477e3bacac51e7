//! The hot-folder card printer protocol, shared by the print-service's
//! printer driver and the `card-printer-sim` simulator.
//!
//! The print node drops one ticket file per card into the printer's
//! `inbox/`, after the card's front image `{job_id}_{card_serial}.png` (the
//! ticket's appearance is the signal that the image is complete); the
//! printer moves both to `work/`, prints the card, appends a line to its
//! append-only `printer.log`, writes `outbox/{job_id}_{card_serial}.result`,
//! keeps the image of a printed card under `printed/` (removes it otherwise)
//! and removes the work file. The log outlives print-node crashes, so after a
//! failover the new print leader can ask [`HotFolder::status`] whether a
//! `(job_id, card_serial)` was printed, and [`HotFolder::submit`] is a no-op
//! for any ticket the printer already holds or finished: a card is never
//! printed twice.
//!
//! Fencing: every ticket carries the [epoch](JobTicket::epoch) of the print
//! leader that submitted it. A new leader calls [`HotFolder::fence`] with its
//! epoch before reconciling, and the printer refuses (finishes with
//! [`Outcome::Refused`], without feeding a card) any ticket whose epoch is
//! below [`HotFolder::fenced_epoch`], so a paused ex-leader that wakes up and
//! drops a late ticket cannot get a second card printed.
//!
//! Every file is written to `tmp/` and renamed into place, and log lines are
//! appended and fsync'd, so a crash on either side never leaves a half-written
//! file behind; a torn final log line is ignored when reading.
//!
//! The API is synchronous `std::fs`; async callers wrap it in
//! `tokio::task::spawn_blocking`.
//!
//! ```
//! use ektp_hotfolder::{HotFolder, JobTicket, TicketStatus, image_name};
//!
//! let root = std::env::temp_dir().join(format!("hotfolder-doc-{}", std::process::id()));
//! let folder = HotFolder::new(&root);
//! folder.ensure_dirs()?;
//! let ticket = JobTicket {
//!     job_id: "000042".into(),
//!     card_serial: "C-0001".into(),
//!     nik: "3527014507900001".into(),
//!     full_name: "Siti Rahayu".into(),
//!     epoch: 3,
//!     image: image_name("000042", "C-0001")?,
//! };
//! let front: &[u8] = b"\x89PNG\r\n\x1a\n..."; // the rendered card front
//! assert_eq!(folder.fence(3)?, 3); // done by a new print leader before it reconciles
//! folder.submit(&ticket, front)?;
//! folder.submit(&ticket, front)?; // idempotent
//! assert_eq!(folder.status("000042", "C-0001")?, TicketStatus::Pending);
//! # std::fs::remove_dir_all(&root).ok();
//! # Ok::<(), ektp_hotfolder::HotFolderError>(())
//! ```

mod folder;
mod format;
mod fsutil;

use std::fmt;
use std::path::PathBuf;

pub use folder::HotFolder;

/// The first bytes of every PNG file: a card image must start with them.
pub const PNG_SIGNATURE: [u8; 8] = *b"\x89PNG\r\n\x1a\n";

/// The name of the card image of `(job_id, card_serial)` beside its ticket,
/// `{job_id}_{card_serial}.png`, for [`JobTicket::image`]. Fails like any
/// file name of the protocol on a job id or serial outside `[A-Za-z0-9-]`.
pub fn image_name(job_id: &str, card_serial: &str) -> Result<String, HotFolderError> {
    format::image_name(job_id, card_serial)
}

/// One card to print, as dropped into the inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTicket {
    pub job_id: String,
    pub card_serial: String,
    pub nik: String,
    pub full_name: String,
    /// The epoch of the print leader that submitted the ticket. The printer
    /// refuses a ticket whose epoch is below the fence
    /// ([`HotFolder::fenced_epoch`]). Text key `epoch`; a ticket file
    /// without it (written before fencing existed) reads as 0.
    pub epoch: u64,
    /// File name of the card's front image (PNG) beside the ticket, always
    /// [`image_name`]`(job_id, card_serial)`; empty for a ticket without one
    /// (written before images existed), which the printer cannot print.
    /// Text key `image`.
    pub image: String,
}

/// How printing a card ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A card was printed.
    Printed,
    /// A card was fed and spoiled.
    Jammed,
    /// The printer refused the ticket (its epoch is below the fence) without
    /// feeding a card or using a blank. Logged and answered like the other
    /// outcomes, but no card exists.
    Refused,
}

impl Outcome {
    /// The protocol spelling: `printed`, `jammed` or `refused`.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Printed => "printed",
            Outcome::Jammed => "jammed",
            Outcome::Refused => "refused",
        }
    }

    /// Reads the protocol spelling back; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "printed" => Some(Outcome::Printed),
            "jammed" => Some(Outcome::Jammed),
            "refused" => Some(Outcome::Refused),
            _ => None,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The printer's answer for one card, as written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobResult {
    pub job_id: String,
    pub card_serial: String,
    pub outcome: Outcome,
    pub detail: String,
    /// The printer's name; empty when the result was rebuilt from the log,
    /// which does not record it.
    pub printer: String,
}

/// Where a ticket is in the printer's pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketStatus {
    /// Never seen (or its malformed ticket file was rejected).
    Unknown,
    /// In the inbox or being printed.
    Pending,
    /// Done, from the outbox result or, once acknowledged, the log.
    Finished(JobResult),
}

/// One line of the printer's append-only job log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub unix_ms: u64,
    pub job_id: String,
    pub card_serial: String,
    pub outcome: Outcome,
    pub detail: String,
}

impl LogEntry {
    /// The outbox result this entry stands for, credited to `printer`.
    pub fn to_result(&self, printer: &str) -> JobResult {
        JobResult {
            job_id: self.job_id.clone(),
            card_serial: self.card_serial.clone(),
            outcome: self.outcome,
            detail: self.detail.clone(),
            printer: printer.to_owned(),
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum HotFolderError {
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("bad name: {0}")]
    BadName(String),
    #[error("malformed {}: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
}
