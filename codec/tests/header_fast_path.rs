//! The RPC envelope reads its headers with [`Decoder::next_visiting`], without building a
//! `Value`. These properties check that this gives exactly what the plain path gives
//! ([`Decoder::next_value`], then [`RequestHeader::from_value`] or
//! [`ResponseHeader::from_value`]): the same headers, bodies and errors, in the same order,
//! on mutated Go sessions and on header structs of any shape (fields in any order, of the
//! wrong kinds, nested, missing), under any decoding limits. The same for sending: a header
//! given as [`Part::Fields`] gives the bytes, or the error, of the [`Value`] it stands for.

use proptest::collection::vec;
use proptest::prelude::*;
use rpcplugin_codec::gob::{
    ids, DecodeLimits, Decoder, Encoder, Field, FieldRef, Part, TypeId, TypeRegistry, Value,
    Visited, WireType,
};
use rpcplugin_codec::rpc::{ClientCodec, RequestHeader, ResponseHeader, RpcError, ServerCodec};
use rpcplugin_test_support::vectors::go_sessions;

/// What one end read, step by step: a header's text form and its body, or the error.
type Steps = Vec<Result<(String, TypeId, Value), RpcError>>;

/// The plain reading of a stream of requests or responses.
fn plain(bytes: &[u8], limits: DecodeLimits, requests: bool) -> Steps {
    let mut d = Decoder::with_limits(limits);
    d.push(bytes);
    let mut steps = Vec::new();
    let mut header: Option<String> = None;
    loop {
        let (id, value) = match d.next_value() {
            Ok(Some(v)) => v,
            Ok(None) => return steps,
            Err(e) => {
                steps.push(Err(RpcError::Gob(e)));
                return steps;
            }
        };
        match header.take() {
            Some(h) => steps.push(Ok((h, id, value))),
            None => {
                let parsed = if requests {
                    RequestHeader::from_value(&value).map(|h| format!("{h:?}"))
                } else {
                    ResponseHeader::from_value(&value).map(|h| format!("{h:?}"))
                };
                match parsed {
                    Ok(h) => header = Some(h),
                    Err(e) => {
                        steps.push(Err(e));
                        return steps;
                    }
                }
            }
        }
    }
}

/// The codecs' reading of the same bytes.
fn codec(bytes: &[u8], limits: DecodeLimits, requests: bool) -> Steps {
    let mut steps = Vec::new();
    if requests {
        let mut s = ServerCodec::with_decoder(Decoder::with_limits(limits));
        s.push(bytes);
        loop {
            match s.next_request() {
                Ok(Some(r)) => steps.push(Ok((format!("{:?}", r.header), r.args_type, r.args))),
                Ok(None) => return steps,
                Err(e) => {
                    steps.push(Err(e));
                    return steps;
                }
            }
        }
    } else {
        let mut c: ClientCodec<()> = ClientCodec::with_decoder(Decoder::with_limits(limits));
        c.push(bytes);
        loop {
            match c.next_response() {
                Ok(Some(r)) => steps.push(Ok((format!("{:?}", r.header), 0, r.body))),
                Ok(None) => return steps,
                Err(e) => {
                    steps.push(Err(e));
                    return steps;
                }
            }
        }
    }
}

/// The plain steps with the body type ids of responses dropped (a client does not return
/// them).
fn comparable(mut steps: Steps, requests: bool) -> Steps {
    if !requests {
        for (_, id, _) in steps.iter_mut().flatten() {
            *id = 0;
        }
    }
    steps
}

fn go_session(index: usize, client_side: bool) -> Vec<u8> {
    go_sessions()[index].bytes(client_side)
}

const NAMES: [&str; 4] = ["ServiceMethod", "Seq", "Error", "Other"];
const INNER: TypeId = 65;

