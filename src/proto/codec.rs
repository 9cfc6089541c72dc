//! The gRPC codec of every generated service: prost's, with one change. Before encoding a
//! large message it reserves the message's whole length in tonic's buffer, which would
//! otherwise grow by doubling as the message is written: a 300 MB range response would be
//! copied several times and fault in several times its size of fresh pages.
#![warn(missing_docs, clippy::all)]

use prost::Message;
use tonic::codec::{Codec as TonicCodec, EncodeBuf, Encoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// Messages from this size on have their length reserved before they are encoded (smaller
/// ones fit tonic's buffer or grow it a few times at little cost).
const RESERVE_FROM: usize = 64 * 1024;

/// prost's codec, reserving room for large messages.
#[derive(Debug)]
pub struct Codec<T, U> {
    inner: ProstCodec<T, U>,
}

impl<T, U> Default for Codec<T, U> {
    fn default() -> Self {
        Self {
            inner: ProstCodec::default(),
        }
    }
}

impl<T, U> TonicCodec for Codec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ReservingEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ReservingEncoder {
            inner: self.inner.encoder(),
        }
    }

    fn decoder(&mut self) -> Self::Decoder {
        self.inner.decoder()
    }
}

/// prost's encoder, reserving a large message's length first.
#[derive(Debug)]
pub struct ReservingEncoder<T> {
    inner: ProstEncoder<T>,
}

impl<T: Message> Encoder for ReservingEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        let len = item.encoded_len();
        if len >= RESERVE_FROM {
            buf.reserve(len);
        }
        self.inner.encode(item, buf)
    }

    fn buffer_settings(&self) -> tonic::codec::BufferSettings {
        self.inner.buffer_settings()
    }
}
