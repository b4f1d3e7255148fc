//! One endpoint's stream table: the multiplexer as a sans-I/O state machine
//! (`spec/03-streams.md`, and the host's handshake of `spec/04-handshake.md`).
//!
//! A [`StreamTable`] is created for one [`Role`]. The runtime feeds it the bytes it reads with
//! [`StreamTable::receive`] (any split, FRAME-12) and end of input with
//! [`StreamTable::end_of_input`]; it takes [`Event`]s out with [`StreamTable::poll_event`] and
//! the bytes to write with [`StreamTable::take_transmit`] (whole frames only, so each write
//! carries whole frames, FRAME-10, FRAME-11). Applications open, connect, write, read and close
//! streams through the table's methods.
//!
//! What it enforces:
//! - id allocation with the role's parity, never reusing an id (STREAM-2, STREAM-3);
//! - data for streams not connected, closed, or closed by the peer is discarded with a reason
//!   and never stops the connection (STREAM-5, STREAM-9, STREAM-14);
//! - a zero-length frame closes a stream: the reader sees end-of-stream after the data before it
//!   (STREAM-7, STREAM-8, STREAM-10);
//! - when the connection ends, reads fail with an error unless the peer had closed the stream,
//!   and writes fail (STREAM-12);
//! - limits: open streams, unread bytes per stream (STREAM-13; a stream error, STREAM-15), payload length
//!   (a connection error, FRAME-8);
//! - stream 0: the host parses the announcement from the first stream-0 frame and connects the
//!   hooks stream (HS-5, HS-7); later stream-0 frames, and all of them on the plugin, are
//!   discarded (HS-8).
//!
//! Events are emitted when a frame is complete, so any split of the same input gives the same
//! events, and the payload of a frame that never completes is never delivered (FRAME-14).
//!
//! The rows of the state table in `spec/03-streams.md` (S1..S21) are named in the comments of
//! the methods that implement them.
//!
//! Its length (about 1,000 lines) is one state machine, the table of chapter 03, with its few
//! public types: its rows read best together, and a cut between the types and the machine
//! would leave the machine as long.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;

use thiserror::Error;

use crate::frame::{
    self, Chunk, FrameDecoder, FrameError, PayloadLimitError, StreamId, MIN_MAX_PAYLOAD,
};
use crate::handshake::{self, ControlAction, HandshakeError, HostHandshake};

/// Which side of the connection a table is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The host: allocates odd stream ids, reads the handshake.
    Host,
    /// The plugin: allocates even stream ids, sends the handshake.
    Plugin,
}

impl Role {
    /// The first stream id this role allocates (STREAM-2).
    pub const fn first_stream_id(self) -> StreamId {
        match self {
            Role::Host => StreamId::new(1),
            Role::Plugin => StreamId::new(2),
        }
        .unwrap()
    }

    /// Whether this role allocates `id` (STREAM-2).
    pub const fn allocates(self, id: StreamId) -> bool {
        match self {
            Role::Host => id.is_host_allocated(),
            Role::Plugin => id.is_plugin_allocated(),
        }
    }

    /// The other side.
    pub const fn peer(self) -> Role {
        match self {
            Role::Host => Role::Plugin,
            Role::Plugin => Role::Host,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Host => "host",
            Role::Plugin => "plugin",
        })
    }
}

/// Every receiver can buffer at least this many unread bytes per stream (MIN_STREAM_BUFFER,
/// STREAM-13): 8 MiB, so that a gob message of the guaranteed size being assembled (at most
/// GOB_MIN_MAX_MESSAGE, 4 MiB, and its length) and the frame that completes it (at most
/// MIN_MAX_PAYLOAD, 1 MiB) always fit (spec 03 section 3.7, RPC-19).
pub const MIN_STREAM_BUFFER: usize = 8 << 20;

