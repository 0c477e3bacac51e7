//! The print loop: recover what a crash left in `work/`, then take tickets
//! from the inbox one at a time, "print" each by sleeping for the card's
//! print time, and record the outcome.
//!
//! Right before printing, each ticket's epoch is checked against the fence
//! ([`HotFolder::fenced_epoch`], read fresh every time): a ticket from a
//! print leader older than the fence is finished as [`Outcome::Refused`]
//! at once, without feeding a card. Then its card image: one that is missing
//! or not a PNG spoils the card ([`Outcome::Jammed`], [`IMAGE_DETAIL`]).
//! Images of printed cards stay under `printed/`.

use std::thread;
use std::time::Duration;

use ektp_hotfolder::{HotFolder, HotFolderError, JobResult, JobTicket, Outcome, PNG_SIGNATURE};

/// Wait after an I/O failure before polling again, so a broken folder does
/// not flood stderr.
const IO_ERROR_BACKOFF: Duration = Duration::from_secs(1);

pub const JAM_DETAIL: &str = "simulated jam";
/// Detail of a card spoiled because its image could not be printed.
pub const IMAGE_DETAIL: &str = "missing or unreadable card image";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterConfig {
    /// Written into every result's `printer` field.
    pub name: String,
    /// How long one card takes.
    pub print_time: Duration,
    /// Jam every Nth card fed; 0 never.
    pub jam_every: u64,
}

/// The time one card takes at `cards_per_hour`; `None` for a rate of 0.
pub fn print_time(cards_per_hour: u64) -> Option<Duration> {
    const NANOS_PER_HOUR: u64 = 3_600 * 1_000_000_000;
    NANOS_PER_HOUR
        .checked_div(cards_per_hour)
        .map(Duration::from_nanos)
}

/// What the printer did with one ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handled {
    /// A card was fed; the outcome may be a jam.
    Fed(JobResult),
    /// The log already had this ticket, so no card was fed and the outbox
    /// result was rebuilt from the log.
    AlreadyLogged(JobResult),
    /// The ticket's epoch is below the fence: no card was fed, and the
    /// result (outcome [`Outcome::Refused`]) was logged and published.
    Refused(JobResult),
}

pub struct Printer {
    folder: HotFolder,
    config: PrinterConfig,
    cards_fed: u64,
    jams_requested: u32,
}

impl Printer {
    pub fn new(folder: HotFolder, config: PrinterConfig) -> Self {
        Printer {
            folder,
            config,
            cards_fed: 0,
            jams_requested: 0,
        }
    }

    pub fn folder(&self) -> &HotFolder {
        &self.folder
    }

    /// Completes every ticket a previous run left in `work/`: those already
    /// logged get their outbox result from the log, those below the fence
    /// are refused, the rest are printed.
    pub fn recover(&mut self) -> Result<Vec<Handled>, HotFolderError> {
        let tickets = loop {
            match self.folder.in_work() {
                Ok(tickets) => break tickets,
                // The bad file has been set aside; list again without it.
                Err(err @ HotFolderError::Malformed { .. }) => eprintln!("rejected: {err}"),
                Err(err) => return Err(err),
            }
        };
        tickets.iter().map(|ticket| self.process(ticket)).collect()
    }

