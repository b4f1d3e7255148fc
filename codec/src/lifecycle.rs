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

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

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

/// What the user of a [`Lifecycle`] has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the pipes and launch a plugin process (chapter 01); then report the outcome with
    /// [`Lifecycle::launched`].
    Launch,
    /// End the connection: close both pipe ends (TRANS-8).
    EndConnection,
    /// Kill the plugin process (`SIGKILL`, LIFE-7, LIFE-18).
    Kill,
    /// Activate the relaunched plugin with the configuration of its last activation (L14,
    /// LIFE-11); then report the outcome with [`Lifecycle::reactivated`].
    Activate {
        /// The configuration, as the user gave it to [`Lifecycle::activation_succeeded`].
        config: Vec<u8>,
    },
    /// Call `OnDeactivate` (L9, LIFE-16); then report its end with
    /// [`Lifecycle::deactivation_done`].
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

/// The plugin process, as far as the machine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Process {
    /// None: never launched, or reaped.
    None,
    /// [`Action::Launch`] was given; [`Lifecycle::launched`] has not come yet.
    Launching,
    /// Launched and not reaped yet.
    Alive {
        /// Whether [`Action::Kill`] was given.
        killed: bool,
    },
}

/// Where a stop is (L18, L19).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StopStep {
    /// `OnDeactivate` is pending, until this moment (L9, L18).
    Deactivating { until: Instant },
    /// The connection has ended; the kill comes at this moment (L17, L19).
    Grace { kill_at: Instant },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    Stopped,
    Failed,
    /// L1 to L5. `failure` once the start has failed and the process is being made to go.
    Starting {
        deadline: Instant,
        failure: Option<StartFailure>,
    },
    Running {
        since: Instant,
    },
    /// L10 to L12. The crash report waits for the process to be gone.
    Backoff {
        detected: Instant,
        failures: u32,
        kill_at: Instant,
        /// The crash to report once the process is gone; `None` once reported.
        cause: Option<CrashCause>,
    },
    /// L13 to L17. `deadline` until the announcement; `reactivating` once it came.
    Restarting {
        failures: u32,
        deadline: Instant,
        announced: bool,
    },
    Stopping {
        step: StopStep,
    },
}

/// One supervisor's life cycle: see the module documentation.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    settings: Settings,
    phase: Phase,
    process: Process,
    connected: bool,
    /// The configuration of the plugin's activation, if it is activated (L6, LIFE-11).
    activation: Option<Vec<u8>>,
    /// Failures in a row (LIFE-9), kept across Running for the stable period (LIFE-10).
    failures: u32,
    /// Stops of the user not answered yet (L21).
    stops: usize,
    actions: VecDeque<Action>,
}

impl Lifecycle {
    /// A supervisor in Stopped.
    pub fn new(settings: Settings) -> Lifecycle {
        Lifecycle {
            settings,
            phase: Phase::Stopped,
            process: Process::None,
            connected: false,
            activation: None,
            failures: 0,
            stops: 0,
            actions: VecDeque::new(),
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The state of Table 6-1.
    pub fn state(&self) -> State {
        match &self.phase {
            Phase::Stopped => State::Stopped,
            Phase::Failed => State::Failed,
            Phase::Starting { .. } => State::Starting,
            Phase::Running { .. } => State::Running,
            Phase::Backoff { failures, .. } => State::Backoff {
                failures: *failures,
            },
            Phase::Restarting { failures, .. } => State::Restarting {
                failures: *failures,
            },
            Phase::Stopping { .. } => State::Stopping,
        }
    }

    /// The failures in a row (LIFE-9, LIFE-10).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether the plugin is activated, and with which configuration (L6, LIFE-11).
    pub fn activation(&self) -> Option<&[u8]> {
        self.activation.as_deref()
    }

    /// Whether a plugin process may be running: launched or being launched, not yet reaped.
    pub fn has_process(&self) -> bool {
        self.process != Process::None
    }

    /// The next action to carry out, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// The next moment at which time alone changes something, if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.phase {
            Phase::Stopped | Phase::Failed | Phase::Running { .. } => None,
            Phase::Starting { deadline, failure } => failure.is_none().then_some(*deadline),
            Phase::Backoff {
                detected,
                failures,
                kill_at,
                ..
            } => match self.process {
                Process::Alive { killed: false } => Some(*kill_at),
                Process::Alive { killed: true } | Process::Launching => None,
                Process::None => Some(*detected + self.settings.restart_delay(*failures)),
            },
            Phase::Restarting {
                deadline,
                announced,
                ..
            } => (!announced).then_some(*deadline),
            Phase::Stopping { step } => match (step, self.process) {
                (StopStep::Deactivating { until }, _) => Some(*until),
                (StopStep::Grace { kill_at }, Process::Alive { killed: false }) => Some(*kill_at),
                (StopStep::Grace { .. }, _) => None,
            },
        }
    }

