//! `plugin/rpc-vector/tc-NN`: one case per server-side message of
//! `spec/vectors/rpc-messages.json` (spec 05 sections 5.2 to 5.4), played on the hooks stream.
//!
//! Rows: G2 to G11, G13 to G19, R1.
//! Requirements: those of each vector, and RPC-5 (valid messages) or GOB-18 (invalid ones).

use rpcplugin_codec::frame::{StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::rpc::ON_ACTIVATE;

use super::helpers::{plugin_closed, QUIET};
use crate::cases::vectors::{for_servers, vectors, Vector};
use crate::cases::{finish, generated, Case, Runner, DEFAULT_TIMEOUT};
use crate::outcome::Outcome;
use crate::plugin_under_test::{PluginUnderTest, CALL_TIMEOUT};
use rpcplugin_codec::req;

/// The plugin cases made from `spec/vectors/rpc-messages.json`.
pub fn vector_cases() -> Vec<Case> {
    vectors()
        .iter()
        .filter(|v| usable(v))
        .map(|v| {
            let mut reqs: Vec<&'static str> = v
                .requirements
                .iter()
                .map(|r| &*Box::leak(r.clone().into_boxed_str()))
                .collect();
            for extra in if v.result == "invalid" {
                &[req!("GOB-18")][..]
            } else {
                &[req!("RPC-5")][..]
            } {
                if !reqs.contains(extra) {
                    reqs.push(extra);
                }
            }
            generated(
                format!("plugin/rpc-vector/tc-{:02}", v.tc_id),
                format!("{} ({} message of the RPC vectors)", v.comment, v.result),
                reqs,
                DEFAULT_TIMEOUT,
                Runner::PluginWith(|p, tc| finish(run_vector(p, tc)), v.tc_id),
            )
        })
        .collect()
}

/// The API stream ids a vector's OnActivate calls name (positive odd ones only).
fn activated_ids(v: &Vector) -> Vec<i64> {
    v.calls
        .iter()
        .filter(|c| c.service_method == ON_ACTIVATE)
        .filter_map(|c| c.args.as_ref()?.get("int")?.as_str()?.parse::<i64>().ok())
        .filter(|n| *n > 0 && n % 2 == 1)
        .collect()
}

/// Whether a vector makes a plugin case: one a server must handle (the plugin serves the
/// hooks stream) the same way whatever its limits (see [`for_servers`]), whose
/// calls name API streams among the harness's first 50.
fn usable(v: &Vector) -> bool {
    for_servers(v) && activated_ids(v).iter().all(|n| *n < 100)
}

fn run_vector(p: &mut PluginUnderTest, tc_id: u64) -> Result<(), Outcome> {
    let v = vectors()
        .iter()
        .find(|v| v.tc_id == tc_id)
        .ok_or_else(|| Outcome::error(format!("no vector with tcId {tc_id}")))?
        .clone();
    let hooks = p.handshake()?;
    let bytes = crate::transcript::from_hex(&v.hex).map_err(Outcome::error)?;
    if let Some(max) = activated_ids(&v).into_iter().max() {
        p.open_api_streams_up_to(max)?;
    }
    let mut frames = Vec::new();
    rpcplugin_codec::frame::encode_data(hooks, &bytes, MIN_MAX_PAYLOAD, &mut frames);
    p.send(&frames)?;
    if v.result == "invalid" {
        return vector_rejected(p, &v, hooks);
    }
    let mut pending: Vec<(u64, String)> = v
        .calls
        .iter()
        .map(|c| {
            (
                c.seq.parse::<u64>().unwrap_or(u64::MAX),
                c.service_method.clone(),
            )
        })
        .collect();
    let expected = format!(
        "a response to each request of vector {} ({}), with its Seq and ServiceMethod",
        v.tc_id, v.comment
    );
    let requirement: &'static str = v
        .requirements
        .first()
        .and_then(|r| crate::requirements::lookup(r))
        .map_or(req!("RPC-5"), |r| r.id.as_str());
    let deadline = p.deadline(CALL_TIMEOUT);
    while !pending.is_empty() {
        match p.next_hook_response(deadline) {
            Ok(Some(r)) => {
                let at = pending.iter().position(|(seq, method)| {
                    *seq == r.header.seq && *method == r.header.service_method
                });
                match at {
                    Some(at) => {
                        pending.remove(at);
                    }
                    None => {
                        return Err(p.fail(
                            req!("RPC-5"),
                            &expected,
                            &format!(
                            "a response with Seq {} and ServiceMethod {:?} that matches no request",
                            r.header.seq, r.header.service_method
                        ),
                        ))
                    }
                }
            }
            Ok(None) => {
                let missing: Vec<String> = pending
                    .iter()
                    .map(|(s, m)| format!("{m} (Seq {s})"))
                    .collect();
                return Err(p.fail(
                    requirement,
                    &expected,
                    &format!("no response in time to {}", missing.join(", ")),
                ));
            }
            Err(got) => return Err(p.fail(requirement, &expected, &got)),
        }
    }
    Ok(())
}

/// After a malformed message on the hooks stream: no response, the hooks stream closed by the
/// plugin (GOB-18), and the connection still open.
fn vector_rejected(p: &mut PluginUnderTest, v: &Vector, hooks: StreamId) -> Result<(), Outcome> {
    let expected = format!(
        "after the malformed message of vector {} ({}; a gob error {}), the plugin answers \
         nothing on the hooks stream, closes it, and keeps the connection",
        v.tc_id,
        v.comment,
        v.error.as_deref().unwrap_or("")
    );
    let requirement: &'static str = v
        .requirements
        .first()
        .and_then(|r| crate::requirements::lookup(r))
        .map_or(req!("GOB-18"), |r| r.id.as_str());
    // Until the plugin closes the hooks stream, after which it cannot send on it (STREAM-8).
    let waited = p.wait_until(QUIET * 2, |p| plugin_closed(p, hooks));
    if let Err(got) = waited {
        return Err(p.fail(req!("GOB-18"), &expected, &got));
    }
    match p.take_hook_responses() {
        Ok(responses) => {
            if let Some(r) = responses.first() {
                let what = if r.header.error.is_empty() {
                    "a successful response: the plugin took the malformed message as a request"
                        .to_string()
                } else {
                    format!(
                        "an error response ({:?}): the plugin answered the malformed message \
                         instead of treating it as a gob error of the stream",
                        r.header.error
                    )
                };
                return Err(p.fail(
                    requirement,
                    &expected,
                    &format!(
                        "{what} (Seq {}, ServiceMethod {:?})",
                        r.header.seq, r.header.service_method
                    ),
                ));
            }
        }
        Err(got) => return Err(p.fail(req!("GOB-18"), &expected, &got)),
    }
    if let Some(exit) = p.try_exit() {
        return Err(p.fail(req!("GOB-18"), &expected, &format!("the process {exit}")));
    }
    if !plugin_closed(p, hooks) {
        return Err(p.fail(
            req!("GOB-18"),
            &expected,
            &format!(
                "no close frame on stream {hooks} within {:?}",
                p.scaled(QUIET * 2)
            ),
        ));
    }
    Ok(())
}
