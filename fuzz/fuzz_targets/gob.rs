//! The gob [`Decoder`] on arbitrary bytes (`spec/05-rpc.md`, GOB-1 to GOB-17). Checks:
//!
//! - split invariance (GOB-4): the bytes decoded whole, split at the input's cut points, and (when
//!   short) one byte at a time give the same messages, the same error and the same count of
//!   non-minimal uints (`non_minimal_uints`, GOB-1/GOB-2), values compared bit for bit;
//! - errors are final: after an error `next_message`, `push` then `next_message`, and `finish`
//!   repeat it; `finish` fails exactly when bytes of an incomplete message remain;
//! - limits only add limit errors (GOB-15, GOB-17): under smaller limits the messages are a
//!   prefix of those under the default limits, and the outcome is the same unless the error is
//!   `message_too_large` or `too_deep`; a message longer than the limit is never returned;
//! - decoded values re-encode: with a `TypeRegistry` holding the stream's own definitions at their
//!   own ids, every decoded value encodes without error, the bytes decode (without error) to the
//!   same values with zero fields omitted (GOB-12) and to the same definitions (GOB-6, GOB-10),
//!   with no non-minimal uint (GOB-1),
//!   each id defined once, before its first use (GOB-7), and re-encoding those values gives the
//!   same bytes again (the encoding is a fixed point).
//!
//! Input layout (`Arbitrary`): one byte of limits, the cut points (`Vec<u16>`: `01 lo hi` per
//! cut, then `00`), then the gob stream (the rest). `fuzz/seed_corpus.py` writes it.

#![no_main]

use std::collections::HashSet;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::gob::{
    self, ids, DecodeLimits, Decoder, Encoder, GobError, Message, TypeId, TypeRegistry, WireType,
};
use rpcplugin_codec_fuzz::{normalize, same_messages, same_value, split};

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    /// Bits 0-1 pick a message limit (16, 64, 256 or 4096 bytes), bits 2-5 a depth limit
    /// (0 to 15), used besides the default limits.
    limits: u8,
    /// Where to cut the stream into reads.
    cuts: Vec<u16>,
    /// The gob stream.
    bytes: &'a [u8],
}

/// What a decoder made of a stream: its messages and its error, if any.
#[derive(Debug)]
struct Outcome {
    messages: Vec<Message>,
    error: Option<GobError>,
    /// `non_minimal_uints()` at the end.
    non_minimal: u64,
}

fn decode(limits: DecodeLimits, pieces: &[&[u8]]) -> Outcome {
    let mut d = Decoder::with_limits(limits);
    let mut messages = Vec::new();
    for piece in pieces {
        d.push(piece);
        loop {
            let before = d.buffered();
            match d.next_message() {
                Ok(Some(m)) => {
                    // A length (at most MAX_UINT_LEN bytes) and a body within the limit.
                    let used = before - d.buffered();
                    assert!(used >= 2 && used <= gob::MAX_UINT_LEN + limits.max_message);
                    if let Message::Definition { id, ty } = &m {
                        assert_eq!(d.types().get(id), Some(ty), "a definition not recorded");
                    }
                    messages.push(m);
                }
                Ok(None) => break,
                Err(e) => {
                    // Errors are final.
                    assert_eq!(d.next_message(), Err(e.clone()));
                    d.push(b"\x03\x04\x00\x02");
                    assert_eq!(d.next_message(), Err(e.clone()));
                    assert_eq!(d.finish(), Err(e.clone()));
                    return Outcome {
                        messages,
                        error: Some(e),
                        non_minimal: d.non_minimal_uints(),
                    };
                }
            }
        }
    }
    let left = d.buffered();
    let end = d.finish();
    match &end {
        Ok(()) => assert_eq!(left, 0, "finish() accepts {left} undecoded bytes"),
        Err(e @ GobError::TruncatedMessage { .. }) => {
            assert!(left > 0, "finish() reports {e:?} with nothing buffered");
            assert_eq!(d.finish(), Err(e.clone()));
        }
        Err(e) => panic!("finish() reports {e:?}"),
    }
    Outcome {
        messages,
        error: end.err(),
        non_minimal: d.non_minimal_uints(),
    }
}

fn same_outcome(a: &Outcome, b: &Outcome) -> bool {
    same_messages(&a.messages, &b.messages) && a.error == b.error && a.non_minimal == b.non_minimal
}

