//! A [`StreamTable`] of either role driven by an arbitrary sequence of operations. After every
//! step:
//!
//! - nothing panicked (arithmetic overflow included: fuzz builds have debug assertions);
//! - the bytes waiting to be sent are whole frames (FRAME-10, FRAME-11) that a [`FrameDecoder`]
//!   accepts without error and ends at a frame boundary, no payload above MIN_MAX_PAYLOAD
//!   (FRAME-9), data payloads no longer than `max_send_payload`;
//! - every stream's `buffered_len` is at most `limits().stream_buffer` (STREAM-15), and its
//!   `readable_len` at most its `buffered_len`;
//! - no more than `max_streams` streams are open;
//! - once the connection has ended, nothing more is queued;
//! - once `ended()` is `Some`, every read of a stream that is not RemoteClosed and has no data
//!   fails (STREAM-12), as do open, connect and write; a connection error sticks (FRAME-14).
//!
//! After every receive, each Data event must have added exactly its length to the stream's
//! readable bytes, and a completed handshake must have left the hooks stream connected (HS-7).
//! At the end, the data written must have come out of `take_transmit` in order, per stream.
#![no_main]

use std::collections::BTreeMap;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::frame::{self, FrameDecoder, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::handshake;
use rpcplugin_codec::stream::{
    ConnectionEnd, ConnectionError, Event, Limits, Read, Role, StreamError, StreamState,
    StreamTable, MIN_STREAM_BUFFER,
};

/// A stream id: mostly small, so operations meet the same streams.
#[derive(Debug, Clone, Copy, Arbitrary)]
enum Id {
    Small(u8),
    Any(u64),
}

impl Id {
    fn get(self) -> StreamId {
        match self {
            Id::Small(v) => StreamId::new(i64::from(v % 16)).unwrap(),
            Id::Any(v) => StreamId::new((v >> 1) as i64).unwrap(),
        }
    }
}

#[derive(Debug, Arbitrary)]
enum Op<'a> {
    /// Raw bytes from the peer.
    Receive(&'a [u8]),
    /// A whole frame from the peer.
    ReceiveFrame {
        id: Id,
        payload: &'a [u8],
    },
    /// A frame header declaring `len` bytes, without its payload (large frames, resets,
    /// frames cut by the end of input).
    ReceiveHeader {
        id: Id,
        len: u32,
    },
    /// The announcement frame for `hooks` (valid when positive and even).
    ReceiveAnnouncement {
        hooks: Id,
    },
    Open,
    Announce,
    Connect(Id),
    Write {
        id: Id,
        data: &'a [u8],
    },
    Read {
        id: Id,
        cap: u16,
    },
    Close(Id),
    EndOfInput,
    CloseConnection,
    OnStartTimeout,
    TakeTransmit,
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    host: bool,
    /// Selects limits; `None` is the default.
    limits: Option<(u32, u16, u8, u8)>,
    ops: Vec<Op<'a>>,
}

fn limits(choice: Option<(u32, u16, u8, u8)>) -> Limits {
    let Some((payload, send, buffer, streams)) = choice else {
        return Limits::default();
    };
    Limits {
        max_payload: MIN_MAX_PAYLOAD
            + (payload as usize % (frame::MAX_PAYLOAD_CEILING - MIN_MAX_PAYLOAD + 1)),
        max_send_payload: if send == 0 {
            MIN_MAX_PAYLOAD
        } else {
            usize::from(send)
        },
        stream_buffer: MIN_STREAM_BUFFER + usize::from(buffer) * 4096,
        max_streams: 1 + usize::from(streams % 8),
    }
}

struct Harness {
    table: StreamTable,
    /// Bytes successfully written per stream, in order.
    written: BTreeMap<StreamId, Vec<u8>>,
    /// Payload bytes taken from the transmit queue per stream, in order.
    sent: BTreeMap<StreamId, Vec<u8>>,
    /// Whether close_connection dropped queued bytes.
    dropped_queue: bool,
    /// The queued bytes when the connection was seen ended, which may only shrink from then on.
    pending_at_end: Option<usize>,
    scratch: Vec<u8>,
}

impl Harness {
    /// Feeds peer bytes, then checks the events they caused: each Data event adds exactly its
    /// length to the stream's readable bytes, and a completed handshake leaves the hooks stream
    /// connected (HS-7).
    fn receive(&mut self, bytes: &[u8]) {
        let was_live = self.table.ended().is_none();
        let handshake_done = self.hooks();
        let readable: BTreeMap<StreamId, usize> = self
            .table
            .stream_ids()
            .map(|id| (id, self.table.readable_len(id)))
            .collect();
        let r = self.table.receive(bytes);
        self.note(r, was_live);

        let mut added: BTreeMap<StreamId, usize> = BTreeMap::new();
        let mut reset = Vec::new();
        while let Some(event) = self.table.poll_event() {
            match event {
                Event::Data { stream_id, len } => {
                    assert!(len > 0 && !stream_id.is_control());
                    *added.entry(stream_id).or_default() += len;
                }
                Event::HandshakeComplete { hooks } => {
                    assert_eq!(self.table.role(), Role::Host);
                    assert!(hooks.is_plugin_allocated());
                    assert_eq!(handshake_done, None, "a second handshake");
                    assert_eq!(self.hooks(), Some(hooks));
                    assert!(
                        self.table.state(hooks).is_some(),
                        "HS-7: the handshake completed but hooks stream {hooks} is not connected"
                    );
                }
                Event::Reset { stream_id, dropped } => {
                    assert!(dropped > self.table.limits().stream_buffer);
                    reset.push(stream_id);
                }
                Event::Finished { stream_id } => assert!(!stream_id.is_control()),
                Event::Discarded { .. } => {}
            }
        }
        // A stream reset by this input drops its data at once, while its Reset event waits for
        // the offending frame to complete: skip those.
        let skip = |t: &StreamTable, id: StreamId| {
            reset.contains(&id) || t.state(id) == Some(StreamState::Reset)
        };
        for id in self.table.stream_ids().filter(|&id| !skip(&self.table, id)) {
            let before = readable.get(&id).copied().unwrap_or(0);
            let now = self.table.readable_len(id);
            let events = added.get(&id).copied().unwrap_or(0);
            assert_eq!(
                now,
                before + events,
                "stream {id}: {events} bytes announced by Data events, {before} -> {now} readable"
            );
        }
    }

    fn hooks(&self) -> Option<StreamId> {
        self.table.handshake().and_then(|h| h.hooks())
    }

    /// Checks a connection error: it ends the connection, is recorded if the connection was
    /// live, and the recorded error is repeated by every later input (FRAME-14).
    fn note(&mut self, r: Result<(), ConnectionError>, was_live: bool) {
        let Err(e) = r else { return };
        let end = self
            .table
            .ended()
            .cloned()
            .expect("a connection error that did not end the connection");
        if was_live {
            assert_eq!(end, ConnectionEnd::Error(e.clone()));
        }
        if let ConnectionEnd::Error(first) = end {
            assert_eq!(self.table.receive(b"\x02\x00"), Err(first.clone()));
            assert_eq!(self.table.end_of_input(), Err(first));
        }
    }

    fn take_transmit(&mut self) {
        let mut out = Vec::new();
        self.table.take_transmit(&mut out);
        assert!(!self.table.has_transmit());
        if self.pending_at_end.is_some() {
            self.pending_at_end = Some(0);
        }
        let mut rest = &out[..];
        while let Some((f, used)) = frame::decode_frame(rest, MIN_MAX_PAYLOAD).unwrap() {
            if !f.stream_id.is_control() && !f.payload.is_empty() {
                self.sent
                    .entry(f.stream_id)
                    .or_default()
                    .extend_from_slice(f.payload);
            }
            rest = &rest[used..];
        }
        assert!(rest.is_empty());
    }

    fn step(&mut self, op: Op<'_>) {
        match op {
            Op::Receive(bytes) => self.receive(bytes),
            Op::ReceiveFrame { id, payload } => {
                let mut wire = Vec::new();
                frame::encode_frame(id.get(), payload, &mut wire).unwrap();
                self.receive(&wire);
            }
            Op::ReceiveHeader { id, len } => {
                let mut header = [0u8; frame::MAX_HEADER_LEN];
                let n = frame::encode_header(id.get(), len as usize, &mut header);
                self.receive(&header[..n]);
            }
            Op::ReceiveAnnouncement { hooks } => {
                let mut payload = vec![handshake::CONTROL_BYTE];
                rpcplugin_codec::varint::encode_to_vec(hooks.get().get(), &mut payload);
                let mut wire = Vec::new();
                frame::encode_frame(StreamId::CONTROL, &payload, &mut wire).unwrap();
                self.receive(&wire);
            }
            Op::Open => {
                let r = self.table.open();
                if let Ok(id) = r {
                    assert!(self.table.role().allocates(id));
                    assert_eq!(self.table.state(id), Some(StreamState::Open));
                }
                self.check_refused_after_end(r.err());
            }
            Op::Announce => {
                let r = self.table.announce();
                if let Ok(id) = r {
                    assert_eq!(self.table.role(), Role::Plugin);
                    assert!(id.is_plugin_allocated());
                }
                self.check_refused_after_end(r.err());
            }
            Op::Connect(id) => {
                let id = id.get();
                let r = self.table.connect(id);
                if r.is_ok() {
                    assert!(!id.is_control() && !self.table.role().allocates(id));
                    assert_eq!(self.table.state(id), Some(StreamState::Open));
                }
                self.check_refused_after_end(r.err());
            }
            Op::Write { id, data } => {
                let id = id.get();
                let r = self.table.write(id, data);
                if r.is_ok() {
                    self.written.entry(id).or_default().extend_from_slice(data);
                }
                self.check_refused_after_end(r.err());
            }
            Op::Read { id, cap } => {
                let id = id.get();
                let readable = self.table.readable_len(id);
                let state = self.table.state(id);
                self.scratch.resize(usize::from(cap), 0);
                let r = self.table.read(id, &mut self.scratch);
                match r {
                    Ok(Read::Data(n)) => {
                        assert!(n <= readable && n <= usize::from(cap));
                        assert!(n > 0 || cap == 0);
                        assert_eq!(self.table.readable_len(id), readable - n);
                    }
                    Ok(Read::Eof) => {
                        assert_eq!(readable, 0);
                        assert_eq!(state, Some(StreamState::RemoteClosed));
                    }
                    Ok(Read::Empty) => {
                        assert_eq!(readable, 0);
                        assert_eq!(state, Some(StreamState::Open));
                        assert!(
                            self.table.ended().is_none(),
                            "Read::Empty after the connection ended"
                        );
                    }
                    Err(_) => {}
                }
            }
            Op::Close(id) => {
                let id = id.get();
                let before = self.table.state(id);
                let r = self.table.close(id);
                assert_eq!(r.is_ok(), before.is_some());
                if self.table.ended().is_none() {
                    assert!(matches!(
                        self.table.state(id),
                        None | Some(StreamState::LocalClosed | StreamState::Reset)
                    ));
                } else {
                    assert!(self.table.state(id).is_none());
                }
            }
            Op::EndOfInput => {
                let was_live = self.table.ended().is_none();
                let r = self.table.end_of_input();
                self.note(r, was_live);
                assert!(self.table.ended().is_some());
            }
            Op::CloseConnection => {
                let was_live = self.table.ended().is_none();
                self.dropped_queue |= was_live && self.table.has_transmit();
                self.table.close_connection();
                assert!(self.table.ended().is_some());
                if was_live {
                    assert!(!self.table.has_transmit());
                }
            }
            Op::OnStartTimeout => {
                let was_live = self.table.ended().is_none();
                let r = self.table.on_start_timeout();
                // The plugin has no start timeout: it only repeats an earlier connection error.
                if self.table.role() == Role::Plugin {
                    assert!(
                        r.is_ok() || matches!(self.table.ended(), Some(ConnectionEnd::Error(_)))
                    );
                }
                self.note(r, was_live);
            }
            Op::TakeTransmit => self.take_transmit(),
        }
        self.check_invariants();
    }

    fn check_refused_after_end(&self, err: Option<StreamError>) {
        if let Some(end) = self.table.ended() {
            let err = err.expect("an operation succeeded after the connection ended");
            assert!(
                matches!(&err, StreamError::ConnectionEnded(e) if e == end),
                "after the end ({end:?}): {err:?}"
            );
        }
    }

    fn check_invariants(&mut self) {
        let limits = *self.table.limits();
        // Whole frames only, each within the sender's limits.
        let pending = self.table.pending_transmit().to_vec();
        let mut decoder = FrameDecoder::new();
        let mut input = &pending[..];
        while let Some(chunk) = decoder
            .decode(&mut input)
            .expect("the queued bytes do not decode")
        {
            if let frame::Chunk::Header(h) = chunk {
                assert!(h.len <= MIN_MAX_PAYLOAD);
                if !h.stream_id.is_control() {
                    assert!(
                        h.len <= limits.max_send_payload,
                        "a {}-byte data frame",
                        h.len
                    );
                }
            }
        }
        assert!(
            decoder.is_at_boundary(),
            "the queued bytes end inside a frame"
        );
        decoder.finish().unwrap();
        assert_eq!(self.table.has_transmit(), !pending.is_empty());

        let ids: Vec<StreamId> = self.table.stream_ids().collect();
        let mut open = 0;
        for &id in &ids {
            assert!(!id.is_control());
            let buffered = self.table.buffered_len(id);
            assert!(
                buffered <= limits.stream_buffer,
                "stream {id} buffers {buffered} bytes"
            );
            assert!(self.table.readable_len(id) <= buffered);
            let state = self.table.state(id).unwrap();
            if matches!(state, StreamState::Open | StreamState::RemoteClosed) {
                open += 1;
            }
            if matches!(state, StreamState::LocalClosed | StreamState::Reset) {
                assert_eq!(buffered, 0, "a closed stream {id} holds data");
            }
        }
        // The host connects the announced hooks stream even at the limit (HS-7).
        let hooks = usize::from(self.table.handshake().and_then(|h| h.hooks()).is_some());
        assert!(open <= limits.max_streams + hooks, "{open} streams open");

        if self.table.ended().is_some() {
            // Nothing is queued after the end (the queue is only drained).
            let was = *self.pending_at_end.get_or_insert(pending.len());
            assert!(
                pending.len() <= was,
                "{} bytes queued after the end, up from {was}",
                pending.len()
            );
            self.pending_at_end = Some(pending.len());
            // STREAM-12: reads without data fail unless the peer closed the stream.
            let probes = ids
                .iter()
                .copied()
                .chain([1, 2, 3, 4, 1000].map(|v| StreamId::new(v).unwrap()));
            for id in probes {
                if self.table.readable_len(id) > 0 {
                    continue;
                }
                let r = self.table.read(id, &mut [0u8; 16]);
                if self.table.state(id) == Some(StreamState::RemoteClosed) {
                    assert_eq!(r, Ok(Read::Eof));
                } else {
                    assert!(r.is_err(), "read of stream {id} after the end: {r:?}");
                }
            }
        }
    }
}

fuzz_target!(|input: Input<'_>| {
    let role = if input.host { Role::Host } else { Role::Plugin };
    let limits = limits(input.limits);
    let table = StreamTable::with_limits(role, limits).expect("valid limits");
    let mut h = Harness {
        table,
        written: BTreeMap::new(),
        sent: BTreeMap::new(),
        dropped_queue: false,
        pending_at_end: None,
        scratch: Vec::new(),
    };
    for op in input.ops {
        h.step(op);
    }
    h.take_transmit();
    // Written data leaves in order; all of it unless close_connection dropped the queue.
    for (id, written) in &h.written {
        let sent = h.sent.get(id).map_or(&[][..], |s| &s[..]);
        if h.dropped_queue {
            assert!(
                written.starts_with(sent),
                "stream {id}: sent bytes are not a prefix of the written ones"
            );
        } else {
            assert_eq!(
                sent,
                &written[..],
                "stream {id}: sent bytes differ from the written ones"
            );
        }
    }
    for id in h.sent.keys() {
        assert!(
            h.written.contains_key(id),
            "data sent on stream {id}, which was never written"
        );
    }
});
