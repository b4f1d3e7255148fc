//! # rpcplugin-codec
//!
//! The pure, sans-I/O core of the rpcplugin wire protocol 1 (`spec/`). Bytes go in, events and
//! bytes to send come out; there are no threads, no clocks, no pipes and no global state here,
//! so every module can be driven by tests, fuzzers and any runtime.
//!
//! - [`varint`]: Go-exact signed varints (`spec/02-framing.md`, FRAME-2..FRAME-4).
//! - [`frame`]: the frame layout, encoder and incremental decoder with limits (FRAME-1..FRAME-14).
//! - [`stream`]: one endpoint's stream table, the multiplexer state machine
//!   (`spec/03-streams.md`, STREAM-1..STREAM-14).
//! - [`handshake`]: the plugin's announcement and the host's parsing of it
//!   (`spec/04-handshake.md`, HS-1..HS-8).
//! - [`gob`]: the subset of Go's `encoding/gob` that the RPC layer uses (`spec/05-rpc.md`).
//! - [`rpc`]: Go's `net/rpc` envelope and the calls of protocol 1 (`spec/05-rpc.md`).
//! - [`lifecycle`]: a host's supervisor of one plugin, Table 6-1's states and events with time
//!   as a parameter, and the constants of chapter 06 (`spec/06-lifecycle.md`, LIFE-4..LIFE-23).
//! - [`trace`]: one direction of a connection decoded and checked against the sender's rules
//!   (what the conformance harness observes, and `inspect` prints).

pub mod frame;
pub mod gob;
pub mod handshake;
pub mod lifecycle;
pub mod requirements;
pub mod rpc;
pub mod stream;
pub mod trace;
pub mod varint;

pub use frame::{Frame, FrameDecoder, FrameError, StreamId};

/// The protocol this crate implements, as `spec/README.md` names it.
pub const PROTOCOL: &str = "rpcplugin wire protocol 1";
