//! A whole ektp cluster on loopback: etcd, registry and print replicas, and
//! the card-printer simulator serving a hot folder — all real processes.

use crate::etcd::{Etcd, EtcdPorts};
use crate::pki::Pki;
use crate::process::Proc;
use crate::wait::until;
use crate::{Result, bin_dir, free_ports};
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::{AddBlankStockRequest, GetStatusRequest, Role};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The two services.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    Registry,
    Print,
}

impl Service {
    fn election(self, office: &str) -> String {
        match self {
            Service::Registry => format!("/ektp/{office}/registry/leader"),
            Service::Print => format!("/ektp/{office}/print/leader"),
        }
    }
}

/// Ports of every process.
pub struct Ports {
    pub etcd: EtcdPorts,
    pub registry: Vec<u16>,
    pub print: Vec<u16>,
    pub metrics: Vec<u16>,
}

impl Ports {
    /// Free ports for a cluster of this shape.
    pub fn free(etcd_members: usize, registry: usize, print: usize) -> Result<Self> {
        let mut ports = free_ports(2 * etcd_members + 2 * (registry + print))?;
        let etcd_client = ports.drain(..etcd_members).collect();
        let etcd_peer = ports.drain(..etcd_members).collect();
        let registry_ports = ports.drain(..registry).collect();
        let print_ports = ports.drain(..print).collect();
        Ok(Self {
            etcd: EtcdPorts {
                client: etcd_client,
                peer: etcd_peer,
            },
            registry: registry_ports,
            print: print_ports,
            metrics: ports,
        })
    }

    /// The demo's documented ports.
    pub fn demo() -> Self {
        Self {
            etcd: EtcdPorts {
                client: vec![2379, 22379, 32379],
                peer: vec![2380, 22380, 32380],
            },
            registry: vec![50051, 50052],
            print: vec![50061, 50062],
            metrics: vec![9091, 9092, 9093, 9094],
        }
    }
}

/// What to start.
pub struct Spec {
    pub dir: PathBuf,
    pub ports: Ports,
    pub office: String,
    pub lease_ttl_secs: u64,
    /// Cards per hour of the printer simulator.
    pub cards_per_hour: u32,
    /// Blanks stocked at start.
    pub blanks: u64,
    pub claim_batch: u32,
    /// etcd endpoints for particular nodes instead of the cluster's (e.g. a
    /// test's proxy that can cut one node off).
    pub etcd_overrides: Vec<(Service, usize, String)>,
    /// Extra flags for every registry replica.
    pub registry_args: Vec<String>,
    /// Print through the in-process `sim` driver at this many cards per hour
    /// instead of the hot-folder printer simulator (benchmarks: "instant").
    pub sim_printer: Option<u32>,
    /// Mutual TLS and role checks on every node, with a throwaway CA under
    /// `{dir}/tls` (see [`TEST_ROLES`]).
    pub tls: bool,
}

/// The identities of a TLS cluster and their roles. Nodes are `registry-{i}`
/// and `print-{i}`; the harness's own client is `harness`.
pub const TEST_ROLES: &[(&str, &str)] = &[
    ("registry-0", "replica"),
    ("registry-1", "replica"),
    ("print-0", "print-node,replica"),
    ("print-1", "print-node,replica"),
    ("harness", "registrar,central,operator,verifier,auditor"),
    ("registrar", "registrar"),
    ("central", "central"),
    ("operator", "operator"),
    ("verifier", "verifier"),
    ("auditor", "auditor"),
    ("print-node", "print-node"),
];

impl Spec {
    /// A test cluster: 1 etcd member, 2 + 2 replicas, free ports, TTL 2 s.
    pub fn test(dir: &Path) -> Result<Self> {
        Ok(Self {
            dir: dir.to_path_buf(),
            ports: Ports::free(1, 2, 2)?,
            office: "test".into(),
            lease_ttl_secs: 2,
            cards_per_hour: 360_000,
            blanks: 10_000,
            claim_batch: 8,
            etcd_overrides: Vec::new(),
            registry_args: Vec::new(),
            sim_printer: None,
            tls: false,
        })
    }
}

impl Spec {
    /// Only etcd and two registry replicas.
    pub fn registry_only(dir: &Path) -> Result<Self> {
        Ok(Self {
            ports: Ports::free(1, 2, 0)?,
            ..Self::test(dir)?
        })
    }
}

