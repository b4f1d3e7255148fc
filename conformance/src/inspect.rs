//! `rpcplugin-conformance inspect`: decodes a raw capture of one direction of a connection, or
//! both directions of a replay file, into annotated frames, the announcement and RPC calls,
//! with the codec's tracer ([`rpcplugin_codec::trace`]). Malformed bytes and broken sender rules
//! are pointed at with their offset and the requirement, whose text follows.

use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::{Note, Tracer, What};
use serde::Serialize;

use crate::transcript::{from_hex, Entry, EventKind, ReplayFile, REPLAY_SCHEMA};

/// One line of an inspection.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Microseconds since the launch (replay files only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_us: Option<u64>,
    /// `host` or `plugin`: whose output this is about; empty for events of the exchange.
    pub sender: &'static str,
    /// The byte offset in that sender's output.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// `frame`, `announcement`, `close`, `request`, `response`, `end`, `violation`, or an
    /// event of the exchange (`sent`, `received`, `closed_input`, `eof`, `exit`).
    pub kind: &'static str,
    /// The requirement broken (violations only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<&'static str>,
    /// What was found.
    pub text: String,
}

/// The result of an inspection.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// What was inspected.
    pub source: String,
    /// The lines, in order.
    pub lines: Vec<Line>,
    /// How many violations were found.
    pub violations: usize,
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Plugin => "plugin",
    }
}

fn kind(what: &What) -> &'static str {
    match what {
        What::Frame { .. } => "frame",
        What::Announcement { .. } => "announcement",
        What::Close { .. } => "close",
        What::Request { .. } => "request",
        What::Response { .. } => "response",
        What::End => "end",
        What::Violation(_) => "violation",
    }
}

fn line(t_us: Option<u64>, role: Role, n: Note) -> Line {
    let requirement = match &n.what {
        What::Violation(v) => Some(v.requirement),
        _ => None,
    };
    let text = match &n.what {
        What::Violation(v) => v.text.clone(),
        other => other.to_string(),
    };
    Line {
        t_us,
        sender: role_name(role),
        offset: Some(n.offset),
        kind: kind(&n.what),
        requirement,
        text,
    }
}

/// Inspects the bytes one endpoint (`sender`) wrote.
pub fn capture(source: &str, sender: Role, bytes: &[u8]) -> Inspection {
    let mut t = Tracer::new(sender);
    let mut notes = Vec::new();
    t.push(bytes, &mut notes);
    t.finish(&mut notes);
    let violations = t.violations();
    Inspection {
        source: format!(
            "{source} ({} bytes written by the {})",
            bytes.len(),
            role_name(sender)
        ),
        lines: notes.into_iter().map(|n| line(None, sender, n)).collect(),
        violations,
    }
}

/// The tracers' findings for one entry of a replay file's exchange.
#[derive(Debug, Clone)]
pub struct TracedEntry<'a> {
    /// The entry.
    pub entry: &'a Entry,
    /// The endpoint the entry is about: the host for what the harness sent or did, the
    /// plugin for what it read or saw the plugin do.
    pub sender: Role,
    /// What the bytes of this entry completed in their direction: frames, their meaning,
    /// violations, and at the plugin's end of output, the end.
    pub notes: Vec<Note>,
}

/// Both directions of a replay file, decoded in the order the harness saw them (plugin
/// mode: what the harness sent is host output).
#[derive(Debug, Clone)]
pub struct TracedExchange<'a> {
    /// One per entry of the exchange, in order.
    pub entries: Vec<TracedEntry<'a>>,
    /// How many violations the subject's direction has (the harness's own are on purpose).
    pub subject_violations: usize,
}

/// Decodes both directions of a replay file with the codec's tracer.
pub fn trace_replay(file: &ReplayFile) -> TracedExchange<'_> {
    let (sent_by, received_from) = (Role::Host, Role::Plugin);
    let mut sent = Tracer::new(sent_by);
    let mut received = Tracer::new(received_from);
    let mut entries = Vec::with_capacity(file.exchange.len());
    for e in &file.exchange {
        let bytes = from_hex(e.hex.as_deref().unwrap_or("")).unwrap_or_default();
        let mut notes = Vec::new();
        let sender = match e.event {
            EventKind::Sent => {
                sent.push(&bytes, &mut notes);
                sent_by
            }
            EventKind::Received => {
                received.push(&bytes, &mut notes);
                received_from
            }
            EventKind::Eof => {
                received.finish(&mut notes);
                received_from
            }
            EventKind::ClosedInput | EventKind::ToDriver | EventKind::FromDriver => sent_by,
            EventKind::Exit | EventKind::Agent => received_from,
        };
        entries.push(TracedEntry {
            entry: e,
            sender,
            notes,
        });
    }
    TracedExchange {
        entries,
        subject_violations: received.violations(),
    }
}

