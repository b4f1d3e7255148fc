//! The handshake (`spec/04-handshake.md`): the plugin's announcement of its hooks stream and
//! the host's parsing of it.
//!
//! ```text
//! Announcement {
//!   Control Byte (8) = 0x00,
//!   Hooks Stream ID (Go varint, 8..80),
//! }
//! ```
//!
//! The announcement is the payload of exactly one frame on stream 0, the first frame the plugin
//! sends (HS-1). [`announcement`] builds it; [`parse_announcement`] checks it as HS-5 and HS-9 require;
//! [`HostHandshake`] is the host's state machine (the table in `spec/04-handshake.md`, rows
//! H1..H7), fed by [`crate::stream::StreamTable`] in the host role, which assembles the stream-0
//! payload incrementally from any split of the input.

use std::fmt;

use thiserror::Error;

use crate::frame::{self, StreamId};
use crate::varint::{self, VarintError};

/// The first byte of the announcement.
pub const CONTROL_BYTE: u8 = 0x00;

/// The longest valid announcement: the control byte and a 10-byte varint.
pub const MAX_ANNOUNCEMENT_LEN: usize = 1 + varint::MAX_LEN;

/// The default start timeout of the seed, in milliseconds (HS-4). The codec has no clock: the
/// runtime measures it and calls [`HostHandshake::on_timeout`].
pub const DEFAULT_START_TIMEOUT_MS: u64 = crate::lifecycle::START_TIMEOUT.as_millis() as u64;

/// Why a handshake failed. Every variant is a connection error (HS-4, HS-5, HS-6, HS-9).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The announcement's first byte is not 0x00.
    #[error("HS-5: the announcement starts with control byte {byte:#04x}, not 0x00")]
    BadControlByte {
        /// The byte received.
        byte: u8,
    },
    /// The announcement ends before its varint does.
    #[error(
        "HS-5: the announcement is too short ({len} byte(s)): it needs 0x00 and a complete varint"
    )]
    ShortPayload {
        /// The payload's length.
        len: usize,
    },
    /// The hooks stream id varint overflows 64 bits.
    #[error("HS-5: the hooks stream id varint overflows 64 bits")]
    VarintOverflow,
    /// Bytes follow the varint.
    #[error("HS-5: {extra} byte(s) follow the hooks stream id in the announcement")]
    TrailingBytes {
        /// How many bytes follow the varint.
        extra: usize,
    },
    /// The hooks stream id is not a positive even number.
    #[error("HS-9: the announced hooks stream id {value} is not a positive even number")]
    InvalidHooksStreamId {
        /// The announced value.
        value: i64,
    },
    /// The start timeout passed before the announcement arrived.
    #[error("HS-4: no announcement within the start timeout")]
    Timeout,
    /// The input ended before the announcement arrived.
    #[error("HS-6: the plugin's output ended before its announcement")]
    EndOfInput,
}

impl HandshakeError {
    /// A stable, machine-readable name for the error, as used by `spec/vectors/`.
    pub fn kind(&self) -> &'static str {
        match self {
            HandshakeError::BadControlByte { .. } => "bad_control_byte",
            HandshakeError::ShortPayload { .. } => "short_payload",
            HandshakeError::VarintOverflow => "varint_overflow",
            HandshakeError::TrailingBytes { .. } => "trailing_bytes",
            HandshakeError::InvalidHooksStreamId { .. } => "invalid_hooks_stream_id",
            HandshakeError::Timeout => "timeout",
            HandshakeError::EndOfInput => "end_of_input",
        }
    }

    /// The id of the requirement this error enforces.
    pub fn requirement(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => crate::req!("HS-4"),
            HandshakeError::EndOfInput => crate::req!("HS-6"),
            HandshakeError::InvalidHooksStreamId { .. } => crate::req!("HS-9"),
            _ => crate::req!("HS-5"),
        }
    }
}

/// The announcement payload for `hooks` (HS-1): 0x00 then the varint of the id.
///
/// Returns `None` when `hooks` is not an id the plugin may allocate (a positive even number).
pub fn announcement(hooks: StreamId) -> Option<Vec<u8>> {
    if !hooks.is_plugin_allocated() {
        return None;
    }
    let mut out = Vec::with_capacity(MAX_ANNOUNCEMENT_LEN);
    out.push(CONTROL_BYTE);
    varint::encode_to_vec(hooks.get(), &mut out);
    Some(out)
}

/// Appends the whole announcement frame for `hooks` (on stream 0) to `out`; returns `false`
/// and writes nothing when `hooks` is not a positive even id.
pub fn encode_announcement_frame(hooks: StreamId, out: &mut Vec<u8>) -> bool {
    match announcement(hooks) {
        Some(payload) => frame::encode_frame(StreamId::CONTROL, &payload, out).is_ok(),
        None => false,
    }
}

