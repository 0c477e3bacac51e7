//! A simulated hot-folder card printer: it serves one [`ektp_hotfolder`]
//! directory as the physical printer for the demo and the failover tests,
//! running as its own process so it outlives print-node crashes.
//!
//! It never prints the same `(job_id, card_serial)` twice: every ticket is
//! checked against the printer's log before the card is fed, so a ticket
//! re-submitted by a new print leader, or left in `work/` by a crash after
//! its log line was written, is completed from the log instead.
//!
//! Nor does it print for a deposed print leader: a ticket whose epoch is
//! below the hot folder's fence is finished as `refused` without feeding a
//! card (see [`ektp_hotfolder::HotFolder::fence`]).

pub mod printer;
