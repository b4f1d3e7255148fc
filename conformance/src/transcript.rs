//! What crossed the pipes during a case, and the replay file that keeps it.
//!
//! A [`Recorder`] is shared by the harness and its reader thread: every chunk of bytes the
//! harness wrote to the subject and every chunk it read back is stored as it happens, with its
//! time since launch in microseconds, together with the harness closing its pipe, the subject's
//! end of output and its exit. A failing case writes all of it as a [`ReplayFile`] (schema
//! [`REPLAY_SCHEMA`], documented in `spec/harness.md`), which
//! `rpcplugin-conformance replay` plays back (module [`crate::replay`]) and
//! `rpcplugin-conformance inspect` decodes (module [`crate::inspect`]).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use rpcplugin_runtime::process::Exit;
use serde::{Deserialize, Serialize};

/// Starts a thread that reads `pipe` (a subject's standard error) to its end and keeps its
/// first `keep` bytes, readable at any time from what it returns.
pub fn keep_output(
    mut pipe: impl std::io::Read + Send + 'static,
    keep: usize,
) -> Arc<Mutex<Vec<u8>>> {
    let kept = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&kept);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let mut kept = sink.lock().unwrap_or_else(|e| e.into_inner());
            let room = keep.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
    });
    kept
}

/// The `schema` of a replay file.
pub const REPLAY_SCHEMA: &str = "rpcplugin-conformance-replay/v1";

/// One event of an exchange.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Microseconds since the subject was launched.
    pub t_us: u64,
    /// What happened.
    pub event: EventKind,
    /// The bytes, in lowercase hex without separators (`sent` and `received` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
    /// How the process ended (`exit` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<ExitRecord>,
    /// A line of the driver contract or of an agent's reports (host cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<String>,
    /// The agent launch a line is about (`agent` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<usize>,
}

/// The kinds of [`Entry`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The harness wrote these bytes to the subject (one write call).
    Sent,
    /// The harness read these bytes from the subject (one read call).
    Received,
    /// The harness closed its end of the pipe to the subject.
    ClosedInput,
    /// The subject closed its output (the harness read end-of-file).
    Eof,
    /// The subject's process ended.
    Exit,
    /// Host cases: a line the harness wrote to the driver.
    ToDriver,
    /// Host cases: a line the driver wrote.
    FromDriver,
    /// Host cases: a line between the harness and a launch of its agent.
    Agent,
}

/// How a process ended, as a replay file records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// The exit status, if it exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// The number of the signal that killed it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<i32>,
    /// The signal's name (`SIGKILL`), for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal_name: Option<String>,
}

impl From<Exit> for ExitRecord {
    fn from(exit: Exit) -> Self {
        match exit {
            Exit::Code(code) => ExitRecord {
                code: Some(code),
                signal: None,
                signal_name: None,
            },
            Exit::Signal(sig) => ExitRecord {
                code: None,
                signal: Some(sig),
                signal_name: nix::sys::signal::Signal::try_from(sig)
                    .ok()
                    .map(|s| s.as_str().to_string()),
            },
        }
    }
}

impl std::fmt::Display for ExitRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.code, self.signal, &self.signal_name) {
            (Some(code), _, _) => write!(f, "exited with status {code}"),
            (None, Some(sig), Some(name)) => write!(f, "killed by signal {sig} ({name})"),
            (None, Some(sig), None) => write!(f, "killed by signal {sig}"),
            _ => f.write_str("ended"),
        }
    }
}

/// Records an exchange as it happens; clones share the record.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            entries: Arc::default(),
        }
    }

    /// When the clock started.
    pub fn start(&self) -> Instant {
        self.start
    }

    fn push(&self, event: EventKind, hex: Option<String>, exit: Option<ExitRecord>) {
        self.push_entry(Entry {
            t_us: 0,
            event,
            hex,
            exit,
            line: None,
            launch: None,
        });
    }

    fn push_entry(&self, mut entry: Entry) {
        entry.t_us = self.start.elapsed().as_micros() as u64;
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.push(entry);
    }

    /// Host cases: a line to (`to_driver`) or from (`from_driver`) the driver.
    pub fn driver_line(&self, direction: &str, line: &str) {
        let event = if direction == "to_driver" {
            EventKind::ToDriver
        } else {
            EventKind::FromDriver
        };
        self.push_entry(Entry {
            t_us: 0,
            event,
            hex: None,
            exit: None,
            line: Some(line.to_string()),
            launch: None,
        });
    }

    /// Host cases: a line between the harness and launch `index` of the agent.
    pub fn agent_line(&self, index: usize, line: &str) {
        self.push_entry(Entry {
            t_us: 0,
            event: EventKind::Agent,
            hex: None,
            exit: None,
            line: Some(line.to_string()),
            launch: Some(index),
        });
    }

    /// The harness wrote `bytes`.
    pub fn sent(&self, bytes: &[u8]) {
        self.push(EventKind::Sent, Some(to_hex(bytes)), None);
    }

    /// The harness read `bytes`.
    pub fn received(&self, bytes: &[u8]) {
        self.push(EventKind::Received, Some(to_hex(bytes)), None);
    }

    /// The harness closed its pipe to the subject.
    pub fn closed_input(&self) {
        self.push(EventKind::ClosedInput, None, None);
    }

    /// The subject closed its output.
    pub fn eof(&self) {
        self.push(EventKind::Eof, None, None);
    }

    /// The subject's process ended (recorded once).
    pub fn exit(&self, exit: Exit) {
        let recorded = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|e| e.event == EventKind::Exit);
        if !recorded {
            self.push(EventKind::Exit, None, Some(exit.into()));
        }
    }

    /// Everything recorded so far.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

