//! Decodes the test vectors of `spec/vectors/` (or raw captures) with the codec and shows what it
//! makes of each one.
//!
//! ```text
//! cargo run -p rpcplugin-codec --example decode-vectors                  # every spec/vectors/*.json
//! cargo run -p rpcplugin-codec --example decode-vectors -- spec/vectors/streams.json
//! cargo run -p rpcplugin-codec --example decode-vectors -- --raw capture.bin
//! ```
//!
//! For every vector it prints the tcId, the comment, and the frames decoded (stream id, length, a
//! hex and ASCII preview of the payload) or the error with its message, which names the
//! requirement it enforces. It ends with a summary line and exits with status 0 when every vector
//! decodes as it expects, 1 on any mismatch, and 2 when a file cannot be read or is not a vector
//! file. See `--help`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rpcplugin_codec::frame::{
    self, Frame, FrameAssembler, FrameDecoder, FrameError, StreamId, MIN_MAX_PAYLOAD,
};
use rpcplugin_codec::stream::{Event, Role, StreamTable};
use rpcplugin_codec::trace::preview;
use rpcplugin_codec::varint;
use rpcplugin_test_support::try_unhex as unhex;
use rpcplugin_test_support::vectors::{
    Case, Expect, FrameCase, HandshakeCase, StreamCase, VarintCase, VectorFile,
};
use serde::de::DeserializeOwned;

const USAGE: &str = "\
Usage: decode-vectors [OPTIONS] [FILE...] [--raw CAPTURE...]

Decodes rpcplugin wire protocol 1 test vectors with the reference codec and prints, for every
vector, the frames, values or RPC calls it decodes to or the error it reports, then a summary
line.

Arguments:
  FILE               a vector file (schema varint/v1, frames/v1, streams/v1, handshake/v1,
                     rpc-messages/v2 or rpc-go-sessions/v1); with no FILE and no --raw, every
                     *.json file of spec/vectors is decoded
  --raw CAPTURE      a raw binary capture of one direction of a connection (the bytes one
                     endpoint wrote to its pipe); may be given several times

Options:
  --max-payload N    the payload limit used for --raw captures (default 1048576, at most 16777216)
  -q, --quiet        print only mismatches, errors in captures and the summary
  -h, --help         print this help

Exit status:
  0  every vector decoded as it expects (and every capture is a clean sequence of whole frames)
  1  a vector decoded differently from its expectation, or a capture has a malformed or
     truncated frame
  2  usage error, a file that cannot be read, or a file that is not a valid vector file";

// ------------------------------------------------------------------------------------------
// Output and counting
// ------------------------------------------------------------------------------------------

#[derive(Default)]
struct Report {
    quiet: bool,
    /// The file being decoded, named in front of mismatches in quiet mode.
    file: String,
    vectors: usize,
    frames: usize,
    expected_errors: usize,
    mismatches: usize,
    captures: usize,
    capture_errors: usize,
    /// A file could not be used (exit status 2).
    unusable: usize,
}

/// What one vector printed, kept until its verdict is known (so `--quiet` can drop it).
struct Lines {
    head: String,
    body: Vec<String>,
    mismatch: bool,
}

impl Lines {
    /// A vector's lines, headed by its tcId, result (with the error kind) and comment.
    fn new(tc_id: u32, result: Expect, error: Option<&str>, comment: &str) -> Lines {
        let result = match (result, error) {
            (Expect::Invalid, Some(e)) => format!("invalid ({e})"),
            (r, _) => r.name().to_owned(),
        };
        Lines {
            head: format!("  #{tc_id} {result}: {comment}"),
            body: Vec::new(),
            mismatch: false,
        }
    }

    /// The lines of a test case of a vector file.
    fn of(t: &impl Case) -> Lines {
        Lines::new(t.tc_id(), t.result(), t.error(), t.comment())
    }

    fn line(&mut self, s: impl Into<String>) {
        self.body.push(format!("      {}", s.into()));
    }

    fn mismatch(&mut self, s: impl AsRef<str>) {
        self.mismatch = true;
        self.body.push(format!("      MISMATCH: {}", s.as_ref()));
    }
}

