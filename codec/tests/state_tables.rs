//! One test per row of the state tables of `spec/03-streams.md` (S1..S21, Table 3-2) and
//! `spec/04-handshake.md` (H1..H7 and P1..P2). Each test is named after its row and drives a
//! [`StreamTable`] through exactly that (state, event) pair.

use rpcplugin_codec::frame::{self, Frame, FrameAssembler, StreamId};
use rpcplugin_codec::handshake;
use rpcplugin_codec::stream::{
    ConnectionEnd, ConnectionError, DiscardReason, Event, Limits, Read, Role, StreamError,
    StreamState, StreamTable, MIN_STREAM_BUFFER,
};

fn sid(v: i64) -> StreamId {
    StreamId::new(v).unwrap()
}

fn frame_bytes(id: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame(sid(id), payload, &mut out).unwrap();
    out
}

/// A plugin-role table with the host's stream 1 connected.
fn plugin_with_stream_1() -> StreamTable {
    let mut t = StreamTable::new(Role::Plugin);
    t.connect(sid(1)).unwrap();
    t
}

fn events(t: &mut StreamTable) -> Vec<Event> {
    std::iter::from_fn(|| t.poll_event()).collect()
}

fn sent(t: &mut StreamTable) -> Vec<Frame> {
    let mut tx = Vec::new();
    t.take_transmit(&mut tx);
    let mut frames = Vec::new();
    let mut asm = FrameAssembler::new();
    asm.push(&tx, &mut frames).unwrap();
    asm.finish().unwrap();
    frames
}

fn read_all(t: &mut StreamTable, id: i64) -> (Vec<u8>, Result<Read, StreamError>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 7];
    loop {
        match t.read(sid(id), &mut buf) {
            Ok(Read::Data(n)) => got.extend_from_slice(&buf[..n]),
            other => return (got, other),
        }
    }
}

/// A table whose stream 1 is in `state`.
fn in_state(state: StreamState) -> StreamTable {
    let mut t = plugin_with_stream_1();
    match state {
        StreamState::Open => {}
        StreamState::RemoteClosed => t.receive(&frame_bytes(1, b"")).unwrap(),
        StreamState::LocalClosed => t.close(sid(1)).unwrap(),
        StreamState::Reset => {
            // One maximum-size frame more than the buffer holds.
            let big = vec![7u8; frame::MIN_MAX_PAYLOAD];
            for _ in 0..=MIN_STREAM_BUFFER / frame::MIN_MAX_PAYLOAD {
                t.receive(&frame_bytes(1, &big)).unwrap();
            }
        }
    }
    assert_eq!(t.state(sid(1)), Some(state));
    events(&mut t);
    sent(&mut t);
    t
}

// covers: STREAM-2, STREAM-3
#[test]
fn s1_idle_local_open() {
    let mut host = StreamTable::new(Role::Host);
    let mut plugin = StreamTable::new(Role::Plugin);
    let host_ids: Vec<i64> = (0..4).map(|_| host.open().unwrap().get()).collect();
    let plugin_ids: Vec<i64> = (0..4).map(|_| plugin.open().unwrap().get()).collect();
    assert_eq!(host_ids, [1, 3, 5, 7]);
    assert_eq!(plugin_ids, [2, 4, 6, 8]);
    // Closed ids are never handed out again.
    host.close(sid(1)).unwrap();
    assert_eq!(host.open().unwrap().get(), 9);
    assert_eq!(host.state(sid(9)), Some(StreamState::Open));
    // Opening sends nothing: the opener waits for the peer (STREAM-6).
    assert!(sent(&mut host).iter().all(|f| f.stream_id.get() == 1));
}

// covers: STREAM-4
#[test]
fn s1_an_opened_stream_receives_at_once() {
    let mut t = StreamTable::new(Role::Host);
    let id = t.open().unwrap();
    t.receive(&frame_bytes(id.get(), b"first")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Data {
            stream_id: id,
            len: 5
        }]
    );
    assert_eq!(read_all(&mut t, id.get()).0, b"first");
}

