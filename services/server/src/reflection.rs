//! gRPC server reflection, v1 and v1alpha, over every ektp proto.

use tonic_reflection::server::v1::{ServerReflection as V1, ServerReflectionServer as V1Server};
use tonic_reflection::server::v1alpha::{
    ServerReflection as V1Alpha, ServerReflectionServer as V1AlphaServer,
};
use tonic_reflection::server::{Builder, Error};

/// Both reflection services, serving the ektp descriptors and health's.
pub fn reflection_services() -> Result<(V1Server<impl V1>, V1AlphaServer<impl V1Alpha>), Error> {
    let builder = || {
        Builder::configure()
            .register_encoded_file_descriptor_set(ektp_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    Ok((builder().build_v1()?, builder().build_v1alpha()?))
}
