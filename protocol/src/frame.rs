//! Framing: how messages are cut on a byte stream.
//!
//! A stream starts with the [`PREAMBLE`] (`SPRT`, a length byte and the encoding name
//! `msgpack`). Then frames follow, each:
//!
//! ```text
//! +-----------------+----------------------+---------------------------+
//! | length: u32 BE  | body: `length` bytes | CRC-32 (IEEE) of body, BE |
//! +-----------------+----------------------+---------------------------+
//! ```
//!
//! The body is one MessagePack-encoded [`Message`]. A frame longer than the reader's
//! maximum is refused before its body is read, so a corrupt length cannot exhaust
//! memory. [`FrameDecoder`] is sans-I/O (feed it bytes in any pieces); it implements
//! `tokio_util::codec::Decoder` for async use, and [`FrameReader`] wraps it over
//! `std::io::Read`.

use std::fmt;
use std::io::{Read, Write};

use bytes::{Buf, BytesMut};

use crate::message::{Batch, Hello, Message, PROTOCOL_NAME, PROTOCOL_VERSION};

/// The bytes that open every stream.
pub const PREAMBLE: &[u8; 12] = b"SPRT\x07msgpack";
/// Default (and maximum advertised) frame body size: 64 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024 * 1024;
const HEADER_BYTES: usize = 4;
const TRAILER_BYTES: usize = 4;

/// Where in the stream an EOF cut a frame short.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamPart {
    Preamble,
    Header,
    Body,
    Checksum,
}

impl fmt::Display for StreamPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StreamPart::Preamble => "the stream preamble",
            StreamPart::Header => "a frame header",
            StreamPart::Body => "a frame body",
            StreamPart::Checksum => "a frame checksum",
        })
    }
}

