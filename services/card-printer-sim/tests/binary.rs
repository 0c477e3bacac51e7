//! The compiled simulator driven through its hot folder, as the demo and
//! the failover tests use it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use ektp_hotfolder::{HotFolder, JobTicket, Outcome, PNG_SIGNATURE, TicketStatus};

const BIN: &str = env!("CARGO_BIN_EXE_card-printer-sim");

/// A card front as the print node hands it over (only the signature is checked).
const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\nrendered card front";

/// Kills the simulator even when an assertion fails first.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(dir: &Path, stderr_log: &Path) -> Running {
    let child = Command::new(BIN)
        .args(["--dir", dir.to_str().unwrap()])
        .args([
            "--name",
            "sim-test",
            "--cards-per-hour",
            "3600000",
            "--poll-ms",
            "5",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(stderr_log).unwrap())
        .spawn()
        .unwrap();
    Running(child)
}

fn ticket(n: usize) -> JobTicket {
    JobTicket {
        job_id: format!("{n:06}"),
        card_serial: format!("CARD-{n}"),
        nik: "3527014507900001".into(),
        full_name: format!("Resident Number {n}"),
        epoch: 1,
        image: format!("{n:06}_CARD-{n}.png"),
    }
}

/// Waits until every ticket is finished, failing with the simulator's
/// stderr if it exits or takes too long.
fn wait_finished(folder: &HotFolder, tickets: &[JobTicket], sim: &mut Running, stderr_log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let finished = tickets
            .iter()
            .filter(|card| {
                matches!(
                    folder.status(&card.job_id, &card.card_serial).unwrap(),
                    TicketStatus::Finished(_)
                )
            })
            .count();
        if finished == tickets.len() {
            return;
        }
        if let Some(status) = sim.0.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
            panic!("simulator exited with {status}:\n{stderr}");
        }
        if Instant::now() > deadline {
            let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
            panic!(
                "only {finished}/{} finished before the deadline:\n{stderr}",
                tickets.len()
            );
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until the simulator's stderr satisfies `done`: it reports a card
/// just after the card is finished, so a test that stops it as soon as the
/// last card is finished could cut that line off.
fn wait_stderr(stderr_log: &Path, done: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stderr = std::fs::read_to_string(stderr_log).unwrap_or_default();
        if done(&stderr) {
            return;
        }
        assert!(Instant::now() < deadline, "stderr so far:\n{stderr}");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn the_simulator_prints_twenty_submitted_cards_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("printer");
    let stderr_log = dir.path().join("sim.stderr");
    let mut sim = start(&root, &stderr_log);

    let folder = HotFolder::new(&root);
    folder.ensure_dirs().unwrap();
    let tickets: Vec<JobTicket> = (1..=20).map(ticket).collect();
    for card in &tickets {
        folder.submit(card, IMAGE).unwrap();
        folder.submit(card, IMAGE).unwrap();
    }

    wait_finished(&folder, &tickets, &mut sim, &stderr_log);
    // Re-submitting finished cards must not bring them back.
    for card in &tickets {
        folder.submit(card, IMAGE).unwrap();
    }
    wait_stderr(&stderr_log, |s| s.matches("printed job=").count() >= 20);
    drop(sim);

    let log = folder.read_log().unwrap();
    assert_eq!(log.len(), 20);
    assert!(log.iter().all(|entry| entry.outcome == Outcome::Printed));
    let distinct: HashSet<(&str, &str)> = log
        .iter()
        .map(|entry| (entry.job_id.as_str(), entry.card_serial.as_str()))
        .collect();
    assert_eq!(distinct.len(), 20);
    let TicketStatus::Finished(result) = folder.status("000007", "CARD-7").unwrap() else {
        panic!("card 7 is not finished");
    };
    assert_eq!(result.printer, "sim-test");

    // Every printed card's image is kept.
    let kept = std::fs::read_dir(folder.printed_dir()).unwrap().count();
    assert_eq!(kept, 20);
    let image = std::fs::read(folder.printed_dir().join("000007_CARD-7.png")).unwrap();
    assert!(image.starts_with(&PNG_SIGNATURE));

    let stderr = std::fs::read_to_string(&stderr_log).unwrap();
    assert_eq!(stderr.matches("printed job=").count(), 20);
    assert!(!stderr.contains("Resident Number"), "stderr leaked a name");
}

#[test]
fn the_simulator_prints_only_the_tickets_at_or_above_the_fence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("printer");
    let stderr_log = dir.path().join("sim.stderr");
    let folder = HotFolder::new(&root);
    folder.ensure_dirs().unwrap();
    assert_eq!(folder.fence(7).unwrap(), 7);
    let mut sim = start(&root, &stderr_log);

    // Interleaved by name, so stale and current tickets alternate.
    let tickets: Vec<JobTicket> = (1..=6)
        .map(|n| JobTicket {
            epoch: if n % 2 == 1 { 6 } else { 7 },
            ..ticket(n)
        })
        .collect();
    for card in &tickets {
        folder.submit(card, IMAGE).unwrap();
    }
    wait_finished(&folder, &tickets, &mut sim, &stderr_log);
    wait_stderr(&stderr_log, |s| s.matches(" job=").count() >= 6);
    drop(sim);

    let log = folder.read_log().unwrap();
    assert_eq!(log.len(), 6);
    for card in &tickets {
        let entry = folder
            .logged(&card.job_id, &card.card_serial)
            .unwrap()
            .unwrap();
        if card.epoch == 6 {
            assert_eq!(entry.outcome, Outcome::Refused, "{entry:?}");
            assert_eq!(entry.detail, "stale epoch 6 below fence 7");
        } else {
            assert_eq!(entry.outcome, Outcome::Printed, "{entry:?}");
        }
        let TicketStatus::Finished(result) =
            folder.status(&card.job_id, &card.card_serial).unwrap()
        else {
            panic!("{} is not finished", card.job_id);
        };
        assert_eq!(result.outcome, entry.outcome);
        assert_eq!(result.printer, "sim-test");
    }
    let count = |outcome| log.iter().filter(|e| e.outcome == outcome).count();
    assert_eq!(count(Outcome::Printed), 3);
    assert_eq!(count(Outcome::Refused), 3);

    let stderr = std::fs::read_to_string(&stderr_log).unwrap();
    assert_eq!(stderr.matches("printed job=").count(), 3, "{stderr}");
    assert_eq!(stderr.matches("refused job=").count(), 3, "{stderr}");
    assert!(
        stderr.contains("refused job=000001 serial=CARD-1 epoch=6 fence=7"),
        "{stderr}"
    );
}

#[test]
fn a_zero_print_rate_is_refused_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args([
            "--dir",
            dir.path().to_str().unwrap(),
            "--cards-per-hour",
            "0",
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--cards-per-hour"), "{stderr}");
}
