//! The sans-I/O [`Lifecycle`] under random sequences of inputs, with a simulated world (the
//! process, the connection) that reacts to its actions the way processes and pipes can:
//! never two processes at once, every process reaped, nothing left after a stop, every stop
//! answered, the restart delay within its bounds (LIFE-7, LIFE-8, LIFE-9, LIFE-13, LIFE-19,
//! LIFE-20, LIFE-22).

use std::time::{Duration, Instant};

use proptest::prelude::*;
use rpcplugin_codec::lifecycle::{Action, Event, Exit, Lifecycle, Settings, State};

#[derive(Debug, Clone)]
enum Op {
    Start,
    Stop,
    Launched(bool),
    Announced,
    HandshakeFailed,
    ConnectionEnded,
    HooksEnded,
    Exited(i32),
    Activate(bool),
    Deactivate,
    Reactivated(bool),
    DeactivationDone,
    Advance(u64),
    /// A wake-up with nothing due, as a timer thread may have (the machine must not act).
    Tick,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => Just(Op::Start),
        2 => Just(Op::Stop),
        3 => any::<bool>().prop_map(Op::Launched),
        3 => Just(Op::Announced),
        1 => Just(Op::HandshakeFailed),
        1 => Just(Op::ConnectionEnded),
        1 => Just(Op::HooksEnded),
        2 => (0..3i32).prop_map(Op::Exited),
        2 => any::<bool>().prop_map(Op::Activate),
        1 => Just(Op::Deactivate),
        2 => any::<bool>().prop_map(Op::Reactivated),
        1 => Just(Op::DeactivationDone),
        4 => (0..70_000u64).prop_map(Op::Advance),
        2 => Just(Op::Tick),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proc {
    None,
    Launching,
    Alive { connected: bool, killed: bool },
}

/// The world the lifecycle's actions act on, and the checks of what it is asked to do.
struct World {
    lc: Lifecycle,
    t0: Instant,
    now: Duration,
    proc: Proc,
    stops: usize,
    stops_done: usize,
    launches: usize,
    failed_launches: usize,
    reaped: usize,
}

impl World {
    fn new(settings: Settings) -> World {
        World {
            lc: Lifecycle::new(settings),
            t0: Instant::now(),
            now: Duration::ZERO,
            proc: Proc::None,
            stops: 0,
            stops_done: 0,
            launches: 0,
            failed_launches: 0,
            reaped: 0,
        }
    }

    fn at(&self) -> Instant {
        self.t0 + self.now
    }

