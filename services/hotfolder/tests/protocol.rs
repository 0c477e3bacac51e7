//! The hot-folder protocol exercised on real directories, playing both the
//! print node and the printer.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::io::Write;

use ektp_hotfolder::{
    HotFolder, HotFolderError, JobResult, JobTicket, LogEntry, Outcome, PNG_SIGNATURE,
    TicketStatus, image_name,
};

/// A card image as the print node hands it over (only its signature matters here).
const IMAGE: &[u8] = b"\x89PNG\r\n\x1a\ncard front";

fn folder() -> (tempfile::TempDir, HotFolder) {
    let dir = tempfile::tempdir().unwrap();
    let folder = HotFolder::new(dir.path().join("printer"));
    folder.ensure_dirs().unwrap();
    (dir, folder)
}

fn ticket(job_id: &str, card_serial: &str) -> JobTicket {
    JobTicket {
        job_id: job_id.into(),
        card_serial: card_serial.into(),
        nik: "3527014507900001".into(),
        full_name: "Siti Rahayu".into(),
        epoch: 1,
        image: format!("{job_id}_{card_serial}.png"),
    }
}

fn printed(ticket: &JobTicket) -> JobResult {
    JobResult {
        job_id: ticket.job_id.clone(),
        card_serial: ticket.card_serial.clone(),
        outcome: Outcome::Printed,
        detail: "ok".into(),
        printer: "printer-1".into(),
    }
}

/// Files in `dir`, card images (`.png`) aside: they travel with their
/// tickets and are counted by the image tests.
fn file_count(folder: &HotFolder, dir: &str) -> usize {
    fs::read_dir(folder.root().join(dir))
        .unwrap()
        .filter(|entry| {
            !entry
                .as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".png")
        })
        .count()
}

fn names_in(folder: &HotFolder, dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(folder.root().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Plays the printer for one card: take it from the inbox and finish it.
fn print_next(folder: &HotFolder) -> JobTicket {
    let taken = folder.take_next().unwrap().expect("a ticket in the inbox");
    folder.finish(&taken, &printed(&taken)).unwrap();
    taken
}

#[test]
fn a_ticket_submitted_twice_leaves_one_inbox_file() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(file_count(&folder, "inbox"), 1);
    assert_eq!(file_count(&folder, "tmp"), 0);
}

#[test]
fn a_ticket_being_printed_is_not_resubmitted() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    folder.take_next().unwrap().unwrap();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(file_count(&folder, "inbox"), 0);
}

#[test]
fn a_finished_ticket_is_not_resubmitted_even_after_acknowledging() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    print_next(&folder);

    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(file_count(&folder, "inbox"), 0);

    folder.acknowledge("000001", "S1").unwrap();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(file_count(&folder, "inbox"), 0);
    assert_eq!(folder.read_log().unwrap().len(), 1);
}

#[test]
fn status_walks_from_unknown_through_pending_to_finished() {
    let (_dir, folder) = folder();
    let card = ticket("000001", "S1");
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Unknown
    );

    folder.submit(&card, IMAGE).unwrap();
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Pending
    );

    let taken = folder.take_next().unwrap().unwrap();
    assert_eq!(taken, card);
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Pending
    );

    folder.finish(&taken, &printed(&taken)).unwrap();
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Finished(printed(&card))
    );
    assert_eq!(file_count(&folder, "work"), 0);

    // Once acknowledged, only the log remembers, and it does not know the printer.
    folder.acknowledge("000001", "S1").unwrap();
    folder.acknowledge("000001", "S1").unwrap();
    let from_log = JobResult {
        printer: String::new(),
        ..printed(&card)
    };
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Finished(from_log)
    );
    assert_eq!(
        folder.status("000001", "S2").unwrap(),
        TicketStatus::Unknown
    );
}

#[test]
fn the_log_records_one_line_per_finished_card() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    let taken = folder.take_next().unwrap().unwrap();
    let jam = JobResult {
        outcome: Outcome::Jammed,
        detail: "simulated jam".into(),
        ..printed(&taken)
    };
    folder.finish(&taken, &jam).unwrap();

    let log = folder.read_log().unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(
        (log[0].job_id.as_str(), log[0].card_serial.as_str()),
        ("000001", "S1")
    );
    assert_eq!(log[0].outcome, Outcome::Jammed);
    assert_eq!(log[0].detail, "simulated jam");
    assert!(log[0].unix_ms > 0);
    assert_eq!(folder.logged("000001", "S1").unwrap(), Some(log[0].clone()));
    assert_eq!(folder.logged("000001", "S9").unwrap(), None);
}

