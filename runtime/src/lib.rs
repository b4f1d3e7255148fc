//! # rpcplugin-runtime
//!
//! Moves bytes between OS pipes and processes and the pure protocol core in
//! [`rpcplugin_codec`]. Everything that blocks, spawns or owns a descriptor lives here; nothing
//! protocol-shaped does (frames, stream states, handshake parsing and the RPC envelope are the
//! codec's).
//!
//! - `process`: launching a plugin executable with two fresh pipes as its descriptors 3 (the
//!   child reads) and 4 (the child writes), and the plugin's side of that: taking descriptors 3
//!   and 4 over (`spec/01-transport.md`, TRANS-1 to TRANS-12);
//! - [`connection`]: reader threads (or a caller waiting for a reply) and a writer thread
//!   around one [`rpcplugin_codec::stream::StreamTable`], and blocking stream handles with the semantics of
//!   `spec/03-streams.md` (STREAM-8 to STREAM-14) and the handshake of `spec/04-handshake.md`;
//! - [`rpc`]: Go `net/rpc` clients and servers over a stream (`spec/05-rpc.md`).

pub mod connection;
mod fdio;
pub mod process;
pub mod rpc;

pub use connection::{Connection, StartError, Stream};
pub use rpcplugin_codec as codec;
