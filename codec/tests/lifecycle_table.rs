//! Table 6-1 of `spec/06-lifecycle.md`, row by row: each test drives the sans-I/O
//! [`Lifecycle`] with virtual time through one row and checks the next state and the actions.

use std::time::{Duration, Instant};

use rpcplugin_codec::lifecycle::{
    Action, CrashCause, Event, Exit, Lifecycle, NotRunning, Settings, StartFailure, State,
    RESTART_DELAY_MIN, STOP_GRACE,
};

const S: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// A lifecycle and its virtual clock.
struct Sup {
    lc: Lifecycle,
    t0: Instant,
}

impl Sup {
    fn new() -> Sup {
        Sup::with(Settings::default())
    }

    fn with(settings: Settings) -> Sup {
        Sup {
            lc: Lifecycle::new(settings),
            t0: Instant::now(),
        }
    }

    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    fn actions(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.lc.poll_action()).collect()
    }

    /// Starting at 0 with the process launched.
    fn starting(&mut self) {
        self.lc.start(self.at(Duration::ZERO)).unwrap();
        self.lc.launched(self.at(Duration::ZERO), Ok(()));
        assert_eq!(self.actions(), [Action::Launch]);
    }

    /// Running since 10 ms.
    fn running(&mut self) {
        self.starting();
        self.lc.announced(self.at(10 * MS));
        self.actions();
    }

    /// Running and activated with `{}`.
    fn activated(&mut self) {
        self.running();
        self.lc.hook_call().unwrap();
        self.lc.activation_succeeded(b"{}".to_vec());
    }

    /// Crashed at 1 s (the process exited with status 2): Backoff, process gone.
    fn backoff(&mut self) {
        self.running();
        self.lc.exited(self.at(S), Exit::Status(2));
        self.actions();
    }

    /// Relaunched at 2 s: Restarting, the new process launched.
    fn restarting(&mut self) {
        self.backoff();
        self.lc.handle_timeout(self.at(2 * S));
        self.lc.launched(self.at(2 * S), Ok(()));
        assert_eq!(self.actions(), [Action::Launch]);
    }
}

fn crashed(cause: CrashCause, exit: Option<Exit>, failures: u32, delay: Duration) -> Action {
    Action::Report(Event::Crashed {
        cause,
        exit,
        failures,
        delay: Some(delay),
    })
}

fn stopped(exit: Option<Exit>, killed: bool) -> [Action; 2] {
    [
        Action::StopDone { exit, killed },
        Action::Report(Event::Stopped { exit, killed }),
    ]
}

// covers: LIFE-20
#[test]
fn a_new_supervisor_is_stopped_with_nothing_pending() {
    let mut s = Sup::new();
    assert_eq!(s.lc.state(), State::Stopped);
    assert_eq!(s.lc.poll_timeout(), None);
    assert!(!s.lc.has_process());
    assert_eq!(s.actions(), []);
}

// covers: HS-4, LIFE-5
#[test]
fn l1_start_launches_and_starts_the_start_timer() {
    let mut s = Sup::new();
    s.lc.start(s.at(Duration::ZERO)).unwrap();
    assert_eq!(s.lc.state(), State::Starting);
    assert_eq!(s.actions(), [Action::Launch]);
    assert_eq!(s.lc.poll_timeout(), Some(s.at(3 * S)));
    assert!(s.lc.has_process());
    // From Failed too, with the failures in a row back at 0.
    let mut s = Sup::with(Settings {
        max_restarts: Some(0),
        ..Settings::default()
    });
    s.backoff();
    assert_eq!(s.lc.state(), State::Failed);
    s.lc.start(s.at(5 * S)).unwrap();
    assert_eq!(s.lc.state(), State::Starting);
    assert_eq!(s.lc.failures(), 0);
    assert_eq!(s.actions(), [Action::Launch]);
    // Not in other states: outside protocol 1.
    let mut s = Sup::new();
    s.running();
    assert_eq!(
        s.lc.start(s.at(S)).unwrap_err().to_string(),
        "the plugin is running: only a stopped or failed plugin can be started"
    );
}

