//! `plugin/rpc/...`: RPC at the plugin (spec 05 sections 5.2 to 5.4): concurrent and pipelined
//! calls, requests it cannot route and Go's error texts (Table 5-9), answers of the harness's
//! `LocalAPI` that the plugin's client must take (an error, a stray response, a reply of the
//! wrong type), and large or deeply nested gob messages within the limits of Table 5-6.
//!
//! Rows: F4, R2 to R5, R7, R8, R9, R12, S5.
//! Requirements: FRAME-7, FRAME-10, STREAM-13, RPC-3, RPC-5, RPC-6, RPC-8, RPC-9, RPC-10,
//! RPC-14, RPC-15, RPC-20, RPC-21, GOB-11, GOB-12, GOB-15, GOB-16, GOB-17.

use std::time::Duration;

use rpcplugin_codec::frame::MIN_MAX_PAYLOAD;
use rpcplugin_codec::gob::{ids, Encoder, Field, TypeRegistry, Value, WireType};
use rpcplugin_codec::rpc::{Call, ON_ACTIVATE, ON_DEACTIVATE};

use super::helpers::{
    activate_with_api_answer, activation_answer, await_all, closed_at, deactivate, plugin_closed,
    queue_deactivation, QUIET,
};
use crate::outcome::Outcome;
use crate::plugin_under_test::{ApiAnswer, PluginUnderTest, CALL_TIMEOUT};
use rpcplugin_codec::req;

case!(
    CONCURRENT_CALLS: plugin "plugin/rpc/concurrent-calls",
    ["RPC-5", "RPC-14", "RPC-20", "RPC-15"],
    concurrent_calls,
    "requests sent back to back are each answered once, with their own Seq and outcome"
);