/// One service replica.
pub struct Node {
    pub service: Service,
    pub proc: Proc,
    /// gRPC address, `http://127.0.0.1:port` (`https://` with TLS).
    pub address: String,
    pub metrics_port: u16,
    /// TLS the harness's clients use (identity `harness`), in a TLS cluster.
    pub tls: Option<ClientTlsConfig>,
}

impl Node {
    /// A channel to the node, as the harness (all outside roles) in a TLS cluster.
    pub async fn channel(&self) -> Result<Channel> {
        self.channel_with(self.tls.clone()).await
    }

    /// A channel to the node over `tls` (or plaintext).
    pub async fn channel_with(&self, tls: Option<ClientTlsConfig>) -> Result<Channel> {
        let mut endpoint = Endpoint::from_shared(self.address.clone())?;
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls)?;
        }
        Ok(endpoint
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .connect()
            .await?)
    }
}

impl Node {
    /// Waits until the node answers its gRPC health check with SERVING
    /// (connected to etcd and able to take over).
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        use tonic_health::pb::health_check_response::ServingStatus;
        use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
        until(
            &format!("{} to be ready", self.proc.name()),
            timeout,
            || async {
                let mut client = HealthClient::new(self.channel().await.ok()?);
                let answer = client
                    .check(HealthCheckRequest {
                        service: String::new(),
                    })
                    .await
                    .ok()?;
                (answer.into_inner().status() == ServingStatus::Serving).then_some(())
            },
        )
        .await
        .map_err(|e| format!("{e}; its log ends:\n{}", self.proc.log_tail(20)).into())
    }
}

/// A running cluster. Everything it started is killed when it is dropped,
/// unless [`Cluster::detach`] was called.
pub struct Cluster {
    pub etcd: Etcd,
    pub registry: Vec<Node>,
    pub print: Vec<Node>,
    pub printer: Proc,
    pub hotfolder: PathBuf,
    pub office: String,
    /// The CA of a TLS cluster, to issue test callers' certificates.
    pub pki: Option<Pki>,
}

impl Cluster {
    /// Starts everything and waits until both services have a leader and
    /// every replica reports ready; stocks the blanks.
    pub async fn start(spec: Spec) -> Result<Cluster> {
        let bins = bin_dir()?;
        std::fs::create_dir_all(&spec.dir)?;
        let etcd = Etcd::start(&spec.dir, &spec.ports.etcd).await?;
        let hotfolder = spec.dir.join("printer");
        let printer = Proc::spawn(
            "card-printer-sim",
            &bins.join("card-printer-sim"),
            vec![
                "--dir".into(),
                hotfolder.display().to_string(),
                "--name".into(),
                "printer-1".into(),
                "--cards-per-hour".into(),
                spec.cards_per_hour.to_string(),
            ],
            &spec.dir,
        )?;
        let security = Security::create(&spec)?;
        let scheme = if security.is_some() { "https" } else { "http" };
        let harness_tls = match &security {
            Some(s) => Some(s.pki.client_tls(&s.pki.issue("harness")?)?),
            None => None,
        };
        let registry_endpoints: Vec<String> = spec
            .ports
            .registry
            .iter()
            .map(|p| format!("{scheme}://127.0.0.1:{p}"))
            .collect();
        let mut metrics = spec.ports.metrics.iter().copied();
        let mut registry = Vec::new();
        let material_keys = crate::material_keys::registry_flags(&spec.dir)?;
        for (i, port) in spec.ports.registry.iter().enumerate() {
            let metrics_port = metrics.next().ok_or("not enough metrics ports")?;
            let mut args = common_args(&spec, &etcd, (Service::Registry, i), *port, metrics_port);
            args.extend(material_keys.iter().cloned());
            args.extend(spec.registry_args.iter().cloned());
            if let Some(security) = &security {
                args.extend(security.args(&format!("registry-{i}"))?);
            }
            let proc = Proc::spawn(
                &format!("registry-{i}"),
                &bins.join("registry-service"),
                args,
                &spec.dir,
            )?;
            registry.push(Node {
                service: Service::Registry,
                proc,
                address: format!("{scheme}://127.0.0.1:{port}"),
                metrics_port,
                tls: harness_tls.clone(),
            });
        }
        let mut print = Vec::new();
        for (i, port) in spec.ports.print.iter().enumerate() {
            let metrics_port = metrics.next().ok_or("not enough metrics ports")?;
            let mut args = common_args(&spec, &etcd, (Service::Print, i), *port, metrics_port);
            args.extend(["--registry-endpoints".into(), registry_endpoints.join(",")]);
            match spec.sim_printer {
                Some(rate) => args.extend([
                    "--printer-driver".into(),
                    "sim".into(),
                    "--sim-cards-per-hour".into(),
                    rate.to_string(),
                ]),
                None => args.extend([
                    "--printer-driver".into(),
                    "hotfolder".into(),
                    "--hotfolder-dir".into(),
                    hotfolder.display().to_string(),
                ]),
            }
            args.extend([
                "--claim-batch".into(),
                spec.claim_batch.to_string(),
                "--idle-poll-ms".into(),
                "100".into(),
            ]);
            if let Some(security) = &security {
                args.extend(security.args(&format!("print-{i}"))?);
            }
            let proc = Proc::spawn(
                &format!("print-{i}"),
                &bins.join("print-service"),
                args,
                &spec.dir,
            )?;
            print.push(Node {
                service: Service::Print,
                proc,
                address: format!("{scheme}://127.0.0.1:{port}"),
                metrics_port,
                tls: harness_tls.clone(),
            });
        }
        let cluster = Cluster {
            etcd,
            registry,
            print,
            printer,
            hotfolder,
            office: spec.office.clone(),
            pki: security.map(|s| s.pki),
        };
        for node in cluster.registry.iter().chain(cluster.print.iter()) {
            node.wait_ready(Duration::from_secs(30)).await?;
        }
        cluster
            .wait_leader(Service::Registry, Duration::from_secs(30))
            .await?;
        if cluster.print.is_empty() {
            return Ok(cluster);
        }
        cluster
            .wait_leader(Service::Print, Duration::from_secs(30))
            .await?;
        if spec.blanks > 0 {
            cluster.add_blanks(spec.blanks).await?;
        }
        Ok(cluster)
    }

