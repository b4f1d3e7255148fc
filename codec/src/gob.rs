//! The subset of Go's `encoding/gob` that protocol 1's RPC layer uses (`spec/05-rpc.md`).
//!
//! A gob stream is a sequence of messages, each a gob uint length followed by that many bytes.
//! A message holds either a type definition (a negative type id, then a `wireType` value) or a
//! value (a positive type id, then the value). This module owns:
//!
//! - the gob uint and int encodings ([`put_uint`], [`put_int`], [`read_uint`], [`read_int`]);
//! - the type model ([`WireType`]) and the per-direction type table that definitions fill;
//! - a value model ([`Value`]) that says exactly what was on the wire: struct values keep only the
//!   fields that were sent, strings are kept as bytes, GobEncoder payloads as opaque bytes;
//! - an [`Encoder`] that writes type definitions before their first use, in Go's order, so that
//!   the same values give the same bytes as Go;
//! - an incremental [`Decoder`], fed arbitrary chunks, that tells "needs more bytes" from errors,
//!   enforces a message-size limit and a nesting limit, and never panics;
//! - a path for flat structs that builds no [`Value`]: [`Decoder::next_visiting`] hands a
//!   struct's fields over borrowed, [`Encoder::encode_parts`] takes them as [`Part::Fields`],
//!   with the same bytes and errors as the `Value` path (a `net/rpc` header goes this way on
//!   every call: `codec/tests/header_fast_path.rs`).
//!
//! Interface values are outside the subset: they are reported as [`GobError::Unsupported`].

use std::collections::{HashMap, HashSet};
use std::fmt;

use thiserror::Error;

/// A gob type id. Negative on the wire in a definition message.
pub type TypeId = i64;

/// Built-in type ids (`spec/05-rpc.md`).
pub mod ids {
    use super::TypeId;
    /// `bool`.
    pub const BOOL: TypeId = 1;
    /// Signed integers of every size.
    pub const INT: TypeId = 2;
    /// Unsigned integers of every size.
    pub const UINT: TypeId = 3;
    /// Floating-point numbers.
    pub const FLOAT: TypeId = 4;
    /// `[]byte`.
    pub const BYTES: TypeId = 5;
    /// `string`.
    pub const STRING: TypeId = 6;
    /// Complex numbers.
    pub const COMPLEX: TypeId = 7;
    /// Interface values (outside the subset).
    pub const INTERFACE: TypeId = 8;
    /// The lowest id a definition may define (Go's `firstUserId`).
    pub const FIRST_USER: TypeId = 64;
}

/// Every receiver accepts gob messages up to this many bytes (GOB_MIN_MAX_MESSAGE).
pub const MIN_MAX_MESSAGE: usize = 4 << 20;

/// No receiver's message limit is above this many bytes (GOB_MAX_MESSAGE_CEILING, GOB-19).
pub const MAX_MESSAGE_CEILING: usize = 16 << 20;

/// The codec's default message-size limit: [`MAX_MESSAGE_CEILING`].
pub const DEFAULT_MAX_MESSAGE: usize = MAX_MESSAGE_CEILING;

/// Every receiver accepts values nested this deep (GOB_MIN_MAX_DEPTH, GOB-17).
pub const MIN_MAX_DEPTH: usize = 16;

/// The codec's default nesting limit for values and types.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// The longest gob uint: a count byte and eight value bytes.
pub const MAX_UINT_LEN: usize = 9;

/// Appends the gob encoding of an unsigned integer.
pub fn put_uint(u: u64, out: &mut Vec<u8>) {
    if u < 0x80 {
        out.push(u as u8);
        return;
    }
    let bytes = u.to_be_bytes();
    let skip = (u.leading_zeros() / 8) as usize;
    out.push((-((8 - skip) as i8)) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Appends the gob encoding of a signed integer.
pub fn put_int(i: i64, out: &mut Vec<u8>) {
    let u = if i < 0 {
        ((!i as u64) << 1) | 1
    } else {
        (i as u64) << 1
    };
    put_uint(u, out);
}

/// Why bytes do not start with a gob uint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UintError {
    /// More bytes are needed.
    Incomplete,
    /// The count byte announces more than eight bytes.
    BadCount(u8),
}

/// Reads a gob uint from the start of `buf`, returning it and its length. Non-minimal forms
/// (such as `ff 05`) are accepted, as Go accepts them.
pub fn read_uint(buf: &[u8]) -> Result<(u64, usize), UintError> {
    let Some(&first) = buf.first() else {
        return Err(UintError::Incomplete);
    };
    if first < 0x80 {
        return Ok((u64::from(first), 1));
    }
    let n = (first as i8).unsigned_abs() as usize;
    if n > 8 {
        return Err(UintError::BadCount(first));
    }
    let Some(bytes) = buf.get(1..1 + n) else {
        return Err(UintError::Incomplete);
    };
    Ok((
        bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)),
        1 + n,
    ))
}

/// Reads a gob int from the start of `buf`.
pub fn read_int(buf: &[u8]) -> Result<(i64, usize), UintError> {
    read_uint(buf).map(|(u, n)| (uint_to_int(u), n))
}

fn uint_to_int(u: u64) -> i64 {
    if u & 1 == 1 {
        !((u >> 1) as i64)
    } else {
        (u >> 1) as i64
    }
}

/// A field of a struct type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDef {
    /// The field's name.
    pub name: String,
    /// The field's type.
    pub id: TypeId,
}

impl FieldDef {
    /// A field called `name` of type `id`.
    pub fn new(name: &str, id: TypeId) -> FieldDef {
        FieldDef {
            name: name.to_string(),
            id,
        }
    }
}

/// Which of the three GobEncoder-style interfaces a type implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncoderKind {
    /// `GobEncoder` (wireType field 4).
    Gob,
    /// `encoding.BinaryMarshaler` (field 5).
    Binary,
    /// `encoding.TextMarshaler` (field 6).
    Text,
}

/// A user type as a definition describes it (a `wireType`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireType {
    /// A fixed-length array (wireType field 0).
    Array {
        /// The type's name.
        name: String,
        /// The element type.
        elem: TypeId,
        /// The number of elements.
        len: i64,
    },
    /// A slice (field 1).
    Slice {
        /// The type's name.
        name: String,
        /// The element type.
        elem: TypeId,
    },
    /// A struct (field 2).
    Struct {
        /// The type's name (empty for `struct{}` literals).
        name: String,
        /// The fields, in field-number order.
        fields: Vec<FieldDef>,
    },
    /// A map (field 3).
    Map {
        /// The type's name.
        name: String,
        /// The key type.
        key: TypeId,
        /// The element type.
        elem: TypeId,
    },
    /// A type that encodes itself (fields 4 to 6): its values are opaque byte strings.
    Encoder {
        /// The type's name.
        name: String,
        /// Which interface.
        kind: EncoderKind,
    },
}