impl Report {
    fn finish_vector(&mut self, lines: Lines) {
        self.vectors += 1;
        if lines.mismatch {
            self.mismatches += 1;
        }
        if !self.quiet {
            println!("{}", lines.head);
        } else if lines.mismatch {
            println!("{}: {}", self.file, lines.head.trim_start());
        }
        if !self.quiet || lines.mismatch {
            for l in &lines.body {
                println!("{l}");
            }
        }
    }

    fn unusable(&mut self, what: impl AsRef<str>) {
        self.unusable += 1;
        eprintln!("decode-vectors: {}", what.as_ref());
    }
}

fn frame_line(f: &Frame) -> String {
    let what = if f.payload.is_empty() && !f.stream_id.is_control() {
        " (close)"
    } else {
        ""
    };
    format!(
        "frame: stream {}, {} byte(s){what}: {}",
        f.stream_id,
        f.payload.len(),
        preview(&f.payload)
    )
}

fn error_line(e: &FrameError) -> String {
    format!("error {}: {e}", e.kind())
}

// ------------------------------------------------------------------------------------------
// Parsing helpers (vector values are checked, never trusted: a bad value is a bad file)
// ------------------------------------------------------------------------------------------

fn int(s: &str) -> Result<i64, String> {
    s.parse()
        .map_err(|e| format!("{s:?} is not a 64-bit integer: {e}"))
}

fn stream_id(s: &str) -> Result<StreamId, String> {
    StreamId::new(int(s)?).ok_or_else(|| format!("stream id {s} is negative"))
}

fn limit(max: Option<usize>) -> Result<usize, String> {
    let max = max.unwrap_or(MIN_MAX_PAYLOAD);
    frame::check_payload_limit(max).map_err(|e| e.to_string())
}

// ------------------------------------------------------------------------------------------
// Decoding
// ------------------------------------------------------------------------------------------

/// Decodes `chunks` (one direction of a connection) into frames and the error, if any.
fn decode_frames(chunks: &[&[u8]], max: usize) -> (Vec<Frame>, Option<FrameError>) {
    let decoder = FrameDecoder::with_max_payload(max).expect("limits are checked before");
    let mut assembler = FrameAssembler::with_decoder(decoder);
    let mut frames = Vec::new();
    for chunk in chunks {
        if let Err(e) = assembler.push(chunk, &mut frames) {
            return (frames, Some(e));
        }
    }
    let end = assembler.finish().err();
    (frames, end)
}

/// Prints the decoded frames and error, and compares them with the expectation.
fn show_and_compare(
    lines: &mut Lines,
    report: &mut Report,
    t: &impl Case,
    got: &(Vec<Frame>, Option<FrameError>),
    expected: &[Frame],
) {
    let (frames, error) = got;
    report.frames += frames.len();
    for f in frames {
        lines.line(frame_line(f));
    }
    if let Some(e) = error {
        lines.line(error_line(e));
    }
    if frames != expected {
        let want: Vec<String> = expected
            .iter()
            .map(|f| format!("stream {} ({} bytes)", f.stream_id, f.payload.len()))
            .collect();
        lines.mismatch(format!(
            "expected {} frame(s): [{}]",
            expected.len(),
            want.join(", ")
        ));
    }
    match (error, t.error()) {
        (Some(e), Some(kind)) if e.kind() == kind => report.expected_errors += 1,
        (None, None) => {}
        (got, want) => lines.mismatch(format!(
            "expected {}, got {}",
            want.map_or("no error".to_owned(), |k| format!("error {k}")),
            got.as_ref()
                .map_or("no error".to_owned(), |e| format!("error {}", e.kind()))
        )),
    }
}

