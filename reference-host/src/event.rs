//! Life-cycle events of a supervised plugin (`spec/06-lifecycle.md`, section 6.11, Table 6-3).
//!
//! The event names ([`LifecycleEvent::name`]) are those of Table 6-3 (`started`,
//! `start_failed`, `crashed`, `restarted`, `gave_up`, `stopped`), which the conformance harness
//! uses; the reference host adds `activated` and `deactivated` for the user's own hook calls.
//! Each event renders as one line of human text (`Display`) or as one JSON object
//! ([`LifecycleEvent::to_json`]).

use std::fmt;
use std::time::Duration;

use rpcplugin_runtime::process::Exit;
use serde_json::{json, Value};

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

    fn detail(&self) -> Option<&str> {
        match self {
            CrashCause::ProcessExited => None,
            CrashCause::ConnectionEnded(d)
            | CrashCause::HooksStreamEnded(d)
            | CrashCause::RestartFailed(d)
            | CrashCause::ReactivationFailed(d) => Some(d),
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

/// An exit as Table 6-3 reports it: a status number, or a signal by name.
pub fn exit_json(exit: &Exit) -> Value {
    match *exit {
        Exit::Code(code) => json!({ "status": code }),
        Exit::Signal(sig) => json!({ "signal": signal_name(sig) }),
    }
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

    /// The event as a JSON object: `{"event": name, ...}`; `plugin` is the plugin's id.
    pub fn to_json(&self, plugin: &str) -> Value {
        let mut v = match self {
            LifecycleEvent::Started { pid }
            | LifecycleEvent::Activated { pid }
            | LifecycleEvent::Deactivated { pid } => json!({ "pid": pid }),
            LifecycleEvent::StartFailed { reason } => json!({ "reason": reason }),
            LifecycleEvent::Crashed {
                pid,
                cause,
                exit,
                failures,
                delay,
            } => json!({
                "pid": pid,
                "cause": cause.kind(),
                "detail": cause.detail(),
                "exit": exit.as_ref().map(exit_json),
                "failures_in_a_row": failures,
                "restart_delay_ms": delay.as_ref().map(millis),
            }),
            LifecycleEvent::Restarted { pid, reactivated } => {
                json!({ "pid": pid, "reactivated": reactivated })
            }
            LifecycleEvent::GaveUp { failures } => json!({ "failures_in_a_row": failures }),
            LifecycleEvent::Stopped { exit, killed } => json!({
                "exit": exit.as_ref().map(exit_json),
                "killed": killed,
            }),
        };
        let obj = v.as_object_mut().expect("every event is an object");
        obj.insert("event".into(), Value::from(self.name()));
        obj.insert("plugin".into(), Value::from(plugin));
        v
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
