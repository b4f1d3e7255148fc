//! One direction of a connection, decoded and checked against the rules that bind its sender:
//! the observer the conformance harness runs on everything a peer writes, and the decoder behind
//! `rpcplugin-conformance inspect`.
//!
//! A [`Tracer`] is fed the bytes that one endpoint wrote to its output pipe, in any split
//! (FRAME-12), and produces [`Note`]s at byte offsets of that direction: every frame, the
//! announcement, closes, every RPC request and response on the data streams, the end, and every
//! [`Violation`] of a sender's rule it can see in one direction alone:
//!
//! - framing: malformed frames (FRAME-1, with the receiver's error: FRAME-4, FRAME-5, FRAME-6,
//!   FRAME-13 at a truncated end), header varints that are not minimal (FRAME-2), payloads longer
//!   than MIN_MAX_PAYLOAD (FRAME-9);
//! - handshake: a plugin's first frame is the announcement of an even hooks stream (HS-1,
//!   STREAM-2); the plugin sends nothing else on stream 0 (HS-2), the host nothing at all (HS-3);
//!   no zero-length frame on stream 0 (STREAM-1);
//! - streams: after the sender closed a stream, no data (STREAM-8) and no second zero-length frame
//!   (STREAM-7);
//! - RPC: on every data stream, the endpoint that opened it (its parity, STREAM-2) is the server
//!   and sends responses, the other endpoint is the client and sends requests (RPC-1); the
//!   messages are whole, well-formed gob (GOB-4 and the gob rules, via the decoder's errors; at
//!   most GOB_MIN_MAX_MESSAGE long, GOB-16) and
//!   net/rpc envelopes (RPC-2, RPC-3), with every gob uint in its minimal form (GOB-1); a
//!   client numbers its requests 0, 1, 2, ... (RPC-4); an error response has a struct body and
//!   a non-empty error (RPC-7).
//!
//! Rules that need both directions (a response for every request, RPC-5; parity of streams the
//! peer never opened; STREAM-6) are the harness's business: it sees both.

use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use crate::frame::{self, FrameError, StreamId, MAX_PAYLOAD_CEILING, MIN_MAX_PAYLOAD};
use crate::gob::{DecodeLimits, Decoder, Value, MIN_MAX_MESSAGE};
use crate::handshake::{parse_announcement, HandshakeError};
use crate::rpc::{Call, ClientCodec, RpcError, ServerCodec, API_SERVICE, HOOKS_SERVICE};
use crate::stream::Role;
use crate::varint;

/// A rule of the specification that the sender broke, at the offset of the [`Note`] carrying it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The requirement id, such as `FRAME-2`.
    pub requirement: &'static str,
    /// What the sender did.
    pub text: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.requirement, self.text)
    }
}

/// What a [`Tracer`] found at one offset.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// A whole frame: its stream, payload length and header length.
    Frame {
        /// The stream id.
        stream_id: StreamId,
        /// Payload bytes.
        len: usize,
        /// Header bytes (2 to 20).
        header: usize,
        /// The first payload bytes, in hex and ASCII.
        preview: String,
    },
    /// The plugin's announcement of its hooks stream (HS-1).
    Announcement {
        /// The hooks stream.
        hooks: StreamId,
    },
    /// A zero-length frame closing a data stream (STREAM-8).
    Close {
        /// The stream closed.
        stream_id: StreamId,
    },
    /// A request the sender made as the client of a stream.
    Request {
        /// The stream.
        stream_id: StreamId,
        /// Its `Seq`.
        seq: u64,
        /// `Service.Method`.
        service_method: String,
        /// The argument, shown.
        args: String,
    },
    /// A response the sender gave as the server of a stream.
    Response {
        /// The stream.
        stream_id: StreamId,
        /// The `Seq` it answers.
        seq: u64,
        /// `Service.Method`, echoed.
        service_method: String,
        /// The error text; empty for success.
        error: String,
        /// The reply, shown.
        body: String,
    },
    /// The clean end of this direction, at a frame boundary.
    End,
    /// A rule the sender broke.
    Violation(Violation),
}

