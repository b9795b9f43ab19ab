//! Frames on the engine's side of a plugin's pipes.
//!
//! [`FrameSource`] reads a plugin's stdout and yields whole frames as they arrived
//! (header, body, CRC), so a batch is forwarded to the writer byte for byte, never
//! re-encoded. [`peek`] reads just the message type and a batch's `count` and `bytes`
//! from a body without decoding the records.
//!
//! A large frame (a batch, typically) is read straight into an allocation of its own,
//! sized to the frame: it can wait in the task's queue without being copied and
//! without keeping a shared read buffer alive. Small frames are read in chunks and
//! copied out ([`RawFrame::detach`]), which costs little.

use bytes::{Buf, BytesMut};
use protocol::frame::{check_hello, decode_message, StreamPart, DEFAULT_MAX_FRAME_BYTES, PREAMBLE};
use protocol::message::{Hello, Message};
use protocol::FrameError;
use tokio::io::{AsyncRead, AsyncReadExt};

const HEADER: usize = 4;
const TRAILER: usize = 4;
const READ_CHUNK: usize = 256 * 1024;
/// Frames of at least this many bytes are read into an allocation of their own.
pub const OWN_ALLOCATION_BYTES: usize = 32 * 1024;

/// One frame as it arrived.
#[derive(Debug)]
pub struct RawFrame {
    pub bytes: BytesMut,
    /// The frame fills an allocation of its own (nothing else shares it).
    own: bool,
}

impl RawFrame {
    pub fn body(&self) -> &[u8] {
        &self.bytes[HEADER..self.bytes.len() - TRAILER]
    }

    pub fn decode(&self) -> Result<Message, FrameError> {
        decode_message(self.body())
    }

    /// The frame in an allocation of its own. A small frame fresh from [`FrameSource`]
    /// shares the read buffer's allocation, which it would keep alive (and keep the
    /// source from reusing) for as long as it waits in a queue: it is copied. A large
    /// frame was read into its own allocation and is returned as it is.
    pub fn detach(self) -> RawFrame {
        if self.own {
            return self;
        }
        RawFrame {
            bytes: BytesMut::from(&self.bytes[..]),
            own: true,
        }
    }

    /// Whether the frame fills an allocation of its own (nothing to copy on detach).
    pub fn is_own(&self) -> bool {
        self.own
    }
}

/// Allocations of large frames that were written on, for the next large frames: a
/// frame read into a fresh allocation costs a page fault per 4 KiB of it, which is
/// more than copying the frame. Cheap to clone; clones share the buffers.
#[derive(Clone, Debug, Default)]
pub struct FrameBuffers(std::sync::Arc<std::sync::Mutex<Vec<BytesMut>>>);

/// Buffers kept at most (each is a frame of at least [`OWN_ALLOCATION_BYTES`]).
const KEPT_BUFFERS: usize = 16;

impl FrameBuffers {
    /// Gives back the allocation of a frame that is no longer needed.
    pub fn give(&self, frame: RawFrame) {
        if !frame.own {
            return;
        }
        let mut bytes = frame.bytes;
        bytes.clear();
        if let Ok(mut kept) = self.0.lock() {
            if kept.len() < KEPT_BUFFERS {
                kept.push(bytes);
            }
        }
    }

    /// An empty buffer with room for `total` bytes: a kept one when one is large
    /// enough, else a new one.
    fn take(&self, total: usize) -> BytesMut {
        let reused = self.0.lock().ok().and_then(|mut kept| {
            let i = kept.iter().position(|b| b.capacity() >= total)?;
            Some(kept.swap_remove(i))
        });
        reused.unwrap_or_else(|| BytesMut::with_capacity(total))
    }
}

/// Frames from an async byte stream.
#[derive(Debug)]
pub struct FrameSource<R> {
    inner: R,
    buf: BytesMut,
    /// Where large frames are read into ([`FrameBuffers::take`]).
    buffers: FrameBuffers,
    max_frame_bytes: usize,
    eof: bool,
    /// The last frame was large: the next header is read on its own (4 bytes), so that
    /// a large frame after it can be read into its own allocation whole.
    after_large: bool,
}

impl<R: AsyncRead + Unpin> FrameSource<R> {
    pub fn new(inner: R) -> Self {
        Self::with_buffers(inner, FrameBuffers::default())
    }

    /// A source that reads large frames into `buffers` (given back by whoever consumes
    /// the frames).
    pub fn with_buffers(inner: R, buffers: FrameBuffers) -> Self {
        Self {
            inner,
            buffers,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            eof: false,
            after_large: false,
        }
    }