fn varint_file(report: &mut Report, tests: &[VarintCase]) -> Result<(), String> {
    for t in tests {
        let mut lines = Lines::of(t);
        let bytes = unhex(&t.hex).map_err(|e| format!("tcId {}: {e}", t.tc_id))?;
        lines.line(format!(
            "input: {}",
            if bytes.is_empty() {
                "(empty)".to_owned()
            } else {
                preview(&bytes)
            }
        ));
        match varint::decode(&bytes) {
            Ok((v, n)) => {
                lines.line(format!("value {v} ({n} byte(s))"));
                let want = t
                    .value
                    .as_deref()
                    .map(int)
                    .transpose()
                    .map_err(|e| format!("tcId {}: {e}", t.tc_id))?;
                if want != Some(v) || n != bytes.len() {
                    let want = t.error.as_deref().map_or_else(
                        || {
                            format!(
                                "value {} ({} bytes)",
                                t.value.as_deref().unwrap_or("?"),
                                bytes.len()
                            )
                        },
                        |k| format!("error {k}"),
                    );
                    lines.mismatch(format!("expected {want}"));
                }
            }
            Err(e) => {
                let kind = match e {
                    varint::VarintError::Incomplete { .. } => "incomplete",
                    varint::VarintError::Overflow { .. } => "overflow",
                    _ => "unknown",
                };
                lines.line(format!("error {kind}: {e}"));
                if t.error.as_deref() == Some(kind) {
                    report.expected_errors += 1;
                } else {
                    lines.mismatch(format!(
                        "expected {}",
                        t.value.as_deref().map_or_else(
                            || format!("error {}", t.error.as_deref().unwrap_or("?")),
                            |v| format!("value {v}")
                        )
                    ));
                }
            }
        }
        if let (Some(n), Some(v)) = (&t.go_varint_n, &t.go_varint_value) {
            lines.line(format!("Go's binary.Varint said: n={n}, value={v}"));
        }
        report.finish_vector(lines);
    }
    Ok(())
}

fn frames_file(report: &mut Report, tests: &[FrameCase]) -> Result<(), String> {
    for t in tests {
        let at = |e: String| format!("tcId {}: {e}", t.tc_id);
        let mut lines = Lines::of(t);
        let max = limit(t.max_payload).map_err(at)?;
        let (input, generated) = match (&t.hex, &t.header_hex, &t.payload) {
            (Some(h), None, None) => (unhex(h).map_err(at)?, None),
            (None, Some(h), Some(g)) => {
                let unit = unhex(&g.repeat_hex).map_err(at)?;
                let payload = unit.repeat(g.count);
                let mut input = unhex(h).map_err(at)?;
                input.extend_from_slice(&payload);
                (input, Some(payload))
            }
            _ => {
                return Err(at(
                    "give either `hex` or both `header_hex` and `payload`".to_owned()
                ))
            }
        };
        let expected = match (t.result, &t.stream_id) {
            (Expect::Invalid, _) => Vec::new(),
            (_, Some(id)) => {
                let payload = match (&t.payload_hex, generated) {
                    (Some(p), None) => unhex(p).map_err(at)?,
                    (None, Some(p)) => p,
                    _ => {
                        return Err(at(
                            "`payload_hex` goes with `hex`, a generator with `header_hex`"
                                .to_owned(),
                        ))
                    }
                };
                vec![Frame::new(stream_id(id).map_err(at)?, payload)]
            }
            (_, None) => {
                return Err(at(
                    "a valid or acceptable vector needs `stream_id`".to_owned()
                ))
            }
        };
        if max != MIN_MAX_PAYLOAD {
            lines.line(format!("receiver limit: {max} bytes"));
        }
        let got = decode_frames(&[&input], max);
        show_and_compare(&mut lines, report, t, &got, &expected);
        if t.result == Expect::Valid {
            if let Some(f) = expected.first() {
                let mut out = Vec::new();
                if f.encode(&mut out).is_err() || out != input {
                    lines.mismatch("encoding the frame does not give the input bytes");
                }
            }
        }
        report.finish_vector(lines);
    }
    Ok(())
}