impl fmt::Display for What {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            What::Frame {
                stream_id,
                len,
                header,
                preview,
            } => {
                let close = if *len == 0 && !stream_id.is_control() {
                    " (close)"
                } else {
                    ""
                };
                write!(
                    f,
                    "frame: stream {stream_id}, {len} byte(s){close}, header {header} byte(s): {preview}"
                )
            }
            What::Announcement { hooks } => write!(f, "announcement: hooks stream {hooks}"),
            What::Close { stream_id } => write!(f, "close of stream {stream_id}"),
            What::Request {
                stream_id,
                seq,
                service_method,
                args,
            } => write!(
                f,
                "request on stream {stream_id}: Seq {seq} {service_method}({args})"
            ),
            What::Response {
                stream_id,
                seq,
                service_method,
                error,
                body,
            } => {
                if error.is_empty() {
                    write!(
                        f,
                        "response on stream {stream_id}: Seq {seq} {service_method} -> {body}"
                    )
                } else {
                    write!(
                        f,
                        "response on stream {stream_id}: Seq {seq} {service_method} -> error {error:?}"
                    )
                }
            }
            What::End => f.write_str("end of output at a frame boundary"),
            What::Violation(v) => write!(f, "VIOLATION {v}"),
        }
    }
}

/// One finding of a [`Tracer`], at a byte offset of the direction it traces.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    /// The offset of the first byte of the frame (or, for [`What::End`], the end) it concerns.
    pub offset: u64,
    /// What was found.
    pub what: What,
}

/// The RPC side of one data stream as this sender uses it (RPC-1).
enum Rpc {
    /// The sender is the stream's client: it writes requests.
    Requests { codec: ServerCodec, next_seq: u64 },
    /// The sender is the stream's server: it writes responses.
    Responses { codec: ClientCodec<()> },
}

impl StreamTrace {
    fn non_minimal(&self) -> u64 {
        match &self.rpc {
            Rpc::Requests { codec, .. } => codec.non_minimal_uints(),
            Rpc::Responses { codec } => codec.non_minimal_uints(),
        }
    }
}

struct StreamTrace {
    /// The sender closed the stream.
    closed: bool,
    /// A gob or envelope error ended the RPC decoding of this stream.
    broken: bool,
    rpc: Rpc,
}

/// Decodes and checks one direction of a connection; see the module documentation.
pub struct Tracer {
    sender: Role,
    /// Bytes not yet decoded into whole frames.
    pending: Vec<u8>,
    /// The offset of `pending[0]`.
    offset: u64,
    frames: u64,
    /// A framing error stopped decoding.
    failed: bool,
    streams: BTreeMap<StreamId, StreamTrace>,
    violations: usize,
    /// The offset of the oversized frame already reported (FRAME-9).
    oversize_noted: Option<u64>,
}