/// A field type of a generated header, with a value of it.
fn typed_field() -> impl Strategy<Value = (TypeId, Value)> {
    prop_oneof![
        "[a-zA-Z.]{0,12}".prop_map(|s| (ids::STRING, Value::string(&s))),
        (0u64..3).prop_map(|u| (ids::UINT, Value::Uint(u))),
        any::<u64>().prop_map(|u| (ids::UINT, Value::Uint(u))),
        (-3i64..3).prop_map(|i| (ids::INT, Value::Int(i))),
        vec(any::<u8>(), 0..4).prop_map(|b| (ids::BYTES, Value::Bytes(b))),
        any::<bool>().prop_map(|b| (ids::BOOL, Value::Bool(b))),
        (-3i64..3).prop_map(|i| (
            INNER,
            Value::Struct {
                name: "Inner".into(),
                fields: vec![Field {
                    name: "A".into(),
                    value: Value::Int(i)
                }],
            }
        )),
    ]
}

/// A header struct type of up to four distinct fields in any order, with a value, as one
/// encoded stream of `count` header and body pairs.
fn header_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        Just(()).prop_perturb(|_, mut rng| {
            let mut order = NAMES.to_vec();
            for i in (1..order.len()).rev() {
                order.swap(i, rng.random_range(0..=i));
            }
            order
        }),
        vec(typed_field(), 4),
        0usize..5,
        1usize..4,
    )
        .prop_map(|(order, fields, keep, count)| {
            let fields: Vec<(&str, TypeId, Value)> = order
                .into_iter()
                .zip(fields)
                .take(keep)
                .map(|(n, (id, v))| (n, id, v))
                .collect();
            let mut registry = TypeRegistry::new();
            assert_eq!(
                registry.register(WireType::structure("Inner", &[("A", ids::INT)])),
                INNER
            );
            let defs: Vec<(&str, TypeId)> = fields.iter().map(|(n, id, _)| (*n, *id)).collect();
            let header = registry.register(WireType::structure("Request", &defs));
            let value = Value::Struct {
                name: "Request".into(),
                fields: fields
                    .into_iter()
                    .map(|(n, _, v)| Field {
                        name: n.into(),
                        value: v,
                    })
                    .collect(),
            };
            let mut enc = Encoder::new(registry);
            let mut out = Vec::new();
            for i in 0..count {
                enc.encode(header, &value, &mut out).unwrap();
                enc.encode(ids::INT, &Value::Int(i as i64), &mut out)
                    .unwrap();
            }
            out
        })
}

fn limits() -> impl Strategy<Value = DecodeLimits> {
    prop_oneof![
        Just(DecodeLimits::default()),
        (0usize..4, 8usize..200).prop_map(|(max_depth, max_message)| DecodeLimits {
            max_message,
            max_depth
        }),
    ]
}

fn mutate(bytes: &mut Vec<u8>, edits: Vec<(usize, u8, u8)>) {
    for (at, b, op) in edits {
        let at = at % (bytes.len() + 1);
        match op {
            0 if at < bytes.len() => bytes[at] = b,
            1 => bytes.insert(at, b),
            2 if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.truncate(at),
        }
    }
}

