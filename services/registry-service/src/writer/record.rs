//! RecordResident: store a new resident with its print material, once;
//! a batch of them per fenced transaction (`batch.rs`).

use super::{Actor, Ctx, State, now};
use crate::error::{RegistryError, Result};
use crate::etcd::{bounded, decode, get_many, put};
use ektp_election::{Fence, FencedTxn};
use ektp_nik::Nik;
use ektp_proto::storage::RequestRecord;
use ektp_proto::v1::{AuditEntry, EventKind, PrintMaterial, Resident, ResidentStatus};
use ektp_server::AuditInTxn;
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
    /// The caller's audit entry, its outcome set once decided: when given,
    /// it is committed in the batch's own transaction (so the answer needs
    /// no audit write of its own); an INVALID_ARGUMENT answer leaves none.
    pub audit: Option<AuditEntry>,
}

impl NewResident {
    /// Bytes this record adds to a batch's transaction: its values, with
    /// room for the seal, the request record, the event and the keys.
    pub(super) fn size(&self) -> usize {
        let audit = self.audit.as_ref().map_or(0, Message::encoded_len);
        self.resident.encoded_len() + self.material.encoded_len() + audit + 512
    }
}

/// Operations one new record adds to a transaction: resident, material,
/// request record, event (the batch adds one lane count put and one audit
/// put, and as many compares).
const OPS_PER_RECORD: usize = 4;
/// Records per batch within etcd's operation limit.
pub(super) const MAX_BATCH: usize = (super::batch::MAX_TXN_OPS - 2) / OPS_PER_RECORD;

/// What a batch knows of request ids and NIKs: read from etcd, or recorded
/// earlier in the batch.
#[derive(Default)]
struct Known<'b> {
    /// Request digest by request id.
    requests: HashMap<&'b str, Vec<u8>>,
    /// Stored resident by NIK.
    residents: HashMap<&'b str, Resident>,
}

/// A batch decided: each caller's answer once its transaction commits.
pub(super) struct Decided {
    pub(super) answers: Vec<Result<Resident>>,
    /// Residents the transaction creates.
    pub(super) created: u64,
    /// The batch's audit entries, put in the transaction.
    pub(super) audit: Option<AuditInTxn>,
}

impl Actor {
    /// Plans a batch of records on `lane` assuming none of them was seen
    /// before: guarded by `create_revision == 0` compares on every request
    /// id and NIK, so it commits in one round trip when that holds, as it
    /// nearly always does, and fails as a whole otherwise (`lanes.rs`).
    pub(super) async fn plan_new(
        &self,
        fence: &Fence,
        state: &mut State,
        lane: usize,
        batch: &[NewResident],
    ) -> Result<(FencedTxn, Decided)> {
        let keys = self.record_keys(batch);
        self.plan(fence, state, lane, batch, &keys, Known::default())
            .await
    }

    /// Records a batch of residents in one fenced transaction on `lane`,
    /// decided from what is stored, and returns one answer per resident, in
    /// order. Two records of one NIK in a batch behave as if they came one
    /// after the other: the same request id gets the same stored resident,
    /// another id ALREADY_EXISTS. Nothing else may be in flight.
    pub(super) async fn record_decided(
        &self,
        ctx: Ctx<'_>,
        lane: usize,
        batch: Vec<NewResident>,
    ) -> Result<Vec<Result<Resident>>> {
        let Ctx { fence, state } = ctx;
        let keys = self.record_keys(&batch);
        let known = self.read_known(&batch, &keys).await?;
        let (txn, decided) = self.plan(&fence, state, lane, &batch, &keys, known).await?;
        // Even a batch that creates nothing commits its answers' entries.
        if decided.created > 0 || decided.audit.is_some() {
            self.commit_expected(txn).await?;
            if let Some(count) = state.lanes.get_mut(lane) {
                *count = count.after(decided.created);
            }
            self.audited(decided.audit.as_ref());
        }
        Ok(decided.answers)
    }

    /// Each record's (request key, resident key).
    fn record_keys(&self, batch: &[NewResident]) -> Vec<(String, String)> {
        batch
            .iter()
            .map(|new| {
                (
                    self.keys.request(&new.request_id),
                    self.keys.resident(&new.nik),
                )
            })
            .collect()
    }

