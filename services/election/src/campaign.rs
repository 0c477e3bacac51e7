//! The one task that owns a node's lease, its keep-alive and its campaign.
//!
//! A session grants a lease, keeps it alive every TTL/3 and campaigns with it.
//! After `campaign` returns, the leader key is re-read: etcd 3.4 can report a
//! won campaign after the lease expired. The session ends — and the node
//! becomes a follower again with a fresh lease — when a keep-alive reports TTL
//! 0, the keep-alive stream breaks, the node's own deadline (last renewed
//! keep-alive's send time + TTL − margin) passes, or a fenced write failed.

use crate::fence::{Epoch, Fence};
use crate::lease_clock::LeaseClock;
use crate::metrics;
use crate::role::{LeaderInfo, Role};
use etcd_client::{Client, LeaderKey, LeaseKeepAliveStream, LeaseKeeper, ResignOptions};
use std::future::Future;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::{Instant, MissedTickBehavior, timeout};
use tracing::{info, warn};

/// What a node campaigns for and with.
#[derive(Clone, Debug)]
pub struct ElectionConfig {
    /// Service label for metrics and logs (`registry`, `print`).
    pub service: &'static str,
    /// Election name (etcd key prefix), e.g. `/ektp/dev/registry/leader`.
    pub name: String,
    /// This node's advertised gRPC address, stored as the election value.
    pub address: String,
    /// Lease TTL.
    pub ttl: Duration,
    /// How often the lease is kept alive (TTL/3 is usual).
    pub keepalive: Duration,
    /// How long before the lease could expire a leader stops on its own.
    pub margin: Duration,
}

enum Command {
    StepDown(Epoch),
    Resign(oneshot::Sender<()>),
}

/// A cheap, cloneable view of the election: the role channel and a way to
/// ask the owning task to step down or resign.
#[derive(Clone)]
pub struct ElectionHandle {
    role: watch::Receiver<Role>,
    commands: mpsc::Sender<Command>,
    client: Client,
    name: String,
}

impl ElectionHandle {
    /// The role right now.
    pub fn role(&self) -> Role {
        self.role.borrow().clone()
    }

