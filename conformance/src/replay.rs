//! `rpcplugin-conformance replay`: plays a replay file's exchange back against a plugin.
//!
//! Every chunk the harness sent is sent again, as one write, once the plugin has written at
//! least as many bytes as it had when the chunk was first sent and no earlier (relative to the
//! launch) than it was first sent; the harness closes its pipe at the same point. Then the
//! plugin's output and exit are compared with the recording: the first differing byte is shown
//! with the frames the codec's tracer finds there, in the recording and now.

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
    /// The report, as lines.
    pub lines: Vec<String>,
}

impl ReplayResult {
    /// Whether the plugin did exactly what it did in the recording.
    pub fn reproduced(&self) -> bool {
        self.first_difference.is_none() && self.recorded_exit == self.exit
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
    match first_difference {
        None => lines.push(format!(
            "the plugin wrote the same {} bytes as in the recording",
            got.len()
        )),
        Some(at) => {
            lines.push(format!(
                "the plugin's output differs from the recording at byte {at} (recorded {} bytes, now {})",
                recorded.len(),
                got.len()
            ));
            lines.push(format!(
                "  recorded: {}",
                note_at(&trace(Role::Plugin, &recorded), at)
            ));
            lines.push(format!(
                "  now:      {}",
                note_at(&trace(Role::Plugin, &got), at)
            ));
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
        lines,
    })
}