fn streams_file(report: &mut Report, tests: &[StreamCase]) -> Result<(), String> {
    for t in tests {
        let at = |e: String| format!("tcId {}: {e}", t.tc_id);
        let mut lines = Lines::of(t);
        let max = limit(t.max_payload).map_err(at)?;
        let chunks: Vec<Vec<u8>> = match (&t.hex, &t.chunks) {
            (Some(h), None) => vec![unhex(h).map_err(at)?],
            (None, Some(cs)) => cs
                .iter()
                .map(|s| unhex(s))
                .collect::<Result<_, _>>()
                .map_err(at)?,
            _ => return Err(at("give exactly one of `hex` and `chunks`".to_owned())),
        };
        let expected = t
            .frames
            .iter()
            .map(|f| Ok(Frame::new(stream_id(&f.stream_id)?, unhex(&f.payload_hex)?)))
            .collect::<Result<Vec<_>, String>>()
            .map_err(at)?;
        let total: usize = chunks.iter().map(Vec::len).sum();
        if t.chunks.is_some() {
            let sizes: Vec<String> = chunks.iter().map(|c| c.len().to_string()).collect();
            lines.line(format!(
                "input: {total} bytes in reads of [{}] bytes",
                sizes.join(", ")
            ));
        } else {
            lines.line(format!("input: {total} bytes"));
        }
        if max != MIN_MAX_PAYLOAD {
            lines.line(format!("receiver limit: {max} bytes"));
        }
        let pieces: Vec<&[u8]> = chunks.iter().map(Vec::as_slice).collect();
        let got = decode_frames(&pieces, max);
        show_and_compare(&mut lines, report, t, &got, &expected);
        if t.result == Expect::Valid {
            let mut out = Vec::new();
            let encoded = expected.iter().all(|f| f.encode(&mut out).is_ok());
            if !encoded || out != chunks.concat() {
                lines.mismatch("encoding the frames does not give the input bytes");
            }
        }
        report.finish_vector(lines);
    }
    Ok(())
}

fn handshake_file(report: &mut Report, tests: &[HandshakeCase]) -> Result<(), String> {
    for t in tests {
        let at = |e: String| format!("tcId {}: {e}", t.tc_id);
        let mut lines = Lines::of(t);
        let frame_bytes = unhex(&t.frame_hex).map_err(at)?;
        let hooks = t
            .hooks_stream_id
            .as_deref()
            .map(int)
            .transpose()
            .map_err(at)?;

        // The frame as any receiver decodes it.
        let (frames, ferr) = decode_frames(&[&frame_bytes], MIN_MAX_PAYLOAD);
        report.frames += frames.len();
        for f in &frames {
            lines.line(frame_line(f));
        }
        if let Some(e) = ferr {
            lines.line(error_line(&e));
            lines.mismatch("frame_hex is not a whole frame");
        }

        // A host waiting for the announcement.
        let mut table = StreamTable::new(Role::Host);
        let outcome = table.receive(&frame_bytes);
        let mut announced = None;
        while let Some(ev) = table.poll_event() {
            if let Event::HandshakeComplete { hooks } = ev {
                announced = Some(hooks.get());
            }
        }
        match (outcome, t.result) {
            (Ok(()), Expect::Valid | Expect::Acceptable) => match announced {
                Some(id) => {
                    lines.line(format!(
                        "host: handshake complete, hooks stream {id} connected"
                    ));
                    if Some(id) != hooks {
                        lines.mismatch(format!(
                            "expected hooks stream {}",
                            t.hooks_stream_id.as_deref().unwrap_or("?")
                        ));
                    }
                }
                None => lines.mismatch("the host did not complete the handshake"),
            },
            (Ok(()), Expect::Invalid) => {
                lines.line(match announced {
                    Some(id) => format!("host: handshake complete, hooks stream {id} connected"),
                    None => "host: still waiting for the announcement".to_owned(),
                });
                lines.mismatch(format!(
                    "expected error {}",
                    t.error.as_deref().unwrap_or("?")
                ));
            }
            (Err(e), _) => {
                lines.line(format!("host: error {}: {e}", e.kind()));
                if t.result == Expect::Invalid && t.error.as_deref() == Some(e.kind()) {
                    report.expected_errors += 1;
                } else {
                    let want = match t.result {
                        Expect::Invalid => format!("error {}", t.error.as_deref().unwrap_or("?")),
                        _ => format!(
                            "hooks stream {}",
                            t.hooks_stream_id.as_deref().unwrap_or("?")
                        ),
                    };
                    lines.mismatch(format!("expected {want}"));
                }
            }
        }
        report.finish_vector(lines);
    }
    Ok(())
}

