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
pub use prost_types::Timestamp;