// covers: LIFE-4, LIFE-5
#[test]
fn l2_starting_a_failed_launch_fails_the_start() {
    let mut s = Sup::new();
    s.lc.start(s.at(Duration::ZERO)).unwrap();
    s.actions();
    s.lc.launched(s.at(MS), Err("no such file".into()));
    let failure = StartFailure::Launch("no such file".into());
    assert_eq!(
        s.actions(),
        [
            Action::StartDone(Err(failure.clone())),
            Action::Report(Event::StartFailed(failure)),
        ]
    );
    assert_eq!(s.lc.state(), State::Stopped);
    assert!(!s.lc.has_process());
    assert_eq!(s.lc.poll_timeout(), None, "nothing scheduled");
}

// covers: HS-7
#[test]
fn l3_starting_a_valid_announcement_makes_it_running() {
    let mut s = Sup::new();
    s.starting();
    s.lc.announced(s.at(10 * MS));
    assert_eq!(
        s.actions(),
        [Action::StartDone(Ok(())), Action::Report(Event::Started)]
    );
    assert_eq!(s.lc.state(), State::Running);
    assert_eq!(s.lc.poll_timeout(), None);
}

// covers: HS-4, HS-5, HS-6, HS-9, LIFE-4, LIFE-5
#[test]
fn l4_starting_a_failure_before_the_announcement_kills_reaps_and_fails_the_start() {
    type Fail = fn(&mut Sup);
    let timeout: Fail = |s| s.lc.handle_timeout(s.at(3 * S));
    let handshake: Fail = |s| s.lc.handshake_failed(s.at(S), "bad control byte".into());
    let eof: Fail = |s| s.lc.connection_ended(s.at(S));
    for (fail, failure) in [
        (timeout, StartFailure::Timeout),
        (
            handshake,
            StartFailure::Handshake("bad control byte".into()),
        ),
        (eof, StartFailure::EndOfInput),
    ] {
        let mut s = Sup::new();
        s.starting();
        s.lc.handle_timeout(s.at(3 * S - MS));
        assert_eq!(s.actions(), [], "not before the start timeout");
        fail(&mut s);
        assert_eq!(s.actions(), [Action::EndConnection, Action::Kill]);
        assert_eq!(s.lc.state(), State::Starting, "until the process is reaped");
        assert_eq!(s.lc.poll_timeout(), None);
        s.lc.exited(s.at(4 * S), Exit::Signal(9));
        assert_eq!(
            s.actions(),
            [
                Action::StartDone(Err(failure.clone())),
                Action::Report(Event::StartFailed(failure)),
            ]
        );
        assert_eq!(s.lc.state(), State::Stopped);
        assert!(!s.lc.has_process());
        s.lc.handle_timeout(s.at(100 * S));
        assert_eq!(s.actions(), [], "nothing relaunches it (LIFE-5)");
    }
    // The exit of the process before its announcement.
    let mut s = Sup::new();
    s.starting();
    s.lc.exited(s.at(S), Exit::Status(1));
    let failure = StartFailure::Exited(Exit::Status(1));
    assert_eq!(
        s.actions(),
        [
            Action::EndConnection,
            Action::StartDone(Err(failure.clone())),
            Action::Report(Event::StartFailed(failure)),
        ]
    );
    assert_eq!(s.lc.state(), State::Stopped);
}

// covers: LIFE-20, LIFE-23
#[test]
fn l5_starting_stop_fails_the_start_and_stops_without_deactivation() {
    let mut s = Sup::new();
    s.starting();
    s.lc.stop(s.at(S));
    assert_eq!(
        s.actions(),
        [
            Action::StartDone(Err(StartFailure::Stopped)),
            Action::Report(Event::StartFailed(StartFailure::Stopped)),
            Action::EndConnection,
        ]
    );
    assert_eq!(s.lc.state(), State::Stopping);
    assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + STOP_GRACE));
    s.lc.announced(s.at(S + MS));
    assert_eq!(s.actions(), [], "a late announcement changes nothing");
    s.lc.exited(s.at(2 * S), Exit::Status(0));
    assert_eq!(s.actions(), stopped(Some(Exit::Status(0)), false));
    assert_eq!(s.lc.state(), State::Stopped);
    // A stop while the launch is still under way: the connection ends once it is there.
    let mut s = Sup::new();
    s.lc.start(s.at(Duration::ZERO)).unwrap();
    s.actions();
    s.lc.stop(s.at(MS));
    s.actions();
    s.lc.launched(s.at(2 * MS), Ok(()));
    assert_eq!(s.actions(), [Action::EndConnection]);
    s.lc.exited(s.at(3 * MS), Exit::Status(0));
    assert_eq!(s.actions(), stopped(Some(Exit::Status(0)), false));
}