/// Decodes one vector file; `Err` means the file is not usable (exit status 2).
fn vector_file(report: &mut Report, path: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", path.display()))?;
    let schema = value
        .get("schema")
        .and_then(|s| s.as_str())
        .ok_or_else(|| {
            format!(
                "{}: no \"schema\" string: not a vector file",
                path.display()
            )
        })?
        .to_owned();
    fn parse<T: DeserializeOwned>(
        text: &str,
        path: &Path,
        schema: &str,
    ) -> Result<VectorFile<T>, String> {
        let file: VectorFile<T> = serde_json::from_str(text)
            .map_err(|e| format!("{}: does not match schema {schema}: {e}", path.display()))?;
        debug_assert_eq!(file.schema, schema);
        Ok(file)
    }
    let name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let wrap = |e: String| format!("{}: {e}", path.display());
    let quiet = report.quiet;
    report.file.clone_from(&name);
    let header = |n: usize| {
        if !quiet {
            println!("{name} ({schema}): {n} vector(s)");
        }
    };
    match schema.as_str() {
        "varint/v1" => {
            let f: VectorFile<VarintCase> = parse(&text, path, &schema)?;
            header(f.tests.len());
            varint_file(report, &f.tests).map_err(wrap)
        }
        "frames/v1" => {
            let f: VectorFile<FrameCase> = parse(&text, path, &schema)?;
            header(f.tests.len());
            frames_file(report, &f.tests).map_err(wrap)
        }
        "streams/v1" => {
            let f: VectorFile<StreamCase> = parse(&text, path, &schema)?;
            header(f.tests.len());
            streams_file(report, &f.tests).map_err(wrap)
        }
        "handshake/v1" => {
            let f: VectorFile<HandshakeCase> = parse(&text, path, &schema)?;
            header(f.tests.len());
            handshake_file(report, &f.tests).map_err(wrap)
        }
        "rpc-messages/v2" => {
            let n = value["tests"].as_array().map_or(0, Vec::len);
            header(n);
            rpc_messages_file(report, &value).map_err(wrap)
        }
        "rpc-go-sessions/v1" => {
            let n = value["netrpc_sessions"].as_array().map_or(0, Vec::len);
            if !quiet {
                println!("{name} ({schema}): {n} Go session(s)");
            }
            rpc_sessions_file(report, &value).map_err(wrap)
        }
        other => Err(format!(
            "{}: unknown schema {other:?} (this tool knows varint/v1, frames/v1, streams/v1, \
             handshake/v1, rpc-messages/v2, rpc-go-sessions/v1)",
            path.display()
        )),
    }
}

/// One direction of an RPC stream decoded as a server (requests) or a client (responses): a
/// line per call, then the error, if any.
fn decode_rpc(
    bytes: &[u8],
    server: bool,
    max_message: Option<usize>,
    max_depth: Option<usize>,
) -> (Vec<String>, Option<String>) {
    use rpcplugin_codec::gob::{DecodeLimits, Decoder};
    use rpcplugin_codec::rpc::{ClientCodec, ServerCodec};
    let mut limits = DecodeLimits::default();
    if let Some(m) = max_message {
        limits.max_message = m;
    }
    if let Some(d) = max_depth {
        limits.max_depth = d;
    }
    let mut lines = Vec::new();
    let error = if server {
        let mut codec = ServerCodec::with_decoder(Decoder::with_limits(limits));
        codec.push(bytes);
        loop {
            match codec.next_request() {
                Ok(Some(r)) => lines.push(format!(
                    "request  Seq {}: {}({})",
                    r.header.seq, r.header.service_method, r.args
                )),
                Ok(None) => break codec.finish().err().map(|e| format!("{} {e}", e.kind())),
                Err(e) => break Some(format!("{} {e}", e.kind())),
            }
        }
    } else {
        let mut codec: ClientCodec<()> = ClientCodec::with_decoder(Decoder::with_limits(limits));
        codec.push(bytes);
        loop {
            match codec.next_response() {
                Ok(Some(r)) if r.header.error.is_empty() => lines.push(format!(
                    "response Seq {}: {} -> {}",
                    r.header.seq, r.header.service_method, r.body
                )),
                Ok(Some(r)) => lines.push(format!(
                    "response Seq {}: {} -> error {:?}",
                    r.header.seq, r.header.service_method, r.header.error
                )),
                Ok(None) => break codec.finish().err().map(|e| format!("{} {e}", e.kind())),
                Err(e) => break Some(format!("{} {e}", e.kind())),
            }
        }
    };
    (lines, error)
}

