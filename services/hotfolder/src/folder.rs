//! [`HotFolder`]: one printer's directory tree and the operations both
//! sides of the protocol perform on it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::format::{self, IMAGE_SUFFIX, RESULT_SUFFIX, TICKET_SUFFIX};
use crate::fsutil::{self, io_err};
use crate::{HotFolderError, JobResult, JobTicket, LogEntry, Outcome, TicketStatus};

const INBOX: &str = "inbox";
const WORK: &str = "work";
const OUTBOX: &str = "outbox";
const TMP: &str = "tmp";
const CONTROL: &str = "control";
/// Images of printed cards, kept after their tickets are done.
const PRINTED: &str = "printed";
const LOG: &str = "printer.log";
const JAM: &str = "jam";
/// The fence in force, as decimal text; absent means 0.
const FENCE: &str = "fence";
/// Held (advisory lock) while the fence is read and raised, so two leaders
/// fencing at once cannot interleave and lower it. Never removed.
const FENCE_LOCK: &str = "fence.lock";
/// How long [`HotFolder::fence`] waits for another fencer's lock before
/// giving up with an error the caller can retry.
const FENCE_LOCK_TIMEOUT: Duration = Duration::from_secs(5);
const FENCE_LOCK_RETRY: Duration = Duration::from_millis(5);
/// Suffix given to a ticket file in `work/` that could not be parsed, so it
/// stays for inspection without blocking the inbox or printer recovery.
const REJECTED_SUFFIX: &str = ".rejected";

/// A printer's hot folder: `inbox/`, `work/`, `outbox/`, `tmp/`, `control/`,
/// `printed/` and `printer.log` under one root.
#[derive(Debug, Clone)]
pub struct HotFolder {
    root: PathBuf,
}