impl fmt::Debug for Tracer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tracer")
            .field("sender", &self.sender)
            .field("offset", &self.offset)
            .field("frames", &self.frames)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer of the bytes that `sender` writes.
    pub fn new(sender: Role) -> Tracer {
        Tracer {
            sender,
            pending: Vec::new(),
            offset: 0,
            frames: 0,
            failed: false,
            streams: BTreeMap::new(),
            violations: 0,
            oversize_noted: None,
        }
    }

    /// The endpoint whose output this tracer reads.
    pub fn sender(&self) -> Role {
        self.sender
    }

    /// The bytes fed so far.
    pub fn position(&self) -> u64 {
        self.offset + self.pending.len() as u64
    }

    /// The whole frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// How many violations were reported so far.
    pub fn violations(&self) -> usize {
        self.violations
    }

    /// Whether a framing error stopped the decoding (later bytes are ignored).
    pub fn failed(&self) -> bool {
        self.failed
    }

    /// Feeds the next bytes of the direction and appends what they complete to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Note>) {
        if self.failed {
            return;
        }
        self.pending.extend_from_slice(bytes);
        let mut start = 0;
        loop {
            let at = self.offset + start as u64;
            let available = self.pending.len() - start;
            let (stream_id, len, header) =
                match frame::decode_header(&self.pending[start..], MAX_PAYLOAD_CEILING) {
                    Ok(Some((h, n))) => (h.stream_id, h.len, n),
                    Ok(None) => break,
                    Err(e) => {
                        self.framing_error(at, &e, out);
                        break;
                    }
                };
            if len > MIN_MAX_PAYLOAD && self.oversize_noted != Some(at) {
                // Reported once, as soon as the header is whole.
                self.oversize_noted = Some(at);
                self.violation(
                    at,
                    crate::req!("FRAME-9"),
                    format!(
                        "a frame on stream {stream_id} declares {len} payload bytes, more than \
                         MIN_MAX_PAYLOAD (1 048 576)"
                    ),
                    out,
                );
            }
            if available < header + len {
                break;
            }
            let payload = self.pending[start + header..start + header + len].to_vec();
            let minimal = varint::encoded_len(stream_id.get()) + varint::encoded_len(len as i64);
            start += header + len;
            self.frame(at, stream_id, &payload, header, minimal, out);
        }
        self.pending.drain(..start);
        self.offset += start as u64;
    }

    /// Reports the end of the direction (the sender closed its output) and checks that it ended
    /// at a frame boundary (FRAME-1, FRAME-13) and inside no RPC message (GOB-4, RPC-2).
    pub fn finish(&mut self, out: &mut Vec<Note>) {
        if self.failed {
            return;
        }
        let at = self.position();
        if !self.pending.is_empty() {
            let e = match frame::decode_header(&self.pending, MAX_PAYLOAD_CEILING) {
                Ok(Some((h, n))) => FrameError::TruncatedPayload {
                    stream_id: h.stream_id,
                    received: self.pending.len() - n,
                    len: h.len,
                },
                _ => FrameError::TruncatedHeader {
                    have: self.pending.len(),
                },
            };
            let offset = self.offset;
            self.framing_error(offset, &e, out);
            return;
        }
        let ids: Vec<StreamId> = self.streams.keys().copied().collect();
        for id in ids {
            self.end_stream(at, id, out);
        }
        out.push(Note {
            offset: at,
            what: What::End,
        });
    }

    fn violation(
        &mut self,
        offset: u64,
        requirement: &'static str,
        text: String,
        out: &mut Vec<Note>,
    ) {
        self.violations += 1;
        out.push(Note {
            offset,
            what: What::Violation(Violation { requirement, text }),
        });
    }

    fn framing_error(&mut self, offset: u64, e: &FrameError, out: &mut Vec<Note>) {
        self.failed = true;
        let (requirement, what) = match e {
            FrameError::PayloadTooLarge { .. } => (crate::req!("FRAME-9"), e.to_string()),
            _ => (crate::req!("FRAME-1"), e.to_string()),
        };
        self.violation(
            offset,
            requirement,
            format!("the output is not a sequence of whole, valid frames: {what}"),
            out,
        );
    }

    fn frame(
        &mut self,
        at: u64,
        stream_id: StreamId,
        payload: &[u8],
        header: usize,
        minimal: usize,
        out: &mut Vec<Note>,
    ) {
        let first = self.frames == 0;
        self.frames += 1;
        out.push(Note {
            offset: at,
            what: What::Frame {
                stream_id,
                len: payload.len(),
                header,
                preview: preview(payload),
            },
        });
        if header != minimal {
            self.violation(
                at,
                crate::req!("FRAME-2"),
                format!(
                    "the header of a frame on stream {stream_id} takes {header} bytes; the minimal \
                     encoding takes {minimal}"
                ),
                out,
            );
        }
        if stream_id.is_control() {
            self.control(at, first, payload, out);
            return;
        }
        if first && self.sender == Role::Plugin {
            self.violation(
                at,
                crate::req!("HS-1"),
                format!("the plugin's first frame is on stream {stream_id}, not the announcement on stream 0"),
                out,
            );
        }
        self.data(at, stream_id, payload, out);
    }

    fn control(&mut self, at: u64, first: bool, payload: &[u8], out: &mut Vec<Note>) {
        if payload.is_empty() {
            self.violation(
                at,
                crate::req!("STREAM-1"),
                "a zero-length frame on stream 0".to_string(),
                out,
            );
            return;
        }
        match self.sender {
            Role::Host => self.violation(
                at,
                crate::req!("HS-3"),
                format!("the host sent a frame on stream 0 ({} byte(s))", payload.len()),
                out,
            ),
            Role::Plugin if !first => self.violation(
                at,
                crate::req!("HS-2"),
                format!(
                    "a second frame on stream 0 ({} byte(s)): the plugin sends only its announcement there",
                    payload.len()
                ),
                out,
            ),
            Role::Plugin => match parse_announcement(payload) {
                Ok(hooks) => out.push(Note {
                    offset: at,
                    what: What::Announcement { hooks },
                }),
                Err(e) => {
                    let requirement = match e {
                        HandshakeError::InvalidHooksStreamId { .. } => crate::req!("STREAM-2"),
                        _ => crate::req!("HS-1"),
                    };
                    self.violation(
                        at,
                        requirement,
                        format!("the announcement {} is invalid: {e}", hex(payload)),
                        out,
                    );
                }
            },
        }
    }

    fn data(&mut self, at: u64, stream_id: StreamId, payload: &[u8], out: &mut Vec<Note>) {
        let sender = self.sender;
        let stream = self
            .streams
            .entry(stream_id)
            .or_insert_with(|| StreamTrace {
                closed: false,
                broken: false,
                rpc: if opener(stream_id) == sender {
                    Rpc::Responses {
                        codec: ClientCodec::with_decoder(sender_decoder()),
                    }
                } else {
                    Rpc::Requests {
                        codec: ServerCodec::with_decoder(sender_decoder()),
                        next_seq: 0,
                    }
                },
            });
        if stream.closed {
            let (requirement, text) = if payload.is_empty() {
                (
                    crate::req!("STREAM-7"),
                    format!("a second zero-length frame on stream {stream_id}, which the sender had closed"),
                )
            } else {
                (
                    crate::req!("STREAM-8"),
                    format!(
                        "{} data byte(s) on stream {stream_id} after the sender closed it",
                        payload.len()
                    ),
                )
            };
            self.violation(at, requirement, text, out);
            return;
        }
        if payload.is_empty() {
            out.push(Note {
                offset: at,
                what: What::Close { stream_id },
            });
            self.end_stream(at, stream_id, out);
            if let Some(s) = self.streams.get_mut(&stream_id) {
                s.closed = true;
            }
            return;
        }
        if stream.broken {
            return;
        }
        let mut found = Vec::new();
        let non_minimal_before = stream.non_minimal();
        let error = match &mut stream.rpc {
            Rpc::Requests { codec, next_seq } => {
                codec.push(payload);
                loop {
                    match codec.next_request() {
                        Ok(Some(r)) => {
                            let expected = *next_seq;
                            *next_seq = r.header.seq.max(expected).saturating_add(1);
                            found.push((
                                (r.header.seq != expected).then_some(expected),
                                What::Request {
                                    stream_id,
                                    seq: r.header.seq,
                                    args: show_args(&r.header.service_method, &r.args),
                                    service_method: r.header.service_method,
                                },
                            ));
                        }
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                }
            }
            Rpc::Responses { codec } => {
                codec.push(payload);
                loop {
                    match codec.next_response() {
                        Ok(Some(r)) => found.push((
                            None,
                            What::Response {
                                stream_id,
                                seq: r.header.seq,
                                service_method: r.header.service_method,
                                error: r.header.error,
                                body: show(&r.body),
                            },
                        )),
                        Ok(None) => break None,
                        Err(e) => break Some(e),
                    }
                }
            }
        };
        if error.is_some() {
            stream.broken = true;
        }
        let non_minimal = stream.non_minimal() - non_minimal_before;
        for (bad_seq, what) in found {
            let check = match &what {
                What::Request { seq, .. } => bad_seq.map(|expected| {
                    (
                        crate::req!("RPC-4"),
                        format!(
                            "a request on stream {stream_id} with Seq {seq}; the client's next Seq is {expected}"
                        ),
                    )
                }),
                What::Response {
                    error, body, seq, ..
                } if !error.is_empty() && !body.starts_with('{') => Some((
                    crate::req!("RPC-7"),
                    format!(
                        "the error response with Seq {seq} on stream {stream_id} has the body {body}, not an empty struct"
                    ),
                )),
                _ => None,
            };
            out.push(Note { offset: at, what });
            if let Some((requirement, text)) = check {
                self.violation(at, requirement, text, out);
            }
        }
        if non_minimal > 0 {
            self.violation(
                at,
                crate::req!("GOB-1"),
                format!(
                    "{non_minimal} gob uint(s) on stream {stream_id} in a longer form than the \
                     minimal one"
                ),
                out,
            );
        }
        if let Some(e) = error {
            self.rpc_error(at, stream_id, &e, out);
        }
    }

    /// The end of a stream's bytes (its close, or the end of the direction): a message cut
    /// short is a violation of the sender's rules.
    fn end_stream(&mut self, at: u64, stream_id: StreamId, out: &mut Vec<Note>) {
        let Some(stream) = self.streams.get_mut(&stream_id) else {
            return;
        };
        if stream.broken || stream.closed {
            return;
        }
        let result = match &mut stream.rpc {
            Rpc::Requests { codec, .. } => codec.finish(),
            Rpc::Responses { codec } => codec.finish(),
        };
        if let Err(e) = result {
            stream.broken = true;
            self.rpc_error(at, stream_id, &e, out);
        }
    }

    fn rpc_error(&mut self, at: u64, stream_id: StreamId, e: &RpcError, out: &mut Vec<Note>) {
        // The decoder's limit is what every receiver accepts: a longer message is the sender's
        // fault (GOB-16), not the receiver's limit (GOB-15).
        let requirement = match e.kind() {
            "message_too_large" => crate::req!("GOB-16"),
            _ => e.requirement(),
        };
        let role = match self.streams.get(&stream_id).map(|s| &s.rpc) {
            Some(Rpc::Requests { .. }) => "requests (the sender is this stream's client, RPC-1)",
            _ => "responses (the sender opened this stream and is its server, RPC-1)",
        };
        self.violation(
            at,
            requirement,
            format!("stream {stream_id} should carry {role}, but its bytes do not decode: {e}"),
            out,
        );
    }
}

