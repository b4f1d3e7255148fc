//! `rpcplugin-conformance bench`: figures for any implementation, each measured next to its
//! floor (the same operation without the protocol) in the same run, so that the ratio between
//! the two holds up on a busy machine where the absolute times drift.
//!
//! - `bench plugin <exe>` ([`bench_plugin`]): the harness plays a plain host (the runtime's
//!   connection and RPC client, [`direct`]) against the plugin: start time (launch to
//!   announcement, HS-1, HS-4), hook round trip (`OnDeactivate`, RPC-12), pipelined calls per
//!   second (RPC-4, RPC-6), one-stream throughput for several payload sizes (the configuration
//!   the host serves through `LoadPluginConfiguration` during `OnActivate`, RPC-13, RPC-18), and
//!   resident memory. The floors are a child started with its pipes as descriptors 3 and 4 that
//!   answers without any protocol ([`floor`]).
//! - `bench host -- <driver>` ([`bench_host`]): what the driver contract (spec 07 section 7.2)
//!   allows: start, activation, a hook call and stop through the driver (DRV-5, DRV-7, DRV-8),
//!   and the restart after a crash (LIFE-6, LIFE-8, DRV-10), with the harness's agent as the
//!   plugin; floors are the same agent hosted by the harness directly, and the driver's own
//!   `status` round trip (DRV-9).
//!
//! Rounds alternate subject and floor (as `reference-plugin/benches/ratio.rs` does), so both see
//! the same noise. Nothing here judges conformance; a subject that cannot be measured (not
//! found, never announces, fails a call, stalls) is a [`BenchError`] with a plain reason, and
//! nothing waits without a limit: launches wait for the start timeout, and a watchdog ends any
//! measurement that makes no progress for [`STALL`] (both scaled by `--timeout-scale`).
//!
//! [`results`] holds the plain, serializable result ([`results::BenchReport`]); [`cli`] the
//! subcommand's options.

pub mod cli;
pub mod direct;
pub mod floor;
mod host;
mod plugin;
pub mod results;

use std::path::PathBuf;
use std::time::Duration;

pub use host::{bench_host, HostBenchOptions};
pub use plugin::{bench_plugin, PluginBenchOptions};

/// How long a measurement may make no progress before the bench ends the subject.
pub const STALL: Duration = Duration::from_secs(10);

/// Why a bench could not run: a plain sentence for the user (exit status 2).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(pub String);

/// The settings every bench shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// This harness binary (the floor child, and the agent for a host).
    pub harness: PathBuf,
    /// Alternating rounds per figure.
    pub rounds: usize,
    /// Round trips per round.
    pub batch: usize,
    /// Round trips of each kind before the measured rounds.
    pub warm_up: usize,
    /// Launches for the start time.
    pub starts: usize,
    /// Multiplies every timeout.
    pub timeout_scale: f64,
}

/// The bench's progress on standard error, through the harness's one progress mechanism
/// ([`crate::progress`]): a line per phase, and the step counter of the current phase redrawn
/// in place on a terminal.
pub struct Progress {
    line: crate::progress::Progress,
}

impl Progress {
    /// Progress on standard error if `enabled`.
    pub fn new(enabled: bool) -> Progress {
        Progress {
            line: crate::progress::Progress::new(enabled, None),
        }
    }

    /// A new phase.
    pub fn phase(&self, text: &str) {
        self.line.set_message("");
        self.line.println(format!("bench: {text}"));
    }

    /// Step `done` of `total` of the current phase (on a terminal only).
    pub fn step(&self, done: usize, total: usize) {
        self.line.set_message(format!("  {done}/{total}"));
    }

    /// Clears the step counter.
    pub fn done(&self) {
        self.line.set_message("");
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.line.finish();
    }
}

/// The harness part of a report.
fn harness() -> results::Harness {
    results::Harness {
        version: env!("CARGO_PKG_VERSION").to_string(),
        profile: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .to_string(),
    }
}

/// The machine part of a report.
fn machine() -> results::Machine {
    results::Machine {
        os: std::env::consts::OS.to_string(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    }
}

/// Microseconds.
fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