impl WireType {
    /// A struct type.
    pub fn structure(name: &str, fields: &[(&str, TypeId)]) -> WireType {
        WireType::Struct {
            name: name.to_string(),
            fields: fields.iter().map(|(n, id)| FieldDef::new(n, *id)).collect(),
        }
    }

    /// The type's name.
    pub fn name(&self) -> &str {
        match self {
            WireType::Array { name, .. }
            | WireType::Slice { name, .. }
            | WireType::Struct { name, .. }
            | WireType::Map { name, .. }
            | WireType::Encoder { name, .. } => name,
        }
    }

    /// The ids this type refers to, in Go's sending order.
    fn components(&self) -> Vec<TypeId> {
        match self {
            WireType::Array { elem, .. } | WireType::Slice { elem, .. } => vec![*elem],
            WireType::Struct { fields, .. } => fields.iter().map(|f| f.id).collect(),
            WireType::Map { key, elem, .. } => vec![*key, *elem],
            WireType::Encoder { .. } => vec![],
        }
    }
}

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
    fn is_omitted_zero(&self) -> bool {
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

fn type_name(id: TypeId) -> String {
    match id {
        ids::BOOL => "bool".into(),
        ids::INT => "int".into(),
        ids::UINT => "uint".into(),
        ids::FLOAT => "float".into(),
        ids::BYTES => "[]byte".into(),
        ids::STRING => "string".into(),
        ids::COMPLEX => "complex".into(),
        ids::INTERFACE => "interface".into(),
        other => format!("type {other}"),
    }
}

/// Why a gob stream cannot be decoded. Every variant ends the RPC stream it occurred on
/// (`spec/05-rpc.md`); none is a connection error of the multiplexer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GobError {
    /// A message's length is above the receiver's limit.
    #[error("GOB-15: a message of {len} bytes is above this receiver's limit of {max} bytes")]
    MessageTooLarge {
        /// The declared length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A message of length zero.
    #[error("GOB-4: a message of length 0")]
    EmptyMessage,
    /// A uint whose count byte announces more than eight bytes.
    #[error("GOB-2: a uint whose first byte {count:#04x} announces more than 8 bytes")]
    BadUint {
        /// The count byte.
        count: u8,
    },
    /// A value runs past the end of its message.
    #[error("GOB-20: {what} runs past the end of the message")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// The input ended inside a message.
    #[error("GOB-4: the stream ended inside a message ({have} of {len} bytes received)")]
    TruncatedMessage {
        /// Bytes of the message received.
        have: usize,
        /// Its declared length (0 when the length itself was cut).
        len: usize,
    },
    /// A definition of an id below 64 or of an id already defined on this stream.
    #[error("GOB-6: duplicate type received: id {id} is reserved or already defined")]
    DuplicateType {
        /// The id.
        id: TypeId,
    },
    /// A definition that is not a well-formed `wireType`.
    #[error("GOB-10: bad type definition of id {id}: {reason}")]
    BadDefinition {
        /// The id being defined.
        id: TypeId,
        /// What is wrong.
        reason: String,
    },
    /// A value of, or a field of, an id that was never defined.
    #[error("GOB-9: type id {id} is not defined on this stream")]
    UndefinedType {
        /// The id.
        id: TypeId,
    },
    /// A struct field number past the last field.
    #[error(
        "GOB-11: field number {field} of struct {name:?} is past its last field ({count} fields)"
    )]
    BadField {
        /// The struct's name.
        name: String,
        /// The field number reached.
        field: u64,
        /// The number of fields.
        count: usize,
    },
    /// A non-struct value whose leading delta is not 0.
    #[error("GOB-13: a non-struct value must start with 00, found delta {delta}")]
    BadSingleton {
        /// The delta found.
        delta: u64,
    },
    /// An array value whose count differs from its type's length.
    #[error("GOB-21: an array of length {want} received {got} elements")]
    ArrayLength {
        /// The count sent.
        got: u64,
        /// The type's length.
        want: i64,
    },
    /// Values or types nested deeper than the limit.
    #[error("GOB-17: values nested more than {max} levels deep")]
    TooDeep {
        /// The limit.
        max: usize,
    },
    /// A type outside the subset (interface values).
    #[error("GOB-9: {what} is outside the protocol's gob subset")]
    Unsupported {
        /// What was found.
        what: String,
    },
    /// Bytes left in a message after its value.
    #[error("GOB-5: {extra} byte(s) left in a message after its definition or value")]
    ExtraData {
        /// How many.
        extra: usize,
    },
}

impl GobError {
    /// A stable, machine-readable name for the error, as used by `spec/vectors/`.
    pub fn kind(&self) -> &'static str {
        match self {
            GobError::MessageTooLarge { .. } => "message_too_large",
            GobError::EmptyMessage => "empty_message",
            GobError::BadUint { .. } => "uint_overflow",
            GobError::Truncated { .. } => "past_end",
            GobError::TruncatedMessage { .. } => "truncated",
            GobError::DuplicateType { .. } => "duplicate_type",
            GobError::BadDefinition { .. } => "bad_definition",
            GobError::UndefinedType { .. } => "undefined_type",
            GobError::BadField { .. } => "field_out_of_range",
            GobError::BadSingleton { .. } => "nonzero_singleton",
            GobError::ArrayLength { .. } => "array_length_mismatch",
            GobError::TooDeep { .. } => "too_deep",
            GobError::Unsupported { .. } => "unsupported_type",
            GobError::ExtraData { .. } => "trailing_bytes",
        }
    }

    /// The id of the requirement this error enforces (`spec/05-rpc.md`, Table 5-7).
    pub fn requirement(&self) -> &'static str {
        match self {
            GobError::MessageTooLarge { .. } => "GOB-15",
            GobError::EmptyMessage | GobError::TruncatedMessage { .. } => "GOB-4",
            GobError::BadUint { .. } => "GOB-2",
            GobError::Truncated { .. } => "GOB-20",
            GobError::ArrayLength { .. } => "GOB-21",
            GobError::DuplicateType { .. } => "GOB-6",
            GobError::BadDefinition { .. } => "GOB-10",
            GobError::UndefinedType { .. } | GobError::Unsupported { .. } => "GOB-9",
            GobError::BadField { .. } => "GOB-11",
            GobError::BadSingleton { .. } => "GOB-13",
            GobError::TooDeep { .. } => "GOB-17",
            GobError::ExtraData { .. } => "GOB-5",
        }
    }
}