impl HotFolder {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        HotFolder { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Creates the root and its subdirectories if missing.
    pub fn ensure_dirs(&self) -> Result<(), HotFolderError> {
        for dir in [INBOX, WORK, OUTBOX, TMP, CONTROL, PRINTED] {
            let path = self.root.join(dir);
            fs::create_dir_all(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }

    fn ticket_path(&self, dir: &str, stem: &str) -> PathBuf {
        self.root.join(dir).join(format!("{stem}{TICKET_SUFFIX}"))
    }

    fn image_path(&self, dir: &str, name: &str) -> PathBuf {
        self.root.join(dir).join(name)
    }

    /// Where the images of printed cards are kept, `printed/{job_id}_{card_serial}.png`.
    pub fn printed_dir(&self) -> PathBuf {
        self.root.join(PRINTED)
    }

    fn result_path(&self, stem: &str) -> PathBuf {
        self.root
            .join(OUTBOX)
            .join(format!("{stem}{RESULT_SUFFIX}"))
    }

    fn log_path(&self) -> PathBuf {
        self.root.join(LOG)
    }

    fn jam_path(&self) -> PathBuf {
        self.root.join(CONTROL).join(JAM)
    }

    fn fence_path(&self) -> PathBuf {
        self.root.join(CONTROL).join(FENCE)
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP)
    }

    /// Drops a card into the inbox — its front `image` as
    /// `inbox/{job_id}_{card_serial}.png`, then the ticket naming it — unless
    /// this (job_id, serial) is already pending (inbox/work) or finished
    /// (outbox or log): idempotent, and a re-submission writes nothing.
    ///
    /// Both files are written to `tmp/` and renamed into place, the image
    /// first: once the ticket appears its image is complete. The ticket's
    /// [`image`](JobTicket::image) must be [`image_name`](crate::image_name)
    /// of its job id and serial ([`HotFolderError::BadName`] otherwise).
    ///
    /// Two submitters racing on the same ticket both write the same inbox
    /// names, so at most one of each results; the printer's own log check
    /// covers anything that still slips through.
    pub fn submit(&self, ticket: &JobTicket, image: &[u8]) -> Result<(), HotFolderError> {
        let stem = format::stem(&ticket.job_id, &ticket.card_serial)?;
        let image_name = format!("{stem}{IMAGE_SUFFIX}");
        if ticket.image != image_name {
            return Err(HotFolderError::BadName(format!(
                "ticket image {:?} must be {image_name:?}",
                ticket.image
            )));
        }
        if self.status(&ticket.job_id, &ticket.card_serial)? != TicketStatus::Unknown {
            return Ok(());
        }
        fsutil::write_atomic(&self.tmp_dir(), &self.image_path(INBOX, &image_name), image)?;
        let text = format::ticket_to_text(ticket);
        fsutil::write_atomic(
            &self.tmp_dir(),
            &self.ticket_path(INBOX, &stem),
            text.as_bytes(),
        )
    }

    /// Where a ticket is: Pending (in inbox or work), Finished(result)
    /// (outbox file or log line), or Unknown (never seen).
    ///
    /// A result rebuilt from the log has an empty `printer`.
    pub fn status(&self, job_id: &str, card_serial: &str) -> Result<TicketStatus, HotFolderError> {
        let stem = format::stem(job_id, card_serial)?;
        // Checked in the order a ticket travels (inbox, work, outbox, log),
        // and each stage is written before the previous one is removed, so a
        // ticket the printer moves on meanwhile is still seen at a later
        // stage; the log, checked last, is never removed.
        if fsutil::exists(&self.ticket_path(INBOX, &stem))?
            || fsutil::exists(&self.ticket_path(WORK, &stem))?
        {
            return Ok(TicketStatus::Pending);
        }
        let result_path = self.result_path(&stem);
        if let Some(bytes) = fsutil::read_optional(&result_path)? {
            let text = fsutil::utf8(&result_path, bytes)?;
            let result =
                format::result_from_text(&text).map_err(|reason| HotFolderError::Malformed {
                    path: result_path.clone(),
                    reason,
                })?;
            return Ok(TicketStatus::Finished(result));
        }
        Ok(match self.logged(job_id, card_serial)? {
            Some(entry) => TicketStatus::Finished(entry.to_result("")),
            None => TicketStatus::Unknown,
        })
    }

    /// Removes the outbox result file once the caller has recorded it (the
    /// log keeps the history). Acknowledging twice is harmless.
    pub fn acknowledge(&self, job_id: &str, card_serial: &str) -> Result<(), HotFolderError> {
        let stem = format::stem(job_id, card_serial)?;
        fsutil::remove_if_exists(&self.result_path(&stem))
    }

    /// Every complete log line, oldest first. An unterminated final line is
    /// an append cut short by a crash (or still in progress) and is ignored.
    pub fn read_log(&self) -> Result<Vec<LogEntry>, HotFolderError> {
        let path = self.log_path();
        let Some(mut bytes) = fsutil::read_optional(&path)? else {
            return Ok(Vec::new());
        };
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        bytes.truncate(complete);
        let text = fsutil::utf8(&path, bytes)?;
        text.lines()
            .enumerate()
            .filter(|(_, line)| !line.is_empty())
            .map(|(index, line)| {
                format::parse_log_line(line).map_err(|reason| HotFolderError::Malformed {
                    path: path.clone(),
                    reason: format!("line {}: {reason}", index + 1),
                })
            })
            .collect()
    }

    /// Oldest ticket in the inbox (name order), moved atomically to work/
    /// after its image (if any); None if the inbox is empty. Files not named
    /// like tickets are left alone. A ticket file that cannot be parsed is renamed to
    /// `work/{job_id}_{card_serial}.job.rejected` and reported as
    /// [`HotFolderError::Malformed`]; the next call moves on.
    pub fn take_next(&self) -> Result<Option<JobTicket>, HotFolderError> {
        let inbox = self.root.join(INBOX);
        for name in fsutil::sorted_file_names(&inbox)? {
            let Some((job_id, card_serial)) = format::parse_file_name(&name, TICKET_SUFFIX) else {
                continue;
            };
            // The image first: a ticket in work/ always has its image there,
            // even if the printer dies between the two renames.
            let image = format::image_name(&job_id, &card_serial)?;
            rename_if_exists(
                &self.image_path(INBOX, &image),
                &self.image_path(WORK, &image),
            )?;
            let from = inbox.join(&name);
            let to = self.root.join(WORK).join(&name);
            match fs::rename(&from, &to) {
                Ok(()) => return self.load_work_ticket(&to, &job_id, &card_serial).map(Some),
                // Gone between listing and renaming; nothing to take.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err(&from)(e)),
            }
        }
        Ok(None)
    }

    /// Tickets left in work/ (e.g. after a printer crash), for recovery at
    /// printer start, in name order. An unparseable one is set aside as in
    /// [`take_next`](Self::take_next) and reported; calling again skips it.
    pub fn in_work(&self) -> Result<Vec<JobTicket>, HotFolderError> {
        let work = self.root.join(WORK);
        let mut tickets = Vec::new();
        for name in fsutil::sorted_file_names(&work)? {
            if let Some((job_id, card_serial)) = format::parse_file_name(&name, TICKET_SUFFIX) {
                tickets.push(self.load_work_ticket(&work.join(&name), &job_id, &card_serial)?);
            }
        }
        Ok(tickets)
    }

    fn load_work_ticket(
        &self,
        path: &Path,
        job_id: &str,
        card_serial: &str,
    ) -> Result<JobTicket, HotFolderError> {
        let bytes = fs::read(path).map_err(io_err(path))?;
        let parsed = String::from_utf8(bytes)
            .map_err(|_| "not valid utf-8".to_owned())
            .and_then(|text| format::ticket_from_text(&text))
            .and_then(|ticket| {
                if ticket.job_id == job_id && ticket.card_serial == card_serial {
                    Ok(ticket)
                } else {
                    Err(format!(
                        "contents name {}_{}, not the file name",
                        ticket.job_id, ticket.card_serial
                    ))
                }
            });
        parsed.or_else(|reason| {
            let mut rejected = path.as_os_str().to_owned();
            rejected.push(REJECTED_SUFFIX);
            let rejected = PathBuf::from(rejected);
            fs::rename(path, &rejected).map_err(io_err(path))?;
            Err(HotFolderError::Malformed {
                path: rejected,
                reason,
            })
        })
    }

    /// The card image of a ticket in work/, if it has one and it is there.
    pub fn work_image(&self, ticket: &JobTicket) -> Result<Option<Vec<u8>>, HotFolderError> {
        format::stem(&ticket.job_id, &ticket.card_serial)?;
        if ticket.image.is_empty() {
            return Ok(None);
        }
        let name = format::image_name(&ticket.job_id, &ticket.card_serial)?;
        fsutil::read_optional(&self.image_path(WORK, &name))
    }

    /// Records a finished card: append+fsync the log line, write the outbox
    /// result, move the image of a printed card to `printed/` (remove it
    /// otherwise), then remove the work file. Order matters for crash safety:
    /// once the log line is durable the card counts as printed, and a crash
    /// before the last step leaves a work file that recovery completes from
    /// the log without printing again.
    pub fn finish(&self, ticket: &JobTicket, result: &JobResult) -> Result<(), HotFolderError> {
        check_matches(ticket, result)?;
        let entry = LogEntry {
            unix_ms: now_unix_ms(),
            job_id: result.job_id.clone(),
            card_serial: result.card_serial.clone(),
            outcome: result.outcome,
            detail: result.detail.clone(),
        };
        fsutil::append_durable(&self.log_path(), &format::log_line(&entry))?;
        self.publish(ticket, result)
    }

    /// Completes a ticket whose log line already exists (a duplicate
    /// submission, or recovery after a crash): writes the outbox result and
    /// removes the work file, without appending to the log.
    pub fn finish_logged(
        &self,
        ticket: &JobTicket,
        result: &JobResult,
    ) -> Result<(), HotFolderError> {
        check_matches(ticket, result)?;
        self.publish(ticket, result)
    }

    fn publish(&self, ticket: &JobTicket, result: &JobResult) -> Result<(), HotFolderError> {
        let stem = format::stem(&ticket.job_id, &ticket.card_serial)?;
        let text = format::result_to_text(result);
        fsutil::write_atomic(&self.tmp_dir(), &self.result_path(&stem), text.as_bytes())?;
        // Before the work ticket goes: a crash in between leaves the ticket,
        // and recovery finishes it again from the log.
        let image = format::image_name(&ticket.job_id, &ticket.card_serial)?;
        let work_image = self.image_path(WORK, &image);
        if result.outcome == Outcome::Printed {
            rename_if_exists(&work_image, &self.image_path(PRINTED, &image))?;
        } else {
            fsutil::remove_if_exists(&work_image)?;
        }
        fsutil::remove_if_exists(&self.ticket_path(WORK, &stem))
    }

    /// Finished entry for (job_id, serial) in the log, if any; the first
    /// one, should there ever be several.
    pub fn logged(
        &self,
        job_id: &str,
        card_serial: &str,
    ) -> Result<Option<LogEntry>, HotFolderError> {
        format::stem(job_id, card_serial)?;
        Ok(self
            .read_log()?
            .into_iter()
            .find(|entry| entry.job_id == job_id && entry.card_serial == card_serial))
    }

    /// Reads and clears the number of jams requested through `control/jam`
    /// (file containing a count); 0 if absent.
    pub fn take_jam_requests(&self) -> Result<u32, HotFolderError> {
        // Claiming the file by renaming it away means a request written
        // after this point lands in a fresh file instead of being lost.
        let jam = self.jam_path();
        let claimed = fsutil::unique_tmp_path(&self.tmp_dir(), "jam-claimed");
        match fs::rename(&jam, &claimed) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_err(&jam)(e)),
        }
        let bytes = fs::read(&claimed).map_err(io_err(&claimed))?;
        fsutil::remove_if_exists(&claimed)?;
        parse_count(&claimed, bytes)
    }

