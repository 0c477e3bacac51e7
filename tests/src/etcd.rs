//! A real etcd on loopback: one member, or three for quorum tests. Started
//! with a 50 ms heartbeat and 500 ms election timeout so leases as short as
//! one second behave.

use crate::process::Proc;
use crate::wait::until;
use crate::{Result, free_ports};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One etcd cluster.
pub struct Etcd {
    pub members: Vec<Proc>,
    /// Client URLs, one per member.
    pub endpoints: Vec<String>,
}

/// Where etcd's members listen.
pub struct EtcdPorts {
    pub client: Vec<u16>,
    pub peer: Vec<u16>,
}

impl EtcdPorts {
    /// Free ports for `members` members.
    pub fn free(members: usize) -> Result<Self> {
        let mut client = free_ports(2 * members)?;
        let peer = client.split_off(members);
        Ok(Self { client, peer })
    }
}

/// The etcd binary: `$EKTP_ETCD_BIN`, else `etcd` on the PATH.
fn etcd_binary() -> PathBuf {
    std::env::var_os("EKTP_ETCD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("etcd"))
}

impl Etcd {
    /// Starts the members with data under `dir` and waits until they serve.
    pub async fn start(dir: &Path, ports: &EtcdPorts) -> Result<Etcd> {
        let n = ports.client.len();
        let initial: Vec<String> = (0..n)
            .map(|i| format!("m{i}=http://127.0.0.1:{}", ports.peer[i]))
            .collect();
        let mut members = Vec::new();
        let mut endpoints = Vec::new();
        for i in 0..n {
            let client = format!("http://127.0.0.1:{}", ports.client[i]);
            let peer = format!("http://127.0.0.1:{}", ports.peer[i]);
            let args = vec![
                "--name".into(),
                format!("m{i}"),
                "--data-dir".into(),
                dir.join(format!("etcd-m{i}")).display().to_string(),
                "--listen-client-urls".into(),
                client.clone(),
                "--advertise-client-urls".into(),
                client.clone(),
                "--listen-peer-urls".into(),
                peer.clone(),
                "--initial-advertise-peer-urls".into(),
                peer,
                "--initial-cluster".into(),
                initial.join(","),
                "--initial-cluster-state".into(),
                "new".into(),
                "--initial-cluster-token".into(),
                "ektp-test".into(),
                "--heartbeat-interval".into(),
                "50".into(),
                "--election-timeout".into(),
                "500".into(),
                "--log-level".into(),
                "warn".into(),
                "--logger".into(),
                "zap".into(),
            ];
            members.push(Proc::spawn(
                &format!("etcd-m{i}"),
                &etcd_binary(),
                args,
                dir,
            )?);
            endpoints.push(client);
        }
        let etcd = Etcd { members, endpoints };
        etcd.wait_healthy(Duration::from_secs(30)).await?;
        Ok(etcd)
    }

    /// A client on every member.
    pub async fn client(&self) -> Result<etcd_client::Client> {
        Ok(etcd_client::Client::connect(&self.endpoints, None).await?)
    }

    /// Waits until a write through the cluster succeeds.
    pub async fn wait_healthy(&self, timeout: Duration) -> Result<()> {
        let endpoints = self.endpoints.clone();
        until("etcd to accept writes", timeout, || {
            let endpoints = endpoints.clone();
            async move {
                let options = etcd_client::ConnectOptions::new()
                    .with_timeout(Duration::from_secs(1))
                    .with_connect_timeout(Duration::from_millis(500));
                let mut client = etcd_client::Client::connect(&endpoints, Some(options))
                    .await
                    .ok()?;
                client
                    .put("/ektp-harness/health", "ok", None)
                    .await
                    .ok()
                    .map(|_| ())
            }
        })
        .await
        .map_err(|e| {
            let logs: Vec<String> = self.members.iter().map(|m| m.log_tail(20)).collect();
            format!("{e}\netcd logs:\n{}", logs.join("\n---\n")).into()
        })
    }

    /// The current revision: unchanged means nothing was written.
    /// Keys changed (put or created) after `revision`, outside `except`
    /// prefixes. Deletions are not seen: callers compare revisions for those.
    pub async fn changed_since(&self, revision: i64, except: &[String]) -> Result<Vec<String>> {
        let mut client = self.client().await?;
        let options = etcd_client::GetOptions::new()
            .with_prefix()
            .with_keys_only()
            .with_min_mod_revision(revision + 1);
        let response = client.get("/", Some(options)).await?;
        Ok(response
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
            .filter(|k| !except.iter().any(|p| k.starts_with(p.as_str())))
            .collect())
    }

    /// The current revision of the store.
    pub async fn revision(&self) -> Result<i64> {
        let mut client = self.client().await?;
        let response = client.get("/ektp-harness/health", None).await?;
        Ok(response.header().map(|h| h.revision()).unwrap_or_default())
    }
}