fn hex_of(v: &serde_json::Value) -> Result<Vec<u8>, String> {
    match (v.get("hex"), v.get("chunks")) {
        (Some(h), _) => unhex(h.as_str().ok_or("hex is not a string")?),
        (None, Some(c)) => {
            let mut out = Vec::new();
            for h in c.as_array().ok_or("chunks is not an array")? {
                out.extend(unhex(h.as_str().ok_or("a chunk is not a string")?)?);
            }
            Ok(out)
        }
        _ => Err("a test has neither hex nor chunks".into()),
    }
}

/// `rpc-messages/v2`: gob message streams of one direction of an RPC stream.
fn rpc_messages_file(report: &mut Report, file: &serde_json::Value) -> Result<(), String> {
    for t in file["tests"].as_array().ok_or("no tests array")? {
        let want_error = t["error"].as_str();
        let mut lines = Lines::new(
            t["tcId"].as_u64().unwrap_or(0) as u32,
            match t["result"].as_str() {
                Some("valid") => Expect::Valid,
                Some("acceptable") => Expect::Acceptable,
                _ => Expect::Invalid,
            },
            want_error,
            t["comment"].as_str().unwrap_or(""),
        );
        let bytes = hex_of(t)?;
        let server = t["side"].as_str() == Some("server");
        let max = t["max_message"].as_u64().map(|m| m as usize);
        let depth = t["max_depth"].as_u64().map(|d| d as usize);
        let (calls, error) = decode_rpc(&bytes, server, max, depth);
        lines.line(format!(
            "input: {} bytes, read as a {}",
            bytes.len(),
            if server { "server" } else { "client" }
        ));
        for c in &calls {
            lines.line(c.clone());
        }
        let want_calls = t["calls"].as_array().map_or(0, Vec::len);
        match (&error, want_error) {
            (Some(got), Some(want)) if got.split(' ').next() == Some(want) => {
                lines.line(format!("error {got}"));
                report.expected_errors += 1;
            }
            (None, None) if calls.len() == want_calls => {}
            (got, want) => lines.mismatch(format!(
                "expected {} call(s) and {}, got {} and {}",
                want_calls,
                want.map_or("no error".to_owned(), |k| format!("error {k}")),
                calls.len(),
                got.as_deref()
                    .map_or("no error".to_owned(), |e| format!("error {e}"))
            )),
        }
        report.finish_vector(lines);
    }
    Ok(())
}

/// `rpc-go-sessions/v1`: both directions of real Go net/rpc sessions.
fn rpc_sessions_file(report: &mut Report, file: &serde_json::Value) -> Result<(), String> {
    for (i, session) in file["netrpc_sessions"]
        .as_array()
        .ok_or("no netrpc_sessions array")?
        .iter()
        .enumerate()
    {
        let calls = session["calls"].as_array().ok_or("no calls")?;
        for (key, server) in [
            ("client_to_server_writes_hex", true),
            ("server_to_client_writes_hex", false),
        ] {
            let mut bytes = Vec::new();
            for h in session[key].as_array().ok_or("no writes")? {
                bytes.extend(unhex(h.as_str().ok_or("a write is not a string")?)?);
            }
            let comment = format!(
                "{} ({})",
                session["description"].as_str().unwrap_or(""),
                if server {
                    "the client's writes"
                } else {
                    "the server's writes"
                }
            );
            let mut lines = Lines::new(i as u32 + 1, Expect::Valid, None, &comment);
            let (decoded, error) = decode_rpc(&bytes, server, None, None);
            decoded.iter().for_each(|l| lines.line(l.clone()));
            if let Some(e) = error {
                lines.mismatch(format!("error {e}"));
            } else if decoded.len() != calls.len() {
                lines.mismatch(format!(
                    "expected {} call(s), got {}",
                    calls.len(),
                    decoded.len()
                ));
            }
            report.finish_vector(lines);
        }
    }
    Ok(())
}