    fn nodes(&self, service: Service) -> &[Node] {
        match service {
            Service::Registry => &self.registry,
            Service::Print => &self.print,
        }
    }

    /// The nodes of a service, mutably (to kill or restart one).
    pub fn nodes_mut(&mut self, service: Service) -> &mut Vec<Node> {
        match service {
            Service::Registry => &mut self.registry,
            Service::Print => &mut self.print,
        }
    }

    /// The current leader's address as etcd's election says.
    pub async fn leader_address(&self, service: Service) -> Option<String> {
        let mut client = self.etcd.client().await.ok()?;
        let response = client.leader(service.election(&self.office)).await.ok()?;
        response
            .kv()
            .map(|kv| String::from_utf8_lossy(kv.value()).into_owned())
    }

    /// Index of the leading replica of a service.
    pub async fn leader_index(&self, service: Service) -> Option<usize> {
        let address = self.leader_address(service).await?;
        self.nodes(service)
            .iter()
            .position(|n| n.address == address)
    }

    /// Waits until a running replica of the service leads; returns its index.
    pub async fn wait_leader(&self, service: Service, timeout: Duration) -> Result<usize> {
        until(&format!("a {service:?} leader"), timeout, || async {
            self.leader_index(service).await
        })
        .await
    }

    /// Waits until a replica other than `old` leads the service.
    pub async fn wait_new_leader(
        &self,
        service: Service,
        old: usize,
        timeout: Duration,
    ) -> Result<usize> {
        until(&format!("a new {service:?} leader"), timeout, || async {
            self.leader_index(service).await.filter(|i| *i != old)
        })
        .await
    }

    /// A channel to `node` as `identity`, with a certificate from the
    /// cluster's CA (TLS clusters only).
    pub async fn channel_as(&self, node: &Node, identity: &str) -> Result<Channel> {
        let pki = self.pki.as_ref().ok_or("not a TLS cluster")?;
        let tls = pki.client_tls(&pki.issue(identity)?)?;
        node.channel_with(Some(tls)).await
    }

    /// Wins the print election for the test itself, so it can call the print
    /// queue like a print leader (with no print replicas running).
    pub async fn lead_print(
        &self,
    ) -> Result<(ektp_election::ElectionHandle, ektp_election::Fence)> {
        let election = ektp_election::spawn(
            self.etcd.client().await?,
            ektp_election::ElectionConfig {
                service: "test-print-leader",
                name: Service::Print.election(&self.office),
                address: "http://127.0.0.1:1".into(),
                ttl: Duration::from_secs(2),
                keepalive: Duration::from_millis(600),
                margin: Duration::from_millis(400),
            },
        );
        let mut role = election.subscribe();
        let fence = until("the test to lead printing", Duration::from_secs(10), || {
            let fence = role.borrow_and_update().fence().cloned();
            async move { fence }
        })
        .await?;
        Ok((election, fence))
    }

