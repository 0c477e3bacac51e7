//! VerifyResident and VerifyResidents: validate the claim, read the resident
//! (any replica: reads only, never forwarded), compare with
//! [`crate::verify::check`]. Every checked claim is audited before it is
//! answered (a malformed one identifies no one and is not). Nothing here
//! logs a NIK, a name or an address.

use super::audited::Auditor;
use crate::error::RegistryError;
use crate::store::Store;
use crate::verify;
use ektp_nik::{CivilDate, Nik};
use ektp_proto::v1::{VerifyResidentRequest, VerifyResidentResponse};
use ektp_server::{AuditContext, Violations};
use std::future::Future;
use std::pin::Pin;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::Status;
use tracing::{debug, error};

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Longest claimed text field, in characters.
const MAX_CLAIM_CHARS: usize = 200;
/// Most lookups one stream has under way at once.
const MAX_IN_FLIGHT: usize = 64;

/// Answers one claim: INVALID_ARGUMENT (with `BadRequest` field violations)
/// for a malformed request, else match / no match per claimed field.
pub async fn verify_one(
    store: &Store,
    audit: &Auditor,
    ctx: AuditContext,
    request: VerifyResidentRequest,
) -> Result<VerifyResidentResponse, Status> {
    let nik = check_claim(&request)?;
    let work = lookup(store, &nik, &request);
    audit.about(ctx, nik.as_str(), work).await
}

/// The NIK a claim asks about, or INVALID_ARGUMENT naming every problem.
pub(crate) fn check_claim(request: &VerifyResidentRequest) -> Result<Nik, Status> {
    validate(request).map_err(into_status)
}

/// Answers a stream of claims in order. A malformed claim is answered with
/// `error` set (and nothing checked) and the stream goes on; an error reading
/// the client's stream, or from storage, ends it with that status.
pub fn verify_stream(
    store: Store,
    audit: Auditor,
    ctx: AuditContext,
    requests: tonic::Streaming<VerifyResidentRequest>,
) -> ServerStream<VerifyResidentResponse> {
    answer_in_order(requests, move |nik, request| {
        let (store, audit, ctx) = (store.clone(), audit.clone(), ctx.clone());
        async move {
            let work = lookup(&store, &nik, &request);
            audit.about(ctx, nik.as_str(), work).await
        }
    })
}

/// Reads the resident for a valid claim and compares; an unknown NIK is an
/// answer (`found = false`), not an error.
async fn lookup(
    store: &Store,
    nik: &Nik,
    request: &VerifyResidentRequest,
) -> Result<VerifyResidentResponse, Status> {
    match store.resident(nik).await {
        Ok(resident) => Ok(verify::check(Some(&resident), request)),
        Err(RegistryError::NotFound(_)) => Ok(verify::check(None, request)),
        Err(e) => Err(Status::from(e)),
    }
}

/// One answer being prepared, in request order.
enum Pending {
    /// A lookup under way (aborted if the answer is no longer wanted).
    Lookup(AbortOnDrop),
    /// An answer needing no lookup (an invalid claim).
    Ready(VerifyResidentResponse),
    /// The client's stream failed: the last item.
    Failed(Status),
}