// covers: STREAM-2, STREAM-5
#[test]
fn s2_idle_local_connect() {
    let mut t = StreamTable::new(Role::Plugin);
    t.receive(&frame_bytes(1, b"lost")).unwrap();
    t.connect(sid(1)).unwrap();
    t.receive(&frame_bytes(1, b"kept")).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Discarded {
                stream_id: sid(1),
                len: 4,
                reason: DiscardReason::NotConnected
            },
            Event::Data {
                stream_id: sid(1),
                len: 4
            },
        ]
    );
    assert_eq!(read_all(&mut t, 1).0, b"kept");
    // Only the peer's parity can be connected, and only once.
    assert!(matches!(
        t.connect(sid(2)),
        Err(StreamError::WrongParity { .. })
    ));
    assert!(matches!(
        t.connect(StreamId::CONTROL),
        Err(StreamError::WrongParity { .. })
    ));
    assert_eq!(t.connect(sid(1)), Err(StreamError::AlreadyOpen(sid(1))));
}

// covers: STREAM-5, STREAM-14
#[test]
fn s3_idle_data_frame_is_discarded_and_the_connection_goes_on() {
    let mut t = plugin_with_stream_1();
    let mut input = frame_bytes(5, b"nobody listens");
    input.extend(frame_bytes(4, b"never opened by me"));
    input.extend(frame_bytes(1, b"ok"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Discarded {
                stream_id: sid(5),
                len: 14,
                reason: DiscardReason::NotConnected
            },
            Event::Discarded {
                stream_id: sid(4),
                len: 18,
                reason: DiscardReason::NotConnected
            },
            Event::Data {
                stream_id: sid(1),
                len: 2
            },
        ]
    );
    assert_eq!(t.state(sid(5)), None);
}

// covers: STREAM-5
#[test]
fn s4_idle_zero_length_frame_is_discarded() {
    let mut t = plugin_with_stream_1();
    t.receive(&frame_bytes(3, b"")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(3),
            len: 0,
            reason: DiscardReason::NotConnected
        }]
    );
    assert_eq!(t.state(sid(3)), None);
    assert!(sent(&mut t).is_empty());
}

// covers: STREAM-10, FRAME-12
#[test]
fn s5_open_data_frame_is_buffered_in_order() {
    let mut t = in_state(StreamState::Open);
    let mut input = frame_bytes(1, b"hello ");
    input.extend(frame_bytes(1, b"world"));
    // Split inside the second frame's payload: only whole frames become readable.
    t.receive(&input[..input.len() - 2]).unwrap();
    assert_eq!(t.readable_len(sid(1)), 6);
    assert_eq!(t.buffered_len(sid(1)), 9);
    t.receive(&input[input.len() - 2..]).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Data {
                stream_id: sid(1),
                len: 6
            },
            Event::Data {
                stream_id: sid(1),
                len: 5
            }
        ]
    );
    assert_eq!(
        read_all(&mut t, 1),
        (b"hello world".to_vec(), Ok(Read::Empty))
    );
}

// covers: STREAM-13, STREAM-15, FRAME-7
#[test]
fn s5_open_data_frame_beyond_the_buffer_resets_the_stream() {
    let limits = Limits {
        stream_buffer: MIN_STREAM_BUFFER,
        ..Limits::default()
    };
    let mut t = StreamTable::with_limits(Role::Plugin, limits).unwrap();
    t.connect(sid(1)).unwrap();
    t.connect(sid(3)).unwrap();
    // Exactly the minimum buffer is accepted (maximum-size frames that fill it).
    for _ in 0..MIN_STREAM_BUFFER / frame::MIN_MAX_PAYLOAD {
        t.receive(&frame_bytes(1, &vec![1u8; frame::MIN_MAX_PAYLOAD]))
            .unwrap();
    }
    assert_eq!(t.readable_len(sid(1)), MIN_STREAM_BUFFER);
    assert!(events(&mut t)
        .iter()
        .all(|e| matches!(e, Event::Data { stream_id, .. } if *stream_id == sid(1))));
    // One more byte is a stream error: the stream is reset and closed, others go on.
    let mut input = frame_bytes(1, b"x");
    input.extend(frame_bytes(3, b"fine"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Reset {
                stream_id: sid(1),
                dropped: MIN_STREAM_BUFFER + 1
            },
            Event::Data {
                stream_id: sid(3),
                len: 4
            },
        ]
    );
    assert_eq!(t.state(sid(1)), Some(StreamState::Reset));
    assert_eq!(t.buffered_len(sid(1)), 0);
    assert_eq!(sent(&mut t), [Frame::new(sid(1), Vec::new())]);
    assert!(matches!(
        t.read(sid(1), &mut [0; 4]),
        Err(StreamError::BufferOverflow { .. })
    ));
}

