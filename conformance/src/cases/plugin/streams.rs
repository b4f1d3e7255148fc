//! `plugin/streams/...`: the plugin's streams (spec 03, Table 3-1): frames for unknown streams,
//! the parity of the streams it opens, data and closes after a close, a close answered with a
//! close, and an API stream closed under a pending call.
//!
//! Rows: F2, F5, G20, M10, M11, R10, S3, S4, S6, S9, S10, S13, S14.
//! Requirements: STREAM-2, STREAM-5, STREAM-9, STREAM-10, STREAM-11, RPC-11, RPC-19.

use std::time::Duration;

use rpcplugin_codec::frame::{encode_frame, StreamId};
use rpcplugin_codec::rpc::Call;

use super::helpers::{
    activate, activate_with_api_answer, activation_answer, deactivate, id, plugin_closed, QUIET,
};
use crate::outcome::Outcome;
use crate::plugin_under_test::{ApiAnswer, PluginUnderTest};
use rpcplugin_codec::req;

case!(
    UNKNOWN_STREAM_DISCARDED: plugin "plugin/streams/unknown-stream-discarded",
    ["STREAM-5"],
    unknown_stream,
    "data and close frames for streams never opened are discarded and the plugin still answers"
);

fn unknown_stream(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let junk = [
        (101, &b"junk"[..]),
        (103, &b""[..]),
        (hooks.get() + 1000, &b"more junk"[..]),
        (hooks.get() + 2, &b""[..]),
    ];
    for (n, payload) in junk {
        p.write_frame(id(n), payload).map_err(|e| {
            p.fail(
                req!("STREAM-5"),
                "the plugin keeps reading after frames for unknown streams",
                &e,
            )
        })?;
    }
    activate(p, req!("STREAM-5"))?;
    Ok(())
}

case!(
    PARITY_OF_OPENED_STREAMS: plugin "plugin/streams/parity-of-opened-streams",
    ["STREAM-2"],
    parity_of_opened_streams,
    "every stream the plugin opens itself has an even id"
);

fn parity_of_opened_streams(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let handshake = p.handshake().map(|_| ());
    let activated = handshake.and_then(|()| activate(p, req!("RPC-5")).map(|_| ()));
    // A violation seen before a failure is reported first: it is what this case checks.
    let opened = p.streams_opened().to_vec();
    if let Some(odd) = p
        .streams_seen()
        .iter()
        .find(|id| !opened.contains(id) && !id.is_plugin_allocated())
    {
        let seen: Vec<String> = p.streams_seen().iter().map(|id| id.to_string()).collect();
        return Err(p.fail(
            req!("STREAM-2"),
            "frames only on the streams the host opened and on even streams the plugin opened, \
             during the handshake and OnActivate",
            &format!(
                "a frame on stream {odd}, odd and never opened by the host (streams seen: {})",
                seen.join(", ")
            ),
        ));
    }
    activated
}

case!(
    DATA_AFTER_CLOSE_DISCARDED: plugin "plugin/streams/data-after-close-discarded",
    ["STREAM-9", "STREAM-10"],
    data_after_close,
    "a request sent on the hooks stream after the host closed it is not answered"
);

fn data_after_close(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    // First request, the host's close of the hooks stream, then a second request: the
    // second arrives after the close and must be discarded.
    let (_, first) = p.frame_call(Call::OnDeactivate)?;
    let (late, second) = p.frame_call(Call::OnDeactivate)?;
    let mut bytes = first;
    encode_frame(hooks, &[], &mut bytes).map_err(|e| Outcome::error(e.to_string()))?;
    bytes.extend(second);
    p.send(&bytes)?;
    // Until the plugin closes the stream too (STREAM-11), after which it cannot send on it.
    let waited = p.wait_until(QUIET, |p| plugin_closed(p, hooks));
    let responses = p.take_hook_responses();
    match (waited, responses) {
        (Ok(_), Ok(responses)) if responses.iter().any(|r| r.header.seq == late) => Err(p.fail(
            req!("STREAM-9"),
            &format!(
                "no response to the request with Seq {late}, sent on stream {hooks} after the \
                 host's close frame"
            ),
            "a response to it: the plugin used data that arrived after the close",
        )),
        (Ok(_), Ok(_)) => Ok(()),
        (Err(got), _) | (_, Err(got)) => Err(p.fail(
            req!("STREAM-10"),
            "the connection goes on after the host closes one stream",
            &got,
        )),
    }
}