/// Why a value cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum GobEncodeError {
    /// The type id is not built in and not registered with the encoder.
    #[error("gob encode: type id {0} is not registered")]
    UnknownType(TypeId),
    /// The value does not fit the type.
    #[error("gob encode: a {value} value does not fit {ty}")]
    Mismatch {
        /// The value's kind.
        value: &'static str,
        /// The type.
        ty: String,
    },
    /// A struct value names a field its type does not have.
    #[error("gob encode: struct {ty:?} has no field {field:?}")]
    NoSuchField {
        /// The struct type.
        ty: String,
        /// The field.
        field: String,
    },
    /// Interface values are outside the subset.
    #[error("gob encode: interface values are outside the protocol's gob subset")]
    Unsupported,
    /// Nesting deeper than the limit.
    #[error("gob encode: values nested more than {0} levels deep")]
    TooDeep(usize),
    /// The message would be longer than every receiver has to accept.
    #[error("gob encode: a message of {len} bytes is longer than the {max} bytes every receiver accepts", max = MIN_MAX_MESSAGE)]
    MessageTooLong {
        /// The message's length.
        len: usize,
    },
}

/// A cursor over one message's bytes.
struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
    /// Uints read in a longer form than the minimal one (accepted, GOB-2; counted, GOB-1).
    non_minimal: usize,
}

/// The length of the minimal gob encoding of `u` (GOB-1).
fn minimal_uint_len(u: u64) -> usize {
    if u < 0x80 {
        1
    } else {
        1 + (8 - u.leading_zeros() as usize / 8)
    }
}

impl<'a> Cursor<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.at
    }

    fn uint(&mut self, what: &'static str) -> Result<u64, GobError> {
        match read_uint(&self.buf[self.at..]) {
            Ok((u, n)) => {
                self.at += n;
                if n != minimal_uint_len(u) {
                    self.non_minimal += 1;
                }
                Ok(u)
            }
            Err(UintError::Incomplete) => Err(GobError::Truncated { what }),
            Err(UintError::BadCount(count)) => Err(GobError::BadUint { count }),
        }
    }

    fn int(&mut self, what: &'static str) -> Result<i64, GobError> {
        self.uint(what).map(uint_to_int)
    }

    fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], GobError> {
        let n = self.uint(what)?;
        if n > self.remaining() as u64 {
            return Err(GobError::Truncated { what });
        }
        let s = &self.buf[self.at..self.at + n as usize];
        self.at += n as usize;
        Ok(s)
    }

    fn float(&mut self, what: &'static str) -> Result<f64, GobError> {
        Ok(f64::from_bits(self.uint(what)?.swap_bytes()))
    }

    /// A count of elements that each take at least one byte.
    fn count(&mut self, what: &'static str) -> Result<u64, GobError> {
        let n = self.uint(what)?;
        if n > self.remaining() as u64 {
            return Err(GobError::Truncated { what });
        }
        Ok(n)
    }
}

/// What a decoded message was.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A type definition, now in the decoder's table.
    Definition {
        /// The id defined.
        id: TypeId,
        /// The type.
        ty: WireType,
    },
    /// A value.
    Value {
        /// Its type id.
        id: TypeId,
        /// The value.
        value: Value,
    },
}

/// Decoding limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The longest message accepted; default [`DEFAULT_MAX_MESSAGE`].
    pub max_message: usize,
    /// The deepest nesting of values accepted; default [`DEFAULT_MAX_DEPTH`].
    pub max_depth: usize,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_message: DEFAULT_MAX_MESSAGE,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

impl DecodeLimits {
    /// The smallest limits the spec allows: messages of [`MIN_MAX_MESSAGE`] bytes (GOB-15) and
    /// values nested [`MIN_MAX_DEPTH`] deep (GOB-17). A receiver with these limits accepts
    /// everything a conforming sender sends, and nothing more.
    pub const fn minimum() -> DecodeLimits {
        DecodeLimits {
            max_message: MIN_MAX_MESSAGE,
            max_depth: MIN_MAX_DEPTH,
        }
    }

    /// Checks the limits against the spec's bounds: a message limit from [`MIN_MAX_MESSAGE`]
    /// to [`MAX_MESSAGE_CEILING`] (GOB-15, GOB-19) and a depth limit of at least
    /// [`MIN_MAX_DEPTH`] (GOB-17).
    pub fn validate(&self) -> Result<(), DecodeLimitsError> {
        if !(MIN_MAX_MESSAGE..=MAX_MESSAGE_CEILING).contains(&self.max_message) {
            return Err(DecodeLimitsError::MaxMessage {
                requested: self.max_message,
            });
        }
        if self.max_depth < MIN_MAX_DEPTH {
            return Err(DecodeLimitsError::MaxDepth {
                requested: self.max_depth,
            });
        }
        Ok(())
    }
}

/// Decoding limits outside the spec's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeLimitsError {
    /// The message limit is below GOB_MIN_MAX_MESSAGE or above GOB_MAX_MESSAGE_CEILING.
    #[error(
        "GOB-15, GOB-19: a gob message limit must lie between {min} and {max} bytes; {requested} was requested",
        min = MIN_MAX_MESSAGE,
        max = MAX_MESSAGE_CEILING
    )]
    MaxMessage {
        /// The limit asked for.
        requested: usize,
    },
    /// The depth limit is below GOB_MIN_MAX_DEPTH.
    #[error("GOB-17: a gob depth limit must be at least {min}; {requested} was requested", min = MIN_MAX_DEPTH)]
    MaxDepth {
        /// The limit asked for.
        requested: usize,
    },
}

/// An incremental gob decoder for one direction of one stream.
#[derive(Debug, Default)]
pub struct Decoder {
    limits: DecodeLimits,
    types: HashMap<TypeId, WireType>,
    buf: Vec<u8>,
    start: usize,
    failed: Option<GobError>,
    non_minimal: u64,
}

impl Decoder {
    /// How many uints (message lengths included) this decoder has read in a longer form than
    /// the minimal one: receivers accept them (GOB-2), senders never write them (GOB-1).
    pub fn non_minimal_uints(&self) -> u64 {
        self.non_minimal
    }

    /// A decoder with the default limits.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder with `limits`.
    pub fn with_limits(limits: DecodeLimits) -> Decoder {
        Decoder {
            limits,
            ..Decoder::default()
        }
    }

    /// The types defined so far on this stream.
    pub fn types(&self) -> &HashMap<TypeId, WireType> {
        &self.types
    }

