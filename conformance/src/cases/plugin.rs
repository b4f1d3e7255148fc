//! Cases against a plugin executable: the harness plays the host.
//!
//! Besides what each case checks, the driver's observer checks everything the plugin writes
//! in every case (see [`crate::plugin_under_test`]); the case
//! `plugin/wire/output-follows-sender-rules` cites the requirements it enforces.

use std::time::Duration;

use rpcplugin_codec::frame::{encode_frame, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::gob::{ids, Encoder, Field, TypeRegistry, Value, WireType};
use rpcplugin_codec::handshake::{parse_announcement, HandshakeError};
use rpcplugin_codec::rpc::{Call, Response, LOAD_PLUGIN_CONFIGURATION, ON_ACTIVATE, ON_DEACTIVATE};
use rpcplugin_codec::trace::{hex, What};
use rpcplugin_codec::varint;

use super::{Case, Runner, DEFAULT_TIMEOUT};
use crate::outcome::{Failure, Outcome};
use crate::plugin_under_test::{
    ApiAnswer, PluginUnderTest, RawEnd, CALL_TIMEOUT, EXIT_BOUND, START_TIMEOUT,
};

/// How long the harness watches for something that must not happen (a response to a request
/// that had to be discarded, the end of a connection that must go on).
const QUIET: Duration = Duration::from_millis(500);

/// The hand-written plugin cases, in the order they run.
pub static CASES: &[Case] = &[
    Case::plugin(
        "plugin/handshake/announce-even-stream",
        "the first frame is an announcement on stream 0 of an even hooks stream id, on descriptor 4",
        &["HS-1", "STREAM-2", "FRAME-1", "FRAME-2", "TRANS-2"],
        |p| finish(announce_even_stream(p)),
    ),
    Case::plugin(
        "plugin/hooks/activate-deactivate",
        "OnActivate with an odd API stream and OnDeactivate are answered successfully",
        &["RPC-2", "RPC-5", "RPC-12", "RPC-20", "RPC-15", "STREAM-4", "HS-7", "TRANS-2"],
        |p| finish(activate_deactivate(p)),
    ),
    Case::plugin(
        "plugin/hooks/activate-even-id-rejected",
        "OnActivate with an even API stream id is answered with an error",
        &["RPC-14"],
        |p| finish(activate_even_id(p)),
    ),
    Case::plugin(
        "plugin/hooks/activate-stale-id-rejected",
        "OnActivate with 0, -1 or an id already used is answered with an error; a new odd id is accepted",
        &["RPC-14", "RPC-20"],
        |p| finish(activate_stale_id(p)),
    ),
    Case::plugin(
        "plugin/hooks/reactivate-closes-previous-api-stream",
        "a second OnActivate closes the first API stream before it is answered; OnDeactivate closes the second",
        &["RPC-20", "RPC-15", "STREAM-8"],
        |p| finish(reactivate_closes_previous(p)),
    ),
    Case::plugin(
        "plugin/hooks/serves-after-deactivate",
        "after OnDeactivate the plugin keeps running and can be activated again on the same connection",
        &["LIFE-21", "RPC-20"],
        |p| finish(serves_after_deactivate(p)),
    ),
    Case::plugin(
        "plugin/framing/one-byte-writes",
        "an OnActivate call written one byte per write is answered",
        &["FRAME-12"],
        |p| finish(one_byte_writes(p)),
    ),
    Case::plugin(
        "plugin/framing/every-split-point",
        "a request frame split in two writes at every possible point, then at random points, is answered every time",
        &["FRAME-12"],
        |p| finish(every_split_point(p)),
    ),
    Case::plugin(
        "plugin/framing/coalesced-frames",
        "100 request frames and frames for unknown streams in a single write are all answered",
        &["FRAME-12", "RPC-5", "STREAM-5"],
        |p| finish(coalesced_frames(p)),
    ),
    Case::plugin(
        "plugin/framing/one-byte-frames",
        "a request sent as one frame per byte is reassembled by the stream and answered",
        &["FRAME-12"],
        |p| finish(one_byte_frames(p)),
    ),
    Case::plugin(
        "plugin/framing/non-minimal-varints",
        "a request frame whose header varints are not minimal is accepted and answered",
        &["FRAME-3"],
        |p| finish(non_minimal_varints(p)),
    ),
    Case::plugin(
        "plugin/framing/max-size-frame",
        "a frame of exactly 1 048 576 payload bytes on an unknown stream is accepted and discarded",
        &["FRAME-7", "STREAM-5"],
        |p| finish(max_size_frame(p)),
    ),
    Case::plugin(
        "plugin/framing/negative-stream-id",
        "a frame with a negative stream id ends the connection: nothing after it is answered, the plugin exits",
        &["FRAME-5", "FRAME-14", "TRANS-7", "TRANS-8", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &[0x01, 0x00], "FRAME-5")),
    ),
    Case::plugin(
        "plugin/framing/negative-length",
        "a frame with a negative payload length ends the connection and the plugin exits",
        &["FRAME-6", "FRAME-14", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &[0x02, 0x01], "FRAME-6")),
    ),
    Case::plugin(
        "plugin/framing/oversized-frame",
        "a header declaring 16 777 217 payload bytes ends the connection without waiting for the payload",
        &["FRAME-8", "FRAME-14", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &[0x02, 0x82, 0x80, 0x80, 0x10], "FRAME-8")),
    ),
    Case::plugin(
        "plugin/framing/varint-overflow",
        "a stream id varint that does not fit in 64 bits ends the connection",
        &["FRAME-4", "FRAME-14", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &VARINT_OVERFLOW, "FRAME-4")),
    ),
    Case::plugin(
        "plugin/framing/length-varint-overflow",
        "a length varint that does not fit in 64 bits ends the connection",
        &["FRAME-4", "FRAME-14", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &LENGTH_OVERFLOW, "FRAME-4")),
    ),
    Case::plugin(
        "plugin/framing/most-negative-length",
        "a length that decodes to -2^63 (a valid varint) ends the connection",
        &["FRAME-6", "FRAME-14", "TRANS-9", "TRANS-10"],
        |p| finish(malformed(p, &MOST_NEGATIVE_LENGTH, "FRAME-6")),
    ),
    Case::plugin(
        "plugin/framing/truncated-header-at-eof",
        "end of file inside a frame header is a connection error: the plugin exits, with a non-zero status",
        &["FRAME-13", "TRANS-9", "TRANS-10"],
        |p| finish(truncated_header_at_eof(p)),
    ),
    Case::plugin(
        "plugin/framing/truncated-frame-at-eof",
        "end of file inside a frame is a connection error: the plugin exits, with a non-zero status",
        &["FRAME-13", "TRANS-9", "TRANS-10"],
        |p| finish(truncated_at_eof(p)),
    ),
    Case::plugin(
        "plugin/streams/unknown-stream-discarded",
        "data and close frames for streams never opened are discarded and the plugin still answers",
        &["STREAM-5"],
        |p| finish(unknown_stream(p)),
    ),
    Case::plugin(
        "plugin/streams/parity-of-opened-streams",
        "every stream the plugin opens itself has an even id",
        &["STREAM-2"],
        |p| finish(parity_of_opened_streams(p)),
    ),
    Case::plugin(
        "plugin/streams/data-after-close-discarded",
        "a request sent on the hooks stream after the host closed it is not answered",
        &["STREAM-9", "STREAM-10"],
        |p| finish(data_after_close(p)),
    ),
    Case::plugin(
        "plugin/streams/frames-after-close-discarded",
        "data and close frames on API streams in every closing state (closed by the plugin, by both, by the host, twice) are discarded, and the plugin goes on",
        &["STREAM-9", "STREAM-5", "STREAM-10"],
        |p| finish(frames_after_close(p)),
    ),
    Case::plugin(
        "plugin/streams/close-answered-with-close",
        "when the host closes the hooks stream, the plugin closes it too",
        &["STREAM-11"],
        |p| finish(close_answered_with_close(p)),
    ),
    Case::plugin(
        "plugin/streams/api-stream-closed-during-call",
        "when the host closes the API stream while the plugin's LoadPluginConfiguration is pending, the call fails and OnActivate is answered",
        &["STREAM-10", "RPC-11", "RPC-19"],
        |p| finish(api_closed_during_call(p)),
    ),
    Case::plugin(
        "plugin/handshake/control-after-handshake",
        "stream-0 frames from the host are discarded without blocking the plugin",
        &["HS-8", "STREAM-14"],
        |p| finish(control_after_handshake(p)),
    ),
    Case::plugin(
        "plugin/rpc/concurrent-calls",
        "requests sent back to back are each answered once, with their own Seq and outcome",
        &["RPC-5", "RPC-14", "RPC-20", "RPC-15"],
        |p| finish(concurrent_calls(p)),
    ),
    Case::plugin(
        "plugin/rpc/pipelined-calls",
        "200 OnDeactivate requests in one write are each answered exactly once, in whole frames",
        &["RPC-5", "FRAME-10"],
        |p| finish(pipelined_calls(p)),
    ),
    Case::plugin(
        "plugin/rpc/unknown-methods-answered",
        "requests for an unknown method, an unknown service and a name without a dot get error responses, and the stream goes on",
        &["RPC-8"],
        |p| finish(unknown_methods(p)),
    ),
    Case::plugin(
        "plugin/rpc/go-error-texts",
        "the error texts for unknown methods and services are Go's",
        &["RPC-8", "RPC-9"],
        |p| finish(go_error_texts(p)),
    ),
    Case::plugin(
        "plugin/rpc/long-method-name",
        "a request for an unknown method whose name is 3 MiB long is answered with an error response that fits in 4 MiB, and the stream goes on",
        &["RPC-21", "GOB-16"],
        |p| finish(long_method_name(p)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::plugin(
        "plugin/rpc/wrong-argument-type",
        "OnActivate with a string argument gets an error response, and the stream goes on",
        &["RPC-8"],
        |p| finish(wrong_argument_type(p)),
    ),
    Case::plugin(
        "plugin/rpc/unmatched-api-response-ignored",
        "a response on the API stream that matches no pending call is ignored by the plugin's client",
        &["RPC-6"],
        |p| finish(unmatched_api_response(p)),
    ),
    Case::plugin(
        "plugin/rpc/api-error-response",
        "an error response to LoadPluginConfiguration reaches the plugin's hook: OnActivate is still answered",
        &["RPC-10"],
        |p| finish(api_error_response(p)),
    ),
    Case::plugin(
        "plugin/rpc/reply-of-the-wrong-type",
        "a LoadPluginConfiguration reply that is a string, not []byte, fails that call only: the API stream stays open and OnActivate is answered",
        &["RPC-10"],
        |p| finish(reply_of_the_wrong_type(p)),
    ),
    Case::plugin(
        "plugin/rpc/large-configuration",
        "a LoadPluginConfiguration reply of 4 MiB (one gob message in five frames) is accepted",
        &["GOB-15", "FRAME-7", "STREAM-13"],
        |p| finish(large_configuration(p)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::plugin(
        "plugin/rpc/large-request-header",
        "a request whose header carries an unknown 3 MiB string field is answered",
        &["GOB-15", "RPC-3", "STREAM-13"],
        |p| finish(large_request_header(p)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::plugin(
        "plugin/rpc/deeply-nested-header-field",
        "a request header with an unknown field nested 16 levels deep is answered",
        &["GOB-17", "RPC-3", "GOB-11", "GOB-12"],
        |p| finish(nested_header_field(p)),
    ),
    Case::plugin(
        "plugin/robustness/gob-flood-on-hooks-stream",
        "a gob Length above 16 MiB on the hooks stream, then 32 MiB of data: the plugin closes that stream at once, discards the rest with its memory bounded, and keeps the connection",
        &["GOB-15", "GOB-19", "GOB-18", "STREAM-9"],
        |p| finish(gob_flood(p)),
    )
    .with_timeout(Duration::from_secs(60)),
    Case::plugin(
        "plugin/wire/output-follows-sender-rules",
        "in a session of handshake, activation, API call, reactivation and deactivation, everything the plugin writes follows the sender's rules",
        // What the observer enforces in every plugin case (spec/harness.md section 1.2): the
        // announcement, the sender rules of frames, streams, gob and RPC (a malformed gob
        // message is named by the receiver's rule it trips), an answer to every request, and a
        // plugin that keeps reading while its connection lasts.
        &[
            "HS-1", "HS-2", "FRAME-1", "FRAME-2", "FRAME-9", "FRAME-10", "STREAM-1", "STREAM-2",
            "STREAM-5", "STREAM-6", "STREAM-7", "STREAM-8", "RPC-1", "RPC-2", "RPC-3", "RPC-4",
            "RPC-5", "RPC-7", "RPC-14", "GOB-1", "GOB-2", "GOB-4", "GOB-5", "GOB-6", "GOB-7",
            "GOB-9", "GOB-10", "GOB-11", "GOB-13", "GOB-16", "GOB-17", "GOB-20", "GOB-21", "LIFE-21",
        ],
        |p| finish(output_follows_sender_rules(p)),
    ),
    Case::plugin(
        "plugin/transport/stdin-not-read",
        "with a standard input that never delivers anything, the plugin announces and serves its hooks",
        &["TRANS-5"],
        |p| finish(stdin_not_read(p)),
    )
    .with_stdin_pipe(),
    Case::plugin(
        "plugin/transport/eof-exit",
        "when the host closes its pipe the plugin closes its output and exits within EXIT_BOUND with status 0, leaving no process behind",
        &["TRANS-7", "TRANS-8", "TRANS-9", "TRANS-10", "TRANS-11"],
        |p| finish(eof_exit(p)),
    ),
    Case::plugin(
        "plugin/transport/eof-during-hook-call",
        "the plugin exits within EXIT_BOUND after the host closed its pipe, even while a hook call waits for the host",
        &["TRANS-9"],
        |p| finish(eof_during_hook_call(p)),
    ),
];

pub(super) fn finish(result: Result<(), Outcome>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(outcome) => outcome,
    }
}

fn id(n: i64) -> StreamId {
    StreamId::new(n).expect("a valid stream id")
}

fn announce_even_stream(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let expected = "a frame on stream 0 whose payload is 00 followed by the varint of an even \
                    positive stream id, as the first frame on descriptor 4, within START_TIMEOUT (3 s)";
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
            return Err(Outcome::fail(failure));
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

/// Opens an API stream and activates the plugin with it; no response or an error response
/// fails `requirement`.
fn activate(p: &mut PluginUnderTest, requirement: &'static str) -> Result<StreamId, Outcome> {
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

fn deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    match p.call(Call::OnDeactivate, "RPC-5")? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            "RPC-15",
            "a successful response to OnDeactivate",
            &format!("an error response: {text}"),
        )),
    }
}

fn activate_deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, "RPC-5")?;
    for method in p.api_calls() {
        if method != LOAD_PLUGIN_CONFIGURATION {
            return Err(p.fail(
                "RPC-12",
                "only LocalAPI.LoadPluginConfiguration calls on the API stream",
                &format!("a call of {method}"),
            ));
        }
    }
    deactivate(p)
}

