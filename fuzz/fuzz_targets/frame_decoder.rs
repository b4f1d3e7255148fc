//! Any split of the input gives the same frames and the same error (FRAME-12, FRAME-13,
//! FRAME-14): a [`FrameDecoder`] and a [`FrameAssembler`] fed the input in arbitrary chunks agree
//! with [`frame::decode_frame`] run over the whole input at once. Every decoded frame in minimal
//! form re-encodes to exactly its input bytes (FRAME-2), one in another form to its minimal
//! encoding (FRAME-3), and one above the send limit not at all (FRAME-9).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::frame::{
    self, Chunk, Frame, FrameAssembler, FrameDecoder, FrameError, MAX_PAYLOAD_CEILING,
    MIN_MAX_PAYLOAD,
};
use rpcplugin_codec::varint;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Picks the receiver's payload limit in [MIN_MAX_PAYLOAD, MAX_PAYLOAD_CEILING].
    limit: u32,
    /// Chunk sizes; the last chunk takes whatever is left.
    splits: Vec<u16>,
    /// The input: the rest of the fuzzer's bytes.
    data: &'a [u8],
}

/// What decoding the whole input at once gives: the frames, then either the connection error
/// found in the bytes or what `finish` must report at the end of the input.
fn reference(data: &[u8], max_payload: usize) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut frames = Vec::new();
    let mut rest = data;
    loop {
        match frame::decode_frame(rest, max_payload) {
            Err(e) => return (frames, Err(e)),
            Ok(Some((f, used))) => {
                assert!(used > 0 && used <= rest.len());
                assert!(
                    used - f.payload.len() >= 2 && used - f.payload.len() <= frame::MAX_HEADER_LEN
                );
                let header = used - f.payload.len();
                let minimal = varint::encoded_len(f.stream_id.get())
                    + varint::encoded_len(f.payload.len() as i64);
                assert!(header >= minimal);
                let frame = Frame::new(f.stream_id, f.payload);
                // A frame in minimal form re-encodes to exactly its bytes (FRAME-2); another
                // form (FRAME-3) to fewer bytes.
                if frame.payload.len() <= MIN_MAX_PAYLOAD {
                    let mut wire = Vec::new();
                    frame.encode(&mut wire).unwrap();
                    if header == minimal {
                        assert_eq!(
                            wire,
                            &rest[..used],
                            "a minimal frame re-encodes differently"
                        );
                    } else {
                        assert_eq!(wire.len(), minimal + frame.payload.len());
                    }
                } else {
                    // FRAME-9: no sender sends it.
                    assert!(frame.encode(&mut Vec::new()).is_err());
                }
                frames.push(frame);
                rest = &rest[used..];
            }
            Ok(None) => break,
        }
    }
    if rest.is_empty() {
        return (frames, Ok(()));
    }
    // The input ends inside a frame (FRAME-13).
    let end = match frame::decode_header(rest, max_payload) {
        Ok(None) => FrameError::TruncatedHeader { have: rest.len() },
        Ok(Some((h, n))) => FrameError::TruncatedPayload {
            stream_id: h.stream_id,
            received: rest.len() - n,
            len: h.len,
        },
        Err(e) => panic!("decode_header fails ({e:?}) where decode_frame did not"),
    };
    (frames, Err(end))
}

fn chunks<'a>(data: &'a [u8], splits: &[u16]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(splits.len() + 1);
    let mut rest = data;
    for &s in splits {
        let n = usize::from(s).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
    }
    out.push(rest);
    out
}

