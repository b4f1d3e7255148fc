//! `plugin/framing/...`: the plugin as a receiver of frames (spec 02): requests split across
//! writes and frames or coalesced, non-minimal varints, the largest frame every receiver takes,
//! and the malformed input of Table 2-2 and section 2.9 that ends the connection (spec 01
//! section 1.5: the plugin then exits).
//!
//! Rows: F6, F7, M1 to M4, M6 to M8, M10, X1 to X5, X7 to X9.
//! Requirements: TRANS-7 to TRANS-10, FRAME-3 to FRAME-8, FRAME-12 to FRAME-14, STREAM-5,
//! RPC-5.

use std::time::Duration;

use rpcplugin_codec::frame::encode_frame;
use rpcplugin_codec::rpc::Call;
use rpcplugin_codec::trace::hex;
use rpcplugin_codec::varint;

use super::helpers::{await_all, id, queue_deactivation};
use crate::outcome::Outcome;
use crate::plugin_under_test::{PluginUnderTest, CALL_TIMEOUT, EXIT_BOUND};
use rpcplugin_codec::req;

case!(
    ONE_BYTE_WRITES: plugin "plugin/framing/one-byte-writes",
    ["FRAME-12"],
    one_byte_writes,
    "an OnActivate call written one byte per write is answered"
);

fn one_byte_writes(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let api = p.open_api_stream()?;
    let call = Call::OnActivate {
        api_stream: api.get(),
    };
    let (seq, frame) = p.frame_call(call.clone())?;
    let cuts: Vec<usize> = (1..frame.len()).collect();
    p.write_in_pieces(&frame, &cuts)?;
    if let Err(text) = p.await_response(seq, &call, req!("FRAME-12"))? {
        return Err(p.fail(
            req!("FRAME-12"),
            &format!("a successful response to OnActivate({api}) written one byte per write"),
            &format!("an error response: {text}"),
        ));
    }
    Ok(())
}

