//! What the print loop reports to GetStatus and metrics, shared lock-free.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Counters and flags the print loop updates and GetStatus reads.
#[derive(Default)]
pub struct Board {
    printed: AtomicU64,
    printed_today: AtomicU64,
    /// Day number (UTC) `printed_today` counts for.
    today: AtomicU64,
    out_of_blanks: AtomicBool,
}

fn day_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() / 86_400)
        .unwrap_or_default()
}

impl Board {
    /// Counts one printed card.
    pub fn printed_one(&self) {
        self.printed.fetch_add(1, Ordering::Relaxed);
        let today = day_now();
        if self.today.swap(today, Ordering::Relaxed) != today {
            self.printed_today.store(0, Ordering::Relaxed);
        }
        self.printed_today.fetch_add(1, Ordering::Relaxed);
    }

    /// Cards printed by this replica since it started.
    pub fn printed(&self) -> u64 {
        self.printed.load(Ordering::Relaxed)
    }

    /// Cards printed by this replica since midnight UTC.
    pub fn printed_today(&self) -> u64 {
        if self.today.load(Ordering::Relaxed) == day_now() {
            self.printed_today.load(Ordering::Relaxed)
        } else {
            0
        }
    }

    pub fn set_out_of_blanks(&self, empty: bool) {
        self.out_of_blanks.store(empty, Ordering::Relaxed);
    }

    pub fn out_of_blanks(&self) -> bool {
        self.out_of_blanks.load(Ordering::Relaxed)
    }
}
