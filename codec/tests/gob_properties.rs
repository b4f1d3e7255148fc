//! Property tests of the gob subset and the RPC envelope: encode then decode is the identity
//! for every kind of type in the subset, under any split of the bytes; mutated Go sessions never
//! make the decoders panic; and snapshots of every error message.

use proptest::collection::vec;
use proptest::prelude::*;
use rpcplugin_codec::gob::{
    ids, DecodeLimits, Decoder, Encoder, Field, GobError, TypeId, TypeRegistry, Value, WireType,
};
use rpcplugin_codec::rpc::{ClientCodec, RpcError, ServerCodec};
use rpcplugin_test_support::split_at_cuts as split;
use rpcplugin_test_support::vectors::go_sessions;

const INNER: TypeId = 65;
const INT_SLICE: TypeId = 66;
const STR_INT_MAP: TypeId = 67;
const ARR3: TypeId = 68;
const INNER_SLICE: TypeId = 69;
const OPAQUE: TypeId = 70;
const OUTER: TypeId = 71;

fn registry() -> TypeRegistry {
    let mut r = TypeRegistry::new();
    let types = [
        WireType::structure(
            "Inner",
            &[("A", ids::INT), ("B", ids::STRING), ("C", ids::BYTES)],
        ),
        WireType::Slice {
            name: "IntSlice".into(),
            elem: ids::INT,
        },
        WireType::Map {
            name: "StrIntMap".into(),
            key: ids::STRING,
            elem: ids::INT,
        },
        WireType::Array {
            name: "Arr3".into(),
            elem: ids::UINT,
            len: 3,
        },
        WireType::Slice {
            name: "InnerSlice".into(),
            elem: INNER,
        },
        WireType::Encoder {
            name: "Stamp".into(),
            kind: rpcplugin_codec::gob::EncoderKind::Binary,
        },
        WireType::structure(
            "Outer",
            &[
                ("Flag", ids::BOOL),
                ("N", ids::INT),
                ("U", ids::UINT),
                ("F", ids::FLOAT),
                ("S", ids::STRING),
                ("Raw", ids::BYTES),
                ("In", INNER),
                ("L", INT_SLICE),
                ("M", STR_INT_MAP),
                ("Arr", ARR3),
                ("Cx", ids::COMPLEX),
                ("Ins", INNER_SLICE),
                ("Op", OPAQUE),
            ],
        ),
    ];
    for (i, t) in types.into_iter().enumerate() {
        assert_eq!(r.register(t), 65 + i as i64);
    }
    r
}

fn finite() -> impl Strategy<Value = f64> {
    prop_oneof![
        Just(0.0),
        Just(-0.0),
        Just(1.5),
        any::<f64>().prop_filter("finite", |f| f.is_finite())
    ]
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![]),
        vec(any::<u8>(), 0..40),
        vec(any::<u8>(), 200..300)
    ]
}

fn int() -> impl Strategy<Value = i64> {
    prop_oneof![
        Just(0),
        Just(-1),
        Just(i64::MIN),
        Just(i64::MAX),
        any::<i64>(),
        -200i64..200
    ]
}

fn field(name: &str, value: Value) -> Field {
    Field {
        name: name.into(),
        value,
    }
}

/// A struct value as it comes back from the wire: fields with their type's zero value are not
/// sent (structs and arrays always are).
fn structure(name: &str, fields: Vec<Field>) -> Value {
    let fields = fields
        .into_iter()
        .filter(|f| match &f.value {
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Uint(u) => *u != 0,
            Value::Float(x) => x.to_bits() != 0,
            Value::Complex(r, i) => r.to_bits() != 0 || i.to_bits() != 0,
            Value::Bytes(b) | Value::String(b) | Value::Opaque(b) => !b.is_empty(),
            Value::Slice(v) => !v.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Struct { .. } | Value::Array(_) => true,
        })
        .collect();
    Value::Struct {
        name: name.into(),
        fields,
    }
}

fn inner() -> impl Strategy<Value = Value> {
    (int(), bytes(), bytes()).prop_map(|(a, b, c)| {
        structure(
            "Inner",
            vec![
                field("A", Value::Int(a)),
                field("B", Value::String(b)),
                field("C", Value::Bytes(c)),
            ],
        )
    })
}