/// Checks the payload of the first stream-0 frame as HS-5 and HS-9 require, returning the hooks
/// stream id. The checks run in a fixed order: control byte, varint, trailing bytes, id.
pub fn parse_announcement(payload: &[u8]) -> Result<StreamId, HandshakeError> {
    let Some((&first, rest)) = payload.split_first() else {
        return Err(HandshakeError::ShortPayload { len: 0 });
    };
    if first != CONTROL_BYTE {
        return Err(HandshakeError::BadControlByte { byte: first });
    }
    let (value, n) = match varint::decode(rest) {
        Ok(v) => v,
        Err(VarintError::Incomplete { .. }) => {
            return Err(HandshakeError::ShortPayload { len: payload.len() })
        }
        Err(VarintError::Overflow { .. }) => return Err(HandshakeError::VarintOverflow),
    };
    if n < rest.len() {
        return Err(HandshakeError::TrailingBytes {
            extra: rest.len() - n,
        });
    }
    match StreamId::new(value) {
        Some(id) if id.is_plugin_allocated() => Ok(id),
        _ => Err(HandshakeError::InvalidHooksStreamId { value }),
    }
}

/// The host's handshake states (`spec/04-handshake.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandshakeState {
    /// Waiting for the announcement.
    Awaiting,
    /// The announcement arrived; the hooks stream is known.
    Ready {
        /// The plugin's hooks stream.
        hooks: StreamId,
    },
    /// The handshake failed; the connection is to be ended.
    Failed(HandshakeError),
}

impl fmt::Display for HandshakeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeState::Awaiting => f.write_str("awaiting announcement"),
            HandshakeState::Ready { hooks } => write!(f, "ready (hooks stream {hooks})"),
            HandshakeState::Failed(e) => write!(f, "failed: {e}"),
        }
    }
}

/// What the host does with a stream-0 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAction {
    /// The announcement was valid: connect this hooks stream (H1).
    ConnectHooks(StreamId),
    /// A stream-0 frame after the handshake: discard it (H6, HS-8).
    Discard,
}

/// The host's side of the handshake as a state machine, one row per line of the table in
/// `spec/04-handshake.md`.
#[derive(Debug, Clone)]
pub struct HostHandshake {
    state: HandshakeState,
}

impl Default for HostHandshake {
    fn default() -> Self {
        HostHandshake::new()
    }
}

impl HostHandshake {
    /// A handshake waiting for the announcement.
    pub fn new() -> HostHandshake {
        HostHandshake {
            state: HandshakeState::Awaiting,
        }
    }

    /// The current state.
    pub fn state(&self) -> &HandshakeState {
        &self.state
    }

    /// The hooks stream, once the announcement has arrived.
    pub fn hooks(&self) -> Option<StreamId> {
        match self.state {
            HandshakeState::Ready { hooks } => Some(hooks),
            _ => None,
        }
    }

    /// A whole stream-0 frame arrived with this payload (rows H1, H2, H6).
    pub fn on_control_frame(&mut self, payload: &[u8]) -> Result<ControlAction, HandshakeError> {
        self.on_control_frame_of_len(payload, payload.len())
    }

    /// Like [`HostHandshake::on_control_frame`] for a frame of `len` bytes of which only a
    /// prefix `kept` was stored (all of it, or at least [`MAX_ANNOUNCEMENT_LEN`] + 1 bytes, which
    /// is enough to tell every error apart).
    pub fn on_control_frame_of_len(
        &mut self,
        kept: &[u8],
        len: usize,
    ) -> Result<ControlAction, HandshakeError> {
        match &self.state {
            HandshakeState::Awaiting => {
                let dropped = len.saturating_sub(kept.len());
                let result = match parse_announcement(kept) {
                    Err(HandshakeError::TrailingBytes { extra }) => {
                        Err(HandshakeError::TrailingBytes {
                            extra: extra + dropped,
                        })
                    }
                    Ok(_) if dropped > 0 => Err(HandshakeError::TrailingBytes { extra: dropped }),
                    other => other,
                };
                match result {
                    Ok(hooks) => {
                        self.state = HandshakeState::Ready { hooks };
                        Ok(ControlAction::ConnectHooks(hooks))
                    }
                    Err(e) => {
                        self.state = HandshakeState::Failed(e.clone());
                        Err(e)
                    }
                }
            }
            HandshakeState::Ready { .. } => Ok(ControlAction::Discard),
            HandshakeState::Failed(e) => Err(e.clone()),
        }
    }

    /// The start timeout passed (row H4; after the handshake it has no effect).
    pub fn on_timeout(&mut self) -> Result<(), HandshakeError> {
        match &self.state {
            HandshakeState::Awaiting => {
                self.state = HandshakeState::Failed(HandshakeError::Timeout);
                Err(HandshakeError::Timeout)
            }
            HandshakeState::Ready { .. } => Ok(()),
            HandshakeState::Failed(e) => Err(e.clone()),
        }
    }

    /// The input ended (rows H5, H7; after the handshake it is the connection's end, not a
    /// handshake matter).
    pub fn on_end_of_input(&mut self) -> Result<(), HandshakeError> {
        match &self.state {
            HandshakeState::Awaiting => {
                self.state = HandshakeState::Failed(HandshakeError::EndOfInput);
                Err(HandshakeError::EndOfInput)
            }
            HandshakeState::Ready { .. } => Ok(()),
            HandshakeState::Failed(e) => Err(e.clone()),
        }
    }
}