#[test]
fn a_torn_last_log_line_is_ignored_and_overwritten_by_the_next_append() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    print_next(&folder);

    let log_path = folder.root().join("printer.log");
    let mut log = fs::OpenOptions::new().append(true).open(&log_path).unwrap();
    log.write_all(b"1700000000000\t000002\tS2\tpri").unwrap();
    drop(log);
    assert_eq!(folder.read_log().unwrap().len(), 1);
    assert_eq!(
        folder.status("000002", "S2").unwrap(),
        TicketStatus::Unknown
    );

    folder.submit(&ticket("000002", "S2"), IMAGE).unwrap();
    print_next(&folder);
    let log: Vec<LogEntry> = folder.read_log().unwrap();
    let serials: Vec<&str> = log.iter().map(|entry| entry.card_serial.as_str()).collect();
    assert_eq!(serials, ["S1", "S2"]);
}

#[test]
fn a_missing_log_reads_as_empty() {
    let (_dir, folder) = folder();
    assert!(folder.read_log().unwrap().is_empty());
}

#[test]
fn a_garbled_complete_log_line_is_reported_not_skipped() {
    let (_dir, folder) = folder();
    fs::write(folder.root().join("printer.log"), "not a log line\n").unwrap();
    assert!(matches!(
        folder.read_log(),
        Err(HotFolderError::Malformed { .. })
    ));
}

#[test]
fn take_next_hands_out_tickets_oldest_name_first() {
    let (_dir, folder) = folder();
    for job_id in ["000003", "000001", "000002"] {
        folder.submit(&ticket(job_id, "S1"), IMAGE).unwrap();
    }
    fs::write(folder.root().join("inbox").join("README.txt"), "ignored").unwrap();

    let order: Vec<String> = std::iter::from_fn(|| folder.take_next().unwrap())
        .map(|taken| taken.job_id)
        .collect();
    assert_eq!(order, ["000001", "000002", "000003"]);
    assert_eq!(folder.take_next().unwrap(), None);
    assert_eq!(file_count(&folder, "work"), 3);
}

#[test]
fn tickets_left_in_work_are_listed_for_recovery() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000002", "S1"), IMAGE).unwrap();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    folder.take_next().unwrap().unwrap();
    folder.take_next().unwrap().unwrap();

    let left = folder.in_work().unwrap();
    assert_eq!(left, [ticket("000001", "S1"), ticket("000002", "S1")]);
}

#[test]
fn names_outside_the_safe_alphabet_are_rejected() {
    let (_dir, folder) = folder();
    for (job_id, card_serial) in [
        ("", "S1"),
        ("000001", ""),
        ("../000001", "S1"),
        ("000001", "S_1"),
        ("000 001", "S1"),
        ("000001", "S1\n"),
        ("00000é", "S1"),
    ] {
        assert!(
            matches!(
                folder.submit(&ticket(job_id, card_serial), IMAGE),
                Err(HotFolderError::BadName(_))
            ),
            "{job_id:?} {card_serial:?} should be rejected"
        );
        assert!(matches!(
            folder.status(job_id, card_serial),
            Err(HotFolderError::BadName(_))
        ));
    }
    assert_eq!(file_count(&folder, "inbox"), 0);
}

#[test]
fn free_text_with_line_breaks_survives_the_inbox() {
    let (_dir, folder) = folder();
    let mut card = ticket("000001", "S1");
    card.full_name = "Siti\nnik=0000000000000000\\n\tRahayu".into();
    folder.submit(&card, IMAGE).unwrap();
    assert_eq!(folder.take_next().unwrap(), Some(card));
}

#[test]
fn a_malformed_ticket_is_set_aside_and_the_next_one_is_taken() {
    let (_dir, folder) = folder();
    fs::write(
        folder.root().join("inbox").join("000001_S1.job"),
        "job_id=000001\n",
    )
    .unwrap();
    folder.submit(&ticket("000002", "S1"), IMAGE).unwrap();

    assert!(matches!(
        folder.take_next(),
        Err(HotFolderError::Malformed { .. })
    ));
    assert_eq!(folder.take_next().unwrap(), Some(ticket("000002", "S1")));
    assert_eq!(folder.in_work().unwrap(), [ticket("000002", "S1")]);
    assert!(
        folder
            .root()
            .join("work")
            .join("000001_S1.job.rejected")
            .exists()
    );
}

