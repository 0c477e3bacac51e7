//! A throwaway certificate authority for tests and the demo's `--tls`:
//! node and caller certificates (the subject's common name is the identity),
//! an expired one, and a roles file mapping identities to roles.

use crate::Result;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use std::path::{Path, PathBuf};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A certificate and its key, as PEM files.
#[derive(Clone, Debug)]
pub struct CertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// A CA whose certificate lives at [`Pki::ca_path`].
pub struct Pki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca_pem: String,
}

impl Pki {
    /// A new CA named `name`, its files under `dir`.
    pub fn create(dir: &Path, name: &str) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate()?;
        let ca_pem = params.self_signed(&key)?.pem();
        std::fs::write(dir.join(format!("{name}.crt")), &ca_pem)?;
        let pki = Self {
            dir: dir.to_path_buf(),
            issuer: Issuer::new(params, key),
            ca_pem,
        };
        std::fs::write(pki.ca_path(), &pki.ca_pem)?;
        Ok(pki)
    }

    /// The CA certificate (PEM).
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    /// A certificate for `identity`, valid for loopback (127.0.0.1,
    /// localhost) as server and client.
    pub fn issue(&self, identity: &str) -> Result<CertFiles> {
        self.issue_with(identity, |_| {})
    }

    /// A certificate for `identity` that expired in 2021.
    pub fn issue_expired(&self, identity: &str) -> Result<CertFiles> {
        self.issue_with(identity, |params| {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        })
    }

    fn issue_with(
        &self,
        identity: &str,
        adjust: impl FnOnce(&mut CertificateParams),
    ) -> Result<CertFiles> {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, identity);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        adjust(&mut params);
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let files = CertFiles {
            cert: self.dir.join(format!("{identity}.crt")),
            key: self.dir.join(format!("{identity}.key")),
        };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        Ok(files)
    }

    /// Client TLS trusting this CA and presenting `files`.
    pub fn client_tls(&self, files: &CertFiles) -> Result<ClientTlsConfig> {
        Ok(ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(&self.ca_pem))
            .identity(Identity::from_pem(
                std::fs::read(&files.cert)?,
                std::fs::read(&files.key)?,
            )))
    }

    /// Client TLS trusting this CA, presenting no certificate.
    pub fn anonymous_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem))
    }
}

/// Writes a roles file (`identity role[,role…]` per line) and returns its path.
pub fn write_roles(path: &Path, entries: &[(&str, &str)]) -> Result<PathBuf> {
    let text: String = entries
        .iter()
        .map(|(identity, roles)| format!("{identity} {roles}\n"))
        .collect();
    std::fs::write(path, text)?;
    Ok(path.to_path_buf())
}
