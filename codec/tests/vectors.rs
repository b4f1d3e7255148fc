//! The test vectors of `spec/vectors/` (documented in `spec/vectors/README.md`), checked against
//! the codec in both directions.
//!
//! Every file is deserialized with the schema of `rpcplugin_test_support::vectors`, whose
//! structs have `deny_unknown_fields`, so the documented schema is enforced: a field the README
//! does not describe, or a missing required one, fails the test. Every vector is then checked:
//!
//! - decode: `varint::decode`; `frame::decode_frame` over the whole input; a [`FrameDecoder`]
//!   and a [`FrameAssembler`] fed the input whole, one byte at a time, and in fixed split
//!   patterns (FRAME-12); for the handshake, `handshake::parse_announcement`, a
//!   [`HostHandshake`] and a [`StreamTable`] in [`Role::Host`] fed the stream-0 frame;
//! - encode: for `valid` vectors the encoder reproduces exactly the bytes; for `acceptable` ones
//!   it produces other bytes (or refuses, for payloads above the send limit).
//!
//! Invalid vectors must fail with exactly the listed error kind, the error's message must name the
//! requirement it enforces, and that requirement must be among the vector's requirements.

use std::collections::BTreeSet;
use std::fs;

use rpcplugin_codec::frame::{
    self, check_payload_limit, encode_frame, encode_header, Chunk, EncodeError, Frame,
    FrameAssembler, FrameDecoder, FrameError, StreamId, MAX_HEADER_LEN, MIN_MAX_PAYLOAD,
};
use rpcplugin_codec::handshake::{
    self, ControlAction, HandshakeError, HandshakeState, HostHandshake,
};
use rpcplugin_codec::stream::{
    ConnectionEnd, ConnectionError, DiscardReason, Event, Role, StreamState, StreamTable,
};
use rpcplugin_codec::varint::{self, VarintError};
use rpcplugin_test_support::bins::spec_dir;
use rpcplugin_test_support::vectors::{
    go_sessions, test_hex, vectors_dir, Case, Expect, FrameCase, Generator, HandshakeCase,
    StreamCase, VarintCase, VectorFile,
};
use rpcplugin_test_support::{to_hex as hex, try_unhex};
use serde::de::DeserializeOwned;

// ------------------------------------------------------------------------------------------
// Loading and envelope checks
// ------------------------------------------------------------------------------------------

const SOURCES: &[&str] = &["go:PutVarint", "go:Varint", "go:net/rpc"];

/// The requirement ids of `spec/requirements.json`, or `None` when the file does not exist yet.
///
/// The file's exact layout is the spec's business; ids are taken from every `"id"` member and
/// every object key that looks like a requirement id, wherever they appear.
fn known_requirements() -> Option<BTreeSet<String>> {
    let path = spec_dir().join("requirements.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => panic!("{}: {e}", path.display()),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let mut ids = BTreeSet::new();
    collect_ids(&value, &mut ids);
    assert!(
        !ids.is_empty(),
        "{}: no requirement ids found",
        path.display()
    );
    Some(ids)
}

fn collect_ids(v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(map) => {
            for (k, x) in map {
                if is_requirement_id(k) {
                    out.insert(k.clone());
                }
                if k == "id" {
                    if let Some(s) = x.as_str() {
                        out.insert(s.to_owned());
                    }
                }
                collect_ids(x, out);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|x| collect_ids(x, out)),
        _ => {}
    }
}

/// `PREFIX-N`: upper-case letters, a dash, a positive decimal number.
fn is_requirement_id(s: &str) -> bool {
    let Some((prefix, num)) = s.split_once('-') else {
        return false;
    };
    !prefix.is_empty()
        && prefix.bytes().all(|b| b.is_ascii_uppercase())
        && !num.is_empty()
        && !num.starts_with('0')
        && num.bytes().all(|b| b.is_ascii_digit())
}

/// The ids on the `// covers:` line above `fn <test_fn>()` in this file.
fn covers_of(test_fn: &str) -> BTreeSet<String> {
    let source = include_str!("vectors.rs");
    let lines: Vec<&str> = source.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with(&format!("fn {test_fn}()")))
        .unwrap_or_else(|| panic!("no fn {test_fn}() in vectors.rs"));
    let line = lines[..at]
        .iter()
        .rev()
        .take_while(|l| l.starts_with("#[") || l.starts_with("//"))
        .find_map(|l| l.strip_prefix("// covers:"))
        .unwrap_or_else(|| panic!("fn {test_fn}() has no `// covers:` line"));
    line.split(',').map(|id| id.trim().to_owned()).collect()
}

