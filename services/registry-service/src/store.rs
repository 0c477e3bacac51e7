//! The read side, served by every replica straight from etcd (linearizable
//! reads, so a follower never answers older than the leader's last write).

use crate::error::{RegistryError, Result};
use crate::etcd::{count, decode, get, range};
use crate::ids::JobId;
use crate::keys::{Keys, range_end};
use ektp_nik::Nik;
use ektp_proto::v1::{PrintJob, PrintJobState, Resident, Stats};
use etcd_client::Client;
use prost::Message;

/// Most keys one list call scans while filtering, so a sparse filter cannot
/// turn one request into a full-table scan; the caller continues from the token.
const MAX_SCAN: usize = 5_000;

/// Reads residents, jobs and totals.
#[derive(Clone)]
pub struct Store {
    client: Client,
    keys: Keys,
}

/// One page of a list.
pub struct Page<T> {
    pub items: Vec<T>,
    /// Id of the last item scanned when more may follow.
    pub next: Option<String>,
}

impl Store {
    pub fn new(client: Client, keys: Keys) -> Self {
        Self { client, keys }
    }

    /// The etcd client reads go through.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// The key layout.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub async fn resident(&self, nik: &Nik) -> Result<Resident> {
        get::<Resident>(&self.client, &self.keys.resident(nik))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| RegistryError::NotFound("resident".into()))
    }

    /// Residents in NIK order after `after`.
    pub async fn residents(&self, page_size: usize, after: Option<&Nik>) -> Result<Page<Resident>> {
        let from = match after {
            Some(nik) => format!("{}\0", self.keys.resident(nik)),
            None => self.keys.residents(),
        };
        let end = range_end(&self.keys.residents());
        let kvs = range(&self.client, &from, end, limit(page_size + 1)).await?;
        let mut items = kvs
            .iter()
            .map(|kv| Resident::decode(kv.value()).map_err(RegistryError::from))
            .collect::<Result<Vec<_>>>()?;
        let more = items.len() > page_size;
        items.truncate(page_size);
        let next = more.then(|| items.last().map(|r| r.nik.clone())).flatten();
        Ok(Page { items, next })
    }

    pub async fn job(&self, id: JobId) -> Result<PrintJob> {
        get::<PrintJob>(&self.client, &self.keys.job(id))
            .await?
            .map(|v| v.value)
            .ok_or_else(|| RegistryError::NotFound("print job".into()))
    }

    /// Jobs in FIFO order after `after`, of one state unless `UNSPECIFIED`.
    pub async fn jobs(
        &self,
        state: PrintJobState,
        page_size: usize,
        after: Option<JobId>,
    ) -> Result<Page<PrintJob>> {
        let mut from = match after {
            Some(id) => format!("{}\0", self.keys.job(id)),
            None => self.keys.jobs(),
        };
        let end = range_end(&self.keys.jobs());
        let mut items = Vec::new();
        let mut scanned = 0;
        loop {
            let batch = range(&self.client, &from, end.clone(), limit(page_size.max(100))).await?;
            let Some(last) = batch.last() else {
                return Ok(Page { items, next: None });
            };
            from = format!("{}\0", String::from_utf8_lossy(last.key()));
            for kv in &batch {
                scanned += 1;
                let job = PrintJob::decode(kv.value())?;
                if state == PrintJobState::Unspecified || job.state() == state {
                    items.push(job);
                }
                if items.len() == page_size || scanned >= MAX_SCAN {
                    let next = job_id_of(kv.key());
                    return Ok(Page { items, next });
                }
            }
        }
    }

    /// Totals; `queued` and `in_doubt` are counted on read, `recorded` is
    /// added up over the writer's lanes.
    pub async fn stats(&self) -> Result<Stats> {
        // `counters/stats` is a prefix of the lanes' keys: one read, one revision.
        let main = self.keys.stats();
        let lanes = self.keys.stats_lanes();
        let mut stats = Stats::default();
        let mut lanes_recorded = 0;
        for kv in range(&self.client, &main, range_end(&main), 0).await? {
            let value = decode::<Stats>(&kv)?.value;
            if kv.key() == main.as_bytes() {
                stats = value;
            } else if kv.key().starts_with(lanes.as_bytes()) {
                lanes_recorded += value.recorded;
            }
        }
        stats.recorded += lanes_recorded;
        stats.queued = count(
            &self.client,
            &self.keys.queue(),
            range_end(&self.keys.queue()),
        )
        .await?;
        let doubt = self.keys.in_doubt_jobs();
        stats.in_doubt = count(&self.client, &doubt, range_end(&doubt)).await?;
        Ok(stats)
    }
}

fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn job_id_of(key: &[u8]) -> Option<String> {
    let key = std::str::from_utf8(key).ok()?;
    key.rsplit('/').next().map(str::to_owned)
}