/// A decoder whose message limit is GOB_MIN_MAX_MESSAGE, the most a sender may send (GOB-16).
fn sender_decoder() -> Decoder {
    Decoder::with_limits(DecodeLimits {
        max_message: MIN_MAX_MESSAGE,
        ..DecodeLimits::default()
    })
}

/// The endpoint that allocates `id` (STREAM-2).
fn opener(id: StreamId) -> Role {
    if id.is_plugin_allocated() {
        Role::Plugin
    } else {
        Role::Host
    }
}

fn show_args(service_method: &str, args: &Value) -> String {
    match Call::from_request(&[HOOKS_SERVICE, API_SERVICE], service_method, args) {
        Ok(Call::OnActivate { api_stream }) => api_stream.to_string(),
        Ok(_) => "struct{}".to_string(),
        Err(_) => show(args),
    }
}

/// A compact rendering of a gob value, with long byte strings cut.
pub fn show(v: &Value) -> String {
    let mut s = String::new();
    show_into(v, &mut s, 0);
    s
}

fn show_into(v: &Value, s: &mut String, depth: usize) {
    const BYTES_SHOWN: usize = 48;
    if depth > 8 {
        s.push_str("...");
        return;
    }
    match v {
        Value::Bool(b) => {
            let _ = write!(s, "{b}");
        }
        Value::Int(i) => {
            let _ = write!(s, "{i}");
        }
        Value::Uint(u) => {
            let _ = write!(s, "{u}");
        }
        Value::Float(x) => {
            let _ = write!(s, "{x}");
        }
        Value::Complex(r, i) => {
            let _ = write!(s, "({r}+{i}i)");
        }
        Value::Bytes(b) | Value::Opaque(b) | Value::String(b) => {
            let text = String::from_utf8_lossy(&b[..b.len().min(BYTES_SHOWN)]);
            let _ = write!(s, "{text:?}");
            if b.len() > BYTES_SHOWN {
                let _ = write!(s, "... ({} bytes)", b.len());
            }
        }
        Value::Struct { name, fields } => {
            s.push_str(name);
            s.push('{');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                s.push_str(&f.name);
                s.push_str(": ");
                show_into(&f.value, s, depth + 1);
            }
            s.push('}');
        }
        Value::Slice(items) | Value::Array(items) => {
            s.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                if i == 16 {
                    let _ = write!(s, "... ({} items)", items.len());
                    break;
                }
                show_into(item, s, depth + 1);
            }
            s.push(']');
        }
        Value::Map(entries) => {
            s.push_str("map[");
            for (i, (k, v)) in entries.iter().enumerate() {
                if i > 0 {
                    s.push_str(", ");
                }
                show_into(k, s, depth + 1);
                s.push(':');
                show_into(v, s, depth + 1);
            }
            s.push(']');
        }
    }
}

/// Up to 16 payload bytes in hex, then the same bytes as ASCII.
pub fn preview(payload: &[u8]) -> String {
    if payload.is_empty() {
        return "(empty)".to_owned();
    }
    const SHOWN: usize = 16;
    let head = &payload[..payload.len().min(SHOWN)];
    let more = payload.len() > SHOWN;
    let ascii: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    format!(
        "{}{}  \"{ascii}\"{}",
        hex(head),
        if more { " ..." } else { "" },
        if more { "..." } else { "" }
    )
}

/// Bytes as lowercase hex pairs separated by spaces, as the specification writes them.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 3);
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}