/// Loads `<stem>.json`, checks the envelope and the common fields of every test, and returns
/// the file. The file's requirements must be exactly the ids on the `// covers:` line of
/// `test_fn`, the test that checks the file (so the comment stays truthful).
fn load<T: Case + DeserializeOwned>(
    stem: &str,
    test_fn: &str,
    known_flags: &[&str],
) -> VectorFile<T> {
    let path = vectors_dir().join(format!("{stem}.json"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: VectorFile<T> = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: does not match its schema: {e}", path.display()));
    assert_eq!(file.schema, format!("{stem}/v1"), "{stem}.json: schema");
    assert!(
        !file.description.trim().is_empty(),
        "{stem}.json: empty description"
    );
    assert!(!file.tests.is_empty(), "{stem}.json: no tests");

    let file_reqs: BTreeSet<&str> = file.requirements.iter().map(String::as_str).collect();
    assert_eq!(
        file_reqs.len(),
        file.requirements.len(),
        "{stem}.json: duplicate file requirement"
    );
    let covers = covers_of(test_fn);
    assert_eq!(
        file_reqs,
        covers.iter().map(String::as_str).collect(),
        "{stem}.json: the file's requirements and the test's `// covers:` comment differ"
    );

    let known = known_requirements();
    if known.is_none() {
        println!("spec/requirements.json does not exist yet: requirement ids of {stem}.json not checked against it");
    }
    for id in &file.requirements {
        assert!(
            is_requirement_id(id),
            "{stem}.json: malformed requirement id {id:?}"
        );
        if let Some(known) = &known {
            assert!(
                known.contains(id),
                "{stem}.json: requirement {id} is not in spec/requirements.json"
            );
        }
    }

    for (i, t) in file.tests.iter().enumerate() {
        let at = format!("{stem}.json tcId {}", t.tc_id());
        assert_eq!(
            t.tc_id() as usize,
            i + 1,
            "{at}: tcIds must be 1, 2, 3, ... in order"
        );
        assert!(!t.comment().trim().is_empty(), "{at}: empty comment");
        assert!(!t.requirements().is_empty(), "{at}: no requirements");
        for id in t.requirements() {
            assert!(
                file_reqs.contains(id.as_str()),
                "{at}: requirement {id} is missing from the file's requirements"
            );
            if let Some(known) = &known {
                assert!(
                    known.contains(id),
                    "{at}: requirement {id} is not in spec/requirements.json"
                );
            }
        }
        for flag in t.flags() {
            assert!(
                known_flags.contains(&flag.as_str()),
                "{at}: unknown flag {flag:?}"
            );
        }
        if let Some(src) = t.source() {
            assert!(SOURCES.contains(&src), "{at}: unknown source {src:?}");
        }
        match t.result() {
            Expect::Invalid => assert!(
                t.error().is_some(),
                "{at}: an invalid vector needs an error kind"
            ),
            Expect::Valid | Expect::Acceptable => {
                assert!(
                    t.error().is_none(),
                    "{at}: only invalid vectors have an error"
                )
            }
        }
        if t.result() == Expect::Acceptable {
            assert!(
                !t.flags().is_empty(),
                "{at}: an acceptable vector needs a flag saying why"
            );
        }
    }
    file
}

/// The bytes of a vector's hex string, which must be lowercase (the README's form).
fn unhex(at: &str, s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "{at}: odd-length hex {s:?}");
    assert!(
        s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')),
        "{at}: not lowercase hex: {s:?}"
    );
    try_unhex(s).unwrap_or_else(|e| panic!("{at}: {e}"))
}

/// A decimal string in canonical form (what `to_string` gives back).
fn int(at: &str, s: &str) -> i64 {
    let v: i64 = s
        .parse()
        .unwrap_or_else(|e| panic!("{at}: {s:?} is not a 64-bit integer: {e}"));
    assert_eq!(
        v.to_string(),
        s,
        "{at}: {s:?} is not in canonical decimal form"
    );
    v
}

fn stream_id(at: &str, s: &str) -> StreamId {
    StreamId::new(int(at, s)).unwrap_or_else(|| panic!("{at}: stream id {s} is negative"))
}

fn expand(at: &str, g: &Generator) -> Vec<u8> {
    let unit = unhex(at, &g.repeat_hex);
    assert!(!unit.is_empty() && g.count > 0, "{at}: empty generator");
    unit.repeat(g.count)
}

/// The error's message names the requirement it enforces, and that requirement is among the
/// vector's.
fn check_requirement_named(at: &str, t: &impl Case, requirement: &str, message: &str) {
    assert!(
        message.starts_with(&format!("{requirement}:")),
        "{at}: the message {message:?} does not start with {requirement}"
    );
    assert!(
        t.requirements().iter().any(|r| r == requirement),
        "{at}: the error enforces {requirement}, which the vector does not list"
    );
}

// ------------------------------------------------------------------------------------------
// Frame decoding under splits
// ------------------------------------------------------------------------------------------

/// How an input is cut into reads.
#[derive(Debug, Clone)]
enum Split {
    Whole,
    Bytewise,
    /// Piece sizes, repeated until the input is used up.
    Cycle(&'static [usize]),
    /// Two pieces, cut at this offset.
    At(usize),
    /// The chunks a vector lists (possibly empty ones).
    Given(Vec<Vec<u8>>),
}

fn pieces<'a>(input: &'a [u8], split: &'a Split) -> Vec<&'a [u8]> {
    match split {
        Split::Whole => vec![input],
        Split::Bytewise => input.chunks(1).collect(),
        Split::Cycle(sizes) => {
            let mut out = Vec::new();
            let mut rest = input;
            for &n in sizes.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (a, b) = rest.split_at(n.min(rest.len()));
                out.push(a);
                rest = b;
            }
            out
        }
        Split::At(k) => {
            let (a, b) = input.split_at(*k);
            vec![a, b]
        }
        Split::Given(chunks) => chunks.iter().map(Vec::as_slice).collect(),
    }
}

fn splits(len: usize, given: Option<Vec<Vec<u8>>>) -> Vec<Split> {
    let mut out = vec![
        Split::Whole,
        Split::Bytewise,
        Split::Cycle(&[1, 2, 3, 5, 8, 13, 21]),
        Split::Cycle(&[7]),
        Split::Cycle(&[MAX_HEADER_LEN - 1]),
        Split::Cycle(&[4096]),
        Split::Cycle(&[65536, 1]),
    ];
    if len <= 64 {
        out.extend((1..len).map(Split::At));
    } else {
        out.extend((1..=MAX_HEADER_LEN + 2).map(Split::At));
        out.push(Split::At(len - 1));
    }
    if let Some(chunks) = given {
        out.push(Split::Given(chunks));
    }
    out
}

/// What decoding an input gave: the frames completed, then the error if there was one.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    frames: Vec<Frame>,
    error: Option<FrameError>,
}