    /// A Registry client on replica `i`.
    pub async fn registry_client(&self, i: usize) -> Result<RegistryClient<Channel>> {
        let node = self.registry.get(i).ok_or("no such registry replica")?;
        Ok(RegistryClient::new(node.channel().await?))
    }

    /// A PrintControl client on replica `i`.
    pub async fn print_client(&self, i: usize) -> Result<PrintControlClient<Channel>> {
        let node = self.print.get(i).ok_or("no such print replica")?;
        Ok(PrintControlClient::new(node.channel().await?))
    }

    /// Adds blank stock through a print replica (forwarded to the leader).
    pub async fn add_blanks(&self, count: u64) -> Result<u64> {
        let request = AddBlankStockRequest {
            count,
            reference: "harness".into(),
            request_id: format!("harness-{count}-{}", std::process::id()),
        };
        // Same request id on every try: a retry after a lost answer adds nothing.
        until("blank stock to be added", Duration::from_secs(20), || {
            let request = request.clone();
            async move {
                // Any live print replica will do: followers forward to the leader.
                for i in 0..self.print.len() {
                    let Ok(mut client) = self.print_client(i).await else {
                        continue;
                    };
                    if let Ok(response) = client.add_blank_stock(request.clone()).await {
                        return Some(response.into_inner().remaining);
                    }
                }
                None
            }
        })
        .await
    }

    /// Role the print replica `i` reports.
    pub async fn print_role(&self, i: usize) -> Option<Role> {
        let mut client = self.print_client(i).await.ok()?;
        let status = client.get_status(GetStatusRequest {}).await.ok()?;
        Some(status.into_inner().role())
    }

    /// Leaves every process running (the demo's `--keep`) and writes their
    /// pids to `{dir}/pids` for `deploy/local/down.sh`.
    pub fn detach(&mut self, dir: &Path) -> Result<()> {
        let mut pids = String::new();
        let procs = self
            .etcd
            .members
            .iter_mut()
            .chain(self.registry.iter_mut().map(|n| &mut n.proc))
            .chain(self.print.iter_mut().map(|n| &mut n.proc))
            .chain(std::iter::once(&mut self.printer));
        for proc in procs {
            if let Some(pid) = proc.pid() {
                pids.push_str(&format!("{pid} {}\n", proc.name()));
            }
            proc.detach();
        }
        std::fs::write(dir.join("pids"), pids)?;
        Ok(())
    }
}

fn common_args(
    spec: &Spec,
    etcd: &Etcd,
    node: (Service, usize),
    port: u16,
    metrics_port: u16,
) -> Vec<String> {
    let endpoints = spec
        .etcd_overrides
        .iter()
        .find(|(service, i, _)| (*service, *i) == node)
        .map_or_else(|| etcd.endpoints.join(","), |(_, _, url)| url.clone());
    vec![
        "--office".into(),
        spec.office.clone(),
        "--etcd-endpoints".into(),
        endpoints,
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--metrics-listen".into(),
        format!("127.0.0.1:{metrics_port}"),
        "--lease-ttl-secs".into(),
        spec.lease_ttl_secs.to_string(),
        "--drain-timeout-ms".into(),
        "2000".into(),
    ]
}

/// The CA and roles file of a TLS cluster.
struct Security {
    pki: Pki,
    roles: PathBuf,
}

impl Security {
    fn create(spec: &Spec) -> Result<Option<Self>> {
        if !spec.tls {
            return Ok(None);
        }
        let dir = spec.dir.join("tls");
        let pki = Pki::create(&dir, "ektp-test-ca")?;
        let roles = crate::pki::write_roles(&dir.join("roles"), TEST_ROLES)?;
        Ok(Some(Self { pki, roles }))
    }

    /// The flags that make node `identity` serve mTLS, check roles and call
    /// its peers with its own certificate.
    fn args(&self, identity: &str) -> Result<Vec<String>> {
        let files = self.pki.issue(identity)?;
        Ok(vec![
            "--tls-cert".into(),
            files.cert.display().to_string(),
            "--tls-key".into(),
            files.key.display().to_string(),
            "--tls-client-ca".into(),
            self.pki.ca_path().display().to_string(),
            "--auth-roles-file".into(),
            self.roles.display().to_string(),
        ])
    }
}
