//! Import progress on stderr: a counter rewritten in place when stderr is a
//! terminal, otherwise a line every 100 rows.

use std::io::{IsTerminal, Write};

const LINE_EVERY: usize = 100;
const CLEAR_LINE: &str = "\r\x1b[2K";

/// Rows imported, already recorded and failed so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub imported: usize,
    pub already: usize,
    pub failed: usize,
}

impl Counts {
    pub fn done(&self) -> usize {
        self.imported + self.already + self.failed
    }
}

/// The progress display of one import.
pub struct Progress {
    total: usize,
    tty: bool,
    shown: bool,
}

impl Progress {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            tty: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    fn line(&self, c: Counts) -> String {
        format!(
            "{}/{} rows  imported={} already={} failed={}",
            c.done(),
            self.total,
            c.imported,
            c.already,
            c.failed
        )
    }

    /// Shows the counts after a row.
    pub fn update(&mut self, c: Counts) {
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "{CLEAR_LINE}{}", self.line(c));
            self.shown = true;
        } else if c.done().is_multiple_of(LINE_EVERY) {
            let _ = writeln!(err, "progress: {}", self.line(c));
        }
        let _ = err.flush();
    }

    /// Writes a message (ending in a newline) on stderr without mixing it
    /// into the in-place counter.
    pub fn message(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.shown {
            let _ = write!(err, "{CLEAR_LINE}");
            self.shown = false;
        }
        let _ = err.write_all(text.as_bytes());
        let _ = err.flush();
    }

    /// Removes the in-place counter.
    pub fn finish(&mut self) {
        self.message("");
    }
}
