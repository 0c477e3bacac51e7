//! The `ektp.v1` gRPC API: residents, print jobs, the print queue, print
//! control and the audit trail, generated from `proto/ektp/v1/*.proto`, plus the storage messages
//! the services keep in etcd (`ektp.storage.v1`). Generated modules stay
//! private; this crate re-exports what callers use. Every generated client
//! and server uses [`codec::ValidatingCodec`]: prost's wire format, with
//! undecodable bytes answered INVALID_ARGUMENT.

pub mod codec;

mod generated {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod ektp {
        pub mod v1 {
            tonic::include_proto!("ektp.v1");
        }
        pub mod storage {
            pub mod v1 {
                tonic::include_proto!("ektp.storage.v1");
            }
        }
    }
}

/// The public API, package `ektp.v1`.
pub mod v1 {
    pub use crate::generated::ektp::v1::*;
}

/// Values kept in etcd that are not part of the public API.
pub mod storage {
    pub use crate::generated::ektp::storage::v1::*;
}

/// Encoded `FileDescriptorSet` of every ektp proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("ektp_descriptor");

pub use prost::Message;

/// The canonical name of a gRPC status code (`OK`, `NOT_FOUND`, ...), as
/// audit entries record it and tools print it.
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}
pub use prost_types::Timestamp;