    /// Reads at most what is missing of the next header (after a large frame).
    async fn fill_header(&mut self) -> Result<(), FrameError> {
        let mut header = [0u8; HEADER];
        let want = HEADER - self.buf.len();
        let n = self.inner.read(&mut header[..want]).await?;
        if n == 0 {
            self.eof = true;
        }
        self.buf.extend_from_slice(&header[..n]);
        Ok(())
    }

    /// Reads the rest of a large frame (whose first bytes are in `buf`) into an
    /// allocation of exactly its size; `Ok(None)` when the stream ended first (`buf`
    /// then holds what arrived, for the error).
    async fn read_own(&mut self, total: usize) -> Result<Option<BytesMut>, FrameError> {
        let mut own = self.buffers.take(total);
        own.extend_from_slice(&self.buf);
        self.buf.clear();
        while own.len() < total {
            // Reads are limited to the missing bytes: a read never takes bytes of the
            // next frame (a reused buffer may have more room than this frame).
            let missing = total - own.len();
            let n = (&mut self.inner)
                .take(missing as u64)
                .read_buf(&mut own)
                .await?;
            if n == 0 {
                self.eof = true;
                self.buf = own;
                return Ok(None);
            }
        }
        Ok(Some(own))
    }

    async fn fill(&mut self, want: usize) -> Result<(), FrameError> {
        self.buf.reserve(want.max(READ_CHUNK));
        let n = self.inner.read_buf(&mut self.buf).await?;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Reads the preamble and the peer's `hello`, and checks its version.
    pub async fn hello(&mut self) -> Result<Hello, FrameError> {
        while self.buf.len() < PREAMBLE.len() {
            let n = self.buf.len();
            if self.buf[..] != PREAMBLE[..n] {
                break;
            }
            if self.eof {
                return Err(if n == 0 {
                    FrameError::Closed
                } else {
                    FrameError::UnexpectedEof {
                        part: StreamPart::Preamble,
                        have: n,
                        need: PREAMBLE.len(),
                    }
                });
            }
            self.fill(PREAMBLE.len()).await?;
        }
        if self.buf[..PREAMBLE.len()] != PREAMBLE[..] {
            // Gather a little more of what the plugin printed, for the message.
            while self.buf.len() < 64 && !self.eof {
                self.fill(64).await?;
            }
            return Err(FrameError::NotOurProtocol {
                first_bytes: self.buf[..self.buf.len().min(64)].to_vec(),
            });
        }
        self.buf.advance(PREAMBLE.len());
        let frame = self.next_raw().await?.ok_or(FrameError::Closed)?;
        match frame.decode()? {
            Message::Hello(hello) => {
                check_hello(&hello)?;
                Ok(hello)
            }
            other => Err(FrameError::Unexpected {
                got: other.type_name(),
                expected: "hello",
            }),
        }
    }

    /// The next whole frame (CRC checked); `Ok(None)` at a clean end of stream.
    pub async fn next_raw(&mut self) -> Result<Option<RawFrame>, FrameError> {
        loop {
            if self.buf.len() >= HEADER {
                let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]])
                    as usize;
                if len > self.max_frame_bytes {
                    return Err(FrameError::TooLarge {
                        len,
                        max: self.max_frame_bytes,
                    });
                }
                let total = HEADER + len + TRAILER;
                let (bytes, own) = if self.buf.len() >= total {
                    (self.buf.split_to(total), false)
                } else if self.eof {
                    return Err(self.cut_frame(len));
                } else if total >= OWN_ALLOCATION_BYTES {
                    match self.read_own(total).await? {
                        Some(bytes) => (bytes, true),
                        None => return Err(self.cut_frame(len)),
                    }
                } else {
                    self.fill(total - self.buf.len()).await?;
                    continue;
                };
                self.after_large = own;
                let body = &bytes[HEADER..HEADER + len];
                let expected = u32::from_be_bytes([
                    bytes[total - 4],
                    bytes[total - 3],
                    bytes[total - 2],
                    bytes[total - 1],
                ]);
                let actual = crc32fast::hash(body);
                if expected != actual {
                    return Err(FrameError::Checksum {
                        expected,
                        actual,
                        len,
                    });
                }
                return Ok(Some(RawFrame { bytes, own }));
            }
            if self.eof {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(FrameError::UnexpectedEof {
                        part: StreamPart::Header,
                        have: self.buf.len(),
                        need: HEADER,
                    })
                };
            }
            if self.after_large {
                self.fill_header().await?;
            } else {
                self.fill(HEADER).await?;
            }
        }
    }

    /// The error for a stream that ended inside a frame of `len` body bytes.
    fn cut_frame(&self, len: usize) -> FrameError {
        let have = self.buf.len() - HEADER;
        if have < len {
            FrameError::UnexpectedEof {
                part: StreamPart::Body,
                have,
                need: len,
            }
        } else {
            FrameError::UnexpectedEof {
                part: StreamPart::Checksum,
                have: have - len,
                need: TRAILER,
            }
        }
    }
}