    /// A receiver that sees every role change.
    pub fn subscribe(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// The leader as etcd says right now, when the published role does not
    /// know it yet (e.g. just after a peer won).
    pub async fn lookup_leader(&self) -> Option<LeaderInfo> {
        if let Some(leader) = self.role().leader() {
            return Some(leader);
        }
        current_leader(&self.client, &self.name).await
    }

    /// Gives up leadership at `epoch` (a fenced write failed): the lease is
    /// revoked and the node campaigns again with a fresh one.
    pub fn step_down(&self, epoch: Epoch) {
        if self.commands.try_send(Command::StepDown(epoch)).is_err() {
            warn!(%epoch, "election task busy or gone; step-down request dropped");
        }
    }

    /// Resigns leadership (or stops campaigning) and ends the election task,
    /// so a peer takes over at once instead of waiting for the lease to expire.
    pub async fn resign(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Resign(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts the election task for `config` on `client`. The client must have no
/// request timeout: it would cut the campaign call, which blocks until won.
pub fn spawn(client: Client, config: ElectionConfig) -> ElectionHandle {
    metrics::start(config.service);
    let (role_tx, role_rx) = watch::channel(Role::Starting);
    let (commands_tx, commands_rx) = mpsc::channel(16);
    let handle = ElectionHandle {
        role: role_rx,
        commands: commands_tx,
        client: client.clone(),
        name: config.name.clone(),
    };
    tokio::spawn(run(client, config, role_tx, commands_rx));
    handle
}

enum SessionEnd {
    Resigned,
    Lost(String),
}

async fn run(
    client: Client,
    config: ElectionConfig,
    role: watch::Sender<Role>,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let started = Instant::now();
        let end = Session::new(client.clone(), &config, &role)
            .run(&mut commands)
            .await;
        publish(&role, &config, Role::Starting);
        match end {
            SessionEnd::Resigned => {
                info!(
                    service = config.service,
                    "election task stopped after resigning"
                );
                return;
            }
            SessionEnd::Lost(reason) => {
                warn!(service = config.service, %reason, "election session ended; campaigning again");
            }
        }
        // Back off only when sessions die quickly (etcd down), not after a long reign.
        backoff = if started.elapsed() > config.ttl {
            Duration::from_millis(100)
        } else {
            (backoff * 2).min(Duration::from_secs(2))
        };
        tokio::time::sleep(backoff).await;
    }
}

/// Publishes a role, recording a leadership transition in metrics.
fn publish(tx: &watch::Sender<Role>, config: &ElectionConfig, next: Role) {
    tx.send_if_modified(|current| {
        if *current == next {
            return false;
        }
        if current.is_leader() != next.is_leader() {
            let epoch = next.fence().map(|f| f.epoch.0).unwrap_or(0);
            metrics::record_role(config.service, next.is_leader(), epoch);
        }
        *current = next;
        true
    });
}

struct Session<'a> {
    client: Client,
    config: &'a ElectionConfig,
    role: &'a watch::Sender<Role>,
    lease: i64,
    clock: LeaseClock,
}

/// Why a keep-alive went wrong.
enum Fault {
    /// The lease is gone (TTL 0) or the deadline passed: leadership ends.
    Expired(String),
    /// The stream broke; the lease may still live, so reopen it.
    Broken(String),
}

impl<'a> Session<'a> {
    fn new(client: Client, config: &'a ElectionConfig, role: &'a watch::Sender<Role>) -> Self {
        Self {
            client,
            config,
            role,
            lease: 0,
            clock: LeaseClock::new(config.ttl, config.margin, Instant::now()),
        }
    }

    fn request_timeout(&self) -> Duration {
        self.config.ttl / 3
    }

    fn deadline(&self) -> Instant {
        self.clock.deadline()
    }

    async fn etcd<T>(
        &self,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, String> {
        match timeout(self.request_timeout(), metrics::timed("lease", call)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("etcd request timed out".to_owned()),
        }
    }

    async fn run(mut self, commands: &mut mpsc::Receiver<Command>) -> SessionEnd {
        let ttl_secs = i64::try_from(self.config.ttl.as_secs().max(1)).unwrap_or(5);
        self.clock = LeaseClock::new(self.config.ttl, self.config.margin, Instant::now());
        let mut client = self.client.clone();
        let lease = match self.etcd(client.lease_grant(ttl_secs, None)).await {
            Ok(lease) => lease.id(),
            Err(e) => return SessionEnd::Lost(format!("lease grant failed: {e}")),
        };
        self.lease = lease;
        let (keeper, stream) = match self.etcd(client.lease_keep_alive(lease)).await {
            Ok(pair) => pair,
            Err(e) => {
                self.revoke().await;
                return SessionEnd::Lost(format!("keep-alive stream failed: {e}"));
            }
        };
        let end = self.campaign_and_lead(keeper, stream, commands).await;
        if let SessionEnd::Lost(_) = end {
            // Stop acting as leader before anything else that could take time.
            publish(self.role, self.config, Role::Starting);
            self.revoke().await;
        }
        end
    }

    async fn campaign_and_lead(
        &mut self,
        mut keeper: LeaseKeeper,
        mut stream: LeaseKeepAliveStream,
        commands: &mut mpsc::Receiver<Command>,
    ) -> SessionEnd {
        let mut ticker = tokio::time::interval(self.config.keepalive);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut campaign_client = self.client.clone();
        let campaign = campaign_client.campaign(
            self.config.name.as_str(),
            self.config.address.as_str(),
            self.lease,
        );
        tokio::pin!(campaign);
        let mut leader = self.current_leader().await;
        publish(
            self.role,
            self.config,
            Role::Follower {
                leader: leader.clone(),
            },
        );

        let leader_key = loop {
            tokio::select! {
                // While no leader is known, look again soon so forwarding works
                // right after a peer wins, not a tick later.
                _ = tokio::time::sleep(Duration::from_millis(100)), if leader.is_none() => {
                    leader = self.current_leader().await;
                    publish(self.role, self.config, Role::Follower { leader: leader.clone() });
                }
                won = &mut campaign => match won {
                    Ok(mut response) => match response.take_leader() {
                        Some(key) => break key,
                        None => return SessionEnd::Lost("campaign answered without a leader key".into()),
                    },
                    Err(e) => return SessionEnd::Lost(format!("campaign failed: {e}")),
                },
                _ = ticker.tick() => {
                    if let Err(fault) = self.send_keepalive(&mut keeper).await {
                        match self.recover_stream(fault).await {
                            Ok((k, st)) => (keeper, stream) = (k, st),
                            Err(reason) => return SessionEnd::Lost(reason),
                        }
                    }
                    leader = self.current_leader().await;
                    publish(self.role, self.config, Role::Follower { leader: leader.clone() });
                }
                reply = stream.message() => if let Err(fault) = self.on_keepalive(reply) {
                    match self.recover_stream(fault).await {
                        Ok((k, st)) => (keeper, stream) = (k, st),
                        Err(reason) => return SessionEnd::Lost(reason),
                    }
                },
                command = commands.recv() => match command {
                    Some(Command::StepDown(_)) => {}
                    Some(Command::Resign(done)) => {
                        self.revoke().await;
                        let _ = done.send(());
                        return SessionEnd::Resigned;
                    }
                    None => return SessionEnd::Resigned,
                },
            }
        };

        let fence = match self.verify(&leader_key).await {
            Ok(fence) => fence,
            Err(reason) => return SessionEnd::Lost(reason),
        };
        info!(service = self.config.service, epoch = %fence.epoch, "became leader");
        let epoch = fence.epoch;
        publish(
            self.role,
            self.config,
            Role::Leader {
                fence,
                address: self.config.address.clone(),
            },
        );

        loop {
            let deadline = self.deadline();
            tokio::select! {
                _ = ticker.tick() => if let Err(fault) = self.send_keepalive(&mut keeper).await {
                    match self.recover_stream(fault).await {
                        Ok((k, st)) => (keeper, stream) = (k, st),
                        Err(reason) => return SessionEnd::Lost(reason),
                    }
                },
                reply = stream.message() => if let Err(fault) = self.on_keepalive(reply) {
                    match self.recover_stream(fault).await {
                        Ok((k, st)) => (keeper, stream) = (k, st),
                        Err(reason) => return SessionEnd::Lost(reason),
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return SessionEnd::Lost("lease deadline passed without a renewal".into());
                }
                command = commands.recv() => match command {
                    Some(Command::StepDown(at)) if at == epoch => {
                        return SessionEnd::Lost("a fenced write failed".into());
                    }
                    Some(Command::StepDown(_)) => {}
                    Some(Command::Resign(done)) => {
                        self.resign(leader_key).await;
                        let _ = done.send(());
                        return SessionEnd::Resigned;
                    }
                    None => return SessionEnd::Resigned,
                },
            }
        }
    }

    async fn send_keepalive(&mut self, keeper: &mut LeaseKeeper) -> Result<(), Fault> {
        if self.clock.expired(Instant::now()) && self.role.borrow().is_leader() {
            return Err(Fault::Expired(
                "lease deadline passed without a renewal".into(),
            ));
        }
        let sent = Instant::now();
        match keeper.keep_alive().await {
            Ok(()) => {
                self.clock.sent(sent);
                Ok(())
            }
            Err(e) => {
                metrics::keepalive_failed(self.config.service);
                Err(Fault::Broken(format!("keep-alive send failed: {e}")))
            }
        }
    }

    fn on_keepalive(
        &mut self,
        reply: Result<Option<etcd_client::LeaseKeepAliveResponse>, etcd_client::Error>,
    ) -> Result<(), Fault> {
        match reply {
            Ok(Some(response)) if response.ttl() > 0 => {
                self.clock.confirmed();
                Ok(())
            }
            Ok(Some(_)) => {
                metrics::keepalive_failed(self.config.service);
                Err(Fault::Expired(
                    "keep-alive reported the lease expired (ttl 0)".into(),
                ))
            }
            Ok(None) => {
                metrics::keepalive_failed(self.config.service);
                Err(Fault::Broken("keep-alive stream closed".into()))
            }
            Err(e) => {
                metrics::keepalive_failed(self.config.service);
                Err(Fault::Broken(format!("keep-alive stream broke: {e}")))
            }
        }
    }

    /// After a keep-alive fault: an expired lease ends the session; a broken
    /// stream is reopened on the same lease while its deadline has not passed.
    async fn recover_stream(
        &mut self,
        fault: Fault,
    ) -> Result<(LeaseKeeper, LeaseKeepAliveStream), String> {
        let reason = match fault {
            Fault::Expired(reason) => return Err(reason),
            Fault::Broken(reason) => reason,
        };
        warn!(service = self.config.service, %reason, "keep-alive stream broken; reopening it");
        if self.clock.expired(Instant::now()) {
            return Err(format!("{reason}; the lease deadline passed"));
        }
        let mut client = self.client.clone();
        self.etcd(client.lease_keep_alive(self.lease))
            .await
            .map_err(|e| format!("{reason}; reopening failed: {e}"))
    }

    /// Re-reads the leader key: it must exist, hold our lease, and have been
    /// created at the revision campaign reported.
    async fn verify(&self, key: &LeaderKey) -> Result<Fence, String> {
        let mut client = self.client.clone();
        let found = self.etcd(client.get(key.key(), None)).await?;
        let kv = found
            .kvs()
            .first()
            .ok_or("leader key vanished right after campaign")?;
        if kv.create_revision() != key.rev() || kv.lease() != self.lease {
            return Err("leader key does not match the won campaign".into());
        }
        let key_str = String::from_utf8(key.key().to_vec())
            .map_err(|_| "leader key is not utf-8".to_owned())?;
        Ok(Fence {
            key: key_str,
            epoch: Epoch(u64::try_from(key.rev()).unwrap_or(0)),
        })
    }

    async fn current_leader(&self) -> Option<LeaderInfo> {
        let mut client = self.client.clone();
        let response = self
            .etcd(client.leader(self.config.name.as_str()))
            .await
            .ok()?;
        leader_info(response.kv()?)
    }

    async fn resign(&self, key: LeaderKey) {
        publish(self.role, self.config, Role::Starting);
        let mut client = self.client.clone();
        if let Err(e) = self
            .etcd(client.resign(Some(ResignOptions::new().with_leader(key))))
            .await
        {
            warn!(service = self.config.service, error = %e, "resign failed; revoking the lease instead");
        }
        self.revoke().await;
    }

    async fn revoke(&self) {
        let mut client = self.client.clone();
        if let Err(e) = self.etcd(client.lease_revoke(self.lease)).await {
            warn!(service = self.config.service, error = %e, "lease revoke failed; it will expire");
        }
    }
}

/// The leader of election `name` as etcd says now (one bounded read), for
/// nodes that follow another service's election.
pub async fn current_leader(client: &Client, name: &str) -> Option<LeaderInfo> {
    let mut client = client.clone();
    let response = timeout(Duration::from_secs(1), client.leader(name))
        .await
        .ok()?
        .ok()?;
    leader_info(response.kv()?)
}

fn leader_info(kv: &etcd_client::KeyValue) -> Option<LeaderInfo> {
    Some(LeaderInfo {
        address: String::from_utf8_lossy(kv.value()).into_owned(),
        epoch: Epoch(u64::try_from(kv.create_revision()).ok()?),
    })
}