/// Everything that can go wrong reading a stream.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended cleanly, between frames, where a message was required.
    #[error("the stream ended before the expected message")]
    Closed,
    /// The stream ended inside a frame (or inside the preamble).
    #[error("the stream ended inside {part} ({have} of {need} bytes)")]
    UnexpectedEof {
        part: StreamPart,
        have: usize,
        need: usize,
    },
    /// The stream does not start with our preamble: the peer is not speaking this
    /// protocol (typically a plugin that printed text on stdout).
    #[error("not a streamport protocol stream: it starts with {}", show_bytes(.first_bytes))]
    NotOurProtocol { first_bytes: Vec<u8> },
    /// The body's CRC-32 does not match the frame's trailer.
    #[error("frame checksum mismatch: trailer says {expected:08x}, body of {len} bytes has {actual:08x}")]
    Checksum {
        expected: u32,
        actual: u32,
        len: usize,
    },
    /// The length prefix exceeds the maximum frame size.
    #[error("frame of {len} bytes exceeds the maximum of {max} bytes")]
    TooLarge { len: usize, max: usize },
    /// The peer speaks an incompatible protocol version.
    #[error("incompatible protocol: peer {peer} speaks {theirs}, this program speaks {ours}")]
    Incompatible {
        peer: String,
        theirs: String,
        ours: String,
    },
    /// The body is not a valid message.
    #[error("malformed message: {0}")]
    Malformed(String),
    /// The peer sent a message the protocol does not allow here.
    #[error("unexpected {got} message: expected {expected}")]
    Unexpected {
        got: &'static str,
        expected: &'static str,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

fn show_bytes(bytes: &[u8]) -> String {
    let text: String = bytes
        .iter()
        .flat_map(|b| std::ascii::escape_default(*b))
        .map(char::from)
        .collect();
    format!("\"{text}\" ({} bytes shown)", bytes.len())
}

/// Sans-I/O frame decoder. Yields frame bodies (checksums verified).
#[derive(Debug)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
    preamble_done: bool,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    pub fn new(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            preamble_done: false,
        }
    }

    /// A decoder for a stream whose preamble was already consumed.
    pub fn after_preamble(max_frame_bytes: usize) -> Self {
        Self {
            max_frame_bytes,
            preamble_done: true,
        }
    }

    /// Takes one frame body from the front of `buf`, or `Ok(None)` if more bytes are
    /// needed.
    pub fn decode_frame(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if !self.preamble_done {
            let n = buf.len().min(PREAMBLE.len());
            if buf[..n] != PREAMBLE[..n] {
                return Err(FrameError::NotOurProtocol {
                    first_bytes: buf[..buf.len().min(64)].to_vec(),
                });
            }
            if n < PREAMBLE.len() {
                return Ok(None);
            }
            buf.advance(PREAMBLE.len());
            self.preamble_done = true;
        }
        if buf.len() < HEADER_BYTES {
            return Ok(None);
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if len > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                len,
                max: self.max_frame_bytes,
            });
        }
        let total = HEADER_BYTES + len + TRAILER_BYTES;
        if buf.len() < total {
            buf.reserve(total - buf.len());
            return Ok(None);
        }
        buf.advance(HEADER_BYTES);
        let body = buf.split_to(len);
        let expected = buf.get_u32();
        let actual = crc32fast::hash(&body);
        if expected != actual {
            return Err(FrameError::Checksum {
                expected,
                actual,
                len,
            });
        }
        Ok(Some(body))
    }

    /// Bytes still to come for the frame at the front of `buf` when its header is in
    /// and its length acceptable; `None` when the preamble or the header is not in yet,
    /// or when `decode_frame` would refuse the frame.
    fn bytes_missing(&self, buf: &[u8]) -> Option<usize> {
        if !self.preamble_done {
            return None;
        }
        let header: [u8; HEADER_BYTES] = buf.get(..HEADER_BYTES)?.try_into().ok()?;
        let len = u32::from_be_bytes(header) as usize;
        if len > self.max_frame_bytes {
            return None;
        }
        (HEADER_BYTES + len + TRAILER_BYTES).checked_sub(buf.len())
    }

    /// Called at EOF with what is left: `Ok(None)` if the stream ended cleanly between
    /// frames, an [`FrameError::UnexpectedEof`] otherwise.
    pub fn decode_frame_eof(&mut self, buf: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        if let Some(frame) = self.decode_frame(buf)? {
            return Ok(Some(frame));
        }
        if buf.is_empty() && self.preamble_done {
            return Ok(None);
        }
        Err(self.eof_error(buf))
    }

    fn eof_error(&self, buf: &BytesMut) -> FrameError {
        if !self.preamble_done {
            return FrameError::UnexpectedEof {
                part: StreamPart::Preamble,
                have: buf.len(),
                need: PREAMBLE.len(),
            };
        }
        if buf.len() < HEADER_BYTES {
            return FrameError::UnexpectedEof {
                part: StreamPart::Header,
                have: buf.len(),
                need: HEADER_BYTES,
            };
        }
        let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
        if buf.len() < HEADER_BYTES + len {
            FrameError::UnexpectedEof {
                part: StreamPart::Body,
                have: buf.len() - HEADER_BYTES,
                need: len,
            }
        } else {
            FrameError::UnexpectedEof {
                part: StreamPart::Checksum,
                have: buf.len() - HEADER_BYTES - len,
                need: TRAILER_BYTES,
            }
        }
    }
}

impl tokio_util::codec::Decoder for FrameDecoder {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        self.decode_frame(src)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        self.decode_frame_eof(src)
    }
}

/// Appends one frame holding `body` to `out`.
pub fn encode_frame(body: &[u8], out: &mut Vec<u8>) {
    out.reserve(HEADER_BYTES + body.len() + TRAILER_BYTES);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&crc32fast::hash(body).to_be_bytes());
}

/// Encodes a message as a frame body (MessagePack, fields by name).
pub fn encode_message(message: &Message) -> Result<Vec<u8>, FrameError> {
    rmp_serde::to_vec_named(message).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Decodes a frame body.
pub fn decode_message(body: &[u8]) -> Result<Message, FrameError> {
    if let Some(batch) = batch_parts(body) {
        return Ok(Message::Batch(Batch {
            count: batch.count,
            bytes: batch.bytes,
            records: batch.records.to_vec(),
        }));
    }
    rmp_serde::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// A `batch` message read in place from its frame body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchParts<'a> {
    pub count: u32,
    pub bytes: u64,
    /// The encoded records ([`crate::records`]), borrowed from the body.
    pub records: &'a [u8],
}

/// Reads a `batch` body without copying its records, when it is laid out as this
/// crate writes it: a map of `type`, `count`, `bytes`, `records` in that order.
/// `None` for any other body (another message, or a batch in another layout, which
/// [`decode_message`] still decodes).
pub fn batch_parts(body: &[u8]) -> Option<BatchParts<'_>> {
    use rmp::decode::{read_bin_len, read_int, read_map_len, read_str_from_slice};
    let mut rest = body;
    if read_map_len(&mut rest).ok()? != 4 {
        return None;
    }
    let key = |rest: &mut &[u8], want: &str| -> Option<()> {
        let (k, after) = read_str_from_slice(*rest).ok()?;
        *rest = after;
        (k == want).then_some(())
    };
    key(&mut rest, "type")?;
    key(&mut rest, "batch")?;
    key(&mut rest, "count")?;
    let count: u32 = read_int(&mut rest).ok()?;
    key(&mut rest, "bytes")?;
    let bytes: u64 = read_int(&mut rest).ok()?;
    key(&mut rest, "records")?;
    let len = read_bin_len(&mut rest).ok()? as usize;
    (rest.len() == len).then_some(BatchParts {
        count,
        bytes,
        records: rest,
    })
}