/// The table's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The longest payload accepted (FRAME-7, FRAME-8); default [`MIN_MAX_PAYLOAD`].
    pub max_payload: usize,
    /// The longest payload sent; at most [`MIN_MAX_PAYLOAD`] (FRAME-9), which is the default.
    pub max_send_payload: usize,
    /// Unread bytes a stream may hold, including a frame being received (STREAM-13); at least
    /// [`MIN_STREAM_BUFFER`], which is the default.
    pub stream_buffer: usize,
    /// Streams that may be open at once (opened or connected, not yet closed locally); default
    /// 1024.
    pub max_streams: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_payload: MIN_MAX_PAYLOAD,
            max_send_payload: MIN_MAX_PAYLOAD,
            stream_buffer: MIN_STREAM_BUFFER,
            max_streams: 1024,
        }
    }
}

/// Limits that break the spec's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LimitsError {
    /// The receive payload limit is out of range.
    #[error(transparent)]
    MaxPayload(#[from] PayloadLimitError),
    /// The send payload limit is 0 or above [`MIN_MAX_PAYLOAD`].
    #[error("FRAME-9: the send payload limit must lie between 1 and {max} bytes; {requested} was requested", max = MIN_MAX_PAYLOAD)]
    MaxSendPayload {
        /// The limit asked for.
        requested: usize,
    },
    /// The stream buffer is below [`MIN_STREAM_BUFFER`].
    #[error("STREAM-13: a stream buffer must hold at least {min} bytes; {requested} was requested", min = MIN_STREAM_BUFFER)]
    StreamBuffer {
        /// The limit asked for.
        requested: usize,
    },
    /// No stream could ever be open.
    #[error("at least one stream must be allowed to be open")]
    MaxStreams,
}

impl Limits {
    /// The smallest limits the spec allows a receiver: frames of [`MIN_MAX_PAYLOAD`] bytes
    /// (FRAME-7) and [`MIN_STREAM_BUFFER`] unread bytes per stream (STREAM-13). The defaults are
    /// these minimums too (with 1024 streams open at once).
    pub const fn minimum() -> Limits {
        Limits {
            max_payload: MIN_MAX_PAYLOAD,
            max_send_payload: MIN_MAX_PAYLOAD,
            stream_buffer: MIN_STREAM_BUFFER,
            max_streams: 1024,
        }
    }

    /// Checks the limits against the spec's bounds.
    pub fn validate(&self) -> Result<(), LimitsError> {
        frame::check_payload_limit(self.max_payload)?;
        if self.max_send_payload == 0 || self.max_send_payload > MIN_MAX_PAYLOAD {
            return Err(LimitsError::MaxSendPayload {
                requested: self.max_send_payload,
            });
        }
        if self.stream_buffer < MIN_STREAM_BUFFER {
            return Err(LimitsError::StreamBuffer {
                requested: self.stream_buffer,
            });
        }
        if self.max_streams == 0 {
            return Err(LimitsError::MaxStreams);
        }
        Ok(())
    }
}

/// A stream's state as this endpoint sees it (`spec/03-streams.md`). Streams absent from the
/// table are idle: never opened or connected, or closed by both sides and forgotten.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamState {
    /// Both directions open.
    Open,
    /// The peer closed the stream; the reader sees end-of-stream after the buffered data.
    RemoteClosed,
    /// This endpoint closed the stream; waiting for the peer's close.
    LocalClosed,
    /// The stream's buffer overflowed (STREAM-15): it was closed and its reader fails.
    Reset,
}

/// Why a frame was discarded. Discarding is never a connection error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscardReason {
    /// The stream was never opened or connected here, or was closed by both sides (STREAM-5).
    NotConnected,
    /// This endpoint had closed the stream (STREAM-9).
    ClosedLocally,
    /// The peer had closed the stream (STREAM-9).
    ClosedByPeer,
    /// The stream was reset after its buffer overflowed (STREAM-15).
    StreamReset,
    /// A stream-0 frame after the handshake, on the host (HS-8).
    ControlAfterHandshake,
    /// A stream-0 frame from the host, on the plugin (HS-3, HS-8).
    ControlFromHost,
}

impl DiscardReason {
    /// A stable, machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            DiscardReason::NotConnected => "not_connected",
            DiscardReason::ClosedLocally => "closed_locally",
            DiscardReason::ClosedByPeer => "closed_by_peer",
            DiscardReason::StreamReset => "stream_reset",
            DiscardReason::ControlAfterHandshake => "control_after_handshake",
            DiscardReason::ControlFromHost => "control_from_host",
        }
    }
}

