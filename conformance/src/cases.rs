//! The case catalog: every [`Case`] cites the requirement ids it checks.

use std::time::Duration;

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::handshake::{parse_announcement, HandshakeError};
use rpcplugin_codec::rpc::{Call, LOAD_PLUGIN_CONFIGURATION};

use crate::driver::{PluginUnderTest, RawEnd, CALL_TIMEOUT, EXIT_BOUND, START_TIMEOUT};
use crate::outcome::{Failure, Outcome};

/// One conformance case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// A stable id, such as `handshake/announce-even-stream`.
    pub id: &'static str,
    /// What the case checks, in a few words.
    pub title: &'static str,
    /// The ids of the requirements of `spec/requirements.json` that it checks.
    pub requirements: &'static [&'static str],
    /// How long the case may take at most (before `--timeout-scale`).
    pub timeout: Duration,
    /// Runs the case against a freshly launched plugin.
    pub run: fn(&mut PluginUnderTest) -> Outcome,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// Every case, in the order they run.
pub fn catalog() -> &'static [Case] {
    CATALOG
}

static CATALOG: &[Case] = &[
    Case {
        id: "handshake/announce-even-stream",
        title: "the first frame is an announcement on stream 0 of an even hooks stream id",
        requirements: &["HS-1", "STREAM-2", "FRAME-1", "FRAME-2"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(announce_even_stream(p)),
    },
    Case {
        id: "hooks/activate-deactivate",
        title: "OnActivate with an odd API stream and OnDeactivate are answered successfully",
        requirements: &["RPC-5", "RPC-12", "RPC-14", "RPC-15"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(activate_deactivate(p)),
    },
    Case {
        id: "hooks/activate-even-id-rejected",
        title: "OnActivate with an even API stream id is answered with an error",
        requirements: &["RPC-14"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(activate_even_id(p)),
    },
    Case {
        id: "framing/fragmented-call",
        title: "a call written one byte per write is answered",
        requirements: &["FRAME-12"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(fragmented_call(p)),
    },
    Case {
        id: "streams/unknown-stream-discarded",
        title: "frames for streams never opened are discarded and the plugin still answers",
        requirements: &["STREAM-5"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(unknown_stream(p)),
    },
    Case {
        id: "handshake/control-after-handshake",
        title: "stream-0 frames from the host are discarded without blocking the plugin",
        requirements: &["HS-8", "STREAM-14"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(control_after_handshake(p)),
    },
    Case {
        id: "framing/negative-stream-id",
        title: "a frame with a negative stream id ends the connection and the plugin exits",
        requirements: &["FRAME-5", "FRAME-14", "TRANS-9"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(malformed(p, &[0x01, 0x00], "FRAME-5")),
    },
    Case {
        id: "framing/negative-length",
        title: "a frame with a negative payload length ends the connection and the plugin exits",
        requirements: &["FRAME-6", "FRAME-14", "TRANS-9"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(malformed(p, &[0x02, 0x01], "FRAME-6")),
    },
    Case {
        id: "framing/oversized-frame",
        title: "a header declaring 16 777 217 payload bytes ends the connection without waiting for the payload",
        requirements: &["FRAME-8", "FRAME-14", "TRANS-9"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(malformed(p, &[0x02, 0x82, 0x80, 0x80, 0x10], "FRAME-8")),
    },
    Case {
        id: "framing/varint-overflow",
        title: "a stream id varint that does not fit in 64 bits ends the connection",
        requirements: &["FRAME-4", "FRAME-14", "TRANS-9"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(malformed(p, &VARINT_OVERFLOW, "FRAME-4")),
    },
    Case {
        id: "framing/max-size-frame",
        title: "a frame of exactly 1 048 576 payload bytes on an unknown stream is accepted and discarded",
        requirements: &["FRAME-7", "STREAM-5"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(max_size_frame(p)),
    },
    Case {
        id: "rpc/concurrent-calls",
        title: "requests sent back to back are each answered once, with their own Seq and outcome",
        requirements: &["RPC-5", "RPC-14", "RPC-15"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(concurrent_calls(p)),
    },
    Case {
        id: "streams/parity-of-opened-streams",
        title: "every stream the plugin opens itself has an even id",
        requirements: &["STREAM-2"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(parity_of_opened_streams(p)),
    },
    Case {
        id: "transport/eof-exit",
        title: "when the host closes its pipe the plugin exits within EXIT_BOUND with status 0",
        requirements: &["TRANS-9", "TRANS-10"],
        timeout: DEFAULT_TIMEOUT,
        run: |p| finish(eof_exit(p)),
    },
];

fn finish(result: Result<(), Outcome>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(outcome) => outcome,
    }
}

fn announce_even_stream(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let expected = "a frame on stream 0 whose payload is 00 followed by the varint of an even \
                    positive stream id, as the first frame, within START_TIMEOUT (3 s)";
    let frame = match p.next_frame(START_TIMEOUT) {
        Ok(frame) => frame,
        Err(RawEnd::TimedOut) => return Err(p.fail("HS-1", expected, "no whole frame in time")),
        Err(RawEnd::Malformed(e)) => {
            return Err(p.fail("FRAME-1", expected, &format!("malformed output: {e}")))
        }
        Err(end @ (RawEnd::Eof | RawEnd::Error(_))) => {
            let got = format!("the plugin's output ended ({end:?}) before any frame");
            let exit = p.wait_exit(Duration::from_millis(500));
            let mut failure = Failure::new("HS-1", expected, got);
            if let Some(exit) = exit {
                failure.got = format!("{}; the process {exit}", failure.got);
                failure.setup = Some(format!(
                    "the plugin crashed before the handshake: it {exit} without announcing its hooks stream"
                ));
            }
            failure.stderr = p.stderr();
            return Err(Outcome::Fail(failure));
        }
    };
    if frame.stream_id != StreamId::CONTROL {
        return Err(p.fail(
            "HS-1",
            expected,
            &format!("the first frame is on stream {}", frame.stream_id),
        ));
    }
    let hooks = parse_announcement(&frame.payload).map_err(|e| {
        // An odd (or non-positive) id breaks the plugin's allocation rule; anything else the
        // announcement's layout.
        let requirement = match e {
            HandshakeError::InvalidHooksStreamId { .. } => "STREAM-2",
            _ => "HS-1",
        };
        p.fail(
            requirement,
            expected,
            &format!("payload {}: {e}", hex(&frame.payload)),
        )
    })?;
    if !hooks.is_plugin_allocated() {
        return Err(p.fail(
            "STREAM-2",
            expected,
            &format!("the announced hooks stream is {hooks}, not even"),
        ));
    }
    Ok(())
}

fn activate(p: &mut PluginUnderTest, fragmented: bool) -> Result<(), Outcome> {
    let api = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: api.get(),
    };
    let answer = if fragmented {
        let seq = p.call_fragmented(call.clone())?;
        p.await_response(seq, &call, "FRAME-12")?
    } else {
        p.call(call, "RPC-5")?
    };
    if let Err(text) = answer {
        let requirement = if fragmented { "FRAME-12" } else { "RPC-14" };
        return Err(p.fail(
            requirement,
            &format!("a successful response to OnActivate({api})"),
            &format!("an error response: {text}"),
        ));
    }
    Ok(())
}

fn activate_deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, false)?;
    for method in p.api_calls() {
        if method != LOAD_PLUGIN_CONFIGURATION {
            return Err(p.fail(
                "RPC-12",
                "only LocalAPI.LoadPluginConfiguration calls on the API stream",
                &format!("a call of {method}"),
            ));
        }
    }
    match p.call(Call::OnDeactivate, "RPC-5")? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            "RPC-15",
            "a successful response to OnDeactivate",
            &format!("an error response: {text}"),
        )),
    }
}

fn activate_even_id(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let even = hooks.get() + 2;
    match p.call(Call::OnActivate { api_stream: even }, "RPC-5")? {
        Err(_) => Ok(()),
        Ok(_) => Err(p.fail(
            "RPC-14",
            &format!("an error response to OnActivate({even}), an id the host cannot allocate"),
            "a successful response",
        )),
    }
}

fn fragmented_call(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, true)
}

fn unknown_stream(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let junk = [
        (101, &b"junk"[..]),
        (103, &b""[..]),
        (hooks.get() + 1000, &b"more junk"[..]),
    ];
    for (id, payload) in junk {
        let id = StreamId::new(id).expect("positive");
        p.write_frame(id, payload).map_err(|e| {
            p.fail(
                "STREAM-5",
                "the plugin keeps reading after frames for unknown streams",
                &e,
            )
        })?;
    }
    activate(p, false)
}

fn control_after_handshake(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    for payload in [&[0x00, 0x04][..], &b"stream zero"[..], &[][..]] {
        p.write_frame(StreamId::CONTROL, payload)
            .map_err(|e| p.fail("HS-8", "the plugin keeps reading after stream-0 frames", &e))?;
    }
    activate(p, false)
}

fn malformed(
    p: &mut PluginUnderTest,
    bytes: &[u8],
    requirement: &'static str,
) -> Result<(), Outcome> {
    p.handshake()?;
    let _ = p.write_raw(bytes);
    if !p.wait_eof(EXIT_BOUND) {
        return Err(p.fail(
            requirement,
            &format!(
                "after the malformed frame {}, the plugin ends the connection (closes descriptor 4)",
                hex(bytes)
            ),
            &format!("its output is still open after {:?}", p.scaled(EXIT_BOUND)),
        ));
    }
    match p.wait_exit(EXIT_BOUND) {
        Some(_) => Ok(()),
        None => Err(p.fail(
            "TRANS-9",
            "the plugin exits within EXIT_BOUND (5 s) after the connection error",
            "it is still running",
        )),
    }
}

/// Table 2-2, M1: a stream id varint whose tenth byte is greater than 0x01.
const VARINT_OVERFLOW: [u8; 10] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

fn max_size_frame(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    // Stream 7 has the host's parity and was never announced: the plugin has not connected it.
    let unknown = StreamId::new(7).expect("positive");
    let payload = vec![0xab; rpcplugin_codec::frame::MIN_MAX_PAYLOAD];
    let mut frame = Vec::new();
    rpcplugin_codec::frame::encode_frame(unknown, &payload, &mut frame)
        .map_err(|e| Outcome::error(format!("encoding the frame failed: {e}")))?;
    let expected = "the plugin reads a frame of 1 048 576 payload bytes on stream 7, discards it \
                    and answers the OnDeactivate call that follows";
    p.write_raw_bounded(frame, CALL_TIMEOUT)
        .map_err(|e| p.fail("FRAME-7", expected, &e))?;
    match p.call(Call::OnDeactivate, "FRAME-7")? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            "FRAME-7",
            expected,
            &format!("an error response to OnDeactivate: {text}"),
        )),
    }
}

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
    let deadline = p.deadline(CALL_TIMEOUT);
    while !pending.is_empty() {
        let response = match p.next_hook_response(deadline) {
            Ok(Some(response)) => response,
            Ok(None) => {
                let missing: Vec<String> = pending
                    .iter()
                    .map(|(seq, call)| format!("{call} (Seq {seq})"))
                    .collect();
                return Err(p.fail(
                    "RPC-5",
                    expected,
                    &format!("no response in time to {}", missing.join(", ")),
                ));
            }
            Err(got) => return Err(p.fail("RPC-5", expected, &got)),
        };
        let seq = response.header.seq;
        let Some(at) = pending.iter().position(|(s, _)| *s == seq) else {
            return Err(p.fail(
                "RPC-5",
                expected,
                &format!("a second response, or one that matches no request, with Seq {seq}"),
            ));
        };
        let (_, call) = pending.remove(at);
        if response.header.service_method != call.service_method() {
            return Err(p.fail(
                "RPC-5",
                expected,
                &format!(
                    "the response with Seq {seq} carries ServiceMethod {:?}, not {:?}",
                    response.header.service_method,
                    call.service_method()
                ),
            ));
        }
        let error = &response.header.error;
        match call {
            Call::OnActivate { .. } if error.is_empty() => {
                return Err(p.fail(
                    "RPC-14",
                    &format!(
                        "an error response to OnActivate({even}), an id the host cannot allocate"
                    ),
                    "a successful response",
                ))
            }
            Call::OnDeactivate if !error.is_empty() => {
                return Err(p.fail(
                    "RPC-15",
                    "a successful response to each OnDeactivate",
                    &format!("an error response to the one with Seq {seq}: {error}"),
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

fn parity_of_opened_streams(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let handshake = p.handshake().map(|_| ());
    let activated = handshake.and_then(|()| activate(p, false));
    // A violation seen before a failure is reported first: it is what this case checks.
    let opened = p.streams_opened().to_vec();
    if let Some(odd) = p
        .streams_seen()
        .iter()
        .find(|id| !opened.contains(id) && !id.is_plugin_allocated())
    {
        let seen: Vec<String> = p.streams_seen().iter().map(|id| id.to_string()).collect();
        return Err(p.fail(
            "STREAM-2",
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

fn eof_exit(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    p.close_input();
    match p.wait_exit(EXIT_BOUND) {
        None => Err(p.fail(
            "TRANS-9",
            "the plugin exits within EXIT_BOUND (5 s) after the host closed its pipe",
            "it is still running",
        )),
        Some(exit) if !exit.success() => Err(p.fail(
            "TRANS-10",
            "exit status 0 after the host closed its pipe",
            &format!("the process {exit}"),
        )),
        Some(_) => Ok(()),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}