/// TRANS-5: with a standard input that stays open and silent, the plugin announces and serves
/// its hooks. What goes wrong here is TRANS-5's: a plugin that waits for its standard input
/// before announcing never announces, and one that waits for it in a hook never answers.
fn stdin_not_read(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    match activate_deactivate(p) {
        Err(Outcome::Fail(mut f)) if f.setup.is_none() => {
            f.got = format!(
                "{} ({} failed; its standard input was a pipe the harness held open and never \
                 wrote)",
                f.got,
                f.requirement.unwrap_or("")
            );
            f.requirement = Some("TRANS-5");
            Err(Outcome::Fail(f))
        }
        other => other,
    }
}

fn expect_error(p: &mut PluginUnderTest, api_stream: i64, why: &str) -> Result<(), Outcome> {
    match p.call(Call::OnActivate { api_stream }, "RPC-5")? {
        Err(_) => Ok(()),
        Ok(_) => Err(p.fail(
            "RPC-14",
            &format!("an error response to OnActivate({api_stream}): {why}"),
            "a successful response",
        )),
    }
}

fn activate_even_id(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let even = hooks.get() + 2;
    expect_error(p, even, "an even id is the plugin's own, never the host's")
}

fn activate_stale_id(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, "RPC-20")?;
    expect_error(p, 0, "0 is not a positive id")?;
    expect_error(p, -1, "-1 is not a positive id")?;
    expect_error(
        p,
        first.get(),
        "the plugin has connected this id before on this connection",
    )?;
    activate(p, "RPC-20")?;
    Ok(())
}

