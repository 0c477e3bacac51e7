//! Print material (photo, signature) sealed at rest with AES-256-GCM.
//!
//! Keys come from a directory, one key per file, the file name being the key
//! id — exactly what a mounted Kubernetes Secret looks like. The active key
//! seals new values; every key in the directory opens old ones, so a rotation
//! is: add the new key file, make it active, restart the replicas one at a
//! time; the leader's re-seal pass (`writer/reseal.rs`) then moves old values
//! onto the active key, after which the old key file can be removed.
//!
//! A sealed value is an `ektp.storage.v1.SealedMaterial`; its associated data
//! is a format tag plus the value's own etcd key (`/ektp/{office}/material/{nik}`),
//! so a ciphertext copied under another resident (or office) does not open.

use ektp_proto::storage::SealedMaterial;
use ektp_proto::v1::PrintMaterial;
use prost::Message;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::BTreeMap;
use std::path::Path;

/// Bytes in an AES-256 key.
const KEY_LEN: usize = 32;

/// Longest key id (a file name of `[a-z0-9-]`).
const MAX_KEY_ID_LEN: usize = 32;

/// Prefix of the associated data: changes if the sealed format ever does.
const AAD_TAG: &[u8] = b"ektp.material.v1\0";

/// Why the keys could not be loaded; each is one clear line at startup.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error("cannot read material keys directory {dir}: {source}")]
    Dir { dir: String, source: std::io::Error },
    #[error("cannot read material key file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "material key file {path} is malformed: a key is 32 raw bytes or 64 hex characters (optionally newline-terminated)"
    )]
    Malformed { path: String },
    #[error("material key file name {name:?} is not a key id ([a-z0-9-], 1-32 characters)")]
    BadId { name: String },
    #[error("no material keys in {dir}")]
    Empty { dir: String },
    #[error("material key {id:?} (--material-key-id) is not in {dir}")]
    ActiveMissing { id: String, dir: String },
    #[error("several material keys in {dir}: choose the one that seals with --material-key-id")]
    NoActive { dir: String },
}

/// Why a stored value could not be opened or sealed. Never carries key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("print material is sealed with unknown key id {0:?}")]
    UnknownKey(String),
    #[error("print material does not open with key id {0:?} (wrong key, moved or tampered value)")]
    Open(String),
    #[error("stored print material is not a sealed value: {0}")]
    Format(String),
    #[error("cannot seal print material: the system random source failed")]
    Random,
}

impl SealError {
    /// The key id the value names, when known (for logs; never secret).
    pub fn key_id(&self) -> Option<&str> {
        match self {
            SealError::UnknownKey(id) | SealError::Open(id) => Some(id),
            SealError::Format(_) | SealError::Random => None,
        }
    }
}

/// The material keys of this node: the active one seals, all of them open.
pub struct MaterialKeys {
    keys: BTreeMap<String, LessSafeKey>,
    active: String,
    random: SystemRandom,
}

impl std::fmt::Debug for MaterialKeys {
    // Ids only: key bytes never reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialKeys")
            .field("ids", &self.keys.keys().collect::<Vec<_>>())
            .field("active", &self.active)
            .finish()
    }
}

