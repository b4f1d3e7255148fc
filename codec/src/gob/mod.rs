//! The subset of Go's `encoding/gob` that protocol 1's RPC layer uses (`spec/05-rpc.md`,
//! section 5.2, requirements GOB-1 to GOB-21).
//!
//! A gob stream is a sequence of messages, each a gob uint length followed by that many bytes
//! (GOB-4). A message holds either a type definition (a negative type id, then a `wireType`
//! value) or a value (a positive type id, then the value) (GOB-5). This module owns:
//!
//! - the gob uint and int encodings ([`put_uint`], [`put_int`], [`read_uint`], [`read_int`];
//!   GOB-1 to GOB-3);
//! - the type model ([`WireType`]) and the per-direction type table that definitions fill
//!   (GOB-6, GOB-9, GOB-10);
//! - a value model ([`Value`]) that says exactly what was on the wire: struct values keep only the
//!   fields that were sent, strings are kept as bytes, GobEncoder payloads as opaque bytes
//!   (GOB-11, GOB-14);
//! - an [`Encoder`] that writes type definitions before their first use, in Go's order, so that
//!   the same values give the same bytes as Go (GOB-7, GOB-8);
//! - an incremental [`Decoder`], fed arbitrary chunks, that tells "needs more bytes" from errors,
//!   enforces a message-size limit and a nesting limit (GOB-15, GOB-17), and never panics;
//! - a path for flat structs that builds no [`Value`]: [`Decoder::next_visiting`] hands a
//!   struct's fields over borrowed, [`Encoder::encode_parts`] takes them as [`Part::Fields`],
//!   with the same bytes and errors as the `Value` path (a `net/rpc` header goes this way on
//!   every call: `codec/tests/header_fast_path.rs`).
//!
//! Interface values are outside the subset: they are reported as [`GobError::Unsupported`].
//!
//! # Where things are
//!
//! The files below are private; every public item is re-exported here, so its path is
//! `rpcplugin_codec::gob::Item` whichever file holds it.
//!
//! - `uint.rs`: gob uints and ints, written and read, and the minimal form (GOB-1 to GOB-3).
//! - `types.rs`: type ids ([`TypeId`], [`ids`]), the types definitions describe ([`WireType`])
//!   and the sender's [`TypeRegistry`] (GOB-6 to GOB-9).
//! - `definition.rs`: the wire layout of a definition's `wireType`, written and read (GOB-6,
//!   GOB-7, GOB-10).
//! - `value.rs`: [`Value`] and [`Field`], and the borrowed [`FieldRef`] and [`Part`] (GOB-11,
//!   GOB-12, GOB-14).
//! - `limits.rs`: the message-size and nesting limits and [`DecodeLimits`] (GOB-15, GOB-16,
//!   GOB-17, GOB-19).
//! - `error.rs`: [`GobError`] and [`GobEncodeError`], with their kinds and requirement ids
//!   (Table 5-7, GOB-18).
//! - `cursor.rs`: reading inside one message body: past-the-end checks and struct field deltas
//!   (GOB-2, GOB-11, GOB-20).
//! - `decoder.rs`: the incremental [`Decoder`] and what it returns, [`Message`] and [`Visited`]
//!   (GOB-4, GOB-5, GOB-6, GOB-9, GOB-13, GOB-14, GOB-15, GOB-17, GOB-21).
//! - `encoder.rs`: the [`Encoder`]: definitions before first use, zero fields omitted, messages
//!   no longer than every receiver accepts (GOB-1, GOB-7, GOB-8, GOB-12, GOB-13, GOB-16).
//!
//! The ids Go's `net/rpc` gives its own types ([`rpc_ids`]) are part of the envelope, so they
//! are defined in [`crate::rpc`]; they are re-exported here so that `gob::rpc_ids` keeps
//! working. [`TypeRegistry::net_rpc`] stays in this module: it is the gob-level list of those
//! types' definitions, in the order that yields these ids (GOB-8), and needs nothing else from
//! the envelope.

mod cursor;
mod decoder;
mod definition;
mod encoder;
mod error;
mod limits;
mod types;
mod uint;
mod value;

pub use decoder::{Decoder, Message, Visited};
pub use encoder::Encoder;
pub use error::{GobEncodeError, GobError};
pub use limits::{
    DecodeLimits, DecodeLimitsError, DEFAULT_MAX_DEPTH, DEFAULT_MAX_MESSAGE, MAX_MESSAGE_CEILING,
    MIN_MAX_DEPTH, MIN_MAX_MESSAGE,
};
pub use types::{ids, EncoderKind, FieldDef, TypeId, TypeRegistry, WireType};
pub use uint::{put_int, put_uint, read_int, read_uint, UintError, MAX_UINT_LEN};
pub use value::{Field, FieldRef, Part, Value};

/// The ids of `net/rpc`'s own types, defined with the envelope in [`crate::rpc`] (kept here so
/// that `gob::rpc_ids` paths still work).
pub use crate::rpc::rpc_ids;
