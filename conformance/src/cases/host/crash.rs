//! `host/crash/...`: ends of a connection that are crashes although the process runs on (spec
//! 06 section 6.6): the plugin closes its output (spec 01 section 1.5) or its hooks stream
//! (spec 03 section 3.5).
//!
//! Rows: H7, L7, M9, S6, S17.
//! Requirements: TRANS-7, TRANS-8, STREAM-10, LIFE-6.

use std::time::Duration;

use super::helpers::{activate_ok, agent_saw, launch, start_ok, NOTICE, RELAUNCH};
use crate::agent::Order;
use crate::host_under_test::HostUnderTest;
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    PLUGIN_CLOSES_ITS_OUTPUT: host "host/crash/plugin-closes-its-output",
    ["LIFE-6", "TRANS-7", "TRANS-8"],
    crash_by_order(Order::CloseOutput),
    with_timeout(Duration::from_secs(30)),
    "a plugin that closes descriptor 4 but keeps running has crashed: the host ends the connection and relaunches it"
);

case!(
    PLUGIN_CLOSES_HOOKS_STREAM: host "host/crash/plugin-closes-hooks-stream",
    ["LIFE-6", "STREAM-10"],
    crash_by_order(Order::CloseStream { stream: 2 }),
    with_timeout(Duration::from_secs(30)),
    "a plugin that closes its hooks stream has crashed: the host ends the connection and relaunches it"
);

fn crash_by_order(h: &mut HostUnderTest, order: Order) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    h.order(0, &order)?;
    if agent_saw(h, 0, "eof", NOTICE).is_none() {
        return Err(h.fail(
            req!("LIFE-6"),
            "the host ending the connection (end of file at the plugin) once it sees the plugin's \
             connection or hooks stream end",
            &format!("no end of file within {:?}", h.scaled(NOTICE)),
        ));
    }
    launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        req!("LIFE-6"),
        "a relaunch: the end counts as a crash",
    )?;
    Ok(())
}