#[test]
fn jam_requests_add_up_and_are_cleared_when_taken() {
    let (_dir, folder) = folder();
    assert_eq!(folder.take_jam_requests().unwrap(), 0);
    folder.request_jams(2).unwrap();
    folder.request_jams(3).unwrap();
    assert_eq!(folder.take_jam_requests().unwrap(), 5);
    assert_eq!(folder.take_jam_requests().unwrap(), 0);
    folder.request_jams(1).unwrap();
    assert_eq!(folder.take_jam_requests().unwrap(), 1);
    assert_eq!(file_count(&folder, "tmp"), 0);
}

#[test]
fn a_result_that_does_not_match_its_ticket_is_refused() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    let taken = folder.take_next().unwrap().unwrap();
    let other = printed(&ticket("000001", "S2"));
    assert!(folder.finish(&taken, &other).is_err());
    assert!(folder.read_log().unwrap().is_empty());
}

#[test]
fn an_unfenced_folder_reads_as_fence_zero() {
    let (_dir, folder) = folder();
    assert_eq!(folder.fenced_epoch().unwrap(), 0);
    assert!(!folder.root().join("control").join("fence").exists());
}

#[test]
fn the_fence_only_grows() {
    let (_dir, folder) = folder();
    assert_eq!(folder.fence(5).unwrap(), 5);
    assert_eq!(folder.fenced_epoch().unwrap(), 5);
    assert_eq!(folder.fence(3).unwrap(), 5);
    assert_eq!(folder.fenced_epoch().unwrap(), 5);
    assert_eq!(folder.fence(5).unwrap(), 5);
    assert_eq!(folder.fence(9).unwrap(), 9);
    assert_eq!(folder.fenced_epoch().unwrap(), 9);
    assert_eq!(
        fs::read_to_string(folder.root().join("control").join("fence")).unwrap(),
        "9\n"
    );
    assert_eq!(file_count(&folder, "tmp"), 0);
}

#[test]
fn a_fence_written_by_hand_is_read_and_a_garbled_one_is_reported() {
    let (_dir, folder) = folder();
    let fence = folder.root().join("control").join("fence");
    fs::write(&fence, " 12 \n").unwrap();
    assert_eq!(folder.fenced_epoch().unwrap(), 12);
    assert_eq!(folder.fence(4).unwrap(), 12);

    fs::write(&fence, "twelve\n").unwrap();
    assert!(matches!(
        folder.fenced_epoch(),
        Err(HotFolderError::Malformed { .. })
    ));
    // Not knowing the fence, fencing must not guess over it.
    assert!(folder.fence(20).is_err());
    assert_eq!(fs::read_to_string(&fence).unwrap(), "twelve\n");
}

#[test]
fn concurrent_fencers_leave_the_highest_epoch() {
    let (_dir, folder) = folder();
    std::thread::scope(|scope| {
        for epoch in 1..=16u64 {
            let folder = folder.clone();
            scope.spawn(move || {
                for _ in 0..10 {
                    assert!(folder.fence(epoch).unwrap() >= epoch);
                }
            });
        }
    });
    assert_eq!(folder.fenced_epoch().unwrap(), 16);
}

#[test]
fn a_ticket_epoch_survives_the_inbox_and_old_tickets_read_as_epoch_zero() {
    let (_dir, folder) = folder();
    let mut card = ticket("000001", "S1");
    card.epoch = 42;
    folder.submit(&card, IMAGE).unwrap();
    assert_eq!(folder.take_next().unwrap(), Some(card));

    // A ticket written before fencing existed has no epoch line.
    fs::write(
        folder.root().join("inbox").join("000002_S1.job"),
        "job_id=000002\ncard_serial=S1\nnik=3527014507900001\nfull_name=Siti Rahayu\n",
    )
    .unwrap();
    let old = folder.take_next().unwrap().unwrap();
    assert_eq!(old.epoch, 0);
}

#[test]
fn a_refused_ticket_is_finished_and_logged_as_refused() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    let taken = folder.take_next().unwrap().unwrap();
    let refused = JobResult {
        outcome: Outcome::Refused,
        detail: "stale epoch 1 below fence 2".into(),
        ..printed(&taken)
    };
    folder.finish(&taken, &refused).unwrap();
    assert_eq!(
        folder.status("000001", "S1").unwrap(),
        TicketStatus::Finished(refused.clone())
    );
    folder.acknowledge("000001", "S1").unwrap();
    let TicketStatus::Finished(from_log) = folder.status("000001", "S1").unwrap() else {
        panic!("a refused ticket is not finished once acknowledged");
    };
    assert_eq!(from_log.outcome, Outcome::Refused);
    assert_eq!(from_log.detail, refused.detail);
    // Finished means a re-submission is a no-op, as for any outcome.
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(file_count(&folder, "inbox"), 0);
}

