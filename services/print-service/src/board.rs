//! What the print loop reports to GetStatus and metrics, shared lock-free.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Shortest window a days-left estimate is made from.
const MIN_RATE_WINDOW: Duration = Duration::from_secs(3600);

/// Counters and flags the print loop updates and GetStatus reads.
#[derive(Default)]
pub struct Board {
    printed: AtomicU64,
    printed_today: AtomicU64,
    /// Day number (UTC) `printed_today` counts for.
    today: AtomicU64,
    out_of_blanks: AtomicBool,
    /// Blanks consumed in total when this node started leading, and when.
    rate_start: Mutex<Option<(Instant, u64)>>,
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

    /// Starts measuring the consumption rate (on becoming leader).
    pub fn start_rate_window(&self, consumed_total: u64) {
        if let Ok(mut start) = self.rate_start.lock() {
            *start = Some((Instant::now(), consumed_total));
        }
    }

    /// Days until `remaining` blanks run out at the rate since the window
    /// started; -1 while the window is shorter than an hour or nothing was used.
    pub fn days_left(&self, remaining: u64, consumed_total: u64) -> f64 {
        let Some((since, consumed_then)) = self.rate_start.lock().ok().and_then(|s| *s) else {
            return -1.0;
        };
        let elapsed = since.elapsed();
        let used = consumed_total.saturating_sub(consumed_then);
        if elapsed < MIN_RATE_WINDOW || used == 0 {
            return -1.0;
        }
        let per_day = used as f64 / elapsed.as_secs_f64() * 86_400.0;
        remaining as f64 / per_day
    }

    pub fn out_of_blanks(&self) -> bool {
        self.out_of_blanks.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_left_is_unknown_until_there_is_a_rate() {
        let board = Board::default();
        assert_eq!(board.days_left(100, 0), -1.0);
        board.start_rate_window(10);
        assert_eq!(board.days_left(100, 20), -1.0, "less than an hour measured");
    }
}
