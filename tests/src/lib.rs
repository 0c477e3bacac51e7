//! Test support for ektp's cross-service tests and the demo: a real etcd (one
//! or three members on loopback), real registry-service, print-service and
//! card-printer-sim processes, synthetic residents with valid NIKs, polling
//! waits with deadlines, and an audit that checks the card invariants through
//! the API and the printer's own job log, and a scan of process logs for
//! personal data.

pub mod audit;
pub mod cluster;
pub mod etcd;
pub mod log_scan;
pub mod material_keys;
pub mod pki;
pub mod probe;
pub mod process;
pub mod proxy;
pub mod residents;
pub mod retry;
pub mod wait;

/// Errors in the harness: anything, with a readable message.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Harness result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `n` distinct free TCP ports on 127.0.0.1: all held while choosing, then
/// released for the processes about to bind them.
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// The directory holding the workspace's built binaries (`target/debug`),
/// found from the running executable.
pub fn bin_dir() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent();
    while let Some(d) = dir {
        if d.join("registry-service").exists() {
            return Ok(d.to_path_buf());
        }
        dir = d.parent();
    }
    Err("service binaries not found next to the test binary: run `cargo build --workspace --bins` first (tests/run.sh does)".into())
}

/// `message` as a request stating `purpose` in `x-ektp-purpose`, as outside
/// callers must when they read or change a person's data.
pub fn stated<T>(message: T, purpose: &'static str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "x-ektp-purpose",
        tonic::metadata::MetadataValue::from_static(purpose),
    );
    request
}