proptest! {
    // covers: RPC-2, RPC-3
    #[test]
    fn headers_read_in_place_match_the_plain_reading_of_go_sessions(
        session in 0usize..2,
        client_side in any::<bool>(),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..4), 0..6),
        limits in limits(),
    ) {
        let mut bytes = go_session(session, client_side);
        mutate(&mut bytes, edits);
        let got = codec(&bytes, limits, client_side);
        prop_assert_eq!(got, comparable(plain(&bytes, limits, client_side), client_side));
    }

    // covers: RPC-3
    #[test]
    fn headers_of_any_shape_read_in_place_match_the_plain_reading(
        bytes in header_stream(),
        requests in any::<bool>(),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..4), 0..3),
        limits in limits(),
    ) {
        let mut bytes = bytes;
        mutate(&mut bytes, edits);
        let got = codec(&bytes, limits, requests);
        prop_assert_eq!(got, comparable(plain(&bytes, limits, requests), requests));
    }

    // covers: GOB-11, GOB-13
    #[test]
    fn visited_fields_are_the_fields_of_the_value(
        bytes in header_stream(),
        edits in vec((any::<usize>(), any::<u8>(), 0u8..4), 0..3),
        limits in limits(),
    ) {
        let mut bytes = bytes;
        mutate(&mut bytes, edits);
        let mut plain = Decoder::with_limits(limits);
        let mut visiting = Decoder::with_limits(limits);
        plain.push(&bytes);
        visiting.push(&bytes);
        loop {
            let mut fields = Vec::new();
            let got = visiting.next_visiting(&mut |name, value| {
                let value = match value {
                    FieldRef::String(b) => Value::String(b.to_vec()),
                    FieldRef::Uint(u) => Value::Uint(u),
                    FieldRef::Other(v) => v,
                };
                fields.push(Field { name: name.to_string(), value });
            });
            let want = plain.next_value();
            match (got, want) {
                (Ok(Some((id, Visited::Fields))), Ok(Some((want_id, Value::Struct { fields: want, .. })))) => {
                    prop_assert_eq!(id, want_id);
                    prop_assert_eq!(fields, want);
                }
                (Ok(Some((id, Visited::Value(v)))), Ok(Some(want))) => {
                    let is_struct = matches!(v, Value::Struct { .. });
                    prop_assert!(!is_struct || limits.max_depth <= 1, "a struct was not visited");
                    prop_assert_eq!((id, v), want);
                }
                (Ok(None), Ok(None)) => break,
                (Err(e), Err(want)) => {
                    prop_assert_eq!(e, want);
                    break;
                }
                (got, want) => prop_assert!(false, "visiting gave {:?}, plain gave {:?}", got, want),
            }
            prop_assert_eq!(visiting.non_minimal_uints(), plain.non_minimal_uints());
        }
    }

    // covers: GOB-12, GOB-7
    #[test]
    fn fields_encode_as_the_value_they_stand_for(
        types in vec((0usize..4, typed_field()), 0..4),
        given in vec((0usize..4, typed_field()), 0..5),
        header_first in any::<bool>(),
    ) {
        let mut registry = TypeRegistry::new();
        registry.register(WireType::structure("Inner", &[("A", ids::INT)]));
        let mut defs: Vec<(&str, TypeId)> = Vec::new();
        for (n, (id, _)) in &types {
            if !defs.iter().any(|(d, _)| *d == NAMES[*n]) {
                defs.push((NAMES[*n], *id));
            }
        }
        let header = registry.register(WireType::structure("Request", &defs));
        let fields: Vec<(&str, FieldRef<'_>)> = given
            .iter()
            .map(|(n, (_, v))| {
                let f = match v {
                    Value::String(b) => FieldRef::String(b),
                    Value::Uint(u) => FieldRef::Uint(*u),
                    other => FieldRef::Other(other.clone()),
                };
                (NAMES[*n], f)
            })
            .collect();
        let value = Value::Struct {
            name: "Request".into(),
            fields: given
                .iter()
                .map(|(n, (_, v))| Field { name: NAMES[*n].into(), value: v.clone() })
                .collect(),
        };
        let body = Value::Int(7);
        let mut by_parts = Encoder::new(registry.clone());
        let mut by_value = Encoder::new(registry);
        // Twice: with the definitions, then without (or, after an error, with them again).
        for _ in 0..2 {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let (pa, pb) = if header_first {
                (
                    by_parts.encode_parts(&[(header, Part::Fields(&fields)), (ids::INT, Part::Value(&body))], &mut a),
                    by_value.encode_all(&[(header, &value), (ids::INT, &body)], &mut b),
                )
            } else {
                (
                    by_parts.encode_parts(&[(header, Part::Fields(&fields))], &mut a),
                    by_value.encode_all(&[(header, &value)], &mut b),
                )
            };
            prop_assert_eq!(pa, pb);
            prop_assert_eq!(a, b);
        }
    }
}
