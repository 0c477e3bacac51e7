//! The etcd connection each node makes, with optional TLS (server
//! verification and a client certificate) and etcd user authentication.

use crate::startup::StartError;
use crate::startup::read_config_file;
use clap::Args;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};
use std::path::PathBuf;
use std::time::Duration;

/// How a node reaches etcd, besides its endpoints.
#[derive(Args, Clone, Debug, Default)]
pub struct EtcdArgs {
    /// etcd client endpoints, comma-separated (`https://` when etcd serves TLS).
    #[arg(
        long,
        env = "EKTP_ETCD_ENDPOINTS",
        value_delimiter = ',',
        default_value = "http://127.0.0.1:2379"
    )]
    pub etcd_endpoints: Vec<String>,
    /// CA bundle (PEM) etcd's server certificate must chain to; turns TLS on.
    #[arg(long, env = "EKTP_ETCD_CA")]
    pub etcd_ca: Option<PathBuf>,
    /// Client certificate (PEM) presented to etcd (with `--etcd-key`).
    #[arg(long, env = "EKTP_ETCD_CERT", requires_all = ["etcd_key", "etcd_ca"])]
    pub etcd_cert: Option<PathBuf>,
    /// Private key (PEM) of `--etcd-cert`.
    #[arg(long, env = "EKTP_ETCD_KEY", requires = "etcd_cert")]
    pub etcd_key: Option<PathBuf>,
    /// etcd user name, when etcd authentication is enabled.
    #[arg(long, env = "EKTP_ETCD_USER", requires = "etcd_password_file")]
    pub etcd_user: Option<String>,
    /// File holding the etcd user's password (a mounted Secret).
    #[arg(long, env = "EKTP_ETCD_PASSWORD_FILE", requires = "etcd_user")]
    pub etcd_password_file: Option<PathBuf>,
}

/// Connects to etcd. No request timeout is set on purpose: it would also cut
/// the campaign call, which blocks until the node wins. Callers bound their
/// own requests instead. `require_leader` makes a member cut off from its
/// quorum refuse requests rather than serve stale reads.
pub async fn connect(args: &EtcdArgs) -> Result<Client, StartError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(3))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        .with_require_leader(true);
    if let Some(ca) = &args.etcd_ca {
        let mut tls = TlsOptions::new()
            .ca_certificate(Certificate::from_pem(read_config_file(ca, "--etcd-ca")?));
        if let (Some(cert), Some(key)) = (&args.etcd_cert, &args.etcd_key) {
            tls = tls.identity(Identity::from_pem(
                read_config_file(cert, "--etcd-cert")?,
                read_config_file(key, "--etcd-key")?,
            ));
        }
        options = options.with_tls(tls);
    }
    if let (Some(user), Some(file)) = (&args.etcd_user, &args.etcd_password_file) {
        let password = String::from_utf8(read_config_file(file, "--etcd-password-file")?)
            .map_err(|_| StartError::Setup("--etcd-password-file is not valid UTF-8".into()))?;
        options = options
            .with_user(user.clone(), password.trim_end_matches(['\r', '\n']))
            .with_auto_token_refresh(true);
    }
    Ok(Client::connect(&args.etcd_endpoints, Some(options)).await?)
}