/// A spawned lookup that is aborted when dropped unawaited (the caller went away).
struct AbortOnDrop(JoinHandle<Result<VerifyResidentResponse, Status>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The stream's engine: one task reads claims and starts their lookups (at
/// most [`MAX_IN_FLIGHT`] at once, back-pressured by a bounded channel); the
/// answers are yielded in the order the claims came.
fn answer_in_order<S, L, F>(mut requests: S, lookup: L) -> ServerStream<VerifyResidentResponse>
where
    S: Stream<Item = Result<VerifyResidentRequest, Status>> + Unpin + Send + 'static,
    L: Fn(Nik, VerifyResidentRequest) -> F + Send + 'static,
    F: Future<Output = Result<VerifyResidentResponse, Status>> + Send + 'static,
{
    // One slot less than the limit: the answer being awaited is out of the channel.
    let (tx, rx) = mpsc::channel::<Pending>(MAX_IN_FLIGHT - 1);
    tokio::spawn(async move {
        let (mut claims, mut invalid) = (0_u64, 0_u64);
        loop {
            // Wait for room before reading on, so lookups stay bounded.
            let Ok(permit) = tx.reserve().await else {
                debug!(
                    claims,
                    invalid, "verification stream abandoned by the caller"
                );
                return;
            };
            let pending = match requests.next().await {
                None => break,
                Some(Err(status)) => {
                    permit.send(Pending::Failed(status));
                    debug!(claims, invalid, "verification stream failed");
                    return;
                }
                Some(Ok(request)) => match validate(&request) {
                    Ok(nik) => Pending::Lookup(AbortOnDrop(tokio::spawn(lookup(nik, request)))),
                    Err(problems) => {
                        invalid += 1;
                        Pending::Ready(rejected(&request.nik, &problems))
                    }
                },
            };
            claims += 1;
            permit.send(pending);
        }
        debug!(claims, invalid, "verification stream finished");
    });
    let mut ended = false;
    let answers = ReceiverStream::new(rx)
        .then(|pending| async move {
            match pending {
                Pending::Ready(response) => Ok(response),
                Pending::Failed(status) => Err(status),
                Pending::Lookup(mut task) => match (&mut task.0).await {
                    Ok(answer) => answer,
                    Err(e) => {
                        error!(error = %e, "verification lookup task failed");
                        Err(Status::internal("internal error"))
                    }
                },
            }
        })
        // An error is the last item.
        .map_while(move |answer| {
            if ended {
                return None;
            }
            ended = answer.is_err();
            Some(answer)
        });
    Box::pin(answers)
}

/// What is wrong with a claim, field by field.
type Problems = Vec<(&'static str, String)>;

/// The NIK to look up, or every problem with the claim.
fn validate(request: &VerifyResidentRequest) -> Result<Nik, Problems> {
    let mut problems = Problems::new();
    let nik = match Nik::parse(&request.nik) {
        Ok(nik) => Some(nik),
        Err(e) => {
            problems.push(("nik", e.to_string()));
            None
        }
    };
    let date = request.birth_date.trim();
    if !date.is_empty()
        && let Err(e) = CivilDate::parse(date)
    {
        problems.push(("birth_date", e.to_string()));
    }
    let address = request.address.clone().unwrap_or_default();
    let texts = [
        ("full_name", &request.full_name),
        ("birth_place", &request.birth_place),
        ("address.street", &address.street),
        ("address.rt", &address.rt),
        ("address.rw", &address.rw),
        ("address.village", &address.village),
        ("address.district", &address.district),
        ("address.regency", &address.regency),
        ("address.province", &address.province),
    ];
    for (field, value) in texts {
        if value.chars().count() > MAX_CLAIM_CHARS {
            problems.push((field, format!("at most {MAX_CLAIM_CHARS} characters")));
        }
    }
    match nik {
        Some(nik) if problems.is_empty() => Ok(nik),
        _ => Err(problems),
    }
}

/// INVALID_ARGUMENT with a `BadRequest` naming every problem.
fn into_status(problems: Problems) -> Status {
    let mut v = Violations::new();
    for (field, description) in problems {
        v.add(field, description);
    }
    v.into_result()
        .err()
        .unwrap_or_else(|| Status::invalid_argument("invalid request"))
}

/// The streaming answer to an invalid claim: nothing checked, `error` says why.
fn rejected(nik: &str, problems: &Problems) -> VerifyResidentResponse {
    let error = problems
        .iter()
        .map(|(field, description)| format!("invalid {field}: {description}"))
        .collect::<Vec<_>>()
        .join("; ");
    VerifyResidentResponse {
        error,
        ..verify::not_checked(nik)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ektp_proto::v1::{Address, FieldMatch};
    use std::time::Duration;
    use tonic::Code;
    use tonic_types::StatusExt;

    const KNOWN: &str = "3527014107900001";

    fn claim(nik: &str) -> VerifyResidentRequest {
        VerifyResidentRequest {
            nik: nik.into(),
            ..VerifyResidentRequest::default()
        }
    }

    /// A lookup that answers after a delay that shrinks with the request's
    /// position, so later lookups finish first.
    async fn slow_echo(
        nik: Nik,
        request: VerifyResidentRequest,
    ) -> Result<VerifyResidentResponse, Status> {
        let serial: u64 = nik.as_str()[12..].parse().unwrap_or(0);
        tokio::time::sleep(Duration::from_micros(2_000_u64.saturating_sub(serial * 10))).await;
        Ok(VerifyResidentResponse {
            found: true,
            ..verify::check(None, &request)
        })
    }

    fn nik_number(i: u32) -> String {
        format!("3527014107{:06}", 1 + i)
    }

    fn fields(status: &Status) -> Vec<String> {
        status
            .get_details_bad_request()
            .map(|b| b.field_violations.into_iter().map(|v| v.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn a_well_formed_claim_yields_its_nik() {
        let request = VerifyResidentRequest {
            birth_date: " 1990-07-01 ".into(),
            full_name: "Siti".into(),
            ..claim(KNOWN)
        };
        assert_eq!(
            validate(&request).map(|n| n.as_str().to_owned()),
            Ok(KNOWN.to_owned())
        );
    }

    #[test]
    fn a_malformed_nik_is_a_violation_on_nik() {
        let status = validate(&claim("35270141079"))
            .map_err(into_status)
            .err()
            .unwrap();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(fields(&status), ["nik"]);
    }

    #[test]
    fn a_claimed_birth_date_must_be_a_real_yyyy_mm_dd_date() {
        for bad in ["01-07-1990", "1990-02-30", "1990/07/01"] {
            let request = VerifyResidentRequest {
                birth_date: bad.into(),
                ..claim(KNOWN)
            };
            let status = validate(&request).map_err(into_status).err().unwrap();
            assert_eq!(fields(&status), ["birth_date"], "{bad}");
        }
    }

    #[test]
    fn over_long_claims_are_violations_and_all_are_reported() {
        let long = "a".repeat(201);
        let request = VerifyResidentRequest {
            nik: "x".into(),
            full_name: long.clone(),
            address: Some(Address {
                province: long.clone(),
                street: "a".repeat(200),
                ..Address::default()
            }),
            ..VerifyResidentRequest::default()
        };
        let status = validate(&request).map_err(into_status).err().unwrap();
        assert_eq!(fields(&status), ["nik", "full_name", "address.province"]);
    }

    #[test]
    fn a_rejected_claim_echoes_the_nik_and_says_why_without_checking() {
        let request = claim("12345");
        let response = rejected(&request.nik, &validate(&request).err().unwrap());
        assert_eq!(response.nik, "12345");
        assert!(!response.found);
        assert_eq!(response.full_name(), FieldMatch::NotClaimed);
        assert!(
            response.error.starts_with("invalid nik: "),
            "{}",
            response.error
        );
    }

    #[tokio::test]
    async fn streamed_answers_come_in_request_order_even_when_lookups_finish_out_of_order() {
        let mut requests: Vec<Result<VerifyResidentRequest, Status>> =
            (0..300).map(|i| Ok(claim(&nik_number(i)))).collect();
        requests[150] = Ok(claim("not a nik"));
        let answers: Vec<_> = answer_in_order(tokio_stream::iter(requests), slow_echo)
            .collect()
            .await;
        assert_eq!(answers.len(), 300);
        for (i, answer) in (0..300).zip(answers) {
            let answer = answer.unwrap();
            if i == 150 {
                assert_eq!(answer.nik, "not a nik");
                assert!(!answer.found);
                assert!(!answer.error.is_empty());
            } else {
                assert_eq!(answer.nik, nik_number(i));
                assert!(answer.found);
                assert!(answer.error.is_empty());
            }
        }
    }

    #[tokio::test]
    async fn a_failing_client_stream_ends_the_answers_with_its_status() {
        let requests = vec![
            Ok(claim(&nik_number(0))),
            Ok(claim(&nik_number(1))),
            Err(Status::data_loss("broken frame")),
            Ok(claim(&nik_number(2))),
        ];
        let answers: Vec<_> = answer_in_order(tokio_stream::iter(requests), slow_echo)
            .collect()
            .await;
        assert_eq!(answers.len(), 3);
        assert!(answers[0].is_ok() && answers[1].is_ok());
        assert_eq!(
            answers[2].as_ref().err().map(Status::code),
            Some(Code::DataLoss)
        );
    }

    #[tokio::test]
    async fn a_storage_error_ends_the_stream_with_that_status() {
        let requests = (0..5).map(|i| Ok(claim(&nik_number(i))));
        let answers: Vec<_> =
            answer_in_order(tokio_stream::iter(requests), |nik, request| async move {
                if nik.as_str().ends_with("03") {
                    Err(Status::unavailable("storage unavailable; retry"))
                } else {
                    slow_echo(nik, request).await
                }
            })
            .collect()
            .await;
        assert_eq!(answers.len(), 3);
        assert!(answers[0].is_ok() && answers[1].is_ok());
        assert_eq!(
            answers[2].as_ref().err().map(Status::code),
            Some(Code::Unavailable)
        );
    }

    #[tokio::test]
    async fn no_more_than_the_limit_of_lookups_run_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let requests = (0..500).map(|i| Ok(claim(&nik_number(i))));
        let (r, p) = (running.clone(), peak.clone());
        let answers = answer_in_order(tokio_stream::iter(requests), move |nik, request| {
            let (running, peak) = (r.clone(), p.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                let answer = slow_echo(nik, request).await;
                running.fetch_sub(1, Ordering::SeqCst);
                answer
            }
        })
        .collect::<Vec<_>>()
        .await;
        assert_eq!(answers.len(), 500);
        let peak = peak.load(Ordering::SeqCst);
        assert!(peak <= MAX_IN_FLIGHT, "peak {peak}");
        assert!(peak > 1, "lookups should overlap, peak {peak}");
    }
}
