//! The registry's key layout in etcd. Every key lives under `/ektp/{office}/`;
//! values are protobuf-encoded.
//!
//! | key | value |
//! |---|---|
//! | `registry/leader/…`, `print/leader/…` | election keys (value: the leader's gRPC address) |
//! | `residents/{nik}` | `ektp.v1.Resident` |
//! | `material/{nik}` | `ektp.storage.v1.SealedMaterial`: the `ektp.v1.PrintMaterial` sealed with AES-256-GCM (`sealing`), apart so listing residents stays cheap |
//! | `jobs/{job_id}` | `ektp.v1.PrintJob`; zero-padded ids make a range read FIFO |
//! | `queue/{job_id}` | the NIK, present exactly while the job is QUEUED |
//! | `in_doubt/{job_id}` | the NIK, present exactly while the job is IN_DOUBT |
//! | `cards/{serial}` | `ektp.v1.Card`, one per serial ever allocated |
//! | `requests/{request_id}` | `ektp.storage.v1.RequestRecord`, on a retention lease |
//! | `counters/stats` | `ektp.v1.Stats`, updated in the same transaction as each change (but records) |
//! | `counters/stats-lanes/{lane}` | `ektp.v1.Stats` with only `recorded`: residents recorded through one writer lane (`writer/lanes.rs`); readers add them to `counters/stats` |
//! | `events/{writer}{epoch}-{nonce}-{n}` | `ektp.v1.Event`, the outbox; ordered by the revision that wrote it |
//! | `counters/events-floor` | highest revision of events dropped by retention |
//! | `counters/sequences` | `ektp.storage.v1.Sequences`: last job id and card serial |
//! | `audit/{unix_nanos}-{node}-{seq}` | `ektp.storage.v1.AuditBatch`, append-only, written by any replica (`ektp_server::AuditLog`) |

use crate::ids::{CardSerial, JobId};
use ektp_nik::Nik;

/// Builds keys under one office's prefix.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix` (`/ektp/{office}/`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The office prefix, `/ektp/{office}/`.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn events(&self) -> String {
        format!("{}events/", self.prefix)
    }

    pub fn events_floor(&self) -> String {
        format!("{}counters/events-floor", self.prefix)
    }

    /// The registry's election name.
    pub fn registry_election(&self) -> String {
        format!("{}registry/leader", self.prefix)
    }

    /// The print-service's election name: print leader keys live under it.
    pub fn print_election(&self) -> String {
        format!("{}print/leader", self.prefix)
    }

    pub fn resident(&self, nik: &Nik) -> String {
        format!("{}residents/{}", self.prefix, nik.as_str())
    }

    pub fn residents(&self) -> String {
        format!("{}residents/", self.prefix)
    }

    pub fn material(&self, nik: &Nik) -> String {
        format!("{}material/{}", self.prefix, nik.as_str())
    }

    pub fn materials(&self) -> String {
        format!("{}material/", self.prefix)
    }

    pub fn job(&self, id: JobId) -> String {
        format!("{}jobs/{id}", self.prefix)
    }

    pub fn jobs(&self) -> String {
        format!("{}jobs/", self.prefix)
    }

    pub fn queued(&self, id: JobId) -> String {
        format!("{}queue/{id}", self.prefix)
    }

    pub fn queue(&self) -> String {
        format!("{}queue/", self.prefix)
    }

    pub fn in_doubt(&self, id: JobId) -> String {
        format!("{}in_doubt/{id}", self.prefix)
    }

    pub fn in_doubt_jobs(&self) -> String {
        format!("{}in_doubt/", self.prefix)
    }

    pub fn card(&self, serial: &CardSerial) -> String {
        format!("{}cards/{serial}", self.prefix)
    }

    pub fn request(&self, request_id: &str) -> String {
        format!("{}requests/{request_id}", self.prefix)
    }

    pub fn stats(&self) -> String {
        format!("{}counters/stats", self.prefix)
    }

    /// Under `stats()` as a prefix too, so one range read over it returns
    /// every total at one revision.
    pub fn stats_lanes(&self) -> String {
        format!("{}counters/stats-lanes/", self.prefix)
    }

    pub fn stats_lane(&self, lane: usize) -> String {
        format!("{}{lane}", self.stats_lanes())
    }

    pub fn sequences(&self) -> String {
        format!("{}counters/sequences", self.prefix)
    }
}

/// The end of a prefix range: the prefix with its last byte incremented.
pub fn range_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    end
}
