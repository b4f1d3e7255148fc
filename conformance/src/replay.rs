//! `rpcplugin-conformance replay`: plays a replay file's exchange back against a plugin.
//!
//! Every chunk the harness sent is sent again, as one write, once the plugin has written at
//! least as many bytes as it had when the chunk was first sent and no earlier (relative to the
//! launch) than it was first sent; the harness closes its pipe at the same point. Then the
//! plugin's output and exit are compared with the recording: the first differing byte is shown
//! with the frames the codec's tracer finds there, in the recording and now.
//!
//! Output that differs in its bytes can still be the same exchange: a plugin that serves calls
//! concurrently answers them in another order from one run to the next (RPC-5 allows any
//! order), interleaves the frames of different streams differently, and splits its writes
//! into frames as it likes (FRAME-12). The replay therefore also compares the two outputs as
//! [`Exchange`]s, stream by stream, modulo what the spec lets vary, and counts an equivalent
//! exchange as reproduced, saying what differed.

use std::time::{Duration, Instant};

use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::{Note, Tracer, What};

use crate::plugin_under_test::{Input, Launch, PluginCommand, PluginUnderTest};
use crate::transcript::{from_hex, EventKind, ExitRecord, ReplayFile};

/// How a replay compared with its recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayResult {
    /// Bytes the plugin wrote in the recording.
    pub recorded_bytes: usize,
    /// Bytes it wrote now.
    pub bytes: usize,
    /// The first offset at which the two differ (or where the shorter one ends), if they do.
    pub first_difference: Option<usize>,
    /// How the process ended in the recording (`None`: it was still running).
    pub recorded_exit: Option<ExitRecord>,
    /// How it ended now.
    pub exit: Option<ExitRecord>,
    /// Whether the two outputs are the same exchange modulo what the spec lets vary (the order
    /// of responses on a stream, the interleaving of streams, framing), when their bytes differ.
    pub equivalent: bool,
    /// The report, as lines.
    pub lines: Vec<String>,
}

impl ReplayResult {
    /// Whether the plugin did what it did in the recording: the same bytes, or the same
    /// exchange in an order the spec allows, and the same end.
    pub fn reproduced(&self) -> bool {
        (self.first_difference.is_none() || self.equivalent) && self.recorded_exit == self.exit
    }
}

/// What one direction of a connection says, modulo what the spec lets vary: per stream, the
/// requests in order (RPC-4 fixes their `Seq` order), the responses sorted by `Seq` (RPC-5 lets
/// them come in any order), whether it was closed; the announcement; the rules broken. How the
/// bytes were cut into frames and how the streams interleave are left out.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Exchange {
    /// The hooks stream announced, if any.
    pub announced: Option<i64>,
    /// Per stream id: requests `(Seq, method, argument)` in the order sent.
    pub requests: std::collections::BTreeMap<i64, Vec<(u64, String, String)>>,
    /// Per stream id: responses `(Seq, method, error, body)`, sorted.
    pub responses: std::collections::BTreeMap<i64, Vec<(u64, String, String, String)>>,
    /// The streams closed.
    pub closed: std::collections::BTreeSet<i64>,
    /// The rules broken, by requirement, with how often.
    pub violations: std::collections::BTreeMap<&'static str, usize>,
}

impl Exchange {
    /// The exchange the tracer's notes describe.
    pub fn from_notes(notes: &[Note]) -> Exchange {
        let mut x = Exchange::default();
        for n in notes {
            match &n.what {
                What::Announcement { hooks } => x.announced = Some(hooks.get()),
                What::Close { stream_id } => {
                    x.closed.insert(stream_id.get());
                }
                What::Request {
                    stream_id,
                    seq,
                    service_method,
                    args,
                } => x.requests.entry(stream_id.get()).or_default().push((
                    *seq,
                    service_method.clone(),
                    args.clone(),
                )),
                What::Response {
                    stream_id,
                    seq,
                    service_method,
                    error,
                    body,
                } => x.responses.entry(stream_id.get()).or_default().push((
                    *seq,
                    service_method.clone(),
                    error.clone(),
                    body.clone(),
                )),
                What::Violation(v) => *x.violations.entry(v.requirement).or_default() += 1,
                What::Frame { .. } | What::End => {}
            }
        }
        for responses in x.responses.values_mut() {
            responses.sort();
        }
        x
    }

