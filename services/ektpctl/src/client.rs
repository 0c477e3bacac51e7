//! Calling a service's replicas the way a well-behaved client does: the first
//! endpoint that answers wins; on UNAVAILABLE (or no answer in time) the same
//! request is retried — first at the leader a `NOT_LEADER` answer names, then
//! at the next endpoint — with backoff, until the command's deadline. Every
//! call states the operator's purpose (`x-ektp-purpose`) when one was given.

use crate::error::CliError;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Response, Status};
use tonic_types::StatusExt;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
const NOT_LEADER: &str = "NOT_LEADER";
const LEADER_METADATA_KEY: &str = "leader";
const PURPOSE_HEADER: &str = "x-ektp-purpose";

/// Puts the stated purpose (and a development bearer token, if any) on every call.
#[derive(Clone, Debug, Default)]
pub struct StatePurpose {
    purpose: Option<MetadataValue<Ascii>>,
    authorization: Option<MetadataValue<Ascii>>,
}

impl Interceptor for StatePurpose {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(purpose) = &self.purpose {
            request
                .metadata_mut()
                .insert(PURPOSE_HEADER, purpose.clone());
        }
        if let Some(authorization) = &self.authorization {
            request
                .metadata_mut()
                .insert("authorization", authorization.clone());
        }
        Ok(request)
    }
}

/// Client TLS from the command line's identity flags; `None` without a CA.
pub fn client_tls(args: &crate::cli::IdentityArgs) -> Result<Option<ClientTlsConfig>, CliError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))
    };
    let Some(ca) = &args.tls_ca else {
        return Ok(None);
    };
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(ca)?));
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(Some(tls))
}

/// The `authorization` value for a token file's token.
pub fn bearer(args: &crate::cli::IdentityArgs) -> Result<Option<String>, CliError> {
    let Some(file) = &args.token_file else {
        return Ok(None);
    };
    let token = std::fs::read_to_string(file)
        .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", file.display())))?;
    Ok(Some(format!("Bearer {}", token.trim())))
}

/// A channel to one replica whose calls state the purpose.
pub type PurposeChannel = InterceptedService<Channel, StatePurpose>;

/// The replicas of one service.
pub struct Replicas {
    service: &'static str,
    endpoints: Vec<String>,
    channels: HashMap<String, Channel>,
    /// Tried first: the last endpoint that answered, or a leader hint.
    preferred: Option<String>,
    timeout: Duration,
    purpose: StatePurpose,
    tls: Option<ClientTlsConfig>,
}

impl Replicas {
    /// Replicas at `endpoints` (URLs); a call with its retries ends after `timeout`.
    pub fn new(
        service: &'static str,
        endpoints: &[String],
        timeout: Duration,
    ) -> Result<Self, CliError> {
        let endpoints: Vec<String> = endpoints
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect();
        if endpoints.is_empty() {
            return Err(CliError::Usage(format!("no {service} endpoint given")));
        }
        for e in &endpoints {
            Endpoint::from_shared(e.clone())
                .map_err(|err| CliError::Usage(format!("bad {service} endpoint {e:?}: {err}")))?;
        }
        Ok(Self {
            service,
            endpoints,
            channels: HashMap::new(),
            preferred: None,
            timeout,
            purpose: StatePurpose::default(),
            tls: None,
        })
    }

    /// Calls `https://` endpoints over `tls`, presenting `authorization`
    /// (a bearer token) when given.
    pub fn with_identity(
        mut self,
        tls: Option<ClientTlsConfig>,
        authorization: Option<&str>,
    ) -> Result<Self, CliError> {
        self.tls = tls;
        self.purpose.authorization = authorization
            .map(|a| {
                MetadataValue::try_from(a)
                    .map_err(|_| CliError::Usage("the token must be printable ASCII".into()))
            })
            .transpose()?;
        Ok(self)
    }

    /// States `purpose` (why the operator needs people's data) on every call.
    pub fn with_purpose(mut self, purpose: Option<&str>) -> Result<Self, CliError> {
        let purpose = purpose.map(str::trim).filter(|p| !p.is_empty());
        let value = purpose
            .map(|p| {
                MetadataValue::try_from(p)
                    .map_err(|_| CliError::Usage("--purpose must be printable ASCII".into()))
            })
            .transpose()?;
        self.purpose.purpose = value;
        Ok(self)
    }

