//! Print material keys for test and demo clusters: a registry refuses to
//! start without one, so every cluster gets a random key `k1` in
//! `{dir}/material-keys/` and its registries are pointed at it.

use crate::Result;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Id of the key a cluster starts with.
pub const FIRST_KEY_ID: &str = "k1";

/// The keys directory of a cluster kept in `cluster_dir`.
pub fn keys_dir(cluster_dir: &Path) -> PathBuf {
    cluster_dir.join("material-keys")
}

/// Writes a fresh random key `id` (32 bytes from the OS) into `keys_dir`,
/// unless it is there already; only the owner can read it.
pub fn write_key(keys_dir: &Path, id: &str) -> Result<()> {
    std::fs::create_dir_all(keys_dir)?;
    let path = keys_dir.join(id);
    if path.exists() {
        return Ok(());
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?
        .write_all(&key)?;
    Ok(())
}

/// Registry flags for a cluster in `cluster_dir`, creating its first key.
pub fn registry_flags(cluster_dir: &Path) -> Result<Vec<String>> {
    let dir = keys_dir(cluster_dir);
    write_key(&dir, FIRST_KEY_ID)?;
    Ok(vec![
        "--material-keys-dir".into(),
        dir.display().to_string(),
        "--material-key-id".into(),
        FIRST_KEY_ID.into(),
    ])
}