/// Whether the plugin has sent a close frame for `id`.
fn plugin_closed(p: &PluginUnderTest, id: StreamId) -> bool {
    p.notes()
        .iter()
        .any(|n| n.what == What::Close { stream_id: id })
}

fn reactivate_closes_previous(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, "RPC-20")?;
    let second = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: second.get(),
    };
    let seq = p.send_call(call.clone())?;
    if let Err(text) = p.await_response(seq, &call, "RPC-20")? {
        return Err(p.fail(
            "RPC-20",
            &format!("a successful response to OnActivate({second})"),
            &format!("an error response: {text}"),
        ));
    }
    closed_before_response(p, first, seq, "RPC-20", &format!("OnActivate({second})"))?;
    let seq = p.send_call(Call::OnDeactivate)?;
    if let Err(text) = p.await_response(seq, &Call::OnDeactivate, "RPC-15")? {
        return Err(p.fail(
            "RPC-15",
            "a successful response to OnDeactivate",
            &format!("an error response: {text}"),
        ));
    }
    closed_before_response(p, second, seq, "RPC-15", "OnDeactivate")
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

/// The plugin keeps its connection open and its process running for QUIET (`requirement`,
/// `when` in words).
fn stays(p: &mut PluginUnderTest, requirement: &'static str, when: &str) -> Result<(), Outcome> {
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

fn serves_after_deactivate(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, "LIFE-21")?;
    deactivate(p)?;
    stays(p, "LIFE-21", "after OnDeactivate")?;
    activate(p, "LIFE-21")?;
    deactivate(p)
}

