//! Helpers shared by the fuzz targets (`fuzz_targets/*.rs`): splitting input into reads, and
//! comparing and normalising gob values.

use rpcplugin_codec::gob::{Field, Message, Value};

/// Cuts `bytes` at the points `cuts` name (each taken modulo `len + 1`, so any value is a
/// valid cut), in increasing order. The pieces concatenate to `bytes`; some may be empty.
pub fn split<'a>(bytes: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| usize::from(*c) % (bytes.len() + 1))
        .collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    let pieces: Vec<&[u8]> = points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
    debug_assert_eq!(pieces.concat(), bytes);
    pieces
}

/// Value equality with floats compared bit for bit (`Value`'s `PartialEq` says `NaN != NaN`
/// and `0.0 == -0.0`; the wire carries bits).
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => x.to_bits() == y.to_bits(),
        (Value::Complex(a1, a2), Value::Complex(b1, b2)) => {
            a1.to_bits() == b1.to_bits() && a2.to_bits() == b2.to_bits()
        }
        (
            Value::Struct {
                name: n1,
                fields: f1,
            },
            Value::Struct {
                name: n2,
                fields: f2,
            },
        ) => {
            n1 == n2
                && f1.len() == f2.len()
                && f1
                    .iter()
                    .zip(f2)
                    .all(|(x, y)| x.name == y.name && same_value(&x.value, &y.value))
        }
        (Value::Slice(x), Value::Slice(y)) | (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|((k1, v1), (k2, v2))| same_value(k1, k2) && same_value(v1, v2))
        }
        _ => a == b,
    }
}

/// [`same_value`] for messages.
pub fn same_message(a: &Message, b: &Message) -> bool {
    match (a, b) {
        (Message::Value { id: i, value: v }, Message::Value { id: j, value: w }) => {
            i == j && same_value(v, w)
        }
        _ => a == b,
    }
}

/// [`same_message`] for sequences.
pub fn same_messages(a: &[Message], b: &[Message]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_message(x, y))
}

/// Whether the encoder omits this value as a struct field (GOB-12, as the codec's `Encoder`
/// decides it: floats are zero when all their bits are).
pub fn is_omitted_zero(v: &Value) -> bool {
    match v {
        Value::Bool(b) => !b,
        Value::Int(i) => *i == 0,
        Value::Uint(u) => *u == 0,
        Value::Float(f) => f.to_bits() == 0,
        Value::Complex(r, i) => r.to_bits() == 0 && i.to_bits() == 0,
        Value::Bytes(b) | Value::String(b) | Value::Opaque(b) => b.is_empty(),
        Value::Slice(v) => v.is_empty(),
        Value::Map(m) => m.is_empty(),
        Value::Struct { .. } | Value::Array(_) => false,
    }
}

/// What a value decodes to after an encoder has sent it: struct fields holding zero values are
/// omitted (GOB-12), at every level.
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Struct { name, fields } => Value::Struct {
            name: name.clone(),
            fields: fields
                .iter()
                .filter(|f| !is_omitted_zero(&f.value))
                .map(|f| Field {
                    name: f.name.clone(),
                    value: normalize(&f.value),
                })
                .collect(),
        },
        Value::Slice(items) => Value::Slice(items.iter().map(normalize).collect()),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Map(items) => Value::Map(
            items
                .iter()
                .map(|(k, v)| (normalize(k), normalize(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The nesting depth the decoder counts for a value (GOB-17): only composite values count, so
/// a basic value is at depth 0 and a struct, slice, array or map is one more than its deepest
/// component (a struct of basic fields is 1). A value is too deep when this exceeds the limit.
pub fn depth(v: &Value) -> usize {
    let inner = match v {
        Value::Struct { fields, .. } => fields.iter().map(|f| depth(&f.value)).max(),
        Value::Slice(items) | Value::Array(items) => items.iter().map(depth).max(),
        Value::Map(items) => items.iter().map(|(k, v)| depth(k).max(depth(v))).max(),
        _ => return 0,
    };
    1 + inner.unwrap_or(0)
}
