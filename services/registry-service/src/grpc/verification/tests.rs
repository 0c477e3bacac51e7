//! The stream engine and claim validation, without a server.

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

type Answers = Pin<Box<dyn Future<Output = Vec<Result<VerifyResidentResponse, Status>>> + Send>>;

/// A chunk answerer running `lookup` for each checked claim, concurrently.
fn per_claim<L, F>(lookup: L) -> impl Fn(Vec<Claim>) -> Answers + Send + 'static
where
    L: Fn(Nik, VerifyResidentRequest) -> F + Send + 'static,
    F: Future<Output = Result<VerifyResidentResponse, Status>> + Send + 'static,
{
    move |claims| {
        let tasks: Vec<_> = claims
            .into_iter()
            .map(|claim| match claim {
                Claim::Checked(nik, request) => Err(tokio::spawn(lookup(nik, request))),
                Claim::Rejected(response) => Ok(response),
            })
            .collect();
        Box::pin(async move {
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(match task {
                    Ok(response) => Ok(response),
                    Err(handle) => joined(handle.await),
                });
            }
            answers
        })
    }
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
    let answers: Vec<_> = answer_in_order(tokio_stream::iter(requests), per_claim(slow_echo))
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
    let answers: Vec<_> = answer_in_order(tokio_stream::iter(requests), per_claim(slow_echo))
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
    let answers: Vec<_> = answer_in_order(
        tokio_stream::iter(requests),
        per_claim(|nik: Nik, request| async move {
            if nik.as_str().ends_with("03") {
                Err(Status::unavailable("storage unavailable; retry"))
            } else {
                slow_echo(nik, request).await
            }
        }),
    )
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
    const CLAIMS: u32 = 12_000;
    let requests = (0..CLAIMS).map(|i| Ok(claim(&nik_number(i % 9_000))));
    let (r, p) = (running.clone(), peak.clone());
    let lookup = move |nik, request| {
        let (running, peak) = (r.clone(), p.clone());
        async move {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            peak.fetch_max(now, Ordering::SeqCst);
            let answer = slow_echo(nik, request).await;
            running.fetch_sub(1, Ordering::SeqCst);
            answer
        }
    };
    let answers = answer_in_order(tokio_stream::iter(requests), per_claim(lookup))
        .collect::<Vec<_>>()
        .await;
    assert_eq!(answers.len(), CLAIMS as usize);
    let peak = peak.load(Ordering::SeqCst);
    assert!(peak <= CHUNK * MAX_CHUNKS, "peak {peak}");
    assert!(peak > 1, "lookups should overlap, peak {peak}");
}
