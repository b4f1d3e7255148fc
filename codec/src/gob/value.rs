//! Gob values: what a value message holds, exactly as it was on the wire (`spec/05-rpc.md`,
//! section 5.2.8).
//!
//! - [`Value`] and [`Field`]: a struct value keeps only the fields that were sent, in order
//!   (GOB-11); strings are kept as bytes and self-encoding values as opaque bytes (GOB-14).
//! - GOB-12: `Value::is_omitted_zero` says which field values a sender leaves out.
//! - [`FieldRef`] and [`Part`]: the borrowed forms of a flat struct's fields, which the decoder
//!   hands out ([`Decoder::next_visiting`](super::Decoder::next_visiting)) and the encoder takes
//!   ([`Encoder::encode_parts`](super::Encoder::encode_parts)) without building a [`Value`].
//! - `Display` for [`Value`]: the short text form of a value, for messages.

use std::fmt;

/// A named field of a struct value.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The field's name, from the type definition.
    pub name: String,
    /// Its value.
    pub value: Value,
}

/// A decoded gob value, exactly as it was on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A `bool`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    Uint(u64),
    /// A float.
    Float(f64),
    /// A complex number (real, imaginary).
    Complex(f64, f64),
    /// A `[]byte`.
    Bytes(Vec<u8>),
    /// A string, as the bytes sent (Go strings need not be UTF-8).
    String(Vec<u8>),
    /// A struct: only the fields that were sent (senders omit zero values), in order.
    Struct {
        /// The struct type's name (empty for `struct{}`).
        name: String,
        /// The fields sent.
        fields: Vec<Field>,
    },
    /// A slice.
    Slice(Vec<Value>),
    /// An array.
    Array(Vec<Value>),
    /// A map, in wire order.
    Map(Vec<(Value, Value)>),
    /// The bytes of a self-encoding (GobEncoder, BinaryMarshaler, TextMarshaler) value.
    Opaque(Vec<u8>),
}

impl Value {
    /// A string value from text.
    pub fn string(s: &str) -> Value {
        Value::String(s.as_bytes().to_vec())
    }

    /// The empty struct value `struct{}{}`.
    pub fn empty_struct() -> Value {
        Value::Struct {
            name: String::new(),
            fields: Vec::new(),
        }
    }

    /// A struct field by name, if it was sent.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct { fields, .. } => {
                fields.iter().find(|f| f.name == name).map(|f| &f.value)
            }
            _ => None,
        }
    }

    /// A short name of the value's kind, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Uint(_) => "uint",
            Value::Float(_) => "float",
            Value::Complex(..) => "complex",
            Value::Bytes(_) => "[]byte",
            Value::String(_) => "string",
            Value::Struct { .. } => "struct",
            Value::Slice(_) => "slice",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
            Value::Opaque(_) => "opaque",
        }
    }

    /// Whether Go would omit this value as a struct field (its type's zero value). Structs and
    /// arrays are always sent.
    pub(super) fn is_omitted_zero(&self) -> bool {
        match self {
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
}

/// A field of a struct value, as
/// [`Decoder::next_visiting`](super::Decoder::next_visiting) hands it over.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldRef<'a> {
    /// A `string` field, as the bytes sent.
    String(&'a [u8]),
    /// A `uint` field.
    Uint(u64),
    /// A field of any other type, decoded.
    Other(Value),
}

impl FieldRef<'_> {
    /// A short name of the field's kind, as [`Value::kind`] gives it.
    pub fn kind(&self) -> &'static str {
        match self {
            FieldRef::String(_) => "string",
            FieldRef::Uint(_) => "uint",
            FieldRef::Other(v) => v.kind(),
        }
    }
}

/// A value for [`Encoder::encode_parts`](super::Encoder::encode_parts).
#[derive(Debug, Clone, PartialEq)]
pub enum Part<'a> {
    /// A value.
    Value(&'a Value),
    /// A struct value given as its fields, by name in any order: what [`Value::Struct`] with
    /// these fields would be, built without allocating (a `net/rpc` header is sent this way).
    Fields(&'a [(&'a str, FieldRef<'a>)]),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Uint(u) => write!(f, "{u}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Complex(r, i) => write!(f, "({r}+{i}i)"),
            Value::Bytes(b) | Value::Opaque(b) => write!(f, "[{} bytes]", b.len()),
            Value::String(s) => write!(f, "{:?}", String::from_utf8_lossy(s)),
            Value::Struct { name, fields } => {
                write!(f, "{name}{{")?;
                for (i, fl) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", fl.name, fl.value)?;
                }
                f.write_str("}")
            }
            Value::Slice(items) | Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(items) => {
                f.write_str("map[")?;
                for (i, (k, v)) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" ")?;
                    }
                    write!(f, "{k}:{v}")?;
                }
                f.write_str("]")
            }
        }
    }
}