    /// The first difference from `other`, in words; `None` when they are the same exchange.
    pub fn difference(&self, other: &Exchange) -> Option<String> {
        if self.announced != other.announced {
            return Some(format!(
                "the announced hooks stream: {:?} and {:?}",
                self.announced, other.announced
            ));
        }
        let streams: std::collections::BTreeSet<i64> = self
            .requests
            .keys()
            .chain(self.responses.keys())
            .chain(other.requests.keys())
            .chain(other.responses.keys())
            .copied()
            .collect();
        for id in streams {
            let (a, b) = (self.requests.get(&id), other.requests.get(&id));
            if a != b {
                return Some(format!(
                    "the requests on stream {id}: {} and {}",
                    a.map_or(0, Vec::len),
                    b.map_or(0, Vec::len)
                ));
            }
            let (a, b) = (self.responses.get(&id), other.responses.get(&id));
            if a != b {
                let seqs = |r: Option<&Vec<(u64, String, String, String)>>| {
                    r.map(|r| r.iter().map(|x| x.0).collect::<Vec<u64>>())
                        .unwrap_or_default()
                };
                return Some(format!(
                    "the responses on stream {id}: Seq {:?} and {:?} (or their contents)",
                    seqs(a),
                    seqs(b)
                ));
            }
        }
        if self.closed != other.closed {
            return Some(format!(
                "the streams closed: {:?} and {:?}",
                self.closed, other.closed
            ));
        }
        if self.violations != other.violations {
            return Some(format!(
                "the rules broken: {:?} and {:?}",
                self.violations, other.violations
            ));
        }
        None
    }
}

/// Notes of one direction's bytes.
fn trace(role: Role, bytes: &[u8]) -> Vec<Note> {
    let mut t = Tracer::new(role);
    let mut out = Vec::new();
    t.push(bytes, &mut out);
    out
}

/// The tracer's note for the frame that contains `offset`, if any.
fn note_at(notes: &[Note], offset: usize) -> String {
    let offset = offset as u64;
    let mut found = None;
    for n in notes {
        if matches!(n.what, What::Frame { .. }) && n.offset <= offset {
            found = Some(n);
        }
    }
    match found {
        Some(n) => format!("@{} {}", n.offset, n.what),
        None => "(before the first whole frame)".to_string(),
    }
}

