//! What the plugin cases share, and no case of its own: activation and deactivation that must
//! succeed, an activation whose API answers the harness chooses (the cases about the plugin's
//! `LocalAPI` call), batches of requests and waiting for a response to each, and watching for
//! the plugin's close frames and for a connection that must go on.

use std::time::Duration;

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::rpc::{Call, Response};
use rpcplugin_codec::trace::What;

use crate::outcome::Outcome;
use crate::plugin_under_test::{ApiAnswer, PluginUnderTest, CALL_TIMEOUT};
use rpcplugin_codec::req;

/// How long the harness watches for something that must not happen (a response to a request
/// that had to be discarded, the end of a connection that must go on).
pub(super) const QUIET: Duration = Duration::from_millis(500);

/// Stream `n`, which the case knows to be a valid id.
pub(super) fn id(n: i64) -> StreamId {
    StreamId::new(n).expect("a valid stream id")
}

/// Opens an API stream and activates the plugin with it; no response or an error response
/// fails `requirement`.
pub(super) fn activate(
    p: &mut PluginUnderTest,
    requirement: &'static str,
) -> Result<StreamId, Outcome> {
    let api = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: api.get(),
    };
    if let Err(text) = p.call(call, requirement)? {
        return Err(p.fail(
            requirement,
            &format!("a successful response to OnActivate({api})"),
            &format!("an error response: {text}"),
        ));
    }
    Ok(api)
}

/// OnDeactivate, which must be answered successfully.
pub(super) fn deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    match p.call(Call::OnDeactivate, req!("RPC-5"))? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            req!("RPC-15"),
            "a successful response to OnDeactivate",
            &format!("an error response: {text}"),
        )),
    }
}

/// Whether the plugin has sent a close frame for `id`.
pub(super) fn plugin_closed(p: &PluginUnderTest, id: StreamId) -> bool {
    p.notes()
        .iter()
        .any(|n| n.what == What::Close { stream_id: id })
}

/// Where the plugin's close frame for `id` starts in its output, if it has sent one.
pub(super) fn closed_at(p: &PluginUnderTest, id: StreamId) -> Option<u64> {
    p.notes()
        .iter()
        .find(|n| n.what == What::Close { stream_id: id })
        .map(|n| n.offset)
}

/// The plugin keeps its connection open and its process running for QUIET (`requirement`,
/// `when` in words).
pub(super) fn stays(
    p: &mut PluginUnderTest,
    requirement: &'static str,
    when: &str,
) -> Result<(), Outcome> {
    let quiet = p.deadline(QUIET);
    if let Err(got) = p.listen(quiet) {
        return Err(p.fail(
            requirement,
            &format!("the plugin keeps its connection {when}"),
            &got,
        ));
    }
    if let Some(exit) = p.try_exit() {
        return Err(p.fail(
            requirement,
            &format!("the plugin keeps running {when}"),
            &format!("the process {exit}"),
        ));
    }
    Ok(())
}

/// Adds an OnDeactivate request to `batch`, the bytes to write at once, and to `pending`, the
/// requests that wait for a response.
pub(super) fn queue_deactivation(
    p: &mut PluginUnderTest,
    batch: &mut Vec<u8>,
    pending: &mut Vec<(u64, Call)>,
) -> Result<(), Outcome> {
    let (seq, frame) = p.frame_call(Call::OnDeactivate)?;
    pending.push((seq, Call::OnDeactivate));
    batch.extend(frame);
    Ok(())
}

/// Waits for one response to each of `pending` (Seq and call), in any order; a response that
/// matches none, a second one, or one with another ServiceMethod fails RPC-5.
pub(super) fn await_all(
    p: &mut PluginUnderTest,
    mut pending: Vec<(u64, Call)>,
    expected: &str,
    within: Duration,
) -> Result<Vec<(Call, Response<Call>)>, Outcome> {
    let deadline = p.deadline(within);
    let mut answered = Vec::new();
    while !pending.is_empty() {
        let response = match p.next_hook_response(deadline) {
            Ok(Some(response)) => response,
            Ok(None) => {
                let missing: Vec<String> = pending
                    .iter()
                    .take(5)
                    .map(|(seq, call)| format!("{call} (Seq {seq})"))
                    .collect();
                return Err(p.fail(
                    req!("RPC-5"),
                    expected,
                    &format!(
                        "no response in time to {} request(s), among them {}",
                        pending.len(),
                        missing.join(", ")
                    ),
                ));
            }
            Err(got) => return Err(p.fail(req!("RPC-5"), expected, &got)),
        };
        let seq = response.header.seq;
        let Some(at) = pending.iter().position(|(s, _)| *s == seq) else {
            return Err(p.fail(
                req!("RPC-5"),
                expected,
                &format!("a second response, or one that matches no request, with Seq {seq}"),
            ));
        };
        let (_, call) = pending.remove(at);
        if response.header.service_method != call.service_method() {
            return Err(p.fail(
                req!("RPC-5"),
                expected,
                &format!(
                    "the response with Seq {seq} carries ServiceMethod {:?}, not {:?}",
                    response.header.service_method,
                    call.service_method()
                ),
            ));
        }
        answered.push((call, response));
    }
    Ok(answered)
}

/// An activation whose API answers the harness chose.
pub(super) struct Activation {
    /// The API stream.
    pub(super) api: StreamId,
    /// The OnActivate request's Seq.
    seq: u64,
    /// The response to OnActivate, if it came already.
    answer: Option<Response<Call>>,
}

impl Activation {
    fn call(&self) -> Call {
        Call::OnActivate {
            api_stream: self.api.get(),
        }
    }
}

/// Activates with `answer` as the harness's way of answering the API, and waits until the
/// plugin calls the API or answers OnActivate (at most CALL_TIMEOUT). The cases that use it
/// check what follows the plugin's `LocalAPI` call: without one, they are skipped.
pub(super) fn activate_with_api_answer(
    p: &mut PluginUnderTest,
    answer: ApiAnswer,
) -> Result<Activation, Outcome> {
    p.handshake()?;
    p.set_api_answer(answer);
    let api = p.open_api_stream()?;
    let seq = p.send_call(Call::OnActivate {
        api_stream: api.get(),
    })?;
    if let Err(got) = p.wait_until(CALL_TIMEOUT, |p| {
        !p.api_calls().is_empty() || p.has_hook_response(seq)
    }) {
        return Err(p.fail(
            req!("RPC-5"),
            "a response to OnActivate, or a LoadPluginConfiguration call",
            &got,
        ));
    }
    let answer = if p.api_calls().is_empty() {
        p.take_hook_responses()
            .unwrap_or_default()
            .into_iter()
            .find(|r| r.header.seq == seq)
    } else {
        None
    };
    if p.api_calls().is_empty() {
        return Err(skipped_without_api_call());
    }
    Ok(Activation { api, seq, answer })
}

/// The response to the activation's OnActivate: the one that came already, or the next.
pub(super) fn activation_answer(
    p: &mut PluginUnderTest,
    a: Activation,
    requirement: &'static str,
) -> Result<Result<(), String>, Outcome> {
    if let Some(r) = a.answer {
        return Ok(if r.header.error.is_empty() {
            Ok(())
        } else {
            Err(r.header.error)
        });
    }
    let call = a.call();
    p.await_response(a.seq, &call, requirement)
        .map(|r| r.map(|_| ()))
}

/// The outcome of a case about the plugin's `LocalAPI` call when the plugin made none.
fn skipped_without_api_call() -> Outcome {
    Outcome::Skipped(
        "the plugin made no LocalAPI call during OnActivate, so there is nothing to check".into(),
    )
}