case!(
    EVERY_SPLIT_POINT: plugin "plugin/framing/every-split-point",
    ["FRAME-12"],
    every_split_point,
    "a request frame split in two writes at every possible point, then at random points, is answered every time"
);

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
            if let Err(text) = p.await_response(seq, &call, req!("FRAME-12"))? {
                return Err(p.fail(
                    req!("FRAME-12"),
                    "a successful response to each OnDeactivate",
                    &format!("an error response: {text}"),
                ));
            }
        }
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
    match p.await_response(seq, call, req!("FRAME-12")) {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(text)) => Err(p.fail(
            req!("FRAME-12"),
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

case!(
    COALESCED_FRAMES: plugin "plugin/framing/coalesced-frames",
    ["FRAME-12", "RPC-5", "STREAM-5"],
    coalesced_frames,
    "100 request frames and frames for unknown streams in a single write are all answered"
);

fn coalesced_frames(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let mut batch = Vec::new();
    let mut pending = Vec::new();
    for i in 0..100 {
        queue_deactivation(p, &mut batch, &mut pending)?;
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
                req!("RPC-5"),
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

case!(
    ONE_BYTE_FRAMES: plugin "plugin/framing/one-byte-frames",
    ["FRAME-12"],
    one_byte_frames,
    "a request sent as one frame per byte is reassembled by the stream and answered"
);

fn one_byte_frames(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let (seq, body) = p.encode_call(Call::OnDeactivate)?;
    let mut frames = Vec::new();
    for byte in &body {
        encode_frame(hooks, std::slice::from_ref(byte), &mut frames)
            .map_err(|e| Outcome::error(e.to_string()))?;
    }
    p.send(&frames)?;
    let expected = format!(
        "a successful response to OnDeactivate sent as {} one-byte frames",
        body.len()
    );
    deactivation_answered(p, seq, req!("FRAME-12"), &expected)
}

case!(
    NON_MINIMAL_VARINTS: plugin "plugin/framing/non-minimal-varints",
    ["FRAME-3"],
    non_minimal_varints,
    "a request frame whose header varints are not minimal is accepted and answered"
);

fn non_minimal_varints(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    let hooks = p.handshake()?;
    let (seq, body) = p.encode_call(Call::OnDeactivate)?;
    // The stream id padded to 3 bytes, the length to 10 (the longest valid form, FRAME-3).
    let mut frame = Vec::new();
    pad_varint(varint::zigzag(hooks.get()), 3, &mut frame);
    pad_varint(varint::zigzag(body.len() as i64), 10, &mut frame);
    frame.extend_from_slice(&body);
    p.send(&frame)?;
    let expected = format!(
        "a successful response to a request whose frame header is {}",
        hex(&frame[..13])
    );
    deactivation_answered(p, seq, req!("FRAME-3"), &expected)
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

case!(
    MAX_SIZE_FRAME: plugin "plugin/framing/max-size-frame",
    ["FRAME-7", "STREAM-5"],
    max_size_frame,
    "a frame of exactly 1 048 576 payload bytes on an unknown stream is accepted and discarded"
);

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
        .map_err(|e| p.fail(req!("FRAME-7"), expected, &e))?;
    match p.call(Call::OnDeactivate, req!("FRAME-7"))? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(
            req!("FRAME-7"),
            expected,
            &format!("an error response to OnDeactivate: {text}"),
        )),
    }
}

case!(
    NEGATIVE_STREAM_ID: plugin "plugin/framing/negative-stream-id",
    ["FRAME-5", "FRAME-14", "TRANS-7", "TRANS-8", "TRANS-9", "TRANS-10"],
    malformed(&[0x01, 0x00], req!("FRAME-5")),
    "a frame with a negative stream id ends the connection: nothing after it is answered, the plugin exits"
);

case!(
    NEGATIVE_LENGTH: plugin "plugin/framing/negative-length",
    ["FRAME-6", "FRAME-14", "TRANS-9", "TRANS-10"],
    malformed(&[0x02, 0x01], req!("FRAME-6")),
    "a frame with a negative payload length ends the connection and the plugin exits"
);

case!(
    OVERSIZED_FRAME: plugin "plugin/framing/oversized-frame",
    ["FRAME-8", "FRAME-14", "TRANS-9", "TRANS-10"],
    malformed(&[0x02, 0x82, 0x80, 0x80, 0x10], req!("FRAME-8")),
    "a header declaring 16 777 217 payload bytes ends the connection without waiting for the payload"
);

case!(
    VARINT_OVERFLOW: plugin "plugin/framing/varint-overflow",
    ["FRAME-4", "FRAME-14", "TRANS-9", "TRANS-10"],
    malformed(&VARINT_OVERFLOW_BYTES, req!("FRAME-4")),
    "a stream id varint that does not fit in 64 bits ends the connection"
);

case!(
    LENGTH_VARINT_OVERFLOW: plugin "plugin/framing/length-varint-overflow",
    ["FRAME-4", "FRAME-14", "TRANS-9", "TRANS-10"],
    malformed(&LENGTH_OVERFLOW_BYTES, req!("FRAME-4")),
    "a length varint that does not fit in 64 bits ends the connection"
);

case!(
    MOST_NEGATIVE_LENGTH: plugin "plugin/framing/most-negative-length",
    ["FRAME-6", "FRAME-14", "TRANS-9", "TRANS-10"],
    malformed(&MOST_NEGATIVE_LENGTH_BYTES, req!("FRAME-6")),
    "a length that decodes to -2^63 (a valid varint) ends the connection"
);

/// Table 2-2, M1: a stream id varint whose tenth byte is greater than 0x01.
const VARINT_OVERFLOW_BYTES: [u8; 10] =
    [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];

/// Section 2.9, X4: stream 1, then a length varint whose tenth byte is greater than 0x01.
const LENGTH_OVERFLOW_BYTES: [u8; 11] = [
    0x02, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
];

/// Section 2.9, X5: stream 1, then a valid length varint that decodes to -2^63.
const MOST_NEGATIVE_LENGTH_BYTES: [u8; 11] = [
    0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
];

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

case!(
    TRUNCATED_HEADER_AT_EOF: plugin "plugin/framing/truncated-header-at-eof",
    ["FRAME-13", "TRANS-9", "TRANS-10"],
    truncated_header_at_eof,
    "end of file inside a frame header is a connection error: the plugin exits, with a non-zero status"
);

/// Table 2-2, M7: end of file inside a header (`04 80`: stream 2, then a length varint cut
/// after its first byte).
fn truncated_header_at_eof(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    eof_after(
        p,
        &[0x04, 0x80],
        "after end of file inside a frame header (04 80), the plugin ends the connection",
        "end of file inside a frame header (a connection error, FRAME-13)",
    )
}

case!(
    TRUNCATED_FRAME_AT_EOF: plugin "plugin/framing/truncated-frame-at-eof",
    ["FRAME-13", "TRANS-9", "TRANS-10"],
    truncated_at_eof,
    "end of file inside a frame is a connection error: the plugin exits, with a non-zero status"
);

fn truncated_at_eof(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    let (_, request) = p.frame_call(Call::OnDeactivate)?;
    eof_after(
        p,
        &request[..request.len() / 2],
        "after end of file inside a frame, the plugin ends the connection",
        "end of file inside a frame (a connection error, FRAME-13)",
    )
}

/// The plugin answers the OnDeactivate request with `seq` successfully (`requirement`,
/// `expected` in words).
fn deactivation_answered(
    p: &mut PluginUnderTest,
    seq: u64,
    requirement: &'static str,
    expected: &str,
) -> Result<(), Outcome> {
    match p.await_response(seq, &Call::OnDeactivate, requirement)? {
        Ok(_) => Ok(()),
        Err(text) => Err(p.fail(requirement, expected, &format!("an error response: {text}"))),
    }
}

/// After a connection error the plugin exits within EXIT_BOUND (TRANS-9), with a non-zero
/// status (TRANS-10, a recommendation).
fn expect_exit_after_error(p: &mut PluginUnderTest, what: &str) -> Result<(), Outcome> {
    match p.wait_exit(EXIT_BOUND) {
        None => Err(p.fail(
            req!("TRANS-9"),
            &format!("the plugin exits within EXIT_BOUND (5 s) after {what}"),
            "it is still running",
        )),
        Some(exit) if exit.success() => Err(p.fail(
            req!("TRANS-10"),
            &format!("a non-zero exit status after {what}"),
            &format!("the process {exit}"),
        )),
        Some(_) => Ok(()),
    }
}

/// Writes `bytes`, which end inside a frame, and closes the host's pipe: end of file there is a
/// connection error (FRAME-13), after which the plugin ends the connection (`expected` in
/// words) and exits (after `what`).
fn eof_after(
    p: &mut PluginUnderTest,
    bytes: &[u8],
    expected: &str,
    what: &str,
) -> Result<(), Outcome> {
    let _ = p.write_raw(bytes);
    p.close_input();
    if !p.wait_eof(EXIT_BOUND) {
        return Err(p.fail(
            req!("FRAME-13"),
            expected,
            &format!("its output is still open after {:?}", p.scaled(EXIT_BOUND)),
        ));
    }
    expect_exit_after_error(p, what)
}
