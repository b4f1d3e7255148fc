//! The seams of a supervisor: the points at which test equipment may change what a
//! [`Supervisor`](super::Supervisor) does, to build deliberately broken hosts for the
//! conformance harness's self-test. The reference host uses [`Conforming`], which changes
//! nothing; no rule of the spec is decided here.
//!
//! A seam sees one decision at a time: the process's launch options (chapter 01), the
//! connection's pipes and limits (chapters 02 to 04), what `LocalAPI` serves (chapter 05), the
//! settings of the life-cycle machine, what the supervisor observed before the machine hears of
//! it, when the machine's timer fires, and each [`Action`] the machine asks for (chapter 06).

use std::any::Any;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Instant;

use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::lifecycle::{Action, Exit, Lifecycle, Settings, State};
use rpcplugin_codec::stream::{ConnectionEnd, Limits};
use rpcplugin_runtime::connection::Connection;
use rpcplugin_runtime::process::LaunchOptions;

use crate::bundle::Bundle;

/// Where a seam that relays the pipes finds the connection once it exists.
pub type ConnectionSlot = Arc<OnceLock<Weak<Connection>>>;

/// What the supervisor observed, before the life-cycle machine hears of it.
#[derive(Debug)]
pub enum Seen<'a> {
    /// The process exited and was reaped.
    Exited(Exit),
    /// The plugin announced its hooks stream.
    Announced,
    /// The connection ended before the announcement; `output_ended` when the plugin's output
    /// ended (end-of-file or a failed pipe: what a plugin that exits does).
    HandshakeFailed {
        /// How the connection ended.
        end: &'a ConnectionEnd,
        /// Whether the plugin's output ended.
        output_ended: bool,
    },
    /// The connection of an announced plugin ended.
    ConnectionEnded(&'a ConnectionEnd),
    /// The hooks stream of an announced plugin ended.
    HooksStreamEnded,
    /// The user's `OnActivate` succeeded (`true`) or failed.
    Activated(bool),
}

/// When the machine hears of what was [`Seen`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// At once.
    Now,
    /// At this moment (or never, if the process it concerns is gone by then).
    Later(Instant),
    /// Never.
    Drop,
}

/// One thing the supervisor does for an [`Action`].
#[derive(Debug)]
pub enum Step {
    /// Carry out this action.
    Act(Action),
    /// Stop watching the current process as if it had been reaped, and tell the machine it
    /// exited with this status: a thread reaps it whenever it exits (`reap`), or nothing ever
    /// does (`!reap`).
    Forget {
        /// Whether a thread still reaps the process.
        reap: bool,
        /// The exit the machine is told of.
        exit: Exit,
    },
}

/// What an [`Seams::action`] seam knows.
#[derive(Debug)]
pub struct ActionContext<'a> {
    /// The state before the input that led to the action.
    pub before: State,
    /// The machine, after that input.
    pub machine: &'a Lifecycle,
    /// The plugin's bundle.
    pub bundle: &'a Bundle,
    /// The time of the input.
    pub now: Instant,
}

/// The seams of a supervisor (see the module documentation). Every method has a default that
/// changes nothing.
pub trait Seams: fmt::Debug + Send + Sync {
    /// The settings of the life-cycle machine (from [`SupervisorOptions`](super::SupervisorOptions)).
    fn settings(&self, settings: &mut Settings) {
        let _ = settings;
    }

    /// How the plugin is launched; what is returned is held until the launch is done.
    fn launch(&self, options: &mut LaunchOptions, bundle: &Bundle) -> Option<Box<dyn Any>> {
        let _ = (options, bundle);
        None
    }

    /// The pipes the connection reads and writes, and its limits. `slot` receives the
    /// connection once it exists.
    fn connection(
        &self,
        reader: OwnedFd,
        writer: OwnedFd,
        limits: &mut Limits,
        gob_limits: &mut DecodeLimits,
        slot: ConnectionSlot,
    ) -> io::Result<(OwnedFd, OwnedFd)> {
        let _ = (limits, gob_limits, slot);
        Ok((reader, writer))
    }

    /// What `LoadPluginConfiguration` answers (RPC-18): the configuration, or an error text.
    fn configuration(&self, config: Vec<u8>) -> Result<Vec<u8>, String> {
        Ok(config)
    }

    /// The API stream id passed to `OnActivate` for the stream `id` (RPC-13).
    fn api_stream_id(&self, id: i64) -> i64 {
        id
    }

    /// When the machine hears of what the supervisor saw, `default` being the supervisor's
    /// own choice; the seam may also tell the machine something first.
    fn observe(
        &self,
        seen: &Seen<'_>,
        machine: &mut Lifecycle,
        now: Instant,
        default: Delivery,
    ) -> Delivery {
        let _ = (seen, machine, now);
        default
    }

    /// When the supervisor wakes for the machine's timer, due at `due` (the machine is then
    /// told the time is `due` at the earliest).
    fn wake(&self, due: Instant, machine: &Lifecycle) -> Instant {
        let _ = machine;
        due
    }

    /// What the supervisor does for `action`.
    fn action(&self, action: Action, context: &ActionContext<'_>) -> Vec<Step> {
        let _ = context;
        vec![Step::Act(action)]
    }
}

/// The seams of the reference host: nothing changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Conforming;

impl Seams for Conforming {}