    /// Handles one ticket that is in `work/`. The log is consulted first, so
    /// a ticket that was ever finished is never fed again; then the fence,
    /// so a ticket from a deposed print leader is refused instead of fed.
    pub fn process(&mut self, ticket: &JobTicket) -> Result<Handled, HotFolderError> {
        if let Some(entry) = self.folder.logged(&ticket.job_id, &ticket.card_serial)? {
            let result = entry.to_result(&self.config.name);
            self.folder.finish_logged(ticket, &result)?;
            eprintln!(
                "already logged job={} serial={} outcome={}: not printed again",
                ticket.job_id, ticket.card_serial, result.outcome
            );
            return Ok(Handled::AlreadyLogged(result));
        }

        // Read fresh for every ticket, as late as possible: a leader that
        // fenced before this point has its fence honoured.
        let fence = self.folder.fenced_epoch()?;
        if ticket.epoch < fence {
            let result = JobResult {
                job_id: ticket.job_id.clone(),
                card_serial: ticket.card_serial.clone(),
                outcome: Outcome::Refused,
                detail: format!("stale epoch {} below fence {fence}", ticket.epoch),
                printer: self.config.name.clone(),
            };
            self.folder.finish(ticket, &result)?;
            eprintln!(
                "refused job={} serial={} epoch={} fence={fence}",
                ticket.job_id, ticket.card_serial, ticket.epoch
            );
            return Ok(Handled::Refused(result));
        }

        // The printer reads the image as it feeds the card: without a
        // printable one the blank is spoiled.
        let image = self.folder.work_image(ticket)?;
        if !image.is_some_and(|bytes| bytes.starts_with(&PNG_SIGNATURE)) {
            self.cards_fed += 1;
            let result = JobResult {
                job_id: ticket.job_id.clone(),
                card_serial: ticket.card_serial.clone(),
                outcome: Outcome::Jammed,
                detail: IMAGE_DETAIL.to_owned(),
                printer: self.config.name.clone(),
            };
            self.folder.finish(ticket, &result)?;
            eprintln!(
                "jammed job={} serial={}: {IMAGE_DETAIL}",
                ticket.job_id, ticket.card_serial
            );
            return Ok(Handled::Fed(result));
        }

        thread::sleep(self.config.print_time);
        self.cards_fed += 1;
        let jammed = if self.jams_requested > 0 {
            self.jams_requested -= 1;
            true
        } else {
            self.cards_fed.checked_rem(self.config.jam_every) == Some(0)
        };
        let (outcome, detail) = if jammed {
            (Outcome::Jammed, JAM_DETAIL)
        } else {
            (Outcome::Printed, "")
        };
        let result = JobResult {
            job_id: ticket.job_id.clone(),
            card_serial: ticket.card_serial.clone(),
            outcome,
            detail: detail.to_owned(),
            printer: self.config.name.clone(),
        };
        self.folder.finish(ticket, &result)?;
        eprintln!(
            "{} job={} serial={}",
            outcome, ticket.job_id, ticket.card_serial
        );
        Ok(Handled::Fed(result))
    }

    /// Picks up jam requests, then handles the oldest inbox ticket, if any.
    ///
    /// A fence that cannot be read stops intake: tickets wait in the inbox
    /// rather than be taken into `work/` and left there unprinted.
    pub fn poll_once(&mut self) -> Result<Option<Handled>, HotFolderError> {
        let jams = self.folder.take_jam_requests()?;
        self.jams_requested = self.jams_requested.saturating_add(jams);
        self.folder.fenced_epoch()?;
        match self.folder.take_next()? {
            Some(ticket) => self.process(&ticket).map(Some),
            None => Ok(None),
        }
    }

    /// Serves the inbox forever; errors are reported and retried, since the
    /// printer must outlast whatever the print nodes do to the folder.
    pub fn run(&mut self, poll: Duration) -> ! {
        loop {
            match self.poll_once() {
                Ok(Some(_)) => {}
                Ok(None) => thread::sleep(poll),
                // One bad ticket, already set aside: go on with the next.
                Err(err) if is_set_aside(&err) => eprintln!("rejected: {err}"),
                // I/O trouble, or a file that stays bad (a garbled fence or
                // log) until someone fixes it.
                Err(err) => {
                    eprintln!("error: {err}");
                    thread::sleep(poll.max(IO_ERROR_BACKOFF));
                }
            }
        }
    }
}