/// What the table reports after input.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The host received a valid announcement and connected the hooks stream (HS-7).
    HandshakeComplete {
        /// The plugin's hooks stream.
        hooks: StreamId,
    },
    /// A frame's payload was added to a stream's unread data.
    Data {
        /// The stream.
        stream_id: StreamId,
        /// The number of bytes added.
        len: usize,
    },
    /// The peer closed the stream; its reader sees end-of-stream after the data before
    /// (STREAM-10).
    Finished {
        /// The stream.
        stream_id: StreamId,
    },
    /// The stream's unread data would have exceeded the buffer limit: it was reset and closed
    /// (STREAM-15).
    Reset {
        /// The stream.
        stream_id: StreamId,
        /// Unread bytes dropped, including the offending frame's payload.
        dropped: usize,
    },
    /// A frame was discarded.
    Discarded {
        /// The frame's stream.
        stream_id: StreamId,
        /// Its payload length.
        len: usize,
        /// Why.
        reason: DiscardReason,
    },
}

/// A connection error: the connection ends (FRAME-14, HS-5).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    /// The peer sent a malformed frame.
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// The handshake failed.
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
}

impl ConnectionError {
    /// A stable, machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectionError::Frame(e) => e.kind(),
            ConnectionError::Handshake(e) => e.kind(),
        }
    }

    /// The id of the requirement the error enforces.
    pub fn requirement(&self) -> &'static str {
        match self {
            ConnectionError::Frame(e) => e.requirement(),
            ConnectionError::Handshake(e) => e.requirement(),
        }
    }
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConnectionEnd {
    /// The peer's output ended at a frame boundary (TRANS-7).
    PeerClosed,
    /// This endpoint closed the connection.
    LocalClose,
    /// A connection error.
    Error(ConnectionError),
    /// Reading or writing a pipe failed, as the runtime reported (TRANS-7).
    Transport(String),
}

impl fmt::Display for ConnectionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionEnd::PeerClosed => f.write_str("the peer closed the connection"),
            ConnectionEnd::LocalClose => f.write_str("the connection was closed locally"),
            ConnectionEnd::Error(e) => write!(f, "connection error: {e}"),
            ConnectionEnd::Transport(what) => write!(f, "the transport failed: {what}"),
        }
    }
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The connection has ended (STREAM-12). Distinct from end-of-stream.
    #[error("STREAM-12: the connection has ended: {0}")]
    ConnectionEnded(ConnectionEnd),
    /// The stream is not in the table.
    #[error("stream {0} is not open here")]
    UnknownStream(StreamId),
    /// The stream was closed here (STREAM-8).
    #[error("STREAM-8: stream {0} was closed by this endpoint")]
    ClosedLocally(StreamId),
    /// The peer closed the stream; data sent now would be discarded (STREAM-9).
    #[error("STREAM-9: stream {0} was closed by the peer")]
    ClosedByPeer(StreamId),
    /// The stream's unread data exceeded the buffer limit (STREAM-15).
    #[error("STREAM-15: stream {stream_id} was reset: more than {limit} unread bytes")]
    BufferOverflow {
        /// The stream.
        stream_id: StreamId,
        /// The buffer limit.
        limit: usize,
    },
    /// Connecting a stream whose id this endpoint allocates, or stream 0 (STREAM-2).
    #[error("STREAM-2: stream {id} cannot be connected by the {role}: the {role} allocates it itself or it is stream 0")]
    WrongParity {
        /// The id.
        id: StreamId,
        /// This endpoint's role.
        role: Role,
    },
    /// The stream is already in the table.
    #[error("stream {0} is already open here")]
    AlreadyOpen(StreamId),
    /// The open-stream limit is reached.
    #[error("{limit} streams are already open here")]
    TooManyStreams {
        /// The limit.
        limit: usize,
    },
    /// Every id of this role's parity has been used (STREAM-3).
    #[error("STREAM-3: every stream id of this endpoint's parity has been used")]
    IdsExhausted,
    /// The plugin has already sent its announcement, or the host tried to (HS-1, HS-3).
    #[error("HS-1: only the plugin announces, and only once")]
    AnnouncementNotAllowed,
}