    /// Bytes received but not yet decoded.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.failed.is_some() {
            return;
        }
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= 4096 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    fn fail(&mut self, e: GobError) -> GobError {
        self.failed = Some(e.clone());
        self.buf = Vec::new();
        self.start = 0;
        e
    }

    /// The next whole message, or `Ok(None)` when more bytes are needed. Definitions are
    /// returned too (and recorded); see [`Decoder::next_value`] to skip them.
    pub fn next_message(&mut self) -> Result<Option<Message>, GobError> {
        match self.parse_next(None)? {
            None => Ok(None),
            Some(Parsed::Message(m)) => self.record(m),
            Some(Parsed::Visited(_)) => unreachable!("no visitor was given"),
        }
    }

    /// Takes the next whole message out of the buffer and parses it, handing a struct value's
    /// fields to `visit` if given; `Ok(None)` when more bytes are needed.
    fn parse_next(
        &mut self,
        visit: Option<&mut FieldVisitor<'_>>,
    ) -> Result<Option<Parsed>, GobError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        let (len, n) = match read_uint(pending) {
            Ok(v) => v,
            Err(UintError::Incomplete) => return Ok(None),
            Err(UintError::BadCount(count)) => return Err(self.fail(GobError::BadUint { count })),
        };
        if len > self.limits.max_message as u64 {
            return Err(self.fail(GobError::MessageTooLarge {
                len,
                max: self.limits.max_message,
            }));
        }
        if len == 0 {
            return Err(self.fail(GobError::EmptyMessage));
        }
        let len = len as usize;
        if pending.len() < n + len {
            return Ok(None);
        }
        // Counted once, when the message is taken: not at every call that waits for its body.
        if n != minimal_uint_len(len as u64) {
            self.non_minimal += 1;
        }
        let body_start = self.start + n;
        self.start = body_start + len;
        let result = {
            let body = &self.buf[body_start..body_start + len];
            parse_message(body, &self.types, &self.limits, visit)
        };
        match result {
            Ok((parsed, non_minimal)) => {
                self.non_minimal += non_minimal as u64;
                Ok(Some(parsed))
            }
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Takes a definition into the table.
    fn record(&mut self, m: Message) -> Result<Option<Message>, GobError> {
        if let Message::Definition { id, ty } = &m {
            self.types.insert(*id, ty.clone());
        }
        Ok(Some(m))
    }

    /// The next value, taking the definitions before it into the table; `Ok(None)` when more
    /// bytes are needed.
    pub fn next_value(&mut self) -> Result<Option<(TypeId, Value)>, GobError> {
        loop {
            match self.next_message()? {
                Some(Message::Definition { .. }) => continue,
                Some(Message::Value { id, value }) => return Ok(Some((id, value))),
                None => return Ok(None),
            }
        }
    }

    /// The next value, as [`Decoder::next_value`] reads it, except that the fields of a struct
    /// value are handed to `visit` (with their names, in wire order) instead of being
    /// collected into a [`Value`]: strings and uints borrowed, the rest decoded. Returns
    /// [`Visited::Fields`] then, and any other value whole. On error, the fields visited so far
    /// are to be dropped. The same bytes give the same values and the same errors as
    /// [`Decoder::next_value`]; only the allocations differ (a `net/rpc` header is read this
    /// way).
    pub fn next_visiting(
        &mut self,
        visit: &mut dyn FnMut(&str, FieldRef<'_>),
    ) -> Result<Option<(TypeId, Visited)>, GobError> {
        loop {
            match self.parse_next(Some(&mut *visit))? {
                None => return Ok(None),
                Some(Parsed::Visited(id)) => return Ok(Some((id, Visited::Fields))),
                Some(Parsed::Message(Message::Value { id, value })) => {
                    return Ok(Some((id, Visited::Value(value))))
                }
                Some(Parsed::Message(definition)) => {
                    self.record(definition)?;
                }
            }
        }
    }

    /// Reports the end of the stream: an error if it falls inside a message.
    pub fn finish(&mut self) -> Result<(), GobError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        if pending.is_empty() {
            return Ok(());
        }
        let e = match read_uint(pending) {
            Ok((len, n)) => GobError::TruncatedMessage {
                have: pending.len() - n,
                len: len as usize,
            },
            Err(_) => GobError::TruncatedMessage { have: 0, len: 0 },
        };
        Err(self.fail(e))
    }
}

/// What receives a struct value's fields in [`Decoder::next_visiting`].
type FieldVisitor<'v> = dyn FnMut(&str, FieldRef<'_>) + 'v;

/// What [`parse_message`] read.
enum Parsed {
    Message(Message),
    /// A struct value whose fields went to the visitor.
    Visited(TypeId),
}

/// A field of a struct value, as [`Decoder::next_visiting`] hands it over.
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