    /// A lazily connecting channel to `url` (cached), stating the purpose.
    fn channel(&mut self, url: &str) -> Option<PurposeChannel> {
        let purpose = self.purpose.clone();
        if let Some(channel) = self.channels.get(url) {
            return Some(InterceptedService::new(channel.clone(), purpose));
        }
        let mut endpoint = Endpoint::from_shared(url.to_owned()).ok()?;
        if url.starts_with("https://") {
            // Without --tls-ca the platform has no CA to check ektp's
            // certificates against: the call fails with a clear transport error.
            endpoint = endpoint
                .tls_config(self.tls.clone().unwrap_or_default())
                .ok()?;
        }
        let channel = endpoint.connect_timeout(CONNECT_TIMEOUT).connect_lazy();
        self.channels.insert(url.to_owned(), channel.clone());
        Some(InterceptedService::new(channel, purpose))
    }

    fn candidates(&self) -> Vec<String> {
        let mut list: Vec<String> = self.preferred.iter().cloned().collect();
        for e in &self.endpoints {
            if !list.contains(e) {
                list.push(e.clone());
            }
        }
        list
    }

    /// How long one attempt may take before the next endpoint is tried.
    fn attempt_timeout(&self) -> Duration {
        (self.timeout / 2).max(Duration::from_secs(1))
    }

    /// Calls `call` (which must send the same request every time) until an
    /// endpoint answers other than UNAVAILABLE, or the deadline passes.
    pub async fn call<R, F, Fut>(&mut self, call: F) -> Result<R, Status>
    where
        F: Fn(PurposeChannel) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        let mut backoff = FIRST_BACKOFF;
        let mut last: Option<(String, Status)> = None;
        loop {
            let mut queue: VecDeque<String> = self.candidates().into();
            let mut tried = HashSet::new();
            while let Some(endpoint) = queue.pop_front() {
                if !tried.insert(endpoint.clone()) {
                    continue;
                }
                let Some(channel) = self.channel(&endpoint) else {
                    continue;
                };
                let remaining = deadline.saturating_duration_since(Instant::now());
                if remaining.is_zero() {
                    return Err(self.exhausted(last));
                }
                let limit = remaining.min(self.attempt_timeout());
                match tokio::time::timeout(limit, call(channel)).await {
                    Ok(Ok(response)) => {
                        self.preferred = Some(endpoint);
                        return Ok(response.into_inner());
                    }
                    Ok(Err(status)) if status.code() == Code::Unavailable => {
                        if let Some(leader) = leader_hint(&status) {
                            if !tried.contains(&leader) {
                                queue.push_front(leader.clone());
                            }
                            self.preferred = Some(leader);
                        }
                        last = Some((endpoint, status));
                    }
                    Ok(Err(status)) => return Err(status),
                    Err(_) => {
                        let status = Status::deadline_exceeded(format!(
                            "no answer within {} ms",
                            limit.as_millis()
                        ));
                        last = Some((endpoint, status));
                    }
                }
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(self.exhausted(last));
            }
            tokio::time::sleep(backoff.min(remaining)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One attempt at every configured endpoint (not only the first that
    /// answers), in order: each endpoint with its answer.
    pub async fn call_each<R, F, Fut>(&mut self, call: F) -> Vec<(String, Result<R, Status>)>
    where
        F: Fn(PurposeChannel) -> Fut,
        Fut: Future<Output = Result<Response<R>, Status>>,
    {
        let mut answers = Vec::new();
        for endpoint in self.endpoints.clone() {
            let answer = match self.channel(&endpoint) {
                None => Err(Status::invalid_argument("bad endpoint")),
                Some(channel) => {
                    match tokio::time::timeout(self.attempt_timeout(), call(channel)).await {
                        Ok(result) => result.map(Response::into_inner),
                        Err(_) => Err(Status::deadline_exceeded("no answer in time")),
                    }
                }
            };
            answers.push((endpoint, answer));
        }
        answers
    }

    fn exhausted(&self, last: Option<(String, Status)>) -> Status {
        let secs = self.timeout.as_secs();
        match last {
            None => Status::unavailable(format!(
                "no {} endpoint could be tried within {secs} s",
                self.service
            )),
            Some((endpoint, status)) => Status::new(
                status.code(),
                format!(
                    "no {} replica answered within {secs} s; last, {endpoint}: {}",
                    self.service,
                    status.message()
                ),
            ),
        }
    }
}

/// The leader address a follower's `NOT_LEADER` answer names, if any.
pub fn leader_hint(status: &Status) -> Option<String> {
    let info = status.get_details_error_info()?;
    if info.reason != NOT_LEADER {
        return None;
    }
    info.metadata
        .get(LEADER_METADATA_KEY)
        .filter(|a| !a.is_empty())
        .cloned()
}

#[cfg(test)]
mod tests;
