//! The supervisor's life cycle (`spec/06-lifecycle.md`): the states and events of Table 6-1,
//! rows L1 to L23, as a sans-I/O state machine, and the chapter's constants.
//!
//! A [`Lifecycle`] supervises one plugin of a host. It owns no process, pipe, thread or clock:
//! its user (the host's supervisor) tells it what happened, with the time `now` as a parameter
//! (a start or a stop asked for, a launch carried out, an announcement, the end of the connection
//! or of the hooks stream, the exit of the process, the answer of a hook call), and carries out
//! the [`Action`]s it drains with [`Lifecycle::poll_action`]: launch a process, end the
//! connection, kill, (re-)activate, deactivate, answer the user, report an [`Event`].
//! [`Lifecycle::poll_timeout`] gives the next moment at which time alone changes something (the
//! start timeout, HS-4; the deactivation timeout, LIFE-16; the grace period, LIFE-7 and LIFE-17;
//! the restart delay, LIFE-8 and LIFE-9); the user calls [`Lifecycle::handle_timeout`] then.
//!
//! The machine keeps the rules that are about order and time: at most one plugin process at a
//! time (LIFE-7), the failed start that leaves nothing behind (LIFE-4, LIFE-5), the crash that
//! ends the connection (LIFE-6), the relaunch after the delay with the backoff (LIFE-8 to
//! LIFE-10) and the re-activation (LIFE-11), the failed restart attempt (LIFE-12), giving up
//! (LIFE-13), hook calls while the plugin is down (LIFE-14), and the stop in every state
//! (LIFE-16 to LIFE-20, LIFE-22, LIFE-23). Reaping a process (LIFE-19) is the user's: it reports
//! an exit with [`Lifecycle::exited`] once it has reaped the process.
//!
//! Inputs that do not apply to the current state (an announcement while Running, say, or an
//! exit when no process runs) are ignored, so that a user whose threads report events in any
//! order cannot drive the machine into a state the table does not have.
//!
//! Files: this one holds the constants and the [`Settings`]; `events.rs` the states, events,
//! actions and errors the machine speaks in; `machine.rs` the machine, [`Lifecycle`].

use std::time::Duration;

mod events;
mod machine;

pub use events::{Action, CrashCause, Event, Exit, NotRunning, StartFailure, StartRefused, State};
pub use machine::Lifecycle;

/// How long a host waits for the announcement by default, from before the launch (HS-4).
pub const START_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a conforming plugin takes at most to exit once its connection has ended (TRANS-9).
pub const EXIT_BOUND: Duration = Duration::from_secs(5);
/// How long a stop waits for the answer to `OnDeactivate` by default (LIFE-16).
pub const DEACTIVATE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a host gives a plugin to exit after it ended the connection, before it kills it, by
/// default (LIFE-7, LIFE-17): EXIT_BOUND and a margin of one second.
pub const STOP_GRACE: Duration = Duration::from_secs(6);
/// The shortest delay before a relaunch (LIFE-8).
pub const RESTART_DELAY_MIN: Duration = Duration::from_secs(1);
/// The longest delay before a relaunch that LIFE-9 recommends.
pub const RESTART_DELAY_MAX: Duration = Duration::from_secs(30);
/// How long a plugin runs without a crash before its failures in a row go back to zero
/// (LIFE-10).
pub const STABLE_PERIOD: Duration = Duration::from_secs(60);

/// The settings of one supervisor. [`Default`] gives the constants of `spec/README.md` and a
/// supervisor that never gives up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long a start or a relaunch waits for the announcement (HS-4).
    pub start_timeout: Duration,
    /// The delay after the first failure in a row; raised to [`RESTART_DELAY_MIN`] if below it
    /// (LIFE-8) and doubled for each further failure (LIFE-9).
    pub restart_delay: Duration,
    /// The longest delay before a relaunch (LIFE-9); never below the first delay.
    pub restart_delay_max: Duration,
    /// The running time after which the failures in a row go back to zero (LIFE-10).
    pub stable_period: Duration,
    /// Give up when a failure would need relaunch number `max_restarts + 1` in a row (LIFE-13);
    /// `None` relaunches for ever.
    pub max_restarts: Option<u32>,
    /// The bound of the `OnDeactivate` call of a stop (LIFE-16).
    pub deactivate_timeout: Duration,
    /// The time the plugin has to exit after the connection ended, before the kill (LIFE-7,
    /// LIFE-17, LIFE-18).
    pub stop_grace: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            start_timeout: START_TIMEOUT,
            restart_delay: RESTART_DELAY_MIN,
            restart_delay_max: RESTART_DELAY_MAX,
            stable_period: STABLE_PERIOD,
            max_restarts: None,
            deactivate_timeout: DEACTIVATE_TIMEOUT,
            stop_grace: STOP_GRACE,
        }
    }
}

impl Settings {
    /// The delay before the relaunch that follows the `failures`-th failure in a row (LIFE-8,
    /// LIFE-9, Table 6-2): the first delay doubled `failures - 1` times, at most the longest.
    pub fn restart_delay(&self, failures: u32) -> Duration {
        let first = self.restart_delay.max(RESTART_DELAY_MIN);
        let max = self.restart_delay_max.max(first);
        let doublings = failures.saturating_sub(1).min(31);
        first
            .checked_mul(1 << doublings)
            .map_or(max, |d| d.min(max))
    }

    /// Whether a supervisor with `failures` failures in a row gives up (LIFE-13).
    pub fn gives_up(&self, failures: u32) -> bool {
        self.max_restarts.is_some_and(|max| failures > max)
    }
}