/// `decode_frame` over one contiguous buffer, frame after frame.
fn decode_contiguous(input: &[u8], max: usize) -> Decoded {
    let mut frames = Vec::new();
    let mut pos = 0;
    loop {
        match frame::decode_frame(&input[pos..], max) {
            Ok(Some((f, n))) => {
                assert!(n > 0 && pos + n <= input.len());
                frames.push(Frame::new(f.stream_id, f.payload));
                pos += n;
            }
            Ok(None) if pos == input.len() => {
                return Decoded {
                    frames,
                    error: None,
                }
            }
            Ok(None) => {
                // The buffer ends inside a frame; the incremental decoder's finish() reports
                // which truncation it is.
                let mut d = FrameDecoder::with_max_payload(max).unwrap();
                let mut rest = &input[pos..];
                while let Ok(Some(_)) = d.decode(&mut rest) {}
                let error = d
                    .finish()
                    .expect_err("decode_frame needed more bytes at end of input");
                return Decoded {
                    frames,
                    error: Some(error),
                };
            }
            Err(e) => {
                return Decoded {
                    frames,
                    error: Some(e),
                }
            }
        }
    }
}

/// A [`FrameDecoder`] fed `split`, assembling frames from its chunks.
fn decode_incremental(at: &str, input: &[u8], max: usize, split: &Split) -> Decoded {
    let mut d = FrameDecoder::with_max_payload(max).unwrap();
    let mut frames = Vec::new();
    let mut current: Option<(StreamId, usize, Vec<u8>)> = None;
    for piece in pieces(input, split) {
        let mut rest = piece;
        loop {
            match d.decode(&mut rest) {
                Ok(None) => {
                    assert!(rest.is_empty(), "{at} {split:?}: Ok(None) with input left");
                    break;
                }
                Ok(Some(Chunk::Header(h))) => {
                    assert!(
                        current.is_none(),
                        "{at} {split:?}: a header inside a payload"
                    );
                    assert!(h.len <= max, "{at} {split:?}: header above the limit");
                    if h.len == 0 {
                        assert!(d.is_at_boundary());
                        frames.push(Frame::new(h.stream_id, Vec::new()));
                    } else {
                        current = Some((h.stream_id, h.len, Vec::with_capacity(h.len)));
                    }
                }
                Ok(Some(Chunk::Payload {
                    stream_id,
                    data,
                    last,
                })) => {
                    let (id, len, buf) = current.as_mut().expect("payload without a header");
                    assert_eq!(*id, stream_id, "{at} {split:?}: payload of another stream");
                    assert!(!data.is_empty(), "{at} {split:?}: empty payload piece");
                    buf.extend_from_slice(data);
                    assert!(
                        buf.len() <= *len,
                        "{at} {split:?}: payload longer than declared"
                    );
                    assert_eq!(last, buf.len() == *len, "{at} {split:?}: `last` is wrong");
                    if last {
                        let (id, _, buf) = current.take().unwrap();
                        frames.push(Frame::new(id, buf));
                    }
                }
                Err(e) => {
                    // FRAME-14: the error is final.
                    assert_eq!(d.error(), Some(&e), "{at} {split:?}");
                    assert_eq!(
                        d.decode(&mut &[0u8, 0][..]),
                        Err(e.clone()),
                        "{at} {split:?}"
                    );
                    assert_eq!(d.finish(), Err(e.clone()), "{at} {split:?}");
                    return Decoded {
                        frames,
                        error: Some(e),
                    };
                }
            }
        }
    }
    match d.finish() {
        Ok(()) => {
            assert!(
                current.is_none() && d.is_at_boundary(),
                "{at} {split:?}: finish() inside a frame"
            );
            Decoded {
                frames,
                error: None,
            }
        }
        Err(e) => {
            assert_eq!(
                d.finish(),
                Err(e.clone()),
                "{at} {split:?}: finish() is not repeatable"
            );
            Decoded {
                frames,
                error: Some(e),
            }
        }
    }
}

/// A [`FrameAssembler`] fed `split`.
fn decode_assembled(at: &str, input: &[u8], max: usize, split: &Split) -> Decoded {
    let mut a = FrameAssembler::with_decoder(FrameDecoder::with_max_payload(max).unwrap());
    let mut frames = Vec::new();
    for piece in pieces(input, split) {
        if let Err(e) = a.push(piece, &mut frames) {
            let before = frames.len();
            assert_eq!(
                a.push(&[0, 0], &mut frames),
                Err(e.clone()),
                "{at} {split:?}: error not final"
            );
            assert_eq!(
                frames.len(),
                before,
                "{at} {split:?}: a frame after the error"
            );
            assert_eq!(a.finish(), Err(e.clone()), "{at} {split:?}");
            return Decoded {
                frames,
                error: Some(e),
            };
        }
    }
    Decoded {
        error: a.finish().err(),
        frames,
    }
}

