//! Life-cycle events of a supervised plugin (`spec/06-lifecycle.md`, section 6.11, Table 6-3).
//!
//! The event names ([`LifecycleEvent::name`]) are those of Table 6-3 (`started`,
//! `start_failed`, `crashed`, `restarted`, `gave_up`, `stopped`), which the conformance harness
//! uses; the reference host adds `activated` and `deactivated` for the user's own hook calls.
//! Each event renders as one line of human text (`Display`) or as one message of the host
//! driver contract ([`LifecycleEvent::message`], serialized by serde: the driver's event
//! messages and `run --json` are the same objects).

use std::fmt;
use std::time::Duration;

use rpcplugin_runtime::process::Exit;
use serde::Serialize;

/// What a supervisor observed first when its plugin crashed, or why a restart attempt failed
/// (LIFE-6, LIFE-12).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CrashCause {
    /// The plugin process exited (by itself, or killed by a signal) while Running.
    ProcessExited,
    /// The connection ended while the process was still running.
    ConnectionEnded(String),
    /// The hooks stream ended (closed by the plugin, or broken) while the connection continued.
    HooksStreamEnded(String),
    /// A relaunch failed: the launch, the handshake or the start timeout (LIFE-12).
    RestartFailed(String),
    /// The re-activation of a relaunched plugin failed (LIFE-11, LIFE-12).
    ReactivationFailed(String),
}

impl CrashCause {
    /// A stable, machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            CrashCause::ProcessExited => "process_exited",
            CrashCause::ConnectionEnded(_) => "connection_ended",
            CrashCause::HooksStreamEnded(_) => "hooks_stream_ended",
            CrashCause::RestartFailed(_) => "restart_failed",
            CrashCause::ReactivationFailed(_) => "reactivation_failed",
        }
    }
}

impl fmt::Display for CrashCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CrashCause::ProcessExited => f.write_str("the plugin process exited"),
            CrashCause::ConnectionEnded(d) => write!(f, "the connection ended ({d})"),
            CrashCause::HooksStreamEnded(d) => write!(f, "the hooks stream ended ({d})"),
            CrashCause::RestartFailed(d) => write!(f, "the restart attempt failed: {d}"),
            CrashCause::ReactivationFailed(d) => write!(f, "the re-activation failed: {d}"),
        }
    }
}

/// One change in the life cycle of a supervised plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LifecycleEvent {
    /// A start succeeded: the plugin announced its hooks stream (Table 6-1, L3).
    Started {
        /// The plugin process.
        pid: u32,
    },
    /// A start failed (L2, L4, L5); nothing was left behind (LIFE-4, LIFE-5).
    StartFailed {
        /// Why, as [`crate::supervisor::StartError`] says it.
        reason: String,
    },
    /// The user's `OnActivate` call succeeded: the plugin is activated (reference-host extra).
    Activated {
        /// The plugin process.
        pid: u32,
    },
    /// The user's (or the stop's) `OnDeactivate` call succeeded (reference-host extra).
    Deactivated {
        /// The plugin process.
        pid: u32,
    },
    /// The plugin crashed (L7), or a restart attempt failed (L16); reported once the process
    /// has been reaped.
    Crashed {
        /// The process, if one was launched.
        pid: Option<u32>,
        /// What the supervisor observed first.
        cause: CrashCause,
        /// How the process ended, if one was launched.
        exit: Option<Exit>,
        /// The failures in a row, this one included (LIFE-9, LIFE-10).
        failures: u32,
        /// The delay before the next relaunch; `None` when the supervisor gives up.
        delay: Option<Duration>,
    },
    /// A relaunched plugin is Running again (L13, L15).
    Restarted {
        /// The new process.
        pid: u32,
        /// Whether it was re-activated with the configuration of its last activation (LIFE-11).
        reactivated: bool,
    },
    /// The supervisor gave up relaunching the plugin (L11, LIFE-13); it is in the Failed state.
    GaveUp {
        /// The failures in a row.
        failures: u32,
    },
    /// A stop completed (L20, L22).
    Stopped {
        /// How the last process ended; `None` when there was no process to stop (L22).
        exit: Option<Exit>,
        /// Whether the process had to be killed after the grace period (LIFE-18).
        killed: bool,
    },
}

/// An exit as the driver contract's messages have it (`spec/schemas/host-driver/`):
/// `{"code": n}` (0 to 255) or `{"signal": "SIGKILL"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExitJson {
    /// The exit status.
    Code(i32),
    /// The signal's name.
    Signal(String),
}

impl From<Exit> for ExitJson {
    fn from(exit: Exit) -> ExitJson {
        match exit {
            Exit::Code(code) => ExitJson::Code(code.rem_euclid(256)),
            Exit::Signal(sig) => ExitJson::Signal(signal_name(sig)),
        }
    }
}

/// An event as one message of the driver contract (`spec/07-conformance.md` section 7.2.4,
/// `spec/schemas/host-driver/event.*.json`): `{"event": name, "plugin": plugin, ...}`. The
/// driver writes these, and `run --json` prints the same; `activated` and `deactivated`, which
/// the contract does not have, carry their pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EventMessage<'a> {
    /// [`LifecycleEvent::name`].
    pub event: &'static str,
    /// The plugin's name.
    pub plugin: &'a str,
    /// The event's own members.
    #[serde(flatten)]
    pub fields: EventFields,
}

