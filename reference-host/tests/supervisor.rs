//! The supervisor with real plugin processes (`spec/06-lifecycle.md`): the seed's
//! `supervisor_test.go` in Rust, then crashes, restarts, backoff, calls while down, and stops in
//! every state. Protocol-speaking plugins are the reference plugin; misbehaving ones are the
//! launcher script of `common`. Every test runs under a time limit and checks that no plugin
//! process is left, not even as a zombie.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fixtures, names, wait_event, wait_line, TestBundle};
use rpcplugin_reference_host::event::{CrashCause, LifecycleEvent};
use rpcplugin_reference_host::runtime::process::Exit;
use rpcplugin_reference_host::supervisor::{
    HookError, StartError, State, Supervisor, SupervisorOptions, RESTART_DELAY_MIN,
};
use rpcplugin_test_support::procs::kill9;
use rpcplugin_test_support::within;
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(60);
const SEC: Duration = Duration::from_secs(1);

fn crashed(e: &LifecycleEvent) -> bool {
    matches!(e, LifecycleEvent::Crashed { .. })
}

fn restarted(e: &LifecycleEvent) -> bool {
    matches!(e, LifecycleEvent::Restarted { .. })
}

// The seed's TestSupervisor: start, activate, stop. The plugin loads the configuration the
// host serves on the API stream it opened before OnActivate, and says goodbye on the stop's
// deactivation; closing its pipes makes it exit with status 0, so it is not killed.
// covers: LIFE-1, HS-4, HS-7, RPC-13, RPC-18, LIFE-16, LIFE-17, LIFE-19, TRANS-8, TRANS-10
#[test]
fn seed_supervisor_start_activate_stop() {
    within(LIMIT, || {
        let b = TestBundle::new("seed-supervisor");
        let (options, lines) = b.options(&[]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let pid = sup.pid().expect("running");
        assert_eq!(
            sup.state(),
            State::Running {
                pid,
                activated: false
            }
        );
        let config = json!({"Foo": "foo", "Bar": {"Baz": "baz"}});
        sup.activate(&config).unwrap();
        assert_eq!(
            sup.state(),
            State::Running {
                pid,
                activated: true
            }
        );
        let line = wait_line(&lines, 10 * SEC, "activated with configuration");
        assert_eq!(line.pid, pid);
        assert!(line.line.ends_with(&config.to_string()), "{}", line.line);
        assert_eq!(sup.configuration_requests(), 1);

        sup.stop();
        assert_eq!(sup.state(), State::Stopped);
        wait_line(&lines, 10 * SEC, "goodbye");
        assert_eq!(
            events.try_iter().collect::<Vec<_>>(),
            vec![
                LifecycleEvent::Started { pid },
                LifecycleEvent::Activated { pid },
                LifecycleEvent::Deactivated { pid },
                LifecycleEvent::Stopped {
                    exit: Some(Exit::Code(0)),
                    killed: false
                },
            ]
        );
        assert_eq!(b.launches(), 1);
        b.assert_no_process_left();
    });
}

// The seed's TestSupervisor_StartTimeout: a plugin that never announces makes the start fail
// after the default start timeout, with the seed's words; it is killed and reaped before the
// start returns, and nothing relaunches it.
// covers: HS-4, LIFE-4, LIFE-5, LIFE-19
#[test]
fn seed_start_timeout() {
    within(LIMIT, || {
        let b = TestBundle::new("seed-start-timeout");
        let (options, _lines) = b.options(&[("RH_SILENT", "all")]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let started = Instant::now();
        let err = sup.start().unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, StartError::Timeout { .. }), "{err:?}");
        assert!(
            err.to_string().contains(
                "plugin seed-start-timeout did not announce its hooks stream within 3s \
                 (timed out waiting for plugin"
            ),
            "{err}"
        );
        assert!(took >= Duration::from_secs(3), "{took:?}");
        assert!(took < Duration::from_secs(6), "{took:?}");
        assert_eq!(sup.state(), State::Stopped);
        b.assert_no_process_left();
        // LIFE-5: nothing relaunches it.
        std::thread::sleep(RESTART_DELAY_MIN + Duration::from_millis(500));
        assert_eq!(b.launches(), 1);
        assert!(matches!(
            sup.history().as_slice(),
            [LifecycleEvent::StartFailed { .. }]
        ));
    });
}

