//! Type ids, the types that definitions describe, and the registry of the types a sender uses
//! (`spec/05-rpc.md`, sections 5.2.5 to 5.2.7).
//!
//! - GOB-9 and Table 5-3: the predefined ids ([`ids`]: 1 to 7, and 8 for interfaces, which are
//!   outside the subset); `type_name` names them in messages.
//! - GOB-6: ids of 64 and more ([`ids::FIRST_USER`]) are defined by definition messages; a
//!   [`WireType`] is what one definition says (its layout on the wire is in `definition.rs`).
//! - GOB-7, GOB-8: a [`TypeRegistry`] holds the user types an [`Encoder`](super::Encoder) can
//!   send and allocates their ids from 65 in registration order, as Go does;
//!   [`TypeRegistry::net_rpc`] registers `Request`, `Response` and `struct{}` as 65, 66 and 67.

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
    pub(super) fn components(&self) -> Vec<TypeId> {
        match self {
            WireType::Array { elem, .. } | WireType::Slice { elem, .. } => vec![*elem],
            WireType::Struct { fields, .. } => fields.iter().map(|f| f.id).collect(),
            WireType::Map { key, elem, .. } => vec![*key, *elem],
            WireType::Encoder { .. } => vec![],
        }
    }
}

pub(super) fn type_name(id: TypeId) -> String {
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

/// The user types an [`Encoder`](super::Encoder) can send, by id.
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
    /// with the ids of [`rpc_ids`](crate::rpc::rpc_ids).
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
    pub(super) fn index(id: TypeId) -> Option<usize> {
        usize::try_from(id.checked_sub(TypeRegistry::FIRST)?).ok()
    }

    /// The type registered under `id`.
    pub fn get(&self, id: TypeId) -> Option<&WireType> {
        self.types.get(TypeRegistry::index(id)?)
    }
}
