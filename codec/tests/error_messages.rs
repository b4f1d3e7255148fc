//! Snapshots of every error message the codec produces. Messages are part of the product: the
//! conformance reports quote them, and each names the requirement it enforces.

use rpcplugin_codec::frame::{
    self, EncodeError, FrameDecoder, FrameError, HeaderField, PayloadLimitError, StreamId,
};
use rpcplugin_codec::handshake::{self, HandshakeError};
use rpcplugin_codec::stream::{
    ConnectionEnd, ConnectionError, Limits, LimitsError, Role, StreamError, StreamTable,
};
use rpcplugin_codec::varint::VarintError;

fn sid(v: i64) -> StreamId {
    StreamId::new(v).unwrap()
}

/// Decodes `bytes` to the end and returns the error it must produce.
fn frame_error(bytes: &[u8]) -> FrameError {
    let mut d = FrameDecoder::new();
    let mut input = bytes;
    loop {
        match d.decode(&mut input) {
            Ok(Some(_)) => {}
            Ok(None) => return d.finish().expect_err("the input must be malformed"),
            Err(e) => return e,
        }
    }
}

fn line(e: &dyn std::error::Error) -> String {
    e.to_string()
}

// covers: FRAME-4, FRAME-5, FRAME-6, FRAME-8, FRAME-9, FRAME-13
#[test]
fn frame_error_messages() {
    let errors: Vec<(&str, String)> = vec![
        ("stream id overflow", line(&frame_error(&[0xff; 10]))),
        (
            "length overflow",
            line(&frame_error(&[
                0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
            ])),
        ),
        ("negative stream id", line(&frame_error(&[0x01, 0x00]))),
        ("negative length", line(&frame_error(&[0x04, 0x01]))),
        (
            "payload too large",
            line(&frame_error(&[0x02, 0x82, 0x80, 0x80, 0x01])),
        ),
        ("truncated header", line(&frame_error(&[0x02]))),
        (
            "truncated payload",
            line(&frame_error(&[0x02, 0x0a, 1, 2, 3])),
        ),
        (
            "encode too long",
            line(&EncodeError::PayloadTooLong {
                len: frame::MIN_MAX_PAYLOAD + 1,
            }),
        ),
        ("payload limit", line(&PayloadLimitError { requested: 10 })),
        (
            "varint incomplete",
            line(&VarintError::Incomplete { have: 3 }),
        ),
        ("varint overflow", line(&VarintError::Overflow { len: 10 })),
    ];
    insta::assert_json_snapshot!(errors);
    // The snapshot's inputs really produce these kinds.
    assert_eq!(
        frame_error(&[0xff; 10]),
        FrameError::VarintOverflow {
            field: HeaderField::StreamId
        }
    );
}

// covers: HS-4, HS-5, HS-6, HS-9
#[test]
fn handshake_error_messages() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("bad control byte", vec![0x01, 0x04]),
        ("only the control byte", vec![0x00]),
        ("incomplete varint", vec![0x00, 0x80]),
        ("overflow", [vec![0x00], vec![0xff; 10]].concat()),
        ("trailing bytes", vec![0x00, 0x04, 0x00]),
        ("odd id", vec![0x00, 0x02]),
        ("zero id", vec![0x00, 0x00]),
        ("negative id", vec![0x00, 0x03]),
    ];
    let mut errors: Vec<(String, String, String)> = cases
        .into_iter()
        .map(|(name, payload)| {
            let e = handshake::parse_announcement(&payload).expect_err(name);
            (name.to_string(), e.kind().to_string(), e.to_string())
        })
        .collect();
    for e in [HandshakeError::Timeout, HandshakeError::EndOfInput] {
        errors.push((e.kind().to_string(), e.kind().to_string(), e.to_string()));
    }
    insta::assert_json_snapshot!(errors);
}

// covers: STREAM-2, STREAM-3, STREAM-8, STREAM-9, STREAM-12, STREAM-15
#[test]
fn stream_error_messages() {
    let errors: Vec<String> = [
        StreamError::ConnectionEnded(ConnectionEnd::PeerClosed),
        StreamError::ConnectionEnded(ConnectionEnd::LocalClose),
        StreamError::ConnectionEnded(ConnectionEnd::Error(ConnectionError::Frame(
            FrameError::NegativeLength {
                stream_id: sid(3),
                value: -1,
            },
        ))),
        StreamError::UnknownStream(sid(9)),
        StreamError::ClosedLocally(sid(3)),
        StreamError::ClosedByPeer(sid(3)),
        StreamError::BufferOverflow {
            stream_id: sid(3),
            limit: 1 << 20,
        },
        StreamError::WrongParity {
            id: sid(1),
            role: Role::Host,
        },
        StreamError::AlreadyOpen(sid(2)),
        StreamError::TooManyStreams { limit: 1024 },
        StreamError::IdsExhausted,
        StreamError::AnnouncementNotAllowed,
    ]
    .iter()
    .map(|e| e.to_string())
    .collect();
    insta::assert_json_snapshot!(errors);
}

#[test]
fn limits_error_messages() {
    let bad = |l: Limits| StreamTable::with_limits(Role::Host, l).unwrap_err();
    let errors: Vec<String> = [
        bad(Limits {
            max_payload: 1,
            ..Limits::default()
        }),
        bad(Limits {
            max_payload: 32 << 20,
            ..Limits::default()
        }),
        bad(Limits {
            max_send_payload: 0,
            ..Limits::default()
        }),
        bad(Limits {
            stream_buffer: 100,
            ..Limits::default()
        }),
        bad(Limits {
            max_streams: 0,
            ..Limits::default()
        }),
    ]
    .iter()
    .map(|e: &LimitsError| e.to_string())
    .collect();
    insta::assert_json_snapshot!(errors);
}

// covers: GOB-15, GOB-17, GOB-19
#[test]
fn decode_limits_error_messages() {
    use rpcplugin_codec::gob::{DecodeLimits, MAX_MESSAGE_CEILING, MIN_MAX_DEPTH, MIN_MAX_MESSAGE};
    assert_eq!(DecodeLimits::minimum().validate(), Ok(()));
    assert_eq!(DecodeLimits::default().validate(), Ok(()));
    let errors: Vec<String> = [
        DecodeLimits {
            max_message: MIN_MAX_MESSAGE - 1,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_message: MAX_MESSAGE_CEILING + 1,
            ..DecodeLimits::default()
        },
        DecodeLimits {
            max_depth: MIN_MAX_DEPTH - 1,
            ..DecodeLimits::default()
        },
    ]
    .iter()
    .map(|l| l.validate().unwrap_err().to_string())
    .collect();
    insta::assert_json_snapshot!(errors);
}

// covers: FRAME-7, STREAM-13
#[test]
fn minimum_limits_are_valid_and_the_defaults() {
    assert_eq!(Limits::minimum().validate(), Ok(()));
    assert_eq!(Limits::minimum(), Limits::default());
    assert!(StreamTable::with_limits(Role::Plugin, Limits::minimum()).is_ok());
}