// The seed's TestSupervisor_PluginCrash: a plugin that exits (status 3) during OnActivate.
// The activation fails (RPC-16, the call fails as the connection ends: RPC-11); the plugin is
// relaunched after the restart delay and is not activated (LIFE-15: the failed OnActivate is not
// repeated); OnDeactivate then succeeds within the seed's 3 seconds.
// covers: LIFE-6, LIFE-7, LIFE-8, LIFE-15, RPC-11, RPC-16, LIFE-19
#[test]
fn seed_plugin_crash() {
    within(LIMIT, || {
        let b = TestBundle::new("seed-plugin-crash");
        let (options, _lines) = b.options(&[("RH_CRASH_ON_ACTIVATE", "all")]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let first = sup.pid().unwrap();
        let err = sup.activate(&json!(null)).unwrap_err();
        assert!(!err.is_remote(), "{err}");
        let mut recovered = false;
        for _ in 0..30 {
            if sup.deactivate().is_ok() {
                recovered = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        assert!(recovered, "not recovered within 3s: {:?}", sup.state());
        let crash = wait_event(&events, SEC, crashed);
        let LifecycleEvent::Crashed {
            pid,
            exit,
            failures,
            delay,
            ..
        } = crash
        else {
            unreachable!()
        };
        assert_eq!(pid, Some(first));
        assert_eq!(exit, Some(Exit::Code(3)));
        assert_eq!((failures, delay), (1, Some(SEC)));
        let again = wait_event(&events, SEC, restarted);
        let second = sup.pid().unwrap();
        assert_eq!(
            again,
            LifecycleEvent::Restarted {
                pid: second,
                reactivated: false
            }
        );
        assert_ne!(first, second);
        sup.stop();
        assert_eq!(b.launches(), 2);
        b.assert_no_process_left();
    });
}

// A crash of an activated plugin: the host ends the connection, reaps the process, reports the
// crash with its signal, relaunches after RESTART_DELAY_MIN, and activates the new process with
// the configuration of the last activation before it reports "restarted"; the events come in
// order.
// covers: LIFE-6, LIFE-7, LIFE-8, LIFE-11, LIFE-19, RPC-13, RPC-18
#[test]
fn crash_restart_reactivates_with_the_same_configuration() {
    within(LIMIT, || {
        let b = TestBundle::new("reactivation");
        let (options, lines) = b.options(&[]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let first = sup.pid().unwrap();
        let config = json!({"answer": 42, "name": "reactivation"});
        sup.activate(&config).unwrap();
        let line = wait_line(&lines, 10 * SEC, "activated with configuration");
        assert!(line.line.ends_with(&config.to_string()));

        let killed_at = Instant::now();
        kill9(first);
        let again = wait_event(&events, 10 * SEC, restarted);
        assert!(killed_at.elapsed() >= RESTART_DELAY_MIN);
        let second = sup.pid().unwrap();
        assert_eq!(
            again,
            LifecycleEvent::Restarted {
                pid: second,
                reactivated: true
            }
        );
        assert_eq!(
            sup.state(),
            State::Running {
                pid: second,
                activated: true
            }
        );
        // The new process loaded the same configuration before "restarted" was reported.
        let line = wait_line(&lines, SEC, "activated with configuration");
        assert_eq!(line.pid, second);
        assert!(line.line.ends_with(&config.to_string()), "{}", line.line);
        assert_eq!(sup.configuration_requests(), 2);

        sup.stop();
        let history = sup.history();
        let order: Vec<_> = history.iter().map(|e| e.name()).collect();
        assert_eq!(
            order,
            [
                "started",
                "activated",
                "crashed",
                "restarted",
                "deactivated",
                "stopped"
            ]
        );
        assert_eq!(
            history[2],
            LifecycleEvent::Crashed {
                pid: Some(first),
                cause: CrashCause::ProcessExited,
                exit: Some(Exit::Signal(9)),
                failures: 1,
                delay: Some(SEC),
            }
        );
        assert_eq!(
            history[5],
            LifecycleEvent::Stopped {
                exit: Some(Exit::Code(0)),
                killed: false
            }
        );
        b.assert_no_process_left();
    });
}

// Hook calls while the plugin is not Running fail at once, send nothing, and say why.
// covers: LIFE-14
#[test]
fn calls_while_down_fail_at_once_with_a_clear_error() {
    within(LIMIT, || {
        let b = TestBundle::new("calls-while-down");
        let (options, _lines) = b.options(&[]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        let err = sup.deactivate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin calls-while-down is not running: it is stopped"
        );
        sup.start().unwrap();
        sup.activate(&json!({})).unwrap();
        kill9(sup.pid().unwrap());
        wait_event(&events, 10 * SEC, crashed);
        let asked = Instant::now();
        let err = sup.activate(&json!({})).unwrap_err();
        assert!(asked.elapsed() < Duration::from_millis(200));
        assert!(
            matches!(
                err,
                HookError::NotRunning {
                    state: State::Backoff { failures: 1 },
                    ..
                }
            ),
            "{err:?}"
        );
        assert!(
            err.to_string().starts_with(
                "plugin calls-while-down is not running: it is restarting after a crash (attempt 1"
            ),
            "{err}"
        );
        wait_event(&events, 10 * SEC, restarted);
        sup.deactivate().unwrap();
        sup.stop();
        let err = sup.activate(&json!({})).unwrap_err();
        assert!(err.to_string().ends_with("it is stopped"), "{err}");
        // Nothing reached the plugin from the failed calls: one activation per process only.
        assert_eq!(sup.configuration_requests(), 2);
        b.assert_no_process_left();
    });
}

// A call pending when the plugin dies fails as soon as the host ends the connection, and is
// not sent again to the relaunched plugin, which is not activated (the OnActivate failed).
// covers: RPC-11, LIFE-6, LIFE-15, RPC-16
#[test]
fn a_call_pending_during_a_crash_fails_and_is_not_repeated() {
    within(LIMIT, || {
        let b = TestBundle::new("pending-call");
        // A plugin that announces but never answers a call.
        let (mut options, _lines) = b.options(&[("RH_STUBBORN", "all")]);
        options.lifecycle.stop_grace = Duration::from_millis(300);
        let sup = Arc::new(Supervisor::new(b.bundle.clone(), options));
        let events = sup.events();
        sup.start().unwrap();
        let first = sup.pid().unwrap();
        let s = Arc::clone(&sup);
        let call = std::thread::spawn(move || s.activate(&json!({"x": 1})));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!call.is_finished(), "the stubborn plugin never answers");
        let killed_at = Instant::now();
        kill9(first);
        let err = call.join().unwrap().unwrap_err();
        assert!(killed_at.elapsed() < SEC, "{:?}", killed_at.elapsed());
        assert!(
            matches!(err, HookError::Call { pid, .. } if pid == first),
            "{err:?}"
        );
        let again = wait_event(&events, 10 * SEC, restarted);
        assert!(
            matches!(
                again,
                LifecycleEvent::Restarted {
                    reactivated: false,
                    ..
                }
            ),
            "{again:?}"
        );
        sup.stop();
        b.assert_no_process_left();
    });
}

// A failed activation (an error response) is reported to the caller and is not a crash: the
// plugin stays Running, not activated, and a later crash is followed by no re-activation.
// covers: RPC-16, LIFE-11
#[test]
fn a_failed_activation_is_not_a_crash() {
    within(LIMIT, || {
        let b = TestBundle::new("failed-activation");
        let (options, _lines) = b.options(&[("RH_FAIL_ACTIVATE", "1")]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let pid = sup.pid().unwrap();
        let err = sup.activate(&json!({})).unwrap_err();
        assert!(err.is_remote(), "{err:?}");
        assert!(
            err.to_string().contains("activation fails on purpose"),
            "{err}"
        );
        assert_eq!(
            sup.state(),
            State::Running {
                pid,
                activated: false
            }
        );
        sup.deactivate().unwrap();
        kill9(pid);
        let again = wait_event(&events, 10 * SEC, restarted);
        assert!(matches!(
            again,
            LifecycleEvent::Restarted {
                reactivated: false,
                ..
            }
        ));
        assert_eq!(sup.configuration_requests(), 0);
        sup.stop();
        b.assert_no_process_left();
    });
}

// Failed restart attempts count as failures in a row; the delay doubles (1 s, 2 s), and with
// max_restarts 2 the supervisor gives up after the third failure, leaving nothing behind. It can
// then be stopped (L22) and started again (L1).
// covers: LIFE-8, LIFE-9, LIFE-12, LIFE-13, LIFE-14, LIFE-20, HS-6
#[test]
fn failed_restarts_back_off_and_the_supervisor_gives_up() {
    within(LIMIT, || {
        let b = TestBundle::new("gives-up");
        let (mut options, _lines) = b.options(&[("RH_EXIT_1", "2 3")]);
        options.lifecycle.max_restarts = Some(2);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let first = sup.pid().unwrap();
        kill9(first);
        let t0 = Instant::now();
        let c1 = wait_event(&events, 10 * SEC, crashed);
        let c2 = wait_event(&events, 10 * SEC, crashed);
        let t2 = t0.elapsed();
        let c3 = wait_event(&events, 10 * SEC, crashed);
        let t3 = t0.elapsed();
        let gave_up = wait_event(&events, SEC, |e| e.name() == "gave_up");
        assert!(matches!(
            c1,
            LifecycleEvent::Crashed {
                failures: 1,
                delay: Some(d),
                ..
            } if d == SEC
        ));
        match &c2 {
            LifecycleEvent::Crashed {
                cause: CrashCause::RestartFailed(why),
                exit: Some(Exit::Code(1)),
                failures: 2,
                delay: Some(d),
                ..
            } => {
                assert_eq!(*d, 2 * SEC);
                assert!(
                    why.contains("exited with status 1 before the handshake"),
                    "{why}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c3,
            LifecycleEvent::Crashed {
                cause: CrashCause::RestartFailed(_),
                failures: 3,
                delay: None,
                ..
            }
        ));
        assert!(t2 >= SEC, "{t2:?}");
        assert!(t3 >= 3 * SEC, "{t3:?}");
        assert_eq!(gave_up, LifecycleEvent::GaveUp { failures: 3 });
        assert_eq!(sup.state(), State::Failed { failures: 3 });
        assert_eq!(b.launches(), 3);
        b.assert_no_process_left();
        let err = sup.deactivate().unwrap_err();
        assert!(
            err.to_string().contains("given up after 3 failures"),
            "{err}"
        );
        std::thread::sleep(RESTART_DELAY_MIN * 2);
        assert_eq!(b.launches(), 3, "nothing is relaunched after giving up");

        // L1: a start from Failed works again.
        sup.start().unwrap();
        assert!(sup.state().is_running());
        sup.stop();
        // L22: a stop after a stop.
        sup.stop();
        assert_eq!(
            sup.history().last(),
            Some(&LifecycleEvent::Stopped {
                exit: None,
                killed: false
            })
        );
        b.assert_no_process_left();
    });
}

// A re-activation that fails is a failed restart attempt: the process is ended and another
// relaunch follows after the doubled delay.
// covers: LIFE-11, LIFE-12, LIFE-9
#[test]
fn a_failed_reactivation_is_a_failed_restart() {
    within(LIMIT, || {
        let b = TestBundle::new("failed-reactivation");
        let (options, _lines) = b.options(&[("RH_FAIL_ACTIVATE", "2")]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        sup.activate(&json!({"k": "v"})).unwrap();
        kill9(sup.pid().unwrap());
        wait_event(&events, 10 * SEC, crashed);
        let second = wait_event(&events, 10 * SEC, crashed);
        match &second {
            LifecycleEvent::Crashed {
                cause: CrashCause::ReactivationFailed(why),
                failures: 2,
                delay: Some(d),
                exit: Some(_),
                ..
            } => {
                assert_eq!(*d, 2 * SEC);
                assert!(why.contains("activation fails on purpose"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        let again = wait_event(&events, 10 * SEC, restarted);
        assert!(matches!(
            again,
            LifecycleEvent::Restarted {
                reactivated: true,
                ..
            }
        ));
        assert_eq!(b.launches(), 3);
        assert_eq!(sup.configuration_requests(), 2);
        sup.stop();
        b.assert_no_process_left();
    });
}

// The failures in a row go back to zero once the plugin has run for the stable period.
// covers: LIFE-10, LIFE-9
#[test]
fn the_stable_period_resets_the_backoff() {
    within(LIMIT, || {
        let b = TestBundle::new("stable-period");
        let (mut options, _lines) = b.options(&[]);
        options.lifecycle.stable_period = Duration::from_millis(1500);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        // Two crashes in a row: failures 1, then 2.
        kill9(sup.pid().unwrap());
        wait_event(&events, 10 * SEC, restarted);
        kill9(sup.pid().unwrap());
        let c = wait_event(&events, 10 * SEC, crashed);
        assert!(
            matches!(c, LifecycleEvent::Crashed { failures: 2, delay: Some(d), .. } if d == 2 * SEC),
            "{c:?}"
        );
        wait_event(&events, 10 * SEC, restarted);
        // Running for longer than the stable period: the next crash is the first again.
        std::thread::sleep(Duration::from_millis(1700));
        kill9(sup.pid().unwrap());
        let c = wait_event(&events, 10 * SEC, crashed);
        assert!(
            matches!(c, LifecycleEvent::Crashed { failures: 1, delay: Some(d), .. } if d == SEC),
            "{c:?}"
        );
        sup.stop();
        b.assert_no_process_left();
    });
}

// Table 6-2: the delays of LIFE-9 with the default options, and the floor of LIFE-8.
// covers: LIFE-8, LIFE-9
#[test]
fn restart_delays_follow_table_6_2() {
    let options = SupervisorOptions::default();
    let delays: Vec<u64> = (1..=8)
        .map(|n| options.restart_delay_after(n).as_secs())
        .collect();
    assert_eq!(delays, [1, 2, 4, 8, 16, 30, 30, 30]);
    assert_eq!(
        options.restart_delay_after(u32::MAX),
        Duration::from_secs(30)
    );
    let hasty = SupervisorOptions {
        lifecycle: rpcplugin_codec::lifecycle::Settings {
            restart_delay: Duration::from_millis(10),
            restart_delay_max: Duration::from_millis(20),
            ..Default::default()
        },
        ..SupervisorOptions::default()
    };
    assert_eq!(hasty.restart_delay_after(1), RESTART_DELAY_MIN);
    assert_eq!(hasty.restart_delay_after(5), RESTART_DELAY_MIN);
}

// A plugin that closes its pipes but keeps running has crashed: the host notices the end of
// the connection, gives it the grace period, kills it, and relaunches.
// covers: LIFE-6, LIFE-7, LIFE-18, TRANS-7
#[test]
fn a_plugin_that_hangs_up_but_keeps_running_is_killed_and_relaunched() {
    within(LIMIT, || {
        let b = TestBundle::new("hangup");
        let (mut options, _lines) = b.options(&[("RH_HANGUP", "1")]);
        options.lifecycle.stop_grace = Duration::from_millis(500);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let events = sup.events();
        sup.start().unwrap();
        let first = b.pids()[0];
        let c = wait_event(&events, 10 * SEC, crashed);
        assert!(
            matches!(
                &c,
                LifecycleEvent::Crashed {
                    cause: CrashCause::ConnectionEnded(_),
                    exit: Some(Exit::Signal(9)),
                    pid: Some(p),
                    ..
                } if *p == first
            ),
            "{c:?}"
        );
        wait_event(&events, 10 * SEC, restarted);
        sup.stop();
        b.assert_no_process_left();
    });
}

// A plugin that ignores SIGTERM and does not exit when its pipes close is killed once the
// grace period has passed, not before, and reaped.
// covers: LIFE-17, LIFE-18, LIFE-19, TRANS-8
#[test]
fn a_stubborn_plugin_is_killed_after_the_grace_period() {
    within(LIMIT, || {
        let b = TestBundle::new("stubborn");
        let (mut options, _lines) = b.options(&[("RH_STUBBORN", "all")]);
        options.lifecycle.stop_grace = Duration::from_millis(1500);
        let sup = Supervisor::new(b.bundle.clone(), options);
        sup.start().unwrap();
        let stopping = Instant::now();
        sup.stop();
        let took = stopping.elapsed();
        assert!(
            took >= Duration::from_millis(1500),
            "killed early: {took:?}"
        );
        assert!(took < Duration::from_millis(4000), "{took:?}");
        assert_eq!(
            sup.history().last(),
            Some(&LifecycleEvent::Stopped {
                exit: Some(Exit::Signal(9)),
                killed: true
            })
        );
        b.assert_no_process_left();
    });
}

// A stop of an activated plugin that never answers OnDeactivate waits at most the deactivation
// timeout, then ends the connection, gives the grace period, and kills. The plugin here speaks
// only the recorded OnActivate response of section 5.6.2.
// covers: LIFE-16, LIFE-17, LIFE-18, LIFE-19
#[test]
fn the_stop_bounds_the_deactivation_then_kills_after_the_grace_period() {
    within(LIMIT, || {
        let b = TestBundle::new("deactivate-timeout");
        let (mut options, _lines) = b.options(&[("RH_ACTIVATE_ONLY", "all")]);
        options.lifecycle.deactivate_timeout = Duration::from_millis(700);
        options.lifecycle.stop_grace = Duration::from_millis(500);
        let sup = Supervisor::new(b.bundle.clone(), options);
        sup.start().unwrap();
        let pid = sup.pid().unwrap();
        sup.activate(&json!({})).unwrap();
        assert_eq!(
            sup.state(),
            State::Running {
                pid,
                activated: true
            }
        );
        let stopping = Instant::now();
        sup.stop();
        let took = stopping.elapsed();
        assert!(took >= Duration::from_millis(1200), "{took:?}");
        assert!(took < Duration::from_millis(3500), "{took:?}");
        let names: Vec<_> = sup.history().iter().map(|e| e.name()).collect();
        assert_eq!(names, ["started", "activated", "stopped"]);
        assert_eq!(
            sup.history().last(),
            Some(&LifecycleEvent::Stopped {
                exit: Some(Exit::Signal(9)),
                killed: true
            })
        );
        b.assert_no_process_left();
    });
}

// Failed starts say what happened, and leave nothing behind.
// covers: LIFE-4, LIFE-5, HS-5, HS-6, LIFE-19
#[test]
fn failed_starts_say_why_and_leave_nothing_behind() {
    within(LIMIT, || {
        let b = TestBundle::new("failed-starts");
        let (options, _lines) = b.options(&[("RH_EXIT_1", "1"), ("RH_BAD_ANNOUNCE", "2")]);
        let sup = Supervisor::new(b.bundle.clone(), options);
        let err = sup.start().unwrap_err();
        assert_eq!(
            err.to_string(),
            "plugin failed-starts exited with status 1 before the handshake"
        );
        assert_eq!(sup.state(), State::Stopped);
        let err = sup.start().unwrap_err();
        assert!(matches!(err, StartError::Handshake { .. }), "{err:?}");
        assert!(err.to_string().contains("HS-5"), "{err}");
        assert_eq!(sup.state(), State::Stopped);
        b.assert_no_process_left();
        std::thread::sleep(RESTART_DELAY_MIN + Duration::from_millis(300));
        assert_eq!(b.launches(), 2);

        std::fs::remove_file(b.dir.join("backend")).unwrap();
        let err = sup.start().unwrap_err();
        assert!(matches!(err, StartError::Launch { .. }), "{err:?}");
        assert!(err.to_string().contains("not found"), "{err}");
        let failed: Vec<_> = sup
            .history()
            .into_iter()
            .filter(|e| e.name() == "start_failed")
            .collect();
        assert_eq!(failed.len(), 3);
    });
}

// A stop is accepted in every state: before any start, twice, after a failed start, during a
// start, during the restart delay (which it cuts short), during a restart, and concurrently.
// covers: LIFE-20, LIFE-22, LIFE-23, LIFE-4, LIFE-19
#[test]
fn stop_works_in_every_state() {
    within(LIMIT, || {
        fixtures();
        // Before any start, and twice.
        let b = TestBundle::new("stop-states");
        let (mut options, _lines) = b.options(&[("RH_EXIT_1", "1"), ("RH_SILENT", "2 5")]);
        options.lifecycle.stop_grace = Duration::from_millis(300);
        let sup = Arc::new(Supervisor::new(b.bundle.clone(), options));
        let events = sup.events();
        sup.stop();
        sup.stop();
        assert_eq!(names(&events), ["stopped", "stopped"]);
        assert_eq!(b.launches(), 0);

        // After a failed start (launch 1 exits at once).
        sup.start().unwrap_err();
        sup.stop();
        assert_eq!(sup.state(), State::Stopped);

        // During a start (launch 2 never announces): the start fails with "stopped" at once,
        // and the process gets the grace period, then the kill.
        let s = Arc::clone(&sup);
        let start = std::thread::spawn(move || s.start());
        b.wait_launches(2, 10 * SEC);
        std::thread::sleep(Duration::from_millis(100));
        let asked = Instant::now();
        sup.stop();
        assert!(asked.elapsed() < Duration::from_millis(2500));
        let err = start.join().unwrap().unwrap_err();
        assert!(matches!(err, StartError::Stopped { .. }), "{err:?}");
        assert_eq!(sup.state(), State::Stopped);
        b.assert_no_process_left();

        // During the restart delay: launch 3 runs, is killed, and the stop cancels the relaunch.
        sup.start().unwrap();
        let _ = names(&events);
        kill9(sup.pid().unwrap());
        wait_event(&events, 10 * SEC, crashed);
        let asked = Instant::now();
        sup.stop();
        assert!(
            asked.elapsed() < Duration::from_millis(500),
            "{:?}",
            asked.elapsed()
        );
        std::thread::sleep(RESTART_DELAY_MIN + Duration::from_millis(300));
        assert_eq!(b.launches(), 3, "the relaunch was cancelled");
        b.assert_no_process_left();

        // During a restart: launch 4 runs and is killed; launch 5 never announces.
        sup.start().unwrap();
        kill9(sup.pid().unwrap());
        b.wait_launches(5, 10 * SEC);
        assert!(matches!(sup.state(), State::Restarting { failures: 1 }));
        sup.stop();
        assert_eq!(sup.state(), State::Stopped);
        b.assert_no_process_left();

        // Two stops at once: both return once the supervisor is Stopped.
        sup.start().unwrap();
        let s = Arc::clone(&sup);
        let other = std::thread::spawn(move || s.stop());
        sup.stop();
        other.join().unwrap();
        assert_eq!(sup.state(), State::Stopped);
        b.assert_no_process_left();
        assert_eq!(b.launches(), 6);
    });
}

// Dropping a running supervisor stops the plugin like stop does.
// covers: LIFE-19, LIFE-17
#[test]
fn dropping_the_supervisor_stops_the_plugin() {
    within(LIMIT, || {
        let b = TestBundle::new("drop");
        let (options, lines) = b.options(&[]);
        let sup = Supervisor::start_new(b.bundle.clone(), options).unwrap();
        sup.activate(&json!({})).unwrap();
        drop(sup);
        wait_line(&lines, SEC, "goodbye");
        b.assert_no_process_left();
    });
}