/// Plays `file` back against `command`.
pub fn replay(file: &ReplayFile, command: &PluginCommand) -> Result<ReplayResult, String> {
    if file.mode != "plugin" {
        return Err(format!(
            "this replay file records a {:?} case; replay plays back plugin cases",
            file.mode
        ));
    }
    let stdin_pipe = crate::cases::find(&file.case.id).is_some_and(|c| c.stdin_pipe);
    let last_us = file.exchange.last().map_or(0, |e| e.t_us);
    let scale = if file.timeout_scale.is_finite() && file.timeout_scale > 0.0 {
        file.timeout_scale
    } else {
        1.0
    };
    let launch = Launch {
        scale,
        case_timeout: Duration::from_micros(last_us) + Duration::from_secs(30).mul_f64(scale),
        stdin_pipe,
        seed: file.seed,
    };
    let mut p = PluginUnderTest::launch(command, &launch)
        .map_err(|e| format!("cannot launch the plugin: {e}"))?;
    let start = Instant::now();
    let mut got: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut recorded_received = 0usize;
    let mut sent = 0usize;
    let mut lines = Vec::new();
    // Reads what arrives until `deadline` or until `want` bytes have arrived.
    let receive = |p: &mut PluginUnderTest,
                   got: &mut Vec<u8>,
                   eof: &mut bool,
                   want: usize,
                   deadline: Instant| {
        while got.len() < want && !*eof {
            match p.read_raw(deadline) {
                Input::Data(bytes) => got.extend_from_slice(&bytes),
                Input::Eof | Input::Error(_) => *eof = true,
                Input::TimedOut => break,
            }
        }
    };
    for entry in &file.exchange {
        match entry.event {
            EventKind::Received => {
                recorded_received += from_hex(entry.hex.as_deref().unwrap_or(""))?.len();
            }
            EventKind::Sent | EventKind::ClosedInput => {
                // Causality first: what the plugin had written by then; then the timing.
                let at = start + Duration::from_micros(entry.t_us);
                let wait = Instant::now().max(at) + Duration::from_secs(2).mul_f64(scale);
                receive(&mut p, &mut got, &mut eof, recorded_received, wait);
                let now = Instant::now();
                if now < at {
                    receive(&mut p, &mut got, &mut eof, usize::MAX, at);
                }
                if entry.event == EventKind::ClosedInput {
                    p.close_input();
                    continue;
                }
                let bytes = from_hex(entry.hex.as_deref().unwrap_or(""))?;
                sent += bytes.len();
                if let Err(e) = p.write_raw_bounded(bytes, Duration::from_secs(5)) {
                    lines.push(format!("writing stopped: {e}"));
                    break;
                }
            }
            EventKind::Eof
            | EventKind::Exit
            | EventKind::ToDriver
            | EventKind::FromDriver
            | EventKind::Agent => {}
        }
    }
    let recorded = file.bytes(EventKind::Received);
    let recorded_eof = file.exchange.iter().any(|e| e.event == EventKind::Eof);
    let end = start + Duration::from_micros(last_us) + Duration::from_millis(500).mul_f64(scale);
    let want = if recorded_eof {
        usize::MAX
    } else {
        recorded.len()
    };
    receive(
        &mut p,
        &mut got,
        &mut eof,
        want,
        end.max(Instant::now() + Duration::from_millis(200)),
    );
    let exit = match file.exit {
        Some(_) => p.wait_exit(Duration::from_secs(5)),
        None => p.try_exit(),
    };
    let exit: Option<ExitRecord> = exit.map(Into::into);
    lines.insert(
        0,
        format!(
            "replayed {} ({}) against {}: sent {sent} bytes",
            file.case.id,
            file.verdict,
            command.display().join(" ")
        ),
    );
    let first_difference =
        (0..recorded.len().max(got.len())).find(|&i| recorded.get(i) != got.get(i));
    let recorded_notes = trace(Role::Plugin, &recorded);
    let notes = trace(Role::Plugin, &got);
    let difference = first_difference.and_then(|_| {
        Exchange::from_notes(&recorded_notes).difference(&Exchange::from_notes(&notes))
    });
    let equivalent = first_difference.is_some() && difference.is_none();
    match first_difference {
        None => lines.push(format!(
            "the plugin wrote the same {} bytes as in the recording",
            got.len()
        )),
        Some(at) if equivalent => lines.push(format!(
            "the plugin wrote the same exchange as in the recording, in an order or framing \
             the spec allows to vary: its bytes differ from byte {at} on (recorded {}, now {}), \
             but stream by stream it sent the same requests in the same order, the same \
             responses (in any order: RPC-5) and the same closes; how its frames were cut and \
             how its streams interleaved are its own (FRAME-12, chapter 03)",
            recorded.len(),
            got.len()
        )),
        Some(at) => {
            lines.push(format!(
                "the plugin's output differs from the recording at byte {at} (recorded {} bytes, now {})",
                recorded.len(),
                got.len()
            ));
            lines.push(format!("  recorded: {}", note_at(&recorded_notes, at)));
            lines.push(format!("  now:      {}", note_at(&notes, at)));
            if let Some(d) = difference {
                lines.push(format!("  the exchanges differ in {d}"));
            }
        }
    }
    let show = |e: &Option<ExitRecord>| match e {
        Some(e) => e.to_string(),
        None => "still running when the case ended".to_string(),
    };
    if file.exit == exit {
        lines.push(format!(
            "the process ended as in the recording: {}",
            show(&exit)
        ));
    } else {
        lines.push(format!(
            "the process ended otherwise: recorded {}, now {}",
            show(&file.exit),
            show(&exit)
        ));
    }
    for (offset, v) in p.violations() {
        lines.push(format!(
            "observer: at byte {offset} of the plugin's output: {v}"
        ));
    }
    Ok(ReplayResult {
        recorded_bytes: recorded.len(),
        bytes: got.len(),
        first_difference,
        recorded_exit: file.exit.clone(),
        exit,
        equivalent,
        lines,
    })
}
