//! VerifyResident and VerifyResidents: validate the claim, answer it from
//! the replica's in-memory index ([`crate::verify_index`]) or, while that
//! cannot answer or when the claim asks for `linearizable`, from etcd with
//! [`crate::verify::check`] (any replica: reads only, never forwarded).
//! Every checked claim is audited before it is answered (a malformed one
//! identifies no one and is not). Nothing here logs a NIK, a name or an
//! address.
//!
//! A stream is answered in chunks: the claims already received (up to
//! [`CHUNK`]) are answered together and their audit entries recorded in one
//! go, so a stream is not held to one audit commit per claim; up to
//! [`MAX_CHUNKS`] chunks are under way at once, and answers leave in order.

use super::audited::Auditor;
use crate::error::RegistryError;
use crate::store::Store;
use crate::verify;
use crate::verify_index::VerifyIndex;
use ektp_nik::{CivilDate, Nik};
use ektp_proto::v1::{VerifyResidentRequest, VerifyResidentResponse};
use ektp_server::{AuditContext, Violations};
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::{Code, Status};
use tracing::{debug, error};

type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// Longest claimed text field, in characters.
const MAX_CLAIM_CHARS: usize = 200;
/// Most claims answered (and audited) together in a stream.
const CHUNK: usize = 256;
/// Most chunks one stream has under way at once: with [`CHUNK`], the
/// stream's window of claims waiting for their audit commit.
const MAX_CHUNKS: usize = 16;

/// Answers one claim: INVALID_ARGUMENT (with `BadRequest` field violations)
/// for a malformed request, else match / no match per claimed field.
pub async fn verify_one(
    store: &Store,
    index: &VerifyIndex,
    audit: &Auditor,
    ctx: AuditContext,
    request: VerifyResidentRequest,
) -> Result<VerifyResidentResponse, Status> {
    let nik = check_claim(&request)?;
    let indexed = from_index(index, &request);
    let work = async {
        match indexed {
            Some(answer) => Ok(answer),
            None => lookup(store, &nik, &request).await,
        }
    };
    audit.about(ctx, nik.as_str(), work).await
}

/// The NIK a claim asks about, or INVALID_ARGUMENT naming every problem.
pub(crate) fn check_claim(request: &VerifyResidentRequest) -> Result<Nik, Status> {
    validate(request).map_err(into_status)
}

/// The index's answer, when it may give one for this claim now.
fn from_index(
    index: &VerifyIndex,
    request: &VerifyResidentRequest,
) -> Option<VerifyResidentResponse> {
    if request.linearizable {
        return None;
    }
    index.snapshot()?.check(request)
}

/// Answers a stream of claims in order. A malformed claim is answered with
/// `error` set (and nothing checked) and the stream goes on; an error reading
/// the client's stream, from storage or from the audit trail ends it with
/// that status.
pub fn verify_stream(
    store: Store,
    index: VerifyIndex,
    audit: Auditor,
    ctx: AuditContext,
    requests: tonic::Streaming<VerifyResidentRequest>,
) -> ServerStream<VerifyResidentResponse> {
    answer_in_order(requests, move |claims| {
        let (store, index, audit, ctx) = (store.clone(), index.clone(), audit.clone(), ctx.clone());
        async move {
            let answers = answer_claims(&index, claims, |nik, request| {
                let store = store.clone();
                async move { lookup(&store, &nik, &request).await }
            })
            .await;
            audited(&audit, &ctx, answers).await
        }
    })
}

/// One claim of a stream.
pub(crate) enum Claim {
    /// A valid claim about `Nik`.
    Checked(Nik, VerifyResidentRequest),
    /// An invalid claim and its answer.
    Rejected(VerifyResidentResponse),
}

/// A claim's answer, with the NIK it concerned when it was checked.
type Answer = (Option<Nik>, Result<VerifyResidentResponse, Status>);

/// Answers a chunk: from the index under one read lock where it can, the
/// rest through `ask` (etcd), concurrently.
async fn answer_claims<A, F>(index: &VerifyIndex, claims: Vec<Claim>, ask: A) -> Vec<Answer>
where
    A: Fn(Nik, VerifyResidentRequest) -> F,
    F: Future<Output = Result<VerifyResidentResponse, Status>> + Send + 'static,
{
    enum Slot {
        Done(Answer),
        Asked(Nik, AbortOnDrop),
    }
    let slots: Vec<Slot> = answer_from_index(index, claims)
        .into_iter()
        .map(|(claim, answer)| match (claim, answer) {
            (Claim::Rejected(response), _) => Slot::Done((None, Ok(response))),
            (Claim::Checked(nik, _), Some(answer)) => Slot::Done((Some(nik), Ok(answer))),
            (Claim::Checked(nik, request), None) => {
                let task = tokio::spawn(ask(nik.clone(), request));
                Slot::Asked(nik, AbortOnDrop(task))
            }
        })
        .collect();
    let mut answers = Vec::with_capacity(slots.len());
    for slot in slots {
        answers.push(match slot {
            Slot::Done(answer) => answer,
            Slot::Asked(nik, mut task) => (Some(nik), joined((&mut task.0).await)),
        });
    }
    answers
}

