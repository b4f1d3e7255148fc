//! The incremental gob decoder (`spec/05-rpc.md`, sections 5.2.4, 5.2.6, 5.2.8 and 5.2.11).
//!
//! [`Decoder`] is fed arbitrary chunks, tells "needs more bytes" (`Ok(None)`) from errors, never
//! panics, and once failed stays failed (a gob error ends the stream, GOB-18). It follows the
//! reading algorithm of section 5.2.11:
//!
//! - GOB-4: messages of a uint length and that many bytes; a length of 0, or the end of the
//!   stream inside a message ([`Decoder::finish`]), is an error.
//! - GOB-15: a length above the limit is reported as soon as it is read, before the body.
//! - GOB-5: a body is a type id then exactly one definition or value; bytes left are an error.
//! - GOB-6: a definition of an id below 64 or already defined is an error; the others fill the
//!   type table ([`Decoder::types`]).
//! - GOB-9, GOB-13, GOB-14, GOB-17, GOB-21: a value message's type must be defined and not an
//!   interface, a non-struct value starts with a 0 delta, values are decoded by kind, composite
//!   values nest at most as deep as the limit, an array count must match its type's length.
//!
//! [`Decoder::next_visiting`] is the path that builds no [`Value`] for a flat struct: its fields
//! go to a visitor as [`FieldRef`]s, with the same bytes, values and errors as
//! [`Decoder::next_value`]. [`Message`] and [`Visited`] are what the decoder returns.

use std::collections::HashMap;

use super::cursor::{read_fields, Cursor};
use super::definition::parse_wire_type;
use super::error::GobError;
use super::limits::DecodeLimits;
use super::types::{ids, TypeId, WireType};
use super::uint::{minimal_uint_len, read_uint, UintError};
use super::value::{Field, FieldRef, Value};

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

/// What [`Decoder::next_visiting`] read.
#[derive(Debug, Clone, PartialEq)]
pub enum Visited {
    /// A struct value, whose fields went to the visitor.
    Fields,
    /// Any other value.
    Value(Value),
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