// covers: STREAM-10
#[test]
fn s6_open_zero_length_frame_gives_eof_after_the_buffered_data() {
    let mut t = in_state(StreamState::Open);
    let mut input = frame_bytes(1, b"last words");
    input.extend(frame_bytes(1, b""));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Data {
                stream_id: sid(1),
                len: 10
            },
            Event::Finished { stream_id: sid(1) }
        ]
    );
    assert_eq!(t.state(sid(1)), Some(StreamState::RemoteClosed));
    assert_eq!(read_all(&mut t, 1), (b"last words".to_vec(), Ok(Read::Eof)));
    assert_eq!(t.read(sid(1), &mut [0; 4]), Ok(Read::Eof));
}

// covers: FRAME-9, STREAM-7, FRAME-10, FRAME-11
#[test]
fn s7_open_local_write_sends_frames_of_at_most_the_maximum() {
    let mut t = in_state(StreamState::Open);
    t.write(sid(1), b"").unwrap();
    assert!(
        sent(&mut t).is_empty(),
        "an empty write sends nothing, not a close"
    );
    let big = vec![9u8; frame::MIN_MAX_PAYLOAD * 2 + 3];
    t.write(sid(1), &big).unwrap();
    let frames = sent(&mut t);
    let lens: Vec<usize> = frames.iter().map(|f| f.payload.len()).collect();
    assert_eq!(lens, [frame::MIN_MAX_PAYLOAD, frame::MIN_MAX_PAYLOAD, 3]);
    assert!(frames.iter().all(|f| f.stream_id == sid(1)));
    assert_eq!(t.state(sid(1)), Some(StreamState::Open));
}

// covers: STREAM-8, STREAM-9
#[test]
fn s8_open_local_close_sends_one_zero_length_frame() {
    let mut t = in_state(StreamState::Open);
    t.receive(&frame_bytes(1, b"unread")).unwrap();
    t.close(sid(1)).unwrap();
    assert_eq!(sent(&mut t), [Frame::new(sid(1), Vec::new())]);
    assert_eq!(t.state(sid(1)), Some(StreamState::LocalClosed));
    assert_eq!(t.buffered_len(sid(1)), 0, "buffered data is dropped");
}

// covers: STREAM-9
#[test]
fn s9_remote_closed_data_frame_is_discarded() {
    let mut t = in_state(StreamState::RemoteClosed);
    t.receive(&frame_bytes(1, b"too late")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(1),
            len: 8,
            reason: DiscardReason::ClosedByPeer
        }]
    );
    assert_eq!(t.read(sid(1), &mut [0; 8]), Ok(Read::Eof));
}

// covers: STREAM-9
#[test]
fn s10_remote_closed_zero_length_frame_is_discarded() {
    let mut t = in_state(StreamState::RemoteClosed);
    t.receive(&frame_bytes(1, b"")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(1),
            len: 0,
            reason: DiscardReason::ClosedByPeer
        }]
    );
    assert_eq!(t.state(sid(1)), Some(StreamState::RemoteClosed));
}

// covers: STREAM-9
#[test]
fn s11_remote_closed_local_write_fails_and_sends_nothing() {
    let mut t = in_state(StreamState::RemoteClosed);
    assert_eq!(
        t.write(sid(1), b"x"),
        Err(StreamError::ClosedByPeer(sid(1)))
    );
    assert!(sent(&mut t).is_empty());
}

