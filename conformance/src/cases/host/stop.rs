//! `host/stop/...`: the stop of a plugin (spec 06 section 6.9, Table 6-1): deactivation, then
//! the end of the connection, the grace period and the kill; a deactivation that never ends; a
//! stop during the start, the restart delay or a relaunch; and a second stop.
//!
//! Rows: L5, L9, L12, L17 to L22.
//! Requirements: TRANS-8, LIFE-6, LIFE-16 to LIFE-20, LIFE-22, LIFE-23, DRV-3, DRV-6, DRV-8,
//! DRV-11.

use std::time::{Duration, Instant};

use serde_json::json;

use super::helpers::{
    activate_ok, crashing, honoured, in_restart_delay, launch, must, must_fail, reaped, relaunched,
    saw_eof, start_ok, stop, stopped_cleanly,
};
use crate::agent::{Behaviour, CrashWhen};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    DEACTIVATES_THEN_ENDS_CONNECTION: host "host/stop/deactivates-then-ends-connection",
    ["LIFE-16", "LIFE-17", "LIFE-19", "TRANS-8", "DRV-8"],
    stop_deactivates,
    "a stop of an activated plugin calls OnDeactivate, then closes the pipes; the plugin exits with 0 and is reaped"
);

fn stop_deactivates(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let r = stop(h, req!("LIFE-17"));
    let stopped = must(h, r, req!("DRV-8"), "a successful stop")?;
    // The agent's reports travel on their own socket: they are complete once it has ended.
    h.wait_ended(0, REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let deactivated = l
        .events
        .iter()
        .position(|(_, v)| v["event"] == "request" && v["method"] == "LocalHooks.OnDeactivate");
    let eof = l.events.iter().position(|(_, v)| v["event"] == "eof");
    match (deactivated, eof) {
        (None, _) => {
            return Err(h.fail(
                req!("LIFE-16"),
                "OnDeactivate before the end of the connection, when stopping an activated plugin",
                "no OnDeactivate",
            ))
        }
        (Some(_), None) => {
            return Err(h.fail(
                req!("LIFE-17"),
                "the host closing the plugin's pipes (end of file at the plugin)",
                "no end of file",
            ))
        }
        (Some(d), Some(e)) if e < d => {
            return Err(h.fail(
                req!("LIFE-16"),
                "OnDeactivate before the end of the connection",
                "after it",
            ))
        }
        _ => {}
    }
    stopped_cleanly(h, 0, &stopped)?;
    reaped(l.pid, Duration::from_secs(2))
        .map_err(|e| h.fail(req!("LIFE-19"), "the plugin reaped", &e))
}

case!(
    KILLS_AFTER_GRACE: host "host/stop/kills-after-grace",
    ["LIFE-17", "LIFE-18", "LIFE-19", "DRV-6"],
    kills_after_grace,
    with_timeout(Duration::from_secs(30)),
    "a plugin that ignores the end of its connection is killed, but only after the stop grace period"
);

fn kills_after_grace(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        ignore_eof: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    let grace = h.stop_grace();
    let r = h.call(
        "stop",
        json!({"plugin": "p"}),
        grace + Duration::from_secs(15),
    );
    let stopped = must(h, r, req!("DRV-8"), "a successful stop")?;
    h.wait_ended(0, REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let Some(eof_at) = l.event_at("eof") else {
        return Err(h.fail(
            req!("LIFE-17"),
            "the host closing the plugin's pipes first",
            "no end of file at the plugin",
        ));
    };
    let ended = l.ended_at.unwrap_or_else(Instant::now);
    let lived = ended.saturating_duration_since(eof_at);
    if lived + Duration::from_millis(150) < grace {
        return Err(h.fail(
            req!("LIFE-17"),
            &format!("no signal before the stop grace period ({grace:?}) after the end of the connection"),
            &format!("the plugin died {lived:?} after its end of file"),
        ));
    }
    reaped(l.pid, Duration::from_secs(2))
        .map_err(|e| h.fail(req!("LIFE-18"), "the plugin killed and reaped", &e))?;
    if stopped["killed"] != true {
        return Err(h.fail(
            req!("DRV-8"),
            "a stop reply saying the host killed the plugin",
            &stopped.to_string(),
        ));
    }
    // DRV-6, a recommendation: the case could be timed by the harness's grace period.
    honoured(
        h,
        "stop_grace_ms",
        format!("it does not: the case waited for the host's own grace period of {grace:?}"),
    )
}

case!(
    DEACTIVATION_TIMEOUT: host "host/stop/deactivation-timeout",
    ["LIFE-16", "LIFE-17", "LIFE-20"],
    deactivation_timeout,
    with_timeout(Duration::from_secs(30)),
    "a plugin that never answers OnDeactivate is stopped after the deactivation timeout; a second stop meanwhile waits for it"
);

fn deactivation_timeout(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_answer_deactivate: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let limit = h.deactivate_timeout() + h.stop_grace() + Duration::from_secs(3);
    let began = Instant::now();
    let first = h.send("stop", json!({"plugin": "p"}))?;
    // Table 6-1, L21: a second stop during the first waits for it and succeeds too.
    h.wait_request(0, "LocalHooks.OnDeactivate", REPLY_TIMEOUT);
    let second = h.send("stop", json!({"plugin": "p"}))?;
    let r = h.reply_for(first, limit + Duration::from_secs(5), req!("LIFE-16"));
    let took = began.elapsed();
    must(
        h,
        r,
        req!("LIFE-16"),
        "a stop that completes although OnDeactivate is never answered",
    )?;
    let r = h.reply_for(second, REPLY_TIMEOUT, req!("LIFE-20"));
    must(
        h,
        r,
        req!("LIFE-20"),
        "a second stop, sent while the first waits for OnDeactivate, succeeding once the plugin \
         is stopped",
    )?;
    let allowed = "the deactivation timeout, the grace period and a margin";
    stopped_within(h, took, limit, req!("LIFE-16"), allowed)?;
    h.wait_ended(0, REPLY_TIMEOUT);
    if !saw_eof(h, 0) {
        return Err(h.fail(
            req!("LIFE-17"),
            "the connection ended after the deactivation timeout",
            "no end of file at the plugin",
        ));
    }
    Ok(())
}

case!(
    DURING_BACKOFF: host "host/stop/during-backoff",
    ["LIFE-20", "LIFE-22"],
    stop_during_backoff,
    with_timeout(Duration::from_secs(30)),
    "a stop while the host waits to relaunch a crashed plugin returns at once; nothing is relaunched"
);

fn stop_during_backoff(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let Some((r, took)) = in_restart_delay(h, "stop")? else {
        return Ok(());
    };
    must(
        h,
        r,
        req!("LIFE-20"),
        "a successful stop during the restart delay",
    )?;
    if took > Duration::from_millis(900) && h.launches().len() == 1 {
        return Err(h.fail(
            req!("LIFE-22"),
            "the stop returning at once, cancelling the relaunch",
            &format!("it took {took:?}"),
        ));
    }
    std::thread::sleep(h.scaled(Duration::from_millis(2000)));
    let l = h.launches();
    if l.len() > 1 && l[1].ended_at.is_none() {
        return Err(h.fail(
            req!("LIFE-22"),
            "no plugin process after the stop: the pending relaunch cancelled",
            &format!(
                "launch {} is running (pid {})",
                l.len() - 1,
                l[l.len() - 1].pid
            ),
        ));
    }
    Ok(())
}

case!(
    DURING_RESTART: host "host/stop/during-restart",
    ["LIFE-6", "LIFE-17", "LIFE-20"],
    stop_during_restart,
    with_timeout(Duration::from_secs(30)),
    "a stop while a relaunched plugin has not announced yet ends it without OnDeactivate, at once"
);

/// Table 6-1, L17: a stop while the host waits for a relaunched plugin's announcement ends the
/// connection without deactivation (there is nothing to deactivate yet) and succeeds once the
/// process is gone, well before the relaunch's announcement was due.
fn stop_during_restart(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour {
            announce_delay_ms: 8000,
            ..Behaviour::default()
        },
    ]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let next = relaunched(h)?;
    let limit = h.stop_grace() + REPLY_TIMEOUT;
    let began = Instant::now();
    let r = h.call_for("stop", json!({"plugin": "p"}), limit, req!("LIFE-20"));
    let took = began.elapsed();
    must(
        h,
        r,
        req!("LIFE-20"),
        "a successful stop while the relaunched plugin has not announced yet",
    )?;
    stopped_within(
        h,
        took,
        limit,
        req!("LIFE-20"),
        "the grace period and a margin",
    )?;
    h.wait_ended(1, REPLY_TIMEOUT);
    let requests = h.launches()[1].requests();
    if !requests.is_empty() {
        return Err(h.fail(
            req!("LIFE-17"),
            "a stop during the restart ends the connection without hook calls",
            &format!("the relaunched plugin received {requests:?}"),
        ));
    }
    reaped(next.pid, Duration::from_secs(2))
        .map_err(|e| h.fail(req!("LIFE-20"), "no plugin process after the stop", &e))
}

case!(
    DURING_START: host "host/stop/during-start",
    ["LIFE-20", "LIFE-23", "DRV-3"],
    stop_during_start,
    "a stop while a start waits for the announcement is answered, and the start fails"
);

fn stop_during_start(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_announce: true,
        ..Behaviour::default()
    }]);
    let args = h.start_args("p", Duration::from_secs(10));
    let start = h.send("start", args)?;
    if launch(h, 0, REPLY_TIMEOUT, req!("DRV-5"), "the plugin launched").is_err() {
        return Err(h.fail(req!("DRV-5"), "the start launching the plugin", "no launch"));
    }
    let began = Instant::now();
    let r = h.call_for("stop", json!({"plugin": "p"}), REPLY_TIMEOUT, req!("DRV-3"));
    must(
        h,
        r,
        req!("LIFE-20"),
        "a successful stop while the start waits",
    )?;
    let r = h.reply_for(start, REPLY_TIMEOUT, req!("DRV-3"));
    must_fail(
        h,
        r,
        req!("LIFE-23"),
        "the start failing because of the stop",
    )?;
    let took = began.elapsed();
    if took > Duration::from_secs(4) {
        return Err(h.fail(
            req!("DRV-3"),
            "the stop carried out while the start was still waiting (10 s start timeout)",
            &format!("the stop and the start were answered after {took:?}"),
        ));
    }
    let pid = h.launches()[0].pid;
    reaped(pid, Duration::from_secs(2))
        .map_err(|e| h.fail(req!("LIFE-20"), "no plugin process after the stop", &e))
}

case!(
    TWICE: host "host/stop/twice",
    ["LIFE-20", "DRV-11"],
    stop_twice,
    "a second stop succeeds too"
);

fn stop_twice(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    for i in 0..2 {
        // A stop that never ends is the host's (LIFE-20), not its driver's.
        let r = stop(h, req!("LIFE-20"));
        must(
            h,
            r,
            req!("LIFE-20"),
            &format!("stop number {} succeeding", i + 1),
        )?;
    }
    let r = h.call("quit", json!({}), Duration::from_secs(20));
    must(h, r, req!("DRV-11"), "quit answered")?;
    Ok(())
}

/// A stop that took `took` ended within `limit` (`requirement`), which `allowed` says in words.
fn stopped_within(
    h: &HostUnderTest,
    took: Duration,
    limit: Duration,
    requirement: &'static str,
    allowed: &str,
) -> Result<(), Outcome> {
    if took > limit {
        return Err(h.fail(
            requirement,
            &format!("the stop within {allowed} ({limit:?})"),
            &format!("{took:?}"),
        ));
    }
    Ok(())
}
