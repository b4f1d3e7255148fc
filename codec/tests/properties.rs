//! Property tests of the codec's invariants: varint and frame round-trips, split invariance of
//! the decoders and of the stream table, and no panic on arbitrary input.

use proptest::collection::vec;
use proptest::prelude::*;
use rpcplugin_codec::frame::{
    self, Chunk, Frame, FrameAssembler, FrameDecoder, FrameError, StreamId, MIN_MAX_PAYLOAD,
};
use rpcplugin_codec::stream::{Event, Read, Role, StreamTable};
use rpcplugin_codec::varint;
use rpcplugin_test_support::split_at_cuts as split;

fn stream_id() -> impl Strategy<Value = StreamId> {
    prop_oneof![
        0i64..8,
        0i64..=i64::MAX,
        Just(i64::MAX),
        (0u32..63).prop_map(|b| 1i64 << b),
    ]
    .prop_map(|v| StreamId::new(v).unwrap())
}

fn frames() -> impl Strategy<Value = Vec<Frame>> {
    vec(
        (stream_id(), vec(any::<u8>(), 0..300)).prop_map(|(id, p)| Frame::new(id, p)),
        0..24,
    )
}

fn assemble(pieces: &[&[u8]]) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut asm = FrameAssembler::new();
    let mut out = Vec::new();
    for p in pieces {
        if let Err(e) = asm.push(p, &mut out) {
            return (out, Err(e));
        }
    }
    let end = asm.finish();
    (out, end)
}

