//! `host/start/...`: a start that succeeds or fails (spec 04 section 4.4, the start timeout;
//! spec 06 section 6.3): late announcements, plugins that exit or never announce, a launch that
//! fails, and no relaunch after any failed start.
//!
//! Rows: E10, E11, H4, H5, L2, L4, L22.
//! Requirements: HS-4, HS-6, LIFE-4, LIFE-5, LIFE-19, LIFE-20, DRV-5.

use std::time::{Duration, Instant};

use serde_json::json;

use super::helpers::{
    fails_at_once_and_is_reaped, launch, must, must_fail, reaped, SHORT_START, START,
};
use crate::agent::Behaviour;
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

/// The time a case watches for a relaunch that must not come: more than the seed's 1 s sleep
/// before each relaunch, and a launch.
const NO_RELAUNCH_WATCH: Duration = Duration::from_millis(2500);

case!(
    TIMEOUT: host "host/start/timeout",
    ["HS-4", "LIFE-4", "LIFE-5", "LIFE-19"],
    start_timeout,
    "a plugin that never announces fails the start within the start timeout; it is killed and not relaunched"
);

fn start_timeout(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_announce: true,
        ..Behaviour::default()
    }]);
    // The host's own start timeout when its driver does not take the one asked for (DRV-4).
    let timeout = h.start_timeout(SHORT_START);
    let began = Instant::now();
    let r = h.start("p", SHORT_START);
    let took = began.elapsed();
    must_fail(
        h,
        r,
        req!("HS-4"),
        "a failed start: the plugin never announces",
    )?;
    let margin = h.scaled(Duration::from_secs(1));
    if took > timeout + margin {
        return Err(h.fail(
            req!("HS-4"),
            &format!(
                "the start failing within its timeout of {timeout:?}{} (and a margin of \
                 {margin:?})",
                if h.honours("start_timeout_ms") {
                    ", which the driver passes on to the host"
                } else {
                    ", the host's own"
                }
            ),
            &format!("it failed after {took:?}"),
        ));
    }
    let l = launch(h, 0, Duration::ZERO, req!("HS-4"), "the plugin launched")?;
    reaped(l.pid, Duration::from_secs(2)).map_err(|e| {
        h.fail(
            req!("LIFE-4"),
            "the plugin killed and reaped before the start is reported failed",
            &e,
        )
    })?;
    no_relaunch(h, "no relaunch after a failed start")
}

case!(
    LATE_ANNOUNCEMENT: host "host/start/late-announcement",
    ["HS-4"],
    late_announcement,
    "an announcement 500 ms after the launch, within a 3 s start timeout, starts the plugin"
);

fn late_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // 500 ms, or a sixth of a host's own shorter start timeout (DRV-4).
    let delay = (h.start_timeout(START) / 6).min(Duration::from_millis(500));
    h.script(vec![Behaviour {
        announce_delay_ms: delay.as_millis() as u64,
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must(
        h,
        r,
        req!("HS-4"),
        &format!(
            "a successful start: the plugin announces after {delay:?}, within the start timeout \
             of {:?}",
            h.start_timeout(START)
        ),
    )?;
    Ok(())
}

case!(
    EOF_BEFORE_ANNOUNCEMENT: host "host/start/eof-before-announcement",
    ["HS-6", "LIFE-4", "LIFE-5"],
    eof_before_announcement,
    "a plugin that exits before announcing fails the start at once, not at the start timeout"
);

fn eof_before_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        exit_before_announce: Some(0),
        ..Behaviour::default()
    }]);
    let began = Instant::now();
    let r = h.start("p", START);
    let took = began.elapsed();
    must_fail(
        h,
        r,
        req!("HS-6"),
        "a failed start: the plugin exits without announcing",
    )?;
    if took >= h.start_timeout(START) {
        return Err(h.fail(
            req!("HS-6"),
            "the start failing as soon as the plugin's output ends, before the start timeout",
            &format!("it failed after {took:?}, the start timeout"),
        ));
    }
    no_relaunch(h, "no relaunch after a failed start")
}

case!(
    NO_RELAUNCH_AFTER_BAD_ANNOUNCEMENT: host "host/start/no-relaunch-after-bad-announcement",
    ["LIFE-5"],
    no_relaunch_after_bad_announcement,
    "after a start that failed at a bad announcement, nothing launches the plugin again"
);