/// A value for [`Encoder::encode_parts`].
#[derive(Debug, Clone, PartialEq)]
pub enum Part<'a> {
    /// A value.
    Value(&'a Value),
    /// A struct value given as its fields, by name in any order: what [`Value::Struct`] with
    /// these fields would be, built without allocating (a `net/rpc` header is sent this way).
    Fields(&'a [(&'a str, FieldRef<'a>)]),
}

/// What [`Decoder::next_visiting`] read.
#[derive(Debug, Clone, PartialEq)]
pub enum Visited {
    /// A struct value, whose fields went to the visitor.
    Fields,
    /// Any other value.
    Value(Value),
}

fn parse_message(
    body: &[u8],
    types: &HashMap<TypeId, WireType>,
    limits: &DecodeLimits,
    visit: Option<&mut FieldVisitor<'_>>,
) -> Result<(Parsed, usize), GobError> {
    let mut c = Cursor {
        buf: body,
        at: 0,
        non_minimal: 0,
    };
    let id = c.int("the type id")?;
    let parsed = if id < 0 {
        let id = id.checked_neg().ok_or(GobError::DuplicateType { id })?;
        if id < ids::FIRST_USER || types.contains_key(&id) {
            return Err(GobError::DuplicateType { id });
        }
        Parsed::Message(Message::Definition {
            id,
            ty: parse_wire_type(&mut c, id)?,
        })
    } else {
        let ty = types.get(&id);
        if (id == 0 || id > ids::INTERFACE) && ty.is_none() {
            return Err(GobError::UndefinedType { id });
        }
        match (ty, visit) {
            // A visited struct's fields sit at depth 1, as in decode_value.
            (Some(WireType::Struct { name, fields }), Some(visit)) if limits.max_depth > 1 => {
                read_fields(&mut c, fields.len(), name, |c, f| {
                    let field = &fields[f];
                    let value = match field.id {
                        ids::STRING => FieldRef::String(c.bytes("a string")?),
                        ids::UINT => FieldRef::Uint(c.uint("a uint")?),
                        other => FieldRef::Other(decode_value(c, other, types, limits, 1)?),
                    };
                    visit(&field.name, value);
                    Ok(())
                })?;
                Parsed::Visited(id)
            }
            (Some(WireType::Struct { .. }), _) => {
                let value = decode_value(&mut c, id, types, limits, 0)?;
                Parsed::Message(Message::Value { id, value })
            }
            _ => {
                let delta = c.uint("the singleton delta")?;
                if delta != 0 {
                    return Err(GobError::BadSingleton { delta });
                }
                let value = decode_value(&mut c, id, types, limits, 0)?;
                Parsed::Message(Message::Value { id, value })
            }
        }
    };
    if c.remaining() > 0 {
        return Err(GobError::ExtraData {
            extra: c.remaining(),
        });
    }
    Ok((parsed, c.non_minimal))
}

/// Reads struct field deltas, calling `field` with each field number; stops at delta 0.
fn read_fields<'a>(
    c: &mut Cursor<'a>,
    count: usize,
    name: &str,
    mut field: impl FnMut(&mut Cursor<'a>, usize) -> Result<(), GobError>,
) -> Result<(), GobError> {
    let mut number: i64 = -1;
    loop {
        let delta = c.uint("a field delta")?;
        if delta == 0 {
            return Ok(());
        }
        let next = (number as i128) + i128::from(delta);
        if next >= count as i128 {
            return Err(GobError::BadField {
                name: name.to_string(),
                field: next.min(u64::MAX as i128) as u64,
                count,
            });
        }
        number = next as i64;
        field(c, number as usize)?;
    }
}

fn parse_common(
    c: &mut Cursor<'_>,
    name: &mut String,
    common_id: &mut i64,
) -> Result<(), GobError> {
    read_fields(c, 2, "CommonType", |c, f| {
        match f {
            0 => *name = String::from_utf8_lossy(c.bytes("a type name")?).into_owned(),
            _ => *common_id = c.int("a type id")?,
        }
        Ok(())
    })
}

fn parse_wire_type(c: &mut Cursor<'_>, id: TypeId) -> Result<WireType, GobError> {
    let bad = |reason: &str| GobError::BadDefinition {
        id,
        reason: reason.to_string(),
    };
    let mut found: Option<WireType> = None;
    let mut several = false;
    read_fields(c, 7, "wireType", |c, kind| {
        let mut name = String::new();
        let mut common_id = 0;
        let ty = match kind {
            // arrayType { CommonType, Elem, Len }
            0 => {
                let (mut elem, mut len) = (0, 0);
                read_fields(c, 3, "arrayType", |c, f| {
                    match f {
                        0 => parse_common(c, &mut name, &mut common_id)?,
                        1 => elem = c.int("an element type id")?,
                        _ => len = c.int("an array length")?,
                    }
                    Ok(())
                })?;
                WireType::Array { name, elem, len }
            }
            // sliceType { CommonType, Elem }
            1 => {
                let mut elem = 0;
                read_fields(c, 2, "sliceType", |c, f| {
                    match f {
                        0 => parse_common(c, &mut name, &mut common_id)?,
                        _ => elem = c.int("an element type id")?,
                    }
                    Ok(())
                })?;
                WireType::Slice { name, elem }
            }
            // structType { CommonType, Field []fieldType }
            2 => {
                let mut fields = Vec::new();
                read_fields(c, 2, "structType", |c, f| {
                    match f {
                        0 => parse_common(c, &mut name, &mut common_id)?,
                        _ => {
                            let n = c.count("the field count")?;
                            for _ in 0..n {
                                let mut fd = FieldDef::new("", 0);
                                read_fields(c, 2, "fieldType", |c, f| {
                                    match f {
                                        0 => {
                                            fd.name =
                                                String::from_utf8_lossy(c.bytes("a field name")?)
                                                    .into_owned()
                                        }
                                        _ => fd.id = c.int("a field type id")?,
                                    }
                                    Ok(())
                                })?;
                                fields.push(fd);
                            }
                        }
                    }
                    Ok(())
                })?;
                WireType::Struct { name, fields }
            }
            // mapType { CommonType, Key, Elem }
            3 => {
                let (mut key, mut elem) = (0, 0);
                read_fields(c, 3, "mapType", |c, f| {
                    match f {
                        0 => parse_common(c, &mut name, &mut common_id)?,
                        1 => key = c.int("a key type id")?,
                        _ => elem = c.int("an element type id")?,
                    }
                    Ok(())
                })?;
                WireType::Map { name, key, elem }
            }
            // gobEncoderType { CommonType }
            k => {
                read_fields(c, 1, "gobEncoderType", |c, _| {
                    parse_common(c, &mut name, &mut common_id)
                })?;
                let kind = match k {
                    4 => EncoderKind::Gob,
                    5 => EncoderKind::Binary,
                    _ => EncoderKind::Text,
                };
                WireType::Encoder { name, kind }
            }
        };
        several |= found.is_some();
        found = Some(ty);
        Ok(())
    })?;
    if several {
        return Err(bad("more than one kind is set"));
    }
    let ty = found.ok_or_else(|| bad("no kind is set"))?;
    match &ty {
        WireType::Struct { fields, .. } => {
            let mut seen = HashSet::new();
            for f in fields {
                if f.name.is_empty() {
                    return Err(bad("a field has no name"));
                }
                if !seen.insert(f.name.as_str()) {
                    return Err(bad(&format!("the field name {:?} is repeated", f.name)));
                }
            }
        }
        WireType::Array { len, .. } if *len < 0 => {
            return Err(bad(&format!("the array length {len} is negative")));
        }
        _ => {}
    }
    for component in ty.components() {
        if component <= 0 {
            return Err(bad(&format!("it refers to type id {component}")));
        }
    }
    Ok(ty)
}

fn decode_value(
    c: &mut Cursor<'_>,
    id: TypeId,
    types: &HashMap<TypeId, WireType>,
    limits: &DecodeLimits,
    depth: usize,
) -> Result<Value, GobError> {
    // `depth` composite values enclose this one. Only composite values count (GOB-17): a
    // composite one is at level `depth + 1`, at most `max_depth`; a basic value inside the
    // deepest composite one is fine.
    let too_deep = || GobError::TooDeep {
        max: limits.max_depth,
    };
    Ok(match id {
        ids::BOOL => Value::Bool(c.uint("a bool")? != 0),
        ids::INT => Value::Int(c.int("an int")?),
        ids::UINT => Value::Uint(c.uint("a uint")?),
        ids::FLOAT => Value::Float(c.float("a float")?),
        ids::BYTES => Value::Bytes(c.bytes("a []byte")?.to_vec()),
        ids::STRING => Value::String(c.bytes("a string")?.to_vec()),
        ids::COMPLEX => Value::Complex(c.float("a complex")?, c.float("a complex")?),
        ids::INTERFACE => {
            return Err(GobError::Unsupported {
                what: "an interface value".into(),
            })
        }
        _ => match types.get(&id) {
            None => return Err(GobError::UndefinedType { id }),
            Some(WireType::Encoder { .. }) => Value::Opaque(c.bytes("an encoded value")?.to_vec()),
            Some(_) if depth >= limits.max_depth => return Err(too_deep()),
            Some(WireType::Struct { name, fields }) => {
                let mut out = Vec::new();
                read_fields(c, fields.len(), name, |c, f| {
                    let value = decode_value(c, fields[f].id, types, limits, depth + 1)?;
                    out.push(Field {
                        name: fields[f].name.clone(),
                        value,
                    });
                    Ok(())
                })?;
                Value::Struct {
                    name: name.clone(),
                    fields: out,
                }
            }
            Some(WireType::Slice { elem, .. }) => {
                let n = c.count("a slice length")?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(decode_value(c, *elem, types, limits, depth + 1)?);
                }
                Value::Slice(items)
            }
            Some(WireType::Array { elem, len, .. }) => {
                let n = c.count("an array length")?;
                if n as i128 != i128::from(*len) {
                    return Err(GobError::ArrayLength { got: n, want: *len });
                }
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    items.push(decode_value(c, *elem, types, limits, depth + 1)?);
                }
                Value::Array(items)
            }
            Some(WireType::Map { key, elem, .. }) => {
                let n = c.count("a map length")?;
                let mut items = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    let k = decode_value(c, *key, types, limits, depth + 1)?;
                    let v = decode_value(c, *elem, types, limits, depth + 1)?;
                    items.push((k, v));
                }
                Value::Map(items)
            }
        },
    })
}

