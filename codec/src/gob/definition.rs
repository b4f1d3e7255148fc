//! Definition messages: the layout of a `wireType` value, written by the encoder and read by the
//! decoder (`spec/05-rpc.md`, section 5.2.7).
//!
//! - GOB-7: `encode_wire_type` writes a [`WireType`] exactly as Go does (the kind's field, the
//!   embedded CommonType with the name and id, then the kind's own fields, zero fields omitted).
//! - GOB-6: `parse_wire_type` reads one; the id it defines is the one its message starts with,
//!   whatever its CommonType says (the caller checks that the id is free).
//! - GOB-10: a `wireType` with none or several kinds set, a struct type with an empty or
//!   repeated field name, an array type with a negative length, or a component id that is not
//!   positive, is a bad definition ([`GobError::BadDefinition`]).
//! - GOB-11: every struct in the layout is read with the field-delta rules of `cursor.rs`.

use std::collections::HashSet;

use super::cursor::{read_fields, Cursor};
use super::error::GobError;
use super::types::{EncoderKind, FieldDef, TypeId, WireType};
use super::uint::{put_int, put_uint};

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
pub(super) fn encode_wire_type(ty: &WireType, id: TypeId, out: &mut Vec<u8>) {
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

pub(super) fn parse_wire_type(c: &mut Cursor<'_>, id: TypeId) -> Result<WireType, GobError> {
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
