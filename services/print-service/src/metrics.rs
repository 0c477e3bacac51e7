//! The print-service's metrics, declared and described in one place.
//! Labels are bounded: printer names and outcomes only.

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use std::time::Duration;

const PRINTED: &str = "ektp_print_cards_printed_total";
const ATTEMPTS: &str = "ektp_print_attempts_total";
const DURATION: &str = "ektp_print_duration_seconds";
const BLANK_STOCK: &str = "ektp_print_blank_stock";
const OUT_OF_BLANKS: &str = "ektp_print_out_of_blanks";
const PRINTER_UP: &str = "ektp_printer_up";
const QUEUE_DEPTH: &str = "ektp_print_queue_depth";
const IN_DOUBT: &str = "ektp_print_in_doubt_jobs";

pub fn describe() {
    describe_gauge!(
        QUEUE_DEPTH,
        "Jobs queued at the registry (print leader only; followers report 0)."
    );
    describe_gauge!(
        IN_DOUBT,
        "Jobs IN_DOUBT waiting for an operator (print leader only; followers report 0)."
    );
    describe_counter!(
        PRINTED,
        "Cards printed and completed at the registry, by printer."
    );
    describe_counter!(
        ATTEMPTS,
        "Print attempts by printer and outcome (printed, spoiled, not_printed)."
    );
    describe_histogram!(
        DURATION,
        metrics::Unit::Seconds,
        "Time from handing a card to the printer to its outcome."
    );
    describe_gauge!(
        BLANK_STOCK,
        "Blank cards left, as last seen by the print leader (0 on followers)."
    );
    describe_gauge!(
        OUT_OF_BLANKS,
        "1 while the print leader is paused for lack of blank stock."
    );
    describe_gauge!(
        PRINTER_UP,
        "1 while the printer answers, 0 after it failed to."
    );
}

pub fn attempt(printer: &str, outcome: &'static str, took: Duration) {
    counter!(ATTEMPTS, "printer" => printer.to_owned(), "outcome" => outcome).increment(1);
    histogram!(DURATION, "printer" => printer.to_owned()).record(took.as_secs_f64());
}

pub fn printed(printer: &str) {
    counter!(PRINTED, "printer" => printer.to_owned()).increment(1);
}

pub fn blank_stock(remaining: u64, empty: bool) {
    gauge!(BLANK_STOCK).set(remaining as f64);
    gauge!(OUT_OF_BLANKS).set(if empty { 1.0 } else { 0.0 });
}

pub fn printer_up(printer: &str, up: bool) {
    gauge!(PRINTER_UP, "printer" => printer.to_owned()).set(if up { 1.0 } else { 0.0 });
}

pub fn queue(depth: u64, in_doubt: u64) {
    gauge!(QUEUE_DEPTH).set(depth as f64);
    gauge!(IN_DOUBT).set(in_doubt as f64);
}
