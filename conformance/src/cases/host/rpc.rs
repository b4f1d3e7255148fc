//! `host/rpc/...`: the host's side of RPC (spec 05 sections 5.4 and 5.5): a failed activation
//! (its text, its API stream closed, not a crash), the host's `LocalAPI` server answering what
//! it cannot route (Table 5-9), a stray response, a reply of the wrong type, and a configuration
//! too long for one gob message.
//!
//! Rows: R2 to R5, R7, R8, R9.
//! Requirements: RPC-5, RPC-6, RPC-8, RPC-10, RPC-16, RPC-17, RPC-18, GOB-16, DRV-7, DRV-9.

use std::time::Duration;

use serde_json::json;

use super::helpers::{activate_ok, api_stream, must, must_fail, saw_eof, start_ok, CONFIG, NOTICE};
use crate::agent::Behaviour;
use crate::host_under_test::{HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use crate::transcript::to_hex;
use rpcplugin_codec::req;

case!(
    FAILED_ACTIVATION_IS_NOT_A_CRASH: host "host/rpc/failed-activation-is-not-a-crash",
    ["RPC-16", "DRV-9"],
    failed_activation,
    "an error response to OnActivate fails the activation with its text; the plugin keeps running"
);

fn failed_activation(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let what = "the activation failing with the plugin's error";
    let e = refused_activation(h, failing_activations(), req!("RPC-16"), what)?;
    if !e.contains("the agent fails this activation on purpose") {
        return Err(h.fail(
            req!("RPC-16"),
            "the failure's reason carrying the plugin's error text",
            &format!("{e:?}"),
        ));
    }
    std::thread::sleep(h.scaled(Duration::from_millis(1200)));
    if h.launches().len() > 1 || h.launches()[0].ended_at.is_some() {
        return Err(h.fail(
            req!("RPC-16"),
            "a failed activation is not a crash: the plugin keeps running, nothing is relaunched",
            &format!(
                "{} launch(es); the first ended: {}",
                h.launches().len(),
                h.launches()[0].ended_at.is_some()
            ),
        ));
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let status = must(h, r, req!("DRV-9"), "the supervisor's status")?;
    if status["state"] != "running" {
        return Err(h.fail(
            req!("RPC-16"),
            "the supervisor still running",
            &status.to_string(),
        ));
    }
    Ok(())
}

case!(
    API_STREAM_CLOSED_AFTER_FAILED_ACTIVATION: host "host/rpc/api-stream-closed-after-failed-activation",
    ["RPC-17"],
    api_closed_after_failed_activation,
    "after a failed activation, the host closes that activation's API stream"
);

fn api_closed_after_failed_activation(h: &mut HostUnderTest) -> Result<(), Outcome> {
    refused_activation(
        h,
        failing_activations(),
        req!("RPC-16"),
        "the activation failing",
    )?;
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    let api = api_stream(h);
    let closed = h.wait(Duration::from_secs(1), |w| {
        w.launches[0]
            .events_named("closed")
            .any(|v| v["stream"] == api)
    });
    if !closed {
        return Err(h.fail(
            req!("RPC-17"),
            &format!("a close frame on the failed activation's API stream {api}"),
            "none within 1 s",
        ));
    }
    Ok(())
}

case!(
    UNROUTABLE_REQUESTS_ANSWERED: host "host/rpc/unroutable-requests-answered",
    ["RPC-8", "RPC-5"],
    unroutable_requests,
    "on the API stream, requests without a dot, for another service, for an unknown LocalAPI method and with an argument of the wrong type get error responses; the stream goes on"
);

/// RPC-8 and Table 5-9, R2 to R5, at the host's `LocalAPI` server: each request it cannot route
/// gets an error response, and the stream goes on (a configuration request after them is
/// answered).
fn unroutable_requests(h: &mut HostUnderTest) -> Result<(), Outcome> {
    use rpcplugin_codec::gob::{ids, TypeRegistry, Value};
    let mut client = crate::cases::plugin::CustomClient::new(TypeRegistry::new(), &[]);
    let wrong_argument = Some((ids::INT, Value::Int(7)));
    type Request<'a> = (&'a str, Option<(i64, Value)>, &'a str);
    let requests: [Request; 5] = [
        ("NoDot", None, "R2: no dot"),
        ("NoSuchService.Method", None, "R3: an unknown service"),
        ("LocalAPI.NoSuchMethod", None, "R4: an unknown method"),
        (
            "LocalAPI.LoadPluginConfiguration",
            wrong_argument,
            "R5: an int argument, not a struct",
        ),
        ("LocalAPI.LoadPluginConfiguration", None, "the right one"),
    ];
    let mut bytes = Vec::new();
    let mut seqs = Vec::new();
    for (method, args, _) in &requests {
        let (seq, body) = client.request(method, args.clone(), Vec::new())?;
        seqs.push(seq.to_string());
        bytes.extend(body);
    }
    h.script(vec![Behaviour {
        api_vector_hex: Some(to_hex(&bytes)),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    let expected = "an error response to each unroutable request on the API stream, then a \
                    successful one to LoadPluginConfiguration";
    h.wait(NOTICE, |w| {
        w.launches[0].events_named("api_response").count() >= requests.len()
    });
    let got: Vec<(String, String)> = h.launches()[0]
        .events_named("api_response")
        .map(|r| {
            (
                r["seq"].as_str().unwrap_or("").to_string(),
                r["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for ((method, _, what), seq) in requests.iter().zip(&seqs) {
        let Some((_, error)) = got.iter().find(|(s, _)| s == seq) else {
            return Err(h.fail(
                req!("RPC-8"),
                expected,
                &format!("no response to {method:?} ({what}, Seq {seq})"),
            ));
        };
        let last = *what == "the right one";
        if !last && error.is_empty() {
            return Err(h.fail(
                req!("RPC-8"),
                expected,
                &format!("a successful response to {method:?} ({what}, Seq {seq})"),
            ));
        }
        if last && !error.is_empty() {
            return Err(h.fail(
                req!("RPC-8"),
                expected,
                &format!(
                    "an error response ({error:?}) to the configuration request after the \
                     unroutable ones: the stream did not go on"
                ),
            ));
        }
    }
    Ok(())
}

case!(
    UNMATCHED_RESPONSE_IGNORED: host "host/rpc/unmatched-response-ignored",
    ["RPC-6"],
    with_behaviour_activated(Behaviour { unmatched_response_first: true, ..Behaviour::default() }, req!("RPC-6")),
    "a response on the hooks stream whose Seq matches no call is discarded; the activation after it succeeds"
);

/// A successful activation and deactivation of a plugin that behaves as `b`.
fn with_behaviour_activated(
    h: &mut HostUnderTest,
    b: Behaviour,
    requirement: &'static str,
) -> Result<(), Outcome> {
    h.script(vec![b]);
    start_ok(h)?;
    activate_ok(h, requirement)?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, requirement, "a successful deactivation").map(|_| ())
}

case!(
    REPLY_OF_THE_WRONG_TYPE: host "host/rpc/reply-of-the-wrong-type",
    ["RPC-10", "RPC-16"],
    reply_of_the_wrong_type,
    "a reply to OnActivate that is a string, not a struct, fails that activation only: the plugin keeps running and is deactivated"
);

/// RPC-10 (Table 5-9, R9) at the host's hooks client: a successful reply of another type than
/// a hook's (a string) fails that call, the activation (RPC-16); the stream and the plugin go
/// on, so a deactivation after it succeeds.
fn reply_of_the_wrong_type(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let b = Behaviour {
        wrong_reply_type: true,
        ..Behaviour::default()
    };
    refused_activation(
        h,
        b,
        req!("RPC-10"),
        "the activation failing: OnActivate's reply is a string, not a struct",
    )?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        req!("RPC-10"),
        "a successful deactivation: a reply of the wrong type fails its call only",
    )?;
    if h.launches().len() > 1 || saw_eof(h, 0) {
        return Err(h.fail(
            req!("RPC-10"),
            "the plugin kept after a reply of the wrong type",
            "the host ended its connection",
        ));
    }
    Ok(())
}

case!(
    OVERSIZED_CONFIGURATION: host "host/rpc/oversized-configuration",
    ["RPC-18", "GOB-16", "DRV-7"],
    oversized_configuration,
    with_timeout(Duration::from_secs(60)),
    "a configuration too long for one gob message is answered with an error response, not cut and not sent whole"
);

/// RPC-18 with GOB-16: the activation's configuration is a JSON string of 5 MiB, whose reply
/// cannot be one gob message of at most GOB_MIN_MAX_MESSAGE (4 MiB); the host must answer the
/// plugin's `LoadPluginConfiguration` with an error response, and its API stream goes on.
fn oversized_configuration(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    // A JSON string of 5 MiB, as a JSON text.
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    // The activation's outcome does not matter here: the configuration's answer does.
    let _ = h.call(
        "activate",
        json!({"plugin": "p", "config": big}),
        Duration::from_secs(30),
    );
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let Some(got) = h.launches()[0].event("config").cloned() else {
        return Err(h.fail(
            req!("RPC-18"),
            "an answer to the plugin's LoadPluginConfiguration during OnActivate",
            "none",
        ));
    };
    let error = got["error"].as_str().unwrap_or("");
    if got["broken"] == true {
        return Err(h.fail(
            req!("RPC-18"),
            "an error response (the configuration does not fit one gob message, GOB-16)",
            &format!("no response: the API stream broke: {error}"),
        ));
    }
    if error.is_empty() {
        let len = got["hex"].as_str().map_or(0, |x| x.len() / 2);
        return Err(h.fail(
            req!("RPC-18"),
            "an error response (the configuration does not fit one gob message, GOB-16)",
            &format!(
                "a reply holding {len} bytes of a {} byte configuration",
                (5 << 20) + 2
            ),
        ));
    }
    let r = h.call("stop", json!({"plugin": "p"}), Duration::from_secs(20));
    must(h, r, req!("DRV-8"), "a successful stop").map(|_| ())
}

/// Starts a plugin that behaves as `b` and activates it: the error, which must come
/// (`requirement`, `what` in words).
fn refused_activation(
    h: &mut HostUnderTest,
    b: Behaviour,
    requirement: &'static str,
    what: &str,
) -> Result<String, Outcome> {
    h.script(vec![b]);
    start_ok(h)?;
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        REPLY_TIMEOUT,
    );
    must_fail(h, r, requirement, what)
}

/// A plugin that answers OnActivate with an error response.
fn failing_activations() -> Behaviour {
    Behaviour {
        fail_activate: true,
        ..Behaviour::default()
    }
}
