//! `host/restart/...`: the supervisor's relaunch of a crashed plugin (spec 06 sections 6.6 and
//! 6.7): the delay and its backoff (Table 6-2: growth, cap and reset), one process at a time,
//! the re-activation with the last configuration, calls after the relaunch, and a relaunch that
//! never announces.
//!
//! Rows: L7, L8, L10, L14, L15, L16, S17.
//! Requirements: HS-4, RPC-18, LIFE-6 to LIFE-12, LIFE-19, DRV-6, DRV-7, DRV-10, DRV-12.

use std::time::{Duration, Instant};

use serde_json::json;

use super::helpers::{
    activate_ok, activate_with, check_config, crashing, honoured, launch, must, reaped, relaunched,
    start_ok, CONFIG, NOTICE, RELAUNCH, SHORT_START, START,
};
use crate::agent::{Behaviour, CrashWhen, Order};
use crate::host_under_test::{
    HostUnderTest, REPLY_TIMEOUT, RESTART_DELAY_FLOOR, RESTART_DELAY_MAX, STABLE_PERIOD,
};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

/// What a measured restart delay may exceed the host's own by: it runs from the end of the
/// crashed agent to the hello of the next, so it includes the host noticing the crash and
/// launching the next process.
const DELAY_MARGIN: Duration = Duration::from_millis(1500);

case!(
    CRASH_AFTER_ACTIVATION: host "host/restart/crash-after-activation",
    ["LIFE-6", "LIFE-8", "LIFE-11", "LIFE-19", "DRV-10", "DRV-12"],
    crash_and_restart(Some(3), &[req!("LIFE-8"), req!("LIFE-11"), req!("LIFE-19"), req!("DRV-10")]),
    with_timeout(Duration::from_secs(30)),
    "a plugin that exits after activation is relaunched after at least 1 s and activated again with the same configuration"
);

case!(
    SIGKILL_AFTER_ACTIVATION: host "host/restart/sigkill-after-activation",
    ["LIFE-6", "LIFE-8", "LIFE-11"],
    crash_and_restart(None, &[req!("LIFE-8"), req!("LIFE-11")]),
    with_timeout(Duration::from_secs(30)),
    "a plugin killed by SIGKILL after activation is relaunched and activated again"
);

case!(
    EXIT_0_IS_A_CRASH: host "host/restart/exit-0-is-a-crash",
    ["LIFE-6"],
    crash_and_restart(Some(0), &[]),
    with_timeout(Duration::from_secs(30)),
    "a plugin that exits with status 0 while running has crashed too, and is relaunched"
);

