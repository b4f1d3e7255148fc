//! The gob encoder (`spec/05-rpc.md`, sections 5.2.4 to 5.2.8).
//!
//! [`Encoder`] writes one direction of one stream, giving the same bytes as Go for the same
//! values:
//!
//! - GOB-7, GOB-8: each registered type's definition is sent once, before its first use, in
//!   Go's order (the type, then its components); a failed [`Encoder::encode_all`] or
//!   [`Encoder::encode_parts`] takes back what it marked sent.
//! - GOB-1, GOB-5, GOB-13: each message is a minimal uint length, the type id, and the value,
//!   preceded by a 0 delta unless it is a struct.
//! - GOB-12, GOB-14: values are written by kind, struct fields with zero values omitted; a
//!   [`Part::Fields`] struct is written straight from its borrowed fields.
//! - GOB-16: a message longer than [`MIN_MAX_MESSAGE`] is refused
//!   ([`GobEncodeError::MessageTooLong`]).

use super::definition::encode_wire_type;
use super::error::GobEncodeError;
use super::limits::{DEFAULT_MAX_DEPTH, MIN_MAX_MESSAGE};
use super::types::{ids, type_name, TypeId, TypeRegistry, WireType};
use super::uint::{put_int, put_uint};
use super::value::{Field, FieldRef, Part, Value};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gob::Decoder;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
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