    /// Time has passed: carries out what falls due at `now` (HS-4, L4, L10, L16, L18, L19).
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase.clone() {
            Phase::Starting {
                deadline,
                failure: None,
            } if now >= deadline => self.start_fails(StartFailure::Timeout),
            Phase::Backoff {
                detected,
                failures,
                kill_at,
                ..
            } => match self.process {
                Process::Alive { killed: false } if now >= kill_at => self.kill(),
                Process::None if now >= detected + self.settings.restart_delay(failures) => {
                    // L10: the delay has expired and the old process is gone.
                    self.phase = Phase::Restarting {
                        failures,
                        deadline: now + self.settings.start_timeout,
                        announced: false,
                    };
                    self.launch();
                }
                _ => {}
            },
            Phase::Restarting {
                deadline,
                announced: false,
                ..
            } if now >= deadline => {
                self.restart_fails(now, CrashCause::RestartFailed(StartFailure::Timeout))
            }
            Phase::Stopping {
                step: StopStep::Deactivating { until },
            } if now >= until => self.deactivation_over(now),
            Phase::Stopping {
                step: StopStep::Grace { kill_at },
            } if now >= kill_at => {
                self.kill(); // L19: a no-op once killed or gone
            }
            _ => {}
        }
    }

    /// The user asks for a start (L1).
    pub fn start(&mut self, now: Instant) -> Result<(), StartRefused> {
        if !matches!(self.phase, Phase::Stopped | Phase::Failed) {
            return Err(StartRefused(self.state()));
        }
        self.failures = 0;
        self.activation = None;
        self.phase = Phase::Starting {
            deadline: now + self.settings.start_timeout,
            failure: None,
        };
        self.launch();
        Ok(())
    }

    /// The launch asked for by [`Action::Launch`] is done: `Ok` with a running process and
    /// the connection open, or the launch error (L2, L16).
    pub fn launched(&mut self, now: Instant, result: Result<(), String>) {
        if self.process != Process::Launching {
            return;
        }
        let Ok(()) = result else {
            let Err(e) = result else { unreachable!() };
            self.process = Process::None;
            match self.phase.clone() {
                Phase::Starting { failure, .. } => {
                    self.start_failed(failure.unwrap_or(StartFailure::Launch(e)))
                }
                Phase::Restarting { .. } => {
                    self.backoff(now, CrashCause::RestartFailed(StartFailure::Launch(e)));
                    self.crash_reaped(None);
                }
                Phase::Backoff { .. } => self.crash_reaped(None),
                Phase::Stopping { .. } => self.stopped(None, false),
                _ => {}
            }
            return;
        };
        self.process = Process::Alive { killed: false };
        self.connected = true;
        match self.phase {
            Phase::Starting {
                failure: Some(_), ..
            } => {
                // The start failed (its timeout) while the launch was under way (L4).
                self.end_connection();
                self.kill();
            }
            Phase::Backoff { .. } => {
                // The restart attempt failed while the launch was under way (L16): the new
                // process gets the grace period of the failure, then the kill.
                self.end_connection();
            }
            Phase::Stopping { .. } => {
                // A stop came during the launch (L5, L17): the connection ends at once.
                self.phase = Phase::Stopping {
                    step: StopStep::Grace {
                        kill_at: now + self.settings.stop_grace,
                    },
                };
                self.end_connection();
            }
            _ => {}
        }
    }

    /// A valid announcement arrived; the user has connected the hooks stream (L3, L13, L14).
    pub fn announced(&mut self, now: Instant) {
        match self.phase {
            Phase::Starting { failure: None, .. } => {
                self.phase = Phase::Running { since: now };
                self.push(Action::StartDone(Ok(())));
                self.push(Action::Report(Event::Started));
            }
            Phase::Restarting {
                failures,
                deadline,
                announced: false,
            } => match self.activation.clone() {
                Some(config) => {
                    // L14: re-activate before the plugin counts as Running (LIFE-11).
                    self.phase = Phase::Restarting {
                        failures,
                        deadline,
                        announced: true,
                    };
                    self.push(Action::Activate { config });
                }
                None => {
                    self.phase = Phase::Running { since: now };
                    self.push(Action::Report(Event::Restarted { reactivated: false }));
                }
            },
            _ => {}
        }
    }

    /// The re-activation of [`Action::Activate`] succeeded or failed (L15, L16).
    pub fn reactivated(&mut self, now: Instant, result: Result<(), String>) {
        if let Phase::Restarting {
            announced: true, ..
        } = self.phase
        {
            match result {
                Ok(()) => {
                    self.phase = Phase::Running { since: now };
                    self.push(Action::Report(Event::Restarted { reactivated: true }));
                }
                Err(e) => self.restart_fails(now, CrashCause::ReactivationFailed(e)),
            }
        }
    }

    /// A handshake error or a connection error before the announcement (L4, L16).
    pub fn handshake_failed(&mut self, now: Instant, reason: String) {
        self.before_announcement_fails(now, StartFailure::Handshake(reason));
    }

    /// The connection ended: end-of-file, a failed write, a connection error the user's codec
    /// detected (L4, L7, L16; in Stopping, the end of the deactivation, L18).
    pub fn connection_ended(&mut self, now: Instant) {
        // The host still closes its own pipe ends (TRANS-8): each transition below ends the
        // connection as the host's action too.
        if !self.connected {
            return;
        }
        match self.phase {
            Phase::Starting { failure: None, .. } => self.start_fails(StartFailure::EndOfInput),
            Phase::Running { since } => self.crash(now, since, CrashCause::ConnectionEnded),
            Phase::Restarting { announced, .. } => self.restart_fails(
                now,
                if announced {
                    CrashCause::ConnectionEnded
                } else {
                    CrashCause::RestartFailed(StartFailure::EndOfInput)
                },
            ),
            Phase::Stopping {
                step: StopStep::Deactivating { .. },
            } => self.deactivation_over(now),
            _ => {}
        }
    }

    /// The hooks stream ended while the connection lasts (L7, L16; in Stopping, L18).
    pub fn hooks_stream_ended(&mut self, now: Instant) {
        match self.phase {
            Phase::Running { since } => self.crash(now, since, CrashCause::HooksStreamEnded),
            Phase::Restarting {
                announced: true, ..
            } => self.restart_fails(now, CrashCause::HooksStreamEnded),
            Phase::Stopping {
                step: StopStep::Deactivating { .. },
            } => self.deactivation_over(now),
            _ => {}
        }
    }

    /// The plugin process exited and the user has reaped it (LIFE-19): L4, L7, L16, L20, and
    /// the old process of Backoff (L10, L11).
    pub fn exited(&mut self, now: Instant, exit: Exit) {
        let Process::Alive { killed } = self.process else {
            return;
        };
        match self.phase.clone() {
            Phase::Starting { failure, .. } => {
                self.process = Process::None;
                if self.connected {
                    self.end_connection();
                }
                self.start_failed(failure.unwrap_or(StartFailure::Exited(exit)));
            }
            Phase::Running { since } => {
                self.crash(now, since, CrashCause::Exited);
                self.process = Process::None;
                self.crash_reaped(Some(exit));
            }
            Phase::Restarting { announced, .. } => {
                let cause = if announced {
                    CrashCause::Exited
                } else {
                    CrashCause::RestartFailed(StartFailure::Exited(exit))
                };
                self.backoff(now, cause);
                self.process = Process::None;
                self.crash_reaped(Some(exit));
            }
            Phase::Backoff { .. } => {
                self.process = Process::None;
                self.crash_reaped(Some(exit));
            }
            Phase::Stopping { .. } => {
                // L20, at any step of the stop.
                self.process = Process::None;
                if self.connected {
                    self.end_connection();
                }
                self.stopped(Some(exit), killed);
            }
            Phase::Stopped | Phase::Failed => self.process = Process::None,
        }
    }

    /// A hook call of the user: allowed only while Running (L6, L23, LIFE-14).
    pub fn hook_call(&self) -> Result<(), NotRunning> {
        match self.phase {
            Phase::Running { .. } => Ok(()),
            _ => Err(NotRunning(self.state())),
        }
    }

    /// The user's `OnActivate` succeeded with this configuration: the plugin is activated
    /// (L6, RPC-16).
    pub fn activation_succeeded(&mut self, config: Vec<u8>) {
        if let Phase::Running { .. } = self.phase {
            self.activation = Some(config);
        }
    }

    /// The user's `OnActivate` failed, also because the plugin crashed meanwhile: the plugin
    /// is not activated, and a relaunch does not activate it (RPC-16, LIFE-15).
    pub fn activation_failed(&mut self) {
        self.activation = None;
    }

    /// The user called `OnDeactivate`: the plugin is no longer activated (L6).
    pub fn deactivation_called(&mut self) {
        self.activation = None;
    }

    /// The `OnDeactivate` of a stop was answered, or failed (L18).
    pub fn deactivation_done(&mut self, now: Instant) {
        if let Phase::Stopping {
            step: StopStep::Deactivating { .. },
        } = self.phase
        {
            self.deactivation_over(now);
        }
    }

    /// The user asks for a stop (L5, L9, L12, L17, L21, L22). It is answered by one
    /// [`Action::StopDone`], once the supervisor is Stopped.
    pub fn stop(&mut self, now: Instant) {
        self.stops += 1;
        match self.phase.clone() {
            Phase::Stopped | Phase::Failed => self.stopped(None, false), // L22
            Phase::Stopping { .. } => {}                                 // L21
            Phase::Starting { failure, .. } => {
                // L5: the start fails, and the stop goes on without deactivation.
                let failure = failure.unwrap_or(StartFailure::Stopped);
                self.push(Action::StartDone(Err(failure.clone())));
                self.push(Action::Report(Event::StartFailed(failure)));
                self.stop_without_deactivation(now, now + self.settings.stop_grace);
            }
            Phase::Running { .. } => {
                if self.activation.is_some() {
                    // L9: deactivate first (LIFE-16).
                    self.phase = Phase::Stopping {
                        step: StopStep::Deactivating {
                            until: now + self.settings.deactivate_timeout,
                        },
                    };
                    self.push(Action::Deactivate);
                } else {
                    self.stop_without_deactivation(now, now + self.settings.stop_grace);
                }
            }
            Phase::Backoff { kill_at, .. } => {
                // L12: the relaunch is cancelled at once (LIFE-22); an old process still
                // running gets the rest of its grace period, then the kill.
                self.stop_without_deactivation(now, kill_at);
            }
            Phase::Restarting { .. } => {
                // L17
                self.stop_without_deactivation(now, now + self.settings.stop_grace);
            }
        }
    }

    fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    fn launch(&mut self) {
        debug_assert_eq!(self.process, Process::None, "LIFE-7: one process at a time");
        self.process = Process::Launching;
        self.push(Action::Launch);
    }

    fn end_connection(&mut self) {
        self.connected = false;
        self.push(Action::EndConnection);
    }

    fn kill(&mut self) {
        if let Process::Alive { killed: false } = self.process {
            self.process = Process::Alive { killed: true };
            self.push(Action::Kill);
        }
    }

    /// L2, L4: the start has failed; the process, if any, is made to go first.
    fn start_fails(&mut self, failure: StartFailure) {
        let Phase::Starting { deadline, .. } = self.phase else {
            return;
        };
        if self.connected {
            self.end_connection();
        }
        match self.process {
            Process::None => self.start_failed(failure),
            _ => {
                self.phase = Phase::Starting {
                    deadline,
                    failure: Some(failure),
                };
                self.kill(); // L4: "kill the process if it has not exited"
            }
        }
    }

    fn before_announcement_fails(&mut self, now: Instant, failure: StartFailure) {
        match self.phase {
            Phase::Starting { failure: None, .. } => self.start_fails(failure),
            Phase::Restarting {
                announced: false, ..
            } => self.restart_fails(now, CrashCause::RestartFailed(failure)),
            _ => {}
        }
    }

    /// The failed start is over: no process is left (L2, L4; LIFE-4, LIFE-5).
    fn start_failed(&mut self, failure: StartFailure) {
        self.phase = Phase::Stopped;
        self.push(Action::StartDone(Err(failure.clone())));
        self.push(Action::Report(Event::StartFailed(failure)));
    }

    /// L7: a crash of a Running plugin.
    fn crash(&mut self, now: Instant, since: Instant, cause: CrashCause) {
        if now.saturating_duration_since(since) >= self.settings.stable_period {
            self.failures = 0; // LIFE-10
        }
        self.backoff(now, cause);
    }

    /// L16: a restart attempt failed while its process runs (or is being launched).
    fn restart_fails(&mut self, now: Instant, cause: CrashCause) {
        self.backoff(now, cause);
    }

    /// Enters Backoff: ends the connection, gives the process its grace period (LIFE-6,
    /// LIFE-7); the crash is reported once the process is gone.
    fn backoff(&mut self, now: Instant, cause: CrashCause) {
        self.failures = self.failures.saturating_add(1);
        if self.connected {
            self.end_connection();
        }
        self.phase = Phase::Backoff {
            detected: now,
            failures: self.failures,
            kill_at: now + self.settings.stop_grace,
            cause: Some(cause),
        };
    }

    /// The process of a crash is gone: the crash is reported, and the host gives up or waits
    /// for the delay (L10, L11).
    fn crash_reaped(&mut self, exit: Option<Exit>) {
        let Phase::Backoff {
            detected,
            failures,
            kill_at,
            cause,
            ..
        } = self.phase.clone()
        else {
            return;
        };
        let Some(cause) = cause else {
            return;
        };
        let gives_up = self.settings.gives_up(failures);
        let delay = (!gives_up).then(|| self.settings.restart_delay(failures));
        self.push(Action::Report(Event::Crashed {
            cause,
            exit,
            failures,
            delay,
        }));
        if gives_up {
            self.phase = Phase::Failed;
            self.push(Action::Report(Event::GaveUp { failures }));
        } else {
            self.phase = Phase::Backoff {
                detected,
                failures,
                kill_at,
                cause: None,
            };
        }
    }

    /// A stop that ends the connection at once (L5, L12, L17, and L9 without activation).
    fn stop_without_deactivation(&mut self, now: Instant, kill_at: Instant) {
        match self.process {
            Process::None => self.stopped(None, false),
            Process::Launching => {
                self.phase = Phase::Stopping {
                    step: StopStep::Grace { kill_at },
                };
            }
            Process::Alive { killed } => {
                self.phase = Phase::Stopping {
                    step: StopStep::Grace { kill_at },
                };
                if self.connected {
                    self.end_connection();
                }
                if !killed && now >= kill_at {
                    self.kill();
                }
            }
        }
    }

    /// L18: the deactivation is over; the connection ends and the grace period starts.
    fn deactivation_over(&mut self, now: Instant) {
        self.phase = Phase::Stopping {
            step: StopStep::Grace {
                kill_at: now + self.settings.stop_grace,
            },
        };
        if self.connected {
            self.end_connection();
        }
    }

    /// The stop is complete (L20, L22): every waiting stop is answered, the first with how the
    /// process ended (L21).
    fn stopped(&mut self, exit: Option<Exit>, killed: bool) {
        self.phase = Phase::Stopped;
        self.activation = None;
        let mut first = true;
        while self.stops > 0 {
            self.stops -= 1;
            let (exit, killed) = if first { (exit, killed) } else { (None, false) };
            first = false;
            self.push(Action::StopDone { exit, killed });
            self.push(Action::Report(Event::Stopped { exit, killed }));
        }
    }
}