    /// Asks the printer to jam the next `n` cards (adds to any pending
    /// request; atomic write). Meant for one requester at a time (a demo or
    /// test): two concurrent requesters may overwrite each other's count.
    pub fn request_jams(&self, n: u32) -> Result<(), HotFolderError> {
        let jam = self.jam_path();
        let pending = match fsutil::read_optional(&jam)? {
            Some(bytes) => parse_count(&jam, bytes)?,
            None => 0,
        };
        let total = pending.saturating_add(n);
        fsutil::write_atomic(&self.tmp_dir(), &jam, format!("{total}\n").as_bytes())
    }

    /// Raises the fence in `control/fence` to `max(current, epoch)` and
    /// returns the fence now in force; never lowers it. A new print leader
    /// calls this with its epoch before reconciling, after which the printer
    /// refuses any ticket whose epoch is below the fence.
    ///
    /// The new value is written to `tmp/` and renamed into place, so readers
    /// see the old fence or the new one. Fencers are serialized by an
    /// advisory lock on `control/fence.lock`: without it, a fencer paused
    /// between reading and renaming (a SIGSTOP'd ex-leader) could wake up and
    /// put back a lower fence over a newer leader's. If the lock stays held
    /// for 5 seconds (its holder is paused mid-fence) this
    /// returns an [`HotFolderError::Io`] of kind `TimedOut` and the fence is
    /// unchanged; retrying is safe. The lock dies with its holder's process.
    ///
    /// Needs the folder's directories ([`ensure_dirs`](Self::ensure_dirs)).
    pub fn fence(&self, epoch: u64) -> Result<u64, HotFolderError> {
        let _lock = self.lock_fence()?;
        let current = self.fenced_epoch()?;
        if epoch <= current {
            return Ok(current);
        }
        fsutil::write_atomic(
            &self.tmp_dir(),
            &self.fence_path(),
            format!("{epoch}\n").as_bytes(),
        )?;
        Ok(epoch)
    }

