//! # rpcplugin-conformance
//!
//! The conformance harness for the rpcplugin wire protocol: it plays the host against a plugin
//! executable it knows nothing about, runs a catalog of [`cases`], and reports which
//! requirements of `spec/requirements.json` the plugin meets.
//!
//! - [`requirements`]: the specification's requirements, embedded at compile time;
//! - [`driver`]: [`driver::PluginUnderTest`], a launched plugin with raw and protocol access;
//! - [`cases`]: the case catalog, every case citing the requirement ids it checks;
//! - [`outcome`]: what a case finds;
//! - [`runner`]: selecting and running cases, and the human and JSON reports.
//!
//! Exit codes of the `rpcplugin-conformance` binary: 0 conformant, 1 not conformant (a failed
//! or timed-out case, including a plugin that never announces), 2 harness or setup error (the
//! plugin cannot be found or launched, or exits before the handshake).

pub mod cases;
pub mod driver;
pub mod outcome;
pub mod requirements;
pub mod runner;

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
