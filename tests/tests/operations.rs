//! What operators and their tools see on every node: gRPC health (ready on
//! leader and backup alike), server reflection v1 and v1alpha, Prometheus
//! metrics that move when cards print.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::residents::{authorize_request, record_request};
use ektp_tests::wait::until;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

type Result = ektp_tests::Result<()>;

async fn scrape(port: u16) -> ektp_tests::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await?;
    let mut body = String::new();
    stream.read_to_string(&mut body).await?;
    assert!(body.starts_with("HTTP/1.1 200 OK"), "{body}");
    Ok(body)
}

fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_serves_health_reflection_and_metrics() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let mut registry = cluster.registry_client(0).await?;
    for i in 0..5 {
        registry.record_resident(record_request(i)).await?;
        registry.authorize_print(authorize_request(i)).await?;
    }
    until("5 cards printed", Duration::from_secs(60), || {
        let mut c = registry.clone();
        async move {
            (c.get_stats(GetStatsRequest {})
                .await
                .ok()?
                .into_inner()
                .printed
                == 5)
                .then_some(())
        }
    })
    .await?;

    for node in cluster.registry.iter().chain(cluster.print.iter()) {
        let mut health = HealthClient::new(node.channel().await?);
        let overall = health
            .check(HealthCheckRequest {
                service: String::new(),
            })
            .await?
            .into_inner();
        assert_eq!(
            overall.status(),
            ServingStatus::Serving,
            "{} not ready",
            node.address
        );
        let named = match node.service {
            Service::Registry => "ektp.v1.Registry",
            Service::Print => "ektp.v1.PrintControl",
        };
        let status = health
            .check(HealthCheckRequest {
                service: named.into(),
            })
            .await?
            .into_inner();
        assert_eq!(status.status(), ServingStatus::Serving);
    }

    let services = reflected_services(&cluster).await?;
    for expected in [
        "ektp.v1.Registry",
        "ektp.v1.PrintQueue",
        "grpc.health.v1.Health",
    ] {
        assert!(
            services.iter().any(|s| s == expected),
            "{expected} not reflected: {services:?}"
        );
    }

    let mut leaders = 0;
    let mut printed = 0.0;
    for node in &cluster.print {
        let text = scrape(node.metrics_port).await?;
        let leading =
            sample(&text, "ektp_leader_is_leader{service=\"print\"}").ok_or("no leader gauge")?;
        leaders += leading as u32;
        printed += sample(
            &text,
            "ektp_print_cards_printed_total{printer=\"printer-1\"}",
        )
        .unwrap_or(0.0);
        assert!(text.contains("ektp_build_info{"), "build info missing");
    }
    assert_eq!(leaders, 1, "exactly one print leader");
    assert_eq!(printed, 5.0, "printed cards counted once, by the leader");
    let registry_leaders: f64 = {
        let mut sum = 0.0;
        for node in &cluster.registry {
            sum += sample(
                &scrape(node.metrics_port).await?,
                "ektp_leader_is_leader{service=\"registry\"}",
            )
            .unwrap_or(0.0);
        }
        sum
    };
    assert_eq!(registry_leaders, 1.0);

    let mut control = cluster.print_client(1).await?;
    let status = control.get_status(GetStatusRequest {}).await?.into_inner();
    assert!(status.blank_stock > 0);
    assert!(!status.leader_address.is_empty());
    Ok(())
}

async fn reflected_services(cluster: &Cluster) -> ektp_tests::Result<Vec<String>> {
    use tonic_reflection::pb::v1::ServerReflectionRequest;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let mut client = ServerReflectionClient::new(cluster.registry[1].channel().await?);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await?
        .into_inner();
    let response = responses.message().await?.ok_or("no reflection answer")?;
    match response.message_response {
        Some(MessageResponse::ListServicesResponse(list)) => {
            Ok(list.service.into_iter().map(|s| s.name).collect())
        }
        other => Err(format!("unexpected reflection answer {other:?}").into()),
    }
}