/// The harness that wrote a replay file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HarnessInfo {
    /// `rpcplugin-conformance`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// The protocol tested.
    pub protocol: String,
    /// The version of the specification its cases cite.
    pub spec_version: String,
}

impl HarnessInfo {
    /// This harness.
    pub fn current() -> HarnessInfo {
        HarnessInfo {
            name: "rpcplugin-conformance".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            protocol: rpcplugin_codec::PROTOCOL.into(),
            spec_version: crate::requirements::spec_version().into(),
        }
    }
}

/// The case a replay file records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseInfo {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// The requirements it checks.
    pub requirements: Vec<String>,
}

/// A failing case's exchange, as `replay` and `inspect` read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayFile {
    /// [`REPLAY_SCHEMA`].
    pub schema: String,
    /// Who wrote it.
    pub harness: HarnessInfo,
    /// `plugin`: the subject was a plugin and the harness played the host.
    pub mode: String,
    /// The case.
    pub case: CaseInfo,
    /// The run's seed (`--seed`).
    pub seed: u64,
    /// The `--timeout-scale` of the run.
    pub timeout_scale: f64,
    /// The subject's executable and arguments.
    pub subject: Vec<String>,
    /// The case's verdict.
    pub verdict: String,
    /// Its one-line reason.
    pub reason: String,
    /// Its full message.
    pub message: String,
    /// Every event, in order.
    pub exchange: Vec<Entry>,
    /// How the subject's process ended, if it did before the harness killed it.
    pub exit: Option<ExitRecord>,
    /// The subject's standard error (its first 64 KiB).
    pub stderr: String,
    /// For a fuzz failure (case `fuzz/plugin` or `fuzz/host`): the shrunk schedule, which
    /// `replay` runs again against a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<serde_json::Value>,
}

impl ReplayFile {
    /// Reads and checks a replay file.
    pub fn read(path: &std::path::Path) -> Result<ReplayFile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: ReplayFile = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a replay file: {e}", path.display()))?;
        if file.schema != REPLAY_SCHEMA {
            return Err(format!(
                "{} has schema {:?}; this harness reads {REPLAY_SCHEMA:?}",
                path.display(),
                file.schema
            ));
        }
        for (i, entry) in file.exchange.iter().enumerate() {
            if matches!(entry.event, EventKind::Sent | EventKind::Received) {
                let hex = entry.hex.as_deref().unwrap_or("");
                from_hex(hex)
                    .map_err(|e| format!("{}: exchange entry {i}: {e}", path.display()))?;
            }
        }
        Ok(file)
    }

    /// The bytes of every entry of `kind`, concatenated.
    pub fn bytes(&self, kind: EventKind) -> Vec<u8> {
        let mut all = Vec::new();
        for e in self.exchange.iter().filter(|e| e.event == kind) {
            all.extend(from_hex(e.hex.as_deref().unwrap_or("")).unwrap_or_default());
        }
        all
    }
}

/// Lowercase hex without separators: the hex of replay files, driver orders and agent reports.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

/// Parses hex digits, ignoring white space.
pub fn from_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&digits).map_err(|e| match e {
        hex::FromHexError::OddLength => format!("odd number of hex digits ({})", digits.len()),
        hex::FromHexError::InvalidHexCharacter { c, index } => {
            format!("{c:?} (hex digit {}) is not a hex digit", index + 1)
        }
        other => other.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_says_what_is_wrong() {
        assert_eq!(to_hex(&[0x00, 0xff, 0x7f, 0xa0]), "00ff7fa0");
        assert_eq!(from_hex("00 FF\n7f a0"), Ok(vec![0x00, 0xff, 0x7f, 0xa0]));
        assert_eq!(from_hex(""), Ok(vec![]));
        assert_eq!(from_hex("abc").unwrap_err(), "odd number of hex digits (3)");
        assert_eq!(
            from_hex("0g").unwrap_err(),
            "'g' (hex digit 2) is not a hex digit"
        );
        assert!(from_hex("+f").is_err());
    }
}