/// Decodes a raw capture of one direction: frame by frame, with the offset of each.
fn raw_capture(report: &mut Report, path: &Path, max: usize) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    report.captures += 1;
    println!(
        "{} (raw capture, {} bytes, payload limit {max})",
        path.display(),
        bytes.len()
    );
    let mut pos = 0;
    let mut count = 0;
    let error = loop {
        match frame::decode_frame(&bytes[pos..], max) {
            Ok(Some((f, n))) => {
                if !report.quiet {
                    println!(
                        "  @{pos} {}",
                        frame_line(&Frame::new(f.stream_id, f.payload))
                    );
                }
                count += 1;
                pos += n;
            }
            Ok(None) if pos == bytes.len() => break None,
            Ok(None) => {
                // End of input inside a frame: the incremental decoder names the truncation.
                let mut d = FrameDecoder::with_max_payload(max).expect("limit checked");
                let mut rest = &bytes[pos..];
                while let Ok(Some(_)) = d.decode(&mut rest) {}
                break d.finish().err();
            }
            Err(e) => break Some(e),
        }
    };
    report.frames += count;
    match error {
        None => println!("  {count} frame(s), clean end at offset {pos}"),
        Some(e) => {
            report.capture_errors += 1;
            println!(
                "  {count} frame(s), then at offset {pos}: {}",
                error_line(&e)
            );
        }
    }
    Ok(())
}

fn default_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors");
    let entries =
        std::fs::read_dir(&dir).map_err(|e| format!("cannot list {}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(format!("no vector files (*.json) in {}", dir.display()));
    }
    Ok(files)
}

fn main() -> ExitCode {
    let mut files = Vec::new();
    let mut raws = Vec::new();
    let mut max = MIN_MAX_PAYLOAD;
    let mut report = Report::default();
    let mut args = std::env::args_os().skip(1);
    let usage_error = |msg: String| {
        eprintln!("decode-vectors: {msg}\n\n{USAGE}");
        ExitCode::from(2)
    };
    while let Some(arg) = args.next() {
        match arg.to_str() {
            Some("-h" | "--help") => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            Some("-q" | "--quiet") => report.quiet = true,
            Some("--raw") => match args.next() {
                Some(p) => raws.push(PathBuf::from(p)),
                None => return usage_error("--raw needs a file".to_owned()),
            },
            Some("--max-payload") => {
                let Some(n) = args.next() else {
                    return usage_error("--max-payload needs a number".to_owned());
                };
                match n.to_str().and_then(|s| s.parse::<usize>().ok()) {
                    Some(n) => match frame::check_payload_limit(n) {
                        Ok(n) => max = n,
                        Err(e) => return usage_error(e.to_string()),
                    },
                    None => return usage_error(format!("--max-payload: {n:?} is not a number")),
                }
            }
            Some(s) if s.starts_with('-') && s != "-" => {
                return usage_error(format!("unknown option {s}"))
            }
            _ => files.push(PathBuf::from(arg)),
        }
    }
    if files.is_empty() && raws.is_empty() {
        match default_files() {
            Ok(f) => files = f,
            Err(e) => {
                eprintln!("decode-vectors: {e}");
                return ExitCode::from(2);
            }
        }
    }

    for path in &files {
        if let Err(e) = vector_file(&mut report, path) {
            report.unusable(e);
        }
    }
    for path in &raws {
        if let Err(e) = raw_capture(&mut report, path, max) {
            report.unusable(e);
        }
    }

    let mut summary = format!(
        "{} vectors, {} frames, {} expected errors, {} mismatches",
        report.vectors, report.frames, report.expected_errors, report.mismatches
    );
    if report.captures > 0 {
        let _ = write!(
            summary,
            "; {} raw capture(s), {} with a connection error",
            report.captures, report.capture_errors
        );
    }
    if report.unusable > 0 {
        let _ = write!(summary, "; {} file(s) could not be used", report.unusable);
    }
    println!("{summary}");
    if report.unusable > 0 {
        ExitCode::from(2)
    } else if report.mismatches > 0 || report.capture_errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
