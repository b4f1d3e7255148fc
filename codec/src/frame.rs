//! Frames: the unit of the multiplexer (`spec/02-framing.md`).
//!
//! ```text
//! Frame {
//!   Stream ID (Go varint, 8..80),
//!   Length (Go varint, 8..80),
//!   Payload (8 * Length),
//! }
//! ```
//!
//! This module owns the frame layout (FRAME-1), the encoder (FRAME-2, FRAME-9: the header and
//! payload are written into one caller buffer, so a frame can leave in one write, FRAME-11), and
//! an incremental decoder fed arbitrary chunks (FRAME-12) that enforces the receiver's limits and
//! reports every malformed input as a typed connection error (FRAME-4, FRAME-5, FRAME-6,
//! FRAME-8, FRAME-13). Nothing here allocates per frame except [`FrameAssembler`], which
//! collects whole owned frames for callers that want them.

use std::fmt;

use thiserror::Error;

use crate::varint::{self, VarintError};

/// Every receiver accepts payloads up to this many bytes, and no sender exceeds it
/// (MIN_MAX_PAYLOAD: FRAME-7, FRAME-9).
pub const MIN_MAX_PAYLOAD: usize = 1 << 20;

/// The largest payload limit a receiver may configure (MAX_PAYLOAD_CEILING: FRAME-8).
pub const MAX_PAYLOAD_CEILING: usize = 16 << 20;

/// The longest frame header: two 10-byte varints.
pub const MAX_HEADER_LEN: usize = 2 * varint::MAX_LEN;

/// A stream id as it travels on the wire: a non-negative 64-bit signed integer.
///
/// Stream 0 is the control stream (STREAM-1); odd ids are allocated by the host and even ids by
/// the plugin (STREAM-2).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "i64", into = "i64")]
pub struct StreamId(i64);

impl StreamId {
    /// The control stream, which carries the handshake (STREAM-1, HS-1).
    pub const CONTROL: StreamId = StreamId(0);
    /// The largest id a stream can have.
    pub const MAX: StreamId = StreamId(i64::MAX);

    /// The id with this wire value, or `None` when it is negative (FRAME-5).
    pub const fn new(value: i64) -> Option<StreamId> {
        if value < 0 {
            None
        } else {
            Some(StreamId(value))
        }
    }

    /// The wire value.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// Whether this is the control stream 0.
    pub const fn is_control(self) -> bool {
        self.0 == 0
    }

    /// Whether the host allocates this id (odd ids, STREAM-2).
    pub const fn is_host_allocated(self) -> bool {
        self.0 % 2 == 1
    }

    /// Whether the plugin allocates this id (even ids other than 0, STREAM-2).
    pub const fn is_plugin_allocated(self) -> bool {
        self.0 != 0 && self.0 % 2 == 0
    }
}

impl TryFrom<i64> for StreamId {
    type Error = FrameError;

    fn try_from(value: i64) -> Result<Self, Self::Error> {
        StreamId::new(value).ok_or(FrameError::NegativeStreamId { value })
    }
}

impl From<StreamId> for i64 {
    fn from(id: StreamId) -> i64 {
        id.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Which header field a varint error concerns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderField {
    /// The first varint: the stream id.
    StreamId,
    /// The second varint: the payload length.
    Length,
}

impl fmt::Display for HeaderField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HeaderField::StreamId => "stream id",
            HeaderField::Length => "length",
        })
    }
}

/// A malformed frame. Every variant is a connection error (`spec/02-framing.md`): the receiver
/// stops processing input and ends the connection (FRAME-14). The message names the
/// requirement it enforces.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A header varint does not fit in 64 bits.
    #[error("FRAME-4: the {field} varint does not fit in 64 bits (its tenth byte is above 0x01 or continues)")]
    VarintOverflow {
        /// The field whose varint overflowed.
        field: HeaderField,
    },
    /// The stream id is negative.
    #[error("FRAME-5: negative stream id {value}")]
    NegativeStreamId {
        /// The decoded value.
        value: i64,
    },
    /// The payload length is negative.
    #[error("FRAME-6: negative payload length {value} on stream {stream_id}")]
    NegativeLength {
        /// The frame's stream.
        stream_id: StreamId,
        /// The decoded value.
        value: i64,
    },
    /// The declared payload length is above this receiver's limit.
    #[error("FRAME-8: stream {stream_id} declares a payload of {len} bytes, above this receiver's limit of {max} bytes")]
    PayloadTooLarge {
        /// The frame's stream.
        stream_id: StreamId,
        /// The declared length.
        len: u64,
        /// The receiver's limit.
        max: usize,
    },
    /// The input ended inside a frame header.
    #[error("FRAME-13: input ended inside a frame header ({have} header byte(s) received)")]
    TruncatedHeader {
        /// Header bytes received before the end.
        have: usize,
    },
    /// The input ended inside a frame payload.
    #[error("FRAME-13: input ended inside the payload of a frame on stream {stream_id} ({received} of {len} bytes received)")]
    TruncatedPayload {
        /// The frame's stream.
        stream_id: StreamId,
        /// Payload bytes received before the end.
        received: usize,
        /// The declared payload length.
        len: usize,
    },
}

