//! `plugin/robustness/...`: a gob Length above every receiver's limit on the hooks stream, then
//! a flood of data (spec 05 section 5.2.10, spec 03 section 3.7): the plugin closes that stream,
//! discards the rest with its memory bounded, and keeps its connection.
//!
//! Rows: G2.
//! Requirements: STREAM-9, GOB-15, GOB-18, GOB-19.

use std::time::Duration;

use rpcplugin_codec::frame::{encode_frame, MIN_MAX_PAYLOAD};

use super::helpers::{plugin_closed, stays};
use crate::outcome::Outcome;
use crate::plugin_under_test::{PluginUnderTest, CALL_TIMEOUT};
use rpcplugin_codec::req;

case!(
    GOB_FLOOD_ON_HOOKS_STREAM: plugin "plugin/robustness/gob-flood-on-hooks-stream",
    ["GOB-15", "GOB-19", "GOB-18", "STREAM-9"],
    gob_flood,
    with_timeout(Duration::from_secs(60)),
    "a gob Length above 16 MiB on the hooks stream, then 32 MiB of data: the plugin closes that stream at once, discards the rest with its memory bounded, and keeps the connection"
);

/// GOB-15 and GOB-19 on an open stream: after a gob Length of 16 MiB + 1 on the hooks stream,
/// above every receiver's limit, the plugin closes that stream (GOB-18) before any more data
/// comes; then it discards the 32 MiB that follow (STREAM-9), its memory bounded, and keeps
/// its connection (a gob error ends one stream).
fn gob_flood(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let mut frame = Vec::new();
    encode_frame(hooks, &crate::cases::host::OVER_CEILING, &mut frame)
        .map_err(|e| Outcome::error(e.to_string()))?;
    p.send(&frame)?;
    // The evidence first: the close of the stream, before anything more is sent on it.
    match p.wait_until(CALL_TIMEOUT, |p| plugin_closed(p, hooks)) {
        Ok(true) => {}
        Ok(false) => {
            return Err(p.fail(
                req!("GOB-19"),
                &format!(
                    "the plugin closing the hooks stream {hooks} after a gob message Length of \
                     16 777 217, above GOB_MAX_MESSAGE_CEILING and so above every receiver's \
                     limit (GOB-15: a gob error as soon as the Length is read)"
                ),
                &format!(
                    "no close frame on stream {hooks} within {:?}: the plugin waits for the body",
                    p.scaled(CALL_TIMEOUT)
                ),
            ))
        }
        Err(got) => {
            return Err(p.fail(
                req!("GOB-18"),
                "a gob error ends its stream only: the connection goes on",
                &got,
            ))
        }
    }
    let before = crate::host_under_test::rss_kib(p.pid());
    let mut peak = before.unwrap_or(0);
    let chunk = vec![0x5a; MIN_MAX_PAYLOAD];
    let mut data = Vec::with_capacity(4 * (MIN_MAX_PAYLOAD + 8));
    for _ in 0..8 {
        data.clear();
        for _ in 0..4 {
            encode_frame(hooks, &chunk, &mut data).map_err(|e| Outcome::error(e.to_string()))?;
        }
        p.write_raw_bounded(data.clone(), CALL_TIMEOUT)
            .map_err(|e| {
                p.fail(
                    req!("STREAM-9"),
                    "the plugin reading and discarding the data sent on the hooks stream it closed",
                    &e,
                )
            })?;
        peak = peak.max(crate::host_under_test::rss_kib(p.pid()).unwrap_or(0));
    }
    if let Some(b) = before {
        if peak > b + 16 * 1024 {
            return Err(p.fail(
                req!("STREAM-9"),
                &format!(
                    "the plugin discarding the 32 MiB sent on the hooks stream {hooks} after it \
                     closed it: its resident memory growing by less than 16 MiB"
                ),
                &format!("{b} KiB before, {peak} KiB at the most during the flood"),
            ));
        }
    }
    stays(
        p,
        req!("GOB-18"),
        "after a gob error, which ends its stream only",
    )
}