case!(
    FRAMES_AFTER_CLOSE_DISCARDED: plugin "plugin/streams/frames-after-close-discarded",
    ["STREAM-9", "STREAM-5", "STREAM-10"],
    frames_after_close,
    "data and close frames on API streams in every closing state (closed by the plugin, by both, by the host, twice) are discarded, and the plugin goes on"
);

/// Table 3-1 from the receiving side: after two activations the first API stream is closed by
/// the plugin (LocalClosed): data on it is discarded (S13), then the harness's close closes it
/// (S14), and later data finds nothing (S3). The second API stream is closed by the harness
/// (S6, RemoteClosed) and, in the same write, gets data (S9) and a second close (S10), which
/// are discarded; the plugin answers with its close (S12), and more data and closes after it
/// find nothing. Through all this the plugin keeps its connection and answers OnDeactivate
/// and a third activation.
fn frames_after_close(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, req!("RPC-5"))?;
    let second = activate(p, req!("RPC-5"))?;
    let mut bytes = Vec::new();
    let mut put = |id: StreamId, payload: &[u8]| encode_frame(id, payload, &mut bytes);
    put(first, b"after the plugin's close")
        .and_then(|()| put(first, b""))
        .and_then(|()| put(first, b"after both closes"))
        .and_then(|()| put(second, b""))
        .and_then(|()| put(second, b"right after the host's close"))
        .and_then(|()| put(second, b""))
        .map_err(|e| Outcome::error(e.to_string()))?;
    let expected = "the plugin discards frames for streams that it or the harness closed, and \
                    keeps its connection";
    // Whatever ends the plugin's connection now is the frames it had to discard.
    let gone = |p: &mut PluginUnderTest, got: String| {
        let exit = p
            .wait_exit(Duration::from_millis(200))
            .map(|e| format!("; the process {e}"))
            .unwrap_or_default();
        p.fail(req!("STREAM-9"), expected, &format!("{got}{exit}"))
    };
    if let Err(e) = p.write_raw(&bytes) {
        return Err(gone(p, e));
    }
    if let Err(got) = p.wait_until(QUIET, |p| plugin_closed(p, second)) {
        return Err(gone(p, got));
    }
    let mut bytes = Vec::new();
    encode_frame(second, b"after the host's close", &mut bytes)
        .and_then(|()| encode_frame(second, b"", &mut bytes))
        .map_err(|e| Outcome::error(e.to_string()))?;
    if let Err(e) = p.write_raw(&bytes) {
        return Err(gone(p, e));
    }
    if let Err(got) = p.wait_until(QUIET / 5, |_| false) {
        return Err(gone(p, got));
    }
    deactivate(p)?;
    activate(p, req!("STREAM-9"))?;
    Ok(())
}

case!(
    CLOSE_ANSWERED_WITH_CLOSE: plugin "plugin/streams/close-answered-with-close",
    ["STREAM-11"],
    close_answered_with_close,
    "when the host closes the hooks stream, the plugin closes it too"
);

fn close_answered_with_close(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    deactivate(p)?;
    p.close_stream(hooks)?;
    let expected = format!("a close frame on stream {hooks} after the host closed it");
    match p.wait_until(QUIET * 2, |p| plugin_closed(p, hooks)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(p.fail(
            req!("STREAM-11"),
            &expected,
            &format!("none within {:?}", p.scaled(QUIET * 2)),
        )),
        Err(got) => Err(p.fail(req!("STREAM-11"), &expected, &got)),
    }
}

case!(
    API_STREAM_CLOSED_DURING_CALL: plugin "plugin/streams/api-stream-closed-during-call",
    ["STREAM-10", "RPC-11", "RPC-19"],
    api_closed_during_call,
    "when the host closes the API stream while the plugin's LoadPluginConfiguration is pending, the call fails and OnActivate is answered"
);

fn api_closed_during_call(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::Never)?;
    p.close_stream(a.api)?;
    let api = a.api;
    match activation_answer(p, a, req!("RPC-11")) {
        Ok(_) => Ok(()),
        Err(Outcome::Fail(mut f)) => {
            f.expected = format!(
                "after the host closed the API stream {api} under the plugin's pending \
                 LoadPluginConfiguration call, the call fails and OnActivate is answered within \
                 CALL_TIMEOUT (5 s)"
            );
            Err(Outcome::Fail(f))
        }
        Err(other) => Err(other),
    }
}
