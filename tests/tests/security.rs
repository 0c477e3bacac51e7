//! Security over real mutual TLS: each role reaches what the role table
//! allows and nothing else, callers without a valid certificate are refused,
//! nodes talk to each other (forwarding, print → registry) with their own
//! certificates, and the API ports refuse plaintext.

use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::registry_client::RegistryClient;
use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Node, Spec};
use ektp_tests::pki::Pki;
use ektp_tests::probe::wait_printed;
use ektp_tests::residents::{authorize_request, record_request, resident};
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Request};

type Result = ektp_tests::Result<()>;

/// A request stating why the caller reads or changes a person's data.
fn stated<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "x-ektp-purpose",
        tonic::metadata::MetadataValue::from_static("security test"),
    );
    request
}

/// A channel to `node` as `identity` (a certificate from the cluster's CA).
async fn as_identity(
    cluster: &Cluster,
    node: &Node,
    identity: &str,
) -> ektp_tests::Result<Channel> {
    let pki = cluster.pki.as_ref().ok_or("not a TLS cluster")?;
    let tls = pki.client_tls(&pki.issue(identity)?)?;
    node.channel_with(Some(tls)).await
}

fn code<T>(result: std::result::Result<T, tonic::Status>) -> Code {
    result.map_or_else(|s| s.code(), |_| Code::Ok)
}

/// What GetStats answers over a channel, if one could be made.
async fn stats_code(channel: ektp_tests::Result<Channel>) -> Code {
    match channel {
        Ok(channel) => code(
            RegistryClient::new(channel)
                .get_stats(GetStatsRequest {})
                .await,
        ),
        Err(_) => Code::Unavailable,
    }
}

fn denied<T>(result: std::result::Result<T, tonic::Status>) -> bool {
    code(result) == Code::PermissionDenied
}

#[tokio::test]
async fn each_role_reaches_only_what_the_role_table_allows_over_mutual_tls() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec {
        tls: true,
        ..Spec::test(dir.path())?
    })
    .await?;
    // Every API port refuses plaintext.
    for node in cluster.registry.iter().chain(&cluster.print) {
        let plain = node.address.replace("https://", "http://");
        let mut client = RegistryClient::connect(plain).await?;
        let answer = client.get_stats(GetStatsRequest {}).await;
        assert!(
            answer.is_err(),
            "{} answered a plaintext call",
            node.address
        );
    }
    // Writes sent to the follower are forwarded to the leader as the caller.
    let leader = cluster
        .wait_leader(
            ektp_tests::cluster::Service::Registry,
            Duration::from_secs(10),
        )
        .await?;
    let follower = &cluster.registry[1 - leader];
    let mut registrar = RegistryClient::new(as_identity(&cluster, follower, "registrar").await?);
    let mut central = RegistryClient::new(as_identity(&cluster, follower, "central").await?);
    let mut operator = RegistryClient::new(as_identity(&cluster, follower, "operator").await?);
    let mut verifier = RegistryClient::new(as_identity(&cluster, follower, "verifier").await?);
    let mut auditor = RegistryClient::new(as_identity(&cluster, follower, "auditor").await?);
    let mut printer = RegistryClient::new(as_identity(&cluster, follower, "print-node").await?);
    let mut stranger = RegistryClient::new(as_identity(&cluster, follower, "stranger").await?);

    // registrar: records, nothing else.
    registrar.record_resident(stated(record_request(0))).await?;
    let nik = resident(0).nik;
    let get = || GetResidentRequest { nik: nik.clone() };
    assert!(denied(registrar.get_resident(stated(get())).await));
    assert!(denied(
        registrar
            .authorize_print(stated(authorize_request(0)))
            .await
    ));
    // central: authorises printing and follows events; cannot record or read people.
    assert!(denied(
        central.record_resident(stated(record_request(1))).await
    ));
    assert!(denied(central.get_resident(stated(get())).await));
    central
        .authorize_print(stated(authorize_request(0)))
        .await?;
    // operator: reads and office actions, but neither records nor verifies.
    assert_eq!(
        operator.get_resident(stated(get())).await?.into_inner().nik,
        nik
    );
    assert!(denied(
        operator.record_resident(stated(record_request(2))).await
    ));
    let claim = || VerifyResidentRequest {
        nik: nik.clone(),
        full_name: resident(0).full_name,
        ..VerifyResidentRequest::default()
    };
    assert!(denied(operator.verify_resident(stated(claim())).await));
    // verifier: verification only — never the record itself.
    let verdict = verifier
        .verify_resident(stated(claim()))
        .await?
        .into_inner();
    assert_eq!(verdict.full_name(), FieldMatch::Match);
    assert!(denied(verifier.get_resident(stated(get())).await));
    assert!(denied(verifier.get_stats(GetStatsRequest {}).await));
    // auditor: the audit trail, not the registry.
    assert!(denied(auditor.get_resident(stated(get())).await));
    // print-node: the print queue, not recording.
    assert!(denied(
        printer.record_resident(stated(record_request(3))).await
    ));
    // A valid certificate whose identity holds no role reaches nothing.
    assert!(denied(stranger.get_stats(GetStatsRequest {}).await));
    assert!(denied(stranger.verify_resident(stated(claim())).await));
    // Print control is operator-only too.
    let print_node = &cluster.print[0];
    let mut ops_print =
        PrintControlClient::new(as_identity(&cluster, print_node, "operator").await?);
    let mut verifier_print =
        PrintControlClient::new(as_identity(&cluster, print_node, "verifier").await?);
    ops_print.get_status(GetStatusRequest {}).await?;
    assert!(denied(verifier_print.get_status(GetStatusRequest {}).await));

    // The print leader claims and settles over mTLS as print-node: the
    // authorised resident's card gets printed.
    let harness = vec![
        cluster.registry_client(0).await?,
        cluster.registry_client(1).await?,
    ];
    let stats = wait_printed(&harness, 1, Duration::from_secs(30)).await?;
    assert_eq!(stats.printed, 1);
    // Refused calls changed nothing: only resident 0 was recorded.
    assert_eq!(stats.recorded, 1);
    Ok(())
}