/// The members of an [`EventMessage`] after `event` and `plugin`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum EventFields {
    /// `started`, `activated`, `deactivated`.
    Pid {
        /// The plugin process.
        pid: u32,
    },
    /// `start_failed`.
    StartFailed {
        /// Why.
        reason: String,
    },
    /// `crashed`.
    Crashed {
        /// The process that crashed; `null` when a relaunch failed to launch.
        pid: Option<u32>,
        /// How it ended.
        exit: Option<ExitJson>,
        /// What the host observed, in words.
        reason: String,
        /// The failures in a row.
        failures: u32,
        /// The delay before the relaunch; `null` when the host gives up.
        delay_ms: Option<u64>,
    },
    /// `restarted`.
    Restarted {
        /// The new process.
        pid: u32,
        /// Whether it was re-activated.
        reactivated: bool,
    },
    /// `gave_up`.
    GaveUp {
        /// The failures in a row.
        failures: u32,
    },
    /// `stopped`.
    Stopped {
        /// How the process ended; `null` when none ran.
        exit: Option<ExitJson>,
        /// Whether it was killed after the grace period.
        killed: bool,
    },
}

/// `SIGKILL` for 9, `signal 77` for numbers nix does not know.
pub fn signal_name(sig: i32) -> String {
    match nix::sys::signal::Signal::try_from(sig) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {sig}"),
    }
}

fn short_exit(exit: &Exit) -> String {
    match *exit {
        Exit::Code(code) => format!("exit status {code}"),
        Exit::Signal(sig) => signal_name(sig),
    }
}

fn millis(d: &Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl LifecycleEvent {
    /// The event's name (Table 6-3, plus `activated` and `deactivated`).
    pub fn name(&self) -> &'static str {
        match self {
            LifecycleEvent::Started { .. } => "started",
            LifecycleEvent::StartFailed { .. } => "start_failed",
            LifecycleEvent::Activated { .. } => "activated",
            LifecycleEvent::Deactivated { .. } => "deactivated",
            LifecycleEvent::Crashed { .. } => "crashed",
            LifecycleEvent::Restarted { .. } => "restarted",
            LifecycleEvent::GaveUp { .. } => "gave_up",
            LifecycleEvent::Stopped { .. } => "stopped",
        }
    }

    /// The event as a message of the driver contract, for `plugin`.
    pub fn message<'a>(&self, plugin: &'a str) -> EventMessage<'a> {
        let fields = match self {
            LifecycleEvent::Started { pid }
            | LifecycleEvent::Activated { pid }
            | LifecycleEvent::Deactivated { pid } => EventFields::Pid { pid: *pid },
            LifecycleEvent::StartFailed { reason } => EventFields::StartFailed {
                reason: reason.clone(),
            },
            LifecycleEvent::Crashed {
                pid,
                cause,
                exit,
                failures,
                delay,
            } => EventFields::Crashed {
                pid: *pid,
                exit: exit.map(ExitJson::from),
                reason: cause.to_string(),
                failures: *failures,
                delay_ms: delay.as_ref().map(millis),
            },
            LifecycleEvent::Restarted { pid, reactivated } => EventFields::Restarted {
                pid: *pid,
                reactivated: *reactivated,
            },
            LifecycleEvent::GaveUp { failures } => EventFields::GaveUp {
                failures: *failures,
            },
            LifecycleEvent::Stopped { exit, killed } => EventFields::Stopped {
                exit: exit.map(ExitJson::from),
                killed: *killed,
            },
        };
        EventMessage {
            event: self.name(),
            plugin,
            fields,
        }
    }
}

impl fmt::Display for LifecycleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LifecycleEvent::Started { pid } => write!(f, "started (pid {pid})"),
            LifecycleEvent::StartFailed { reason } => write!(f, "start failed: {reason}"),
            LifecycleEvent::Activated { pid } => write!(f, "activated (pid {pid})"),
            LifecycleEvent::Deactivated { pid } => write!(f, "deactivated (pid {pid})"),
            LifecycleEvent::Crashed {
                pid,
                cause,
                exit,
                failures,
                delay,
            } => {
                f.write_str("crashed")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid}")?;
                    if let Some(exit) = exit {
                        write!(f, ", {}", short_exit(exit))?;
                    }
                    f.write_str(")")?;
                }
                write!(f, ": {cause}; failure {failures} in a row")?;
                match delay {
                    Some(d) => write!(f, ", restarting in {d:?}"),
                    None => f.write_str(", not restarting"),
                }
            }
            LifecycleEvent::Restarted { pid, reactivated } => {
                write!(f, "restarted (pid {pid})")?;
                if *reactivated {
                    f.write_str(", re-activated with its configuration")?;
                }
                Ok(())
            }
            LifecycleEvent::GaveUp { failures } => {
                write!(f, "gave up after {failures} failures in a row")
            }
            LifecycleEvent::Stopped { exit, killed } => {
                f.write_str("stopped")?;
                match exit {
                    Some(exit) => write!(f, " ({})", short_exit(exit))?,
                    None => f.write_str(" (no process was running)")?,
                }
                if *killed {
                    f.write_str(", killed after the grace period")?;
                }
                Ok(())
            }
        }
    }
}
