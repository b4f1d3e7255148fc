//! Model-based test of the stream table (proptest-state-machine): a reference model written
//! from the state table of `spec/03-streams.md` runs beside the real [`StreamTable`]; after
//! every operation their results, events, transmitted frames and stream states must agree.

use std::collections::{BTreeMap, VecDeque};

use proptest::prelude::*;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use rpcplugin_codec::frame::{self, Frame, FrameAssembler, StreamId};
use rpcplugin_codec::stream::{
    DiscardReason, Event, Limits, Read, Role, StreamError, StreamState, StreamTable,
    MIN_STREAM_BUFFER,
};

const MAX_STREAMS: usize = 4;

fn limits() -> Limits {
    Limits {
        stream_buffer: MIN_STREAM_BUFFER,
        max_streams: MAX_STREAMS,
        ..Limits::default()
    }
}

fn sid(v: i64) -> StreamId {
    StreamId::new(v).unwrap()
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8)).collect()
}

#[derive(Debug, Clone)]
enum Op {
    Open,
    Connect(i64),
    Write(i64, usize),
    Close(i64),
    Read(i64, usize),
    PeerData(i64, usize, u8),
    PeerClose(i64),
    EndOfInput,
    CloseConnection,
}

#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    None,
    Ok,
    Opened(i64),
    Err(&'static str),
    Read(Read, Vec<u8>),
    Received(Result<Vec<Event>, &'static str>),
}

fn kind(e: &StreamError) -> &'static str {
    match e {
        StreamError::ConnectionEnded(_) => "connection_ended",
        StreamError::UnknownStream(_) => "unknown_stream",
        StreamError::ClosedLocally(_) => "closed_locally",
        StreamError::ClosedByPeer(_) => "closed_by_peer",
        StreamError::BufferOverflow { .. } => "buffer_overflow",
        StreamError::WrongParity { .. } => "wrong_parity",
        StreamError::AlreadyOpen(_) => "already_open",
        StreamError::TooManyStreams { .. } => "too_many_streams",
        StreamError::IdsExhausted => "ids_exhausted",
        _ => "other",
    }
}

#[derive(Debug, Clone)]
struct MStream {
    state: StreamState,
    readable: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Model {
    role: Role,
    next_id: i64,
    streams: BTreeMap<i64, MStream>,
    closing: VecDeque<i64>,
    open_count: usize,
    ended: bool,
    last: Outcome,
    tx: Vec<Frame>,
}

impl Model {
    fn owns(&self, id: i64) -> bool {
        id != 0 && (id % 2 == 1) == (self.role == Role::Host)
    }

    fn remember_closing(&mut self, id: i64) {
        self.closing.push_back(id);
        while self.closing.len() > MAX_STREAMS {
            let old = self.closing.pop_front().unwrap();
            if matches!(
                self.streams.get(&old).map(|s| s.state),
                Some(StreamState::LocalClosed | StreamState::Reset)
            ) {
                self.streams.remove(&old);
            }
        }
    }

    fn discard_reason_unknown(&self, id: i64) -> DiscardReason {
        if self.owns(id) && id < self.next_id {
            DiscardReason::ClosedLocally
        } else {
            DiscardReason::NotConnected
        }
    }

