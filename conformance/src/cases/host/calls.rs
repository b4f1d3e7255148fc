//! `host/calls/...`: hook calls when the plugin goes down (spec 06 section 6.8): a call in
//! flight fails promptly and is not repeated, and a call while the plugin waits for its
//! relaunch fails at once.
//!
//! Rows: L13, L23, R10.
//! Requirements: RPC-11, RPC-16, LIFE-6, LIFE-14, LIFE-15.

use std::time::{Duration, Instant};

use serde_json::json;

use super::helpers::{
    crashing, in_restart_delay, launch, must_fail, start_ok, CONFIG, NOTICE, RELAUNCH,
};
use crate::agent::{Behaviour, CrashWhen};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    IN_FLIGHT_CALL_FAILS: host "host/calls/in-flight-call-fails",
    ["RPC-11", "LIFE-6", "LIFE-15", "RPC-16"],
    in_flight_call,
    with_timeout(Duration::from_secs(30)),
    "an OnActivate in flight when the plugin dies fails promptly, and is not sent to the relaunched plugin"
);

fn in_flight_call(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(3), CrashWhen::OnActivate),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    let began = Instant::now();
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        Duration::from_secs(10),
    );
    let took = began.elapsed();
    must_fail(
        h,
        r,
        req!("RPC-11"),
        "the activation failing: the plugin died while OnActivate was in flight",
    )?;
    if took > h.scaled(NOTICE) {
        return Err(h.fail(
            req!("RPC-11"),
            &format!(
                "the call failing promptly (within {:?}) once the plugin died",
                h.scaled(NOTICE)
            ),
            &format!("it failed after {took:?}"),
        ));
    }
    let next = launch(
        h,
        1,
        RELAUNCH,
        req!("LIFE-6"),
        "a relaunch of the plugin that crashed",
    )?;
    let _ = next;
    h.wait_agent(1, "announced", REPLY_TIMEOUT);
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let requests = h.launches()[1].requests();
    if !requests.is_empty() {
        return Err(h.fail(
            req!("LIFE-15"),
            "no hook call sent to the relaunched plugin: the failed OnActivate is not repeated, and \
             the plugin was not activated",
            &format!("it received {requests:?}"),
        ));
    }
    Ok(())
}

case!(
    FAIL_AT_ONCE_WHILE_DOWN: host "host/calls/fail-at-once-while-down",
    ["LIFE-14"],
    while_down,
    with_timeout(Duration::from_secs(30)),
    "a hook call made while the plugin waits for its relaunch fails at once"
);

fn while_down(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let Some((r, took)) = in_restart_delay(h, "deactivate")? else {
        return Ok(());
    };
    let relaunched_meanwhile = h.launches().len() > 1;
    match r? {
        Err(_) if took <= Duration::from_millis(500) => Ok(()),
        Err(e) => Err(h.fail(
            req!("LIFE-14"),
            "a call while the plugin is down failing at once",
            &format!("it failed after {took:?}: {e}"),
        )),
        Ok(_) if relaunched_meanwhile => Ok(()),
        Ok(v) => Err(h.fail(
            req!("LIFE-14"),
            "a call while the plugin is down failing at once",
            &format!("it succeeded: {v}"),
        )),
    }
}
