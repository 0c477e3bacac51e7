//! Retention, run by the leader a page at a time, each page one fenced
//! transaction:
//! - outbox events older than the event retention are dropped, and the floor
//!   (highest revision dropped) raised with them, so a consumer resuming from
//!   an older cursor gets OUT_OF_RANGE instead of silently missing events;
//! - print material of residents whose card was collected longer ago than the
//!   material retention is dropped (its digest stays on the record): this is
//!   what bounds etcd's size to records plus the print backlog.

use super::{Actor, Ctx};
use crate::error::Result;
use crate::etcd::bounded;
use crate::keys::range_end;
use ektp_election::FencedTxn;
use ektp_proto::v1::{Event, Resident, ResidentStatus};
use etcd_client::{Compare, CompareOp};
use etcd_client::{GetOptions, SortOrder, SortTarget, TxnOp};
use prost::Message;
use std::time::{Duration, SystemTime};

/// Events examined per sweep.
const PAGE: i64 = 500;

impl Actor {
    /// Drops up to one page of events older than `retention`; how many.
    pub(super) async fn sweep_events(&self, ctx: Ctx<'_>, retention: Duration) -> Result<usize> {
        let Ctx { fence, .. } = ctx;
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .map(prost_types::Timestamp::from)
            .unwrap_or_default();
        let prefix = self.keys.events();
        let options = GetOptions::new()
            .with_range(range_end(&prefix))
            .with_sort(SortTarget::Mod, SortOrder::Ascend)
            .with_limit(PAGE);
        let mut client = self.client.clone();
        let page = bounded("range", client.get(prefix.as_str(), Some(options))).await?;
        let mut floor = 0;
        let mut txn = FencedTxn::new([&fence]);
        let mut dropped = 0;
        for kv in page.kvs() {
            let Ok(event) = Event::decode(kv.value()) else {
                continue;
            };
            let old = event
                .time
                .is_some_and(|t| (t.seconds, t.nanos) < (cutoff.seconds, cutoff.nanos));
            // Events of one revision go together: never leave part of one behind.
            if !old && kv.mod_revision() != floor {
                break;
            }
            floor = floor.max(kv.mod_revision());
            txn = txn.op(TxnOp::delete(kv.key(), None));
            dropped += 1;
        }
        if dropped == 0 {
            return Ok(0);
        }
        let txn = txn.op(TxnOp::put(
            self.keys.events_floor(),
            floor.to_string(),
            None,
        ));
        self.commit_expected(txn).await?;
        Ok(dropped)
    }
}

impl Actor {
    /// Drops the print material of collected residents past `retention`,
    /// scanning one page of residents after `after` (a NIK; empty: from the
    /// start). Returns how many were dropped and where to continue (empty
    /// when the scan wrapped around).
    pub(super) async fn sweep_material(
        &self,
        ctx: Ctx<'_>,
        retention: Duration,
        after: String,
    ) -> Result<(usize, String)> {
        let Ctx { fence, .. } = ctx;
        let cutoff = SystemTime::now()
            .checked_sub(retention)
            .map(prost_types::Timestamp::from)
            .unwrap_or_default();
        let residents = self.keys.residents();
        let from = if after.is_empty() {
            residents.clone()
        } else {
            format!("{residents}{after}\0")
        };
        let options = GetOptions::new()
            .with_range(range_end(&residents))
            .with_limit(PAGE);
        let mut client = self.client.clone();
        let page = bounded("range", client.get(from.as_str(), Some(options))).await?;
        let mut txn = FencedTxn::new([&fence]);
        let mut dropped = 0;
        let mut last = String::new();
        for kv in page.kvs() {
            let Ok(mut resident) = Resident::decode(kv.value()) else {
                continue;
            };
            last.clone_from(&resident.nik);
            let collected_before_cutoff = resident
                .collection
                .as_ref()
                .and_then(|c| c.collect_time)
                .is_some_and(|t| (t.seconds, t.nanos) < (cutoff.seconds, cutoff.nanos));
            if resident.status() != ResidentStatus::Collected
                || resident.material_dropped
                || !collected_before_cutoff
            {
                continue;
            }
            let Ok(nik) = super::settle::stored_nik(resident.nik.as_bytes()) else {
                continue;
            };
            resident.material_dropped = true;
            txn = txn
                .when(Compare::mod_revision(
                    kv.key(),
                    CompareOp::Equal,
                    kv.mod_revision(),
                ))
                .op(TxnOp::put(kv.key(), resident.encode_to_vec(), None))
                .op(TxnOp::delete(self.keys.material(&nik), None));
            dropped += 1;
        }
        if dropped > 0 {
            self.commit_expected(txn).await?;
        }
        let next = if page.more() { last } else { String::new() };
        Ok((dropped, next))
    }
}