proptest! {
    // covers: FRAME-2, FRAME-3
    #[test]
    fn varint_round_trips_and_is_minimal(v in any::<i64>()) {
        let mut buf = [0u8; varint::MAX_LEN];
        let n = varint::encode(v, &mut buf);
        prop_assert_eq!(n, varint::encoded_len(v));
        prop_assert_eq!(varint::decode(&buf[..n]), Ok((v, n)));
        // Minimal: the last byte is not a padding zero (except for 0 itself).
        prop_assert!(n == 1 || buf[n - 1] != 0);
        // Every proper prefix is incomplete.
        for k in 0..n {
            let incomplete = matches!(varint::decode(&buf[..k]), Err(varint::VarintError::Incomplete { .. }));
            prop_assert!(incomplete);
        }
    }

    // covers: FRAME-3
    #[test]
    fn non_minimal_varints_decode_to_their_value(v in 0u64..(1 << 56), pad in 1usize..3) {
        let mut buf = [0u8; varint::MAX_LEN];
        let n = varint::encode_unsigned(v, &mut buf);
        if n + pad <= varint::MAX_LEN {
            let mut bytes = buf[..n].to_vec();
            *bytes.last_mut().unwrap() |= 0x80;
            bytes.extend(std::iter::repeat_n(0x80u8, pad - 1));
            bytes.push(0x00);
            prop_assert_eq!(varint::decode_unsigned(&bytes), Ok((v, n + pad)));
        }
    }

    // covers: FRAME-1, FRAME-2, FRAME-12
    #[test]
    fn frame_sequences_round_trip_under_any_split(fs in frames(), cuts in vec(any::<usize>(), 0..12)) {
        let mut bytes = Vec::new();
        for f in &fs {
            f.encode(&mut bytes).unwrap();
        }
        // Contiguous, zero-copy decoding.
        let mut at = 0;
        let mut decoded = Vec::new();
        while at < bytes.len() {
            let (f, n) = frame::decode_frame(&bytes[at..], MIN_MAX_PAYLOAD).unwrap().unwrap();
            decoded.push(Frame::new(f.stream_id, f.payload));
            at += n;
        }
        prop_assert_eq!(&decoded, &fs);
        // Any split gives the same frames.
        let (got, end) = assemble(&split(&bytes, &cuts));
        prop_assert_eq!(&got, &fs);
        prop_assert_eq!(end, Ok(()));
        // One byte at a time too.
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let (got, _) = assemble(&singles);
        prop_assert_eq!(got, fs);
    }

    // covers: FRAME-12, FRAME-13
    #[test]
    fn any_input_decodes_the_same_under_any_split(bytes in vec(any::<u8>(), 0..200), cuts in vec(any::<usize>(), 0..8)) {
        let whole = assemble(&[&bytes]);
        let pieces = assemble(&split(&bytes, &cuts));
        prop_assert_eq!(whole, pieces);
    }

    // covers: FRAME-13
    #[test]
    fn truncation_anywhere_inside_a_frame_is_an_error(f in (stream_id(), vec(any::<u8>(), 0..40)), cut in any::<usize>()) {
        let mut bytes = Vec::new();
        frame::encode_frame(f.0, &f.1, &mut bytes).unwrap();
        let cut = 1 + cut % bytes.len().max(1);
        if cut < bytes.len() {
            let (got, end) = assemble(&[&bytes[..cut]]);
            prop_assert!(got.is_empty());
            prop_assert_eq!(end.unwrap_err().kind(), "truncated");
        }
    }

    // covers: FRAME-12, STREAM-5, STREAM-10
    #[test]
    fn stream_table_events_do_not_depend_on_the_split(
        fs in vec((0i64..7, vec(any::<u8>(), 0..50)), 0..30),
        cuts in vec(any::<usize>(), 0..10),
    ) {
        let mut bytes = Vec::new();
        for (id, p) in &fs {
            frame::encode_frame(StreamId::new(*id).unwrap(), p, &mut bytes).unwrap();
        }
        let run = |pieces: Vec<&[u8]>| {
            let mut t = StreamTable::new(Role::Plugin);
            t.connect(StreamId::new(1).unwrap()).unwrap();
            t.connect(StreamId::new(3).unwrap()).unwrap();
            let mut r = Ok(());
            for p in pieces {
                r = t.receive(p);
                if r.is_err() { break; }
            }
            let mut events = Vec::new();
            while let Some(e) = t.poll_event() { events.push(e); }
            let mut data = Vec::new();
            for id in [1, 3] {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while let Ok(Read::Data(n)) = t.read(StreamId::new(id).unwrap(), &mut buf) {
                    if n == 0 { break; }
                    got.extend_from_slice(&buf[..n]);
                }
                data.push(got);
            }
            let mut tx = Vec::new();
            t.take_transmit(&mut tx);
            (r, events, data, tx)
        };
        let whole = run(vec![&bytes]);
        let pieces = run(split(&bytes, &cuts));
        prop_assert_eq!(&whole, &pieces);
        // Stream 1's data is exactly the payloads sent on it before its close.
        let mut expect = Vec::new();
        for (id, p) in &fs {
            if *id == 1 {
                if p.is_empty() { break; }
                expect.extend_from_slice(p);
            }
        }
        prop_assert_eq!(&whole.2[0], &expect);
        let finished = whole.1.iter().any(|e| matches!(e, Event::Finished { stream_id } if stream_id.get() == 1));
        prop_assert_eq!(finished, fs.iter().any(|(id, p)| *id == 1 && p.is_empty()));
    }

    // covers: FRAME-14
    #[test]
    fn decoder_never_panics_and_errors_are_sticky(bytes in vec(any::<u8>(), 0..300)) {
        let mut d = FrameDecoder::new();
        let mut input = &bytes[..];
        let mut failed = None;
        loop {
            match d.decode(&mut input) {
                Ok(Some(Chunk::Header(h))) => prop_assert!(h.len <= MIN_MAX_PAYLOAD),
                Ok(Some(Chunk::Payload { .. })) => {}
                Ok(None) => break,
                Err(e) => { failed = Some(e); break; }
            }
        }
        if let Some(e) = failed {
            let mut more: &[u8] = &[0, 0];
            prop_assert_eq!(d.decode(&mut more), Err(e.clone()));
            prop_assert_eq!(d.finish(), Err(e));
        }
    }
}
