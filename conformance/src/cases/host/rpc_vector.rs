//! `host/rpc-vector/tc-NN`: one case per server-side message of `spec/vectors/rpc-messages.json`
//! (spec 05 sections 5.2 to 5.4), played on the API stream, where the host serves `LocalAPI`.
//!
//! Rows: G2 to G11, G13 to G19, R1, R3, S14.
//! Requirements: those of each vector, and RPC-5 and RPC-8 (valid messages) or GOB-18 (invalid
//! ones).

use super::helpers::{activate_ok, api_stream, connection_went_on, start_ok, NOTICE};
use crate::agent::Behaviour;
use crate::cases::{finish, generated, vectors, Case, Runner, DEFAULT_TIMEOUT};
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

/// One host case per server-side message of `spec/vectors/rpc-messages.json` that every
/// server handles alike ([`vectors::for_servers`]): the agent writes it as the first
/// bytes of the API stream of an activation, where the host serves `LocalAPI` (a request for
/// another service is answered with an error, RPC-8), and reports what comes back.
pub fn vector_cases() -> Vec<Case> {
    vectors::vectors()
        .iter()
        .filter(|v| vectors::for_servers(v))
        .map(|v| {
            let mut reqs: Vec<&'static str> = v
                .requirements
                .iter()
                .filter_map(|r| crate::requirements::lookup(r).map(|r| r.id.as_str()))
                .collect();
            let extra: &[&'static str] = if v.result == "invalid" {
                &[req!("GOB-18")]
            } else {
                &[req!("RPC-5"), req!("RPC-8")]
            };
            for id in extra {
                if !reqs.contains(id) {
                    reqs.push(id);
                }
            }
            generated(
                format!("host/rpc-vector/tc-{:02}", v.tc_id),
                format!(
                    "{} ({} message of the RPC vectors, on the API stream)",
                    v.comment, v.result
                ),
                reqs,
                DEFAULT_TIMEOUT,
                Runner::HostWith(|h, tc| finish(host_vector(h, tc)), v.tc_id),
            )
        })
        .collect()
}

/// Plays vector `tc_id` to the host's `LocalAPI` server: a valid message gets one response per
/// request, with its `Seq` and `ServiceMethod` (RPC-5), and the stream goes on; an invalid one
/// (a gob error) gets none, the host closes that stream (GOB-18), and the connection goes on.
fn host_vector(h: &mut HostUnderTest, tc_id: u64) -> Result<(), Outcome> {
    let v = vectors::vector(tc_id)
        .ok_or_else(|| Outcome::error(format!("no vector with tcId {tc_id}")))?;
    h.script(vec![Behaviour {
        api_vector_hex: Some(v.hex.clone()),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    let api = api_stream(h);
    let responses = |w: &crate::host_under_test::World| -> Vec<(String, String, String)> {
        w.launches[0]
            .events_named("api_response")
            .map(|r| {
                (
                    r["seq"].as_str().unwrap_or("").to_string(),
                    r["method"].as_str().unwrap_or("").to_string(),
                    r["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let closed = |w: &crate::host_under_test::World| {
        w.launches[0]
            .events_named("closed")
            .any(|c| c["stream"] == api)
    };
    let requirement: &'static str = v
        .requirements
        .first()
        .and_then(|r| crate::requirements::lookup(r))
        .map_or(req!("RPC-5"), |r| r.id.as_str());
    if v.result == "invalid" {
        let expected = format!(
            "after the malformed message of vector {} ({}; a gob error {}) on the API stream \
             {api}, the host answers nothing there, closes it, and keeps the connection",
            v.tc_id,
            v.comment,
            v.error.as_deref().unwrap_or("")
        );
        // The evidence: the close of the stream (after which nothing can be answered on it).
        if !h.wait(NOTICE, closed) {
            return Err(h.fail(
                req!("GOB-18"),
                &expected,
                &format!(
                    "no close frame on stream {api} within {:?}",
                    h.scaled(NOTICE)
                ),
            ));
        }
        if let Some((seq, method, error)) = responses(&h.world()).first() {
            return Err(h.fail(
                requirement,
                &expected,
                &if error.is_empty() {
                    format!(
                        "a successful response (Seq {seq}, {method:?}): the host took the \
                         malformed message as a request"
                    )
                } else {
                    format!(
                        "an error response (Seq {seq}, {method:?}, {error:?}): the host answered \
                         the malformed message instead of treating it as a gob error of the \
                         stream"
                    )
                },
            ));
        }
    } else {
        let wanted: Vec<(String, String)> = v
            .calls
            .iter()
            .map(|c| (c.seq.clone(), c.service_method.clone()))
            .collect();
        let expected = format!(
            "one response to each request of vector {} ({}) on the API stream {api}, with its \
             Seq and ServiceMethod (an error response: LocalAPI has no such method)",
            v.tc_id, v.comment
        );
        h.wait(NOTICE, |w| responses(w).len() >= wanted.len() || closed(w));
        let got = responses(&h.world());
        for (seq, method) in &wanted {
            let n = got.iter().filter(|r| r.0 == *seq).count();
            if n == 0 {
                let why = if closed(&h.world()) {
                    format!(
                        "no response with Seq {seq} ({method}): the host closed the stream, taking \
                         the message for a gob error"
                    )
                } else {
                    format!(
                        "no response with Seq {seq} ({method}) within {:?}",
                        h.scaled(NOTICE)
                    )
                };
                return Err(h.fail(requirement, &expected, &why));
            }
            if n > 1 {
                return Err(h.fail(
                    req!("RPC-5"),
                    &expected,
                    &format!("{n} responses with Seq {seq}"),
                ));
            }
        }
        if let Some(r) = got
            .iter()
            .find(|r| !wanted.iter().any(|w| w.0 == r.0 && w.1 == r.1))
        {
            return Err(h.fail(
                req!("RPC-5"),
                &expected,
                &format!(
                    "a response with Seq {} and ServiceMethod {:?}, which no request had",
                    r.0, r.1
                ),
            ));
        }
        if let Some(r) = got.iter().find(|r| r.2.is_empty()) {
            return Err(h.fail(
                req!("RPC-8"),
                &expected,
                &format!(
                    "a successful response to {:?} (Seq {}): the host's LocalAPI has no such \
                     method",
                    r.1, r.0
                ),
            ));
        }
    }
    connection_went_on(
        h,
        "what happens on the API stream ends that stream at most: the connection goes on",
        "a successful deactivation after the vector on the API stream",
    )
}