fn outer() -> impl Strategy<Value = Value> {
    (
        (
            any::<bool>(),
            int(),
            any::<u64>(),
            finite(),
            bytes(),
            bytes(),
            inner(),
        ),
        (
            vec(int(), 0..5),
            vec((bytes(), int()), 0..4),
            [any::<u64>(), any::<u64>(), any::<u64>()],
            (finite(), finite()),
            vec(inner(), 0..3),
            bytes(),
        ),
    )
        .prop_map(|((flag, n, u, f, s, raw, inn), (l, m, arr, cx, ins, op))| {
            structure(
                "Outer",
                vec![
                    field("Flag", Value::Bool(flag)),
                    field("N", Value::Int(n)),
                    field("U", Value::Uint(u)),
                    field("F", Value::Float(f)),
                    field("S", Value::String(s)),
                    field("Raw", Value::Bytes(raw)),
                    field("In", inn),
                    field("L", Value::Slice(l.into_iter().map(Value::Int).collect())),
                    field(
                        "M",
                        Value::Map(
                            m.into_iter()
                                .map(|(k, v)| (Value::String(k), Value::Int(v)))
                                .collect(),
                        ),
                    ),
                    field(
                        "Arr",
                        Value::Array(arr.into_iter().map(Value::Uint).collect()),
                    ),
                    field("Cx", Value::Complex(cx.0, cx.1)),
                    field("Ins", Value::Slice(ins)),
                    field("Op", Value::Opaque(op)),
                ],
            )
        })
}

/// A value of any type in the subset, with its type id.
fn typed_value() -> impl Strategy<Value = (TypeId, Value)> {
    prop_oneof![
        any::<bool>().prop_map(|b| (ids::BOOL, Value::Bool(b))),
        int().prop_map(|i| (ids::INT, Value::Int(i))),
        any::<u64>().prop_map(|u| (ids::UINT, Value::Uint(u))),
        finite().prop_map(|f| (ids::FLOAT, Value::Float(f))),
        (finite(), finite()).prop_map(|(r, i)| (ids::COMPLEX, Value::Complex(r, i))),
        bytes().prop_map(|b| (ids::BYTES, Value::Bytes(b))),
        bytes().prop_map(|b| (ids::STRING, Value::String(b))),
        inner().prop_map(|v| (INNER, v)),
        vec(int(), 0..6).prop_map(|l| (
            INT_SLICE,
            Value::Slice(l.into_iter().map(Value::Int).collect())
        )),
        outer().prop_map(|v| (OUTER, v)),
    ]
}

proptest! {
    // covers: GOB-11, GOB-12, GOB-13, GOB-14
    #[test]
    fn encode_then_decode_is_the_identity(values in vec(typed_value(), 1..6), cuts in vec(any::<usize>(), 0..10)) {
        let mut enc = Encoder::new(registry());
        let mut bytes = Vec::new();
        for (id, v) in &values {
            enc.encode(*id, v, &mut bytes).unwrap();
        }
        let mut dec = Decoder::new();
        let mut got = Vec::new();
        for piece in split(&bytes, &cuts) {
            dec.push(piece);
            while let Some(v) = dec.next_value().unwrap() {
                got.push(v);
            }
        }
        dec.finish().unwrap();
        prop_assert_eq!(got, values);
    }

    // covers: GOB-7
    #[test]
    fn every_definition_is_sent_once_before_its_first_use(values in vec(typed_value(), 1..8)) {
        let mut enc = Encoder::new(registry());
        let mut bytes = Vec::new();
        for (id, v) in &values {
            enc.encode(*id, v, &mut bytes).unwrap();
        }
        let mut dec = Decoder::new();
        dec.push(&bytes);
        let mut defined = std::collections::HashSet::new();
        while let Some(m) = dec.next_message().unwrap() {
            if let rpcplugin_codec::gob::Message::Definition { id, .. } = m {
                prop_assert!(defined.insert(id), "type {} defined twice", id);
            }
        }
    }

    // covers: GOB-20
    #[test]
    fn mutated_go_sessions_never_panic(
        session in 0usize..3,
        client_side in any::<bool>(),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..4), 1..6),
        cuts in vec(any::<usize>(), 0..6),
    ) {
        let mut bytes: Vec<u8> = go_sessions()[session].bytes(client_side);
        for (at, b, op) in edits {
            let at = at % (bytes.len() + 1);
            match op {
                0 if at < bytes.len() => bytes[at] = b,
                1 => bytes.insert(at, b),
                2 if at < bytes.len() => { bytes.remove(at); }
                _ => bytes.truncate(at),
            }
        }
        let limits = DecodeLimits { max_message: 1 << 16, max_depth: 8 };
        let mut server = ServerCodec::with_decoder(Decoder::with_limits(limits));
        let mut client: ClientCodec<()> = ClientCodec::with_decoder(Decoder::with_limits(limits));
        for piece in split(&bytes, &cuts) {
            server.push(piece);
            client.push(piece);
            while let Ok(Some(_)) = server.next_request() {}
            while let Ok(Some(_)) = client.next_response() {}
        }
        let _ = server.finish();
        let _ = client.finish();
    }
}