/// The ids of the types Go's `net/rpc` defines first in a process that has both a client and a
/// server (the order of the vectors in `spec/vectors/rpc-*.json`): `Request` 65, `Response` 66,
/// `struct{}` 67.
pub mod rpc_ids {
    use super::TypeId;
    /// `net/rpc.Request`.
    pub const REQUEST: TypeId = 65;
    /// `net/rpc.Response`.
    pub const RESPONSE: TypeId = 66;
    /// `struct{}`.
    pub const EMPTY_STRUCT: TypeId = 67;
}

/// The user types an [`Encoder`] can send, by id.
#[derive(Debug, Clone)]
pub struct TypeRegistry {
    /// The types by id, from [`TypeRegistry::FIRST`] on (ids are allocated in order).
    types: Vec<WireType>,
}

impl Default for TypeRegistry {
    fn default() -> Self {
        TypeRegistry::new()
    }
}

impl TypeRegistry {
    /// The first id allocated, as in Go.
    const FIRST: TypeId = ids::FIRST_USER + 1;

    /// An empty registry whose first allocated id is 65, as in Go.
    pub fn new() -> TypeRegistry {
        TypeRegistry { types: Vec::new() }
    }

    /// The registry of a Go process that uses `net/rpc`: `Request`, `Response` and `struct{}`
    /// with the ids of [`rpc_ids`].
    pub fn net_rpc() -> TypeRegistry {
        let mut r = TypeRegistry::new();
        r.register(WireType::structure(
            "Request",
            &[("ServiceMethod", ids::STRING), ("Seq", ids::UINT)],
        ));
        r.register(WireType::structure(
            "Response",
            &[
                ("ServiceMethod", ids::STRING),
                ("Seq", ids::UINT),
                ("Error", ids::STRING),
            ],
        ));
        r.register(WireType::structure("", &[]));
        r
    }

    /// Registers `ty` under the next free id (or returns the id it already has).
    pub fn register(&mut self, ty: WireType) -> TypeId {
        let index = match self.types.iter().position(|t| *t == ty) {
            Some(index) => index,
            None => {
                self.types.push(ty);
                self.types.len() - 1
            }
        };
        TypeRegistry::FIRST + index as TypeId
    }

    /// Where the type of `id` is, if `id` is one this registry allocates.
    fn index(id: TypeId) -> Option<usize> {
        usize::try_from(id.checked_sub(TypeRegistry::FIRST)?).ok()
    }

    /// The type registered under `id`.
    pub fn get(&self, id: TypeId) -> Option<&WireType> {
        self.types.get(TypeRegistry::index(id)?)
    }
}

/// A gob encoder for one direction of one stream: sends each user type's definition once,
/// before its first use, in Go's order (the type, then its components).
#[derive(Debug, Clone)]
pub struct Encoder {
    registry: TypeRegistry,
    /// Whether each registered type's definition was sent, by [`TypeRegistry::index`].
    sent: Vec<bool>,
    /// The ids marked sent since the current [`Encoder::encode_all`] began, to unmark on error.
    newly_sent: Vec<TypeId>,
    scratch: Vec<u8>,
}