// covers: STREAM-8
#[test]
fn s12_remote_closed_local_close_sends_a_close_and_forgets() {
    let mut t = in_state(StreamState::RemoteClosed);
    t.close(sid(1)).unwrap();
    assert_eq!(sent(&mut t), [Frame::new(sid(1), Vec::new())]);
    assert_eq!(t.state(sid(1)), None);
}

// covers: STREAM-9
#[test]
fn s13_local_closed_data_frame_is_discarded() {
    let mut t = in_state(StreamState::LocalClosed);
    t.receive(&frame_bytes(1, b"in flight")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(1),
            len: 9,
            reason: DiscardReason::ClosedLocally
        }]
    );
    assert_eq!(t.buffered_len(sid(1)), 0);
}

#[test]
fn s14_local_closed_zero_length_frame_forgets_the_stream() {
    let mut t = in_state(StreamState::LocalClosed);
    t.receive(&frame_bytes(1, b"")).unwrap();
    assert!(events(&mut t).is_empty());
    assert_eq!(t.state(sid(1)), None);
    assert!(sent(&mut t).is_empty());
}

// covers: STREAM-8
#[test]
fn s15_local_closed_local_write_fails() {
    let mut t = in_state(StreamState::LocalClosed);
    assert_eq!(
        t.write(sid(1), b"x"),
        Err(StreamError::ClosedLocally(sid(1)))
    );
    assert!(sent(&mut t).is_empty());
}

// covers: STREAM-8
#[test]
fn s16_local_closed_local_close_is_a_no_op() {
    let mut t = in_state(StreamState::LocalClosed);
    t.close(sid(1)).unwrap();
    assert!(sent(&mut t).is_empty(), "no second zero-length frame");
    assert_eq!(t.state(sid(1)), Some(StreamState::LocalClosed));
}

// covers: STREAM-12, TRANS-7
#[test]
fn s17_connection_ends_readers_fail_except_after_a_peer_close() {
    for end in ["eof", "local", "error"] {
        let mut t = StreamTable::new(Role::Plugin);
        for id in [1, 3, 5] {
            t.connect(sid(id)).unwrap();
        }
        let mut input = frame_bytes(1, b"buffered");
        input.extend(frame_bytes(3, b"done"));
        input.extend(frame_bytes(3, b""));
        t.receive(&input).unwrap();
        match end {
            "eof" => t.end_of_input().unwrap(),
            "local" => t.close_connection(),
            _ => {
                assert!(t.receive(&[0x01, 0x00]).is_err());
            }
        }
        let expected_end = match end {
            "eof" => ConnectionEnd::PeerClosed,
            "local" => ConnectionEnd::LocalClose,
            _ => ConnectionEnd::Error(ConnectionError::Frame(
                frame::FrameError::NegativeStreamId { value: -1 },
            )),
        };
        assert_eq!(t.ended(), Some(&expected_end));
        let ended = Err(StreamError::ConnectionEnded(expected_end.clone()));
        // Data already received may be delivered first, then an error, not end-of-stream.
        assert_eq!(
            read_all(&mut t, 1),
            (b"buffered".to_vec(), ended.clone()),
            "{end}"
        );
        // A stream the peer had closed still ends cleanly.
        assert_eq!(
            read_all(&mut t, 3),
            (b"done".to_vec(), Ok(Read::Eof)),
            "{end}"
        );
        assert_eq!(read_all(&mut t, 5), (Vec::new(), ended.clone()), "{end}");
        // Writers fail and nothing is sent; closing is harmless.
        let write = t.write(sid(5), b"x").map(|_| Read::Empty);
        assert_eq!(write, ended.clone(), "{end}");
        t.close(sid(5)).unwrap();
        assert!(matches!(t.open(), Err(StreamError::ConnectionEnded(_))));
        assert!(sent(&mut t).is_empty(), "{end}");
    }
}

// covers: STREAM-15
#[test]
fn s18_reset_data_frame_is_discarded() {
    let mut t = in_state(StreamState::Reset);
    t.receive(&frame_bytes(1, b"more")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(1),
            len: 4,
            reason: DiscardReason::StreamReset
        }]
    );
}

