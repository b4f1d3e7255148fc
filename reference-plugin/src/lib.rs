//! # rpcplugin-reference-plugin
//!
//! The plugin side of the rpcplugin wire protocol, built on [`rpcplugin_runtime`]. This crate
//! will hold `serve(hooks)`: open the inherited descriptors 3 and 4, announce the hooks stream
//! (`spec/04-handshake.md`, HS-1), and serve the `LocalHooks` RPC service; and the reference
//! plugin binary that the conformance suite tests first.
//!
//! It is filled by the "Runtime, reference plugin and reference host" issue; until then it only
//! re-exports the layers it will build on.

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