// covers: GOB-2, GOB-4, GOB-5, GOB-6, GOB-9, GOB-10, GOB-11, GOB-13, GOB-14, GOB-15, GOB-17, GOB-20, GOB-21
#[test]
fn gob_error_messages() {
    let errors: Vec<(&str, String)> = [
        GobError::MessageTooLarge {
            len: 16_777_217,
            max: 16 << 20,
        },
        GobError::EmptyMessage,
        GobError::BadUint { count: 0xf7 },
        GobError::Truncated { what: "a string" },
        GobError::TruncatedMessage { have: 2, len: 3 },
        GobError::DuplicateType { id: 65 },
        GobError::BadDefinition {
            id: 65,
            reason: "no kind is set".into(),
        },
        GobError::UndefinedType { id: 70 },
        GobError::BadField {
            name: "Request".into(),
            field: 3,
            count: 2,
        },
        GobError::BadSingleton { delta: 1 },
        GobError::ArrayLength { got: 2, want: 3 },
        GobError::TooDeep { max: 64 },
        GobError::Unsupported {
            what: "an interface value".into(),
        },
        GobError::ExtraData { extra: 1 },
    ]
    .iter()
    .map(|e| (e.kind(), e.to_string()))
    .collect();
    insta::assert_json_snapshot!(errors);
    let rpc: Vec<(&str, String)> = [
        RpcError::BadHeader {
            which: "request",
            reason: "Seq has kind int; a uint is required".into(),
        },
        RpcError::MissingBody { seq: 7 },
        RpcError::Gob(GobError::EmptyMessage),
    ]
    .iter()
    .map(|e| (e.kind(), e.to_string()))
    .collect();
    insta::assert_json_snapshot!(rpc);
}