    fn drain(&mut self) -> Result<(), TestCaseError> {
        while let Some(a) = self.lc.poll_action() {
            match a {
                Action::Launch => {
                    prop_assert_eq!(self.proc, Proc::None, "LIFE-7: a second process");
                    self.proc = Proc::Launching;
                    self.launches += 1;
                }
                Action::EndConnection => {
                    if let Proc::Alive { killed, .. } = self.proc {
                        self.proc = Proc::Alive {
                            connected: false,
                            killed,
                        };
                    }
                }
                Action::Kill => match self.proc {
                    Proc::Alive { connected, killed } => {
                        prop_assert!(!killed, "killed twice");
                        self.proc = Proc::Alive {
                            connected,
                            killed: true,
                        };
                    }
                    other => prop_assert!(false, "a kill without a process: {:?}", other),
                },
                Action::StopDone { .. } => self.stops_done += 1,
                Action::Report(Event::Crashed {
                    delay: Some(delay), ..
                }) => {
                    let s = self.lc.settings();
                    prop_assert!(delay >= Duration::from_secs(1), "LIFE-8: {:?}", delay);
                    prop_assert!(
                        delay
                            <= s.restart_delay_max
                                .max(s.restart_delay)
                                .max(Duration::from_secs(1)),
                        "LIFE-9: {:?}",
                        delay
                    );
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        match self.lc.state() {
            State::Stopped | State::Failed => {
                prop_assert_eq!(self.proc, Proc::None, "a process left behind");
                prop_assert!(!self.lc.has_process());
                prop_assert_eq!(self.lc.poll_timeout(), None, "something pending");
            }
            State::Running => {
                let alive = matches!(self.proc, Proc::Alive { .. });
                prop_assert!(alive, "Running without a process");
            }
            _ => {}
        }
        prop_assert_eq!(self.lc.has_process(), self.proc != Proc::None);
        prop_assert!(self.stops_done <= self.stops);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let now = self.at();
        match *op {
            Op::Start => {
                let _ = self.lc.start(now);
            }
            Op::Stop => {
                self.stops += 1;
                self.lc.stop(now);
            }
            Op::Launched(ok) if self.proc == Proc::Launching => {
                if ok {
                    self.proc = Proc::Alive {
                        connected: true,
                        killed: false,
                    };
                    self.lc.launched(now, Ok(()));
                } else {
                    self.proc = Proc::None;
                    self.failed_launches += 1;
                    self.lc.launched(now, Err("failed".into()));
                }
            }
            Op::Announced | Op::HandshakeFailed | Op::ConnectionEnded | Op::HooksEnded => {
                if let Proc::Alive {
                    connected: true,
                    killed,
                } = self.proc
                {
                    match op {
                        Op::Announced => self.lc.announced(now),
                        Op::HandshakeFailed => self.lc.handshake_failed(now, "bad".into()),
                        Op::HooksEnded => self.lc.hooks_stream_ended(now),
                        _ => {
                            self.proc = Proc::Alive {
                                connected: false,
                                killed,
                            };
                            self.lc.connection_ended(now);
                        }
                    }
                }
            }
            Op::Exited(code) => {
                if let Proc::Alive { killed, .. } = self.proc {
                    self.proc = Proc::None;
                    self.reaped += 1;
                    let exit = if killed {
                        Exit::Signal(9)
                    } else {
                        Exit::Status(code)
                    };
                    self.lc.exited(now, exit);
                }
            }
            Op::Activate(ok) => {
                if self.lc.hook_call().is_ok() {
                    if ok {
                        self.lc.activation_succeeded(b"{}".to_vec());
                    } else {
                        self.lc.activation_failed();
                    }
                }
            }
            Op::Deactivate => {
                if self.lc.hook_call().is_ok() {
                    self.lc.deactivation_called();
                }
            }
            Op::Reactivated(ok) => {
                let result = if ok { Ok(()) } else { Err("no".into()) };
                self.lc.reactivated(now, result);
            }
            Op::DeactivationDone => self.lc.deactivation_done(now),
            Op::Tick => self.lc.handle_timeout(now),
            Op::Advance(ms) => {
                self.now += Duration::from_millis(ms);
                self.fire()?;
            }
            Op::Launched(_) => {}
        }
        self.drain()?;
        self.check()
    }

    /// Handles every timeout due by now.
    fn fire(&mut self) -> Result<(), TestCaseError> {
        for _ in 0..100 {
            match self.lc.poll_timeout() {
                Some(t) if t <= self.at() => {
                    self.lc.handle_timeout(self.at());
                    self.drain()?;
                }
                _ => return Ok(()),
            }
        }
        prop_assert!(false, "a timeout that does not go away");
        Ok(())
    }

    /// Stops and lets the world run: a process that was killed or lost its connection exits,
    /// a launch completes; time moves to each deadline.
    fn stop_and_settle(&mut self) -> Result<(), TestCaseError> {
        self.stops += 1;
        self.lc.stop(self.at());
        self.drain()?;
        for _ in 0..50 {
            match self.proc {
                Proc::Launching => self.apply(&Op::Launched(true))?,
                Proc::Alive {
                    connected: false, ..
                }
                | Proc::Alive { killed: true, .. } => self.apply(&Op::Exited(0))?,
                _ => match self.lc.poll_timeout() {
                    Some(t) => {
                        self.now = t.duration_since(self.t0);
                        self.fire()?;
                    }
                    None => break,
                },
            }
        }
        Ok(())
    }
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        prop::option::of(0..4u32),
        0..3_000u64,
        0..40_000u64,
        0..100_000u64,
    )
        .prop_map(|(max_restarts, first, max, stable)| Settings {
            max_restarts,
            restart_delay: Duration::from_millis(first),
            restart_delay_max: Duration::from_millis(max),
            stable_period: Duration::from_millis(stable),
            ..Settings::default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    // covers: LIFE-7, LIFE-8, LIFE-9, LIFE-13, LIFE-19, LIFE-20, LIFE-22
    #[test]
    fn any_sequence_keeps_one_process_and_ends_stopped(settings in settings(), ops in prop::collection::vec(op(), 0..60)) {
        let mut w = World::new(settings);
        for op in &ops {
            w.apply(op)?;
        }
        w.stop_and_settle()?;
        prop_assert_eq!(w.lc.state(), State::Stopped);
        prop_assert_eq!(w.proc, Proc::None, "every process gone");
        prop_assert_eq!(w.stops_done, w.stops, "every stop answered once");
        prop_assert_eq!(w.launches, w.reaped + w.failed_launches, "every process reaped");
        prop_assert_eq!(w.lc.poll_timeout(), None, "nothing pending");
        // A stop of a stopped supervisor is answered at once (LIFE-20, L22).
        w.stops += 1;
        w.lc.stop(w.at());
        w.drain()?;
        prop_assert_eq!(w.stops_done, w.stops);
    }
}