    fn peer_frame(&mut self, id: i64, data: Vec<u8>) -> Vec<Event> {
        let stream_id = sid(id);
        let len = data.len();
        if id == 0 {
            let reason = if self.role == Role::Host {
                DiscardReason::ControlAfterHandshake
            } else {
                DiscardReason::ControlFromHost
            };
            return vec![Event::Discarded {
                stream_id,
                len,
                reason,
            }];
        }
        let Some(s) = self.streams.get_mut(&id) else {
            let reason = self.discard_reason_unknown(id);
            return vec![Event::Discarded {
                stream_id,
                len,
                reason,
            }];
        };
        match (s.state, len) {
            // S6: the peer closes.
            (StreamState::Open, 0) => {
                s.state = StreamState::RemoteClosed;
                vec![Event::Finished { stream_id }]
            }
            (StreamState::Open, _) => {
                if s.readable.len() + len > MIN_STREAM_BUFFER {
                    // S5 (overflow): a stream error.
                    let dropped = s.readable.len() + len;
                    s.state = StreamState::Reset;
                    s.readable.clear();
                    self.open_count -= 1;
                    self.tx.push(Frame::new(stream_id, Vec::new()));
                    self.remember_closing(id);
                    vec![Event::Reset { stream_id, dropped }]
                } else {
                    s.readable.extend_from_slice(&data);
                    vec![Event::Data { stream_id, len }]
                }
            }
            // S14: both closed.
            (StreamState::LocalClosed | StreamState::Reset, 0) => {
                self.streams.remove(&id);
                vec![]
            }
            (state, _) => vec![Event::Discarded {
                stream_id,
                len,
                reason: match state {
                    StreamState::RemoteClosed => DiscardReason::ClosedByPeer,
                    StreamState::Reset => DiscardReason::StreamReset,
                    _ => DiscardReason::ClosedLocally,
                },
            }],
        }
    }

    fn register(&mut self, id: i64) -> Outcome {
        if self.open_count >= MAX_STREAMS {
            return Outcome::Err("too_many_streams");
        }
        self.streams.insert(
            id,
            MStream {
                state: StreamState::Open,
                readable: Vec::new(),
            },
        );
        self.open_count += 1;
        Outcome::Ok
    }

    fn step(&mut self, op: &Op) -> Outcome {
        let ended = self.ended;
        match *op {
            Op::Open if ended => Outcome::Err("connection_ended"),
            Op::Open => {
                let id = self.next_id;
                match self.register(id) {
                    Outcome::Ok => {
                        self.next_id += 2;
                        Outcome::Opened(id)
                    }
                    other => other,
                }
            }
            Op::Connect(_) if ended => Outcome::Err("connection_ended"),
            Op::Connect(id) if id == 0 || self.owns(id) => Outcome::Err("wrong_parity"),
            Op::Connect(id) if self.streams.contains_key(&id) => Outcome::Err("already_open"),
            Op::Connect(id) => self.register(id),
            Op::Write(_, _) if ended => Outcome::Err("connection_ended"),
            Op::Write(id, len) => match self.streams.get(&id).map(|s| s.state) {
                Some(StreamState::Open) => {
                    if len > 0 {
                        self.tx.push(Frame::new(sid(id), payload(len, id as u8)));
                    }
                    Outcome::Ok
                }
                Some(StreamState::RemoteClosed) => Outcome::Err("closed_by_peer"),
                Some(StreamState::LocalClosed) => Outcome::Err("closed_locally"),
                Some(StreamState::Reset) => Outcome::Err("buffer_overflow"),
                None => Outcome::Err("unknown_stream"),
            },
            Op::Close(id) => match self.streams.get(&id).map(|s| s.state) {
                None => Outcome::Err("unknown_stream"),
                Some(StreamState::LocalClosed | StreamState::Reset) => {
                    if ended {
                        self.streams.remove(&id);
                    }
                    Outcome::Ok
                }
                Some(state) => {
                    self.open_count -= 1;
                    if ended || state == StreamState::RemoteClosed {
                        self.streams.remove(&id);
                    } else {
                        let s = self.streams.get_mut(&id).unwrap();
                        s.state = StreamState::LocalClosed;
                        s.readable.clear();
                        self.remember_closing(id);
                    }
                    if !ended {
                        self.tx.push(Frame::new(sid(id), Vec::new()));
                    }
                    Outcome::Ok
                }
            },
            Op::Read(id, max) => {
                let Some(s) = self.streams.get_mut(&id) else {
                    return Outcome::Err(if ended {
                        "connection_ended"
                    } else {
                        "unknown_stream"
                    });
                };
                match s.state {
                    StreamState::Reset => Outcome::Err("buffer_overflow"),
                    StreamState::LocalClosed => Outcome::Err("closed_locally"),
                    _ if !s.readable.is_empty() => {
                        let n = max.min(s.readable.len());
                        let got: Vec<u8> = s.readable.drain(..n).collect();
                        Outcome::Read(Read::Data(n), got)
                    }
                    StreamState::RemoteClosed => Outcome::Read(Read::Eof, vec![]),
                    _ if ended => Outcome::Err("connection_ended"),
                    _ => Outcome::Read(Read::Empty, vec![]),
                }
            }
            Op::PeerData(_, _, _) | Op::PeerClose(_) if ended => Outcome::Received(Ok(vec![])),
            // Data longer than a frame arrives as several frames of at most MIN_MAX_PAYLOAD.
            Op::PeerData(id, len, seed) => Outcome::Received(Ok(payload(len, seed)
                .chunks(frame::MIN_MAX_PAYLOAD)
                .flat_map(|chunk| self.peer_frame(id, chunk.to_vec()))
                .collect())),
            Op::PeerClose(id) => Outcome::Received(Ok(self.peer_frame(id, Vec::new()))),
            Op::EndOfInput => {
                self.ended = true;
                Outcome::None
            }
            Op::CloseConnection => {
                self.ended = true;
                Outcome::None
            }
        }
    }
}

struct TableTest;

impl ReferenceStateMachine for Model {
    type State = Model;
    type Transition = Op;