/// A ticket file that [`HotFolder::take_next`] could not parse and renamed
/// to `*.rejected`: a one-off, not a reason to slow down.
fn is_set_aside(err: &HotFolderError) -> bool {
    matches!(err, HotFolderError::Malformed { path, .. }
        if path.extension().is_some_and(|ext| ext == "rejected"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use ektp_hotfolder::TicketStatus;
    use std::fs;

    fn printer(jam_every: u64) -> (tempfile::TempDir, Printer) {
        let dir = tempfile::tempdir().unwrap();
        let folder = HotFolder::new(dir.path());
        folder.ensure_dirs().unwrap();
        let config = PrinterConfig {
            name: "printer-test".into(),
            print_time: Duration::ZERO,
            jam_every,
        };
        (dir, Printer::new(folder, config))
    }

    fn ticket(job_id: &str) -> JobTicket {
        JobTicket {
            job_id: job_id.into(),
            card_serial: "S1".into(),
            nik: "3527014507900001".into(),
            full_name: "Siti Rahayu".into(),
            epoch: 0,
            image: format!("{job_id}_S1.png"),
        }
    }

    /// A card front as the print node renders it (only the signature is checked).
    const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\nrendered card front";

    fn ticket_at(job_id: &str, epoch: u64) -> JobTicket {
        JobTicket {
            epoch,
            ..ticket(job_id)
        }
    }

    fn work_file(printer: &Printer, job_id: &str) -> std::path::PathBuf {
        printer
            .folder()
            .root()
            .join("work")
            .join(format!("{job_id}_S1.job"))
    }

    fn outcomes(printer: &Printer) -> Vec<Outcome> {
        let log = printer.folder().read_log().unwrap();
        log.into_iter().map(|entry| entry.outcome).collect()
    }

    #[test]
    fn a_logged_ticket_is_never_printed_twice() {
        let (_dir, mut printer) = printer(0);
        printer.folder().submit(&ticket("000001"), IMAGE).unwrap();
        let first = printer.poll_once().unwrap();
        assert!(matches!(first, Some(Handled::Fed(_))));

        // The same ticket handed to the printer again, as a stray duplicate would be.
        let again = printer.process(&ticket("000001")).unwrap();
        let Handled::AlreadyLogged(result) = again else {
            panic!("printed a logged ticket again: {again:?}");
        };
        assert_eq!(result.outcome, Outcome::Printed);
        assert_eq!(result.printer, "printer-test");
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
    }

    #[test]
    fn a_duplicate_that_bypasses_submit_is_completed_from_the_log() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket("000001"), IMAGE).unwrap();
        let inbox_file = folder.root().join("inbox").join("000001_S1.job");
        let bytes = fs::read(&inbox_file).unwrap();
        printer.poll_once().unwrap();
        folder.acknowledge("000001", "S1").unwrap();

        fs::write(&inbox_file, bytes).unwrap();
        let again = printer.poll_once().unwrap();
        assert!(matches!(again, Some(Handled::AlreadyLogged(_))));
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
        assert!(matches!(
            folder.status("000001", "S1").unwrap(),
            ektp_hotfolder::TicketStatus::Finished(_)
        ));
        assert!(!work_file(&printer, "000001").exists());
    }

    #[test]
    fn recovering_a_work_ticket_that_was_already_logged_adds_no_log_line() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket("000001"), IMAGE).unwrap();
        let taken = folder.take_next().unwrap().unwrap();
        let bytes = fs::read(work_file(&printer, "000001")).unwrap();
        printer.process(&taken).unwrap();
        folder.acknowledge("000001", "S1").unwrap();
        // A crash right after the log append: the work file is still there.
        fs::write(work_file(&printer, "000001"), bytes).unwrap();

        let recovered = printer.recover().unwrap();
        assert!(matches!(recovered[..], [Handled::AlreadyLogged(_)]));
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
        assert!(!work_file(&printer, "000001").exists());
        let result = folder.root().join("outbox").join("000001_S1.result");
        assert!(result.exists());
    }

    #[test]
    fn recovering_a_work_ticket_that_was_never_logged_prints_it() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket("000001"), IMAGE).unwrap();
        folder.take_next().unwrap().unwrap();

        let recovered = printer.recover().unwrap();
        assert!(matches!(recovered[..], [Handled::Fed(_)]));
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
        assert!(folder.in_work().unwrap().is_empty());
    }

    #[test]
    fn a_requested_jam_hits_only_the_next_card() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        for job_id in ["000001", "000002"] {
            folder.submit(&ticket(job_id), IMAGE).unwrap();
        }
        folder.request_jams(1).unwrap();
        while printer.poll_once().unwrap().is_some() {}

        assert_eq!(outcomes(&printer), [Outcome::Jammed, Outcome::Printed]);
        let log = folder.read_log().unwrap();
        assert_eq!(log[0].detail, JAM_DETAIL);
    }

    #[test]
    fn jam_every_n_jams_every_nth_card_fed() {
        let (_dir, mut printer) = printer(3);
        for n in 1..=6 {
            let job_id = format!("{n:06}");
            printer.folder().submit(&ticket(&job_id), IMAGE).unwrap();
        }
        while printer.poll_once().unwrap().is_some() {}

        use Outcome::{Jammed, Printed};
        assert_eq!(
            outcomes(&printer),
            [Printed, Printed, Jammed, Printed, Printed, Jammed]
        );
    }

    #[test]
    fn a_ticket_below_the_fence_is_refused_and_not_printed() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.fence(7).unwrap();
        folder.submit(&ticket_at("000001", 6), IMAGE).unwrap();

        let handled = printer.poll_once().unwrap();
        let Some(Handled::Refused(result)) = handled else {
            panic!("a stale ticket was not refused: {handled:?}");
        };
        assert_eq!(result.outcome, Outcome::Refused);
        assert_eq!(result.detail, "stale epoch 6 below fence 7");
        assert_eq!(result.printer, "printer-test");
        assert_eq!(
            folder.status("000001", "S1").unwrap(),
            TicketStatus::Finished(result.clone())
        );
        let log = folder.read_log().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].outcome, Outcome::Refused);
        assert_eq!(log[0].detail, "stale epoch 6 below fence 7");
        assert!(!log.iter().any(|entry| entry.outcome == Outcome::Printed));
        assert_eq!(printer.cards_fed, 0);
        assert!(!work_file(&printer, "000001").exists());
    }

    #[test]
    fn a_ticket_at_or_above_the_fence_prints() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.fence(7).unwrap();
        folder.submit(&ticket_at("000001", 7), IMAGE).unwrap();
        folder.submit(&ticket_at("000002", 8), IMAGE).unwrap();
        while let Some(handled) = printer.poll_once().unwrap() {
            assert!(matches!(handled, Handled::Fed(_)), "{handled:?}");
        }
        assert_eq!(outcomes(&printer), [Outcome::Printed, Outcome::Printed]);
        assert_eq!(printer.cards_fed, 2);
    }

    #[test]
    fn the_fence_is_read_afresh_for_every_ticket() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket_at("000001", 3), IMAGE).unwrap();
        folder.submit(&ticket_at("000002", 3), IMAGE).unwrap();
        printer.poll_once().unwrap();
        // A new leader fences between two tickets of the old one.
        folder.fence(4).unwrap();
        printer.poll_once().unwrap();
        assert_eq!(outcomes(&printer), [Outcome::Printed, Outcome::Refused]);
    }

    #[test]
    fn a_refused_ticket_uses_no_blank_and_no_requested_jam() {
        let (_dir, mut printer) = printer(2);
        let folder = printer.folder().clone();
        folder.fence(5).unwrap();
        folder.request_jams(1).unwrap();
        for (job_id, epoch) in [("000001", 4), ("000002", 5), ("000003", 5), ("000004", 5)] {
            folder.submit(&ticket_at(job_id, epoch), IMAGE).unwrap();
        }
        while printer.poll_once().unwrap().is_some() {}

        // The requested jam and the every-2nd jam both skip the refused ticket.
        use Outcome::{Jammed, Printed, Refused};
        assert_eq!(outcomes(&printer), [Refused, Jammed, Jammed, Printed]);
        assert_eq!(printer.cards_fed, 3);
    }

    #[test]
    fn a_logged_ticket_below_the_fence_is_still_answered_from_the_log() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket_at("000001", 1), IMAGE).unwrap();
        printer.poll_once().unwrap();
        folder.fence(2).unwrap();

        let again = printer.process(&ticket_at("000001", 1)).unwrap();
        let Handled::AlreadyLogged(result) = again else {
            panic!("a logged ticket was not answered from the log: {again:?}");
        };
        assert_eq!(result.outcome, Outcome::Printed);
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
    }

    #[test]
    fn recovery_refuses_a_stale_ticket_left_in_work() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket_at("000001", 1), IMAGE).unwrap();
        folder.submit(&ticket_at("000002", 2), IMAGE).unwrap();
        folder.take_next().unwrap().unwrap();
        folder.take_next().unwrap().unwrap();
        folder.fence(2).unwrap();

        let recovered = printer.recover().unwrap();
        assert!(
            matches!(recovered[..], [Handled::Refused(_), Handled::Fed(_)]),
            "{recovered:?}"
        );
        assert_eq!(outcomes(&printer), [Outcome::Refused, Outcome::Printed]);
        assert!(folder.in_work().unwrap().is_empty());
        assert_eq!(printer.cards_fed, 1);
    }

    #[test]
    fn an_unreadable_fence_stops_intake_without_printing() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        let fence = folder.root().join("control").join("fence");
        fs::write(&fence, "not a number\n").unwrap();
        folder.submit(&ticket_at("000001", 9), IMAGE).unwrap();

        let err = printer.poll_once().unwrap_err();
        assert!(!is_set_aside(&err), "{err}");
        assert!(outcomes(&printer).is_empty());
        assert!(folder.root().join("inbox").join("000001_S1.job").exists());

        fs::write(&fence, "9\n").unwrap();
        assert!(matches!(
            printer.poll_once().unwrap(),
            Some(Handled::Fed(_))
        ));
    }

    #[test]
    fn only_a_set_aside_ticket_counts_as_a_one_off_rejection() {
        let (_dir, printer) = printer(0);
        let folder = printer.folder();
        fs::write(folder.root().join("inbox").join("000001_S1.job"), "junk\n").unwrap();
        let err = folder.take_next().unwrap_err();
        assert!(is_set_aside(&err), "{err}");
    }

    #[test]
    fn a_printed_card_keeps_its_image_under_printed() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        folder.submit(&ticket("000001"), IMAGE).unwrap();
        assert!(matches!(
            printer.poll_once().unwrap(),
            Some(Handled::Fed(_))
        ));
        assert_eq!(outcomes(&printer), [Outcome::Printed]);
        let kept = folder.printed_dir().join("000001_S1.png");
        assert_eq!(fs::read(kept).unwrap(), IMAGE);
        assert!(!folder.root().join("work").join("000001_S1.png").exists());
    }

    #[test]
    fn a_card_without_a_readable_image_is_jammed() {
        let (_dir, mut printer) = printer(0);
        let folder = printer.folder().clone();
        // Not a PNG.
        folder.submit(&ticket("000001"), b"GIF89a").unwrap();
        // The image vanished before the printer took the ticket.
        folder.submit(&ticket("000002"), IMAGE).unwrap();
        fs::remove_file(folder.root().join("inbox").join("000002_S1.png")).unwrap();
        // A ticket from before images existed.
        fs::write(
            folder.root().join("inbox").join("000003_S1.job"),
            "job_id=000003\ncard_serial=S1\nnik=3527014507900001\nfull_name=Siti Rahayu\n",
        )
        .unwrap();
        while printer.poll_once().unwrap().is_some() {}

        let log = folder.read_log().unwrap();
        assert_eq!(log.len(), 3);
        for entry in &log {
            assert_eq!(entry.outcome, Outcome::Jammed, "{entry:?}");
            assert_eq!(entry.detail, IMAGE_DETAIL);
        }
        assert!(fs::read_dir(folder.printed_dir()).unwrap().next().is_none());
        assert!(
            fs::read_dir(folder.root().join("work"))
                .unwrap()
                .next()
                .is_none()
        );
    }

    #[test]
    fn print_time_follows_the_hourly_rate() {
        assert_eq!(print_time(3_600), Some(Duration::from_secs(1)));
        assert_eq!(print_time(36_000), Some(Duration::from_millis(100)));
        assert_eq!(print_time(0), None);
    }
}
