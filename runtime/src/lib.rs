//! # rpcplugin-runtime
//!
//! Moves bytes between OS pipes and processes and the pure protocol core in
//! [`rpcplugin_codec`]. This crate will own everything that blocks or spawns:
//!
//! - launching a plugin executable with two fresh pipes as its file descriptors 3 (the child
//!   reads) and 4 (the child writes), as `spec/01-transport.md` requires (TRANS-1, TRANS-4);
//! - one reader thread per connection feeding [`rpcplugin_codec::stream::StreamTable`], and
//!   whole-frame writes taken from its transmit queue (FRAME-10);
//! - blocking stream handles with `Read`/`Write`/close semantics from `spec/03-streams.md`;
//! - RPC client and server plumbing over a stream (the RPC issue).
//!
//! Nothing protocol-shaped lives here: frames, stream states and handshake parsing are the
//! codec's job. The crate is filled by the "Runtime, reference plugin and reference host" issue.

pub use rpcplugin_codec as codec;