impl FrameError {
    /// A stable, machine-readable name for the error, as used by `spec/vectors/`.
    pub fn kind(&self) -> &'static str {
        match self {
            FrameError::VarintOverflow { .. } => "varint_overflow",
            FrameError::NegativeStreamId { .. } => "negative_stream_id",
            FrameError::NegativeLength { .. } => "negative_length",
            FrameError::PayloadTooLarge { .. } => "payload_too_large",
            FrameError::TruncatedHeader { .. } | FrameError::TruncatedPayload { .. } => "truncated",
        }
    }

    /// The id of the requirement this error enforces.
    pub fn requirement(&self) -> &'static str {
        match self {
            FrameError::VarintOverflow { .. } => crate::req!("FRAME-4"),
            FrameError::NegativeStreamId { .. } => crate::req!("FRAME-5"),
            FrameError::NegativeLength { .. } => crate::req!("FRAME-6"),
            FrameError::PayloadTooLarge { .. } => crate::req!("FRAME-8"),
            FrameError::TruncatedHeader { .. } | FrameError::TruncatedPayload { .. } => {
                crate::req!("FRAME-13")
            }
        }
    }
}

/// A payload limit outside the range the spec allows (FRAME-7, FRAME-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("a receiver's payload limit must lie between {min} and {max} bytes (FRAME-7, FRAME-8); {requested} was requested", min = MIN_MAX_PAYLOAD, max = MAX_PAYLOAD_CEILING)]
pub struct PayloadLimitError {
    /// The limit that was asked for.
    pub requested: usize,
}

/// Checks that `max_payload` is a limit a receiver may use.
pub fn check_payload_limit(max_payload: usize) -> Result<usize, PayloadLimitError> {
    if (MIN_MAX_PAYLOAD..=MAX_PAYLOAD_CEILING).contains(&max_payload) {
        Ok(max_payload)
    } else {
        Err(PayloadLimitError {
            requested: max_payload,
        })
    }
}

/// A frame's header, validated against the receiver's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// The stream the frame belongs to.
    pub stream_id: StreamId,
    /// The payload length in bytes.
    pub len: usize,
}

/// A frame whose payload borrows from the caller's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// The stream the frame belongs to.
    pub stream_id: StreamId,
    /// The payload.
    pub payload: &'a [u8],
}

/// A frame that owns its payload.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The stream the frame belongs to.
    pub stream_id: StreamId,
    /// The payload.
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame on `stream_id` carrying `payload`.
    pub fn new(stream_id: StreamId, payload: impl Into<Vec<u8>>) -> Frame {
        Frame {
            stream_id,
            payload: payload.into(),
        }
    }

    /// Borrows this frame.
    pub fn as_ref(&self) -> FrameRef<'_> {
        FrameRef {
            stream_id: self.stream_id,
            payload: &self.payload,
        }
    }

    /// Appends the frame's encoding to `out` (see [`encode_frame`]).
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        encode_frame(self.stream_id, &self.payload, out)
    }
}

/// A frame that a sender must not send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The payload is longer than any receiver has to accept.
    #[error("FRAME-9: a payload of {len} bytes is longer than the {max}-byte maximum a sender may send; split it", max = MIN_MAX_PAYLOAD)]
    PayloadTooLong {
        /// The payload's length.
        len: usize,
    },
}

/// Writes the header of a frame on `stream_id` with a `len`-byte payload into `out`, returning
/// its length (2 to 20 bytes).
#[inline]
pub fn encode_header(stream_id: StreamId, len: usize, out: &mut [u8; MAX_HEADER_LEN]) -> usize {
    let mut buf = [0u8; varint::MAX_LEN];
    let n = varint::encode(stream_id.get(), &mut buf);
    out[..n].copy_from_slice(&buf[..n]);
    // `len` fits in i64 on every platform Rust supports with usize <= 64 bits.
    let m = varint::encode(len as i64, &mut buf);
    out[n..n + m].copy_from_slice(&buf[..m]);
    n + m
}

/// Appends one whole frame (header then payload) to `out`, so that it can be written with a
/// single write (FRAME-11). Fails if the payload is longer than [`MIN_MAX_PAYLOAD`] (FRAME-9).
#[inline]
pub fn encode_frame(
    stream_id: StreamId,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if payload.len() > MIN_MAX_PAYLOAD {
        return Err(EncodeError::PayloadTooLong { len: payload.len() });
    }
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(stream_id, payload.len(), &mut header);
    out.reserve(n + payload.len());
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(payload);
    Ok(())
}

