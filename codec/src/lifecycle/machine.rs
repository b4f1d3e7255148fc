//! [`Lifecycle`]: Table 6-1's transitions, rows L1 to L23 (`spec/06-lifecycle.md`), with time
//! as a parameter; see the module documentation of [`super`].

use std::collections::VecDeque;
use std::time::Instant;

use super::{
    Action, CrashCause, Event, Exit, NotRunning, Settings, StartFailure, StartRefused, State,
};

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
                self.backoff(now, CrashCause::RestartFailed(StartFailure::Timeout))
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
                Err(e) => self.backoff(now, CrashCause::ReactivationFailed(e)),
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
            Phase::Restarting { announced, .. } => self.backoff(
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
            } => self.backoff(now, CrashCause::HooksStreamEnded),
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
            } => self.backoff(now, CrashCause::RestartFailed(failure)),
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

    /// Enters Backoff after a crash (L7) or a failed restart attempt (L16): ends the
    /// connection, gives the process its grace period (LIFE-6, LIFE-7); the crash is reported
    /// once the process is gone.
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