/// Feeds the chunks to a `FrameDecoder`, assembling frames from its chunks and checking that
/// they are well formed.
fn incremental(pieces: &[&[u8]], max_payload: usize) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut decoder = FrameDecoder::with_max_payload(max_payload).unwrap();
    assert_eq!(decoder.max_payload(), max_payload);
    let mut frames = Vec::new();
    // The frame being received: its header and the payload so far.
    let mut partial: Option<(frame::FrameHeader, Vec<u8>)> = None;
    for piece in pieces {
        let mut input = *piece;
        loop {
            let before = input.len();
            match decoder.decode(&mut input) {
                Err(e) => {
                    // FRAME-14: the error sticks.
                    assert_eq!(decoder.error(), Some(&e));
                    let mut again = &b"\x02\x00"[..];
                    assert_eq!(decoder.decode(&mut again), Err(e.clone()));
                    assert_eq!(decoder.finish(), Err(e.clone()));
                    return (frames, Err(e));
                }
                Ok(None) => {
                    assert!(input.is_empty(), "Ok(None) with {} bytes left", input.len());
                    break;
                }
                Ok(Some(Chunk::Header(h))) => {
                    assert!(partial.is_none(), "a header inside a frame");
                    assert!(h.len <= max_payload);
                    if h.len == 0 {
                        frames.push(Frame::new(h.stream_id, Vec::new()));
                        assert!(decoder.is_at_boundary());
                    } else {
                        partial = Some((h, Vec::with_capacity(h.len.min(1 << 16))));
                    }
                }
                Ok(Some(Chunk::Payload {
                    stream_id,
                    data,
                    last,
                })) => {
                    assert!(!data.is_empty(), "an empty payload piece");
                    assert!(input.len() < before, "a payload piece consumed nothing");
                    let (h, buf) = partial.as_mut().expect("a payload piece outside a frame");
                    assert_eq!(stream_id, h.stream_id);
                    buf.extend_from_slice(data);
                    assert!(buf.len() <= h.len);
                    assert_eq!(last, buf.len() == h.len);
                    if last {
                        let (h, buf) = partial.take().unwrap();
                        frames.push(Frame::new(h.stream_id, buf));
                        assert!(decoder.is_at_boundary());
                    }
                }
            }
        }
    }
    assert_eq!(decoder.error(), None);
    let end = decoder.finish();
    if partial.is_some() {
        assert!(
            matches!(end, Err(FrameError::TruncatedPayload { .. })),
            "{end:?}"
        );
    }
    if let Err(e) = &end {
        // Finishing again repeats the error.
        assert_eq!(decoder.finish().as_ref(), Err(e));
    }
    (frames, end)
}

fn assembled(pieces: &[&[u8]], max_payload: usize) -> (Vec<Frame>, Result<(), FrameError>) {
    let mut assembler =
        FrameAssembler::with_decoder(FrameDecoder::with_max_payload(max_payload).unwrap());
    let mut frames = Vec::new();
    for piece in pieces {
        if let Err(e) = assembler.push(piece, &mut frames) {
            let mut more = Vec::new();
            assert_eq!(assembler.push(b"\x02\x00", &mut more), Err(e.clone()));
            assert!(more.is_empty());
            assert_eq!(assembler.finish(), Err(e.clone()));
            return (frames, Err(e));
        }
    }
    (frames, assembler.finish())
}

fuzz_target!(|input: Input<'_>| {
    let span = (MAX_PAYLOAD_CEILING - MIN_MAX_PAYLOAD + 1) as u32;
    // Mostly the default limit, which small inputs can exceed with a 3-byte length varint.
    let max_payload = if input.limit & 1 == 0 {
        MIN_MAX_PAYLOAD
    } else {
        MIN_MAX_PAYLOAD + ((input.limit >> 1) % span) as usize
    };
    let (want_frames, want_end) = reference(input.data, max_payload);

    let pieces = chunks(input.data, &input.splits);
    assert_eq!(pieces.concat(), input.data);

    let (frames, end) = incremental(&pieces, max_payload);
    assert_eq!(frames, want_frames, "FrameDecoder frames differ");
    assert_eq!(end, want_end, "FrameDecoder end differs");

    let (frames, end) = assembled(&pieces, max_payload);
    assert_eq!(frames, want_frames, "FrameAssembler frames differ");
    assert_eq!(end, want_end, "FrameAssembler end differs");

    // Re-encoding the frames gives a minimal encoding that decodes to the same frames.
    if want_end.is_ok()
        && want_frames
            .iter()
            .all(|f| f.payload.len() <= MIN_MAX_PAYLOAD)
    {
        let mut wire = Vec::new();
        for f in &want_frames {
            f.encode(&mut wire).unwrap();
        }
        assert!(wire.len() <= input.data.len());
        assert_eq!(reference(&wire, max_payload), (want_frames, Ok(())));
    }
});
