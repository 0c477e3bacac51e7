//! Crash-safe file primitives: atomic replace via `tmp/` + rename, durable
//! appends, and reads that treat a missing file as "absent".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::HotFolderError;

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> HotFolderError + '_ {
    move |source| HotFolderError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub(crate) fn exists(path: &Path) -> Result<bool, HotFolderError> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// A name in `tmp/` no other writer uses: the print node and the printer
/// are separate processes sharing that directory.
pub(crate) fn unique_tmp_path(tmp_dir: &Path, label: &str) -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    tmp_dir.join(format!("{}-{seq}-{label}.tmp", std::process::id()))
}

/// Makes a completed rename survive power loss. Best effort: not every
/// platform can open a directory for syncing.
fn sync_dir(dir: &Path) {
    if let Ok(handle) = File::open(dir) {
        let _ = handle.sync_all();
    }
}

/// Writes `bytes` to a fresh file in `tmp_dir`, fsyncs it and renames it to
/// `dest`, so readers see either the old file or the whole new one.
pub(crate) fn write_atomic(
    tmp_dir: &Path,
    dest: &Path,
    bytes: &[u8],
) -> Result<(), HotFolderError> {
    let label = dest
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = unique_tmp_path(tmp_dir, &label);
    let written = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        file.write_all(bytes).map_err(io_err(&tmp))?;
        file.sync_all().map_err(io_err(&tmp))?;
        fs::rename(&tmp, dest).map_err(io_err(dest))
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written?;
    if let Some(parent) = dest.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// Appends one complete line and fsyncs it. A torn tail left by an earlier
/// crash is cut off first, so it cannot glue onto the new line. Only the
/// printer appends, so there is no competing writer to race with.
pub(crate) fn append_durable(path: &Path, line: &str) -> Result<(), HotFolderError> {
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_err(path))?;
    let len = file.metadata().map_err(io_err(path))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        file.seek(SeekFrom::End(-1)).map_err(io_err(path))?;
        file.read_exact(&mut last).map_err(io_err(path))?;
        if last[0] != b'\n' {
            let mut all = Vec::new();
            file.seek(SeekFrom::Start(0)).map_err(io_err(path))?;
            file.read_to_end(&mut all).map_err(io_err(path))?;
            let keep = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            file.set_len(keep as u64).map_err(io_err(path))?;
        }
    }
    file.write_all(line.as_bytes()).map_err(io_err(path))?;
    file.sync_all().map_err(io_err(path))
}

/// The file's bytes, or `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, HotFolderError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(path)(e)),
    }
}

pub(crate) fn utf8(path: &Path, bytes: Vec<u8>) -> Result<String, HotFolderError> {
    String::from_utf8(bytes).map_err(|_| HotFolderError::Malformed {
        path: path.to_path_buf(),
        reason: "not valid utf-8".to_owned(),
    })
}

/// Removes a file; already gone counts as done, so retries are harmless.
pub(crate) fn remove_if_exists(path: &Path) -> Result<(), HotFolderError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(path)(e)),
    }
}

/// File names in `dir`, sorted; names that are not UTF-8 are skipped since
/// the protocol never produces them.
pub(crate) fn sorted_file_names(dir: &Path) -> Result<Vec<String>, HotFolderError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}