// covers: GOB-1, GOB-2, GOB-3
#[test]
fn gob_uints_and_ints() {
    use rpcplugin_codec::gob::{put_int, put_uint, read_int, read_uint, UintError};
    let cases: [(u64, &[u8]); 6] = [
        (0, &[0x00]),
        (127, &[0x7f]),
        (128, &[0xff, 0x80]),
        (256, &[0xfe, 0x01, 0x00]),
        (65536, &[0xfd, 0x01, 0x00, 0x00]),
        (
            u64::MAX,
            &[0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
    ];
    for (u, bytes) in cases {
        let mut out = Vec::new();
        put_uint(u, &mut out);
        assert_eq!(out, bytes, "{u}");
        assert_eq!(read_uint(bytes), Ok((u, bytes.len())));
    }
    // Non-minimal forms decode to their value; more than 8 bytes is an overflow.
    assert_eq!(read_uint(&[0xfe, 0x00, 0x82]), Ok((130, 3)));
    assert_eq!(
        read_uint(&[0xf7, 1, 2, 3, 4, 5, 6, 7, 8, 9]),
        Err(UintError::BadCount(0xf7))
    );
    assert_eq!(read_uint(&[0x80]), Err(UintError::BadCount(0x80)));
    for (i, bytes) in [
        (0i64, &[0x00][..]),
        (-1, &[0x01]),
        (1, &[0x02]),
        (65, &[0xff, 0x82]),
        (-65, &[0xff, 0x81]),
    ] {
        let mut out = Vec::new();
        put_int(i, &mut out);
        assert_eq!(out, bytes, "{i}");
        assert_eq!(read_int(bytes), Ok((i, bytes.len())));
    }
}

// covers: GOB-15, GOB-16
#[test]
fn messages_up_to_the_minimum_limit_pass_and_longer_ones_are_not_sent() {
    use rpcplugin_codec::gob::{GobEncodeError, MIN_MAX_MESSAGE};
    // The largest []byte value whose message is exactly MIN_MAX_MESSAGE bytes: type id (1),
    // singleton (1), length (4), data.
    let data = vec![0x5a; MIN_MAX_MESSAGE - 6];
    let mut enc = Encoder::new(TypeRegistry::new());
    let mut bytes = Vec::new();
    enc.encode(ids::BYTES, &Value::Bytes(data.clone()), &mut bytes)
        .unwrap();
    let limits = DecodeLimits {
        max_message: MIN_MAX_MESSAGE,
        ..DecodeLimits::default()
    };
    let mut dec = Decoder::with_limits(limits);
    dec.push(&bytes);
    assert_eq!(
        dec.next_value().unwrap(),
        Some((ids::BYTES, Value::Bytes(data)))
    );
    // One byte more is refused by the encoder, which writes nothing.
    let mut out = Vec::new();
    let err = enc
        .encode(
            ids::BYTES,
            &Value::Bytes(vec![0; MIN_MAX_MESSAGE - 5]),
            &mut out,
        )
        .unwrap_err();
    assert!(
        matches!(err, GobEncodeError::MessageTooLong { .. }),
        "{err}"
    );
    assert!(out.is_empty());
}

// covers: GOB-17
#[test]
fn nesting_of_sixteen_levels_is_accepted() {
    // Type 65: []66; type 66: struct { Kids 65 }.
    let mut r = TypeRegistry::new();
    assert_eq!(
        r.register(WireType::Slice {
            name: "Kids".into(),
            elem: 66
        }),
        65
    );
    assert_eq!(r.register(WireType::structure("Node", &[("Kids", 65)])), 66);
    fn node(depth: usize) -> Value {
        let kids = if depth == 0 {
            vec![]
        } else {
            vec![node(depth - 1)]
        };
        let fields = if kids.is_empty() {
            vec![]
        } else {
            vec![field("Kids", Value::Slice(kids))]
        };
        Value::Struct {
            name: "Node".into(),
            fields,
        }
    }
    // A Kids slice holding node(7): 1 + 8 nodes + 7 slices = 16 composite levels pass; node(8)
    // in a slice (18 levels) does not.
    let limits = DecodeLimits {
        max_depth: 16,
        ..DecodeLimits::default()
    };
    for (depth, ok) in [(7, true), (8, false)] {
        let mut enc = Encoder::new(r.clone());
        let value = Value::Slice(vec![node(depth)]);
        let mut bytes = Vec::new();
        enc.encode(65, &value, &mut bytes).unwrap();
        let mut dec = Decoder::with_limits(limits);
        dec.push(&bytes);
        match dec.next_value() {
            Ok(got) => assert!(ok && got == Some((65, value))),
            Err(e) => assert!(!ok && e.kind() == "too_deep", "{e}"),
        }
    }
}

// covers: GOB-17
#[test]
fn only_composite_values_count_towards_the_depth() {
    // Level16 { Leaf int }, Level15 { Next Level16 }, ..., Level1 { Next Level2 }: 16 composite
    // levels, with a basic value inside the deepest one. At a limit of 16 the int is fine (it
    // does not count); one more struct level around them is too deep.
    for (levels, ok) in [(16, true), (17, false)] {
        let mut r = TypeRegistry::new();
        let mut id = r.register(WireType::structure(
            &format!("Level{levels}"),
            &[("Leaf", rpcplugin_codec::gob::ids::INT)],
        ));
        let mut value = Value::Struct {
            name: format!("Level{levels}"),
            fields: vec![field("Leaf", Value::Int(16))],
        };
        for level in (1..levels).rev() {
            let name = format!("Level{level}");
            id = r.register(WireType::structure(&name, &[("Next", id)]));
            value = Value::Struct {
                name,
                fields: vec![field("Next", value)],
            };
        }
        let mut bytes = Vec::new();
        Encoder::new(r).encode(id, &value, &mut bytes).unwrap();
        let mut dec = Decoder::with_limits(DecodeLimits::minimum());
        dec.push(&bytes);
        match dec.next_value() {
            Ok(got) => assert!(ok && got == Some((id, value)), "{levels} levels: {got:?}"),
            Err(e) => assert!(!ok && e.kind() == "too_deep", "{levels} levels: {e}"),
        }
    }
}

// covers: RPC-11
#[test]
fn pending_calls_are_handed_back_when_the_stream_ends() {
    use rpcplugin_codec::rpc::Call;
    let mut client: ClientCodec<Call> = ClientCodec::new();
    let mut out = Vec::new();
    client
        .call_typed(Call::OnActivate { api_stream: 3 }, &mut out)
        .unwrap();
    client.call_typed(Call::OnDeactivate, &mut out).unwrap();
    // The stream ends inside a response message.
    client.push(&[0x05, 0xff]);
    assert_eq!(client.next_response(), Ok(None));
    assert_eq!(client.finish().unwrap_err().kind(), "truncated");
    let failed = client.fail_pending();
    assert_eq!(
        failed,
        [
            (0, Call::OnActivate { api_stream: 3 }),
            (1, Call::OnDeactivate)
        ]
    );
    assert!(client.pending().is_empty());
}
