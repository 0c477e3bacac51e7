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
            .list_residents(ListResidentsRequest {
                page_size: 1000,
                page_token: token,
            })
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
            .list_print_jobs(ListPrintJobsRequest {
                state: 0,
                page_size: 1000,
                page_token: token,
            })
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

        // Physical cards from the printer's own log, mapped to NIKs via jobs.
        let job_nik: HashMap<&str, &str> = jobs
            .iter()
            .map(|j| (j.job_id.as_str(), j.nik.as_str()))
            .collect();
        let mut seen = HashSet::new();
        let mut per_nik: HashMap<&str, usize> = HashMap::new();
        for entry in log.iter().filter(|e| e.outcome == Outcome::Printed) {
            audit.printer_printed += 1;
            if !seen.insert((entry.job_id.as_str(), entry.card_serial.as_str())) {
                audit.duplicates += 1;
                audit
                    .problems
                    .push(format!("serial {} printed twice", entry.card_serial));
                continue;
            }
            let Some(nik) = job_nik.get(entry.job_id.as_str()) else {
                audit
                    .problems
                    .push(format!("printer log names unknown job {}", entry.job_id));
                audit.duplicates += 1;
                continue;
            };
            *per_nik.entry(nik).or_default() += 1;
            let active = by_nik.get(nik).map(|r| r.active_card_serial.as_str());
            if active != Some(entry.card_serial.as_str()) {
                audit.duplicates += 1;
                audit.problems.push(format!(
                    "printed card {} is not the ACTIVE card of {nik}",
                    entry.card_serial
                ));
            }
        }
        for (nik, n) in per_nik {
            if n > 1 {
                audit.problems.push(format!("{nik} has {n} printed cards"));
            }
        }
        Ok(audit)
    }

    /// Whether every invariant holds.
    pub fn is_clean(&self) -> bool {
        self.duplicates == 0 && self.lost == 0 && self.problems.is_empty()
    }
}
