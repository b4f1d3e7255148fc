//! # rpcplugin-conformance
//!
//! The conformance harness for the rpcplugin wire protocol. This crate will hold the case catalog
//! (every case cites the requirement ids of `spec/requirements.json` that it checks), the
//! plugin-under-test and host-under-test drivers, reports (human, JSON, JUnit), replay files, and
//! the `rpcplugin-conformance` binary.
//!
//! It is filled by the two "Conformance harness" issues; until then it only re-exports the layers
//! it will build on. Today the codec's vector decoder (`cargo run -p rpcplugin-codec --example
//! decode-vectors`) is the runnable demonstration.

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