fn no_relaunch_after_bad_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        announcement_hex: Some("0104".into()),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must_fail(
        h,
        r,
        req!("LIFE-5"),
        "a failed start: the announcement has control byte 01 (Table 4-1, E1)",
    )?;
    let watch = h.scaled(NO_RELAUNCH_WATCH);
    if h.wait(NO_RELAUNCH_WATCH, |w| w.launches.len() > 1) {
        let l = h.launches();
        let after = l[1].hello_at.saturating_duration_since(l[0].hello_at);
        return Err(h.fail(
            req!("LIFE-5"),
            "no launch after a failed start until the user starts the plugin again",
            &format!(
                "{} launches within {watch:?}: the second {after:?} after the first",
                l.len()
            ),
        ));
    }
    Ok(())
}

case!(
    FAILED_PLUGIN_IS_KILLED: host "host/start/failed-plugin-is-killed",
    ["LIFE-4", "LIFE-19"],
    failed_plugin_is_killed,
    "a plugin that ignores the end of its connection after a bad announcement is killed and reaped before the start fails"
);

fn failed_plugin_is_killed(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let b = Behaviour {
        announcement_hex: Some("0104".into()),
        ignore_eof: true,
        ..Behaviour::default()
    };
    let what = "the announcement has control byte 01 (Table 4-1, E1), and the plugin ignores the \
                end of its connection";
    fails_at_once_and_is_reaped(h, b, req!("LIFE-4"), what)
}

case!(
    LAUNCH_FAILS: host "host/start/launch-fails",
    ["LIFE-5", "DRV-5"],
    launch_fails,
    "a bundle whose executable does not exist fails its start with an error, and nothing launches it later"
);

/// Table 6-1, L2: the launch itself fails (the bundle's executable does not exist): the start
/// fails with an error (DRV-5), and nothing launches the plugin later (LIFE-5).
fn launch_fails(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let bundle = h.dir().join("bundle-without-its-executable");
    std::fs::create_dir_all(&bundle).map_err(|e| Outcome::error(e.to_string()))?;
    std::fs::write(
        bundle.join("plugin.json"),
        json!({"id": "missing", "backend": {"executable": "not-there"}}).to_string(),
    )
    .map_err(|e| Outcome::error(e.to_string()))?;
    let args = json!({
        "plugin": "p",
        "bundle": bundle.display().to_string(),
        "start_timeout_ms": h.scaled(START).as_millis() as u64,
    });
    let r = h.call("start", args, START + REPLY_TIMEOUT);
    must_fail(
        h,
        r,
        req!("DRV-5"),
        "a failed start: the bundle's executable does not exist",
    )?;
    // A host that relaunched would launch... nothing that exists either: a restart loop is
    // seen in the driver's events (started or crashed) or in its state.
    std::thread::sleep(h.scaled(NO_RELAUNCH_WATCH));
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let state = match r? {
        Ok(v) => v["state"].as_str().unwrap_or("").to_string(),
        Err(_) => "stopped".to_string(),
    };
    let loops = {
        let w = h.world();
        w.events_named("crashed").len() + w.events_named("restarted").len()
    };
    if !matches!(state.as_str(), "stopped" | "failed") || loops > 0 {
        return Err(h.fail(
            req!("LIFE-5"),
            "after a launch that failed, nothing pending: the supervisor Stopped",
            &format!("its state is {state:?} with {loops} crash or restart event(s)"),
        ));
    }
    Ok(())
}

case!(
    STOP_AFTER_FAILED_START: host "host/start/stop-after-failed-start",
    ["LIFE-20", "LIFE-5"],
    stop_after_failed_start,
    "a stop after a failed start succeeds, and nothing is relaunched"
);

fn stop_after_failed_start(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        exit_before_announce: Some(1),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must_fail(h, r, req!("HS-6"), "a failed start")?;
    let r = h.call("stop", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        req!("LIFE-20"),
        "a successful stop after a failed start",
    )?;
    no_relaunch(h, "no relaunch after a failed start and a stop")
}

/// Nothing launched the plugin again (LIFE-5, `expected` in words) 1.5 s after its start
/// failed.
fn no_relaunch(h: &HostUnderTest, expected: &str) -> Result<(), Outcome> {
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let n = h.launches().len();
    if n > 1 {
        return Err(h.fail(req!("LIFE-5"), expected, &format!("{n} launches")));
    }
    Ok(())
}
