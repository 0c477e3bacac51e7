//! Card printers. The print loop drives any [`Printer`]; drivers:
//! [`sim`] (in-process, for development) and [`hotfolder`] (a network or
//! hot-folder card printer that keeps its own job log).

pub mod hotfolder;
pub mod sim;

use crate::render::CardFace;
use ektp_proto::v1 as pb;
use std::future::Future;

/// One card to print.
#[derive(Clone, Debug)]
pub struct CardJob {
    /// The print leader's epoch handing the card over; printers that fence
    /// refuse cards from an epoch older than the newest leader's.
    pub epoch: u64,
    pub job_id: String,
    pub card_serial: String,
    pub nik: String,
    pub full_name: String,
    /// The resident's record, what the card shows; `None` for a card being
    /// reconciled, which is never printed (or rendered) again.
    pub resident: Option<pb::Resident>,
    /// Photo and signature; `None` when not handed over (placeholders are drawn).
    pub material: Option<pb::PrintMaterial>,
    /// When the job was claimed, the card's date of issue.
    pub issued: Option<ektp_proto::Timestamp>,
}

impl CardJob {
    /// What the front of this card shows. Without the record (never the
    /// case for a claimed job) only the NIK and name are filled in.
    pub fn face(&self) -> CardFace {
        let resident = self.resident.clone().unwrap_or_else(|| pb::Resident {
            nik: self.nik.clone(),
            full_name: self.full_name.clone(),
            ..pb::Resident::default()
        });
        CardFace::new(
            &resident,
            &self.card_serial,
            self.material.as_ref(),
            self.issued.as_ref(),
        )
    }
}

/// How one print attempt ended. Either way a blank was used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Printed,
    /// The blank was spoiled (jam, print error).
    Spoiled(String),
    /// The printer refused the card: a newer leader fenced it. No blank used.
    Refused(String),
}

/// What a printer knows of a card after a failover or a lost answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recovery {
    /// It reached the printer and finished this way.
    Finished(Attempt),
    /// It never reached the printer.
    NotPrinted,
    /// The printer cannot tell; an operator must check.
    Unknown,
}

/// A printer could not be driven.
#[derive(Debug, thiserror::Error)]
#[error("printer {printer}: {reason}")]
pub struct PrinterError {
    pub printer: String,
    pub reason: String,
}

/// A card printer.
pub trait Printer: Send + Sync + 'static {
    /// Printer name, used in metrics labels and recorded on jobs.
    fn name(&self) -> &str;
    /// Driver kind (`sim`, `hotfolder`).
    fn driver(&self) -> &'static str;
    /// Refuses, from now on, cards handed over by an epoch older than `epoch`.
    /// A new leader fences the printer before it reconciles.
    fn fence(&self, epoch: u64) -> impl Future<Output = Result<(), PrinterError>> + Send;
    /// Prints one card and waits for the outcome.
    fn print(&self, card: &CardJob) -> impl Future<Output = Result<Attempt, PrinterError>> + Send;
    /// Finds out what became of a card handed over earlier, possibly by
    /// another print node; waits while the printer is still at it.
    fn recover(
        &self,
        job_id: &str,
        card_serial: &str,
    ) -> impl Future<Output = Result<Recovery, PrinterError>> + Send;
}

/// The configured printer, whichever driver it uses.
pub enum AnyPrinter {
    Sim(sim::SimPrinter),
    HotFolder(hotfolder::HotFolderPrinter),
}

impl Printer for AnyPrinter {
    fn name(&self) -> &str {
        match self {
            AnyPrinter::Sim(p) => p.name(),
            AnyPrinter::HotFolder(p) => p.name(),
        }
    }

    fn driver(&self) -> &'static str {
        match self {
            AnyPrinter::Sim(p) => p.driver(),
            AnyPrinter::HotFolder(p) => p.driver(),
        }
    }

    async fn fence(&self, epoch: u64) -> Result<(), PrinterError> {
        match self {
            AnyPrinter::Sim(p) => p.fence(epoch).await,
            AnyPrinter::HotFolder(p) => p.fence(epoch).await,
        }
    }

    async fn print(&self, card: &CardJob) -> Result<Attempt, PrinterError> {
        match self {
            AnyPrinter::Sim(p) => p.print(card).await,
            AnyPrinter::HotFolder(p) => p.print(card).await,
        }
    }

    async fn recover(&self, job_id: &str, card_serial: &str) -> Result<Recovery, PrinterError> {
        match self {
            AnyPrinter::Sim(p) => p.recover(job_id, card_serial).await,
            AnyPrinter::HotFolder(p) => p.recover(job_id, card_serial).await,
        }
    }
}