fn concurrent_calls(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let even = hooks.get() + 2;
    let calls = [
        Call::OnDeactivate,
        Call::OnDeactivate,
        Call::OnActivate { api_stream: even },
    ];
    let mut pending = Vec::new();
    for call in calls {
        let seq = p.send_call(call.clone())?;
        pending.push((seq, call));
    }
    let expected = "one response to each of OnDeactivate (Seq 0), OnDeactivate (Seq 1) and \
                    OnActivate with an even id (Seq 2), sent back to back, with the request's \
                    ServiceMethod and Seq, in any order, within CALL_TIMEOUT (5 s)";
    for (call, response) in await_all(p, pending, expected, CALL_TIMEOUT)? {
        let error = &response.header.error;
        let seq = response.header.seq;
        match call {
            Call::OnActivate { .. } if error.is_empty() => {
                return Err(p.fail(
                    req!("RPC-14"),
                    &format!(
                        "an error response to OnActivate({even}), an id the host cannot allocate"
                    ),
                    "a successful response",
                ))
            }
            Call::OnDeactivate if !error.is_empty() => {
                return Err(p.fail(
                    req!("RPC-15"),
                    "a successful response to each OnDeactivate",
                    &format!("an error response to the one with Seq {seq}: {error}"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

case!(
    PIPELINED_CALLS: plugin "plugin/rpc/pipelined-calls",
    ["RPC-5", "FRAME-10"],
    pipelined_calls,
    "200 OnDeactivate requests in one write are each answered exactly once, in whole frames"
);

fn pipelined_calls(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let mut batch = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..200 {
        queue_deactivation(p, &mut batch, &mut pending)?;
    }
    p.send(&batch)?;
    await_all(
        p,
        pending,
        "one response to each of 200 OnDeactivate requests written in one write, with its Seq",
        CALL_TIMEOUT * 2,
    )?;
    Ok(())
}

case!(
    UNKNOWN_METHODS_ANSWERED: plugin "plugin/rpc/unknown-methods-answered",
    ["RPC-8"],
    unknown_methods,
    "requests for an unknown method, an unknown service and a name without a dot get error responses, and the stream goes on"
);

fn unknown_methods(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let calls: Vec<(&str, Option<(i64, Value)>)> =
        unroutable().iter().map(|(m, _)| (*m, None)).collect();
    error_answers(p, &calls).map(|_| ())
}

case!(
    GO_ERROR_TEXTS: plugin "plugin/rpc/go-error-texts",
    ["RPC-8", "RPC-9"],
    go_error_texts,
    "the error texts for unknown methods and services are Go's"
);

fn go_error_texts(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let cases = unroutable();
    let calls: Vec<(&str, Option<(i64, Value)>)> = cases.iter().map(|(m, _)| (*m, None)).collect();
    let texts = error_answers(p, &calls)?;
    for ((name, expected), got) in cases.iter().zip(texts) {
        if got != *expected {
            return Err(p.fail(
                req!("RPC-9"),
                &format!("the error text {expected:?} for a request of {name:?}"),
                &format!("{got:?}"),
            ));
        }
    }
    Ok(())
}

case!(
    LONG_METHOD_NAME: plugin "plugin/rpc/long-method-name",
    ["RPC-21", "GOB-16"],
    long_method_name,
    with_timeout(Duration::from_secs(30)),
    "a request for an unknown method whose name is 3 MiB long is answered with an error response that fits in 4 MiB, and the stream goes on"
);

/// Table 5-9, R12: the error response to an unknown method of 3 MiB, as Go writes it (the name
/// echoed, and repeated in the text), would be a header of more than 6 MiB; the plugin answers
/// with one that fits (RPC-21). A response that does not fit is the observer's GOB-16.
fn long_method_name(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let hooks = p.hooks().ok_or_else(|| Outcome::error("no handshake"))?;
    let method = format!("LocalHooks.{}", "x".repeat(3 << 20));
    let what = "an error response with the request's Seq to a request for an unknown method whose \
                name is 3 MiB long (a 3 MiB request header in four frames)";
    let mut client = CustomClient::new(TypeRegistry::new(), &[]);
    let (seq, body) = client.request(&method, None, Vec::new())?;
    let mut frames = Vec::new();
    rpcplugin_codec::frame::encode_data(hooks, &body, MIN_MAX_PAYLOAD, &mut frames);
    p.write_raw_bounded(frames, CALL_TIMEOUT)
        .map_err(|e| p.fail(req!("RPC-21"), what, &e))?;
    match p.wait_until(CALL_TIMEOUT, |p| {
        p.has_hook_response(seq) || plugin_closed(p, hooks)
    }) {
        Err(got) => return Err(p.fail(req!("RPC-21"), what, &got)),
        Ok(false) => return Err(p.fail(req!("RPC-21"), what, "no response in time")),
        Ok(true) => {}
    }
    let responses = p.take_hook_responses().unwrap_or_default();
    match responses.into_iter().find(|r| r.header.seq == seq) {
        Some(r) if r.header.error.is_empty() => {
            return Err(p.fail(req!("RPC-21"), what, "a successful response"))
        }
        Some(_) => {}
        None => {
            return Err(p.fail(
                req!("RPC-21"),
                what,
                &format!("no response: the plugin closed the hooks stream {hooks} instead"),
            ))
        }
    }
    let (seq, body) = client.request(ON_DEACTIVATE, None, Vec::new())?;
    expect_answer(
        p,
        &body,
        seq,
        req!("RPC-21"),
        "after that error response, the stream goes on: OnDeactivate is answered",
    )
}

case!(
    WRONG_ARGUMENT_TYPE: plugin "plugin/rpc/wrong-argument-type",
    ["RPC-8"],
    wrong_argument_type,
    "OnActivate with a string argument gets an error response, and the stream goes on"
);

fn wrong_argument_type(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let calls = [(
        ON_ACTIVATE,
        Some((ids::STRING, Value::string("not a stream id"))),
    )];
    error_answers(p, &calls).map(|_| ())
}

case!(
    UNMATCHED_API_RESPONSE_IGNORED: plugin "plugin/rpc/unmatched-api-response-ignored",
    ["RPC-6"],
    unmatched_api_response,
    "a response on the API stream that matches no pending call is ignored by the plugin's client"
);

fn unmatched_api_response(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::UnmatchedFirst)?;
    match activation_answer(p, a, req!("RPC-6"))? {
        Ok(()) => Ok(()),
        Err(text) => Err(p.fail(
            req!("RPC-6"),
            "a successful OnActivate: the plugin's API client skips a response with Seq 1000000 \
             that matches no call and takes the configuration that follows",
            &format!("an error response: {text}"),
        )),
    }
}

case!(
    API_ERROR_RESPONSE: plugin "plugin/rpc/api-error-response",
    ["RPC-10"],
    api_error_response,
    "an error response to LoadPluginConfiguration reaches the plugin's hook: OnActivate is still answered"
);

fn api_error_response(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let text = "conformance: no configuration for you";
    let a = activate_with_api_answer(p, ApiAnswer::Error(text.into()))?;
    // Success or failure of the hook is the plugin's business; an answer is required.
    activation_answer(p, a, req!("RPC-10")).map(|_| ())
}

case!(
    REPLY_OF_THE_WRONG_TYPE: plugin "plugin/rpc/reply-of-the-wrong-type",
    ["RPC-10"],
    reply_of_the_wrong_type,
    "a LoadPluginConfiguration reply that is a string, not []byte, fails that call only: the API stream stays open and OnActivate is answered"
);

/// RPC-10 (Table 5-9, R9): a successful reply of another type than the call's fails that call
/// only; the client keeps its stream. The plugin's hook decides what its failed call means for
/// OnActivate, but the API stream stays open until a deactivation or a new activation.
fn reply_of_the_wrong_type(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::WrongType)?;
    let api = a.api;
    // Whether the hook then fails its activation is the plugin's own decision.
    let _ = activation_answer(p, a, req!("RPC-10"))?;
    let _ = p.wait_until(QUIET, |p| plugin_closed(p, api));
    if let Some(at) = closed_at(p, api) {
        return Err(p.fail(
            req!("RPC-10"),
            &format!(
                "after a LoadPluginConfiguration reply of the wrong type (a string), the call \
                 fails and the API stream {api} stays open"
            ),
            &format!(
                "the plugin closed the API stream (at byte {at} of its output), as after a gob \
                 error: a well-formed reply of another type fails that call only"
            ),
        ));
    }
    deactivate(p)
}

case!(
    LARGE_CONFIGURATION: plugin "plugin/rpc/large-configuration",
    ["GOB-15", "FRAME-7", "STREAM-13"],
    large_configuration,
    with_timeout(Duration::from_secs(30)),
    "a LoadPluginConfiguration reply of 4 MiB (one gob message in five frames) is accepted"
);

fn large_configuration(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    // A JSON string whose gob message (header excluded) stays within GOB_MIN_MAX_MESSAGE.
    let mut config = Vec::with_capacity(4 << 20);
    config.push(b'"');
    config.resize((4 << 20) - 64, b'x');
    config.push(b'"');
    let a = activate_with_api_answer(p, ApiAnswer::Configuration(config))?;
    let api = a.api;
    let answer = activation_answer(p, a, req!("GOB-15"))?;
    // A plugin that reset the API stream (STREAM-13) while the reply came did not accept it,
    // whatever its hook then answered: it closes that stream only on a new activation or a
    // deactivation (RPC-14, RPC-15).
    if let Some(at) = closed_at(p, api) {
        return Err(p.fail(
            req!("GOB-15"),
            "the plugin accepting a LoadPluginConfiguration reply of 4 194 240 bytes (one gob \
             message within GOB_MIN_MAX_MESSAGE, in five frames)",
            &format!(
                "it closed the API stream {api} (at byte {at} of its output) while the reply \
                 arrived, so it did not take the message: a message being assembled and the \
                 frame that completes it fit in MIN_STREAM_BUFFER (section 3.7, RPC-19)"
            ),
        ));
    }
    match answer {
        Ok(()) => Ok(()),
        Err(text) => Err(p.fail(
            req!("GOB-15"),
            "a successful OnActivate after a 4 194 240-byte configuration (a JSON string)",
            &format!("an error response: {text}"),
        )),
    }
}

case!(
    LARGE_REQUEST_HEADER: plugin "plugin/rpc/large-request-header",
    ["GOB-15", "RPC-3", "STREAM-13"],
    large_request_header,
    with_timeout(Duration::from_secs(30)),
    "a request whose header carries an unknown 3 MiB string field is answered"
);

fn large_request_header(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let mut client = CustomClient::new(TypeRegistry::new(), &[("Trace", ids::STRING)]);
    let trace = Field {
        name: "Trace".into(),
        value: Value::String(vec![b't'; 3 << 20]),
    };
    let (seq, body) = client.request(ON_DEACTIVATE, None, vec![trace])?;
    expect_answer(
        p,
        &body,
        seq,
        req!("GOB-15"),
        "a successful response to OnDeactivate whose header carries a 3 MiB string in a field \
         named Trace, which the plugin skips (a 3 MiB gob message in four frames)",
    )?;
    let small = Field {
        name: "Trace".into(),
        value: Value::string("small"),
    };
    let (seq, body) = client.request(ON_DEACTIVATE, None, vec![small])?;
    expect_answer(
        p,
        &body,
        seq,
        req!("RPC-3"),
        "a successful response to the next OnDeactivate on the same stream",
    )
}

case!(
    DEEPLY_NESTED_HEADER_FIELD: plugin "plugin/rpc/deeply-nested-header-field",
    ["GOB-17", "RPC-3", "GOB-11", "GOB-12"],
    nested_header_field,
    "a request header with an unknown field nested 16 levels deep is answered"
);

fn nested_header_field(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    // The header is level 1; its field Ctx holds levels 2 to 16.
    let mut registry = TypeRegistry::new();
    let mut inner = registry.register(WireType::structure("Level16", &[("Leaf", ids::INT)]));
    let mut value = Value::Struct {
        name: "Level16".into(),
        fields: vec![Field {
            name: "Leaf".into(),
            value: Value::Int(16),
        }],
    };
    for level in (2..16).rev() {
        let name = format!("Level{level}");
        inner = registry.register(WireType::structure(&name, &[("Next", inner)]));
        value = Value::Struct {
            name,
            fields: vec![Field {
                name: "Next".into(),
                value,
            }],
        };
    }
    let mut client = CustomClient::new(registry, &[("Ctx", inner)]);
    let ctx = Field {
        name: "Ctx".into(),
        value,
    };
    let (seq, body) = client.request(ON_DEACTIVATE, None, vec![ctx])?;
    expect_answer(
        p,
        &body,
        seq,
        req!("GOB-17"),
        "a successful response to OnDeactivate whose header has a field Ctx of a struct type \
         nested 16 levels deep (counting the header), which the plugin skips",
    )
}

/// A request encoder with types of its own: the header type `Request` with the fields
/// `ServiceMethod`, `Seq` and `extra`, and `struct{}`, with the ids its registry assigns.
pub(crate) struct CustomClient {
    encoder: Encoder,
    request: i64,
    empty: i64,
    next_seq: u64,
}

impl CustomClient {
    pub(crate) fn new(mut registry: TypeRegistry, extra: &[(&str, i64)]) -> CustomClient {
        let mut fields = vec![("ServiceMethod", ids::STRING), ("Seq", ids::UINT)];
        fields.extend_from_slice(extra);
        let request = registry.register(WireType::structure("Request", &fields));
        let empty = registry.register(WireType::structure("", &[]));
        CustomClient {
            encoder: Encoder::new(registry),
            request,
            empty,
            next_seq: 0,
        }
    }

    /// The next request: `method` with `args` (a type id and a value; `None` for `struct{}`),
    /// the header carrying `extra` fields too.
    pub(crate) fn request(
        &mut self,
        method: &str,
        args: Option<(i64, Value)>,
        extra: Vec<Field>,
    ) -> Result<(u64, Vec<u8>), Outcome> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let mut fields = vec![Field {
            name: "ServiceMethod".into(),
            value: Value::string(method),
        }];
        if seq > 0 {
            fields.push(Field {
                name: "Seq".into(),
                value: Value::Uint(seq),
            });
        }
        fields.extend(extra);
        let header = Value::Struct {
            name: "Request".into(),
            fields,
        };
        let (args_type, args) = args.unwrap_or((self.empty, Value::empty_struct()));
        let mut out = Vec::new();
        self.encoder
            .encode(self.request, &header, &mut out)
            .and_then(|()| self.encoder.encode(args_type, &args, &mut out))
            .map_err(|e| Outcome::error(format!("encoding the request failed: {e}")))?;
        Ok((seq, out))
    }
}

/// Sends `body` on the hooks stream and waits for a successful response with `seq`.
fn expect_answer(
    p: &mut PluginUnderTest,
    body: &[u8],
    seq: u64,
    requirement: &'static str,
    what: &str,
) -> Result<(), Outcome> {
    let hooks = p.hooks().ok_or_else(|| Outcome::error("no handshake"))?;
    let mut frames = Vec::new();
    rpcplugin_codec::frame::encode_data(hooks, body, MIN_MAX_PAYLOAD, &mut frames);
    p.write_raw_bounded(frames, CALL_TIMEOUT)
        .map_err(|e| p.fail(requirement, what, &e))?;
    // Until the response comes, or the plugin closes the hooks stream, after which it cannot
    // answer on it.
    match p.wait_until(CALL_TIMEOUT, |p| {
        p.has_hook_response(seq) || plugin_closed(p, hooks)
    }) {
        Err(got) => return Err(p.fail(requirement, what, &got)),
        Ok(false) => return Err(p.fail(requirement, what, "no response in time")),
        Ok(true) => {}
    }
    let responses = p.take_hook_responses().unwrap_or_default();
    match responses.into_iter().find(|r| r.header.seq == seq) {
        Some(r) if r.header.error.is_empty() => Ok(()),
        Some(r) => Err(p.fail(
            requirement,
            what,
            &format!("an error response: {}", r.header.error),
        )),
        None => {
            let at = closed_at(p, hooks).unwrap_or(0);
            Err(p.fail(
                requirement,
                what,
                &format!(
                    "no response: the plugin closed the hooks stream {hooks} (at byte {at} of its \
                     output) instead, so it cannot answer; a stream it resets because the \
                     request's data exceeded its buffer (STREAM-13) means it did not take the \
                     message"
                ),
            ))
        }
    }
}

/// Requests the plugin cannot route, with Go's error text for each (RPC-8, RPC-9).
fn unroutable() -> [(&'static str, &'static str); 3] {
    [
        (
            "LocalHooks.NoSuchMethod",
            "rpc: can't find method LocalHooks.NoSuchMethod",
        ),
        (
            "NoSuchService.OnActivate",
            "rpc: can't find service NoSuchService.OnActivate",
        ),
        ("NoDot", "rpc: service/method request ill-formed: NoDot"),
    ]
}

/// Sends a request of each of `calls` (a method and an argument) and returns the error texts
/// of their responses, in order; each must be an error response. Then checks that the stream
/// goes on: an OnDeactivate on it is answered.
fn error_answers(
    p: &mut PluginUnderTest,
    calls: &[(&str, Option<(i64, Value)>)],
) -> Result<Vec<String>, Outcome> {
    p.handshake()?;
    let hooks = p.hooks().ok_or_else(|| Outcome::error("no handshake"))?;
    let mut client = CustomClient::new(TypeRegistry::new(), &[]);
    let mut texts = Vec::new();
    for (method, args) in calls {
        let what = format!("an error response to a request of {method:?}");
        let (seq, body) = client.request(method, args.clone(), Vec::new())?;
        let mut frames = Vec::new();
        rpcplugin_codec::frame::encode_data(hooks, &body, MIN_MAX_PAYLOAD, &mut frames);
        p.send(&frames)?;
        let deadline = p.deadline(CALL_TIMEOUT);
        let text = loop {
            match p.next_hook_response(deadline) {
                Ok(Some(r)) if r.header.seq == seq => break r.header.error,
                Ok(Some(_)) => {}
                Ok(None) => return Err(p.fail(req!("RPC-8"), &what, "no response in time")),
                Err(got) => return Err(p.fail(req!("RPC-8"), &what, &got)),
            }
        };
        if text.is_empty() {
            return Err(p.fail(req!("RPC-8"), &what, "a successful response"));
        }
        texts.push(text);
    }
    let (seq, body) = client.request(ON_DEACTIVATE, None, Vec::new())?;
    expect_answer(
        p,
        &body,
        seq,
        req!("RPC-8"),
        "after the error responses, the stream goes on: OnDeactivate is answered",
    )?;
    Ok(texts)
}
