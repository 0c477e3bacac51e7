//! A registry reaching etcd over mutual TLS as an etcd user with rights on
//! its office's prefix only: it elects itself, records and answers.

use ektp_proto::v1::GetResidentRequest;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_tests::pki::Pki;
use ektp_tests::process::Proc;
use ektp_tests::residents::{record_request, resident};
use ektp_tests::wait::until;
use ektp_tests::{bin_dir, free_ports, material_keys};
use etcd_client::{Certificate, Client, ConnectOptions, Identity, Permission, TlsOptions};
use std::time::Duration;

type Result = ektp_tests::Result<()>;

#[tokio::test]
async fn a_registry_uses_etcd_over_mutual_tls_as_a_user_limited_to_its_office() -> Result {
    let dir = tempfile::tempdir()?;
    let pki = Pki::create(&dir.path().join("tls"), "etcd-test-ca")?;
    let server = pki.issue("etcd-server")?;
    let root = pki.issue("root")?;
    let node = pki.issue("registry-service")?;
    let ports = free_ports(2)?;
    let client_url = format!("https://127.0.0.1:{}", ports[0]);
    let peer_url = format!("http://127.0.0.1:{}", ports[1]);
    let path = |p: &std::path::Path| p.display().to_string();
    let etcd_args: Vec<String> = [
        "--name",
        "m0",
        "--data-dir",
        &path(&dir.path().join("etcd")),
        "--listen-client-urls",
        &client_url,
        "--advertise-client-urls",
        &client_url,
        "--listen-peer-urls",
        &peer_url,
        "--initial-advertise-peer-urls",
        &peer_url,
        "--initial-cluster",
        &format!("m0={peer_url}"),
        "--cert-file",
        &path(&server.cert),
        "--key-file",
        &path(&server.key),
        "--trusted-ca-file",
        &path(&pki.ca_path()),
        "--client-cert-auth",
        "--log-level",
        "warn",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let etcd_bin = std::env::var("EKTP_ETCD_BIN").unwrap_or_else(|_| "etcd".into());
    let _etcd = Proc::spawn(
        "etcd",
        std::path::Path::new(&etcd_bin),
        etcd_args,
        dir.path(),
    )?;

    // Set up etcd auth as its administrator would: root, and a user that may
    // only touch /ektp/secure/.
    let tls = |files: &ektp_tests::pki::CertFiles| -> ektp_tests::Result<TlsOptions> {
        Ok(TlsOptions::new()
            .ca_certificate(Certificate::from_pem(std::fs::read(pki.ca_path())?))
            .identity(Identity::from_pem(
                std::fs::read(&files.cert)?,
                std::fs::read(&files.key)?,
            )))
    };
    let admin_options = ConnectOptions::new()
        .with_tls(tls(&root)?)
        .with_timeout(Duration::from_secs(2));
    let mut admin = until("etcd over TLS", Duration::from_secs(30), || {
        let options = admin_options.clone();
        let url = client_url.clone();
        async move {
            let mut c = Client::connect([url], Some(options)).await.ok()?;
            c.status().await.ok()?;
            Some(c)
        }
    })
    .await?;
    admin.user_add("root", "root-password-0123", None).await?;
    admin.user_grant_role("root", "root").await?;
    admin.role_add("ektp-secure").await?;
    admin
        .role_grant_permission(
            "ektp-secure",
            Permission::read_write("/ektp/secure/").with_prefix(),
        )
        .await?;
    admin.user_add("ektp", "ektp-password-0123", None).await?;
    admin.user_grant_role("ektp", "ektp-secure").await?;
    admin.auth_enable().await?;
    let password_file = dir.path().join("etcd-password");
    std::fs::write(&password_file, "ektp-password-0123\n")?;

    let keys = material_keys::registry_flags(dir.path())?;
    let start = |name: &str, port: u16, metrics: u16| {
        let mut args: Vec<String> = vec![
            "--office".into(),
            "secure".into(),
            "--etcd-endpoints".into(),
            client_url.clone(),
            "--etcd-ca".into(),
            path(&pki.ca_path()),
            "--etcd-cert".into(),
            path(&node.cert),
            "--etcd-key".into(),
            path(&node.key),
            "--listen".into(),
            format!("127.0.0.1:{port}"),
            "--metrics-listen".into(),
            format!("127.0.0.1:{metrics}"),
            "--lease-ttl-secs".into(),
            "2".into(),
        ];
        args.extend([
            "--etcd-user".into(),
            "ektp".into(),
            "--etcd-password-file".into(),
            path(&password_file),
        ]);
        args.extend(keys.iter().cloned());
        Proc::spawn(name, &bin_dir()?.join("registry-service"), args, dir.path())
    };
    let api = free_ports(2)?;
    let _registry = start("registry-0", api[0], api[1])?;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://127.0.0.1:{}", api[0]))?
        .connect_timeout(Duration::from_secs(1));
    let mut client = until(
        "the registry to record over etcd TLS",
        Duration::from_secs(30),
        || {
            let channel = channel.clone();
            async move {
                let mut client = RegistryClient::new(channel.connect().await.ok()?);
                client.record_resident(record_request(0)).await.ok()?;
                Some(client)
            }
        },
    )
    .await?;
    let nik = resident(0).nik;
    let stored = client
        .get_resident(GetResidentRequest { nik: nik.clone() })
        .await?
        .into_inner();
    assert_eq!(stored.nik, nik);

    // The data is where the user may write, and etcd refused nothing else.
    let authed = ConnectOptions::new()
        .with_tls(tls(&root)?)
        .with_user("root", "root-password-0123");
    let mut root_client = Client::connect([client_url.clone()], Some(authed)).await?;
    let under_office = root_client
        .get(
            "/ektp/secure/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await?
        .count();
    assert!(under_office > 0, "nothing was written under /ektp/secure/");
    Ok(())
}