fn one_byte_writes(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let api = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: api.get(),
    };
    let (seq, frame) = p.frame_call(call.clone())?;
    let cuts: Vec<usize> = (1..frame.len()).collect();
    p.write_in_pieces(&frame, &cuts)?;
    if let Err(text) = p.await_response(seq, &call, "FRAME-12")? {
        return Err(p.fail(
            "FRAME-12",
            &format!("a successful response to OnActivate({api}) written one byte per write"),
            &format!("an error response: {text}"),
        ));
    }
    Ok(())
}

/// Sends `frame` (a request of `call`, whose `Seq` is `seq`) cut at `cuts` with a short pause
/// between the pieces, so that the plugin reads them separately, and waits for its answer.
fn answered_in_pieces(
    p: &mut PluginUnderTest,
    call: &Call,
    seq: u64,
    frame: &[u8],
    cuts: &[usize],
) -> Result<(), Outcome> {
    let mut at = 0;
    for &cut in cuts.iter().chain(std::iter::once(&frame.len())) {
        if cut > at {
            p.send(&frame[at..cut])?;
            std::thread::sleep(Duration::from_micros(200));
            at = cut;
        }
    }
    let pieces: Vec<String> = cuts.iter().map(|c| c.to_string()).collect();
    match p.await_response(seq, call, "FRAME-12") {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(text)) => Err(p.fail(
            "FRAME-12",
            &format!(
                "a successful response to {call} written in pieces cut at {}",
                pieces.join(", ")
            ),
            &format!("an error response: {text}"),
        )),
        Err(Outcome::Fail(mut f)) => {
            f.got = format!(
                "{} (the {}-byte request frame was cut at {})",
                f.got,
                frame.len(),
                pieces.join(", ")
            );
            Err(Outcome::Fail(f))
        }
        Err(other) => Err(other),
    }
}

fn every_split_point(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let call = Call::OnDeactivate;
    // The first request carries the type definitions and is the longest; every later one is
    // the bare request.
    let (seq, frame) = p.frame_call(call.clone())?;
    for cut in 1..frame.len() {
        // A fresh copy of the same request needs a fresh Seq: re-encode for every cut.
        let (seq, frame) = if cut == 1 {
            (seq, frame.clone())
        } else {
            p.frame_call(call.clone())?
        };
        let cut = cut.min(frame.len() - 1);
        answered_in_pieces(p, &call, seq, &frame, &[cut])?;
    }
    // Random splits of three requests written back to back.
    for _ in 0..20 {
        let mut batch = Vec::new();
        let mut seqs = Vec::new();
        for _ in 0..3 {
            let (seq, frame) = p.frame_call(call.clone())?;
            seqs.push(seq);
            batch.extend(frame);
        }
        let n = 1 + (p.random() % 6) as usize;
        let mut cuts: Vec<usize> = (0..n)
            .map(|_| 1 + (p.random() as usize) % (batch.len() - 1))
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&batch.len())) {
            p.send(&batch[at..cut])?;
            std::thread::sleep(Duration::from_micros(200));
            at = cut;
        }
        for seq in seqs {
            if let Err(text) = p.await_response(seq, &call, "FRAME-12")? {
                return Err(p.fail(
                    "FRAME-12",
                    "a successful response to each OnDeactivate",
                    &format!("an error response: {text}"),
                ));
            }
        }
    }
    Ok(())
}

/// Waits for one response to each of `pending` (Seq and call), in any order; a response that
/// matches none, a second one, or one with another ServiceMethod fails RPC-5.
fn await_all(
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
                    "RPC-5",
                    expected,
                    &format!(
                        "no response in time to {} request(s), among them {}",
                        pending.len(),
                        missing.join(", ")
                    ),
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
        answered.push((call, response));
    }
    Ok(answered)
}

