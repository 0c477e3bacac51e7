//! Child processes the harness starts, logs to files, signals and kills.
//!
//! Logs go to `{log_dir}/{name}.log`, or, when `EKTP_TEST_LOG_DIR` is set
//! (`tests/run.sh` sets it to `target/test-logs`), to a directory per cluster
//! under that root, so they outlive the test's temporary directory and
//! `tests/scan-logs.sh` can check a whole run for personal data.

use crate::Result;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running child process. Killed when dropped unless detached.
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
    keep: bool,
}

impl Proc {
    /// Starts `program` with `args`, stdout and stderr appended to
    /// `{log_dir}/{name}.log` (or under `EKTP_TEST_LOG_DIR`, see above).
    pub fn spawn(name: &str, program: &Path, args: Vec<String>, log_dir: &Path) -> Result<Proc> {
        let mut proc = Proc {
            name: name.to_owned(),
            program: program.to_path_buf(),
            args,
            log: log_file(log_dir, name)?,
            child: None,
            keep: false,
        };
        proc.start()?;
        Ok(proc)
    }

    fn start(&mut self) -> Result<()> {
        let out = File::options().create(true).append(true).open(&self.log)?;
        let err = out.try_clone()?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// Starts the process again with the same arguments (after a kill).
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        self.start()
    }

    /// The arguments it was started with.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// Starts the process again with other arguments (after a kill).
    pub fn restart_with(&mut self, args: Vec<String>) -> Result<()> {
        self.kill();
        self.args = args;
        self.start()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL, then reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends a signal by name (`TERM`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) -> Result<()> {
        let pid = self.pid().ok_or("process not running")?;
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("kill -{signal} {pid} failed").into())
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            let child = self.child.as_mut()?;
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::park_timeout(Duration::from_millis(20));
        }
    }

    /// Leaves the process running after this handle is dropped.
    pub fn detach(&mut self) {
        self.keep = true;
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

/// Where the log of process `name` started for `log_dir` goes. Under
/// `EKTP_TEST_LOG_DIR` every cluster directory gets its own subdirectory,
/// named after the test binary, its pid and the cluster directory, so
/// concurrent test binaries and successive clusters never share a file.
fn log_file(log_dir: &Path, name: &str) -> Result<PathBuf> {
    let Some(root) = std::env::var_os("EKTP_TEST_LOG_DIR").filter(|r| !r.is_empty()) else {
        return Ok(log_dir.join(format!("{name}.log")));
    };
    let test = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".into());
    let cluster = log_dir
        .file_name()
        .map(|s| s.to_string_lossy().trim_start_matches('.').to_owned())
        .unwrap_or_default();
    let dir = PathBuf::from(root).join(format!("{test}-{}-{cluster}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir.join(format!("{name}.log")))
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.keep {
            self.kill();
        }
    }
}
