//! The codec every generated client and server uses: prost's wire format
//! unchanged, except that bytes that do not decode as the expected message
//! answer INVALID_ARGUMENT instead of tonic-prost's INTERNAL. Undecodable
//! input is the caller's fault, and the service must say so, like any other
//! rejected request (it also keeps INTERNAL meaning "a bug of ours" on the
//! dashboards). The message names the expected message type, never the bytes.
//!
//! Clients use the same codec, so a response that does not decode is
//! INVALID_ARGUMENT on the client side too; our servers only send what they
//! encoded with prost, so in practice that means a foreign server.

use std::marker::PhantomData;
use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// prost encoding and decoding; a decode failure is INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ValidatingCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for ValidatingCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for ValidatingCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ValidatingDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ValidatingDecoder {
            inner: ProstCodec::<T, U>::default().decoder(),
        }
    }
}

/// prost's decoder with its error mapped to INVALID_ARGUMENT.
#[derive(Debug, Clone)]
pub struct ValidatingDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: prost::Message + Default> Decoder for ValidatingDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        // prost's decoder fails only when the bytes are not a `U`.
        self.inner
            .decode(buf)
            .map_err(|_| Status::invalid_argument(not_valid::<U>()))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// `request is not a valid RecordResidentRequest`: the short type name only.
fn not_valid<U>() -> String {
    let full = std::any::type_name::<U>();
    let name = full.rsplit("::").next().unwrap_or(full);
    let what = if name.ends_with("Request") {
        "request"
    } else {
        "message"
    };
    format!("{what} is not a valid {name}")
}

#[cfg(test)]
mod tests {
    use super::not_valid;

    #[test]
    fn the_error_names_the_expected_message_by_its_short_name() {
        assert_eq!(
            not_valid::<crate::v1::RecordResidentRequest>(),
            "request is not a valid RecordResidentRequest"
        );
        assert_eq!(
            not_valid::<crate::v1::Resident>(),
            "message is not a valid Resident"
        );
    }
}
