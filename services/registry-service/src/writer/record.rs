//! RecordResident: store a new resident with its print material, once;
//! a batch of them per fenced transaction (`batch.rs`).

use super::{Actor, Ctx, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{bounded, decode, get_many, put};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::storage::RequestRecord;
use ektp_proto::v1::{EventKind, PrintMaterial, Resident, ResidentStatus};
use etcd_client::{Compare, CompareOp, PutOptions, TxnOp};
use prost::Message;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The error for a request id seen before with other content.
fn reused_request_id() -> RegistryError {
    RegistryError::Invalid {
        field: "request_id",
        description: "this request_id was already used for a different request".into(),
    }
}

/// The record as stored: RECORDED now, with its material's digest.
fn stored_resident(new: &NewResident) -> Resident {
    let mut resident = new.resident.clone();
    resident.status = ResidentStatus::Recorded as i32;
    resident.create_time = Some(now());
    resident.material_digest = material_digest(&new.material);
    resident.update_time = resident.create_time;
    resident
}

/// How often a new retention lease is started for idempotency records.
const RETENTION_PERIOD: Duration = Duration::from_secs(3600);

/// A validated resident to record.
pub struct NewResident {
    pub request_id: String,
    /// Digest of the whole request, to tell a retry from a reused id.
    pub digest: Vec<u8>,
    pub nik: Nik,
    /// The record as it will be stored (status and warnings filled in).
    pub resident: Resident,
    pub material: PrintMaterial,
}

impl NewResident {
    /// Bytes this record adds to a batch's transaction: its values, with
    /// room for the seal, the request record, the event and the keys.
    pub(super) fn size(&self) -> usize {
        self.resident.encoded_len() + self.material.encoded_len() + 512
    }
}

/// Operations one new record adds to a transaction: resident, material,
/// request record, event (the batch adds one counter put).
const OPS_PER_RECORD: usize = 4;
/// Records per batch within etcd's operation limit.
pub(super) const MAX_BATCH: usize = (super::batch::MAX_TXN_OPS - 1) / OPS_PER_RECORD;

/// What a batch knows of one request id: stored, or recorded earlier in the batch.
struct SeenRequest {
    digest: Vec<u8>,
}

impl Actor {
    /// Records a batch of residents in one fenced transaction and returns
    /// one answer per resident, in order. Outcomes are decided from the
    /// stored state read first (the fence keeps anyone else from writing)
    /// and from the records earlier in the batch, so two records of one NIK
    /// in a batch behave as if they came one after the other: the same
    /// request id gets the same stored resident, another id ALREADY_EXISTS.
    pub(super) async fn record_batch(
        &self,
        ctx: Ctx<'_>,
        batch: Vec<NewResident>,
    ) -> Result<Vec<Result<Resident>>> {
        let Ctx { fence, state } = ctx;
        let keys: Vec<(String, String)> = batch
            .iter()
            .map(|new| {
                (
                    self.keys.request(&new.request_id),
                    self.keys.resident(&new.nik),
                )
            })
            .collect();
        let reads: Vec<String> = keys
            .iter()
            .flat_map(|(request, resident)| [request.clone(), resident.clone()])
            .collect();
        let stored = get_many(&self.client, &reads).await?;
        let mut requests: HashMap<&str, SeenRequest> = HashMap::new();
        let mut residents: HashMap<&str, Resident> = HashMap::new();
        for (new, found) in batch.iter().zip(stored.chunks(2)) {
            if let [request, resident] = found {
                if let Some(kv) = request {
                    let digest = decode::<RequestRecord>(kv)?.value.request_digest;
                    requests.insert(new.request_id.as_str(), SeenRequest { digest });
                }
                if let Some(kv) = resident {
                    residents.insert(new.nik.as_str(), decode::<Resident>(kv)?.value);
                }
            }
        }

        let mut stats = state.stats;
        let mut created = 0;
        let mut txn = FencedTxn::new([&fence]);
        let mut lease = None;
        let mut answers = Vec::with_capacity(batch.len());
        for (new, (request_key, resident_key)) in batch.iter().zip(&keys) {
            if let Some(seen) = requests.get(new.request_id.as_str()) {
                answers.push(if seen.digest != new.digest {
                    Err(reused_request_id())
                } else {
                    residents.get(new.nik.as_str()).cloned().ok_or_else(|| {
                        RegistryError::Internal("idempotency record without its resident".into())
                    })
                });
                continue;
            }
            if residents.contains_key(new.nik.as_str()) {
                answers.push(Err(RegistryError::AlreadyExists(
                    "a resident with this nik is already recorded".into(),
                )));
                continue;
            }
            let lease = match lease {
                Some(id) => id,
                None => *lease.insert(self.retention_lease(&mut state.retention_lease).await?),
            };
            let resident = stored_resident(new);
            let request = RequestRecord {
                request_digest: new.digest.clone(),
                nik: new.nik.as_str().to_owned(),
                create_time_unix: unix_now(),
                job_id: String::new(),
            };
            stats.recorded += 1;
            created += 1;
            txn = txn
                .when(Compare::create_revision(
                    request_key.as_str(),
                    CompareOp::Equal,
                    0,
                ))
                .when(Compare::create_revision(
                    resident_key.as_str(),
                    CompareOp::Equal,
                    0,
                ))
                .op(put(resident_key, &resident))
                .op(self.put_material(&new.nik, &new.material)?)
                .op(TxnOp::put(
                    request_key.as_str(),
                    request.encode_to_vec(),
                    Some(PutOptions::new().with_lease(lease)),
                ))
                .op(state
                    .outbox
                    .append(EventKind::Recorded, new.nik.as_str(), "", "", ""));
            requests.insert(
                new.request_id.as_str(),
                SeenRequest {
                    digest: new.digest.clone(),
                },
            );
            residents.insert(new.nik.as_str(), resident.clone());
            answers.push(Ok(resident));
        }
        if created > 0 {
            self.commit_expected(txn.op(put(&self.keys.stats(), &stats)))
                .await?;
            state.stats = stats;
        }
        Ok(answers)
    }

    /// The lease for idempotency records written now; a new one each period,
    /// living `request_retention` past its period, so etcd drops old records.
    pub(super) async fn retention_lease(
        &self,
        current: &mut Option<(i64, Instant)>,
    ) -> Result<i64> {
        if let Some((id, started)) = *current
            && started.elapsed() < RETENTION_PERIOD
        {
            return Ok(id);
        }
        let ttl = (self.config.request_retention + RETENTION_PERIOD).as_secs();
        let mut client = self.client.clone();
        let lease = bounded(
            "lease",
            client.lease_grant(i64::try_from(ttl).unwrap_or(i64::MAX), None),
        )
        .await?;
        *current = Some((lease.id(), Instant::now()));
        Ok(lease.id())
    }
}

pub(super) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// FNV-1a over the encoded request: stable across builds and platforms,
/// enough to tell a retry from a reused id.
pub fn request_digest(encoded: &[u8]) -> Vec<u8> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in encoded {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.to_be_bytes().to_vec()
}

/// Hex digest of print material, kept on the record after the material
/// itself is dropped, so the centre can still match what was printed.
pub(super) fn material_digest(material: &PrintMaterial) -> String {
    let digest = request_digest(&material.encode_to_vec());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