/// Checks every decoder, under every split, against the expected frames and error kind.
fn check_decoding(
    at: &str,
    t: &impl Case,
    input: &[u8],
    max: usize,
    expected: &[Frame],
    given: Option<Vec<Vec<u8>>>,
) -> Decoded {
    let check = |how: &str, got: Decoded| {
        assert!(
            got.frames == expected,
            "{at} ({how}): decoded {} frame(s) {:?}, expected {} {:?}",
            got.frames.len(),
            summary(&got.frames),
            expected.len(),
            summary(expected)
        );
        assert_eq!(
            got.error.as_ref().map(FrameError::kind),
            t.error(),
            "{at} ({how}): error {:?}",
            got.error
        );
        if let Some(e) = &got.error {
            check_requirement_named(at, t, e.requirement(), &e.to_string());
        }
        got
    };
    let whole = check("decode_frame", decode_contiguous(input, max));
    for split in splits(input.len(), given) {
        let first = check(
            &format!("FrameDecoder, {split:?}"),
            decode_incremental(at, input, max, &split),
        );
        let second = check(
            &format!("FrameAssembler, {split:?}"),
            decode_assembled(at, input, max, &split),
        );
        // The same bytes give the same error, whatever the split (FRAME-12).
        assert_eq!(
            first.error, whole.error,
            "{at} {split:?}: error details differ from the whole decode"
        );
        assert_eq!(
            second.error, whole.error,
            "{at} {split:?}: error details differ from the whole decode"
        );
    }
    whole
}

fn summary(frames: &[Frame]) -> Vec<(i64, usize)> {
    frames
        .iter()
        .map(|f| (f.stream_id.get(), f.payload.len()))
        .collect()
}

fn encode_all(frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in frames {
        f.encode(&mut out)
            .expect("an expected frame within the send limit");
    }
    out
}

// ------------------------------------------------------------------------------------------
// varint.json
// ------------------------------------------------------------------------------------------

fn varint_kind(e: &VarintError) -> &'static str {
    match e {
        VarintError::Incomplete { .. } => "incomplete",
        VarintError::Overflow { .. } => "overflow",
        _ => "unknown",
    }
}

// covers: FRAME-2, FRAME-3, FRAME-4, FRAME-12, FRAME-13
#[test]
fn varint_vectors() {
    let file: VectorFile<VarintCase> = load(
        "varint",
        "varint_vectors",
        &["non_minimal", "ten_continuation_bytes"],
    );
    for t in &file.tests {
        let at = format!("varint.json tcId {} ({})", t.tc_id, t.comment);
        let bytes = unhex(&at, &t.hex);
        let got = varint::decode(&bytes);
        match t.result {
            Expect::Valid | Expect::Acceptable => {
                let value = int(
                    &at,
                    t.value
                        .as_deref()
                        .unwrap_or_else(|| panic!("{at}: no value")),
                );
                assert_eq!(got, Ok((value, bytes.len())), "{at}: decode");
                assert_eq!(
                    varint::decode_unsigned(&bytes),
                    Ok((varint::zigzag(value), bytes.len())),
                    "{at}: decode_unsigned"
                );
                // Bytes after the varint are not part of it.
                let mut longer = bytes.clone();
                longer.extend_from_slice(&[0x00, 0x7f, 0x80]);
                assert_eq!(
                    varint::decode(&longer),
                    Ok((value, bytes.len())),
                    "{at}: trailing bytes"
                );
                // Every proper prefix is incomplete: a receiver waits for more (FRAME-12).
                for k in 0..bytes.len() {
                    assert_eq!(
                        varint::decode(&bytes[..k]),
                        Err(VarintError::Incomplete { have: k }),
                        "{at}: prefix of {k} byte(s)"
                    );
                }
                // Encode.
                let mut buf = [0u8; varint::MAX_LEN];
                let n = varint::encode(value, &mut buf);
                assert_eq!(n, varint::encoded_len(value), "{at}: encoded_len");
                let mut v = Vec::new();
                varint::encode_to_vec(value, &mut v);
                assert_eq!(v, &buf[..n], "{at}: encode_to_vec");
                if t.result == Expect::Valid {
                    assert_eq!(hex(&buf[..n]), t.hex, "{at}: encode");
                    assert!(!t.has_flag("non_minimal"), "{at}");
                } else {
                    assert!(t.has_flag("non_minimal"), "{at}: why is it acceptable?");
                    assert!(
                        n < bytes.len(),
                        "{at}: the minimal encoding {} is not shorter",
                        hex(&buf[..n])
                    );
                }
                assert!(t.value.is_some() && t.error.is_none());
            }
            Expect::Invalid => {
                assert!(t.value.is_none(), "{at}: an invalid vector has no value");
                let kind = t.error.as_deref().unwrap();
                let e = got.expect_err(&format!("{at}: decoded"));
                assert_eq!(varint_kind(&e), kind, "{at}: {e:?}");
                match e {
                    VarintError::Incomplete { have } => {
                        assert_eq!(have, bytes.len(), "{at}");
                        assert!(bytes.len() < varint::MAX_LEN, "{at}");
                    }
                    VarintError::Overflow { len } => {
                        assert_eq!(len, varint::MAX_LEN, "{at}");
                        assert!(e.to_string().starts_with("FRAME-4:"), "{at}: {e}");
                        // An overflow is final: more bytes cannot repair it.
                        let mut longer = bytes.clone();
                        longer.push(0x00);
                        assert_eq!(varint::decode(&longer), Err(e), "{at}: overflow not final");
                        // It is decided by the first ten bytes.
                        assert_eq!(varint::decode(&bytes[..varint::MAX_LEN]), Err(e), "{at}");
                    }
                    _ => unreachable!(),
                }
            }
        }
        // Provenance: Go's binary.Varint verdict on the same bytes. n > 0 is a value; n == 0
        // "too short" (incomplete); n < 0 overflow.
        match (&t.go_varint_n, &t.go_varint_value) {
            (Some(n), Some(v)) => {
                assert_eq!(t.source.as_deref(), Some("go:Varint"), "{at}");
                let (n, v) = (int(&at, n), int(&at, v));
                match n {
                    n if n > 0 => assert_eq!(
                        varint::decode(&bytes),
                        Ok((v, n as usize)),
                        "{at}: Go decodes it"
                    ),
                    0 => assert!(
                        matches!(varint::decode(&bytes), Err(VarintError::Incomplete { .. })),
                        "{at}"
                    ),
                    _ => assert!(
                        matches!(varint::decode(&bytes), Err(VarintError::Overflow { .. })),
                        "{at}"
                    ),
                }
            }
            (None, None) => {}
            _ => panic!("{at}: go_varint_n and go_varint_value go together"),
        }
    }
}