/// Checks a peer's `hello` against ours: same protocol name, caret-compatible version.
pub fn check_hello(theirs: &Hello) -> Result<(), FrameError> {
    let incompatible = || FrameError::Incompatible {
        peer: theirs.name.clone(),
        theirs: format!("{} {}", theirs.protocol, theirs.version),
        ours: format!("{PROTOCOL_NAME} {PROTOCOL_VERSION}"),
    };
    if theirs.protocol != PROTOCOL_NAME {
        return Err(incompatible());
    }
    let ours = semver::Version::parse(PROTOCOL_VERSION).map_err(|_| incompatible())?;
    let their_version = semver::Version::parse(&theirs.version).map_err(|_| incompatible())?;
    let compatible = if ours.major == 0 || their_version.major == 0 {
        ours.major == their_version.major && ours.minor == their_version.minor
    } else {
        ours.major == their_version.major
    };
    if compatible {
        Ok(())
    } else {
        Err(incompatible())
    }
}

/// Reads frames from a blocking reader.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    decoder: FrameDecoder,
    buf: BytesMut,
    eof: bool,
    /// Bytes the last read returned: the next read offers at most twice as many, so
    /// the room zeroed for a read stays near what reads return (a pipe hands out at
    /// most its size per read, while the buffer may have grown to a whole frame).
    last_read: usize,
    /// The last frame was completed by [`FrameReader::read_rest_of_frame`]: the next
    /// read takes the next header alone, so that little is copied into the next frame.
    large_frames: bool,
}

/// The smallest room offered to a read.
const MIN_READ_BYTES: usize = 64 * 1024;

impl<R: Read> FrameReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_decoder(inner, FrameDecoder::default())
    }

    pub fn with_decoder(inner: R, decoder: FrameDecoder) -> Self {
        Self {
            inner,
            decoder,
            buf: BytesMut::with_capacity(MIN_READ_BYTES),
            eof: false,
            last_read: 0,
            large_frames: false,
        }
    }

    /// The next frame body; `Ok(None)` at a clean end of stream.
    pub fn next_frame(&mut self) -> Result<Option<BytesMut>, FrameError> {
        loop {
            // Before decode_frame, which would grow the buffer to the frame's size by
            // a reallocation that copies all it holds.
            let missing = self.decoder.bytes_missing(&self.buf);
            match missing {
                Some(missing) if missing > MIN_READ_BYTES && !self.eof => {
                    self.read_rest_of_frame(missing)?;
                }
                Some(missing) if missing > 0 => self.large_frames = false,
                _ => {}
            }
            if let Some(frame) = self.decoder.decode_frame(&mut self.buf)? {
                return Ok(Some(frame));
            }
            if self.eof {
                return self.decoder.decode_frame_eof(&mut self.buf);
            }
            let start = self.buf.len();
            let room = self.buf.capacity() - start;
            let want = if self.large_frames && start < HEADER_BYTES {
                HEADER_BYTES - start
            } else {
                room.min(self.last_read.saturating_mul(2))
                    .max(MIN_READ_BYTES)
            };
            self.buf.resize(start + want, 0);
            let n = match self.inner.read(&mut self.buf[start..]) {
                Ok(n) => n,
                Err(e) => {
                    self.buf.truncate(start);
                    if e.kind() == std::io::ErrorKind::Interrupted {
                        continue; // a signal, not the end of the stream
                    }
                    return Err(e.into());
                }
            };
            self.buf.truncate(start + n);
            self.last_read = n;
            if n == 0 {
                self.eof = true;
            }
        }
    }

    /// Reads the `missing` bytes that complete the frame begun in `buf`, into a buffer
    /// of the frame's size that is not zeroed first: `read_to_end` hands the reader
    /// room it has not initialised (std tracks that), where `read` needs zeroed room.
    /// Zeroing the room of every read was 13.6 % of writer-odps's instructions, though
    /// only about 2 % of its time (`BENCHMARKS.md`, issue 19's eighth round). The
    /// frame's first bytes, a read's worth at most (its header alone after a large
    /// frame), move to the front of the buffer. A shorter frame at the end of the
    /// stream sets `eof`.
    fn read_rest_of_frame(&mut self, missing: usize) -> Result<(), FrameError> {
        // The buffer's allocation is reused once the frames taken from it are dropped.
        let mut whole = Vec::from(std::mem::take(&mut self.buf));
        whole.reserve_exact(missing);
        let start = whole.len();
        let read = (&mut self.inner)
            .take(missing as u64)
            .read_to_end(&mut whole);
        let n = whole.len() - start;
        self.buf = BytesMut::from(bytes::Bytes::from(whole)); // no copy: unique
        self.last_read = n;
        self.large_frames = true;
        read?;
        if n < missing {
            self.eof = true;
        }
        Ok(())
    }

    /// The next message; `Ok(None)` at a clean end of stream.
    pub fn next_message(&mut self) -> Result<Option<Message>, FrameError> {
        match self.next_frame()? {
            Some(body) => decode_message(&body).map(Some),
            None => Ok(None),
        }
    }

    /// The next message, which must exist.
    pub fn expect_message(&mut self) -> Result<Message, FrameError> {
        self.next_message()?.ok_or(FrameError::Closed)
    }
}

