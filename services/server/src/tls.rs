//! TLS for every gRPC listener and every call a node makes to a peer: the
//! node's certificate and key, the CA client certificates must chain to
//! (mutual TLS), and the CA peers' server certificates must chain to.

use crate::startup::StartError;
use crate::startup::read_config_file;
use clap::Args;
use std::path::PathBuf;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

/// TLS settings of a node's gRPC listener and of its calls to peers.
#[derive(Args, Clone, Debug, Default)]
pub struct TlsArgs {
    /// The node's certificate chain (PEM). Turns TLS on for the gRPC
    /// listener; also presented as the client certificate on calls to peers.
    #[arg(long, env = "EKTP_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of `--tls-cert` (PEM).
    #[arg(long, env = "EKTP_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle (PEM) client certificates must chain to. When set, callers
    /// must present a certificate (mutual TLS).
    #[arg(long, env = "EKTP_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// Accept callers without a client certificate (they must then present a
    /// bearer token). For development only.
    #[arg(
        long,
        env = "EKTP_TLS_CLIENT_CERT_OPTIONAL",
        requires = "tls_client_ca"
    )]
    pub tls_client_cert_optional: bool,
    /// CA bundle (PEM) peers' server certificates must chain to, for calls
    /// to other nodes (defaults to `--tls-client-ca`).
    #[arg(long, env = "EKTP_TLS_PEER_CA", requires = "tls_cert")]
    pub tls_peer_ca: Option<PathBuf>,
    /// The name peers' server certificates are checked against, instead of
    /// the host of the address called — for peers reached by pod IP, whose
    /// certificates all carry one shared name (e.g. `ektp-peer`).
    #[arg(long, env = "EKTP_TLS_PEER_NAME", requires = "tls_cert")]
    pub tls_peer_name: Option<String>,
}

/// Loaded TLS material: the listener's config and the config of calls to peers.
#[derive(Clone, Debug, Default)]
pub struct Tls {
    /// For the gRPC listener; `None` serves plaintext.
    pub server: Option<ServerTlsConfig>,
    /// For calls to peers; `None` calls them in plaintext.
    pub client: Option<ClientTlsConfig>,
}

impl Tls {
    /// Reads the files `args` names; a missing or unreadable file is one clear error.
    pub fn load(args: &TlsArgs) -> Result<Self, StartError> {
        let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
            return Ok(Self::default());
        };
        let identity = Identity::from_pem(
            read_config_file(cert, "--tls-cert")?,
            read_config_file(key, "--tls-key")?,
        );
        let mut server = ServerTlsConfig::new().identity(identity.clone());
        if let Some(ca) = &args.tls_client_ca {
            server = server
                .client_ca_root(Certificate::from_pem(read_config_file(
                    ca,
                    "--tls-client-ca",
                )?))
                .client_auth_optional(args.tls_client_cert_optional);
        }
        let peer_ca = args.tls_peer_ca.as_ref().or(args.tls_client_ca.as_ref());
        let client = match peer_ca {
            Some(ca) => {
                let ca = Certificate::from_pem(read_config_file(ca, "--tls-peer-ca")?);
                let client = ClientTlsConfig::new().ca_certificate(ca).identity(identity);
                Some(match &args.tls_peer_name {
                    Some(name) => client.domain_name(name.clone()),
                    None => client,
                })
            }
            None => None,
        };
        Ok(Self {
            server: Some(server),
            client,
        })
    }
}
