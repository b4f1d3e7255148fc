//! # rpcplugin-reference-host
//!
//! The host side of the rpcplugin wire protocol, built on [`rpcplugin_runtime`]. This crate will
//! hold the plugin-bundle reader (`plugin.json`), the supervisor (start with a start timeout,
//! HS-4; crash restart with bounded backoff; stop with grace period), and the reference host
//! binary, including the host-driver mode of the conformance contract.
//!
//! It is filled by the "Runtime, reference plugin and reference host" issue; until then it only
//! re-exports the layers it will build on.

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