// covers: STREAM-15
#[test]
fn s19_reset_zero_length_frame_forgets_the_stream() {
    let mut t = in_state(StreamState::Reset);
    t.receive(&frame_bytes(1, b"")).unwrap();
    assert!(events(&mut t).is_empty());
    assert_eq!(t.state(sid(1)), None);
}

// covers: STREAM-15
#[test]
fn s20_reset_local_write_and_read_fail() {
    let mut t = in_state(StreamState::Reset);
    assert!(matches!(
        t.write(sid(1), b"x"),
        Err(StreamError::BufferOverflow { .. })
    ));
    assert!(matches!(
        t.read(sid(1), &mut [0; 1]),
        Err(StreamError::BufferOverflow { .. })
    ));
    assert!(sent(&mut t).is_empty());
}

// covers: STREAM-15
#[test]
fn s21_reset_local_close_is_a_no_op() {
    let mut t = in_state(StreamState::Reset);
    t.close(sid(1)).unwrap();
    assert!(sent(&mut t).is_empty(), "the reset already sent the close");
    assert_eq!(t.state(sid(1)), Some(StreamState::Reset));
}

// covers: STREAM-1, STREAM-7, HS-2, HS-3
#[test]
fn nothing_but_the_announcement_is_ever_sent_on_stream_0() {
    for role in [Role::Host, Role::Plugin] {
        let mut t = StreamTable::new(role);
        assert_eq!(
            t.write(StreamId::CONTROL, b"x"),
            Err(StreamError::UnknownStream(StreamId::CONTROL))
        );
        assert_eq!(
            t.close(StreamId::CONTROL),
            Err(StreamError::UnknownStream(StreamId::CONTROL))
        );
        assert!(sent(&mut t).is_empty());
    }
    let mut host = StreamTable::new(Role::Host);
    assert_eq!(host.announce(), Err(StreamError::AnnouncementNotAllowed));
    let mut plugin = StreamTable::new(Role::Plugin);
    plugin.announce().unwrap();
    assert_eq!(plugin.announce(), Err(StreamError::AnnouncementNotAllowed));
}

// --- the host's handshake (Table 4-2) ---

fn announcement(id: i64) -> Vec<u8> {
    let mut out = Vec::new();
    assert!(handshake::encode_announcement_frame(sid(id), &mut out));
    out
}

// covers: HS-5, HS-7
#[test]
fn h1_awaiting_valid_announcement_connects_the_hooks_stream() {
    let mut t = StreamTable::new(Role::Host);
    let mut input = announcement(2);
    // The plugin's first hook reply arrives right behind it and is not lost.
    input.extend(frame_bytes(2, b"reply"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::HandshakeComplete { hooks: sid(2) },
            Event::Data {
                stream_id: sid(2),
                len: 5
            }
        ]
    );
    assert_eq!(t.handshake().unwrap().hooks(), Some(sid(2)));
    assert_eq!(t.state(sid(2)), Some(StreamState::Open));
    // The host writes first on the hooks stream.
    t.write(sid(2), b"request").unwrap();
    assert_eq!(sent(&mut t), [Frame::new(sid(2), b"request".to_vec())]);
}

// covers: HS-5, HS-9, FRAME-14
#[test]
fn h2_awaiting_invalid_announcement_is_a_connection_error() {
    for (payload, kind) in [
        (&[0x01, 0x04][..], "bad_control_byte"),
        (&[0x00][..], "short_payload"),
        (&[][..], "short_payload"),
        (&[0x00, 0x80][..], "short_payload"),
        (&[0x00, 0x04, 0x00][..], "trailing_bytes"),
        (&[0x00, 0x02][..], "invalid_hooks_stream_id"),
        (&[0x00, 0x00][..], "invalid_hooks_stream_id"),
        (
            &[
                0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
            ][..],
            "varint_overflow",
        ),
    ] {
        let mut t = StreamTable::new(Role::Host);
        let mut input = frame_bytes(0, payload);
        input.extend(frame_bytes(2, b"never seen"));
        let err = t.receive(&input).unwrap_err();
        assert_eq!(err.kind(), kind, "{payload:02x?}");
        let requirement = if kind == "invalid_hooks_stream_id" {
            "HS-9"
        } else {
            "HS-5"
        };
        assert_eq!(err.requirement(), requirement, "{payload:02x?}");
        assert!(
            events(&mut t).is_empty(),
            "nothing after the error is processed"
        );
        assert!(matches!(t.ended(), Some(ConnectionEnd::Error(_))));
        assert_eq!(t.receive(&announcement(2)), Err(err), "the error is final");
    }
}

