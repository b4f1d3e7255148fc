//! The announcement (HS-1, HS-5): parsing arbitrary bytes never panics; an accepted id is a
//! positive even number whose announcement round-trips, byte for byte when the input was
//! minimal; the host's state machine gives the same verdict on the kept prefix the stream table
//! stores as on the whole payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::frame::{self, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::handshake::{
    self, ControlAction, HandshakeError, HandshakeState, HostHandshake, CONTROL_BYTE,
    MAX_ANNOUNCEMENT_LEN,
};
use rpcplugin_codec::varint;

fuzz_target!(|data: &[u8]| {
    let parsed = handshake::parse_announcement(data);
    match &parsed {
        Ok(id) => {
            assert!(id.is_plugin_allocated(), "accepted hooks stream {id}");
            assert_eq!(data[0], CONTROL_BYTE);
            let a = handshake::announcement(*id).expect("an accepted id can be announced");
            assert!(a.len() <= MAX_ANNOUNCEMENT_LEN);
            assert_eq!(handshake::parse_announcement(&a), Ok(*id));
            let minimal = data.len() == 1 + varint::encoded_len(id.get());
            if minimal {
                assert_eq!(
                    a, data,
                    "the announcement of {id} differs from the minimal input"
                );
            } else {
                assert!(a.len() < data.len());
            }
            // The announcement frame decodes to a stream-0 frame carrying it.
            let mut wire = Vec::new();
            assert!(handshake::encode_announcement_frame(*id, &mut wire));
            let (f, used) = frame::decode_frame(&wire, MIN_MAX_PAYLOAD)
                .unwrap()
                .unwrap();
            assert_eq!(
                (f.stream_id, f.payload, used),
                (StreamId::CONTROL, &a[..], wire.len())
            );
        }
        Err(HandshakeError::ShortPayload { len }) => assert_eq!(*len, data.len()),
        Err(HandshakeError::BadControlByte { byte }) => assert_eq!(Some(byte), data.first()),
        Err(HandshakeError::TrailingBytes { extra }) => assert!(*extra > 0 && *extra < data.len()),
        Err(HandshakeError::InvalidHooksStreamId { value }) => {
            assert!(*value <= 0 || value % 2 != 0, "rejected {value}")
        }
        Err(HandshakeError::VarintOverflow) => assert!(data.len() > varint::MAX_LEN),
        Err(e) => panic!("parse_announcement reports {e:?}"),
    }

    // The stream table keeps only MAX_ANNOUNCEMENT_LEN + 1 bytes of the first stream-0 frame:
    // the verdict must not depend on the rest.
    let mut whole = HostHandshake::new();
    let full = whole.on_control_frame(data);
    let mut kept = HostHandshake::new();
    let prefix = &data[..data.len().min(MAX_ANNOUNCEMENT_LEN + 1)];
    let short = kept.on_control_frame_of_len(prefix, data.len());
    assert_eq!(full, short);
    assert_eq!(whole.state(), kept.state());
    match (&parsed, &full) {
        (Ok(id), Ok(ControlAction::ConnectHooks(h))) => {
            assert_eq!(id, h);
            assert_eq!(whole.hooks(), Some(*id));
            // Later stream-0 frames are discarded (HS-8); the timeout and end of input are
            // not handshake matters any more.
            assert_eq!(whole.on_control_frame(data), Ok(ControlAction::Discard));
            assert_eq!(whole.on_timeout(), Ok(()));
            assert_eq!(whole.on_end_of_input(), Ok(()));
        }
        (Err(e), Err(f)) => {
            assert_eq!(e, f);
            assert_eq!(whole.state(), &HandshakeState::Failed(e.clone()));
            assert_eq!(whole.on_control_frame(data), Err(e.clone()));
            assert_eq!(whole.on_timeout(), Err(e.clone()));
        }
        other => panic!("parse_announcement and HostHandshake disagree: {other:?}"),
    }
});