fn coalesced_frames(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let mut batch = Vec::new();
    let mut pending = Vec::new();
    for i in 0..100 {
        let (seq, frame) = p.frame_call(Call::OnDeactivate)?;
        pending.push((seq, Call::OnDeactivate));
        batch.extend(frame);
        if i % 10 == 0 {
            // Frames for streams nobody opened, between the requests.
            encode_frame(id(hooks.get() + 1000 + i), b"junk", &mut batch)
                .map_err(|e| Outcome::error(e.to_string()))?;
            encode_frame(id(201 + 2 * i), b"", &mut batch)
                .map_err(|e| Outcome::error(e.to_string()))?;
        }
    }
    p.send(&batch)?;
    let answered = await_all(
        p,
        pending,
        "one successful response to each of 100 OnDeactivate requests written in one write",
        CALL_TIMEOUT,
    )?;
    for (_, response) in answered {
        if !response.header.error.is_empty() {
            return Err(p.fail(
                "RPC-5",
                "a successful response to each OnDeactivate",
                &format!(
                    "an error response with Seq {}: {}",
                    response.header.seq, response.header.error
                ),
            ));
        }
    }
    Ok(())
}

fn one_byte_frames(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let (seq, body) = p.encode_call(Call::OnDeactivate)?;
    let mut frames = Vec::new();
    for byte in &body {
        encode_frame(hooks, std::slice::from_ref(byte), &mut frames)
            .map_err(|e| Outcome::error(e.to_string()))?;
    }
    p.send(&frames)?;
    match p.await_response(seq, &Call::OnDeactivate, "FRAME-12")? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            "FRAME-12",
            &format!(
                "a successful response to OnDeactivate sent as {} one-byte frames",
                body.len()
            ),
            &format!("an error response: {text}"),
        )),
    }
}

fn non_minimal_varints(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let (seq, body) = p.encode_call(Call::OnDeactivate)?;
    // The stream id padded to 3 bytes, the length to 10 (the longest valid form, FRAME-3).
    let mut frame = Vec::new();
    pad_varint(varint::zigzag(hooks.get()), 3, &mut frame);
    pad_varint(varint::zigzag(body.len() as i64), 10, &mut frame);
    frame.extend_from_slice(&body);
    p.send(&frame)?;
    match p.await_response(seq, &Call::OnDeactivate, "FRAME-3")? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            "FRAME-3",
            &format!(
                "a successful response to a request whose frame header is {}",
                hex(&frame[..13])
            ),
            &format!("an error response: {text}"),
        )),
    }
}

/// Writes `u` as a base-128 varint of exactly `len` bytes (non-minimal when `len` is more
/// than it needs).
fn pad_varint(mut u: u64, len: usize, out: &mut Vec<u8>) {
    for i in 0..len {
        let last = i + 1 == len;
        let group = (u & 0x7f) as u8;
        u >>= 7;
        out.push(if last { group } else { group | 0x80 });
    }
}

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
                "STREAM-5",
                "the plugin keeps reading after frames for unknown streams",
                &e,
            )
        })?;
    }
    activate(p, "STREAM-5")?;
    Ok(())
}

fn control_after_handshake(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    for payload in [&[0x00, 0x04][..], &b"stream zero"[..], &[][..]] {
        p.write_frame(StreamId::CONTROL, payload)
            .map_err(|e| p.fail("HS-8", "the plugin keeps reading after stream-0 frames", &e))?;
    }
    activate(p, "HS-8")?;
    Ok(())
}

fn malformed(
    p: &mut PluginUnderTest,
    bytes: &[u8],
    requirement: &'static str,
) -> Result<(), Outcome> {
    p.handshake()?;
    send_malformed(p, bytes, requirement)
}

/// Sends the malformed `bytes` and a valid request after them: the plugin must not answer it,
/// must end the connection (`requirement`, TRANS-8) and exit (TRANS-9, TRANS-10).
pub(crate) fn send_malformed(
    p: &mut PluginUnderTest,
    bytes: &[u8],
    requirement: &'static str,
) -> Result<(), Outcome> {
    // The bad frame, then a valid request that must never be answered (FRAME-14).
    let (seq, request) = p.frame_call(Call::OnDeactivate)?;
    let mut all = bytes.to_vec();
    all.extend(&request);
    let _ = p.write_raw(&all);
    let deadline = p.deadline(EXIT_BOUND);
    loop {
        match p.next_hook_response(deadline) {
            Ok(Some(r)) if r.header.seq == seq => {
                return Err(p.fail(
                    requirement,
                    &format!(
                        "after the malformed frame {}, the plugin ends the connection and stops \
                         processing input (FRAME-14)",
                        hex(bytes)
                    ),
                    "it answered the request that followed the malformed frame",
                ))
            }
            Ok(Some(_)) => {}
            // Its output closed: the connection ended.
            Err(_) => break,
            Ok(None) => {
                return Err(p.fail(
                    requirement,
                    &format!(
                        "after the malformed frame {}, the plugin ends the connection (closes \
                         descriptor 4, TRANS-8)",
                        hex(bytes)
                    ),
                    &format!("its output is still open after {:?}", p.scaled(EXIT_BOUND)),
                ))
            }
        }
    }
    expect_exit_after_error(p, "the connection error")
}