// covers: HS-5
#[test]
fn h2_a_long_stream_0_frame_reports_every_trailing_byte() {
    let mut t = StreamTable::new(Role::Host);
    let mut payload = vec![0x00, 0x04];
    payload.extend(vec![0xaa; 5000]);
    let err = t.receive(&frame_bytes(0, &payload)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "HS-5: 5000 byte(s) follow the hooks stream id in the announcement"
    );
}

// covers: STREAM-5
#[test]
fn h3_awaiting_data_frame_is_discarded() {
    let mut t = StreamTable::new(Role::Host);
    t.receive(&frame_bytes(2, b"early")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(2),
            len: 5,
            reason: DiscardReason::NotConnected
        }]
    );
    assert_eq!(t.handshake().unwrap().hooks(), None);
    t.receive(&announcement(2)).unwrap();
    assert_eq!(events(&mut t), [Event::HandshakeComplete { hooks: sid(2) }]);
}

// covers: HS-4
#[test]
fn h4_awaiting_start_timeout_fails_the_start() {
    let mut t = StreamTable::new(Role::Host);
    let err = t.on_start_timeout().unwrap_err();
    assert_eq!(err.kind(), "timeout");
    assert_eq!(err.requirement(), "HS-4");
    assert!(matches!(t.ended(), Some(ConnectionEnd::Error(_))));
    // After the handshake the timeout has no effect.
    let mut t = StreamTable::new(Role::Host);
    t.receive(&announcement(2)).unwrap();
    t.on_start_timeout().unwrap();
    assert_eq!(t.ended(), None);
}

// covers: HS-6
#[test]
fn h5_awaiting_end_of_file_fails_the_start() {
    let mut t = StreamTable::new(Role::Host);
    let err = t.end_of_input().unwrap_err();
    assert_eq!((err.kind(), err.requirement()), ("end_of_input", "HS-6"));
    // End of file inside the announcement frame is a truncated frame.
    let mut t = StreamTable::new(Role::Host);
    t.receive(&announcement(2)[..3]).unwrap();
    assert_eq!(t.end_of_input().unwrap_err().kind(), "truncated");
}

// covers: HS-8, STREAM-14
#[test]
fn h6_ready_stream_0_frame_is_discarded_without_blocking() {
    let mut t = StreamTable::new(Role::Host);
    let mut input = announcement(2);
    input.extend(frame_bytes(0, &vec![0x55; 70_000]));
    input.extend(frame_bytes(0, &announcement(4)));
    input.extend(frame_bytes(2, b"still flowing"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::HandshakeComplete { hooks: sid(2) },
            Event::Discarded {
                stream_id: StreamId::CONTROL,
                len: 70_000,
                reason: DiscardReason::ControlAfterHandshake
            },
            Event::Discarded {
                stream_id: StreamId::CONTROL,
                len: 4,
                reason: DiscardReason::ControlAfterHandshake
            },
            Event::Data {
                stream_id: sid(2),
                len: 13
            },
        ]
    );
    assert_eq!(
        t.handshake().unwrap().hooks(),
        Some(sid(2)),
        "a second announcement changes nothing"
    );
}

// covers: TRANS-7
#[test]
fn h7_ready_end_of_file_ends_the_connection() {
    let mut t = StreamTable::new(Role::Host);
    t.receive(&announcement(2)).unwrap();
    t.end_of_input().unwrap();
    assert_eq!(t.ended(), Some(&ConnectionEnd::PeerClosed));
    assert!(matches!(
        t.read(sid(2), &mut [0; 1]),
        Err(StreamError::ConnectionEnded(_))
    ));
}