impl Encoder {
    /// An encoder over `registry`.
    pub fn new(registry: TypeRegistry) -> Encoder {
        Encoder {
            registry,
            sent: Vec::new(),
            newly_sent: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// The types this encoder can send.
    pub fn registry(&self) -> &TypeRegistry {
        &self.registry
    }

    /// Appends to `out` the definitions not yet sent that `id` needs, then the message holding
    /// `value` as a value of type `id`. On error nothing is appended and nothing is marked sent.
    pub fn encode(
        &mut self,
        id: TypeId,
        value: &Value,
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        self.encode_part(id, &Part::Value(value), out)
    }

    fn encode_part(
        &mut self,
        id: TypeId,
        part: &Part<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        put_int(id, &mut body);
        let is_struct = matches!(self.registry.get(id), Some(WireType::Struct { .. }));
        if !is_struct {
            body.push(0);
        }
        let encoded = match part {
            Part::Value(value) => self.encode_value(id, value, &mut body, 0),
            Part::Fields(fields) => self.encode_fields(id, fields, &mut body),
        };
        let result = match encoded {
            Ok(()) if body.len() > MIN_MAX_MESSAGE => {
                Err(GobEncodeError::MessageTooLong { len: body.len() })
            }
            other => other,
        };
        if let Err(e) = result {
            self.scratch = body;
            return Err(e);
        }
        let mut defs = Vec::new();
        self.define(id, &mut defs);
        out.extend_from_slice(&defs);
        put_uint(body.len() as u64, out);
        out.extend_from_slice(&body);
        self.scratch = body;
        Ok(())
    }

    /// Appends the messages for `values`, in order, as [`Encoder::encode`] does for each, or
    /// nothing: on error `out` is left as it was and no definition counts as sent, so the
    /// next message carries the definitions it needs (a `net/rpc` header and its body are
    /// sent together or not at all).
    pub fn encode_all(
        &mut self,
        values: &[(TypeId, &Value)],
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        self.encode_each(values.iter().map(|(id, v)| (*id, Part::Value(v))), out)
    }

    /// [`Encoder::encode_all`] for values given as [`Part`]s: the same bytes, or the same
    /// error, as for the values they stand for.
    pub fn encode_parts(
        &mut self,
        parts: &[(TypeId, Part<'_>)],
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        self.encode_each(parts.iter().cloned(), out)
    }

    fn encode_each<'p>(
        &mut self,
        parts: impl Iterator<Item = (TypeId, Part<'p>)>,
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        let start = out.len();
        self.newly_sent.clear();
        for (id, part) in parts {
            if let Err(e) = self.encode_part(id, &part, out) {
                return Err(self.undo(start, out, e));
            }
        }
        self.newly_sent.clear();
        Ok(())
    }

    /// Takes back what a failed `encode_all` appended and marked sent.
    fn undo(&mut self, start: usize, out: &mut Vec<u8>, e: GobEncodeError) -> GobEncodeError {
        for id in std::mem::take(&mut self.newly_sent) {
            self.mark_sent(id, false);
        }
        out.truncate(start);
        e
    }

    /// Encodes a struct value given as named fields: straight from the borrowed strings and
    /// uints when each has its field's type, else through the [`Value`] they stand for.
    fn encode_fields(
        &self,
        id: TypeId,
        given: &[(&str, FieldRef<'_>)],
        out: &mut Vec<u8>,
    ) -> Result<(), GobEncodeError> {
        let start = out.len();
        if let Some(WireType::Struct { name, fields }) = self.registry.get(id) {
            for (g, _) in given {
                if !fields.iter().any(|f| f.name == *g) {
                    return Err(GobEncodeError::NoSuchField {
                        ty: name.clone(),
                        field: g.to_string(),
                    });
                }
            }
            let mut last: i64 = -1;
            let mut plain = true;
            for (i, f) in fields.iter().enumerate() {
                let Some((_, g)) = given.iter().find(|(n, _)| *n == f.name) else {
                    continue;
                };
                // Zero values are omitted (GOB-12).
                match (f.id, g) {
                    (ids::STRING, FieldRef::String([])) => {}
                    (ids::UINT, FieldRef::Uint(0)) => {}
                    (ids::STRING, FieldRef::String(b)) => {
                        put_uint((i as i64 - last) as u64, out);
                        last = i as i64;
                        put_uint(b.len() as u64, out);
                        out.extend_from_slice(b);
                    }
                    (ids::UINT, FieldRef::Uint(u)) => {
                        put_uint((i as i64 - last) as u64, out);
                        last = i as i64;
                        put_uint(*u, out);
                    }
                    _ => {
                        plain = false;
                        break;
                    }
                }
            }
            if plain {
                out.push(0);
                return Ok(());
            }
            out.truncate(start);
        }
        let value = Value::Struct {
            name: String::new(),
            fields: given
                .iter()
                .map(|(name, value)| Field {
                    name: name.to_string(),
                    value: match value {
                        FieldRef::String(b) => Value::String(b.to_vec()),
                        FieldRef::Uint(u) => Value::Uint(*u),
                        FieldRef::Other(v) => v.clone(),
                    },
                })
                .collect(),
        };
        self.encode_value(id, &value, out, 0)
    }

    fn was_sent(&self, id: TypeId) -> bool {
        TypeRegistry::index(id).is_some_and(|i| self.sent.get(i).copied().unwrap_or(false))
    }

    fn mark_sent(&mut self, id: TypeId, sent: bool) {
        if let Some(i) = TypeRegistry::index(id) {
            if self.sent.len() <= i {
                self.sent.resize(i + 1, false);
            }
            self.sent[i] = sent;
        }
    }

    fn define(&mut self, id: TypeId, out: &mut Vec<u8>) {
        if id < ids::FIRST_USER || self.was_sent(id) {
            return;
        }
        let Some(ty) = self.registry.get(id).cloned() else {
            return;
        };
        self.mark_sent(id, true);
        self.newly_sent.push(id);
        let mut body = Vec::new();
        put_int(-id, &mut body);
        encode_wire_type(&ty, id, &mut body);
        put_uint(body.len() as u64, out);
        out.extend_from_slice(&body);
        for component in ty.components() {
            self.define(component, out);
        }
    }

    fn encode_value(
        &self,
        id: TypeId,
        value: &Value,
        out: &mut Vec<u8>,
        depth: usize,
    ) -> Result<(), GobEncodeError> {
        if depth > DEFAULT_MAX_DEPTH {
            return Err(GobEncodeError::TooDeep(DEFAULT_MAX_DEPTH));
        }
        let mismatch = || GobEncodeError::Mismatch {
            value: value.kind(),
            ty: self
                .registry
                .get(id)
                .map_or_else(|| type_name(id), |t| format!("{:?}", t.name())),
        };
        match (id, value) {
            (ids::BOOL, Value::Bool(b)) => put_uint(u64::from(*b), out),
            (ids::INT, Value::Int(i)) => put_int(*i, out),
            (ids::UINT, Value::Uint(u)) => put_uint(*u, out),
            (ids::FLOAT, Value::Float(f)) => put_uint(f.to_bits().swap_bytes(), out),
            (ids::COMPLEX, Value::Complex(r, i)) => {
                put_uint(r.to_bits().swap_bytes(), out);
                put_uint(i.to_bits().swap_bytes(), out);
            }
            (ids::BYTES, Value::Bytes(b)) | (ids::STRING, Value::String(b)) => {
                put_uint(b.len() as u64, out);
                out.extend_from_slice(b);
            }
            (ids::INTERFACE, _) => return Err(GobEncodeError::Unsupported),
            (1..=8, _) => return Err(mismatch()),
            _ => match (self.registry.get(id), value) {
                (None, _) => return Err(GobEncodeError::UnknownType(id)),
                (Some(WireType::Struct { name, fields }), Value::Struct { fields: given, .. }) => {
                    for g in given {
                        if !fields.iter().any(|f| f.name == g.name) {
                            return Err(GobEncodeError::NoSuchField {
                                ty: name.clone(),
                                field: g.name.clone(),
                            });
                        }
                    }
                    let mut last: i64 = -1;
                    for (i, f) in fields.iter().enumerate() {
                        let Some(g) = given.iter().find(|g| g.name == f.name) else {
                            continue;
                        };
                        if g.value.is_omitted_zero() {
                            // Still check that the zero value fits its type.
                            self.encode_value(f.id, &g.value, &mut Vec::new(), depth + 1)?;
                            continue;
                        }
                        put_uint((i as i64 - last) as u64, out);
                        last = i as i64;
                        self.encode_value(f.id, &g.value, out, depth + 1)?;
                    }
                    out.push(0);
                }
                (Some(WireType::Slice { elem, .. }), Value::Slice(items))
                | (Some(WireType::Array { elem, .. }), Value::Array(items)) => {
                    if let Some(WireType::Array { len, .. }) = self.registry.get(id) {
                        if items.len() as i64 != *len {
                            return Err(mismatch());
                        }
                    }
                    put_uint(items.len() as u64, out);
                    for item in items {
                        self.encode_value(*elem, item, out, depth + 1)?;
                    }
                }
                (Some(WireType::Map { key, elem, .. }), Value::Map(items)) => {
                    put_uint(items.len() as u64, out);
                    for (k, v) in items {
                        self.encode_value(*key, k, out, depth + 1)?;
                        self.encode_value(*elem, v, out, depth + 1)?;
                    }
                }
                (Some(WireType::Encoder { .. }), Value::Opaque(b)) => {
                    put_uint(b.len() as u64, out);
                    out.extend_from_slice(b);
                }
                _ => return Err(mismatch()),
            },
        }
        Ok(())
    }
}

/// Writes a struct field: its delta from `last`, then the bytes `write` appends.
fn field(out: &mut Vec<u8>, last: &mut i64, number: i64, write: impl FnOnce(&mut Vec<u8>)) {
    put_uint((number - *last) as u64, out);
    *last = number;
    write(out);
}

fn encode_common(name: &str, id: TypeId, out: &mut Vec<u8>) {
    let mut last = -1;
    if !name.is_empty() {
        field(out, &mut last, 0, |o| {
            put_uint(name.len() as u64, o);
            o.extend_from_slice(name.as_bytes());
        });
    }
    field(out, &mut last, 1, |o| put_int(id, o));
    out.push(0);
}

/// Encodes a `wireType` value exactly as Go does.
fn encode_wire_type(ty: &WireType, id: TypeId, out: &mut Vec<u8>) {
    let kind = match ty {
        WireType::Array { .. } => 0,
        WireType::Slice { .. } => 1,
        WireType::Struct { .. } => 2,
        WireType::Map { .. } => 3,
        WireType::Encoder {
            kind: EncoderKind::Gob,
            ..
        } => 4,
        WireType::Encoder {
            kind: EncoderKind::Binary,
            ..
        } => 5,
        WireType::Encoder {
            kind: EncoderKind::Text,
            ..
        } => 6,
    };
    let mut last = -1;
    field(out, &mut last, kind, |out| {
        let mut inner = -1;
        // Field 0 of every kind is the embedded CommonType, always sent.
        field(out, &mut inner, 0, |o| encode_common(ty.name(), id, o));
        match ty {
            WireType::Array { elem, len, .. } => {
                field(out, &mut inner, 1, |o| put_int(*elem, o));
                if *len != 0 {
                    field(out, &mut inner, 2, |o| put_int(*len, o));
                }
            }
            WireType::Slice { elem, .. } => field(out, &mut inner, 1, |o| put_int(*elem, o)),
            WireType::Struct { fields, .. } => {
                if !fields.is_empty() {
                    field(out, &mut inner, 1, |o| {
                        put_uint(fields.len() as u64, o);
                        for f in fields {
                            let mut fl = -1;
                            if !f.name.is_empty() {
                                field(o, &mut fl, 0, |o| {
                                    put_uint(f.name.len() as u64, o);
                                    o.extend_from_slice(f.name.as_bytes());
                                });
                            }
                            if f.id != 0 {
                                field(o, &mut fl, 1, |o| put_int(f.id, o));
                            }
                            o.push(0);
                        }
                    });
                }
            }
            WireType::Map { key, elem, .. } => {
                field(out, &mut inner, 1, |o| put_int(*key, o));
                field(out, &mut inner, 2, |o| put_int(*elem, o));
            }
            WireType::Encoder { .. } => {}
        }
        out.push(0);
    });
    out.push(0);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn uints_and_ints_match_go() {
        let mut out = Vec::new();
        put_uint(130, &mut out);
        put_int(65, &mut out);
        put_int(-65, &mut out);
        put_uint(256, &mut out);
        put_int(3, &mut out);
        assert_eq!(out, hex("ff82ff82ff81fe010006"));
        assert_eq!(
            read_uint(&hex("ff05")),
            Ok((5, 2)),
            "non-minimal forms are accepted"
        );
        assert_eq!(read_uint(&hex("f7")), Err(UintError::BadCount(0xf7)));
        assert_eq!(read_uint(&hex("fe01")), Err(UintError::Incomplete));
        assert_eq!(read_int(&hex("ff81")), Ok((-65, 2)));
    }

    #[test]
    fn the_first_go_hooks_write_decodes_and_re_encodes() {
        let bytes = hex("2fff81030101075265717565737401ff82000102010d536572766963654d6574686f64010c00010353657101060000001aff8201154c6f63616c486f6f6b732e4f6e41637469766174650003040006");
        let mut d = Decoder::new();
        d.push(&bytes);
        let (id, header) = d.next_value().unwrap().unwrap();
        assert_eq!(id, 65);
        assert_eq!(
            header.field("ServiceMethod"),
            Some(&Value::string("LocalHooks.OnActivate"))
        );
        assert_eq!(header.field("Seq"), None, "zero fields are not sent");
        assert_eq!(d.next_value().unwrap(), Some((ids::INT, Value::Int(3))));
        assert_eq!(d.next_value().unwrap(), None);
        d.finish().unwrap();

        let mut e = Encoder::new(TypeRegistry::net_rpc());
        let mut out = Vec::new();
        e.encode(65, &header, &mut out).unwrap();
        e.encode(ids::INT, &Value::Int(3), &mut out).unwrap();
        assert_eq!(out, bytes);
    }
}
