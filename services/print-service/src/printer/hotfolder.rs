//! A hot-folder card printer: one ticket file per card in the printer's
//! inbox, beside the card's rendered front (PNG), one result file back; the printer's own job log answers what became
//! of a card after a print node died. File work runs on the blocking pool.

use super::{Attempt, CardJob, Printer, PrinterError, Recovery};
use crate::render::render_front;
use ektp_hotfolder::{HotFolder, JobTicket, Outcome, TicketStatus, image_name};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How often a pending ticket's status is checked.
const POLL: Duration = Duration::from_millis(20);

/// The hot-folder printer driver.
pub struct HotFolderPrinter {
    name: String,
    folder: Arc<HotFolder>,
    /// Longest wait for one card before the printer counts as stuck.
    card_timeout: Duration,
}

impl HotFolderPrinter {
    pub fn new(name: String, root: PathBuf, card_timeout: Duration) -> Result<Self, PrinterError> {
        let folder = HotFolder::new(root);
        folder.ensure_dirs().map_err(|e| PrinterError {
            printer: name.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            name,
            folder: Arc::new(folder),
            card_timeout,
        })
    }

    fn error(&self, reason: impl ToString) -> PrinterError {
        PrinterError {
            printer: self.name.clone(),
            reason: reason.to_string(),
        }
    }

    async fn status(&self, job_id: &str, serial: &str) -> Result<TicketStatus, PrinterError> {
        let folder = self.folder.clone();
        let (job_id, serial) = (job_id.to_owned(), serial.to_owned());
        tokio::task::spawn_blocking(move || folder.status(&job_id, &serial))
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))
    }

    /// Waits until the ticket is finished, then acknowledges its result file.
    async fn wait_finished(&self, job_id: &str, serial: &str) -> Result<Recovery, PrinterError> {
        let deadline = tokio::time::Instant::now() + self.card_timeout;
        loop {
            match self.status(job_id, serial).await? {
                TicketStatus::Finished(result) => {
                    let folder = self.folder.clone();
                    let (j, s) = (job_id.to_owned(), serial.to_owned());
                    let _ = tokio::task::spawn_blocking(move || folder.acknowledge(&j, &s)).await;
                    return Ok(Recovery::Finished(match result.outcome {
                        Outcome::Printed => Attempt::Printed,
                        Outcome::Jammed => Attempt::Spoiled(result.detail),
                        Outcome::Refused => Attempt::Refused(result.detail),
                    }));
                }
                TicketStatus::Unknown => return Ok(Recovery::NotPrinted),
                TicketStatus::Pending if tokio::time::Instant::now() >= deadline => {
                    return Err(self.error("card not finished in time; the printer may be stuck"));
                }
                TicketStatus::Pending => tokio::time::sleep(POLL).await,
            }
        }
    }
}

impl Printer for HotFolderPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver(&self) -> &'static str {
        "hotfolder"
    }

    async fn fence(&self, epoch: u64) -> Result<(), PrinterError> {
        let folder = self.folder.clone();
        tokio::task::spawn_blocking(move || folder.fence(epoch))
            .await
            .map_err(|e| self.error(e))?
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn print(&self, card: &CardJob) -> Result<Attempt, PrinterError> {
        let ticket = JobTicket {
            epoch: card.epoch,
            job_id: card.job_id.clone(),
            card_serial: card.card_serial.clone(),
            nik: card.nik.clone(),
            full_name: card.full_name.clone(),
            image: image_name(&card.job_id, &card.card_serial).map_err(|e| self.error(e))?,
        };
        let folder = self.folder.clone();
        let face = card.face();
        // Rendering is deterministic, so a re-submission (which writes
        // nothing anyway) would hand over the same image.
        tokio::task::spawn_blocking(move || -> Result<(), String> {
            let front = render_front(&face).map_err(|e| format!("cannot render the card: {e}"))?;
            folder.submit(&ticket, &front).map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| self.error(e))?
        .map_err(|e| self.error(e))?;
        match self.wait_finished(&card.job_id, &card.card_serial).await? {
            Recovery::Finished(attempt) => Ok(attempt),
            _ => Err(self.error("the ticket vanished from the hot folder")),
        }
    }

    async fn recover(&self, job_id: &str, card_serial: &str) -> Result<Recovery, PrinterError> {
        Ok(match self.wait_finished(job_id, card_serial).await? {
            // Refused by the fence: it never printed.
            Recovery::Finished(Attempt::Refused(_)) => Recovery::NotPrinted,
            other => other,
        })
    }
}
