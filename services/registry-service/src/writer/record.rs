//! RecordResident: store a new resident with its print material, once.

use super::{Actor, Ctx, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{bounded, get, put};
use ektp_election::FencedTxn;
use ektp_nik::Nik;
use ektp_proto::storage::RequestRecord;
use ektp_proto::v1::{EventKind, PrintMaterial, Resident, ResidentStatus};
use etcd_client::{Compare, CompareOp, PutOptions, TxnOp};
use prost::Message;
use std::time::{Duration, Instant};

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

impl Actor {
    pub(super) async fn record(&self, ctx: Ctx<'_>, new: NewResident) -> Result<Resident> {
        let Ctx { fence, state } = ctx;
        let mut resident = new.resident;
        resident.status = ResidentStatus::Recorded as i32;
        resident.create_time = Some(now());
        resident.material_digest = material_digest(&new.material);
        resident.update_time = resident.create_time;
        let lease = self.retention_lease(&mut state.retention_lease).await?;
        let request = RequestRecord {
            request_digest: new.digest.clone(),
            nik: new.nik.as_str().to_owned(),
            create_time_unix: unix_now(),
            job_id: String::new(),
        };
        let mut stats = state.stats;
        stats.recorded += 1;

        let request_key = self.keys.request(&new.request_id);
        let resident_key = self.keys.resident(&new.nik);
        let txn = FencedTxn::new([&fence])
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
            .op(put(&resident_key, &resident))
            .op(self.put_material(&new.nik, &new.material)?)
            .op(TxnOp::put(
                request_key.as_str(),
                request.encode_to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            ))
            .op(put(&self.keys.stats(), &stats))
            .op(state
                .outbox
                .append(EventKind::Recorded, new.nik.as_str(), "", "", ""));
        if self.commit(txn).await?.is_some() {
            state.stats = stats;
            return Ok(resident);
        }
        self.explain_conflict(&request_key, &new.digest, &new.nik)
            .await
    }

    /// A record was refused: either this request id was seen (a retry gets
    /// the stored answer, a reuse for other content is refused) or the NIK
    /// is already recorded.
    async fn explain_conflict(
        &self,
        request_key: &str,
        digest: &[u8],
        nik: &Nik,
    ) -> Result<Resident> {
        if let Some(seen) = get::<RequestRecord>(&self.client, request_key).await? {
            if seen.value.request_digest != digest {
                return Err(RegistryError::Invalid {
                    field: "request_id",
                    description: "this request_id was already used for a different request".into(),
                });
            }
            return get::<Resident>(&self.client, &self.keys.resident(nik))
                .await?
                .map(|v| v.value)
                .ok_or_else(|| {
                    RegistryError::Internal("idempotency record without its resident".into())
                });
        }
        Err(RegistryError::AlreadyExists(
            "a resident with this nik is already recorded".into(),
        ))
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
