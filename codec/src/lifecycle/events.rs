//! The vocabulary of the life cycle (`spec/06-lifecycle.md`): the states of Table 6-1, how a
//! process ended, why a start failed or a plugin crashed, the events of Table 6-3 (section
//! 6.11), the actions a [`Lifecycle`](super::Lifecycle) asks for, and the errors of a start or
//! a hook call at the wrong moment (LIFE-14).

use std::fmt;
use std::time::Duration;

/// The states of Table 6-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No plugin process and nothing pending; also after a stop or a failed start.
    Stopped,
    /// A start: the launch and the wait for the announcement (L1 to L5).
    Starting,
    /// The plugin is up; hook calls go through (L6 to L9).
    Running,
    /// After a crash or a failed restart attempt: the old process goes, the delay runs (L10 to
    /// L12).
    Backoff {
        /// The failures in a row so far.
        failures: u32,
    },
    /// A relaunched process: its announcement and its re-activation (L13 to L17).
    Restarting {
        /// The failures in a row so far.
        failures: u32,
    },
    /// A stop in progress (L18 to L21).
    Stopping,
    /// Given up (LIFE-13): like Stopped, but reached without a stop.
    Failed,
}

impl State {
    /// The state's name as the driver contract reports it (`spec/07-conformance.md`).
    pub fn name(&self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff { .. } => "backoff",
            State::Restarting { .. } => "restarting",
            State::Stopping => "stopping",
            State::Failed => "failed",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a plugin process ended, as the user observed when it reaped it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this status (0 to 255).
    Status(i32),
    /// A signal ended it.
    Signal(i32),
}

/// Why a start failed (Table 6-3, `start_failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartFailure {
    /// The launch itself failed (L2).
    Launch(String),
    /// No announcement within the start timeout (L4, HS-4).
    Timeout,
    /// A handshake error or a connection error before the announcement (L4, HS-5, HS-9,
    /// FRAME-14).
    Handshake(String),
    /// The connection ended before the announcement (L4, HS-6).
    EndOfInput,
    /// The process exited before the announcement (L4).
    Exited(Exit),
    /// A stop arrived during the start (L5, LIFE-23).
    Stopped,
}

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartFailure::Launch(e) => write!(f, "the launch failed: {e}"),
            StartFailure::Timeout => f.write_str("no announcement within the start timeout"),
            StartFailure::Handshake(e) => write!(f, "handshake error: {e}"),
            StartFailure::EndOfInput => {
                f.write_str("the plugin's output ended before its announcement")
            }
            StartFailure::Exited(Exit::Status(s)) => {
                write!(
                    f,
                    "the plugin exited with status {s} before its announcement"
                )
            }
            StartFailure::Exited(Exit::Signal(s)) => {
                write!(
                    f,
                    "the plugin was ended by signal {s} before its announcement"
                )
            }
            StartFailure::Stopped => f.write_str("stopped"),
        }
    }
}

/// What the host observed first of a crash or a failed restart attempt (Table 6-3, `crashed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashCause {
    /// The process exited (LIFE-6).
    Exited,
    /// The connection ended (LIFE-6).
    ConnectionEnded,
    /// The hooks stream ended (LIFE-6).
    HooksStreamEnded,
    /// A restart attempt's start failed (LIFE-12).
    RestartFailed(StartFailure),
    /// A restart attempt's re-activation failed (LIFE-12, RPC-16).
    ReactivationFailed(String),
}

/// A change of the life cycle to report to the user (Table 6-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A start succeeded (L3).
    Started,
    /// A start failed (L2, L4, L5).
    StartFailed(StartFailure),
    /// A crash or a failed restart attempt, once its process is gone (L7, L16).
    Crashed {
        /// What the host observed first.
        cause: CrashCause,
        /// How the process ended; `None` when there was none (a failed launch).
        exit: Option<Exit>,
        /// The failures in a row, this one included.
        failures: u32,
        /// The delay before the relaunch, counted from the detection; `None` when the host
        /// gives up.
        delay: Option<Duration>,
    },
    /// A relaunched plugin is Running again (L13, L15).
    Restarted {
        /// Whether it was re-activated (LIFE-11).
        reactivated: bool,
    },
    /// The host gave up relaunching (L11, LIFE-13).
    GaveUp {
        /// The failures in a row.
        failures: u32,
    },
    /// A stop completed (L20, L22).
    Stopped {
        /// How the process ended; `None` when the stop found none.
        exit: Option<Exit>,
        /// Whether the host killed it (LIFE-18).
        killed: bool,
    },
}

/// What the user of a [`Lifecycle`](super::Lifecycle) has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pipes and launch a plugin process (chapter 01); then report the outcome with
    /// [`Lifecycle::launched`](super::Lifecycle::launched).
    Launch,
    /// End the connection: close both pipe ends (TRANS-8).
    EndConnection,
    /// Kill the plugin process (`SIGKILL`, LIFE-7, LIFE-18).
    Kill,
    /// Activate the relaunched plugin with the configuration of its last activation (L14,
    /// LIFE-11); then report the outcome with [`Lifecycle::reactivated`](super::Lifecycle::reactivated).
    Activate {
        /// The configuration, as the user gave it to [`Lifecycle::activation_succeeded`](super::Lifecycle::activation_succeeded).
        config: Vec<u8>,
    },
    /// Call `OnDeactivate` (L9, LIFE-16); then report its end with
    /// [`Lifecycle::deactivation_done`](super::Lifecycle::deactivation_done).
    Deactivate,
    /// Answer the user's start.
    StartDone(Result<(), StartFailure>),
    /// Answer one stop of the user, in the order the stops came (L20, L21, L22).
    StopDone {
        /// How the process ended; `None` for a stop that found none.
        exit: Option<Exit>,
        /// Whether the host killed it.
        killed: bool,
    },
    /// Report an event to the user (section 6.11).
    Report(Event),
}

/// A start asked for in a state other than Stopped and Failed: outside protocol 1 (Table 6-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartRefused(pub State);

impl fmt::Display for StartRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the plugin is {}: only a stopped or failed plugin can be started",
            self.0
        )
    }
}

impl std::error::Error for StartRefused {}

/// A hook call of the user while the plugin is not Running (L23, LIFE-14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotRunning(pub State);

impl fmt::Display for NotRunning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.0 {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running => "running",
            State::Backoff { .. } | State::Restarting { .. } => "restarting after a crash",
            State::Stopping => "stopping",
            State::Failed => "given up after repeated crashes",
        };
        write!(f, "the plugin is not running: it is {why}")
    }
}

impl std::error::Error for NotRunning {}
