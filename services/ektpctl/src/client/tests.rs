//! Tests of the retrying client, against in-process fake PrintControl servers.

use super::*;
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::print_control_server::{PrintControl, PrintControlServer};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tonic::Request;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_types::ErrorDetails;

fn not_leader(leader: &str) -> Status {
    let metadata = HashMap::from([(LEADER_METADATA_KEY.to_owned(), leader.to_owned())]);
    Status::with_error_details(
        Code::Unavailable,
        "not the leader",
        ErrorDetails::with_error_info(NOT_LEADER, "ektp", metadata),
    )
}

#[test]
fn a_not_leader_answer_names_the_leader() {
    let status = not_leader("http://127.0.0.1:50052");
    assert_eq!(
        leader_hint(&status).as_deref(),
        Some("http://127.0.0.1:50052")
    );
    assert_eq!(leader_hint(&Status::unavailable("down")), None);
}

#[test]
fn bad_endpoints_are_usage_errors() {
    let bad = Replicas::new("registry", &["not a url".into()], Duration::from_secs(1));
    assert!(matches!(bad, Err(CliError::Usage(_))));
    let none = Replicas::new("registry", &[" ".into()], Duration::from_secs(1));
    assert!(matches!(none, Err(CliError::Usage(_))));
}

#[tokio::test]
async fn an_unreachable_cluster_ends_unavailable_at_the_deadline() {
    let mut replicas = Replicas::new(
        "registry",
        &["http://127.0.0.1:9".into()],
        Duration::from_secs(1),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let result = replicas
        .call(|ch| async move {
            ektp_proto::v1::registry_client::RegistryClient::new(ch)
                .get_stats(ektp_proto::v1::GetStatsRequest {})
                .await
        })
        .await;
    let status = result.unwrap_err();
    assert!(
        matches!(status.code(), Code::Unavailable | Code::DeadlineExceeded),
        "{status:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// A fake print replica: answers GetStatus with `answer` and counts calls.
struct Fake {
    answer: fn() -> Result<pb::PrintStatus, Status>,
    calls: Arc<AtomicUsize>,
}

#[tonic::async_trait]
impl PrintControl for Fake {
    async fn get_status(
        &self,
        _: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::PrintStatus>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        (self.answer)().map(Response::new)
    }
    async fn add_blank_stock(
        &self,
        _: Request<pb::AddBlankStockRequest>,
    ) -> Result<Response<pb::BlankStock>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn pause_printer(
        &self,
        _: Request<pb::PausePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn resume_printer(
        &self,
        _: Request<pb::ResumePrinterRequest>,
    ) -> Result<Response<pb::PrinterStatus>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn get_card_preview(
        &self,
        _: Request<pb::GetCardPreviewRequest>,
    ) -> Result<Response<pb::GetCardPreviewResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

/// Starts a fake replica on a free port; returns its URL and call counter.
fn serve(answer: fn() -> Result<pb::PrintStatus, Status>) -> (String, Arc<AtomicUsize>) {
    let incoming = TcpIncoming::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let url = format!("http://{}", incoming.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let fake = Fake {
        answer,
        calls: calls.clone(),
    };
    tokio::spawn(
        Server::builder()
            .add_service(PrintControlServer::new(fake))
            .serve_with_incoming(incoming),
    );
    (url, calls)
}

fn leader_status() -> Result<pb::PrintStatus, Status> {
    Ok(pb::PrintStatus {
        epoch: 7,
        ..Default::default()
    })
}

async fn get_status(replicas: &mut Replicas) -> Result<pb::PrintStatus, Status> {
    replicas
        .call(|ch| async move {
            PrintControlClient::new(ch)
                .get_status(pb::GetStatusRequest {})
                .await
        })
        .await
}

#[tokio::test]
async fn a_follower_s_hint_is_followed_and_then_preferred() {
    let (leader, leader_calls) = serve(leader_status);
    // The follower names the leader, which is not among the endpoints given.
    static LEADER: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LEADER.set(leader.clone()).unwrap();
    let (follower, follower_calls) = serve(|| Err(not_leader(LEADER.get().unwrap())));
    let mut replicas = Replicas::new(
        "print",
        &[follower, "http://127.0.0.1:9".into()],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(get_status(&mut replicas).await.unwrap().epoch, 7);
    assert_eq!(follower_calls.load(Ordering::SeqCst), 1);
    assert_eq!(leader_calls.load(Ordering::SeqCst), 1);
    // The next call goes straight to the leader.
    get_status(&mut replicas).await.unwrap();
    assert_eq!(follower_calls.load(Ordering::SeqCst), 1);
    assert_eq!(leader_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_dead_endpoint_is_skipped_and_other_errors_are_final() {
    let (live, _) = serve(leader_status);
    let mut replicas = Replicas::new(
        "print",
        &["http://127.0.0.1:9".into(), live],
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(get_status(&mut replicas).await.unwrap().epoch, 7);

    let (refusing, calls) = serve(|| Err(Status::failed_precondition("no")));
    let (other, other_calls) = serve(leader_status);
    let mut replicas = Replicas::new("print", &[refusing, other], Duration::from_secs(5)).unwrap();
    let status = get_status(&mut replicas).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(other_calls.load(Ordering::SeqCst), 0);
}