// ------------------------------------------------------------------------------------------
// frames.json
// ------------------------------------------------------------------------------------------

// covers: FRAME-1, FRAME-2, FRAME-3, FRAME-4, FRAME-5, FRAME-6, FRAME-7, FRAME-8, FRAME-9, FRAME-12, FRAME-13, FRAME-14, HS-1, STREAM-8
#[test]
fn frame_vectors() {
    let file: VectorFile<FrameCase> = load(
        "frames",
        "frame_vectors",
        &["non_minimal", "above_send_limit"],
    );
    for t in &file.tests {
        let at = format!("frames.json tcId {} ({})", t.tc_id, t.comment);
        let max = t.max_payload.unwrap_or(MIN_MAX_PAYLOAD);
        check_payload_limit(max).unwrap_or_else(|e| panic!("{at}: max_payload: {e}"));

        // The input: `hex`, or `header_hex` followed by the generated `payload`.
        let (input, header_len, generated) = match (&t.hex, &t.header_hex, &t.payload) {
            (Some(h), None, None) => (unhex(&at, h), None, None),
            (None, Some(h), Some(g)) => {
                let mut input = unhex(&at, h);
                let n = input.len();
                let payload = expand(&at, g);
                input.extend_from_slice(&payload);
                (input, Some(n), Some(payload))
            }
            _ => panic!("{at}: give either `hex` or both `header_hex` and `payload`"),
        };

        let expected = match t.result {
            Expect::Valid | Expect::Acceptable => {
                let id = stream_id(
                    &at,
                    t.stream_id
                        .as_deref()
                        .unwrap_or_else(|| panic!("{at}: no stream_id")),
                );
                let payload = match (&t.payload_hex, generated) {
                    (Some(p), None) => unhex(&at, p),
                    (None, Some(p)) => p,
                    _ => panic!("{at}: `payload_hex` goes with `hex`, the generated payload with `header_hex`"),
                };
                vec![Frame::new(id, payload)]
            }
            Expect::Invalid => {
                assert!(
                    t.stream_id.is_none() && t.payload_hex.is_none(),
                    "{at}: an invalid vector has no frame"
                );
                Vec::new()
            }
        };

        check_decoding(&at, t, &input, max, &expected, None);

        match t.result {
            Expect::Valid | Expect::Acceptable => {
                let f = &expected[0];
                // A single frame: decode_frame takes all of the input, and not a byte more.
                let (got, n) = frame::decode_frame(&input, max).unwrap().unwrap();
                assert_eq!(
                    (got.stream_id, got.payload, n),
                    (f.stream_id, &f.payload[..], input.len()),
                    "{at}"
                );
                let mut extra = input.clone();
                extra.extend_from_slice(&[0x02, 0x00]);
                assert_eq!(
                    frame::decode_frame(&extra, max).unwrap().unwrap().1,
                    input.len(),
                    "{at}"
                );

                let mut out = Vec::new();
                let encoded = encode_frame(f.stream_id, &f.payload, &mut out);
                if t.result == Expect::Valid {
                    encoded.unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert!(
                        out == input,
                        "{at}: encode gave {}",
                        hex(&out[..out.len().min(64)])
                    );
                    let mut header = [0u8; MAX_HEADER_LEN];
                    let n = encode_header(f.stream_id, f.payload.len(), &mut header);
                    assert_eq!(
                        &header[..n],
                        &input[..input.len() - f.payload.len()],
                        "{at}: encode_header"
                    );
                    if let Some(h) = header_len {
                        assert_eq!(n, h, "{at}: header_hex is the whole header");
                    }
                    let mut again = Vec::new();
                    f.encode(&mut again).unwrap();
                    assert!(again == input, "{at}: Frame::encode");
                } else if t.has_flag("above_send_limit") {
                    // FRAME-9: no sender sends it; the data leaves as several frames instead.
                    assert!(f.payload.len() > MIN_MAX_PAYLOAD, "{at}");
                    assert_eq!(
                        encoded,
                        Err(EncodeError::PayloadTooLong {
                            len: f.payload.len()
                        }),
                        "{at}"
                    );
                    assert!(out.is_empty(), "{at}: a refused frame wrote bytes");
                    let mut split = Vec::new();
                    let frames =
                        frame::encode_data(f.stream_id, &f.payload, MIN_MAX_PAYLOAD, &mut split);
                    assert_eq!(frames, f.payload.len().div_ceil(MIN_MAX_PAYLOAD), "{at}");
                    let mut a = FrameAssembler::new();
                    let mut back = Vec::new();
                    a.push(&split, &mut back).unwrap();
                    a.finish().unwrap();
                    let joined: Vec<u8> = back
                        .iter()
                        .flat_map(|g| g.payload.iter().copied())
                        .collect();
                    assert!(
                        joined == f.payload && back.iter().all(|g| g.stream_id == f.stream_id),
                        "{at}"
                    );
                } else {
                    assert!(t.has_flag("non_minimal"), "{at}: why is it acceptable?");
                    encoded.unwrap();
                    assert!(
                        out != input && out.len() < input.len(),
                        "{at}: the minimal encoding is not shorter"
                    );
                    assert_eq!(
                        frame::decode_frame(&out, max).unwrap().unwrap().0.payload,
                        &f.payload[..],
                        "{at}"
                    );
                }
            }
            Expect::Invalid => {
                // Errors found in the header are reported without waiting for a payload
                // (FRAME-8 for the length): decoding only the header gives the same error.
                let kind = t.error.as_deref().unwrap();
                if kind != "truncated" {
                    let e = frame::decode_header(&input, max)
                        .expect_err(&format!("{at}: decode_header"));
                    assert_eq!(e.kind(), kind, "{at}");
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// streams.json
// ------------------------------------------------------------------------------------------

// covers: FRAME-1, FRAME-2, FRAME-3, FRAME-4, FRAME-5, FRAME-6, FRAME-8, FRAME-12, FRAME-13, FRAME-14, HS-1, STREAM-8
#[test]
fn stream_vectors() {
    let file: VectorFile<StreamCase> = load("streams", "stream_vectors", &["non_minimal"]);
    for t in &file.tests {
        let at = format!("streams.json tcId {} ({})", t.tc_id, t.comment);
        let max = t.max_payload.unwrap_or(MIN_MAX_PAYLOAD);
        check_payload_limit(max).unwrap_or_else(|e| panic!("{at}: max_payload: {e}"));
        let (input, given) = match (&t.hex, &t.chunks) {
            (Some(h), None) => (unhex(&at, h), None),
            (None, Some(chunks)) => {
                let chunks: Vec<Vec<u8>> = chunks.iter().map(|c| unhex(&at, c)).collect();
                (chunks.concat(), Some(chunks))
            }
            _ => panic!("{at}: give exactly one of `hex` and `chunks`"),
        };
        let expected: Vec<Frame> = t
            .frames
            .iter()
            .map(|f| Frame::new(stream_id(&at, &f.stream_id), unhex(&at, &f.payload_hex)))
            .collect();
        check_decoding(&at, t, &input, max, &expected, given);

        let encoded = encode_all(&expected);
        match t.result {
            Expect::Valid => assert!(encoded == input, "{at}: encode gave {}", hex(&encoded)),
            Expect::Acceptable => {
                assert!(t.has_flag("non_minimal"), "{at}: why is it acceptable?");
                assert!(
                    encoded != input && encoded.len() < input.len(),
                    "{at}: encode"
                );
            }
            Expect::Invalid => {
                // The frames before the error are a prefix of the input, and something follows
                // them.
                if !t.has_flag("non_minimal") {
                    assert!(
                        input.starts_with(&encoded) && encoded.len() < input.len(),
                        "{at}: prefix"
                    );
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// handshake.json
// ------------------------------------------------------------------------------------------

/// Feeds `frame` to a fresh host table in `split`; returns the events and the first error.
fn host_table_run(
    at: &str,
    frame: &[u8],
    split: &Split,
) -> (StreamTable, Vec<Event>, Option<ConnectionError>) {
    let mut table = StreamTable::new(Role::Host);
    let mut events = Vec::new();
    let mut error = None;
    let all = pieces(frame, split);
    let count = all.len();
    for (i, piece) in all.into_iter().enumerate() {
        match table.receive(piece) {
            Ok(()) => {}
            Err(e) => {
                assert_eq!(
                    i,
                    count - 1,
                    "{at} {split:?}: an error before the frame was complete"
                );
                error = Some(e);
                break;
            }
        }
        while let Some(ev) = table.poll_event() {
            events.push(ev);
        }
    }
    while let Some(ev) = table.poll_event() {
        events.push(ev);
    }
    (table, events, error)
}

fn connection_kind(e: &ConnectionError) -> (&'static str, bool) {
    match e {
        ConnectionError::Handshake(h) => (h.kind(), true),
        other => (other.kind(), false),
    }
}

// covers: FRAME-3, FRAME-4, FRAME-12, FRAME-14, HS-1, HS-5, HS-7, HS-8, HS-9
#[test]
fn handshake_vectors() {
    let file: VectorFile<HandshakeCase> = load("handshake", "handshake_vectors", &["non_minimal"]);
    for t in &file.tests {
        let at = format!("handshake.json tcId {} ({})", t.tc_id, t.comment);
        let payload = unhex(&at, &t.payload_hex);
        let frame_bytes = unhex(&at, &t.frame_hex);

        // frame_hex is the stream-0 frame carrying the payload, with a minimal header.
        let mut framed = Vec::new();
        encode_frame(StreamId::CONTROL, &payload, &mut framed).unwrap();
        assert_eq!(
            hex(&framed),
            t.frame_hex,
            "{at}: frame_hex is not the stream-0 frame of payload_hex"
        );
        let (f, n) = frame::decode_frame(&frame_bytes, MIN_MAX_PAYLOAD)
            .unwrap()
            .unwrap();
        assert_eq!(
            (f.stream_id, f.payload, n),
            (StreamId::CONTROL, &payload[..], frame_bytes.len()),
            "{at}"
        );

        let hooks = t.hooks_stream_id.as_deref().map(|s| int(&at, s));
        let parsed = parse_checked(&at, t, &payload, hooks);

        // The host's state machine agrees with the parser.
        let mut hs = HostHandshake::new();
        match (&parsed, hs.on_control_frame(&payload)) {
            (Ok(id), Ok(ControlAction::ConnectHooks(got))) => {
                assert_eq!(*id, got, "{at}");
                assert_eq!(hs.state(), &HandshakeState::Ready { hooks: *id }, "{at}");
                // HS-8: later stream-0 frames are discarded.
                assert_eq!(
                    hs.on_control_frame(&payload),
                    Ok(ControlAction::Discard),
                    "{at}"
                );
            }
            (Err(e), Err(got)) => {
                assert_eq!(e, &got, "{at}");
                assert_eq!(hs.state(), &HandshakeState::Failed(got), "{at}");
            }
            (p, h) => panic!("{at}: parse_announcement gave {p:?}, HostHandshake {h:?}"),
        }

        // Encode: only valid vectors are what a plugin sends.
        match (t.result, &parsed) {
            (Expect::Valid, Ok(id)) => {
                assert_eq!(
                    handshake::announcement(*id).as_deref(),
                    Some(&payload[..]),
                    "{at}: announcement"
                );
                let mut out = Vec::new();
                assert!(handshake::encode_announcement_frame(*id, &mut out), "{at}");
                assert_eq!(hex(&out), t.frame_hex, "{at}: encode_announcement_frame");
                assert!(!t.has_flag("non_minimal"), "{at}");
            }
            (Expect::Acceptable, Ok(id)) => {
                assert!(t.has_flag("non_minimal"), "{at}: why is it acceptable?");
                let minimal = handshake::announcement(*id).unwrap();
                assert!(minimal != payload && minimal.len() < payload.len(), "{at}");
            }
            (Expect::Invalid, Err(HandshakeError::InvalidHooksStreamId { value })) => {
                // A plugin cannot announce this id.
                if let Some(id) = StreamId::new(*value) {
                    assert_eq!(handshake::announcement(id), None, "{at}");
                    let mut out = Vec::new();
                    assert!(!handshake::encode_announcement_frame(id, &mut out), "{at}");
                    assert!(out.is_empty(), "{at}");
                }
            }
            (Expect::Invalid, Err(_)) => {}
            (r, p) => panic!("{at}: result {r:?} but parse gave {p:?}"),
        }

        // A host's stream table fed the frame, whole or split (FRAME-12).
        let mut table_splits = vec![
            Split::Whole,
            Split::Bytewise,
            Split::Cycle(&[3]),
            Split::Cycle(&[1, 5]),
        ];
        if frame_bytes.len() <= 64 {
            table_splits.extend((1..frame_bytes.len()).map(Split::At));
        }
        for split in &table_splits {
            let (mut table, events, error) = host_table_run(&at, &frame_bytes, split);
            match &parsed {
                Ok(id) => {
                    assert!(error.is_none(), "{at} {split:?}: {error:?}");
                    assert_eq!(
                        events,
                        vec![Event::HandshakeComplete { hooks: *id }],
                        "{at} {split:?}"
                    );
                    assert_eq!(
                        table.handshake().and_then(HostHandshake::hooks),
                        Some(*id),
                        "{at}"
                    );
                    // HS-7: the hooks stream is connected, data on it is delivered.
                    assert_eq!(table.state(*id), Some(StreamState::Open), "{at} {split:?}");
                    let mut data = Vec::new();
                    encode_frame(*id, b"x", &mut data).unwrap();
                    table.receive(&data).unwrap();
                    assert_eq!(
                        table.poll_event(),
                        Some(Event::Data {
                            stream_id: *id,
                            len: 1
                        }),
                        "{at}"
                    );
                    // HS-8: a later stream-0 frame is discarded, and the hooks stream still
                    // receives.
                    table.receive(&frame_bytes).unwrap();
                    assert_eq!(
                        table.poll_event(),
                        Some(Event::Discarded {
                            stream_id: StreamId::CONTROL,
                            len: payload.len(),
                            reason: DiscardReason::ControlAfterHandshake,
                        }),
                        "{at}"
                    );
                    table.receive(&data).unwrap();
                    assert_eq!(
                        table.poll_event(),
                        Some(Event::Data {
                            stream_id: *id,
                            len: 1
                        }),
                        "{at}"
                    );
                    table.end_of_input().unwrap();
                    assert_eq!(table.ended(), Some(&ConnectionEnd::PeerClosed), "{at}");
                }
                Err(expected) => {
                    let e = error.unwrap_or_else(|| {
                        panic!("{at} {split:?}: the table accepted it: {events:?}")
                    });
                    assert_eq!(
                        connection_kind(&e),
                        (expected.kind(), true),
                        "{at} {split:?}: {e}"
                    );
                    assert_eq!(
                        e,
                        ConnectionError::Handshake(expected.clone()),
                        "{at} {split:?}"
                    );
                    assert!(
                        !events
                            .iter()
                            .any(|ev| matches!(ev, Event::HandshakeComplete { .. })),
                        "{at} {split:?}: {events:?}"
                    );
                    assert_eq!(
                        table.ended(),
                        Some(&ConnectionEnd::Error(e.clone())),
                        "{at}"
                    );
                    // FRAME-14: the connection error is final.
                    assert_eq!(table.receive(&[0x04, 0x02, 0x78]), Err(e.clone()), "{at}");
                    assert_eq!(table.end_of_input(), Err(e.clone()), "{at}");
                    assert_eq!(table.poll_event(), None, "{at}");
                }
            }
        }
    }
}

/// `parse_announcement` against the vector.
fn parse_checked(
    at: &str,
    t: &HandshakeCase,
    payload: &[u8],
    hooks: Option<i64>,
) -> Result<StreamId, HandshakeError> {
    let parsed = handshake::parse_announcement(payload);
    match t.result {
        Expect::Valid | Expect::Acceptable => {
            let id = parsed.clone().unwrap_or_else(|e| panic!("{at}: {e}"));
            assert_eq!(Some(id.get()), hooks, "{at}: hooks_stream_id");
            assert!(id.is_plugin_allocated(), "{at}");
        }
        Expect::Invalid => {
            let e = parsed.clone().expect_err(&format!("{at}: parsed"));
            assert_eq!(Some(e.kind()), t.error.as_deref(), "{at}: {e}");
            check_requirement_named(at, t, e.requirement(), &e.to_string());
            match (&e, hooks) {
                (HandshakeError::InvalidHooksStreamId { value }, Some(h)) => {
                    assert_eq!(*value, h, "{at}")
                }
                (HandshakeError::InvalidHooksStreamId { .. }, None) => {
                    panic!(
                        "{at}: invalid_hooks_stream_id vectors give the rejected hooks_stream_id"
                    )
                }
                (_, None) => {}
                (_, Some(_)) => {
                    panic!("{at}: hooks_stream_id on a vector that has no valid varint id")
                }
            }
        }
    }
    parsed
}

// ------------------------------------------------------------------------------------------
// The directory
// ------------------------------------------------------------------------------------------

/// Every JSON file in `spec/vectors/` is one of the schemas this test checks or, for `rpc-*`,
/// one that `rpc_go_sessions.rs` and `rpc_vectors.rs` check, so no vector file goes unchecked.
#[test]
fn every_vector_file_is_checked() {
    let known = [
        "frames",
        "handshake",
        "rpc-go-sessions",
        "rpc-messages",
        "streams",
        "varint",
    ];
    let mut found = Vec::new();
    for entry in fs::read_dir(vectors_dir()).expect("spec/vectors") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).unwrap();
            let v: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let version = if stem == "rpc-messages" { 2 } else { 1 };
            assert_eq!(
                v["schema"],
                format!("{stem}/v{version}"),
                "{}: schema",
                path.display()
            );
            found.push(stem);
        }
    }
    found.sort();
    assert_eq!(
        found, known,
        "spec/vectors/*.json and this test's files differ"
    );
    assert!(
        vectors_dir().join("README.md").is_file(),
        "spec/vectors/README.md is missing"
    );
}

// ------------------------------------------------------------------------------------------
// Appendix A

/// The appendix's transcript of a whole session (spec/A-session.md) is the session of
/// `streams.json` tests 12 (the plugin's bytes) and 13 (the host's), byte for byte, in order.
#[test]
fn the_appendix_shows_the_session_vectors_byte_for_byte() {
    let text =
        fs::read_to_string(vectors_dir().join("../A-session.md")).expect("spec/A-session.md");
    let (mut plugin, mut host) = (Vec::new(), Vec::new());
    let mut to: Option<&mut Vec<u8>> = None;
    for line in text.lines() {
        if line.starts_with("**plugin → host") {
            to = Some(&mut plugin);
        } else if line.starts_with("**host → plugin") {
            to = Some(&mut host);
        } else if let Some(row) = line.strip_prefix("| `") {
            let hex = row.split('`').next().unwrap();
            let out = to.as_mut().expect("a table row under a direction");
            for byte in hex.split(' ') {
                out.push(u8::from_str_radix(byte, 16).unwrap());
            }
        }
    }
    assert_eq!(
        plugin,
        test_hex("streams", 12),
        "the plugin's bytes in the appendix"
    );
    assert_eq!(
        host,
        test_hex("streams", 13),
        "the host's bytes in the appendix"
    );
}

// ------------------------------------------------------------------------------------------
// Section 5.6

/// Every listing of the worked examples (spec/05-rpc.md section 5.6) is, byte for byte, one
/// write of the Go sessions in `rpc-go-sessions.json`, and the frame header given with it
/// (stream, length) matches. A listing's bytes are the columns left of its comments.
#[test]
fn the_rpc_examples_are_writes_of_the_go_sessions() {
    let text = fs::read_to_string(vectors_dir().join("../05-rpc.md")).expect("spec/05-rpc.md");
    let start = text.find("## 5.6 Examples").expect("section 5.6");
    let end = text.find("## 5.7 ").expect("section 5.7");
    let section = &text[start..end];
    let mut writes = Vec::new();
    for s in go_sessions() {
        writes.extend(s.client_to_server_writes_hex.iter().cloned());
        writes.extend(s.server_to_client_writes_hex.iter().cloned());
    }
    let mut listings = 0;
    let mut in_block = false;
    let mut bytes = String::new();
    for line in section.lines() {
        if line.starts_with("```") {
            if in_block {
                assert!(
                    writes.contains(&bytes),
                    "listing {} of section 5.6 is not a write of rpc-go-sessions.json: {bytes}",
                    listings + 1
                );
                listings += 1;
                bytes.clear();
            }
            in_block = !in_block;
        } else if in_block {
            let left = line.get(..38).unwrap_or(line).trim();
            for byte in left.split_whitespace() {
                assert!(
                    byte.len() == 2 && u8::from_str_radix(byte, 16).is_ok(),
                    "not a byte in a listing of section 5.6: {line:?}"
                );
                bytes.push_str(byte);
            }
        }
    }
    assert_eq!(listings, 4, "the four listings of section 5.6");
}