/// The outcome of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// This many bytes were copied.
    Data(usize),
    /// The peer closed the stream and every byte before its close has been read (STREAM-10).
    Eof,
    /// Nothing to read yet.
    Empty,
}

#[derive(Debug, Default)]
struct RecvBuf {
    bytes: Vec<u8>,
    /// Bytes before `start` have been read.
    start: usize,
    /// Bytes from `readable` on belong to a frame still being received.
    readable: usize,
}

impl RecvBuf {
    fn unread(&self) -> usize {
        self.bytes.len() - self.start
    }

    fn readable_len(&self) -> usize {
        self.readable - self.start
    }

    fn read(&mut self, out: &mut [u8]) -> usize {
        let n = self.readable_len().min(out.len());
        out[..n].copy_from_slice(&self.bytes[self.start..self.start + n]);
        self.start += n;
        if self.start == self.bytes.len() {
            self.bytes.clear();
            self.start = 0;
            self.readable = 0;
        }
        n
    }

    /// Appends received bytes, first dropping the read prefix when it is at least half of the
    /// buffer (so each byte is moved at most once on average).
    fn append(&mut self, data: &[u8]) {
        if self.start > 0 && self.start * 2 >= self.bytes.len() {
            self.bytes.drain(..self.start);
            self.readable -= self.start;
            self.start = 0;
        }
        self.bytes.extend_from_slice(data);
    }

    fn clear(&mut self) -> usize {
        let n = self.unread();
        *self = RecvBuf::default();
        n
    }
}

#[derive(Debug)]
struct Stream {
    state: StreamState,
    recv: RecvBuf,
    /// Tells a stream from an earlier one with the same id, so that the rest of a frame that
    /// started before a close never reaches a stream connected again under that id.
    incarnation: u64,
}

/// Where the payload of the frame being received goes.
#[derive(Debug, Clone, Copy)]
enum Target {
    Deliver,
    Discard(DiscardReason),
    Reset,
    Control,
}

#[derive(Debug, Clone, Copy)]
struct Current {
    stream_id: StreamId,
    len: usize,
    target: Target,
    /// The incarnation of the stream the payload is delivered to.
    incarnation: u64,
}

/// One endpoint's view of the multiplexer (see the module documentation).
#[derive(Debug)]
pub struct StreamTable {
    role: Role,
    limits: Limits,
    decoder: FrameDecoder,
    /// The next id to allocate; `None` once the parity's ids are used up.
    next_id: Option<StreamId>,
    streams: BTreeMap<StreamId, Stream>,
    /// Streams closed here and awaiting the peer's close, oldest first; forgotten beyond
    /// `max_streams` of them (a peer that never closes cannot grow the table).
    closing: VecDeque<StreamId>,
    /// Open (not closed locally) streams, for the limit.
    open_count: usize,
    /// The incarnation of the last stream registered.
    incarnations: u64,
    current: Option<Current>,
    /// The kept prefix of a stream-0 frame on the host before the handshake.
    control: Vec<u8>,
    handshake: Option<HostHandshake>,
    announced: bool,
    transmit: Vec<u8>,
    events: VecDeque<Event>,
    ended: Option<ConnectionEnd>,
}

impl StreamTable {
    /// A table for `role` with the default [`Limits`].
    pub fn new(role: Role) -> StreamTable {
        StreamTable::with_limits(role, Limits::default()).expect("the default limits are valid")
    }

    /// A table for `role` with `limits`, checked against the spec's bounds.
    pub fn with_limits(role: Role, limits: Limits) -> Result<StreamTable, LimitsError> {
        limits.validate()?;
        Ok(StreamTable {
            role,
            limits,
            decoder: FrameDecoder::with_max_payload(limits.max_payload)?,
            next_id: Some(role.first_stream_id()),
            streams: BTreeMap::new(),
            closing: VecDeque::new(),
            open_count: 0,
            incarnations: 0,
            current: None,
            control: Vec::new(),
            handshake: (role == Role::Host).then(HostHandshake::new),
            announced: false,
            transmit: Vec::new(),
            events: VecDeque::new(),
            ended: None,
        })
    }