/// Inspects both directions of a replay file, in the order the harness saw them. In plugin
/// mode the harness was the host: what it sent is host output.
pub fn replay_file(source: &str, file: &ReplayFile) -> Inspection {
    let traced = trace_replay(file);
    let mut lines = Vec::new();
    for TracedEntry {
        entry: e,
        sender,
        notes,
    } in traced.entries
    {
        let t = Some(e.t_us);
        let bytes = from_hex(e.hex.as_deref().unwrap_or("")).map_or(0, |b| b.len());
        let event = match e.event {
            EventKind::Sent => format!("the harness wrote {bytes} byte(s)"),
            EventKind::Received => format!("the harness read {bytes} byte(s)"),
            EventKind::ClosedInput => "the harness closed its pipe".to_string(),
            EventKind::Eof => "the plugin closed its output".to_string(),
            EventKind::Exit => format!(
                "the plugin {}",
                e.exit
                    .as_ref()
                    .map_or("ended".to_string(), |x| x.to_string())
            ),
            EventKind::ToDriver => format!("> {}", e.line.as_deref().unwrap_or("")),
            EventKind::FromDriver => format!("< {}", e.line.as_deref().unwrap_or("")),
            EventKind::Agent => format!(
                "agent {}: {}",
                e.launch.unwrap_or(0),
                e.line.as_deref().unwrap_or("")
            ),
        };
        lines.push(Line {
            t_us: t,
            sender: "",
            offset: None,
            kind: match e.event {
                EventKind::Sent => "sent",
                EventKind::Received => "received",
                EventKind::ClosedInput => "closed_input",
                EventKind::Eof => "eof",
                EventKind::Exit => "exit",
                EventKind::ToDriver => "to_driver",
                EventKind::FromDriver => "from_driver",
                EventKind::Agent => "agent",
            },
            requirement: None,
            text: event,
        });
        lines.extend(notes.into_iter().map(|n| line(t, sender, n)));
    }
    Inspection {
        source: format!(
            "{source}: case {} ({}: {}), subject {}",
            file.case.id,
            file.verdict,
            file.reason,
            file.subject.join(" ")
        ),
        lines,
        // Only the subject's violations count: the harness breaks rules on purpose.
        violations: traced.subject_violations,
    }
}

/// Reads `path`: a replay file (JSON with the replay schema), hex text (with `hex`), or raw
/// bytes written by `sender`.
pub fn inspect_path(path: &std::path::Path, sender: Role, hex: bool) -> Result<Inspection, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let source = path.display().to_string();
    if bytes.first() == Some(&b'{') {
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&bytes) {
            if value.get("schema").and_then(|s| s.as_str()) == Some(REPLAY_SCHEMA) {
                let file = ReplayFile::read(path)?;
                return Ok(replay_file(&source, &file));
            }
        }
    }
    let bytes = if hex {
        let text = String::from_utf8(bytes)
            .map_err(|_| format!("{source} is not hex text (it is not UTF-8)"))?;
        from_hex(&text).map_err(|e| format!("{source}: {e}"))?
    } else {
        bytes
    };
    Ok(capture(&source, sender, &bytes))
}

impl Inspection {
    /// The human rendering: one line per finding; a violation is followed by the text of the
    /// requirement it breaks.
    pub fn human(&self) -> String {
        let mut out = format!("{}\n", self.source);
        for l in &self.lines {
            let time = l.t_us.map_or(String::new(), |t| {
                format!("{:>10.3} ms ", t as f64 / 1000.0)
            });
            let at = match (l.sender, l.offset) {
                ("", _) => "--".to_string(),
                (s, Some(o)) => format!("{s}@{o}"),
                (s, None) => s.to_string(),
            };
            match l.requirement {
                Some(id) => {
                    out.push_str(&format!("{time}{at:<12} VIOLATION {id}: {}\n", l.text));
                    out.push_str(&format!(
                        "{:width$}  {id}: {}\n",
                        "",
                        crate::requirements::text(id),
                        width = time.len() + 12
                    ));
                }
                None => out.push_str(&format!("{time}{at:<12} {}\n", l.text)),
            }
        }
        out.push_str(&format!("{} violation(s)\n", self.violations));
        out
    }

    /// The JSON rendering.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("an inspection serializes")
    }
}
