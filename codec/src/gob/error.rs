//! The errors of the gob layer (`spec/05-rpc.md`, sections 5.2.11 and 5.3).
//!
//! - [`GobError`]: why a gob stream cannot be decoded, one variant per error kind of Table 5-7,
//!   with [`GobError::kind`] (the name `spec/vectors/` uses) and [`GobError::requirement`] (the
//!   id it enforces: GOB-2, GOB-4, GOB-5, GOB-6, GOB-9, GOB-10, GOB-11, GOB-13, GOB-15, GOB-17,
//!   GOB-20, GOB-21). Every one ends the RPC stream it occurred on, and only that stream (GOB-18).
//! - [`GobEncodeError`]: why a value cannot be encoded, including a message longer than every
//!   receiver accepts (GOB-16).

use thiserror::Error;

use super::limits::MIN_MAX_MESSAGE;
use super::types::TypeId;

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
            GobError::MessageTooLarge { .. } => crate::req!("GOB-15"),
            GobError::EmptyMessage | GobError::TruncatedMessage { .. } => crate::req!("GOB-4"),
            GobError::BadUint { .. } => crate::req!("GOB-2"),
            GobError::Truncated { .. } => crate::req!("GOB-20"),
            GobError::ArrayLength { .. } => crate::req!("GOB-21"),
            GobError::DuplicateType { .. } => crate::req!("GOB-6"),
            GobError::BadDefinition { .. } => crate::req!("GOB-10"),
            GobError::UndefinedType { .. } | GobError::Unsupported { .. } => crate::req!("GOB-9"),
            GobError::BadField { .. } => crate::req!("GOB-11"),
            GobError::BadSingleton { .. } => crate::req!("GOB-13"),
            GobError::TooDeep { .. } => crate::req!("GOB-17"),
            GobError::ExtraData { .. } => crate::req!("GOB-5"),
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