    /// The stored request records and residents a batch refers to.
    async fn read_known<'b>(
        &self,
        batch: &'b [NewResident],
        keys: &[(String, String)],
    ) -> Result<Known<'b>> {
        let reads: Vec<String> = keys
            .iter()
            .flat_map(|(request, resident)| [request.clone(), resident.clone()])
            .collect();
        let stored = get_many(&self.client, &reads).await?;
        let mut known = Known::default();
        for (new, found) in batch.iter().zip(stored.chunks(2)) {
            if let [request, resident] = found {
                if let Some(kv) = request {
                    let digest = decode::<RequestRecord>(kv)?.value.request_digest;
                    known.requests.insert(new.request_id.as_str(), digest);
                }
                if let Some(kv) = resident {
                    let resident = decode::<Resident>(kv)?.value;
                    known.residents.insert(new.nik.as_str(), resident);
                }
            }
        }
        Ok(known)
    }

    /// Decides each record of a batch in order, given what is `known`, and
    /// builds the transaction of the new ones.
    async fn plan<'b>(
        &self,
        fence: &Fence,
        state: &mut State,
        lane: usize,
        batch: &'b [NewResident],
        keys: &[(String, String)],
        mut known: Known<'b>,
    ) -> Result<(FencedTxn, Decided)> {
        let mut txn = FencedTxn::new([fence]);
        let mut plan = Decided {
            answers: Vec::with_capacity(batch.len()),
            created: 0,
            audit: None,
        };
        for (new, (request_key, resident_key)) in batch.iter().zip(keys) {
            if let Some(digest) = known.requests.get(new.request_id.as_str()) {
                plan.answers.push(if *digest != new.digest {
                    Err(reused_request_id())
                } else {
                    known
                        .residents
                        .get(new.nik.as_str())
                        .cloned()
                        .ok_or_else(|| {
                            RegistryError::Internal(
                                "idempotency record without its resident".into(),
                            )
                        })
                });
                continue;
            }
            if known.residents.contains_key(new.nik.as_str()) {
                plan.answers.push(Err(RegistryError::AlreadyExists(
                    "a resident with this nik is already recorded".into(),
                )));
                continue;
            }
            let lease = self.retention_lease(&mut state.retention_lease).await?;
            let resident = stored_resident(new);
            let request = RequestRecord {
                request_digest: new.digest.clone(),
                nik: new.nik.as_str().to_owned(),
                create_time_unix: unix_now(),
                job_id: String::new(),
            };
            plan.created += 1;
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
            known
                .requests
                .insert(new.request_id.as_str(), new.digest.clone());
            known.residents.insert(new.nik.as_str(), resident.clone());
            plan.answers.push(Ok(resident));
        }
        if plan.created > 0 {
            let count = state.lanes.get(lane).copied().unwrap_or_default();
            txn = count.count(&self.keys.stats_lane(lane), plan.created, txn);
        }
        let entries = audit_entries(batch, &plan.answers);
        if !entries.is_empty() {
            let sealed = self.audit.seal_in_txn(entries);
            txn = txn
                .when(Compare::create_revision(
                    sealed.key.as_str(),
                    CompareOp::Equal,
                    0,
                ))
                .op(TxnOp::put(sealed.key.as_str(), sealed.value.clone(), None));
            plan.audit = Some(sealed);
        }
        Ok((txn, plan))
    }

    /// Counts the entries of a committed batch's audit put.
    pub(super) fn audited(&self, audit: Option<&AuditInTxn>) {
        if let Some(audit) = audit {
            self.audit.committed_in_txn(audit);
        }
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

/// The audit entries of a decided batch: each caller's that asked for one,
/// with its answer's code as outcome; none for INVALID_ARGUMENT answers
/// (as `AuditLog::answer`).
fn audit_entries(batch: &[NewResident], answers: &[Result<Resident>]) -> Vec<AuditEntry> {
    batch
        .iter()
        .zip(answers)
        .filter_map(|(new, answer)| {
            let code = match answer {
                Ok(_) => tonic::Code::Ok,
                Err(e) => e.code(),
            };
            if code == tonic::Code::InvalidArgument {
                return None;
            }
            let mut entry = new.audit.clone()?;
            entry.outcome = ektp_proto::code_name(code).to_owned();
            Some(entry)
        })
        .collect()
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