// covers: RPC-16, LIFE-14
#[test]
fn l6_running_hook_calls_go_through_and_track_the_activation() {
    let mut s = Sup::new();
    s.running();
    assert_eq!(s.lc.hook_call(), Ok(()));
    assert_eq!(s.lc.activation(), None);
    s.lc.activation_succeeded(b"{\"a\":1}".to_vec());
    assert_eq!(s.lc.activation(), Some(&b"{\"a\":1}"[..]));
    s.lc.deactivation_called();
    assert_eq!(s.lc.activation(), None);
    s.lc.activation_succeeded(b"{}".to_vec());
    s.lc.activation_failed();
    assert_eq!(
        s.lc.activation(),
        None,
        "a failed activation leaves it not activated"
    );
    assert_eq!(s.lc.state(), State::Running);
    assert_eq!(s.actions(), []);
}

// covers: LIFE-6, LIFE-7, LIFE-8, LIFE-9, LIFE-19
#[test]
fn l7_running_a_crash_ends_the_connection_and_reports_once_the_process_is_gone() {
    // The exit: reported at once, the delay counted from the detection.
    let mut s = Sup::new();
    s.running();
    s.lc.exited(s.at(S), Exit::Signal(11));
    assert_eq!(
        s.actions(),
        [
            Action::EndConnection,
            crashed(
                CrashCause::Exited,
                Some(Exit::Signal(11)),
                1,
                RESTART_DELAY_MIN
            ),
        ]
    );
    assert_eq!(s.lc.state(), State::Backoff { failures: 1 });
    assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + RESTART_DELAY_MIN));
    // The end of the connection, or of the hooks stream: the process gets the grace period,
    // then the kill; the crash is reported once it is reaped.
    type End = fn(&mut Sup);
    let eof: End = |s| s.lc.connection_ended(s.at(S));
    let hooks: End = |s| s.lc.hooks_stream_ended(s.at(S));
    for (end, cause) in [
        (eof, CrashCause::ConnectionEnded),
        (hooks, CrashCause::HooksStreamEnded),
    ] {
        let mut s = Sup::new();
        s.running();
        end(&mut s);
        assert_eq!(s.actions(), [Action::EndConnection]);
        assert_eq!(s.lc.state(), State::Backoff { failures: 1 });
        assert_eq!(
            s.lc.hook_call(),
            Err(NotRunning(State::Backoff { failures: 1 }))
        );
        assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + STOP_GRACE));
        s.lc.handle_timeout(s.at(S) + STOP_GRACE);
        assert_eq!(s.actions(), [Action::Kill]);
        assert_eq!(s.lc.poll_timeout(), None, "no relaunch before the reaping");
        s.lc.exited(s.at(8 * S), Exit::Signal(9));
        assert_eq!(
            s.actions(),
            [crashed(cause, Some(Exit::Signal(9)), 1, RESTART_DELAY_MIN)]
        );
        // The delay ran from the detection; it has expired: the relaunch is due at once.
        assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + RESTART_DELAY_MIN));
    }
}

