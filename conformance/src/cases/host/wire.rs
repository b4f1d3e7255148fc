//! `host/wire/output-follows-sender-rules`: the case that cites what is checked in every host
//! case (spec/harness.md section 1.2): the agents observe everything the host writes (the
//! sender rules of spec 02 to 05) and every case drives the host with driver commands (spec
//! 07), here in a plain session of start, activations, deactivations and a stop.
//!
//! Requirements: FRAME-1, FRAME-2, FRAME-9, FRAME-10, STREAM-1 to STREAM-4, STREAM-6 to
//! STREAM-8, HS-3, RPC-1, RPC-2, RPC-4, RPC-5, GOB-1, GOB-7, DRV-2, DRV-5, DRV-7, DRV-8, DRV-12.

use std::time::Duration;

use serde_json::json;

use super::helpers::{activate_ok, must, start_ok};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

// What is checked in every host case (spec/harness.md section 1.2): the agents' observer of
// the host's output (the sender rules) and the commands every case drives the host
// with (a reply to each, a start, an activation, a stop that succeed where they must).
case!(OUTPUT_FOLLOWS_SENDER_RULES: host "host/wire/output-follows-sender-rules",
    ["HS-3", "STREAM-1", "STREAM-2", "STREAM-3", "STREAM-6", "STREAM-7", "STREAM-8", "STREAM-4",
    "FRAME-1", "FRAME-2", "FRAME-9", "FRAME-10", "RPC-1", "RPC-2", "RPC-4", "RPC-5", "GOB-1",
    "GOB-7", "DRV-2", "DRV-5", "DRV-7", "DRV-8", "DRV-12"],
    session,
    "in a session of start, two activations, deactivations and a stop, everything the host writes follows the sender's rules");

fn session(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    for _ in 0..2 {
        activate_ok(h, req!("DRV-7"))?;
        let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
        must(h, r, req!("DRV-7"), "a successful deactivation")?;
    }
    activate_ok(h, req!("DRV-7"))?;
    let r = h.call("stop", json!({"plugin": "p"}), Duration::from_secs(20));
    must(h, r, req!("DRV-8"), "a successful stop")?;
    // The agents' observations are the verdict (the runner reports them).
    Ok(())
}