/// Appends `data` to `out` as frames on `stream_id` of at most `max_payload` bytes each
/// (FRAME-9), returning how many frames were written. Empty data writes nothing: a zero-length
/// frame on a data stream would close it (STREAM-7).
pub fn encode_data(
    stream_id: StreamId,
    data: &[u8],
    max_payload: usize,
    out: &mut Vec<u8>,
) -> usize {
    let max = max_payload.clamp(1, MIN_MAX_PAYLOAD);
    let mut frames = 0;
    for piece in data.chunks(max) {
        // Cannot fail: every piece is at most MIN_MAX_PAYLOAD long.
        let _ = encode_frame(stream_id, piece, out);
        frames += 1;
    }
    frames
}

/// Parses a frame header at the start of `buf`. `Ok(None)` means more bytes are needed; errors
/// are reported as early as the bytes allow, in a fixed order (stream id varint, stream id sign,
/// length varint, length sign, limit), so that any split of the input gives the same error.
#[inline]
pub fn decode_header(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(FrameHeader, usize)>, FrameError> {
    let (sid, n) = match varint::decode(buf) {
        Ok(v) => v,
        Err(VarintError::Incomplete { .. }) => return Ok(None),
        Err(VarintError::Overflow { .. }) => {
            return Err(FrameError::VarintOverflow {
                field: HeaderField::StreamId,
            })
        }
    };
    let stream_id = StreamId::new(sid).ok_or(FrameError::NegativeStreamId { value: sid })?;
    let (len, m) = match varint::decode(&buf[n..]) {
        Ok(v) => v,
        Err(VarintError::Incomplete { .. }) => return Ok(None),
        Err(VarintError::Overflow { .. }) => {
            return Err(FrameError::VarintOverflow {
                field: HeaderField::Length,
            })
        }
    };
    if len < 0 {
        return Err(FrameError::NegativeLength {
            stream_id,
            value: len,
        });
    }
    if len as u64 > max_payload as u64 {
        return Err(FrameError::PayloadTooLarge {
            stream_id,
            len: len as u64,
            max: max_payload,
        });
    }
    Ok(Some((
        FrameHeader {
            stream_id,
            len: len as usize,
        },
        n + m,
    )))
}

/// Decodes one whole frame at the start of a contiguous buffer, without copying its payload.
/// Returns the frame and the bytes it occupies, or `Ok(None)` when `buf` holds only part of it.
#[inline]
pub fn decode_frame(
    buf: &[u8],
    max_payload: usize,
) -> Result<Option<(FrameRef<'_>, usize)>, FrameError> {
    let Some((header, n)) = decode_header(buf, max_payload)? else {
        return Ok(None);
    };
    let end = n + header.len;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((
        FrameRef {
            stream_id: header.stream_id,
            payload: &buf[n..end],
        },
        end,
    )))
}

/// What the incremental decoder found next in its input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The start of a frame. Its `len` payload bytes follow as [`Chunk::Payload`] pieces; a
    /// zero-length frame is complete with its header.
    Header(FrameHeader),
    /// A piece of the current frame's payload, borrowed from the input.
    Payload {
        /// The frame's stream.
        stream_id: StreamId,
        /// The bytes.
        data: &'a [u8],
        /// Whether this piece ends the frame.
        last: bool,
    },
}

#[derive(Debug, Clone, Copy)]
enum DecodeState {
    /// Between frames, or inside a header whose first bytes are held in `FrameDecoder::header`.
    Header,
    /// Inside a payload.
    Payload {
        stream_id: StreamId,
        len: usize,
        remaining: usize,
    },
}

/// An incremental frame decoder: feed it any split of the input (FRAME-12), take
/// [`Chunk`]s out, and call [`FrameDecoder::finish`] at end of input (FRAME-13).
///
/// The decoder copies only partial headers (at most 19 bytes); payload pieces borrow from the
/// input.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_payload: usize,
    state: DecodeState,
    /// The first bytes of a header split across inputs.
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    /// A connection error found earlier; every later call repeats it (FRAME-14).
    failed: Option<FrameError>,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new()
    }
}

impl FrameDecoder {
    /// A decoder with the default payload limit, [`MIN_MAX_PAYLOAD`].
    pub fn new() -> FrameDecoder {
        FrameDecoder {
            max_payload: MIN_MAX_PAYLOAD,
            state: DecodeState::Header,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            failed: None,
        }
    }

    /// A decoder that accepts payloads up to `max_payload` bytes, which must lie between
    /// [`MIN_MAX_PAYLOAD`] and [`MAX_PAYLOAD_CEILING`].
    pub fn with_max_payload(max_payload: usize) -> Result<FrameDecoder, PayloadLimitError> {
        let mut d = FrameDecoder::new();
        d.max_payload = check_payload_limit(max_payload)?;
        Ok(d)
    }