#[test]
fn the_image_is_written_beside_the_ticket_and_named_in_it() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    assert_eq!(
        names_in(&folder, "inbox"),
        ["000001_S1.job", "000001_S1.png"]
    );
    assert_eq!(
        fs::read(folder.root().join("inbox").join("000001_S1.png")).unwrap(),
        IMAGE
    );
    let text = fs::read_to_string(folder.root().join("inbox").join("000001_S1.job")).unwrap();
    assert!(text.contains("image=000001_S1.png\n"), "{text}");
    assert_eq!(names_in(&folder, "tmp"), Vec::<String>::new());
    assert!(IMAGE.starts_with(&PNG_SIGNATURE));
}

#[test]
fn a_ticket_must_name_its_own_image() {
    let (_dir, folder) = folder();
    for image in ["", "000002_S1.png", "../000001_S1.png", "000001_S1.jpg"] {
        let mut card = ticket("000001", "S1");
        card.image = image.into();
        assert!(
            matches!(folder.submit(&card, IMAGE), Err(HotFolderError::BadName(_))),
            "image {image:?} was accepted"
        );
    }
    assert_eq!(names_in(&folder, "inbox"), Vec::<String>::new());
    assert_eq!(image_name("000001", "S1").unwrap(), "000001_S1.png");
}

#[test]
fn resubmitting_a_pending_or_finished_card_rewrites_nothing() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    let inbox_image = folder.root().join("inbox").join("000001_S1.png");
    folder
        .submit(&ticket("000001", "S1"), b"another image")
        .unwrap();
    assert_eq!(fs::read(&inbox_image).unwrap(), IMAGE);

    let taken = folder.take_next().unwrap().unwrap();
    folder
        .submit(&ticket("000001", "S1"), b"another image")
        .unwrap();
    assert_eq!(names_in(&folder, "inbox"), Vec::<String>::new());
    assert_eq!(folder.work_image(&taken).unwrap().as_deref(), Some(IMAGE));

    folder.finish(&taken, &printed(&taken)).unwrap();
    folder
        .submit(&ticket("000001", "S1"), b"another image")
        .unwrap();
    assert_eq!(names_in(&folder, "inbox"), Vec::<String>::new());
    assert_eq!(
        fs::read(folder.printed_dir().join("000001_S1.png")).unwrap(),
        IMAGE
    );
}

#[test]
fn the_image_travels_with_its_ticket_and_a_printed_one_is_kept() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    folder.submit(&ticket("000002", "S1"), IMAGE).unwrap();

    let first = folder.take_next().unwrap().unwrap();
    assert_eq!(first.image, "000001_S1.png");
    assert_eq!(
        names_in(&folder, "work"),
        ["000001_S1.job", "000001_S1.png"]
    );
    assert_eq!(
        names_in(&folder, "inbox"),
        ["000002_S1.job", "000002_S1.png"]
    );
    folder.finish(&first, &printed(&first)).unwrap();
    assert_eq!(names_in(&folder, "work"), Vec::<String>::new());
    assert_eq!(names_in(&folder, "printed"), ["000001_S1.png"]);

    // A jammed card's image is not kept.
    let second = folder.take_next().unwrap().unwrap();
    let jam = JobResult {
        outcome: Outcome::Jammed,
        detail: "simulated jam".into(),
        ..printed(&second)
    };
    folder.finish(&second, &jam).unwrap();
    assert_eq!(names_in(&folder, "work"), Vec::<String>::new());
    assert_eq!(names_in(&folder, "printed"), ["000001_S1.png"]);
}

#[test]
fn a_ticket_without_its_image_is_still_taken_and_has_none() {
    let (_dir, folder) = folder();
    folder.submit(&ticket("000001", "S1"), IMAGE).unwrap();
    fs::remove_file(folder.root().join("inbox").join("000001_S1.png")).unwrap();
    let taken = folder.take_next().unwrap().unwrap();
    assert_eq!(folder.work_image(&taken).unwrap(), None);

    // An old ticket names no image at all.
    fs::write(
        folder.root().join("inbox").join("000002_S1.job"),
        "job_id=000002\ncard_serial=S1\nnik=3527014507900001\nfull_name=Siti Rahayu\n",
    )
    .unwrap();
    let old = folder.take_next().unwrap().unwrap();
    assert_eq!(old.image, "");
    assert_eq!(folder.work_image(&old).unwrap(), None);
}