#[tokio::test]
async fn callers_without_a_valid_certificate_are_refused() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec {
        tls: true,
        ..Spec::registry_only(dir.path())?
    })
    .await?;
    let node = &cluster.registry[0];
    let pki = cluster.pki.as_ref().ok_or("not a TLS cluster")?;
    // No client certificate at all: the handshake is refused.
    let anonymous = node.channel_with(Some(pki.anonymous_tls())).await;
    let answer = stats_code(anonymous).await;
    assert_ne!(
        answer,
        Code::Ok,
        "a caller without a certificate was answered"
    );
    // An expired certificate from the right CA.
    let expired = pki.client_tls(&pki.issue_expired("operator")?)?;
    let answer = stats_code(node.channel_with(Some(expired)).await).await;
    assert_ne!(answer, Code::Ok, "an expired certificate was accepted");
    // A certificate for a known identity, signed by another CA.
    let other = Pki::create(&dir.path().join("other-ca"), "impostor-ca")?;
    let mut forged = other.client_tls(&other.issue("operator")?)?;
    forged = forged.ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(
        pki.ca_path(),
    )?));
    let answer = stats_code(node.channel_with(Some(forged)).await).await;
    assert_ne!(
        answer,
        Code::Ok,
        "a certificate from another CA was accepted"
    );
    // The real operator is answered, and nothing was changed by the refusals.
    let mut operator = RegistryClient::new(as_identity(&cluster, node, "operator").await?);
    let stats = operator.get_stats(GetStatsRequest {}).await?.into_inner();
    assert_eq!(stats.recorded, 0);
    Ok(())
}

#[tokio::test]
async fn a_call_without_any_identity_is_unauthenticated_and_tokens_identify_developers() -> Result {
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "operator dev-operator-token-0123456789\n")?;
    let cluster = Cluster::start(Spec {
        tls: true,
        registry_args: vec![
            "--tls-client-cert-optional".into(),
            "--auth-tokens-file".into(),
            tokens.display().to_string(),
        ],
        ..Spec::registry_only(dir.path())?
    })
    .await?;
    let node = &cluster.registry[0];
    let pki = cluster.pki.as_ref().ok_or("not a TLS cluster")?;
    let mut nobody = RegistryClient::new(node.channel_with(Some(pki.anonymous_tls())).await?);
    let refused = nobody.get_stats(GetStatsRequest {}).await;
    assert_eq!(code(refused), Code::Unauthenticated);
    let mut wrong = Request::new(GetStatsRequest {});
    wrong
        .metadata_mut()
        .insert("authorization", "Bearer not-the-token-0123456789".parse()?);
    assert_eq!(code(nobody.get_stats(wrong).await), Code::Unauthenticated);
    let mut right = Request::new(GetStatsRequest {});
    right.metadata_mut().insert(
        "authorization",
        "Bearer dev-operator-token-0123456789".parse()?,
    );
    nobody.get_stats(right).await?;
    Ok(())
}