/// After a connection error the plugin exits within EXIT_BOUND (TRANS-9), with a non-zero
/// status (TRANS-10, a recommendation).
fn expect_exit_after_error(p: &mut PluginUnderTest, what: &str) -> Result<(), Outcome> {
    match p.wait_exit(EXIT_BOUND) {
        None => Err(p.fail(
            "TRANS-9",
            &format!("the plugin exits within EXIT_BOUND (5 s) after {what}"),
            "it is still running",
        )),
        Some(exit) if exit.success() => Err(p.fail(
            "TRANS-10",
            &format!("a non-zero exit status after {what}"),
            &format!("the process {exit}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Table 2-2, M1: a stream id varint whose tenth byte is greater than 0x01.
const VARINT_OVERFLOW: [u8; 10] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

/// Section 2.9, X4: stream 1, then a length varint whose tenth byte is greater than 0x01.
const LENGTH_OVERFLOW: [u8; 11] = [
    0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
];

/// Section 2.9, X5: stream 1, then a valid length varint that decodes to -2^63.
const MOST_NEGATIVE_LENGTH: [u8; 11] = [
    0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
];

/// Table 2-2, M7: end of file inside a header (`04 80`: stream 2, then a length varint cut
/// after its first byte).
fn truncated_header_at_eof(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let _ = p.write_raw(&[0x04, 0x80]);
    p.close_input();
    if !p.wait_eof(EXIT_BOUND) {
        return Err(p.fail(
            "FRAME-13",
            "after end of file inside a frame header (04 80), the plugin ends the connection",
            &format!("its output is still open after {:?}", p.scaled(EXIT_BOUND)),
        ));
    }
    expect_exit_after_error(
        p,
        "end of file inside a frame header (a connection error, FRAME-13)",
    )
}

fn truncated_at_eof(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let (_, request) = p.frame_call(Call::OnDeactivate)?;
    let _ = p.write_raw(&request[..request.len() / 2]);
    p.close_input();
    if !p.wait_eof(EXIT_BOUND) {
        return Err(p.fail(
            "FRAME-13",
            "after end of file inside a frame, the plugin ends the connection",
            &format!("its output is still open after {:?}", p.scaled(EXIT_BOUND)),
        ));
    }
    expect_exit_after_error(
        p,
        "end of file inside a frame (a connection error, FRAME-13)",
    )
}

fn max_size_frame(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    // Stream 7 has the host's parity and was never announced: the plugin has not connected it.
    let unknown = id(7);
    let payload = vec![0xab; rpcplugin_codec::frame::MIN_MAX_PAYLOAD];
    let mut frame = Vec::new();
    encode_frame(unknown, &payload, &mut frame)
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

fn parity_of_opened_streams(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let handshake = p.handshake().map(|_| ());
    let activated = handshake.and_then(|()| activate(p, "RPC-5").map(|_| ()));
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
            "STREAM-9",
            &format!(
                "no response to the request with Seq {late}, sent on stream {hooks} after the \
                 host's close frame"
            ),
            "a response to it: the plugin used data that arrived after the close",
        )),
        (Ok(_), Ok(_)) => Ok(()),
        (Err(got), _) | (_, Err(got)) => Err(p.fail(
            "STREAM-10",
            "the connection goes on after the host closes one stream",
            &got,
        )),
    }
}

/// Table 3-1 from the receiving side: after two activations the first API stream is closed by
/// the plugin (LocalClosed): data on it is discarded (S13), then the harness's close closes it
/// (S14), and later data finds nothing (S3). The second API stream is closed by the harness
/// (S6, RemoteClosed) and, in the same write, gets data (S9) and a second close (S10), which
/// are discarded; the plugin answers with its close (S12), and more data and closes after it
/// find nothing. Through all this the plugin keeps its connection and answers OnDeactivate
/// and a third activation.
fn frames_after_close(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let first = activate(p, "RPC-5")?;
    let second = activate(p, "RPC-5")?;
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
        p.fail("STREAM-9", expected, &format!("{got}{exit}"))
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
    activate(p, "STREAM-9")?;
    Ok(())
}

fn close_answered_with_close(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    deactivate(p)?;
    p.close_stream(hooks)?;
    let expected = format!("a close frame on stream {hooks} after the host closed it");
    match p.wait_until(QUIET * 2, |p| plugin_closed(p, hooks)) {
        Ok(true) => Ok(()),
        Ok(false) => Err(p.fail(
            "STREAM-11",
            &expected,
            &format!("none within {:?}", p.scaled(QUIET * 2)),
        )),
        Err(got) => Err(p.fail("STREAM-11", &expected, &got)),
    }
}

/// An activation whose API answers the harness chose.
struct Activation {
    /// The API stream.
    api: StreamId,
    /// The OnActivate request's Seq.
    seq: u64,
    /// Whether the plugin called the API.
    called: bool,
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
/// plugin calls the API or answers OnActivate (at most CALL_TIMEOUT).
fn activate_with_api_answer(
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
            "RPC-5",
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
    Ok(Activation {
        api,
        seq,
        called: !p.api_calls().is_empty(),
        answer,
    })
}

/// The response to the activation's OnActivate: the one that came already, or the next.
fn activation_answer(
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

fn skipped_without_api_call() -> Outcome {
    Outcome::Skipped(
        "the plugin made no LocalAPI call during OnActivate, so there is nothing to check".into(),
    )
}

fn api_closed_during_call(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::Never)?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    p.close_stream(a.api)?;
    let api = a.api;
    match activation_answer(p, a, "RPC-11") {
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

fn api_error_response(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let text = "conformance: no configuration for you";
    let a = activate_with_api_answer(p, ApiAnswer::Error(text.into()))?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    // Success or failure of the hook is the plugin's business; an answer is required.
    activation_answer(p, a, "RPC-10").map(|_| ())
}

fn unmatched_api_response(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::UnmatchedFirst)?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    match activation_answer(p, a, "RPC-6")? {
        Ok(()) => Ok(()),
        Err(text) => Err(p.fail(
            "RPC-6",
            "a successful OnActivate: the plugin's API client skips a response with Seq 1000000 \
             that matches no call and takes the configuration that follows",
            &format!("an error response: {text}"),
        )),
    }
}

/// RPC-10 (Table 5-9, R9): a successful reply of another type than the call's fails that call
/// only; the client keeps its stream. The plugin's hook decides what its failed call means for
/// OnActivate, but the API stream stays open until a deactivation or a new activation.
fn reply_of_the_wrong_type(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::WrongType)?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    let api = a.api;
    // Whether the hook then fails its activation is the plugin's own decision.
    let _ = activation_answer(p, a, "RPC-10")?;
    let _ = p.wait_until(QUIET, |p| plugin_closed(p, api));
    if let Some(at) = p
        .notes()
        .iter()
        .find(|n| n.what == What::Close { stream_id: api })
        .map(|n| n.offset)
    {
        return Err(p.fail(
            "RPC-10",
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

fn large_configuration(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    // A JSON string whose gob message (header excluded) stays within GOB_MIN_MAX_MESSAGE.
    let mut config = Vec::with_capacity(4 << 20);
    config.push(b'"');
    config.resize((4 << 20) - 64, b'x');
    config.push(b'"');
    let a = activate_with_api_answer(p, ApiAnswer::Configuration(config))?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    let api = a.api;
    let answer = activation_answer(p, a, "GOB-15")?;
    // A plugin that reset the API stream (STREAM-13) while the reply came did not accept it,
    // whatever its hook then answered: it closes that stream only on a new activation or a
    // deactivation (RPC-14, RPC-15).
    if let Some(at) = p
        .notes()
        .iter()
        .find(|n| n.what == What::Close { stream_id: api })
        .map(|n| n.offset)
    {
        return Err(p.fail(
            "GOB-15",
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
            "GOB-15",
            "a successful OnActivate after a 4 194 240-byte configuration (a JSON string)",
            &format!("an error response: {text}"),
        )),
    }
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
            let at = p
                .notes()
                .iter()
                .find(|n| n.what == What::Close { stream_id: hooks })
                .map_or(0, |n| n.offset);
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
        "GOB-15",
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
        "RPC-3",
        "a successful response to the next OnDeactivate on the same stream",
    )
}

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
        "GOB-17",
        "a successful response to OnDeactivate whose header has a field Ctx of a struct type \
         nested 16 levels deep (counting the header), which the plugin skips",
    )
}

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
                "GOB-19",
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
                "GOB-18",
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
                    "STREAM-9",
                    "the plugin reading and discarding the data sent on the hooks stream it closed",
                    &e,
                )
            })?;
        peak = peak.max(crate::host_under_test::rss_kib(p.pid()).unwrap_or(0));
    }
    if let Some(b) = before {
        if peak > b + 16 * 1024 {
            return Err(p.fail(
                "STREAM-9",
                &format!(
                    "the plugin discarding the 32 MiB sent on the hooks stream {hooks} after it \
                     closed it: its resident memory growing by less than 16 MiB"
                ),
                &format!("{b} KiB before, {peak} KiB at the most during the flood"),
            ));
        }
    }
    stays(p, "GOB-18", "after a gob error, which ends its stream only")
}