    /// This table's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// This table's limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How the connection ended, if it has.
    pub fn ended(&self) -> Option<&ConnectionEnd> {
        self.ended.as_ref()
    }

    /// The host's handshake state (`None` in the plugin role).
    pub fn handshake(&self) -> Option<&HostHandshake> {
        self.handshake.as_ref()
    }

    /// A stream's state, or `None` when it is idle (not in the table).
    pub fn state(&self, id: StreamId) -> Option<StreamState> {
        self.streams.get(&id).map(|s| s.state)
    }

    /// The ids in the table, in order.
    pub fn stream_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().copied()
    }

    /// Bytes a read on `id` can return now.
    pub fn readable_len(&self, id: StreamId) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv.readable_len())
    }

    /// Unread bytes held for `id`, including a frame still being received.
    pub fn buffered_len(&self, id: StreamId) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv.unread())
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether whole frames are waiting to be written.
    pub fn has_transmit(&self) -> bool {
        !self.transmit.is_empty()
    }

    /// The bytes waiting to be written: whole frames only.
    pub fn pending_transmit(&self) -> &[u8] {
        &self.transmit
    }

    /// Moves the bytes waiting to be written into `out`, which is cleared first (its allocation
    /// is reused for the next batch).
    pub fn take_transmit(&mut self, out: &mut Vec<u8>) {
        out.clear();
        std::mem::swap(out, &mut self.transmit);
    }

    fn check_live(&self) -> Result<(), StreamError> {
        match &self.ended {
            Some(end) => Err(StreamError::ConnectionEnded(end.clone())),
            None => Ok(()),
        }
    }

    fn register(&mut self, id: StreamId) -> Result<(), StreamError> {
        if self.open_count >= self.limits.max_streams {
            return Err(StreamError::TooManyStreams {
                limit: self.limits.max_streams,
            });
        }
        self.insert_open(id);
        Ok(())
    }

    fn insert_open(&mut self, id: StreamId) {
        self.incarnations += 1;
        self.streams.insert(
            id,
            Stream {
                state: StreamState::Open,
                recv: RecvBuf::default(),
                incarnation: self.incarnations,
            },
        );
        self.open_count += 1;
    }

    /// Opens a stream with the next id of this role's parity (row S1; STREAM-2, STREAM-3). The
    /// stream can receive at once (STREAM-4); by STREAM-6 its opener waits for the peer to send
    /// first.
    pub fn open(&mut self) -> Result<StreamId, StreamError> {
        self.check_live()?;
        let id = self.next_id.ok_or(StreamError::IdsExhausted)?;
        self.register(id)?;
        self.next_id = id.get().checked_add(2).and_then(StreamId::new);
        Ok(id)
    }

    /// Connects a stream the peer opened and announced (row S2).
    pub fn connect(&mut self, id: StreamId) -> Result<(), StreamError> {
        self.check_live()?;
        if id.is_control() || self.role.allocates(id) {
            return Err(StreamError::WrongParity {
                id,
                role: self.role,
            });
        }
        if self.streams.contains_key(&id) {
            return Err(StreamError::AlreadyOpen(id));
        }
        self.register(id)
    }

    /// The plugin's side of the handshake: opens the hooks stream and queues the announcement
    /// as the first frame (HS-1). Call it before anything else is sent.
    pub fn announce(&mut self) -> Result<StreamId, StreamError> {
        self.check_live()?;
        if self.role != Role::Plugin || self.announced {
            return Err(StreamError::AnnouncementNotAllowed);
        }
        let hooks = self.open()?;
        let queued = handshake::encode_announcement_frame(hooks, &mut self.transmit);
        debug_assert!(queued, "the plugin allocates positive even ids");
        self.announced = true;
        Ok(hooks)
    }

    /// Queues `data` on stream `id` as frames of at most `max_send_payload` bytes (rows S7, S11,
    /// S15, S20;
    /// FRAME-9). Empty data queues nothing (STREAM-7).
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<(), StreamError> {
        self.check_live()?;
        match self.streams.get(&id).map(|s| s.state) {
            Some(StreamState::Open) => {
                frame::encode_data(id, data, self.limits.max_send_payload, &mut self.transmit);
                Ok(())
            }
            // S11
            Some(StreamState::RemoteClosed) => Err(StreamError::ClosedByPeer(id)),
            // S15
            Some(StreamState::LocalClosed) => Err(StreamError::ClosedLocally(id)),
            Some(StreamState::Reset) => Err(StreamError::BufferOverflow {
                stream_id: id,
                limit: self.limits.stream_buffer,
            }),
            None => Err(StreamError::UnknownStream(id)),
        }
    }

    /// Copies unread data of stream `id` into `out` (rows S5, S6, S17, S20; STREAM-10,
    /// STREAM-12).
    pub fn read(&mut self, id: StreamId, out: &mut [u8]) -> Result<Read, StreamError> {
        let limit = self.limits.stream_buffer;
        let Some(stream) = self.streams.get_mut(&id) else {
            self.check_live()?;
            return Err(StreamError::UnknownStream(id));
        };
        match stream.state {
            StreamState::Reset => {
                return Err(StreamError::BufferOverflow {
                    stream_id: id,
                    limit,
                })
            }
            StreamState::LocalClosed => return Err(StreamError::ClosedLocally(id)),
            StreamState::Open | StreamState::RemoteClosed => {}
        }
        if stream.recv.readable_len() > 0 {
            if out.is_empty() {
                return Ok(Read::Data(0));
            }
            return Ok(Read::Data(stream.recv.read(out)));
        }
        if stream.state == StreamState::RemoteClosed {
            return Ok(Read::Eof);
        }
        self.check_live()?;
        Ok(Read::Empty)
    }

    /// Closes stream `id` (rows S8, S12, S16, S21): queues one zero-length frame unless the stream
    /// was already closed here (STREAM-8) and drops its unread data. Closing twice is a no-op.
    pub fn close(&mut self, id: StreamId) -> Result<(), StreamError> {
        let live = self.ended.is_none();
        let Some(stream) = self.streams.get_mut(&id) else {
            return Err(StreamError::UnknownStream(id));
        };
        match stream.state {
            StreamState::LocalClosed | StreamState::Reset => {
                if !live {
                    self.streams.remove(&id);
                }
                return Ok(());
            }
            StreamState::Open | StreamState::RemoteClosed => {}
        }
        self.open_count -= 1;
        if !live || stream.state == StreamState::RemoteClosed {
            self.streams.remove(&id);
        } else {
            stream.state = StreamState::LocalClosed;
            stream.recv.clear();
            self.remember_closing(id);
        }
        if live {
            // Cannot fail: an empty payload.
            let _ = frame::encode_frame(id, &[], &mut self.transmit);
        }
        Ok(())
    }

    fn remember_closing(&mut self, id: StreamId) {
        self.closing.push_back(id);
        while self.closing.len() > self.limits.max_streams {
            if let Some(old) = self.closing.pop_front() {
                if matches!(
                    self.streams.get(&old).map(|s| s.state),
                    Some(StreamState::LocalClosed | StreamState::Reset)
                ) {
                    self.streams.remove(&old);
                }
            }
        }
    }

    /// Ends the connection from this side (row S17): every stream fails from now on (STREAM-12) and
    /// nothing more is queued. The runtime then closes both pipes (TRANS-8).
    pub fn close_connection(&mut self) {
        if self.ended.is_none() {
            self.ended = Some(ConnectionEnd::LocalClose);
            self.transmit.clear();
        }
    }

    /// The peer closed the pipe this endpoint writes to (a write failed with `EPIPE`): like end
    /// of input, the peer has closed the connection (TRANS-7); nothing more is sent.
    pub fn peer_gone(&mut self) {
        if self.ended.is_none() {
            self.ended = Some(ConnectionEnd::PeerClosed);
            self.transmit.clear();
        }
    }

    /// The runtime could not read or write a pipe (TRANS-7): the connection ends like a local
    /// close (nothing more is sent), with `what` as its cause.
    pub fn transport_failed(&mut self, what: impl Into<String>) {
        if self.ended.is_none() {
            self.ended = Some(ConnectionEnd::Transport(what.into()));
            self.transmit.clear();
        }
    }

    /// The host's start timeout passed (HS-4): a connection error unless the handshake is
    /// complete.
    pub fn on_start_timeout(&mut self) -> Result<(), ConnectionError> {
        match &self.ended {
            Some(ConnectionEnd::Error(e)) => return Err(e.clone()),
            Some(_) => return Ok(()),
            None => {}
        }
        if let Some(hs) = self.handshake.as_mut() {
            if let Err(e) = hs.on_timeout() {
                return Err(self.fail(e.into()));
            }
        }
        Ok(())
    }

    fn fail(&mut self, e: ConnectionError) -> ConnectionError {
        if self.ended.is_none() {
            self.ended = Some(ConnectionEnd::Error(e.clone()));
        }
        self.current = None;
        e
    }

    /// Reports end of input (TRANS-7): inside a frame it is a connection error (FRAME-13); on the
    /// host before the announcement, a failed start (HS-6); otherwise the peer closed.
    pub fn end_of_input(&mut self) -> Result<(), ConnectionError> {
        match &self.ended {
            Some(ConnectionEnd::Error(e)) => return Err(e.clone()),
            Some(_) => return Ok(()),
            None => {}
        }
        if let Err(e) = self.decoder.finish() {
            return Err(self.fail(e.into()));
        }
        if let Some(hs) = self.handshake.as_mut() {
            if let Err(e) = hs.on_end_of_input() {
                return Err(self.fail(e.into()));
            }
        }
        if self.ended.is_none() {
            self.ended = Some(ConnectionEnd::PeerClosed);
        }
        Ok(())
    }

    /// Feeds bytes read from the peer. On a connection error the table stops processing input
    /// (FRAME-14) and every later call returns the same error; the events of frames completed
    /// before the error remain available. Input after the connection ended otherwise (end of
    /// input, local close) is ignored.
    pub fn receive(&mut self, mut input: &[u8]) -> Result<(), ConnectionError> {
        match &self.ended {
            Some(ConnectionEnd::Error(e)) => return Err(e.clone()),
            // Input after the end is not processed.
            Some(_) => return Ok(()),
            None => {}
        }
        loop {
            let chunk = match self.decoder.decode(&mut input) {
                Ok(Some(c)) => c,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e.into())),
            };
            match chunk {
                Chunk::Header(h) => {
                    let target = self.target_for(h.stream_id, h.len);
                    let incarnation = self.streams.get(&h.stream_id).map_or(0, |s| s.incarnation);
                    let cur = Current {
                        stream_id: h.stream_id,
                        len: h.len,
                        target,
                        incarnation,
                    };
                    if h.len == 0 {
                        self.complete(cur)?;
                    } else {
                        self.current = Some(cur);
                    }
                }
                Chunk::Payload { data, last, .. } => {
                    let Some(cur) = self.current else { continue };
                    match cur.target {
                        Target::Deliver => {
                            if let Some(s) = self.streams.get_mut(&cur.stream_id) {
                                if s.state == StreamState::Open && s.incarnation == cur.incarnation
                                {
                                    s.recv.append(data);
                                }
                            }
                        }
                        Target::Control => {
                            let keep = (handshake::MAX_ANNOUNCEMENT_LEN + 1)
                                .saturating_sub(self.control.len());
                            self.control
                                .extend_from_slice(&data[..keep.min(data.len())]);
                        }
                        Target::Discard(_) | Target::Reset => {}
                    }
                    if last {
                        self.current = None;
                        self.complete(cur)?;
                    }
                }
            }
        }
    }

    /// Decides, from the header alone, where a frame's payload goes.
    fn target_for(&mut self, id: StreamId, len: usize) -> Target {
        if id.is_control() {
            return match self.handshake.as_ref().map(|h| h.hooks().is_some()) {
                Some(false) => {
                    self.control.clear();
                    Target::Control
                }
                Some(true) => Target::Discard(DiscardReason::ControlAfterHandshake),
                None => Target::Discard(DiscardReason::ControlFromHost),
            };
        }
        let limit = self.limits.stream_buffer;
        let Some(stream) = self.streams.get_mut(&id) else {
            // S3, S4: never connected here. Ids of our own parity below the next one were ours
            // and have been closed by both sides.
            let ours_and_used =
                self.role.allocates(id) && self.next_id.is_none_or(|next| id < next);
            return Target::Discard(if ours_and_used {
                DiscardReason::ClosedLocally
            } else {
                DiscardReason::NotConnected
            });
        };
        match stream.state {
            StreamState::Open if len == 0 => Target::Deliver,
            StreamState::Open => {
                if stream.recv.unread() + len > limit {
                    // S5, on overflow: a stream error (STREAM-15), reported at once.
                    let dropped = stream.recv.clear() + len;
                    stream.state = StreamState::Reset;
                    self.open_count -= 1;
                    let _ = frame::encode_frame(id, &[], &mut self.transmit);
                    self.remember_closing(id);
                    self.events.push_back(Event::Reset {
                        stream_id: id,
                        dropped,
                    });
                    Target::Reset
                } else {
                    Target::Deliver
                }
            }
            // S14, S19: the peer's close of a stream closed here.
            StreamState::LocalClosed | StreamState::Reset if len == 0 => Target::Deliver,
            // S9, S10, S13, S18
            StreamState::RemoteClosed => Target::Discard(DiscardReason::ClosedByPeer),
            StreamState::LocalClosed => Target::Discard(DiscardReason::ClosedLocally),
            StreamState::Reset => Target::Discard(DiscardReason::StreamReset),
        }
    }

    /// Acts on a complete frame.
    fn complete(&mut self, cur: Current) -> Result<(), ConnectionError> {
        let Current {
            stream_id,
            len,
            target,
            ..
        } = cur;
        match target {
            Target::Control => {
                let kept = std::mem::take(&mut self.control);
                let hs = self
                    .handshake
                    .as_mut()
                    .expect("control frames are parsed on the host");
                match hs.on_control_frame_of_len(&kept, len) {
                    Ok(ControlAction::ConnectHooks(hooks)) => {
                        // HS-7: the hooks stream can receive at once. It is connected even when
                        // the open-stream limit is reached: without it the plugin is unusable.
                        if !self.streams.contains_key(&hooks) {
                            self.insert_open(hooks);
                        }
                        self.events.push_back(Event::HandshakeComplete { hooks });
                    }
                    Ok(ControlAction::Discard) => self.events.push_back(Event::Discarded {
                        stream_id,
                        len,
                        reason: DiscardReason::ControlAfterHandshake,
                    }),
                    Err(e) => return Err(self.fail(e.into())),
                }
            }
            Target::Discard(reason) => self.events.push_back(Event::Discarded {
                stream_id,
                len,
                reason,
            }),
            // Reported when the header arrived.
            Target::Reset => {}
            Target::Deliver => {
                let Some(stream) = self
                    .streams
                    .get_mut(&stream_id)
                    .filter(|s| s.incarnation == cur.incarnation)
                else {
                    // Closed and forgotten while the frame was arriving.
                    self.events.push_back(Event::Discarded {
                        stream_id,
                        len,
                        reason: DiscardReason::ClosedLocally,
                    });
                    return Ok(());
                };
                match stream.state {
                    StreamState::Open if len == 0 => {
                        // S6: the peer closed.
                        stream.state = StreamState::RemoteClosed;
                        self.events.push_back(Event::Finished { stream_id });
                    }
                    StreamState::Open => {
                        stream.recv.readable = stream.recv.bytes.len();
                        self.events.push_back(Event::Data { stream_id, len });
                    }
                    StreamState::LocalClosed | StreamState::Reset if len == 0 => {
                        // S14, S19: both sides closed: forget the stream.
                        self.streams.remove(&stream_id);
                    }
                    state => self.events.push_back(Event::Discarded {
                        stream_id,
                        len,
                        reason: match state {
                            StreamState::RemoteClosed => DiscardReason::ClosedByPeer,
                            StreamState::Reset => DiscardReason::StreamReset,
                            _ => DiscardReason::ClosedLocally,
                        },
                    }),
                }
            }
        }
        Ok(())
    }
}