/// Launch 0 activated and crashed (`exit`, or SIGKILL), launch 1 up: checks the delay, the
/// reaping of launch 0 and the re-activation of launch 1 with the same configuration.
/// The relaunch after a crash (LIFE-6), and those of the further checks named in `checks`
/// that the case cites: the delay (LIFE-8), the reaping (LIFE-19), the re-activation with the
/// same configuration (LIFE-11) and the events (DRV-10).
fn crash_and_restart(
    h: &mut HostUnderTest,
    exit: Option<i32>,
    checks: &[&str],
) -> Result<(), Outcome> {
    h.script(vec![
        crashing(exit, CrashWhen::AfterActivate(200)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let next = relaunched(h)?;
    // Everything the crashed agent reported has arrived once its socket has closed.
    h.wait_ended(0, NOTICE);
    let first = h.launches()[0].clone();
    let delay = first.delay_to(&next);
    if checks.contains(&req!("LIFE-8")) && delay < RESTART_DELAY_FLOOR {
        return Err(h.fail(
            req!("LIFE-8"),
            "at least RESTART_DELAY_MIN (1 s) between the crash and the relaunch",
            &format!(
                "{delay:?} from the crash to the start of the relaunched plugin (the machine's \
                 monotonic clock, as the two plugin processes read it)"
            ),
        ));
    }
    if checks.contains(&req!("LIFE-19")) {
        reaped(first.pid, Duration::from_secs(2))
            .map_err(|e| h.fail(req!("LIFE-19"), "the crashed plugin reaped", &e))?;
    }
    // LIFE-11: activated again, with the same configuration.
    if checks.contains(&req!("LIFE-11")) {
        reactivated_with(h, 1, CONFIG)?;
    }
    // DRV-10: what a driver that reports events said.
    if checks.contains(&req!("DRV-10"))
        && h.reports_events()
        && !h.wait(REPLY_TIMEOUT, |w| {
            !w.events_named("crashed").is_empty() && !w.events_named("restarted").is_empty()
        })
    {
        return Err(h.fail(
            req!("DRV-10"),
            "crashed and restarted events (the driver's hello says it reports events)",
            &format!(
                "{:?}",
                h.world()
                    .events
                    .iter()
                    .map(|e| e.1.clone())
                    .collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}

case!(
    ONE_PROCESS_AT_A_TIME: host "host/restart/one-process-at-a-time",
    ["LIFE-6", "LIFE-7"],
    one_process_at_a_time,
    with_timeout(Duration::from_secs(30)),
    "a crashed plugin that outlives its connection is gone before the host launches the next process"
);

/// LIFE-7 with a plugin that outlives its connection: it closes its pipes 200 ms after its
/// activation and exits 2.5 s later (more than RESTART_DELAY_MIN). The host has to wait for it,
/// or kill it after its grace period, before the next launch.
fn one_process_at_a_time(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        Behaviour {
            linger_ms: 2500,
            ..crashing(Some(1), CrashWhen::AfterActivate(200))
        },
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let next = launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        req!("LIFE-6"),
        "a relaunch after the plugin's connection ended",
    )?;
    if let Some((index, pid)) = next.earlier_alive.first() {
        return Err(h.fail(
            req!("LIFE-7"),
            "no new plugin process while the crashed one still runs",
            &format!(
                "launch {} (pid {}) started while launch {index} (pid {pid}), whose connection \
                 had ended, was still running",
                next.index, next.pid
            ),
        ));
    }
    Ok(())
}

case!(
    BACKOFF_GROWS: host "host/restart/backoff-grows",
    ["LIFE-8", "LIFE-9", "LIFE-12"],
    backoff_grows,
    with_timeout(Duration::from_secs(40)),
    "the delays before the relaunches of a plugin that keeps crashing grow: 1 s, 2 s, 4 s"
);

fn backoff_grows(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // Every launch crashes 300 ms after its announcement.
    h.script(vec![crashing(Some(1), CrashWhen::AfterAnnounce(300))]);
    start_ok(h)?;
    launch(
        h,
        3,
        Duration::from_secs(25),
        req!("LIFE-12"),
        "three relaunches of a plugin that keeps crashing",
    )?;
    for i in 0..3 {
        h.wait_ended(i, NOTICE);
    }
    let l = h.launches();
    let delays: Vec<Duration> = (1..=3).map(|i| l[i - 1].delay_to(&l[i])).collect();
    if delays.iter().any(|d| *d < RESTART_DELAY_FLOOR) {
        return Err(h.fail(
            req!("LIFE-8"),
            "every relaunch at least 1 s after the crash",
            &format!("{delays:?}"),
        ));
    }
    let grows =
        delays[1] >= Duration::from_millis(1800) && delays[2] >= Duration::from_millis(3600);
    if !grows {
        return Err(h.fail(
            req!("LIFE-9"),
            "delays of about 1 s, 2 s and 4 s after the first, second and third crash in a row",
            &format!("{delays:?}"),
        ));
    }
    Ok(())
}

case!(
    BACKOFF_CAPPED: host "host/restart/backoff-capped",
    ["LIFE-9", "DRV-6"],
    backoff_capped,
    with_timeout(Duration::from_secs(200)),
    "the delays before the relaunches of a plugin that keeps crashing stop growing at the longest restart delay (2 s asked; a long case at the host's own, with --long)"
);

/// The longest restart delay the backoff cap case asks for (`restart_delay_max_ms`).
const ASKED_RESTART_DELAY_MAX: Duration = Duration::from_secs(2);

/// LIFE-9: the delays stop growing at the longest restart delay. Every launch crashes 200 ms
/// after its announcement; the delays after the failures in a row, RESTART_DELAY_MIN doubled,
/// must each stay within the longest delay (and a margin), up to two failures beyond the point
/// where doubling alone would exceed it.
fn backoff_capped(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let name = "restart_delay_max_ms";
    let max = backoff_setting(
        h,
        name,
        ASKED_RESTART_DELAY_MAX,
        RESTART_DELAY_MAX,
        "about 100 s",
    )?;
    h.script(vec![crashing(Some(1), CrashWhen::AfterAnnounce(200))]);
    let mut args = h.start_args("p", START);
    args[name] = json!(max.as_millis() as u64);
    let effective = h.start_timeout(START);
    let r = h.call_for("start", args, effective + REPLY_TIMEOUT, req!("HS-4"));
    must(h, r, req!("DRV-5"), "a successful start")?;
    let margin = h.scaled(DELAY_MARGIN);
    // Failure n is followed by the delay min(2^(n-1) s, max): the first failure whose uncapped
    // delay would exceed the bound, and one more, show the cap.
    let mut last = 1;
    while Duration::from_secs(1 << (last - 1)) <= max + margin {
        last += 1;
    }
    last += 1;
    let mut delays = Vec::new();
    for n in 1..=last {
        let expected = Duration::from_secs(1 << (n - 1).min(30)).min(max);
        let d = relaunch_delay(
            h,
            n,
            expected + margin,
            req!("LIFE-9"),
            &format!(
                "the relaunch after failure {n} in a row within {expected:?} (RESTART_DELAY_MIN \
                 doubled, at most the longest restart delay of {max:?}) and a margin of \
                 {margin:?}"
            ),
            &delays,
        )?;
        delays.push(d);
    }
    honoured(
        h,
        name,
        format!("it does not: the backoff was checked at the host's own {max:?}, {delays:?}"),
    )
}

case!(
    BACKOFF_RESETS: host "host/restart/backoff-resets",
    ["LIFE-10", "LIFE-9", "DRV-6"],
    backoff_resets,
    with_timeout(Duration::from_secs(200)),
    "after a plugin ran for the stable period (2 s asked; a long case at the host's own, with --long), its next crash is again followed by a relaunch after 1 s"
);

/// The stable period the backoff reset case asks for (`stable_period_ms`).
const ASKED_STABLE_PERIOD: Duration = Duration::from_secs(2);

/// LIFE-10: the failures in a row go back to zero after the stable period. Launches 0 and 1
/// crash 200 ms after their announcements (delays of 1 s, then 2 s); launch 2 runs for the
/// stable period and a margin before it crashes: launch 3 must follow within 1 s and a margin
/// (a host that kept counting waits 4 s).
fn backoff_resets(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let name = "stable_period_ms";
    let stable = backoff_setting(h, name, ASKED_STABLE_PERIOD, STABLE_PERIOD, "about 70 s")?;
    let margin = h.scaled(DELAY_MARGIN);
    let runs = stable + margin;
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        crashing(Some(1), CrashWhen::AfterAnnounce(runs.as_millis() as u64)),
        Behaviour::default(),
    ]);
    let mut args = h.start_args("p", START);
    args[name] = json!(stable.as_millis() as u64);
    let effective = h.start_timeout(START);
    let r = h.call_for("start", args, effective + REPLY_TIMEOUT, req!("HS-4"));
    must(h, r, req!("DRV-5"), "a successful start")?;
    let mut delays = Vec::new();
    for n in 1..=2 {
        let expected = Duration::from_secs(1 << (n - 1));
        let d = relaunch_delay(
            h,
            n,
            expected + margin,
            req!("LIFE-9"),
            &format!(
                "the relaunch after failure {n} in a row within {expected:?} (RESTART_DELAY_MIN \
                 doubled) and a margin of {margin:?}"
            ),
            &delays,
        )?;
        delays.push(d);
    }
    // Launch 2 runs for `runs`, then crashes by itself.
    if !h.wait_ended(2, runs + NOTICE) {
        return Err(Outcome::error(format!(
            "launch 2 of the agent still runs {:?} after it started",
            runs + NOTICE
        )));
    }
    relaunch_delay(
        h,
        3,
        Duration::from_secs(1) + margin,
        req!("LIFE-10"),
        &format!(
            "after a plugin ran for {runs:?} (more than the stable period of {stable:?}), its \
             crash counts as the first in a row: the relaunch within 1 s and a margin of \
             {margin:?}"
        ),
        &delays,
    )?;
    honoured(
        h,
        name,
        format!("it does not: the reset was checked at the host's own {stable:?}"),
    )
}

case!(
    FAILED_RELAUNCH_IS_RETRIED: host "host/restart/failed-relaunch-is-retried",
    ["LIFE-6", "LIFE-12", "HS-4", "LIFE-7"],
    failed_relaunch,
    with_timeout(Duration::from_secs(40)),
    "a relaunch that never announces times out like a start, and the host relaunches again"
);

fn failed_relaunch(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // Launch 0 crashes once running; launch 1 never announces; launch 2 is well.
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        Behaviour {
            never_announce: true,
            ..Behaviour::default()
        },
        Behaviour::default(),
    ]);
    let r = h.start("p", SHORT_START);
    must(h, r, req!("DRV-5"), "a successful start")?;
    let timeout = h.start_timeout(SHORT_START);
    let second = launch(h, 1, RELAUNCH, req!("LIFE-6"), "a relaunch after the crash")?;
    let third = launch(
        h,
        2,
        Duration::from_secs(14) + timeout,
        req!("LIFE-12"),
        "another relaunch after the relaunch that never announced timed out",
    )?;
    let waited = third.hello_at.saturating_duration_since(second.hello_at);
    if waited < timeout {
        return Err(h.fail(
            req!("HS-4"),
            "the host waiting for the relaunched plugin's announcement for its start timeout",
            &format!("the next launch came {waited:?} after it"),
        ));
    }
    reaped(second.pid, Duration::from_secs(2)).map_err(|e| {
        h.fail(
            req!("LIFE-7"),
            "the silent relaunch killed before the next launch",
            &e,
        )
    })
}

case!(
    REACTIVATES_WITH_LAST_CONFIGURATION: host "host/restart/reactivates-with-last-configuration",
    ["LIFE-6", "LIFE-11", "RPC-18"],
    reactivates_with_last_configuration,
    with_timeout(Duration::from_secs(30)),
    "a plugin activated twice, with two configurations, then crashed, is activated again with the second"
);

/// A second configuration, for the cases that activate twice.
const CONFIG_2: &str = "{\"generation\": 2, \"z\": \"<second>\"}";

/// LIFE-11 with two activations before the crash: the relaunched plugin gets the
/// configuration of the second (the last successful one), not the first.
fn reactivates_with_last_configuration(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour::default(), Behaviour::default()]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    activate_with(h, CONFIG_2, req!("DRV-7"))?;
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    h.order(0, &Order::Exit { code: 1 })?;
    relaunched(h)?;
    reactivated_with(h, 1, CONFIG_2)
}

case!(
    CALLS_SUCCEED_AFTER_RELAUNCH: host "host/restart/calls-succeed-after-relaunch",
    ["LIFE-6", "LIFE-11", "DRV-7"],
    calls_after_relaunch,
    with_timeout(Duration::from_secs(30)),
    "after a relaunch, hook calls through the supervisor succeed again"
);

fn calls_after_relaunch(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    relaunched(h)?;
    // The host may still be re-activating; calls go through once it is Running.
    if !h.wait(REPLY_TIMEOUT, |w| w.launches[1].event("config").is_some()) {
        return Err(h.fail(
            req!("LIFE-11"),
            "the relaunched plugin activated again",
            "no OnActivate",
        ));
    }
    let deadline = Instant::now() + h.scaled(REPLY_TIMEOUT);
    loop {
        match h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT)? {
            Ok(_) => break,
            Err(e) if Instant::now() >= deadline => {
                return Err(h.fail(
                    req!("LIFE-11"),
                    "a successful OnDeactivate through the supervisor once the relaunched plugin is running",
                    &e,
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    if !h.wait_request(1, "LocalHooks.OnDeactivate", REPLY_TIMEOUT) {
        return Err(h.fail(
            req!("DRV-7"),
            "the OnDeactivate at the relaunched plugin",
            "not received",
        ));
    }
    Ok(())
}

/// Launch `index` was activated again after a crash (OnActivate, then its configuration),
/// with the configuration `expected`, byte for byte (LIFE-11).
fn reactivated_with(h: &HostUnderTest, index: usize, expected: &str) -> Result<(), Outcome> {
    if !h.wait(REPLY_TIMEOUT, |w| {
        w.launches[index].event("config").is_some()
    }) {
        return Err(h.fail(
            req!("LIFE-11"),
            "the relaunched plugin activated again (OnActivate, then its configuration)",
            &format!("it received {:?}", h.launches()[index].requests()),
        ));
    }
    let got = h.launches()[index]
        .event("config")
        .cloned()
        .unwrap_or_default();
    check_config(
        h,
        &got,
        expected,
        req!("LIFE-11"),
        "the re-activation after the crash, with the configuration of the last activation",
    )
}

/// A backoff setting as a case uses it: the value the host uses, or the reason the case is
/// skipped (the setting is not honoured and the run does not allow long cases).
fn backoff_setting(
    h: &HostUnderTest,
    name: &str,
    asked: Duration,
    default: Duration,
    takes: &str,
) -> Result<Duration, Outcome> {
    let value = h.setting(name, asked, default);
    if !h.honours(name) && !h.long_allowed() {
        return Err(Outcome::Skipped(format!(
            "a long case: the driver does not honour {name}, and at the host's own value of \
             {value:?} the case takes {takes}; run it with --long"
        )));
    }
    Ok(value)
}

/// Waits for launch `index`, a relaunch after the failure that ended launch `index - 1`, at
/// most `bound` after that end; the delay between them, or a failure of `requirement`.
fn relaunch_delay(
    h: &HostUnderTest,
    index: usize,
    bound: Duration,
    requirement: &'static str,
    expected: &str,
    so_far: &[Duration],
) -> Result<Duration, Outcome> {
    // The agent crashes by itself; its end does not depend on the host.
    if !h.wait_ended(index - 1, NOTICE) {
        return Err(Outcome::error(format!(
            "launch {} of the agent did not end after its crash",
            index - 1
        )));
    }
    let ended = h.launches()[index - 1]
        .ended_at
        .expect("launch ended, as waited for");
    let deadline = (ended + bound).min(h.deadline(bound));
    if !h.wait_until(deadline, |w| w.launches.len() > index) {
        return Err(h.fail(
            requirement,
            expected,
            &format!(
                "no relaunch within {bound:?} of failure {index} (the delays before it: {so_far:?})"
            ),
        ));
    }
    Ok(h.launches()[index]
        .hello_at
        .saturating_duration_since(ended))
}
