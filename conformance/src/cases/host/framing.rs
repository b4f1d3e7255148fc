//! `host/framing/...`: the host as a receiver of frames (spec 02): responses in one-byte frames
//! and with non-minimal varints, and one case per malformed frame of Table 2-2 that the plugin
//! sends (`table_cases`), each a connection error that ends that connection (a crash), not
//! the host.
//!
//! Rows: F7, M1 to M4, M6, X1 to X5, X7.
//! Requirements: FRAME-3 to FRAME-6, FRAME-8, FRAME-12, FRAME-14, LIFE-6, DRV-12.

use std::time::Duration;

use serde_json::json;

use super::helpers::{activate_ok, agent_saw, launch, must, send, start_ok, NOTICE, RELAUNCH};
use crate::agent::Behaviour;
use crate::cases::{finish, generated, Case, Runner};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use crate::transcript::from_hex;
use rpcplugin_codec::req;

case!(
    ONE_BYTE_FRAMES: host "host/framing/one-byte-frames",
    ["FRAME-12"],
    with_behaviour(Behaviour { one_byte_frames: true, ..Behaviour::default() }),
    "responses written one byte per frame are reassembled"
);

case!(
    NON_MINIMAL_VARINTS: host "host/framing/non-minimal-varints",
    ["FRAME-3"],
    with_behaviour(Behaviour { nonminimal_varints: true, ..Behaviour::default() }),
    "frames whose header varints are not minimal are accepted"
);

fn with_behaviour(h: &mut HostUnderTest, b: Behaviour) -> Result<(), Outcome> {
    h.script(vec![b]);
    start_ok(h)?;
    activate_ok(h, req!("FRAME-12"))?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, req!("FRAME-12"), "a successful deactivation")?;
    Ok(())
}

/// Table 2-2: name, the bytes in hex, the requirement, what they are.
const GARBAGE: &[(&str, &str, &str, &str)] = &[
    (
        "negative-stream-id",
        "0100",
        req!("FRAME-5"),
        "a frame with stream id -1",
    ),
    (
        "negative-length",
        "0201",
        req!("FRAME-6"),
        "a frame with length -1",
    ),
    (
        "oversized-frame",
        "0282808010",
        req!("FRAME-8"),
        "a header declaring 16 777 217 payload bytes",
    ),
    (
        "varint-overflow",
        "ffffffffffffffffff7f",
        req!("FRAME-4"),
        "a stream id varint that overflows",
    ),
    (
        "length-varint-overflow",
        "02808080808080808002",
        req!("FRAME-4"),
        "a length varint that overflows",
    ),
    (
        "most-negative-length",
        "02ffffffffffffffffff01",
        req!("FRAME-6"),
        "a length that decodes to -2^63",
    ),
];

/// One case per row of Table 2-2 that a plugin can send: the host ends that connection.
pub(super) fn table_cases() -> Vec<Case> {
    let rows = GARBAGE.iter().enumerate();
    rows.map(|(i, (name, hex, requirement, title))| {
        generated(
            format!("host/framing/{name}"),
            format!("{title} ({hex}) from the plugin ends that connection (a crash), not the host"),
            vec![
                *requirement,
                req!("FRAME-14"),
                req!("LIFE-6"),
                req!("DRV-12"),
            ],
            Duration::from_secs(30),
            Runner::HostWith(|h, i| finish(garbage(h, i as usize)), i as u64),
        )
    })
    .collect()
}

fn garbage(h: &mut HostUnderTest, row: usize) -> Result<(), Outcome> {
    let (_, hex, requirement, what) = GARBAGE[row];
    let requirement: &'static str =
        crate::requirements::lookup(requirement).map_or(req!("FRAME-14"), |r| r.id.as_str());
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    send(h, 0, &from_hex(hex).unwrap_or_default())?;
    if agent_saw(h, 0, "eof", NOTICE).is_none() {
        return Err(h.fail(
            requirement,
            &format!("after {what} ({hex}) from the plugin, the host ends the connection (end of file at the plugin)"),
            &format!("the connection is still open after {:?}", h.scaled(NOTICE)),
        ));
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        req!("DRV-12"),
        "the driver answering after the plugin's garbage",
    )?;
    launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        req!("LIFE-6"),
        "a relaunch: the connection error is a crash",
    )?;
    Ok(())
}