fn pipelined_calls(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let mut batch = Vec::new();
    let mut pending = Vec::new();
    for _ in 0..200 {
        let (seq, frame) = p.frame_call(Call::OnDeactivate)?;
        pending.push((seq, Call::OnDeactivate));
        batch.extend(frame);
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
                Ok(None) => return Err(p.fail("RPC-8", &what, "no response in time")),
                Err(got) => return Err(p.fail("RPC-8", &what, &got)),
            }
        };
        if text.is_empty() {
            return Err(p.fail("RPC-8", &what, "a successful response"));
        }
        texts.push(text);
    }
    let (seq, body) = client.request(ON_DEACTIVATE, None, Vec::new())?;
    expect_answer(
        p,
        &body,
        seq,
        "RPC-8",
        "after the error responses, the stream goes on: OnDeactivate is answered",
    )?;
    Ok(texts)
}

fn unknown_methods(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let calls: Vec<(&str, Option<(i64, Value)>)> =
        unroutable().iter().map(|(m, _)| (*m, None)).collect();
    error_answers(p, &calls).map(|_| ())
}

fn go_error_texts(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let cases = unroutable();
    let calls: Vec<(&str, Option<(i64, Value)>)> = cases.iter().map(|(m, _)| (*m, None)).collect();
    let texts = error_answers(p, &calls)?;
    for ((name, expected), got) in cases.iter().zip(texts) {
        if got != *expected {
            return Err(p.fail(
                "RPC-9",
                &format!("the error text {expected:?} for a request of {name:?}"),
                &format!("{got:?}"),
            ));
        }
    }
    Ok(())
}

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
        .map_err(|e| p.fail("RPC-21", what, &e))?;
    match p.wait_until(CALL_TIMEOUT, |p| {
        p.has_hook_response(seq) || plugin_closed(p, hooks)
    }) {
        Err(got) => return Err(p.fail("RPC-21", what, &got)),
        Ok(false) => return Err(p.fail("RPC-21", what, "no response in time")),
        Ok(true) => {}
    }
    let responses = p.take_hook_responses().unwrap_or_default();
    match responses.into_iter().find(|r| r.header.seq == seq) {
        Some(r) if r.header.error.is_empty() => {
            return Err(p.fail("RPC-21", what, "a successful response"))
        }
        Some(_) => {}
        None => {
            return Err(p.fail(
                "RPC-21",
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
        "RPC-21",
        "after that error response, the stream goes on: OnDeactivate is answered",
    )
}

fn wrong_argument_type(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let calls = [(
        ON_ACTIVATE,
        Some((ids::STRING, Value::string("not a stream id"))),
    )];
    error_answers(p, &calls).map(|_| ())
}

fn output_follows_sender_rules(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, "RPC-5")?;
    activate(p, "RPC-5")?;
    deactivate(p)?;
    let mut pending = Vec::new();
    for _ in 0..20 {
        let seq = p.send_call(Call::OnDeactivate)?;
        pending.push((seq, Call::OnDeactivate));
    }
    await_all(p, pending, "a response to each OnDeactivate", CALL_TIMEOUT)?;
    p.close_input();
    p.wait_eof(EXIT_BOUND);
    // The observer's findings are the verdict (the runner reports them).
    Ok(())
}

fn eof_exit(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    close_and_expect_exit(p)
}

/// Closes the host's pipe: the plugin must close its output (TRANS-8) and exit within
/// EXIT_BOUND (TRANS-9) with status 0 (TRANS-10), leaving no process behind (TRANS-11).
pub(crate) fn close_and_expect_exit(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.close_input();
    let closed = p.wait_eof(EXIT_BOUND);
    let exit = p.wait_exit(EXIT_BOUND);
    let leftovers: Vec<String> = p
        .marked_processes()
        .into_iter()
        .filter(|(pid, _)| *pid != p.pid())
        .map(|(pid, cmd)| format!("{pid} ({cmd})"))
        .collect();
    match exit {
        None => {
            return Err(p.fail(
                "TRANS-9",
                "the plugin exits within EXIT_BOUND (5 s) after the host closed its pipe",
                "it is still running",
            ))
        }
        Some(_) if !closed => {
            return Err(p.fail(
                "TRANS-8",
                "the plugin closes its output when its connection ends",
                "the output is still open although the process exited (another process holds \
                 descriptor 4)",
            ))
        }
        Some(_) if !leftovers.is_empty() => {
            return Err(p.fail(
                "TRANS-11",
                "no process started by the plugin is still running after it exits",
                &format!("still running: {}", leftovers.join(", ")),
            ))
        }
        Some(exit) if !exit.success() => {
            return Err(p.fail(
                "TRANS-10",
                "exit status 0 after the host closed its pipe",
                &format!("the process {exit}"),
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

fn eof_during_hook_call(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let a = activate_with_api_answer(p, ApiAnswer::Never)?;
    if !a.called {
        return Err(skipped_without_api_call());
    }
    p.close_input();
    match p.wait_exit(EXIT_BOUND) {
        None => Err(p.fail(
            "TRANS-9",
            "the plugin exits within EXIT_BOUND (5 s) after the host closed its pipe, although \
             its OnActivate hook still waits for LoadPluginConfiguration",
            "it is still running",
        )),
        Some(_) => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// One case per server-side message of spec/vectors/rpc-messages.json
// ---------------------------------------------------------------------------------------

use super::vectors::{vectors, Vector};

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
/// hooks stream) the same way whatever its limits (see [`super::vectors::for_servers`]), whose
/// calls name API streams among the harness's first 50.
fn usable(v: &Vector) -> bool {
    super::vectors::for_servers(v) && activated_ids(v).iter().all(|n| *n < 100)
}

/// The plugin cases made from `spec/vectors/rpc-messages.json`.
pub fn vector_cases() -> Vec<Case> {
    vectors()
        .iter()
        .filter(|v| usable(v))
        .map(|v| {
            let id: &'static str =
                Box::leak(format!("plugin/rpc-vector/tc-{:02}", v.tc_id).into_boxed_str());
            let title: &'static str = Box::leak(
                format!("{} ({} message of the RPC vectors)", v.comment, v.result).into_boxed_str(),
            );
            let mut reqs: Vec<&'static str> = v
                .requirements
                .iter()
                .map(|r| &*Box::leak(r.clone().into_boxed_str()))
                .collect();
            for extra in if v.result == "invalid" {
                &["GOB-18"][..]
            } else {
                &["RPC-5"][..]
            } {
                if !reqs.contains(extra) {
                    reqs.push(extra);
                }
            }
            Case {
                id,
                title,
                requirements: Box::leak(reqs.into_boxed_slice()),
                timeout: DEFAULT_TIMEOUT,
                stdin_pipe: false,
                runner: Runner::PluginWith(|p, tc| finish(run_vector(p, tc)), v.tc_id),
            }
        })
        .collect()
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
        .map_or("RPC-5", |r| r.id.as_str());
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
                            "RPC-5",
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
        .map_or("GOB-18", |r| r.id.as_str());
    // Until the plugin closes the hooks stream, after which it cannot send on it (STREAM-8).
    let waited = p.wait_until(QUIET * 2, |p| plugin_closed(p, hooks));
    if let Err(got) = waited {
        return Err(p.fail("GOB-18", &expected, &got));
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
        Err(got) => return Err(p.fail("GOB-18", &expected, &got)),
    }
    if let Some(exit) = p.try_exit() {
        return Err(p.fail("GOB-18", &expected, &format!("the process {exit}")));
    }
    if !plugin_closed(p, hooks) {
        return Err(p.fail(
            "GOB-18",
            &expected,
            &format!(
                "no close frame on stream {hooks} within {:?}",
                p.scaled(QUIET * 2)
            ),
        ));
    }
    Ok(())
}