/// Pairs each claim with the index's answer, if it may give one (no await:
/// the read lock is held only here).
fn answer_from_index(
    index: &VerifyIndex,
    claims: Vec<Claim>,
) -> Vec<(Claim, Option<VerifyResidentResponse>)> {
    let snapshot = index.snapshot();
    claims
        .into_iter()
        .map(|claim| {
            let answer = match (&claim, &snapshot) {
                (Claim::Checked(_, request), Some(s)) if !request.linearizable => s.check(request),
                _ => None,
            };
            (claim, answer)
        })
        .collect()
}

fn joined(
    result: Result<Result<VerifyResidentResponse, Status>, tokio::task::JoinError>,
) -> Result<VerifyResidentResponse, Status> {
    result.unwrap_or_else(|e| {
        error!(error = %e, "verification lookup task failed");
        Err(Status::internal("internal error"))
    })
}

/// Records one audit entry per checked claim (with its outcome) and gives
/// the answers back once they are committed; if they are not, every checked
/// claim's answer becomes UNAVAILABLE.
async fn audited(
    audit: &Auditor,
    ctx: &AuditContext,
    answers: Vec<Answer>,
) -> Vec<Result<VerifyResidentResponse, Status>> {
    let entries = answers
        .iter()
        .filter_map(|(nik, result)| {
            let code = result.as_ref().map_or_else(Status::code, |_| Code::Ok);
            Some(ctx.entry(nik.as_ref()?.as_str(), code))
        })
        .collect();
    let committed = audit.log.record(entries).await;
    answers
        .into_iter()
        .map(|(nik, result)| match (&committed, nik) {
            (Err(status), Some(_)) => Err(status.clone()),
            _ => result,
        })
        .collect()
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

/// One chunk being answered, in request order.
enum Pending {
    /// Answers under way (aborted if no longer wanted).
    Chunk(AbortOnDrop<Vec<Result<VerifyResidentResponse, Status>>>),
    /// The client's stream failed: the last item.
    Failed(Status),
}

/// A spawned task that is aborted when dropped unawaited (the caller went away).
struct AbortOnDrop<T = Result<VerifyResidentResponse, Status>>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The claim a request makes: checked, or rejected with its answer.
fn claim_of(request: VerifyResidentRequest) -> Claim {
    match validate(&request) {
        Ok(nik) => Claim::Checked(nik, request),
        Err(problems) => Claim::Rejected(rejected(&request.nik, &problems)),
    }
}

/// The stream's engine: one task reads claims, takes those already arrived
/// (up to [`CHUNK`]) as a chunk and starts answering it (at most
/// [`MAX_CHUNKS`] at once, back-pressured by a bounded channel); the answers
/// are yielded in the order the claims came.
fn answer_in_order<S, L, F>(mut requests: S, answer: L) -> ServerStream<VerifyResidentResponse>
where
    S: Stream<Item = Result<VerifyResidentRequest, Status>> + Unpin + Send + 'static,
    L: Fn(Vec<Claim>) -> F + Send + 'static,
    F: Future<Output = Vec<Result<VerifyResidentResponse, Status>>> + Send + 'static,
{
    // One slot less than the limit: the chunk being awaited is out of the channel.
    let (tx, rx) = mpsc::channel::<Pending>(MAX_CHUNKS - 1);
    tokio::spawn(async move {
        let mut claims = 0_u64;
        loop {
            // Wait for room before reading on, so work under way stays bounded.
            let Ok(permit) = tx.reserve().await else {
                debug!(claims, "verification stream abandoned by the caller");
                return;
            };
            let mut chunk = Vec::new();
            let mut failed = None;
            let mut ended = false;
            match requests.next().await {
                None => ended = true,
                Some(Err(status)) => failed = Some(status),
                Some(Ok(request)) => chunk.push(claim_of(request)),
            }
            // Then whatever has already arrived, without waiting.
            while !ended && failed.is_none() && chunk.len() < CHUNK {
                let next =
                    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut requests).poll_next(cx)))
                        .await;
                match next {
                    Poll::Pending => break,
                    Poll::Ready(None) => ended = true,
                    Poll::Ready(Some(Err(status))) => failed = Some(status),
                    Poll::Ready(Some(Ok(request))) => chunk.push(claim_of(request)),
                }
            }
            claims += chunk.len() as u64;
            if !chunk.is_empty() {
                permit.send(Pending::Chunk(AbortOnDrop(tokio::spawn(answer(chunk)))));
            } else if let Some(status) = failed.take() {
                permit.send(Pending::Failed(status));
            }
            if let Some(status) = failed {
                // The chunk before it is answered first; the failure ends the stream.
                if let Ok(permit) = tx.reserve().await {
                    permit.send(Pending::Failed(status));
                }
                debug!(claims, "verification stream failed");
                return;
            }
            if ended {
                break;
            }
        }
        debug!(claims, "verification stream finished");
    });
    // A second task hands the chunks' answers out one by one, in order; an
    // error is the last item. Dropping the stream drops the chunks under way.
    let (out, answers) = mpsc::channel(CHUNK);
    tokio::spawn(async move {
        let mut chunks = ReceiverStream::new(rx);
        while let Some(pending) = chunks.next().await {
            let answers = match pending {
                Pending::Failed(status) => vec![Err(status)],
                Pending::Chunk(mut task) => (&mut task.0).await.unwrap_or_else(|e| {
                    error!(error = %e, "verification chunk task failed");
                    vec![Err(Status::internal("internal error"))]
                }),
            };
            for answer in answers {
                let last = answer.is_err();
                if out.send(answer).await.is_err() || last {
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(answers))
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
mod tests;