    /// This decoder's payload limit.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Whether the decoder stands between two frames (no partial frame held).
    pub fn is_at_boundary(&self) -> bool {
        self.failed.is_none() && matches!(self.state, DecodeState::Header) && self.header_len == 0
    }

    /// The connection error found earlier, if any.
    pub fn error(&self) -> Option<&FrameError> {
        self.failed.as_ref()
    }

    fn fail(&mut self, e: FrameError) -> FrameError {
        self.failed = Some(e.clone());
        e
    }

    /// Takes the next chunk from the front of `input`, advancing it past the bytes used.
    /// `Ok(None)` means `input` is used up (any partial header is kept for the next call).
    #[inline]
    pub fn decode<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<Chunk<'a>>, FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if input.is_empty() {
            return Ok(None);
        }
        match &mut self.state {
            DecodeState::Payload {
                stream_id,
                remaining,
                ..
            } => {
                let n = (*remaining).min(input.len());
                let (data, rest) = input.split_at(n);
                *input = rest;
                *remaining -= n;
                let stream_id = *stream_id;
                let last = *remaining == 0;
                if last {
                    self.state = DecodeState::Header;
                }
                Ok(Some(Chunk::Payload {
                    stream_id,
                    data,
                    last,
                }))
            }
            DecodeState::Header => {
                let old = self.header_len;
                let parsed = if old == 0 {
                    decode_header(input, self.max_payload)
                } else {
                    let take = (MAX_HEADER_LEN - old).min(input.len());
                    self.header[old..old + take].copy_from_slice(&input[..take]);
                    match decode_header(&self.header[..old + take], self.max_payload) {
                        Ok(Some((h, n))) => Ok(Some((h, n - old))),
                        other => other,
                    }
                };
                match parsed {
                    Err(e) => Err(self.fail(e)),
                    Ok(None) => {
                        // Incomplete: fewer than MAX_HEADER_LEN bytes in all, keep them.
                        let take = input.len().min(MAX_HEADER_LEN - old);
                        self.header[old..old + take].copy_from_slice(&input[..take]);
                        self.header_len = old + take;
                        *input = &input[take..];
                        Ok(None)
                    }
                    Ok(Some((header, used))) => {
                        *input = &input[used..];
                        self.header_len = 0;
                        if header.len > 0 {
                            self.state = DecodeState::Payload {
                                stream_id: header.stream_id,
                                len: header.len,
                                remaining: header.len,
                            };
                        }
                        Ok(Some(Chunk::Header(header)))
                    }
                }
            }
        }
    }

    /// Reports end of input: an error if it falls inside a frame (FRAME-13), or the earlier
    /// connection error if there was one.
    pub fn finish(&mut self) -> Result<(), FrameError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let e = match self.state {
            DecodeState::Header if self.header_len == 0 => return Ok(()),
            DecodeState::Header => FrameError::TruncatedHeader {
                have: self.header_len,
            },
            DecodeState::Payload {
                stream_id,
                len,
                remaining,
            } => FrameError::TruncatedPayload {
                stream_id,
                received: len - remaining,
                len,
            },
        };
        Err(self.fail(e))
    }
}

/// Collects whole, owned frames from arbitrary chunks of input: a convenience over
/// [`FrameDecoder`] for tools and tests that want frames rather than chunks.
#[derive(Debug, Clone, Default)]
pub struct FrameAssembler {
    decoder: FrameDecoder,
    partial: Option<Frame>,
}

impl FrameAssembler {
    /// An assembler with the default payload limit.
    pub fn new() -> FrameAssembler {
        FrameAssembler::default()
    }

    /// An assembler around a configured decoder.
    pub fn with_decoder(decoder: FrameDecoder) -> FrameAssembler {
        FrameAssembler {
            decoder,
            partial: None,
        }
    }

    /// Feeds `input`, appending every frame it completes to `out`. On error, the frames completed
    /// before the offending one are in `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<Frame>) -> Result<(), FrameError> {
        while let Some(chunk) = self.decoder.decode(&mut input)? {
            match chunk {
                Chunk::Header(h) if h.len == 0 => out.push(Frame::new(h.stream_id, Vec::new())),
                Chunk::Header(h) => {
                    self.partial = Some(Frame {
                        stream_id: h.stream_id,
                        payload: Vec::with_capacity(h.len.min(64 * 1024)),
                    })
                }
                Chunk::Payload { data, last, .. } => {
                    if let Some(f) = self.partial.as_mut() {
                        f.payload.extend_from_slice(data);
                    }
                    if last {
                        if let Some(f) = self.partial.take() {
                            out.push(f);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Reports end of input (see [`FrameDecoder::finish`]).
    pub fn finish(&mut self) -> Result<(), FrameError> {
        self.decoder.finish()
    }
}