    /// The fence in force: tickets with a lower epoch are refused. 0 when
    /// `control/fence` is absent (never fenced).
    pub fn fenced_epoch(&self) -> Result<u64, HotFolderError> {
        let path = self.fence_path();
        let Some(bytes) = fsutil::read_optional(&path)? else {
            return Ok(0);
        };
        let text = fsutil::utf8(&path, bytes)?;
        format::parse_epoch(&text).map_err(|reason| HotFolderError::Malformed {
            path: path.clone(),
            reason: format!("fence: {reason}"),
        })
    }

    /// Takes the fencers' lock; released when the returned file is dropped.
    fn lock_fence(&self) -> Result<File, HotFolderError> {
        let path = self.root.join(CONTROL).join(FENCE_LOCK);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err(&path))?;
        let deadline = Instant::now() + FENCE_LOCK_TIMEOUT;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(file),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    thread::sleep(FENCE_LOCK_RETRY);
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(io_err(&path)(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "another fencer has held the fence lock too long",
                    )));
                }
                Err(TryLockError::Error(e)) => return Err(io_err(&path)(e)),
            }
        }
    }
}

fn check_matches(ticket: &JobTicket, result: &JobResult) -> Result<(), HotFolderError> {
    format::stem(&ticket.job_id, &ticket.card_serial)?;
    if ticket.job_id != result.job_id || ticket.card_serial != result.card_serial {
        return Err(HotFolderError::BadName(format!(
            "result for {}_{} does not match ticket {}_{}",
            result.job_id, result.card_serial, ticket.job_id, ticket.card_serial
        )));
    }
    Ok(())
}

/// Renames `from` to `to`; a missing `from` is not an error (already moved,
/// or never there).
fn rename_if_exists(from: &Path, to: &Path) -> Result<(), HotFolderError> {
    match fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(from)(e)),
    }
}

fn parse_count(path: &Path, bytes: Vec<u8>) -> Result<u32, HotFolderError> {
    let text = fsutil::utf8(path, bytes)?;
    text.trim().parse().map_err(|_| HotFolderError::Malformed {
        path: path.to_path_buf(),
        reason: format!("jam count {:?} is not a non-negative integer", text.trim()),
    })
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}