/// A registry holding the stream's definitions at the ids they were given, with distinct
/// filler types in the gaps (a `TypeRegistry` allocates ids from 65 upwards). `None` when the
/// ids are not increasing from 65, leave a gap of more than 256 ids, or two definitions are the
/// same type (the registry keeps one id per type).
fn registry_of(messages: &[Message]) -> Option<TypeRegistry> {
    let mut registry = TypeRegistry::new();
    let mut next: TypeId = ids::FIRST_USER + 1;
    for m in messages {
        let Message::Definition { id, ty } = m else {
            continue;
        };
        // Ids far apart would need as many fillers (the registry is a linear list).
        if *id < next || *id - next > 256 {
            return None;
        }
        while next < *id {
            let filler = WireType::Struct {
                name: format!("\u{0}filler {next}"),
                fields: Vec::new(),
            };
            if registry.register(filler) != next {
                return None;
            }
            next += 1;
        }
        if registry.register(ty.clone()) != *id {
            return None;
        }
        next += 1;
    }
    Some(registry)
}

fn check_reencoding(messages: &[Message]) {
    let Some(registry) = registry_of(messages) else {
        return;
    };
    let mut encoder = Encoder::new(registry.clone());
    let mut wire = Vec::new();
    let mut want = Vec::new();
    for m in messages {
        if let Message::Value { id, value } = m {
            if let Err(e) = encoder.encode(*id, value, &mut wire) {
                panic!("a decoded value of type {id} does not re-encode: {e}\n{value:?}");
            }
            want.push((*id, normalize(value)));
        }
    }
    let again = decode(DecodeLimits::default(), &[&wire]);
    assert_eq!(again.error, None, "re-encoded values do not decode");
    assert_eq!(
        again.non_minimal, 0,
        "the encoder wrote a non-minimal uint (GOB-1)"
    );
    let mut defined = HashSet::new();
    let mut values = Vec::new();
    for m in &again.messages {
        match m {
            Message::Definition { id, ty } => {
                assert!(defined.insert(*id), "type {id} defined twice (GOB-7)");
                assert_eq!(
                    Some(ty),
                    registry.get(*id),
                    "type {id} re-encodes to another definition"
                );
            }
            Message::Value { id, value } => values.push((*id, value)),
        }
    }
    assert_eq!(values.len(), want.len());
    for ((id, got), (want_id, want)) in values.iter().zip(&want) {
        assert_eq!(id, want_id);
        assert!(
            same_value(got, want),
            "a value of type {id} changes through encoding:\n{want:?}\n{got:?}"
        );
    }
    // The encoding of decoded values is a fixed point.
    let mut encoder = Encoder::new(registry);
    let mut wire2 = Vec::new();
    for (id, value) in &values {
        encoder.encode(*id, value, &mut wire2).unwrap();
    }
    assert_eq!(wire, wire2, "encoding is not stable through decoding");
}

fuzz_target!(|input: Input<'_>| {
    let bytes = input.bytes;
    let default = DecodeLimits::default();
    let whole = decode(default, &[bytes]);

    // Split invariance.
    let pieces = split(bytes, &input.cuts);
    let cut = decode(default, &pieces);
    assert!(same_outcome(&whole, &cut), "{whole:?}\n{cut:?}");
    if bytes.len() <= 512 {
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        let one = decode(default, &singles);
        assert!(same_outcome(&whole, &one), "{whole:?}\n{one:?}");
    }

    // Smaller limits only add limit errors.
    let small = DecodeLimits {
        max_message: [16, 64, 256, 4096][usize::from(input.limits & 3)],
        max_depth: usize::from((input.limits >> 2) & 15),
    };
    let limited = decode(small, &pieces);
    assert!(limited.messages.len() <= whole.messages.len());
    assert!(same_messages(
        &limited.messages,
        &whole.messages[..limited.messages.len()]
    ));
    match &limited.error {
        Some(GobError::MessageTooLarge { max, .. }) => assert_eq!(*max, small.max_message),
        Some(GobError::TooDeep { max }) => assert_eq!(*max, small.max_depth),
        _ => assert!(same_outcome(&limited, &whole), "{limited:?}\n{whole:?}"),
    }

    // What decoded re-encodes.
    check_reencoding(&whole.messages);
});