impl MaterialKeys {
    /// Loads every key in `dir`; `active` picks the sealing key (required
    /// when there are several). Names starting with `.` are skipped: a
    /// mounted Kubernetes Secret keeps its `..data` links there.
    pub fn load(dir: &Path, active: Option<&str>) -> Result<Self, KeysError> {
        let shown = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|source| KeysError::Dir {
            dir: shown.clone(),
            source,
        })?;
        let mut raw = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| KeysError::Dir {
                dir: shown.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let contents = std::fs::read(&path).map_err(|source| KeysError::File {
                path: path.display().to_string(),
                source,
            })?;
            raw.push((name, path.display().to_string(), contents));
        }
        Self::from_files(raw, active, &shown)
    }

    /// Builds the keys from `(file name, path, contents)` triples.
    fn from_files(
        files: Vec<(String, String, Vec<u8>)>,
        active: Option<&str>,
        dir: &str,
    ) -> Result<Self, KeysError> {
        let mut keys = BTreeMap::new();
        for (name, path, mut contents) in files {
            if !valid_key_id(&name) {
                return Err(KeysError::BadId { name });
            }
            let bytes = parse_key(&contents);
            contents.fill(0);
            let mut bytes = bytes.ok_or(KeysError::Malformed { path: path.clone() })?;
            let key =
                UnboundKey::new(&AES_256_GCM, &bytes).map_err(|_| KeysError::Malformed { path })?;
            bytes.fill(0);
            keys.insert(name, LessSafeKey::new(key));
        }
        let active = match active {
            Some(id) if keys.contains_key(id) => id.to_owned(),
            Some(id) => {
                return Err(KeysError::ActiveMissing {
                    id: id.to_owned(),
                    dir: dir.to_owned(),
                });
            }
            None => match keys.keys().collect::<Vec<_>>().as_slice() {
                [] => {
                    return Err(KeysError::Empty {
                        dir: dir.to_owned(),
                    });
                }
                [only] => (*only).clone(),
                _ => {
                    return Err(KeysError::NoActive {
                        dir: dir.to_owned(),
                    });
                }
            },
        };
        Ok(Self {
            keys,
            active,
            random: SystemRandom::new(),
        })
    }

    /// Id of the key new values are sealed with.
    pub fn active_id(&self) -> &str {
        &self.active
    }

    /// Ids of every key that can open values.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }

    /// Seals `material` for storage under `etcd_key` with the active key.
    pub fn seal(
        &self,
        etcd_key: &str,
        material: &PrintMaterial,
    ) -> Result<SealedMaterial, SealError> {
        let key = self
            .keys
            .get(&self.active)
            .ok_or_else(|| SealError::UnknownKey(self.active.clone()))?;
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut in_out = material.encode_to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(etcd_key)),
            &mut in_out,
        )
        .map_err(|_| SealError::Random)?;
        Ok(SealedMaterial {
            key_id: self.active.clone(),
            nonce: nonce.to_vec(),
            ciphertext: in_out,
        })
    }

    /// Opens a sealed value stored under `etcd_key`.
    pub fn open(
        &self,
        etcd_key: &str,
        sealed: &SealedMaterial,
    ) -> Result<PrintMaterial, SealError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| SealError::UnknownKey(sealed.key_id.clone()))?;
        let nonce = Nonce::try_assume_unique_for_key(&sealed.nonce)
            .map_err(|_| SealError::Open(sealed.key_id.clone()))?;
        let mut in_out = sealed.ciphertext.clone();
        let plain = key
            .open_in_place(nonce, Aad::from(aad(etcd_key)), &mut in_out)
            .map_err(|_| SealError::Open(sealed.key_id.clone()))?;
        PrintMaterial::decode(&*plain).map_err(|e| SealError::Format(e.to_string()))
    }

    /// The etcd value of `material` sealed for `etcd_key`.
    pub fn seal_value(
        &self,
        etcd_key: &str,
        material: &PrintMaterial,
    ) -> Result<Vec<u8>, SealError> {
        Ok(self.seal(etcd_key, material)?.encode_to_vec())
    }

    /// Opens the etcd value stored under `etcd_key`.
    pub fn open_value(&self, etcd_key: &str, value: &[u8]) -> Result<PrintMaterial, SealError> {
        let sealed = decode_sealed(value)?;
        self.open(etcd_key, &sealed)
    }
}

/// Decodes a stored value as a sealed one (no key needed: for the key id).
pub fn decode_sealed(value: &[u8]) -> Result<SealedMaterial, SealError> {
    let sealed = SealedMaterial::decode(value).map_err(|e| SealError::Format(e.to_string()))?;
    if sealed.key_id.is_empty() {
        return Err(SealError::Format("no key id".into()));
    }
    Ok(sealed)
}

/// The associated data binding a value to its etcd key.
fn aad(etcd_key: &str) -> Vec<u8> {
    let mut aad = AAD_TAG.to_vec();
    aad.extend_from_slice(etcd_key.as_bytes());
    aad
}

/// `[a-z0-9-]{1,32}`.
pub fn valid_key_id(id: &str) -> bool {
    (1..=MAX_KEY_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A key file's bytes: exactly 32 raw bytes, or 64 hex characters with an
/// optional trailing newline.
fn parse_key(contents: &[u8]) -> Option<Vec<u8>> {
    if contents.len() == KEY_LEN {
        return Some(contents.to_vec());
    }
    let text = contents
        .strip_suffix(b"\n")
        .map(|t| t.strip_suffix(b"\r").unwrap_or(t))
        .unwrap_or(contents);
    if text.len() != 2 * KEY_LEN {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(*pair.get(1)?)?))
        .collect()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
