//! Print material at the writer: sealed before every put, opened for claims,
//! and moved onto the active key by the leader's re-seal pass so an old key
//! can eventually be removed. The pass runs a page at a time through the
//! writer, each page one fenced transaction guarded by every value's mod
//! revision, like retention.

use super::{Actor, Command, Ctx, Writer};
use crate::error::{RegistryError, Result};
use crate::etcd::range;
use crate::gauges::MATERIAL_STALE_KEY;
use crate::ids::JobId;
use crate::keys::range_end;
use crate::sealing::decode_sealed;
use ektp_election::{ElectionHandle, FencedTxn};
use ektp_nik::Nik;
use ektp_proto::v1::PrintMaterial;
use etcd_client::{Compare, CompareOp, KeyValue, TxnOp};
use std::time::Duration;
use tokio::sync::oneshot;
use tracing::{error, info, warn};

/// Material values read per re-seal page (a value is at most ~80 KiB).
const RESEAL_READ: i64 = 32;

/// Sealed bytes one re-seal transaction writes at most: etcd refuses
/// requests above 1.5 MiB by default.
const RESEAL_TXN_BYTES: usize = 1024 * 1024;

/// Re-seal pages per tick; the pass resumes at the next tick.
const PAGES_PER_TICK: usize = 50;

/// One page of the re-seal pass.
pub(super) struct ResealPage {
    /// Values moved onto the active key.
    resealed: usize,
    /// Values found under another key (or unsealed), re-sealed or not.
    stale: usize,
    /// Key to continue after; empty when the pass reached the end.
    next: String,
}

impl Actor {
    /// The put of `material` for `nik`, sealed with the active key.
    pub(super) fn put_material(&self, nik: &Nik, material: &PrintMaterial) -> Result<TxnOp> {
        let key = self.keys.material(nik);
        let value = self
            .sealer
            .seal_value(&key, material)
            .map_err(|e| RegistryError::Internal(e.to_string()))?;
        Ok(TxnOp::put(key, value, None))
    }

    /// Opens the stored material of a claimed job. A value this node cannot
    /// open refuses the claim: a card is never printed without its photo.
    pub(super) fn open_material(&self, job: JobId, kv: &KeyValue) -> Result<PrintMaterial> {
        let key = String::from_utf8_lossy(kv.key());
        self.sealer.open_value(&key, kv.value()).map_err(|e| {
            error!(
                job_id = %job,
                key_id = e.key_id().unwrap_or("none"),
                error = %e,
                "print material of a queued job cannot be opened; claim refused"
            );
            RegistryError::FailedPrecondition(format!(
                "the print material of job {job} cannot be opened ({e}); the registry lacks its material key"
            ))
        })
    }

    /// Re-seals up to one page of material values after `after` (an etcd
    /// key; empty: from the start) that are not sealed with the active key.
    pub(super) async fn reseal(&self, ctx: Ctx<'_>, after: String) -> Result<ResealPage> {
        let Ctx { fence, .. } = ctx;
        let prefix = self.keys.materials();
        let from = if after.is_empty() {
            prefix.clone()
        } else {
            format!("{after}\0")
        };
        let kvs = range(&self.client, &from, range_end(&prefix), RESEAL_READ).await?;
        let mut more = kvs.len() >= RESEAL_READ as usize;
        let active = self.sealer.active_id();
        let mut txn = FencedTxn::new([&fence]);
        let (mut resealed, mut stale, mut bytes) = (0, 0, 0);
        let mut last = String::new();
        for kv in &kvs {
            let key = String::from_utf8_lossy(kv.key()).into_owned();
            // Never the etcd key in logs: it carries the NIK.
            let opened = match decode_sealed(kv.value()) {
                Ok(sealed) if sealed.key_id == active => None,
                Ok(sealed) => Some(self.sealer.open(&key, &sealed)),
                Err(e) => Some(Err(e)),
            };
            let material = match opened {
                None => {
                    last = key;
                    continue;
                }
                Some(Ok(material)) => material,
                Some(Err(e)) => {
                    error!(key_id = e.key_id().unwrap_or("none"), error = %e, "print material cannot be re-sealed; left as is");
                    stale += 1;
                    last = key;
                    continue;
                }
            };
            let value = self
                .sealer
                .seal_value(&key, &material)
                .map_err(|e| RegistryError::Internal(e.to_string()))?;
            if bytes + value.len() > RESEAL_TXN_BYTES {
                more = true;
                break;
            }
            bytes += value.len();
            txn = txn
                .when(Compare::mod_revision(
                    key.as_str(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                ))
                .op(TxnOp::put(key.as_str(), value, None));
            resealed += 1;
            stale += 1;
            last = key;
        }
        if resealed > 0 {
            self.commit_expected(txn).await?;
        }
        let next = if more { last } else { String::new() };
        Ok(ResealPage {
            resealed,
            stale,
            next,
        })
    }
}

impl Writer {
    /// Keeps moving print material onto the active key while this node
    /// leads, and reports after each complete pass how many values were not
    /// on it ([`MATERIAL_STALE_KEY`]).
    pub fn spawn_reseal(&self, election: ElectionHandle, every: Duration) {
        let writer = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            let mut cursor = String::new();
            let mut stale = 0;
            loop {
                tick.tick().await;
                if !election.role().is_leader() {
                    // A pass counts only if one leader saw all of it.
                    metrics::gauge!(MATERIAL_STALE_KEY).set(0.0);
                    cursor.clear();
                    stale = 0;
                    continue;
                }
                for _ in 0..PAGES_PER_TICK {
                    let (reply, answer) = oneshot::channel();
                    if writer
                        .commands
                        .send(Command::Reseal(cursor.clone(), reply))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    match answer.await {
                        Ok(Ok(page)) => {
                            if page.resealed > 0 {
                                info!(
                                    resealed = page.resealed,
                                    "print material re-sealed with the active key"
                                );
                            }
                            stale += page.stale;
                            cursor = page.next;
                            if cursor.is_empty() {
                                metrics::gauge!(MATERIAL_STALE_KEY).set(stale as f64);
                                if stale > 0 {
                                    info!(stale, "print material re-seal pass complete");
                                }
                                stale = 0;
                                break;
                            }
                        }
                        Ok(Err(e)) => {
                            warn!(error = %e, "print material re-seal failed");
                            break;
                        }
                        Err(_) => return,
                    }
                }
            }
        });
    }
}