// covers: LIFE-10
#[test]
fn l8_running_for_the_stable_period_resets_the_failures_in_a_row() {
    let mut s = Sup::new();
    s.restarting();
    s.lc.exited(s.at(3 * S), Exit::Status(1));
    s.actions();
    assert_eq!(s.lc.state(), State::Backoff { failures: 2 });
    s.lc.handle_timeout(s.at(5 * S));
    s.lc.launched(s.at(5 * S), Ok(()));
    s.lc.announced(s.at(5 * S));
    assert_eq!(
        s.actions(),
        [
            Action::Launch,
            Action::Report(Event::Restarted { reactivated: false })
        ]
    );
    // Just short of the stable period: the third failure in a row, 4 s.
    let mut short = Sup {
        lc: s.lc.clone(),
        t0: s.t0,
    };
    short.lc.exited(short.at(65 * S - MS), Exit::Status(1));
    assert_eq!(
        short.actions()[1],
        crashed(CrashCause::Exited, Some(Exit::Status(1)), 3, 4 * S)
    );
    // Running for 60 s: the count starts again, 1 s.
    s.lc.exited(s.at(65 * S), Exit::Status(1));
    assert_eq!(
        s.actions()[1],
        crashed(
            CrashCause::Exited,
            Some(Exit::Status(1)),
            1,
            RESTART_DELAY_MIN
        )
    );
}

// covers: LIFE-16, LIFE-17
#[test]
fn l9_running_stop_deactivates_an_activated_plugin_first() {
    let mut s = Sup::new();
    s.activated();
    s.lc.stop(s.at(S));
    assert_eq!(s.actions(), [Action::Deactivate]);
    assert_eq!(s.lc.state(), State::Stopping);
    assert_eq!(s.lc.poll_timeout(), Some(s.at(6 * S)), "DEACTIVATE_TIMEOUT");
    // Not activated: the connection ends at once.
    let mut s = Sup::new();
    s.running();
    s.lc.stop(s.at(S));
    assert_eq!(s.actions(), [Action::EndConnection]);
    assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + STOP_GRACE));
}

