//! `plugin/hooks/...`: the plugin's `LocalHooks` service (spec 05 section 5.5): OnActivate and
//! OnDeactivate, the API stream ids OnActivate must refuse, the close of the previous API
//! stream on a new activation, and a plugin that serves on after OnDeactivate (spec 06 section
//! 6.10).
//!
//! Rows: F1, R6, S5.
//! Requirements: TRANS-2, STREAM-4, STREAM-8, HS-7, RPC-2, RPC-5, RPC-12, RPC-14, RPC-15,
//! RPC-20, LIFE-21.

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::rpc::{Call, LOAD_PLUGIN_CONFIGURATION};
use rpcplugin_codec::trace::What;

use super::helpers::{activate, deactivate, plugin_closed, stays, QUIET};
use crate::outcome::Outcome;
use crate::plugin_under_test::PluginUnderTest;
use rpcplugin_codec::req;

case!(
    ACTIVATE_DEACTIVATE: plugin "plugin/hooks/activate-deactivate",
    ["RPC-2", "RPC-5", "RPC-12", "RPC-20", "RPC-15", "STREAM-4", "HS-7", "TRANS-2"],
    activate_deactivate,
    "OnActivate with an odd API stream and OnDeactivate are answered successfully"
);

pub(super) fn activate_deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, req!("RPC-5"))?;
    for method in p.api_calls() {
        if method != LOAD_PLUGIN_CONFIGURATION {
            return Err(p.fail(
                req!("RPC-12"),
                "only LocalAPI.LoadPluginConfiguration calls on the API stream",
                &format!("a call of {method}"),
            ));
        }
    }
    deactivate(p)
}

case!(
    ACTIVATE_EVEN_ID_REJECTED: plugin "plugin/hooks/activate-even-id-rejected",
    ["RPC-14"],
    activate_even_id,
    "OnActivate with an even API stream id is answered with an error"
);

fn activate_even_id(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let even = hooks.get() + 2;
    expect_error(p, even, "an even id is the plugin's own, never the host's")
}

case!(
    ACTIVATE_STALE_ID_REJECTED: plugin "plugin/hooks/activate-stale-id-rejected",
    ["RPC-14", "RPC-20"],
    activate_stale_id,
    "OnActivate with 0, -1 or an id already used is answered with an error; a new odd id is accepted"
);

fn activate_stale_id(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, req!("RPC-20"))?;
    expect_error(p, 0, "0 is not a positive id")?;
    expect_error(p, -1, "-1 is not a positive id")?;
    expect_error(
        p,
        first.get(),
        "the plugin has connected this id before on this connection",
    )?;
    activate(p, req!("RPC-20"))?;
    Ok(())
}

case!(
    REACTIVATE_CLOSES_PREVIOUS_API_STREAM: plugin "plugin/hooks/reactivate-closes-previous-api-stream",
    ["RPC-20", "RPC-15", "STREAM-8"],
    reactivate_closes_previous,
    "a second OnActivate closes the first API stream before it is answered; OnDeactivate closes the second"
);

fn reactivate_closes_previous(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, req!("RPC-20"))?;
    let second = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: second.get(),
    };
    let seq = p.send_call(call.clone())?;
    if let Err(text) = p.await_response(seq, &call, req!("RPC-20"))? {
        return Err(p.fail(
            req!("RPC-20"),
            &format!("a successful response to OnActivate({second})"),
            &format!("an error response: {text}"),
        ));
    }
    closed_before_response(
        p,
        first,
        seq,
        req!("RPC-20"),
        &format!("OnActivate({second})"),
    )?;
    let seq = p.send_call(Call::OnDeactivate)?;
    if let Err(text) = p.await_response(seq, &Call::OnDeactivate, req!("RPC-15"))? {
        return Err(p.fail(
            req!("RPC-15"),
            "a successful response to OnDeactivate",
            &format!("an error response: {text}"),
        ));
    }
    closed_before_response(p, second, seq, req!("RPC-15"), "OnDeactivate")
}

/// Checks that the plugin's close frame of `api` comes before its response with `seq` on the
/// hooks stream, by the offsets of both in its output: how its writes happened to be read
/// (both in one read, say) does not matter. A close that has not come yet is waited for
/// (QUIET), so that its absence and its lateness are told apart.
fn closed_before_response(
    p: &mut PluginUnderTest,
    api: StreamId,
    seq: u64,
    requirement: &'static str,
    call: &str,
) -> Result<(), Outcome> {
    let hooks = p.hooks().ok_or_else(|| Outcome::error("no handshake"))?;
    let expected = format!(
        "the close frame of the API stream {api} before the response to {call} (Seq {seq})"
    );
    if !plugin_closed(p, api) {
        let _ = p.wait_until(QUIET, |p| plugin_closed(p, api));
    }
    let offset = |p: &PluginUnderTest, wanted: &dyn Fn(&What) -> bool| {
        p.notes().iter().find(|n| wanted(&n.what)).map(|n| n.offset)
    };
    let close = offset(p, &|w| *w == What::Close { stream_id: api });
    let response = offset(
        p,
        &|w| matches!(w, What::Response { stream_id, seq: s, .. } if *stream_id == hooks && *s == seq),
    );
    match (close, response) {
        (Some(c), Some(r)) if c < r => Ok(()),
        (Some(c), Some(r)) => Err(p.fail(
            requirement,
            &expected,
            &format!(
                "the close frame of stream {api} at byte {c} of the plugin's output, after the \
                 response, at byte {r}"
            ),
        )),
        (None, _) => Err(p.fail(
            requirement,
            &expected,
            &format!(
                "no close frame on stream {api} (waited {:?} after the response)",
                p.scaled(QUIET)
            ),
        )),
        (Some(_), None) => Err(Outcome::error(format!(
            "the harness lost track of the response with Seq {seq} on stream {hooks}"
        ))),
    }
}

case!(
    SERVES_AFTER_DEACTIVATE: plugin "plugin/hooks/serves-after-deactivate",
    ["LIFE-21", "RPC-20"],
    serves_after_deactivate,
    "after OnDeactivate the plugin keeps running and can be activated again on the same connection"
);

fn serves_after_deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, req!("LIFE-21"))?;
    deactivate(p)?;
    stays(p, req!("LIFE-21"), "after OnDeactivate")?;
    activate(p, req!("LIFE-21"))?;
    deactivate(p)
}

fn expect_error(p: &mut PluginUnderTest, api_stream: i64, why: &str) -> Result<(), Outcome> {
    match p.call(Call::OnActivate { api_stream }, req!("RPC-5"))? {
        Err(_) => Ok(()),
        Ok(_) => Err(p.fail(
            req!("RPC-14"),
            &format!("an error response to OnActivate({api_stream}): {why}"),
            "a successful response",
        )),
    }
}
