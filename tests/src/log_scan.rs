//! Scanning logs for personal data: an unmasked NIK is a run of exactly 16
//! digits (not part of a longer number, so nanosecond timestamps and lease
//! ids do not count) that parses as a valid NIK; a resident's name is found
//! verbatim. Findings show the NIK masked, so a failing test does not leak
//! what it found. `tests/scan-logs.sh` applies the same NIK rule to a whole
//! test run.

use ektp_nik::Nik;
use std::path::{Path, PathBuf};

/// One piece of personal data found in a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
    /// What was found, masked: `nik 3527**********01` or `name of resident`.
    pub what: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.what)
    }
}

/// Every valid NIK written out in full in `text`, masked, with its line.
pub fn unmasked_niks(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (index, line) in text.lines().enumerate() {
        for run in line.split(|c: char| !c.is_ascii_digit()) {
            if run.len() == 16
                && let Ok(nik) = Nik::parse(run)
            {
                found.push((index + 1, nik.masked().to_string()));
            }
        }
    }
    found
}

/// Scans each file for unmasked NIKs and for any of `names` (residents'
/// full names). A file that cannot be read is a finding too: a scan that
/// silently skips a log proves nothing.
pub fn scan(files: &[PathBuf], names: &[String]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for file in files {
        let text = match std::fs::read(file) {
            Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Err(e) => {
                findings.push(finding(file, 0, format!("unreadable: {e}")));
                continue;
            }
        };
        for (line, masked) in unmasked_niks(&text) {
            findings.push(finding(file, line, format!("nik {masked}")));
        }
        for (index, line) in text.lines().enumerate() {
            if names.iter().any(|name| line.contains(name.as_str())) {
                findings.push(finding(file, index + 1, "name of a resident".into()));
            }
        }
    }
    findings
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                pending.push(entry.path());
            } else if kind.is_file() {
                files.push(entry.path());
            }
        }
    }
    files.sort();
    Ok(files)
}

fn finding(file: &Path, line: usize, what: String) -> Finding {
    Finding {
        file: file.to_path_buf(),
        line,
        what,
    }
}

#[cfg(test)]
mod tests {
    use super::unmasked_niks;

    #[test]
    fn a_full_nik_is_found_and_reported_masked() {
        let text = "ok\nrecorded nik=3527014507900001 done\n";
        assert_eq!(unmasked_niks(text), vec![(2, "3527**********01".into())]);
    }

    #[test]
    fn masked_niks_timestamps_and_longer_numbers_are_not_niks() {
        let text = "nik=3527**********01\n\
                    ts=1718000000123456789 lease=7587882345217381234\n\
                    2024-06-10T10:00:00.123456Z epoch=42\n\
                    not a valid nik 9999999999999999\n";
        assert!(unmasked_niks(text).is_empty());
    }
}
