//! `plugin/handshake/...`: the plugin's side of the handshake (spec 04 sections 4.2, 4.3 and
//! 4.6): its first frame announces an even hooks stream, and stream-0 frames after the
//! handshake are discarded.
//!
//! Rows: M14, P2.
//! Requirements: TRANS-2, FRAME-1, FRAME-2, STREAM-2, STREAM-14, HS-1, HS-8.

use std::time::Duration;

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::handshake::{parse_announcement, HandshakeError};
use rpcplugin_codec::trace::hex;

use super::helpers::activate;
use crate::outcome::{Failure, Outcome};
use crate::plugin_under_test::{PluginUnderTest, RawEnd, START_TIMEOUT};
use rpcplugin_codec::req;

case!(
    ANNOUNCE_EVEN_STREAM: plugin "plugin/handshake/announce-even-stream",
    ["HS-1", "STREAM-2", "FRAME-1", "FRAME-2", "TRANS-2"],
    announce_even_stream,
    "the first frame is an announcement on stream 0 of an even hooks stream id, on descriptor 4"
);

fn announce_even_stream(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let expected = "a frame on stream 0 whose payload is 00 followed by the varint of an even \
                    positive stream id, as the first frame on descriptor 4, within START_TIMEOUT (3 s)";
    let frame = match p.next_frame(START_TIMEOUT) {
        Ok(frame) => frame,
        Err(RawEnd::TimedOut) => {
            return Err(p.fail(req!("HS-1"), expected, "no whole frame in time"))
        }
        Err(RawEnd::Malformed(e)) => {
            return Err(p.fail(req!("FRAME-1"), expected, &format!("malformed output: {e}")))
        }
        Err(end @ (RawEnd::Eof | RawEnd::Error(_))) => {
            let got = format!("the plugin's output ended ({end:?}) before any frame");
            let exit = p.wait_exit(Duration::from_millis(500));
            let mut failure = Failure::new(req!("HS-1"), expected, got);
            if let Some(exit) = exit {
                failure.got = format!("{}; the process {exit}", failure.got);
                failure.setup = Some(format!(
                    "the plugin crashed before the handshake: it {exit} without announcing its hooks stream"
                ));
            }
            failure.stderr = p.stderr();
            return Err(Outcome::fail(failure));
        }
    };
    if frame.stream_id != StreamId::CONTROL {
        return Err(p.fail(
            req!("HS-1"),
            expected,
            &format!("the first frame is on stream {}", frame.stream_id),
        ));
    }
    let hooks = parse_announcement(&frame.payload).map_err(|e| {
        // An odd (or non-positive) id breaks the plugin's allocation rule; anything else the
        // announcement's layout.
        let requirement = match e {
            HandshakeError::InvalidHooksStreamId { .. } => req!("STREAM-2"),
            _ => req!("HS-1"),
        };
        p.fail(
            requirement,
            expected,
            &format!("payload {}: {e}", hex(&frame.payload)),
        )
    })?;
    if !hooks.is_plugin_allocated() {
        return Err(p.fail(
            req!("STREAM-2"),
            expected,
            &format!("the announced hooks stream is {hooks}, not even"),
        ));
    }
    Ok(())
}

case!(
    CONTROL_AFTER_HANDSHAKE: plugin "plugin/handshake/control-after-handshake",
    ["HS-8", "STREAM-14"],
    control_after_handshake,
    "stream-0 frames from the host are discarded without blocking the plugin"
);

fn control_after_handshake(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    for payload in [&[0x00, 0x04][..], &b"stream zero"[..], &[][..]] {
        p.write_frame(StreamId::CONTROL, payload).map_err(|e| {
            p.fail(
                req!("HS-8"),
                "the plugin keeps reading after stream-0 frames",
                &e,
            )
        })?;
    }
    activate(p, req!("HS-8"))?;
    Ok(())
}