    fn init_state() -> BoxedStrategy<Model> {
        prop_oneof![Just(Role::Host), Just(Role::Plugin)]
            .prop_map(|role| {
                let mut m = Model {
                    role,
                    next_id: role.first_stream_id().get(),
                    streams: BTreeMap::new(),
                    closing: VecDeque::new(),
                    open_count: 0,
                    ended: false,
                    last: Outcome::None,
                    tx: Vec::new(),
                };
                if role == Role::Host {
                    // The host starts after a handshake announcing hooks stream 2.
                    m.register(2);
                }
                m
            })
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Op> {
        let mut ids: Vec<i64> = (0..=8).collect();
        ids.extend(state.streams.keys().copied());
        let id = proptest::sample::select(ids);
        let len = prop_oneof![
            8 => 0usize..64,
            1 => Just(MIN_STREAM_BUFFER / 2 + 1),
            1 => Just(frame::MIN_MAX_PAYLOAD),
        ];
        prop_oneof![
            3 => Just(Op::Open),
            3 => id.clone().prop_map(Op::Connect),
            4 => (id.clone(), 0usize..100).prop_map(|(i, n)| Op::Write(i, n)),
            3 => id.clone().prop_map(Op::Close),
            4 => (id.clone(), 1usize..80).prop_map(|(i, n)| Op::Read(i, n)),
            6 => (id.clone(), len.prop_filter("non-empty", |n| *n > 0), any::<u8>())
                .prop_map(|(i, n, s)| Op::PeerData(i, n, s)),
            3 => id.prop_map(Op::PeerClose),
            1 => Just(Op::EndOfInput),
            1 => Just(Op::CloseConnection),
        ]
        .boxed()
    }

    fn apply(mut state: Model, op: &Op) -> Model {
        state.tx.clear();
        state.last = state.step(op);
        state
    }
}

impl StateMachineTest for TableTest {
    type SystemUnderTest = StreamTable;
    type Reference = Model;

    fn init_test(model: &Model) -> StreamTable {
        let mut t = StreamTable::with_limits(model.role, limits()).unwrap();
        if model.role == Role::Host {
            let mut hs = Vec::new();
            assert!(rpcplugin_codec::handshake::encode_announcement_frame(
                sid(2),
                &mut hs
            ));
            t.receive(&hs).unwrap();
            assert_eq!(
                t.poll_event(),
                Some(Event::HandshakeComplete { hooks: sid(2) })
            );
        }
        t
    }

