//! Helpers that the tests of several workspace crates share, written once.
//!
//! Used only as a `[dev-dependencies]` entry (never published) and free of the workspace's own
//! crates, so that every crate, the codec included, can use it:
//!
//! - [`time`]: [`within`], which fails a test that hangs instead of hanging with it;
//! - [`bytes`]: hex strings to bytes and back, and cutting bytes into pieces;
//! - [`bins`]: the workspace's directories and the reference binaries, built on demand;
//! - [`procs`]: checks that no process is left behind, and a process's output as text;
//! - [`host_driver`]: a test client of the host driver contract, for any driver executable, and
//!   plugin bundles whose behaviour is a shell script;
//! - [`vectors`]: `spec/vectors/` and the schema of its files.

#![warn(missing_docs)]

pub mod bins;
pub mod bytes;
pub mod host_driver;
pub mod procs;
pub mod time;
pub mod vectors;

pub use bytes::{split_at_cuts, to_hex, try_unhex, unhex};
pub use time::{within, within_named};