// covers: HS-1, STREAM-4
#[test]
fn p1_start_announces_hooks_stream_2_as_the_first_frame() {
    let mut t = StreamTable::new(Role::Plugin);
    let hooks = t.announce().unwrap();
    assert_eq!(hooks, sid(2));
    assert_eq!(
        t.state(hooks),
        Some(StreamState::Open),
        "registered before it is announced"
    );
    let mut tx = Vec::new();
    t.take_transmit(&mut tx);
    assert_eq!(tx, [0x00, 0x04, 0x00, 0x04]);
    // The host's first request is delivered.
    t.receive(&frame_bytes(2, b"call")).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Data {
            stream_id: sid(2),
            len: 4
        }]
    );
}

// covers: HS-2, HS-8, HS-3
#[test]
fn p2_announced_stream_0_frame_is_discarded() {
    let mut t = StreamTable::new(Role::Plugin);
    t.announce().unwrap();
    let mut input = frame_bytes(0, b"\x00\x04");
    input.extend(frame_bytes(2, b"call"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::Discarded {
                stream_id: StreamId::CONTROL,
                len: 2,
                reason: DiscardReason::ControlFromHost
            },
            Event::Data {
                stream_id: sid(2),
                len: 4
            },
        ]
    );
}

// covers: HS-7
#[test]
fn h1_the_hooks_stream_is_connected_even_at_the_open_stream_limit() {
    // Found by the stream_table fuzz target.
    let limits = Limits {
        max_streams: 1,
        ..Limits::default()
    };
    let mut t = StreamTable::with_limits(Role::Host, limits).unwrap();
    t.open().unwrap();
    let mut input = announcement(2);
    input.extend(frame_bytes(2, b"hi"));
    t.receive(&input).unwrap();
    assert_eq!(
        events(&mut t),
        [
            Event::HandshakeComplete { hooks: sid(2) },
            Event::Data {
                stream_id: sid(2),
                len: 2
            }
        ]
    );
    assert_eq!(t.state(sid(2)), Some(StreamState::Open));
}

// covers: STREAM-9
#[test]
fn the_rest_of_a_frame_never_reaches_a_stream_connected_again_under_its_id() {
    let limits = Limits {
        max_streams: 1,
        ..Limits::default()
    };
    let mut t = StreamTable::with_limits(Role::Plugin, limits).unwrap();
    t.connect(sid(1)).unwrap();
    t.receive(&[0x02, 0x0c, b'a', b'b', b'c']).unwrap();
    t.close(sid(1)).unwrap();
    // Push stream 1 out of the closing list, then connect it again.
    t.connect(sid(3)).unwrap();
    t.close(sid(3)).unwrap();
    assert_eq!(t.state(sid(1)), None);
    t.connect(sid(1)).unwrap();
    t.receive(b"def").unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Discarded {
            stream_id: sid(1),
            len: 6,
            reason: DiscardReason::ClosedLocally
        }]
    );
    assert_eq!(t.buffered_len(sid(1)), 0);
    assert_eq!(t.read(sid(1), &mut [0; 8]), Ok(Read::Empty));
}

// covers: STREAM-15
#[test]
fn s5_a_reset_is_reported_at_the_header_even_if_the_payload_never_arrives() {
    let mut t = plugin_with_stream_1();
    let mut header = [0u8; frame::MAX_HEADER_LEN];
    let big = MIN_STREAM_BUFFER;
    for _ in 0..big / frame::MIN_MAX_PAYLOAD {
        t.receive(&frame_bytes(1, &vec![1; frame::MIN_MAX_PAYLOAD]))
            .unwrap();
    }
    assert_eq!(t.buffered_len(sid(1)), big);
    events(&mut t);
    let n = frame::encode_header(sid(1), 10, &mut header);
    t.receive(&header[..n]).unwrap();
    assert_eq!(
        events(&mut t),
        [Event::Reset {
            stream_id: sid(1),
            dropped: big + 10
        }]
    );
    assert_eq!(t.state(sid(1)), Some(StreamState::Reset));
}

// covers: HS-4
#[test]
fn h4_the_start_timeout_after_a_connection_error_reports_that_error() {
    let mut t = StreamTable::new(Role::Host);
    let err = t.receive(&[0x01, 0x00]).unwrap_err();
    assert_eq!(t.on_start_timeout(), Err(err));
}