    fn apply(mut t: StreamTable, model: &Model, op: Op) -> StreamTable {
        let got = match op {
            Op::Open => match t.open() {
                Ok(id) => Outcome::Opened(id.get()),
                Err(e) => Outcome::Err(kind(&e)),
            },
            Op::Connect(id) => t
                .connect(sid(id))
                .map_or_else(|e| Outcome::Err(kind(&e)), |_| Outcome::Ok),
            Op::Write(id, len) => t
                .write(sid(id), &payload(len, id as u8))
                .map_or_else(|e| Outcome::Err(kind(&e)), |_| Outcome::Ok),
            Op::Close(id) => t
                .close(sid(id))
                .map_or_else(|e| Outcome::Err(kind(&e)), |_| Outcome::Ok),
            Op::Read(id, max) => {
                let mut buf = vec![0u8; max];
                match t.read(sid(id), &mut buf) {
                    Ok(Read::Data(n)) => Outcome::Read(Read::Data(n), buf[..n].to_vec()),
                    Ok(r) => Outcome::Read(r, vec![]),
                    Err(e) => Outcome::Err(kind(&e)),
                }
            }
            Op::PeerData(id, len, seed) => {
                let mut bytes = Vec::new();
                frame::encode_data(
                    sid(id),
                    &payload(len, seed),
                    frame::MIN_MAX_PAYLOAD,
                    &mut bytes,
                );
                receive(&mut t, &bytes)
            }
            Op::PeerClose(id) => {
                let mut bytes = Vec::new();
                frame::encode_frame(sid(id), &[], &mut bytes).unwrap();
                receive(&mut t, &bytes)
            }
            Op::EndOfInput => {
                t.end_of_input().unwrap();
                Outcome::None
            }
            Op::CloseConnection => {
                t.close_connection();
                Outcome::None
            }
        };
        assert_eq!(got, model.last, "result of {op:?}");
        let mut tx = Vec::new();
        t.take_transmit(&mut tx);
        let mut frames = Vec::new();
        let mut asm = FrameAssembler::new();
        asm.push(&tx, &mut frames).unwrap();
        asm.finish()
            .expect("the transmit queue holds whole frames only");
        assert_eq!(frames, model.tx, "frames sent by {op:?}");
        t
    }

    fn check_invariants(t: &StreamTable, model: &Model) {
        let ids: Vec<i64> = t.stream_ids().map(StreamId::get).collect();
        let expect: Vec<i64> = model.streams.keys().copied().collect();
        assert_eq!(ids, expect, "streams in the table");
        for (id, s) in &model.streams {
            assert_eq!(t.state(sid(*id)), Some(s.state), "state of stream {id}");
            assert_eq!(
                t.readable_len(sid(*id)),
                s.readable.len(),
                "readable bytes of stream {id}"
            );
            assert!(t.buffered_len(sid(*id)) <= t.limits().stream_buffer);
        }
        assert_eq!(t.ended().is_some(), model.ended);
    }
}

fn receive(t: &mut StreamTable, bytes: &[u8]) -> Outcome {
    match t.receive(bytes) {
        Ok(()) => {
            let mut events = Vec::new();
            while let Some(e) = t.poll_event() {
                events.push(e);
            }
            Outcome::Received(Ok(events))
        }
        Err(e) => Outcome::Received(Err(e.kind())),
    }
}

prop_state_machine! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    // covers: STREAM-2, STREAM-3, STREAM-5, STREAM-7, STREAM-8, STREAM-9, STREAM-10, STREAM-12, STREAM-13, STREAM-14, STREAM-15, HS-8
    #[test]
    fn stream_table_follows_the_state_table(sequential 1..60 => TableTest);
}
