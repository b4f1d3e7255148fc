//! `host/robustness/...`: input the host must survive with its plugin kept: frames on stream 0
//! after the handshake (spec 04 section 4.6), frames for unknown streams, a frame of the
//! largest size every receiver takes (spec 02 section 2.5), floods on a stream nobody reads
//! (spec 03 section 3.7) and on an API stream after a gob error (spec 05 section 5.2.10).
//!
//! Rows: F5, F6, G2, H6, M10, M11, M14, S3, S4, S13, S14.
//! Requirements: FRAME-7, STREAM-5, STREAM-9, STREAM-14, STREAM-15, HS-8, GOB-15, GOB-18,
//! GOB-19, DRV-12.

use std::time::{Duration, Instant};

use serde_json::json;

use super::helpers::{
    activate_ok, api_stream, connection_went_on, frame, must, saw_eof, send, start_ok, NOTICE,
};
use crate::agent::Order;
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    STREAM_0_AFTER_HANDSHAKE: host "host/robustness/stream-0-after-handshake",
    ["HS-8", "STREAM-14"],
    stream_0_after_handshake,
    "frames on stream 0 after the handshake are discarded and do not stall the host"
);

fn stream_0_after_handshake(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let mut bytes = frame(0, &[0x00, 0x04]);
    bytes.extend(frame(0, b"more on stream zero"));
    send(h, 0, &bytes)?;
    activate_ok(h, req!("HS-8"))
}

case!(
    UNKNOWN_STREAM_FRAMES: host "host/robustness/unknown-stream-frames",
    ["STREAM-5"],
    unknown_streams,
    "data and close frames for streams nobody opened are discarded; activation still works"
);

fn unknown_streams(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let mut bytes = frame(4, b"junk");
    bytes.extend(frame(101, b"junk"));
    bytes.extend(frame(6, b""));
    send(h, 0, &bytes)?;
    activate_ok(h, req!("STREAM-5"))
}

case!(
    MAX_SIZE_FRAME: host "host/robustness/max-size-frame",
    ["FRAME-7", "STREAM-5"],
    max_size_frame,
    "a frame of 1 048 576 payload bytes on an unknown stream is accepted and discarded"
);

fn max_size_frame(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    h.order(
        0,
        &Order::Flood {
            stream: 4,
            bytes: 1 << 20,
        },
    )?;
    if !h.wait_agent(0, "flooded", NOTICE) {
        return Err(h.fail(
            req!("FRAME-7"),
            "the host reading a 1 MiB frame",
            "the plugin's write did not complete",
        ));
    }
    activate_ok(h, req!("FRAME-7"))?;
    if saw_eof(h, 0) {
        return Err(h.fail(
            req!("FRAME-7"),
            "the connection kept after a 1 MiB frame",
            "the host ended it",
        ));
    }
    Ok(())
}

case!(
    FLOOD_ON_UNREAD_STREAM: host "host/robustness/flood-on-unread-stream",
    ["STREAM-15", "STREAM-14", "STREAM-5", "DRV-12"],
    flood,
    with_timeout(Duration::from_secs(60)),
    "64 MiB on a stream nobody reads leave the host's memory bounded and its plugin working"
);

fn flood(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let before = h.driver_rss_kib();
    h.order(
        0,
        &Order::Flood {
            stream: 4,
            bytes: 64 << 20,
        },
    )?;
    if !h.wait_agent(0, "flooded", Duration::from_secs(30)) {
        return Err(h.fail(
            req!("STREAM-14"),
            "the host reading 64 MiB sent on a stream nobody reads",
            "the plugin's writes did not complete within 30 s",
        ));
    }
    activate_ok(h, req!("STREAM-14"))?;
    let after = h.driver_rss_kib();
    if let (Some(b), Some(a)) = (before, after) {
        if a > b + 32 * 1024 {
            return Err(h.fail(
                req!("STREAM-15"),
                "the driver's resident memory growing by less than 32 MiB while 64 MiB flow on an unread stream",
                &format!("{b} KiB before, {a} KiB after"),
            ));
        }
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, req!("DRV-12"), "the driver answering after the flood")?;
    Ok(())
}

