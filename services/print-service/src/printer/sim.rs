//! An in-process printer for development: a fixed rate and a failure rate.
//! Its job log lives in memory, so after a crash of its node it cannot tell
//! what it printed: recovery answers "not printed" only for cards it never
//! saw in this process, which is exact for a printer that dies with its node.

use super::{Attempt, CardJob, Printer, PrinterError, Recovery};
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The simulated printer.
pub struct SimPrinter {
    name: String,
    per_card: Duration,
    failure_rate: f64,
    rng: AtomicU64,
    log: Mutex<HashMap<(String, String), Attempt>>,
}

impl SimPrinter {
    /// A printer making `cards_per_hour` cards, spoiling `failure_rate` of them.
    pub fn new(name: String, cards_per_hour: u32, failure_rate: f64, seed: u64) -> Self {
        Self {
            name,
            per_card: Duration::from_secs_f64(3600.0 / f64::from(cards_per_hour.max(1))),
            failure_rate: failure_rate.clamp(0.0, 1.0),
            rng: AtomicU64::new(seed | 1),
            log: Mutex::new(HashMap::new()),
        }
    }

    /// A uniform draw in [0, 1) from a xorshift generator.
    fn draw(&self) -> f64 {
        let mut x = self.rng.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng.store(x, Ordering::Relaxed);
        (x >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Printer for SimPrinter {
    fn name(&self) -> &str {
        &self.name
    }

    fn driver(&self) -> &'static str {
        "sim"
    }

    async fn fence(&self, _epoch: u64) -> Result<(), PrinterError> {
        // The in-process printer lives and dies with its node: nothing older can reach it.
        Ok(())
    }

    async fn print(&self, card: &CardJob) -> Result<Attempt, PrinterError> {
        let key = (card.job_id.clone(), card.card_serial.clone());
        if let Some(done) = self.log.lock().ok().and_then(|log| log.get(&key).cloned()) {
            return Ok(done);
        }
        // Below the timer's 1 ms resolution the printer is instant: a sleep
        // would take a whole millisecond per card.
        if self.per_card >= Duration::from_millis(1) {
            tokio::time::sleep(self.per_card).await;
        }
        let attempt = if self.draw() < self.failure_rate {
            Attempt::Spoiled("simulated print failure".into())
        } else {
            Attempt::Printed
        };
        if let Ok(mut log) = self.log.lock() {
            log.insert(key, attempt.clone());
        }
        Ok(attempt)
    }

    async fn recover(&self, job_id: &str, card_serial: &str) -> Result<Recovery, PrinterError> {
        let key = (job_id.to_owned(), card_serial.to_owned());
        Ok(
            match self.log.lock().ok().and_then(|log| log.get(&key).cloned()) {
                Some(attempt) => Recovery::Finished(attempt),
                None => Recovery::NotPrinted,
            },
        )
    }
}