/// What [`peek`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Peek {
    Batch {
        count: u64,
        bytes: u64,
    },
    /// Any other message (decode it fully).
    Other,
}

/// Reads the `type` of a frame body and, for a batch, its `count` and `bytes`, without
/// touching the records. Anything unusual answers [`Peek::Other`].
pub fn peek(body: &[u8]) -> Peek {
    peek_batch(body).unwrap_or(Peek::Other)
}

fn peek_batch(mut rd: &[u8]) -> Option<Peek> {
    let entries = rmp::decode::read_map_len(&mut rd).ok()?;
    let (mut count, mut bytes, mut is_batch) = (None, None, false);
    for _ in 0..entries {
        let key_len = rmp::decode::read_str_len(&mut rd).ok()? as usize;
        if rd.len() < key_len {
            return None;
        }
        let (key, rest) = rd.split_at(key_len);
        rd = rest;
        match key {
            b"type" => {
                let len = rmp::decode::read_str_len(&mut rd).ok()? as usize;
                if rd.len() < len || &rd[..len] != b"batch" {
                    return None;
                }
                rd = &rd[len..];
                is_batch = true;
            }
            b"count" => count = Some(rmp::decode::read_int::<u64, _>(&mut rd).ok()?),
            b"bytes" => bytes = Some(rmp::decode::read_int::<u64, _>(&mut rd).ok()?),
            _ => {
                // Only the records blob is skipped; anything else: decode fully.
                let len = rmp::decode::read_bin_len(&mut rd).ok()? as usize;
                if rd.len() < len {
                    return None;
                }
                rd = &rd[len..];
            }
        }
        if let (true, Some(count), Some(bytes)) = (is_batch, count, bytes) {
            return Some(Peek::Batch { count, bytes });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::{encode_frame, encode_message};
    use protocol::message::{Batch, Eos, Role};
    use protocol::Value;

    fn stream(messages: &[Message]) -> Vec<u8> {
        let mut out = PREAMBLE.to_vec();
        for m in messages {
            encode_frame(&encode_message(m).unwrap(), &mut out);
        }
        out
    }

    fn hello() -> Message {
        Message::Hello(Hello::new(Role::Reader, "reader-test", "0.1.0"))
    }

    #[tokio::test]
    async fn frames_come_out_as_they_went_in() {
        let batch = Message::Batch(Batch::from_records(&[vec![
            Value::Long(7),
            Value::String("ab".into()),
        ]]));
        let bytes = stream(&[
            hello(),
            batch.clone(),
            Message::Eos(Eos {
                records: 1,
                bytes: 10,
            }),
        ]);
        let mut src = FrameSource::new(bytes.as_slice());
        assert_eq!(src.hello().await.unwrap().name, "reader-test");
        let raw = src.next_raw().await.unwrap().unwrap();
        let mut expected = Vec::new();
        encode_frame(&encode_message(&batch).unwrap(), &mut expected);
        assert_eq!(&raw.bytes[..], &expected[..]);
        assert_eq!(
            peek(raw.body()),
            Peek::Batch {
                count: 1,
                bytes: 10
            }
        );
        let eos = src.next_raw().await.unwrap().unwrap();
        assert_eq!(peek(eos.body()), Peek::Other);
        assert!(matches!(eos.decode().unwrap(), Message::Eos(_)));
        assert!(src.next_raw().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn garbage_shows_its_first_bytes() {
        let mut src = FrameSource::new(&b"hello world, not a frame"[..]);
        let err = src.hello().await.unwrap_err();
        assert!(matches!(err, FrameError::NotOurProtocol { .. }), "{err}");
        assert!(err.to_string().contains("hello world"), "{err}");
    }

    #[tokio::test]
    async fn nothing_at_all_is_closed_and_cuts_are_unexpected_eof() {
        let mut src = FrameSource::new(&b""[..]);
        assert!(matches!(src.hello().await.unwrap_err(), FrameError::Closed));
        let mut bytes = stream(&[hello(), Message::Eos(Eos::default())]);
        bytes.truncate(bytes.len() - 3);
        let mut src = FrameSource::new(bytes.as_slice());
        src.hello().await.unwrap();
        let err = src.next_raw().await.unwrap_err();
        assert!(matches!(err, FrameError::UnexpectedEof { .. }), "{err}");
    }

    #[tokio::test]
    async fn wrong_version_and_bad_checksum() {
        let mut h = Hello::new(Role::Writer, "writer-old", "0.1.0");
        h.version = "9.0.0".into();
        let bytes = stream(&[Message::Hello(h)]);
        let err = FrameSource::new(bytes.as_slice())
            .hello()
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::Incompatible { .. }), "{err}");
        let mut bytes = stream(&[hello(), Message::Eos(Eos::default())]);
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        let mut src = FrameSource::new(bytes.as_slice());
        src.hello().await.unwrap();
        assert!(matches!(
            src.next_raw().await.unwrap_err(),
            FrameError::Checksum { .. }
        ));
    }

    /// Bytes delivered in pieces of the given sizes (cycled), as a pipe may.
    struct Pieces {
        data: Vec<u8>,
        pos: usize,
        sizes: Vec<usize>,
        next: usize,
    }

    impl AsyncRead for Pieces {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            let me = &mut *self;
            let size = me.sizes[me.next % me.sizes.len()].max(1);
            me.next += 1;
            let n = size.min(buf.remaining()).min(me.data.len() - me.pos);
            buf.put_slice(&me.data[me.pos..me.pos + n]);
            me.pos += n;
            std::task::Poll::Ready(Ok(()))
        }
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
    }

    /// Every frame of `stream` (after the hello) through [`FrameSource`] read in
    /// `sizes` pieces, detached as the forwarding detaches them and given back to the
    /// source's buffers once copied (so later frames are read into reused, often larger,
    /// allocations); or the error.
    fn through_source(stream: &[u8], sizes: Vec<usize>) -> Result<Vec<Vec<u8>>, FrameError> {
        runtime().block_on(async {
            let buffers = FrameBuffers::default();
            let mut src = FrameSource::with_buffers(
                Pieces {
                    data: stream.to_vec(),
                    pos: 0,
                    sizes,
                    next: 0,
                },
                buffers.clone(),
            );
            src.hello().await?;
            let mut out = Vec::new();
            while let Some(frame) = src.next_raw().await? {
                let own = frame.is_own();
                let len = frame.bytes.len();
                let frame = frame.detach();
                if own {
                    // Read into an allocation of its own, nothing else in it.
                    assert!(len >= OWN_ALLOCATION_BYTES);
                    assert!(frame.bytes.capacity() >= len);
                }
                out.push(frame.bytes.to_vec());
                buffers.give(frame);
            }
            Ok(out)
        })
    }

    /// The frames of `stream` (after the hello) by the protocol's general reader.
    fn through_protocol(stream: &[u8]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut reader = protocol::frame::FrameReader::new(stream);
        reader.next_message()?;
        let mut out = Vec::new();
        while let Some(body) = reader.next_frame()? {
            let mut framed = Vec::new();
            encode_frame(&body, &mut framed);
            out.push(framed);
        }
        Ok(out)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// The fast path (large frames read into their own allocation, the header read
        /// alone after one) yields exactly the frames of the general reader, however
        /// the bytes arrive, and fails where it fails on a cut stream.
        #[test]
        fn frames_match_the_general_reader(
            bodies in proptest::collection::vec(
                proptest::prop_oneof![0usize..200, 20_000usize..120_000], 0..12),
            sizes in proptest::collection::vec(
                proptest::prop_oneof![1usize..16, 1usize..70_000, 200_000usize..400_000], 1..8),
            cut in proptest::option::of(0usize..1_000_000),
        ) {
            let mut stream = stream(&[hello()]);
            for (i, n) in bodies.iter().enumerate() {
                let body: Vec<u8> = (0..*n).map(|b| (b * 31 + i) as u8).collect();
                encode_frame(&body, &mut stream);
            }
            let hello_end = PREAMBLE.len() + 8 + u32::from_be_bytes(
                stream[PREAMBLE.len()..PREAMBLE.len() + 4].try_into().unwrap()) as usize;
            if let Some(cut) = cut {
                let cut = hello_end + cut % (stream.len() - hello_end + 1);
                stream.truncate(cut);
            }
            let fast = through_source(&stream, sizes);
            let general = through_protocol(&stream);
            match (fast, general) {
                (Ok(a), Ok(b)) => proptest::prop_assert_eq!(a, b),
                (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
                (a, b) => proptest::prop_assert!(false, "fast {:?} but general {:?}",
                    a.map(|f| f.len()), b.map(|f| f.len())),
            }
        }
    }
}