case!(
    GOB_FLOOD_ON_API_STREAM: host "host/robustness/gob-flood-on-api-stream",
    ["GOB-15", "GOB-19", "GOB-18", "STREAM-9", "DRV-12"],
    gob_flood,
    with_timeout(Duration::from_secs(60)),
    "a gob Length above 16 MiB on the API stream, then 64 MiB of data: the host closes that stream at once, discards the rest with its memory bounded, and keeps the plugin"
);

/// A gob message Length just above GOB_MAX_MESSAGE_CEILING (16 MiB + 1), which every receiver
/// rejects as soon as it has read it (GOB-15, GOB-19), as a gob uint.
pub(crate) const OVER_CEILING: [u8; 5] = [0xfc, 0x01, 0x00, 0x00, 0x01];

/// GOB-15 and GOB-19 on an open stream: after a gob Length of 16 MiB + 1 on the API stream,
/// above every receiver's limit, the host closes that stream (GOB-18) before any more data
/// comes; then it discards the 64 MiB that follow (STREAM-9), its memory bounded, and the
/// plugin keeps running (a gob error is not a crash).
fn gob_flood(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let api = api_stream(h);
    send(h, 0, &frame(api, &OVER_CEILING))?;
    // The evidence first: the close of the stream, before anything more is sent on it (or the
    // end of the whole connection, which a gob error must not cause).
    let closed = h.wait(NOTICE, |w| {
        let l = &w.launches[0];
        l.events_named("closed").any(|v| v["stream"] == api)
            || l.event("eof").is_some()
            || l.ended_at.is_some()
    });
    if saw_eof(h, 0) || h.launches()[0].ended_at.is_some() {
        return Err(h.fail(
            req!("GOB-18"),
            "a gob error ends its stream only: the connection goes on",
            &connection_ended_after_gob_length(api),
        ));
    }
    if !closed {
        return Err(h.fail(
            req!("GOB-19"),
            &format!(
                "the host closing the API stream {api} after a gob message Length of 16 777 217, \
                 above GOB_MAX_MESSAGE_CEILING and so above every receiver's limit (GOB-15: a \
                 gob error as soon as the Length is read)"
            ),
            &format!(
                "no close frame on stream {api} within {:?}: the host waits for the body",
                h.scaled(NOTICE)
            ),
        ));
    }
    let before = h.driver_rss_kib();
    let flood = Order::Flood {
        stream: api,
        bytes: 64 << 20,
    };
    if let Err(gone) = h.order(0, &flood) {
        // The agent ends only with its connection (nothing told it to exit), which a gob error
        // must not end.
        if h.wait_ended(0, REPLY_TIMEOUT) {
            return Err(h.fail(
                req!("GOB-18"),
                "a gob error ends its stream only: the connection goes on",
                &connection_ended_after_gob_length(api),
            ));
        }
        return Err(gone);
    }
    // The driver's memory while the flood goes on, sampled.
    let mut peak = before.unwrap_or(0);
    let deadline = Instant::now() + h.scaled(Duration::from_secs(40));
    while !h.wait_agent(0, "flooded", Duration::from_millis(20)) {
        peak = peak.max(h.driver_rss_kib().unwrap_or(0));
        if h.launches()[0].ended_at.is_some() || saw_eof(h, 0) {
            return Err(h.fail(
                req!("GOB-18"),
                "a gob error ends its stream only: the connection goes on",
                &connection_ended_after_gob_length(api),
            ));
        }
        if Instant::now() >= deadline {
            return Err(h.fail(
                req!("DRV-12"),
                "the host reading 64 MiB sent on the API stream it closed",
                "the plugin's writes did not complete within 40 s",
            ));
        }
    }
    peak = peak.max(h.driver_rss_kib().unwrap_or(0));
    if let Some(b) = before {
        if peak > b + 32 * 1024 {
            return Err(h.fail(
                req!("STREAM-9"),
                &format!(
                    "the host discarding the 64 MiB sent on the API stream {api} after it closed \
                     it: its driver's resident memory growing by less than 32 MiB"
                ),
                &format!("{b} KiB before, {peak} KiB at the most during the flood"),
            ));
        }
    }
    connection_went_on(
        h,
        "a gob error ends its stream only: the connection goes on",
        "a successful deactivation after the API stream's gob error",
    )
}

/// What a host that ends the whole connection after a gob error on API stream `api` did.
fn connection_ended_after_gob_length(api: i64) -> String {
    format!("the host ended the plugin's connection after the gob Length on the API stream {api}")
}