/// Writes the preamble and frames to a blocking writer.
#[derive(Debug)]
pub struct FrameWriter<W: Write> {
    inner: W,
    scratch: Vec<u8>,
}

impl<W: Write> FrameWriter<W> {
    /// Writes the preamble.
    pub fn new(mut inner: W) -> std::io::Result<Self> {
        inner.write_all(PREAMBLE)?;
        Ok(Self {
            inner,
            scratch: Vec::new(),
        })
    }

    /// A writer for a stream whose preamble was already written.
    pub fn without_preamble(inner: W) -> Self {
        Self {
            inner,
            scratch: Vec::new(),
        }
    }

    /// Writes one frame around an already encoded body.
    ///
    /// The frame is assembled in `scratch` and written with one `write_all`. Writing
    /// header, body and trailer separately avoids this copy but halves the direct
    /// pipe's throughput (measured with `scripts/bench-pipe`: 1.3 M against 2.4–3.0 M
    /// records/s): a `BufWriter` sends the 4-byte header as its own write before a
    /// large body, and the reading side's reads fragment.
    pub fn write_body(&mut self, body: &[u8]) -> std::io::Result<()> {
        self.scratch.clear();
        encode_frame(body, &mut self.scratch);
        self.inner.write_all(&self.scratch)
    }

    /// Writes the frame of the body `buf[at..]` without copying it: its header goes
    /// into `buf[at - 4..at]` (room the caller left) and its trailer is appended to
    /// `buf`, then `buf[at - 4..]` goes out with one `write_all` (which a `BufWriter`
    /// passes straight through when it is large). `buf` is left holding the frame.
    pub fn write_body_in_place(&mut self, buf: &mut Vec<u8>, at: usize) -> std::io::Result<()> {
        let invalid =
            |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidInput, what.to_owned());
        let start = at
            .checked_sub(HEADER_BYTES)
            .ok_or_else(|| invalid("no room before the body for the frame header"))?;
        let body = buf
            .get(at..)
            .ok_or_else(|| invalid("the body starts beyond the buffer"))?;
        let len = u32::try_from(body.len()).map_err(|_| invalid("a frame body over 4 GiB"))?;
        let crc = crc32fast::hash(body);
        buf[start..at].copy_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(&crc.to_be_bytes());
        self.inner.write_all(&buf[start..])
    }

    pub fn write_message(&mut self, message: &Message) -> Result<(), FrameError> {
        let body = encode_message(message)?;
        Ok(self.write_body(&body)?)
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }

    pub fn into_inner(self) -> W {
        self.inner
    }
}
