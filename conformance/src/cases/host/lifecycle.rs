//! `host/lifecycle/...`: a plugin's whole life as the plugin sees it: its launch, an activation
//! with the configuration, a deactivation and a stop (spec 06 sections 6.3, 6.4 and 6.9, through
//! the driver commands of spec 07 section 7.2).
//!
//! Rows: F1 to F4, S5, S6, H1, G20, L1, L3, L6.
//! Requirements: TRANS-1, HS-7, RPC-12, RPC-13, RPC-18, GOB-3, LIFE-1, LIFE-17, LIFE-19, DRV-1,
//! DRV-2, DRV-4, DRV-5, DRV-7, DRV-8.

use std::time::Duration;

use serde_json::json;

use super::helpers::{
    activate_ok, check_config, launch, must, reaped, start_ok, stop, stopped_cleanly, CONFIG,
};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    START_ACTIVATE_DEACTIVATE_STOP: host "host/lifecycle/start-activate-deactivate-stop",
    [
        "TRANS-1", "HS-7", "RPC-12", "RPC-13", "RPC-18", "GOB-3", "LIFE-1", "LIFE-17", "LIFE-19",
        "DRV-1", "DRV-2", "DRV-4", "DRV-5", "DRV-7", "DRV-8",
    ],
    lifecycle,
    "start, activation with a configuration, deactivation and stop, as the plugin sees them"
);

fn lifecycle(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let first = launch(
        h,
        0,
        REPLY_TIMEOUT,
        req!("LIFE-1"),
        "the plugin of the bundle launched",
    )?;
    activate_ok(h, req!("DRV-7"))?;
    // The agent's reports travel on their own socket: they may follow the driver's reply.
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let requests = l.requests();
    let api = match requests.first() {
        Some((method, Some(api))) if method == "LocalHooks.OnActivate" => *api,
        _ => {
            return Err(h.fail(
                req!("HS-7"),
                "an OnActivate request on the announced hooks stream",
                &format!("the plugin received {requests:?}"),
            ))
        }
    };
    if api <= 0 || api % 2 == 0 {
        return Err(h.fail(
            req!("RPC-13"),
            "an odd, positive API stream id",
            &api.to_string(),
        ));
    }
    let Some(got) = l.event("config") else {
        return Err(h.fail(
            req!("RPC-13"),
            "an answer to the plugin's LoadPluginConfiguration during OnActivate",
            "none",
        ));
    };
    check_config(h, got, CONFIG, req!("RPC-18"), "during the activation")?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, req!("DRV-7"), "a successful deactivation")?;
    if !h.wait_request(0, "LocalHooks.OnDeactivate", REPLY_TIMEOUT) {
        return Err(h.fail(
            req!("DRV-7"),
            "an OnDeactivate request at the plugin",
            "none",
        ));
    }
    let r = stop(h, req!("LIFE-17"));
    let stopped = must(h, r, req!("DRV-8"), "a successful stop")?;
    stopped_cleanly(h, 0, &stopped)?;
    reaped(first.pid, Duration::from_secs(2))
        .map_err(|e| h.fail(req!("LIFE-19"), "the stopped plugin reaped", &e))
}