// covers: LIFE-7, LIFE-8, LIFE-9
#[test]
fn l10_backoff_relaunches_once_the_delay_has_expired_and_the_process_is_gone() {
    let mut s = Sup::new();
    s.backoff();
    s.lc.handle_timeout(s.at(2 * S - MS));
    assert_eq!(s.actions(), [], "LIFE-8: not before RESTART_DELAY_MIN");
    s.lc.handle_timeout(s.at(2 * S));
    assert_eq!(s.actions(), [Action::Launch]);
    assert_eq!(s.lc.state(), State::Restarting { failures: 1 });
    assert_eq!(s.lc.poll_timeout(), Some(s.at(5 * S)), "the start timer");
    // Backoff grows: 2 s, 4 s, ..., at most the longest delay (Table 6-2).
    let settings = Settings::default();
    let delays: Vec<u64> = (1..=8)
        .map(|n| settings.restart_delay(n).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(settings.restart_delay(u32::MAX), 30 * S);
    let quick = Settings {
        restart_delay: Duration::ZERO,
        ..Settings::default()
    };
    assert_eq!(
        quick.restart_delay(1),
        RESTART_DELAY_MIN,
        "LIFE-8 holds whatever the settings"
    );
}

// covers: LIFE-13
#[test]
fn l11_backoff_gives_up_once_the_old_process_is_reaped() {
    let mut s = Sup::with(Settings {
        max_restarts: Some(1),
        ..Settings::default()
    });
    s.restarting();
    s.lc.connection_ended(s.at(3 * S));
    assert_eq!(s.actions(), [Action::EndConnection]);
    assert_eq!(s.lc.state(), State::Backoff { failures: 2 });
    s.lc.exited(s.at(4 * S), Exit::Status(0));
    assert_eq!(
        s.actions(),
        [
            Action::Report(Event::Crashed {
                cause: CrashCause::RestartFailed(StartFailure::EndOfInput),
                exit: Some(Exit::Status(0)),
                failures: 2,
                delay: None,
            }),
            Action::Report(Event::GaveUp { failures: 2 }),
        ]
    );
    assert_eq!(s.lc.state(), State::Failed);
    assert!(!s.lc.has_process());
    assert_eq!(s.lc.poll_timeout(), None, "no pending relaunch");
}

// covers: LIFE-20, LIFE-22
#[test]
fn l12_backoff_stop_cancels_the_relaunch_at_once() {
    let mut s = Sup::new();
    s.backoff();
    s.lc.stop(s.at(S + MS));
    assert_eq!(s.actions(), stopped(None, false));
    assert_eq!(s.lc.state(), State::Stopped);
    s.lc.handle_timeout(s.at(100 * S));
    assert_eq!(s.actions(), [], "nothing is launched afterwards");
    // The old process still running: the stop waits for it (the rest of its grace period,
    // then the kill) and reports its exit; the crash is not reported.
    let mut s = Sup::new();
    s.running();
    s.lc.connection_ended(s.at(S));
    s.actions();
    s.lc.stop(s.at(2 * S));
    assert_eq!(s.actions(), []);
    assert_eq!(s.lc.state(), State::Stopping);
    assert_eq!(s.lc.poll_timeout(), Some(s.at(S) + STOP_GRACE));
    s.lc.handle_timeout(s.at(S) + STOP_GRACE);
    assert_eq!(s.actions(), [Action::Kill]);
    s.lc.exited(s.at(8 * S), Exit::Signal(9));
    assert_eq!(s.actions(), stopped(Some(Exit::Signal(9)), true));
}

// covers: HS-7, LIFE-11
#[test]
fn l13_restarting_an_announcement_of_a_plugin_never_activated_makes_it_running() {
    let mut s = Sup::new();
    s.restarting();
    s.lc.announced(s.at(2 * S + MS));
    assert_eq!(
        s.actions(),
        [Action::Report(Event::Restarted { reactivated: false })]
    );
    assert_eq!(s.lc.state(), State::Running);
}

// covers: LIFE-11, LIFE-15
#[test]
fn l14_restarting_an_activated_plugin_is_activated_with_the_same_configuration() {
    let mut s = Sup::new();
    s.activated();
    s.lc.exited(s.at(S), Exit::Status(2));
    s.actions();
    s.lc.handle_timeout(s.at(2 * S));
    s.lc.launched(s.at(2 * S), Ok(()));
    s.lc.announced(s.at(2 * S + MS));
    assert_eq!(
        s.actions(),
        [
            Action::Launch,
            Action::Activate {
                config: b"{}".to_vec()
            }
        ]
    );
    assert_eq!(s.lc.state(), State::Restarting { failures: 1 });
    assert!(
        s.lc.hook_call().is_err(),
        "no user call before it is Running again"
    );
    assert_eq!(
        s.lc.poll_timeout(),
        None,
        "no time limit on the re-activation"
    );
    // A crash during the user's OnActivate: that activation failed, and the relaunched process
    // is not activated (LIFE-15).
    let mut s = Sup::new();
    s.activated();
    s.lc.connection_ended(s.at(S));
    s.lc.activation_failed();
    s.lc.exited(s.at(S), Exit::Status(2));
    s.lc.handle_timeout(s.at(2 * S));
    s.lc.launched(s.at(2 * S), Ok(()));
    s.lc.announced(s.at(2 * S));
    assert_eq!(
        s.actions().last(),
        Some(&Action::Report(Event::Restarted { reactivated: false }))
    );
}

// covers: LIFE-11
#[test]
fn l15_restarting_a_successful_reactivation_makes_it_running() {
    let mut s = Sup::new();
    s.activated();
    s.lc.exited(s.at(S), Exit::Status(2));
    s.lc.handle_timeout(s.at(2 * S));
    s.lc.launched(s.at(2 * S), Ok(()));
    s.lc.announced(s.at(2 * S));
    s.actions();
    s.lc.reactivated(s.at(3 * S), Ok(()));
    assert_eq!(
        s.actions(),
        [Action::Report(Event::Restarted { reactivated: true })]
    );
    assert_eq!(s.lc.state(), State::Running);
    assert_eq!(s.lc.activation(), Some(&b"{}"[..]));
}

// covers: LIFE-12
#[test]
fn l16_restarting_a_failed_attempt_is_handled_as_a_crash() {
    // The launch fails: reported at once, the delay doubles.
    let mut s = Sup::new();
    s.backoff();
    s.lc.handle_timeout(s.at(2 * S));
    s.actions();
    s.lc.launched(s.at(2 * S), Err("gone".into()));
    assert_eq!(
        s.actions(),
        [crashed(
            CrashCause::RestartFailed(StartFailure::Launch("gone".into())),
            None,
            2,
            2 * S
        )]
    );
    assert_eq!(s.lc.state(), State::Backoff { failures: 2 });
    assert_eq!(s.lc.poll_timeout(), Some(s.at(4 * S)));
    // The start timeout, a handshake error, the end of the connection: the process is ended
    // and reaped first.
    type Fail = fn(&mut Sup);
    let timeout: Fail = |s| s.lc.handle_timeout(s.at(5 * S));
    let handshake: Fail = |s| s.lc.handshake_failed(s.at(5 * S), "odd id".into());
    let eof: Fail = |s| s.lc.connection_ended(s.at(5 * S));
    for (fail, failure) in [
        (timeout, StartFailure::Timeout),
        (handshake, StartFailure::Handshake("odd id".into())),
        (eof, StartFailure::EndOfInput),
    ] {
        let mut s = Sup::new();
        s.restarting();
        fail(&mut s);
        assert_eq!(s.actions(), [Action::EndConnection]);
        assert_eq!(s.lc.state(), State::Backoff { failures: 2 });
        s.lc.exited(s.at(6 * S), Exit::Status(1));
        assert_eq!(
            s.actions(),
            [crashed(
                CrashCause::RestartFailed(failure),
                Some(Exit::Status(1)),
                2,
                2 * S
            )]
        );
        assert_eq!(
            s.lc.poll_timeout(),
            Some(s.at(7 * S)),
            "from the detection at 5 s"
        );
    }
    // The re-activation fails.
    let mut s = Sup::new();
    s.activated();
    s.lc.exited(s.at(S), Exit::Status(2));
    s.lc.handle_timeout(s.at(2 * S));
    s.lc.launched(s.at(2 * S), Ok(()));
    s.lc.announced(s.at(2 * S));
    s.actions();
    s.lc.reactivated(s.at(3 * S), Err("no".into()));
    assert_eq!(s.actions(), [Action::EndConnection]);
    assert_eq!(s.lc.state(), State::Backoff { failures: 2 });
    assert_eq!(
        s.lc.activation(),
        Some(&b"{}"[..]),
        "the next attempt re-activates too"
    );
}

// covers: LIFE-17, LIFE-20
#[test]
fn l17_restarting_stop_ends_the_connection_without_deactivation() {
    let mut s = Sup::new();
    s.activated();
    s.lc.exited(s.at(S), Exit::Status(2));
    s.lc.handle_timeout(s.at(2 * S));
    s.lc.launched(s.at(2 * S), Ok(()));
    s.actions();
    s.lc.stop(s.at(3 * S));
    assert_eq!(s.actions(), [Action::EndConnection]);
    assert_eq!(s.lc.state(), State::Stopping);
    s.lc.exited(s.at(4 * S), Exit::Status(0));
    assert_eq!(s.actions(), stopped(Some(Exit::Status(0)), false));
}

// covers: LIFE-16, LIFE-17
#[test]
fn l18_stopping_the_deactivation_ends_with_its_answer_or_its_timeout() {
    type Over = fn(&mut Sup) -> Instant;
    let answered: Over = |s| {
        s.lc.deactivation_done(s.at(2 * S));
        s.at(2 * S)
    };
    let timed_out: Over = |s| {
        s.lc.handle_timeout(s.at(6 * S));
        s.at(6 * S)
    };
    let hooks_ended: Over = |s| {
        s.lc.hooks_stream_ended(s.at(2 * S));
        s.at(2 * S)
    };
    for over in [answered, timed_out, hooks_ended] {
        let mut s = Sup::new();
        s.activated();
        s.lc.stop(s.at(S));
        s.actions();
        s.lc.handle_timeout(s.at(6 * S - MS));
        assert_eq!(s.actions(), []);
        let at = over(&mut s);
        assert_eq!(s.actions(), [Action::EndConnection]);
        assert_eq!(s.lc.state(), State::Stopping);
        assert_eq!(s.lc.poll_timeout(), Some(at + STOP_GRACE));
    }
}

// covers: LIFE-18
#[test]
fn l19_stopping_the_grace_period_expires_and_the_process_is_killed() {
    let mut s = Sup::new();
    s.running();
    s.lc.stop(s.at(S));
    s.actions();
    s.lc.handle_timeout(s.at(S) + STOP_GRACE - MS);
    assert_eq!(
        s.actions(),
        [],
        "no signal before the grace period has passed"
    );
    s.lc.handle_timeout(s.at(S) + STOP_GRACE);
    assert_eq!(s.actions(), [Action::Kill]);
    assert_eq!(s.lc.poll_timeout(), None);
    s.lc.exited(s.at(8 * S), Exit::Signal(9));
    assert_eq!(s.actions(), stopped(Some(Exit::Signal(9)), true));
}

// covers: LIFE-19, LIFE-20
#[test]
fn l20_stopping_the_exit_at_any_step_completes_the_stop() {
    let mut s = Sup::new();
    s.activated();
    s.lc.stop(s.at(S));
    s.actions();
    s.lc.exited(s.at(2 * S), Exit::Status(0));
    let [done, report] = stopped(Some(Exit::Status(0)), false);
    assert_eq!(s.actions(), [Action::EndConnection, done, report]);
    assert_eq!(s.lc.state(), State::Stopped);
    assert!(!s.lc.has_process());
    assert_eq!(s.lc.activation(), None);
    s.lc.handle_timeout(s.at(100 * S));
    assert_eq!(s.actions(), [], "not a crash: nothing is relaunched");
}

// covers: LIFE-20
#[test]
fn l21_stopping_a_second_stop_waits_for_the_first() {
    let mut s = Sup::new();
    s.running();
    s.lc.stop(s.at(S));
    s.lc.stop(s.at(2 * S));
    assert_eq!(s.actions(), [Action::EndConnection]);
    s.lc.exited(s.at(3 * S), Exit::Status(0));
    let [first, first_report] = stopped(Some(Exit::Status(0)), false);
    let [second, second_report] = stopped(None, false);
    assert_eq!(
        s.actions(),
        [first, first_report, second, second_report],
        "each stop answered once, the first with the exit"
    );
}

// covers: LIFE-20
#[test]
fn l22_stopped_or_failed_stop_succeeds_at_once() {
    let mut s = Sup::new();
    s.lc.stop(s.at(Duration::ZERO));
    s.lc.stop(s.at(Duration::ZERO));
    let [done, report] = stopped(None, false);
    assert_eq!(
        s.actions(),
        [done.clone(), report.clone(), done.clone(), report.clone()]
    );
    let mut s = Sup::with(Settings {
        max_restarts: Some(0),
        ..Settings::default()
    });
    s.backoff();
    assert_eq!(s.lc.state(), State::Failed);
    s.lc.stop(s.at(2 * S));
    assert_eq!(s.actions(), [done, report]);
    assert_eq!(s.lc.state(), State::Stopped);
}

// covers: LIFE-14
#[test]
fn l23_hook_calls_fail_at_once_unless_running() {
    let mut s = Sup::new();
    assert_eq!(
        s.lc.hook_call().unwrap_err().to_string(),
        "the plugin is not running: it is stopped"
    );
    s.starting();
    assert_eq!(s.lc.hook_call(), Err(NotRunning(State::Starting)));
    let mut s = Sup::new();
    s.restarting();
    assert_eq!(
        s.lc.hook_call().unwrap_err().to_string(),
        "the plugin is not running: it is restarting after a crash"
    );
    s.lc.stop(s.at(3 * S));
    assert_eq!(s.lc.hook_call(), Err(NotRunning(State::Stopping)));
    let mut s = Sup::with(Settings {
        max_restarts: Some(0),
        ..Settings::default()
    });
    s.backoff();
    assert_eq!(s.lc.hook_call(), Err(NotRunning(State::Failed)));
    assert_eq!(s.actions(), [], "nothing sent");
}
