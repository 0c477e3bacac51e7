//! The end-of-run audit: reads every resident and job through the API and
//! the printer's own job log, and checks the card invariants.

use crate::Result;
use ektp_hotfolder::{HotFolder, Outcome};
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::*;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use tonic::transport::Channel;

/// What the audit found.
#[derive(Debug, Default)]
pub struct Audit {
    /// Residents recorded (as listed).
    pub recorded: usize,
    /// Residents authorised as print-ready (any later status counts).
    pub authorised: usize,
    /// Jobs PRINTED.
    pub printed_jobs: usize,
    /// Residents with an ACTIVE card.
    pub active_cards: usize,
    /// Cards the printer printed beyond one per NIK, or printed but not ACTIVE.
    pub duplicates: usize,
    /// Authorised residents without an ACTIVE card, and expected NIKs missing.
    pub lost: usize,
    /// Printed entries in the printer's log.
    pub printer_printed: usize,
    /// Human-readable problems, for failure messages.
    pub problems: Vec<String>,
}

async fn all_residents(client: &mut RegistryClient<Channel>) -> Result<Vec<Resident>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_residents(crate::stated(
                ListResidentsRequest {
                    page_size: 1000,
                    page_token: token,
                },
                "card ledger audit",
            ))
            .await?
            .into_inner();
        out.extend(page.residents);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

/// Every print job.
pub async fn all_jobs(client: &mut RegistryClient<Channel>) -> Result<Vec<PrintJob>> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_print_jobs(crate::stated(
                ListPrintJobsRequest {
                    state: 0,
                    page_size: 1000,
                    page_token: token,
                },
                "card ledger audit",
            ))
            .await?
            .into_inner();
        out.extend(page.jobs);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        token = page.next_page_token;
    }
}

impl Audit {
    /// Audits the registry against the printer log in `hotfolder`;
    /// `expected` are NIKs whose records were acknowledged.
    pub async fn collect(
        client: &mut RegistryClient<Channel>,
        hotfolder: &Path,
        expected: &[String],
    ) -> Result<Audit> {
        let residents = all_residents(client).await?;
        let jobs = all_jobs(client).await?;
        let log = HotFolder::new(hotfolder).read_log()?;
        let mut audit = Audit {
            recorded: residents.len(),
            ..Audit::default()
        };

        let by_nik: HashMap<&str, &Resident> =
            residents.iter().map(|r| (r.nik.as_str(), r)).collect();
        for nik in expected {
            if !by_nik.contains_key(nik.as_str()) {
                audit.lost += 1;
                audit
                    .problems
                    .push(format!("acknowledged record {nik} is missing"));
            }
        }
        for r in &residents {
            let authorised = matches!(
                r.status(),
                ResidentStatus::PrintReady
                    | ResidentStatus::Printed
                    | ResidentStatus::Collected
                    | ResidentStatus::PrintFailed
            );
            if authorised {
                audit.authorised += 1;
                if r.active_card_serial.is_empty() {
                    audit.lost += 1;
                    audit.problems.push(format!(
                        "{} authorised but has no ACTIVE card ({:?})",
                        r.nik,
                        r.status()
                    ));
                }
            }
            if !r.active_card_serial.is_empty() {
                audit.active_cards += 1;
            }
        }
        audit.printed_jobs = jobs
            .iter()
            .filter(|j| j.state() == PrintJobState::Printed)
            .count();

        // Physical cards from the printer's own log: each printed card must be
        // the card of a PRINTED job (a replacement's predecessor included),
        // and no job may have more than one.
        let printed_serial: HashMap<&str, &str> = jobs
            .iter()
            .filter(|j| j.state() == PrintJobState::Printed)
            .map(|j| (j.job_id.as_str(), j.card_serial.as_str()))
            .collect();
        let mut seen = HashSet::new();
        for entry in log.iter().filter(|e| e.outcome == Outcome::Printed) {
            audit.printer_printed += 1;
            if !seen.insert(entry.job_id.as_str()) {
                audit.duplicates += 1;
                audit
                    .problems
                    .push(format!("job {} printed more than one card", entry.job_id));
                continue;
            }
            if printed_serial.get(entry.job_id.as_str()) != Some(&entry.card_serial.as_str()) {
                audit.duplicates += 1;
                audit.problems.push(format!(
                    "printed card {} is not the card of a PRINTED job {}",
                    entry.card_serial, entry.job_id
                ));
            }
        }
        Ok(audit)
    }

    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.duplicates == 0 && self.lost == 0 && self.problems.is_empty()
    }
}
