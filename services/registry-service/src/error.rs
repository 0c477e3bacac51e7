//! The registry's errors, mapped to gRPC statuses in exactly one place.

use ektp_election::TxnError;
use tonic::Status;
use tracing::error;

/// Everything the registry's domain code can fail with. `Clone`, so a batch's
/// failure can answer every caller of the batch.
#[derive(Clone, Debug, thiserror::Error)]
pub enum RegistryError {
    /// Bad input found by the domain (validation proper happens in handlers).
    #[error("invalid {field}: {description}")]
    Invalid {
        field: &'static str,
        description: String,
    },
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    /// The resource is in the wrong state for the request.
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller's fence (print leader epoch) is stale.
    #[error("stale epoch: {0}")]
    StaleEpoch(String),
    /// This node does not lead (or just lost leadership).
    #[error("not the leader")]
    NotLeader,
    /// etcd is unreachable or refused.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A bug or corrupt data; logged, not sent to callers.
    #[error("internal: {0}")]
    Internal(String),
}

impl From<etcd_client::Error> for RegistryError {
    fn from(e: etcd_client::Error) -> Self {
        RegistryError::Unavailable(e.to_string())
    }
}

impl From<prost::DecodeError> for RegistryError {
    fn from(e: prost::DecodeError) -> Self {
        RegistryError::Internal(format!("undecodable value in etcd: {e}"))
    }
}

impl From<TxnError> for RegistryError {
    fn from(e: TxnError) -> Self {
        match e {
            TxnError::FenceLost(_) => RegistryError::NotLeader,
            TxnError::Etcd(e) => e.into(),
        }
    }
}

impl RegistryError {
    /// The code this error answers with (as mapped below), for the outcome
    /// of an audit entry written before the answer is built.
    pub fn code(&self) -> tonic::Code {
        use tonic::Code;
        match self {
            RegistryError::Invalid { .. } => Code::InvalidArgument,
            RegistryError::NotFound(_) => Code::NotFound,
            RegistryError::AlreadyExists(_) => Code::AlreadyExists,
            RegistryError::FailedPrecondition(_) | RegistryError::StaleEpoch(_) => {
                Code::FailedPrecondition
            }
            RegistryError::NotLeader | RegistryError::Unavailable(_) => Code::Unavailable,
            RegistryError::Internal(_) => Code::Internal,
        }
    }
}

impl From<RegistryError> for Status {
    fn from(e: RegistryError) -> Self {
        match e {
            RegistryError::Invalid { field, description } => {
                let mut v = ektp_server::Violations::new();
                v.add(field, description);
                v.into_result()
                    .err()
                    .unwrap_or_else(|| Status::invalid_argument("invalid"))
            }
            RegistryError::NotFound(what) => Status::not_found(format!("{what} not found")),
            RegistryError::AlreadyExists(m) => Status::already_exists(m),
            RegistryError::FailedPrecondition(m) => Status::failed_precondition(m),
            RegistryError::StaleEpoch(m) => ektp_server::stale_epoch(format!("stale epoch: {m}")),
            RegistryError::NotLeader => ektp_server::not_leader(None),
            RegistryError::Unavailable(m) => {
                error!(error = %m, "etcd unavailable");
                Status::unavailable("storage unavailable; retry")
            }
            RegistryError::Internal(m) => {
                error!(error = %m, "internal error");
                Status::internal("internal error")
            }
        }
    }
}

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;
