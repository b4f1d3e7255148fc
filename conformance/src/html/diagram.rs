//! The sequence diagram of a recorded exchange: two lifelines (the harness and the subject),
//! one arrow per frame (plugin mode) or per driver line and agent report (host mode), each with
//! its time, channel, length and decoded meaning, and the arrows that break a rule marked.
//!
//! Plugin mode decodes both directions with the codec's tracer ([`crate::inspect::trace_replay`]):
//! an arrow's meaning is the announcement (HS-1), an RPC request or response with its method
//! and `Seq` (RPC-2, RPC-4), a close (STREAM-8), data, or malformed bytes (FRAME-1). A
//! violation the tracer finds in the subject's output, or the byte offset the failure names
//! (`at byte N of the plugin's output`), marks the arrow; the harness's own violations (cases
//! that send malformed input on purpose) are marked as deliberate. When no arrow carries the
//! failure (something expected never came), a last note on the diagram says what was expected.
//!
//! Long exchanges fold: a run of rows repeating with a period of one to three rows (a flood of
//! data frames, calls answered one after the other) shows its first and last period and one
//! fold in between, and an exchange still longer than [`MAX_ROWS`] rows keeps its start, its
//! end and the rows around marked arrows. The folded arrows are listed under the diagram.

use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::{Note, Violation, What};
use serde_json::Value;

use crate::inspect::trace_replay;
use crate::transcript::{EventKind, ReplayFile};

/// A run folds when its rows repeat at least this many times.
pub const MIN_PERIODS: usize = 4;
/// Longest period (in rows) of a repeating run that folds.
pub const MAX_PERIOD: usize = 3;
/// Rows a diagram draws at most, folds included; beyond, the middle is folded.
pub const MAX_ROWS: usize = 300;
/// Rows kept at the start of a diagram folded for length.
const HEAD_ROWS: usize = 150;
/// Rows kept at its end.
const TAIL_ROWS: usize = 100;
/// Rows kept on each side of a marked arrow.
const AROUND_MARKED: usize = 2;
/// Folded arrows listed under a diagram at most.
pub const MAX_LISTED: usize = 1000;
/// Characters of an arrow's label drawn; the whole text is its tooltip.
const LABEL_CHARS: usize = 96;

/// The width of the drawing, in SVG units.
pub const WIDTH: i32 = 1000;
/// The harness's lifeline.
pub const X_HARNESS: i32 = 190;
/// The subject's lifeline.
pub const X_SUBJECT: i32 = 870;
const TOP: i32 = 58;
const ARROW_H: i32 = 46;
const NOTE_H: i32 = 30;
const FOLD_H: i32 = 36;
const BOTTOM: i32 = 16;

/// How an arrow is marked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mark {
    /// It breaks no rule.
    None,
    /// The subject broke this rule with it: requirement id and what happened.
    Violation(String, String),
    /// The harness broke this rule on purpose (the case sends malformed input).
    Deliberate(String, String),
}

/// One arrow: a frame, a driver line or an agent report.
#[derive(Debug, Clone)]
pub struct Arrow {
    /// From the harness to the subject (else the other way).
    pub from_harness: bool,
    /// Microseconds since the launch.
    pub t_us: u64,
    /// The stream (`stream 2`), `driver` or `agent N`; `—` for bytes that are no frame.
    pub channel: String,
    /// The payload or line length (`79 B`); empty when unknown.
    pub length: String,
    /// What it means: `announcement`, `request`, `response`, `close`, `data`, `control`,
    /// `malformed`, or for host cases `driver` and `agent`.
    pub kind: &'static str,
    /// The decoded meaning, in words.
    pub meaning: String,
    /// What makes two arrows alike for folding (times and `Seq` left out).
    shape: String,
    /// Whether it breaks a rule.
    pub mark: Mark,
}

impl Arrow {
    /// `harness → subject` or `subject → harness`, with the subject's word.
    pub fn direction(&self, subject: &str) -> String {
        if self.from_harness {
            format!("harness → {subject}")
        } else {
            format!("{subject} → harness")
        }
    }

    /// The time in milliseconds, three decimals.
    pub fn time(&self) -> String {
        ms(self.t_us)
    }

    /// The whole label: meaning, and the mark's rule.
    pub fn label(&self) -> String {
        match &self.mark {
            Mark::None => self.meaning.clone(),
            Mark::Violation(id, text) => format!("{} ✗ {id}: {text}", self.meaning),
            Mark::Deliberate(id, text) => format!("{} (on purpose, {id}: {text})", self.meaning),
        }
    }

    /// The label as drawn: the meaning and the rule's id, cut to what fits between the
    /// lifelines (the whole label is the tooltip and in the folded list).
    pub fn short_label(&self) -> String {
        cut(&match &self.mark {
            Mark::None => self.meaning.clone(),
            Mark::Violation(id, _) => format!("✗ {id}: {}", self.meaning),
            Mark::Deliberate(id, _) => format!("(breaks {id} on purpose) {}", self.meaning),
        })
    }

    /// Whether the subject broke a rule with it.
    pub fn is_violation(&self) -> bool {
        matches!(self.mark, Mark::Violation(..))
    }

    /// Whether the harness broke a rule with it on purpose.
    pub fn is_deliberate(&self) -> bool {
        matches!(self.mark, Mark::Deliberate(..))
    }

    /// Where the line starts.
    pub fn start_x(&self) -> i32 {
        if self.from_harness {
            X_HARNESS
        } else {
            X_SUBJECT
        }
    }

    /// Where the arrowhead's tip is.
    pub fn tip_x(&self) -> i32 {
        if self.from_harness {
            X_SUBJECT - 1
        } else {
            X_HARNESS + 1
        }
    }

    /// Where the arrowhead's base is.
    pub fn base_x(&self) -> i32 {
        if self.from_harness {
            self.tip_x() - 11
        } else {
            self.tip_x() + 11
        }
    }

    /// The small line under the arrow: channel and length.
    pub fn meta(&self) -> String {
        if self.length.is_empty() {
            self.channel.clone()
        } else {
            format!("{} · {}", self.channel, self.length)
        }
    }
}

/// An event on one lifeline: a pipe closed, the end of output, an exit, an order to an agent.
#[derive(Debug, Clone)]
pub struct Event {
    /// On the harness's lifeline (else the subject's).
    pub on_harness: bool,
    /// Microseconds since the launch.
    pub t_us: u64,
    /// What happened.
    pub text: String,
}

impl Event {
    /// The time in milliseconds, three decimals.
    pub fn time(&self) -> String {
        ms(self.t_us)
    }
}

/// One row of a diagram.
#[derive(Debug, Clone)]
pub enum Row {
    /// An arrow.
    Arrow(Arrow),
    /// An event.
    Event(Event),
    /// Folded rows.
    Fold(Fold),
}

/// Rows folded into one.
#[derive(Debug, Clone)]
pub struct Fold {
    /// Arrows folded.
    pub arrows: usize,
    /// Events folded.
    pub events: usize,
    /// In words.
    pub text: String,
    /// The first folded arrow's index in [`Diagram::folded`].
    pub first_listed: usize,
}

/// A row placed on the drawing.
#[derive(Debug, Clone)]
pub struct Placed {
    /// The row.
    pub row: Row,
    /// Its top.
    pub y: i32,
}

impl Placed {
    /// The arrow's line.
    pub fn line_y(&self) -> i32 {
        self.y + 24
    }
}

/// A sequence diagram, laid out.
#[derive(Debug, Clone)]
pub struct Diagram {
    /// A prefix for ids in the page (`d3`).
    pub id: String,
    /// `plugin` or `host`.
    pub subject: String,
    /// The harness's lifeline's title.
    pub harness_title: String,
    /// The subject's lifeline's title.
    pub subject_title: String,
    /// The rows, placed.
    pub rows: Vec<Placed>,
    /// Every arrow of the exchange, drawn or folded.
    pub arrows: usize,
    /// The arrows drawn.
    pub drawn: usize,
    /// The folded arrows, in order (at most [`MAX_LISTED`]).
    pub folded: Vec<Arrow>,
    /// Folded arrows not listed.
    pub unlisted: usize,
    /// The failure, in lines, when no arrow carries it (something expected never came, or
    /// came wrong in a way no single frame shows): the diagram's last note.
    pub missing: Vec<String>,
    /// Where the note of [`Diagram::missing`] goes.
    pub missing_y: i32,
    /// The drawing's height.
    pub height: i32,
}

impl Diagram {
    /// The drawing's width.
    pub fn width(&self) -> i32 {
        WIDTH
    }

    /// The harness's lifeline.
    pub fn x_harness(&self) -> i32 {
        X_HARNESS
    }

    /// The subject's lifeline.
    pub fn x_subject(&self) -> i32 {
        X_SUBJECT
    }

    /// The middle between the lifelines.
    pub fn x_middle(&self) -> i32 {
        (X_HARNESS + X_SUBJECT) / 2
    }

    /// The height of the lifelines.
    pub fn lifeline_end(&self) -> i32 {
        self.height - BOTTOM
    }

    /// Arrows folded.
    pub fn folded_count(&self) -> usize {
        self.arrows - self.drawn
    }

    /// The height of the note of [`Diagram::missing`].
    pub fn missing_height(&self) -> i32 {
        missing_height(self.missing.len())
    }

    /// The `y` of line `i` of the missing note.
    pub fn missing_line_y(&self, i: &usize) -> i32 {
        self.missing_y + 22 + 16 * *i as i32
    }
}

fn missing_height(lines: usize) -> i32 {
    if lines == 0 {
        0
    } else {
        16 + 16 * lines as i32
    }
}

/// `text` in lines that fit the drawing (at most three).
fn wrap(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for word in text.split_whitespace() {
        let last = lines.last_mut().expect("one line at least");
        if !last.is_empty() && last.chars().count() + word.chars().count() >= LABEL_CHARS + 10 {
            lines.push(word.to_string());
        } else {
            if !last.is_empty() {
                last.push(' ');
            }
            last.push_str(word);
        }
    }
    if lines.len() > 3 {
        lines.truncate(3);
        lines[2] = cut(&format!("{} …", lines[2]));
    }
    lines
}

/// What a diagram is about: the failure it shows.
#[derive(Debug, Clone, Default)]
pub struct Failure<'a> {
    /// The requirement the failure names (its reason's `ID:`), if any.
    pub requirement: Option<&'a str>,
    /// What was expected.
    pub expected: &'a str,
    /// What happened.
    pub got: &'a str,
    /// The one-line reason.
    pub reason: &'a str,
}

/// The diagram of a recorded exchange, with the arrows that carry `failure` marked.
pub fn diagram(id: &str, file: &ReplayFile, failure: &Failure<'_>) -> Diagram {
    let host_mode = file.mode == "host";
    let mut rows = if host_mode {
        host_rows(file)
    } else {
        plugin_rows(file, failure)
    };
    let carried = rows.iter().any(|r| {
        matches!(r, Row::Arrow(Arrow { mark: Mark::Violation(req, _), .. })
            if failure.requirement.is_none_or(|f| f == req))
    });
    let missing = (!carried).then(|| {
        let mut text = if failure.got.is_empty() {
            failure.reason.to_string()
        } else {
            match failure.requirement {
                Some(id) => format!("{id}: {}", failure.got),
                None => failure.got.to_string(),
            }
        };
        if !failure.expected.is_empty() {
            text = format!("{text} (expected: {})", failure.expected);
        }
        text
    });
    let arrows = rows.iter().filter(|r| matches!(r, Row::Arrow(_))).count();
    let mut folded = Vec::new();
    let mut unlisted = 0;
    rows = fold_runs(rows, &mut folded, &mut unlisted);
    rows = fold_length(rows, &mut folded, &mut unlisted);
    let drawn = rows.iter().filter(|r| matches!(r, Row::Arrow(_))).count();
    let mut y = TOP;
    let placed: Vec<Placed> = rows
        .into_iter()
        .map(|row| {
            let at = y;
            y += match row {
                Row::Arrow(_) => ARROW_H,
                Row::Event(_) => NOTE_H,
                Row::Fold(_) => FOLD_H,
            };
            Placed { row, y: at }
        })
        .collect();
    let missing = missing.map_or_else(Vec::new, |text| wrap(&format!("✗ {text}")));
    let missing_y = y;
    y += missing_height(missing.len()) + 8;
    let subject = if host_mode { "host" } else { "plugin" };
    Diagram {
        id: id.to_string(),
        subject: subject.to_string(),
        harness_title: if host_mode {
            "harness (driver client, agents)".into()
        } else {
            "harness (as the host)".into()
        },
        subject_title: if host_mode {
            "host under test".into()
        } else {
            "plugin under test".into()
        },
        rows: placed,
        arrows,
        drawn,
        folded,
        unlisted,
        missing,
        missing_y,
        height: y + BOTTOM,
    }
}

fn ms(t_us: u64) -> String {
    format!("{:.3} ms", t_us as f64 / 1000.0)
}

/// When folded rows happened: `at T`, or `from T to T'`.
fn span((first, last): (u64, u64)) -> String {
    if first >= last {
        format!("at {}", ms(first))
    } else {
        format!("from {} to {}", ms(first), ms(last))
    }
}

/// The label cut to what fits between the lifelines.
pub fn cut(text: &str) -> String {
    if text.chars().count() <= LABEL_CHARS {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(LABEL_CHARS - 1).collect();
        s.push('…');
        s
    }
}

/// The byte offset a failure names in the plugin's output (`at byte N of the plugin's output`).
fn failing_offset(text: &str) -> Option<u64> {
    let at = text.find("at byte ")?;
    let rest = &text[at + "at byte ".len()..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    rest[digits.len()..]
        .starts_with(" of the plugin's output")
        .then(|| digits.parse().ok())
        .flatten()
}

/// The notes one entry's bytes completed, grouped by offset: one group per frame (or per
/// malformed spot). The tracer reports a frame's notes one after the other.
fn groups(notes: Vec<Note>) -> Vec<(u64, Vec<What>)> {
    let mut out: Vec<(u64, Vec<What>)> = Vec::new();
    for n in notes {
        if matches!(n.what, What::End) {
            continue;
        }
        match out.last_mut() {
            Some((offset, whats)) if *offset == n.offset => whats.push(n.what),
            _ => out.push((n.offset, vec![n.what])),
        }
    }
    out
}

fn plugin_rows(file: &ReplayFile, failure: &Failure<'_>) -> Vec<Row> {
    let traced = trace_replay(file);
    let failing_at = failing_offset(failure.got);
    let mut rows: Vec<Option<Row>> = Vec::new();
    // Violations found before their frame was whole (FRAME-9 at the header), by sender and
    // offset: the row that holds them until the frame comes.
    let mut early: Vec<(Role, u64, usize)> = Vec::new();
    for t in traced.entries {
        let e = t.entry;
        let from_harness = t.sender == Role::Host;
        for (offset, whats) in groups(t.notes) {
            let mut arrow = frame_arrow(from_harness, e.t_us, &whats);
            if arrow.kind != "malformed" {
                if let Some(i) = early
                    .iter()
                    .position(|(r, o, _)| *r == t.sender && *o == offset)
                {
                    let (_, _, row) = early.remove(i);
                    if let Some(Row::Arrow(before)) = rows[row].take() {
                        if arrow.mark == Mark::None {
                            arrow.mark = before.mark;
                        }
                    }
                }
            } else if whats
                .iter()
                .all(|w| matches!(w, What::Violation(v) if v.requirement == "FRAME-9"))
            {
                early.push((t.sender, offset, rows.len()));
            }
            if !from_harness && failing_at == Some(offset) && arrow.mark == Mark::None {
                arrow.mark = Mark::Violation(
                    failure.requirement.unwrap_or("").to_string(),
                    failure.got.to_string(),
                );
            }
            rows.push(Some(Row::Arrow(arrow)));
        }
        let event = match e.event {
            EventKind::ClosedInput => Some((true, "closes its pipe to the plugin".to_string())),
            EventKind::Eof => Some((false, "closes its output (end of file)".to_string())),
            EventKind::Exit => Some((
                false,
                e.exit
                    .as_ref()
                    .map_or("ended".to_string(), |x| x.to_string()),
            )),
            _ => None,
        };
        if let Some((on_harness, text)) = event {
            rows.push(Some(Row::Event(Event {
                on_harness,
                t_us: e.t_us,
                text,
            })));
        }
    }
    rows.into_iter().flatten().collect()
}

fn frame_arrow(from_harness: bool, t_us: u64, whats: &[What]) -> Arrow {
    let mut channel = "—".to_string();
    let mut length = String::new();
    let mut kind = "malformed";
    let mut meanings: Vec<String> = Vec::new();
    let mut shape = String::new();
    let mut preview = String::new();
    let mut violations: Vec<&Violation> = Vec::new();
    for w in whats {
        match w {
            What::Frame {
                stream_id,
                len,
                preview: p,
                ..
            } => {
                channel = format!("stream {stream_id}");
                length = format!("{len} B");
                kind = if stream_id.is_control() {
                    "control"
                } else {
                    "data"
                };
                preview = p.clone();
                shape = format!("{stream_id}");
            }
            What::Announcement { hooks } => {
                kind = "announcement";
                meanings.push(format!("announcement: hooks stream {hooks}"));
            }
            What::Close { stream_id } => {
                kind = "close";
                meanings.push(format!("close of stream {stream_id}"));
            }
            What::Request {
                seq,
                service_method,
                args,
                ..
            } => {
                kind = "request";
                meanings.push(format!("request Seq {seq} {service_method}({args})"));
                shape.push_str(&format!(" req {service_method}"));
            }
            What::Response {
                seq,
                service_method,
                error,
                body,
                ..
            } => {
                kind = "response";
                meanings.push(if error.is_empty() {
                    format!("response Seq {seq} {service_method} → {body}")
                } else {
                    format!("response Seq {seq} {service_method} → error {error:?}")
                });
                shape.push_str(&format!(" resp {service_method}"));
            }
            What::Violation(v) => violations.push(v),
            What::End => {}
        }
    }
    let meaning = if !meanings.is_empty() {
        meanings.join("; ")
    } else {
        match kind {
            "malformed" => format!(
                "malformed bytes: {}",
                violations.first().map_or("", |v| v.text.as_str())
            ),
            "control" => format!("stream 0: {preview}"),
            _ => format!("data: {preview}"),
        }
    };
    let mark = match violations.first() {
        None => Mark::None,
        Some(v) if from_harness => Mark::Deliberate(v.requirement.to_string(), v.text.clone()),
        Some(v) => Mark::Violation(v.requirement.to_string(), v.text.clone()),
    };
    Arrow {
        from_harness,
        t_us,
        channel,
        length,
        kind,
        meaning,
        shape: format!("{from_harness} {kind} {shape}"),
        mark,
    }
}

/// A compact rendering of a JSON line's fields (long strings cut).
fn fields(v: &Value, skip: &[&str]) -> String {
    let Some(map) = v.as_object() else {
        return v.to_string();
    };
    map.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| {
            let shown = match v {
                Value::String(s) if s.chars().count() > 40 => {
                    format!("{:?}…", s.chars().take(40).collect::<String>())
                }
                Value::String(s) => format!("{s:?}"),
                Value::Array(a) if a.len() > 4 => format!("[{} items]", a.len()),
                Value::Object(o) if o.len() > 4 => format!("{{{} fields}}", o.len()),
                other => other.to_string(),
            };
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn host_rows(file: &ReplayFile) -> Vec<Row> {
    let mut rows = Vec::new();
    for e in &file.exchange {
        let line = e.line.as_deref().unwrap_or("");
        let json: Option<Value> = serde_json::from_str(line).ok();
        let length = format!("{} B", line.len());
        let arrow = |from_harness, channel: String, kind, meaning: String, shape: String| Arrow {
            from_harness,
            t_us: e.t_us,
            channel,
            length: length.clone(),
            kind,
            meaning,
            shape: format!("{from_harness} {shape}"),
            mark: Mark::None,
        };
        let row = match (e.event, &json) {
            (EventKind::ToDriver, Some(v)) => {
                let cmd = v["cmd"].as_str().unwrap_or("?");
                Row::Arrow(arrow(
                    true,
                    "driver".into(),
                    "driver",
                    format!("{cmd} {}", fields(v, &["cmd"])),
                    format!("to {cmd}"),
                ))
            }
            (EventKind::FromDriver, Some(v)) => {
                let (meaning, shape) = match v["event"].as_str() {
                    Some(ev) => (
                        format!("event {ev} {}", fields(v, &["event"])),
                        format!("event {ev}"),
                    ),
                    None => (
                        format!("reply {}", fields(v, &[])),
                        format!("reply {}", v["ok"]),
                    ),
                };
                Row::Arrow(arrow(false, "driver".into(), "driver", meaning, shape))
            }
            (EventKind::Agent, _) => {
                let n = e.launch.unwrap_or(0);
                match (line.strip_prefix("order: "), &json) {
                    (Some(order), _) => Row::Event(Event {
                        on_harness: true,
                        t_us: e.t_us,
                        text: format!("orders agent {n}: {order}"),
                    }),
                    (None, Some(v)) => agent_row(e.t_us, n, v, &arrow),
                    (None, None) => Row::Event(Event {
                        on_harness: true,
                        t_us: e.t_us,
                        text: format!("agent {n}: {line}"),
                    }),
                }
            }
            (EventKind::ToDriver | EventKind::FromDriver, None) => Row::Arrow(arrow(
                e.event == EventKind::ToDriver,
                "driver".into(),
                "driver",
                format!("(not JSON) {line}"),
                "raw".into(),
            )),
            (EventKind::ClosedInput, _) => Row::Event(Event {
                on_harness: true,
                t_us: e.t_us,
                text: "closes its pipe".into(),
            }),
            (EventKind::Eof, _) => Row::Event(Event {
                on_harness: false,
                t_us: e.t_us,
                text: "closes its output (end of file)".into(),
            }),
            (EventKind::Exit, _) => Row::Event(Event {
                on_harness: false,
                t_us: e.t_us,
                text: e
                    .exit
                    .as_ref()
                    .map_or("ended".to_string(), |x| x.to_string()),
            }),
            (EventKind::Sent | EventKind::Received, _) => Row::Event(Event {
                on_harness: e.event == EventKind::Sent,
                t_us: e.t_us,
                text: format!(
                    "{} raw byte(s)",
                    e.hex.as_deref().map_or(0, |h| h.len() / 2)
                ),
            }),
        };
        rows.push(row);
    }
    rows
}

/// An agent's report: what the host did to the agent (an arrow from the host), what the agent
/// did to the host (an arrow to it), or the agent's own news (an event).
fn agent_row(
    t_us: u64,
    n: usize,
    v: &Value,
    arrow: &dyn Fn(bool, String, &'static str, String, String) -> Arrow,
) -> Row {
    let ev = v["event"].as_str().unwrap_or("?");
    let channel = format!("agent {n}");
    let from_host =
        |meaning: String| Row::Arrow(arrow(false, channel.clone(), "agent", meaning, ev.into()));
    match ev {
        "hello" => from_host(format!(
            "launches agent {n} (pid {}, args {})",
            v["pid"], v["args"]
        )),
        "request" => from_host(format!(
            "request Seq {} {} {}",
            v["seq"],
            v["method"].as_str().unwrap_or("?"),
            fields(v, &["event", "seq", "method"])
        )),
        "config" | "api_response" | "eof" | "closed" | "connection_error" => {
            from_host(format!("{ev} {}", fields(v, &["event"])))
        }
        "violation" => {
            let requirement = v["requirement"].as_str().unwrap_or("").to_string();
            let text = v["text"].as_str().unwrap_or("").to_string();
            let mut a = arrow(
                false,
                channel.clone(),
                "agent",
                format!("what the host wrote at byte {}", v["offset"]),
                "violation".into(),
            );
            a.mark = Mark::Violation(requirement, text);
            Row::Arrow(a)
        }
        "announced" => Row::Arrow(arrow(
            true,
            channel.clone(),
            "announcement",
            format!("agent {n}: announcement: hooks stream {}", v["hooks"]),
            ev.into(),
        )),
        "flooded" => Row::Arrow(arrow(
            true,
            channel.clone(),
            "agent",
            format!("agent {n}: {ev} {}", fields(v, &["event"])),
            ev.into(),
        )),
        _ => Row::Event(Event {
            on_harness: true,
            t_us,
            text: format!("agent {n}: {ev} {}", fields(v, &["event"])),
        }),
    }
}

/// The shape of a row for folding; `None`: never folded (events, marked arrows).
fn shape(row: &Row) -> Option<&str> {
    match row {
        Row::Arrow(a) if a.mark == Mark::None => Some(&a.shape),
        _ => None,
    }
}

fn list(arrow: Arrow, folded: &mut Vec<Arrow>, unlisted: &mut usize) {
    if folded.len() < MAX_LISTED {
        folded.push(arrow);
    } else {
        *unlisted += 1;
    }
}

/// Folds runs of rows that repeat with a period of 1 to [`MAX_PERIOD`] rows, at least
/// [`MIN_PERIODS`] times: the first and last period stay, the rest is one fold.
fn fold_runs(rows: Vec<Row>, folded: &mut Vec<Arrow>, unlisted: &mut usize) -> Vec<Row> {
    let shapes: Vec<Option<String>> = rows.iter().map(|r| shape(r).map(String::from)).collect();
    let n = rows.len();
    // (start, period, periods) of every run that folds.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let mut best: Option<(usize, usize)> = None;
        for p in 1..=MAX_PERIOD {
            if i + p > n || shapes[i..i + p].iter().any(Option::is_none) {
                break;
            }
            let mut j = i + p;
            while j < n && shapes[j].is_some() && shapes[j] == shapes[j - p] {
                j += 1;
            }
            let periods = (j - i) / p;
            if periods >= MIN_PERIODS && best.is_none_or(|(_, bp)| periods * p > bp) {
                best = Some((p, periods * p));
            }
        }
        match best {
            Some((p, len)) => {
                runs.push((i, p, len / p));
                i += len;
            }
            None => i += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut rows = rows.into_iter().enumerate().peekable();
    for (start, p, periods) in runs {
        while rows.peek().is_some_and(|(k, _)| *k < start + p) {
            out.push(rows.next().expect("peeked").1);
        }
        let hidden = (periods - 2) * p;
        let first_listed = folded.len() + *unlisted;
        let mut times = (u64::MAX, 0);
        for _ in 0..hidden {
            if let Some((_, Row::Arrow(a))) = rows.next() {
                times = (times.0.min(a.t_us), times.1.max(a.t_us));
                list(a, folded, unlisted);
            }
        }
        let what = if p == 1 {
            "the arrow above, repeated".to_string()
        } else {
            format!("the {p} arrows above, repeated {} more times", hidden / p)
        };
        out.push(Row::Fold(Fold {
            arrows: hidden,
            events: 0,
            text: format!("⋮ {hidden} arrows folded: {what}, {}", span(times)),
            first_listed,
        }));
    }
    out.extend(rows.map(|(_, r)| r));
    out
}

/// Folds the middle of a diagram longer than [`MAX_ROWS`] rows, keeping its start, its end
/// and the rows around every marked arrow.
fn fold_length(rows: Vec<Row>, folded: &mut Vec<Arrow>, unlisted: &mut usize) -> Vec<Row> {
    let n = rows.len();
    if n <= MAX_ROWS {
        return rows;
    }
    let mut keep = vec![false; n];
    for (i, k) in keep.iter_mut().enumerate() {
        *k = i < HEAD_ROWS || i >= n - TAIL_ROWS;
    }
    for (i, r) in rows.iter().enumerate() {
        if matches!(r, Row::Arrow(a) if a.mark != Mark::None) {
            for k in &mut keep[i.saturating_sub(AROUND_MARKED)..(i + AROUND_MARKED + 1).min(n)] {
                *k = true;
            }
        }
    }
    let mut out = Vec::new();
    let mut gap: Option<(Fold, (u64, u64))> = None;
    for (row, kept) in rows.into_iter().zip(keep) {
        if kept {
            if let Some((fold, _)) = gap.take() {
                out.push(Row::Fold(fold));
            }
            out.push(row);
            continue;
        }
        let (fold, times) = gap.get_or_insert_with(|| {
            (
                Fold {
                    arrows: 0,
                    events: 0,
                    text: String::new(),
                    first_listed: folded.len() + *unlisted,
                },
                (u64::MAX, 0),
            )
        });
        match row {
            Row::Arrow(a) => {
                fold.arrows += 1;
                *times = (times.0.min(a.t_us), times.1.max(a.t_us));
                list(a, folded, unlisted);
            }
            Row::Event(e) => {
                fold.events += 1;
                *times = (times.0.min(e.t_us), times.1.max(e.t_us));
            }
            Row::Fold(f) => {
                fold.arrows += f.arrows;
                fold.events += f.events;
            }
        }
        fold.text = format!(
            "⋮ {} arrows and {} events folded to keep the diagram short, {}",
            fold.arrows,
            fold.events,
            span(*times)
        );
    }
    if let Some((fold, _)) = gap {
        out.push(Row::Fold(fold));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(shape: &str, marked: bool) -> Row {
        Row::Arrow(Arrow {
            from_harness: true,
            t_us: 1,
            channel: "stream 2".into(),
            length: "3 B".into(),
            kind: "data",
            meaning: shape.into(),
            shape: shape.into(),
            mark: if marked {
                Mark::Violation("X-1".into(), "bad".into())
            } else {
                Mark::None
            },
        })
    }

    fn count(rows: &[Row]) -> (usize, usize) {
        let drawn = rows.iter().filter(|r| matches!(r, Row::Arrow(_))).count();
        let folded = rows
            .iter()
            .map(|r| match r {
                Row::Fold(f) => f.arrows,
                _ => 0,
            })
            .sum();
        (drawn, folded)
    }

    #[test]
    fn runs_fold_keeping_their_first_and_last_period() {
        let mut rows = vec![arrow("a", false)];
        for _ in 0..10 {
            rows.push(arrow("req", false));
            rows.push(arrow("resp", false));
        }
        rows.push(arrow("z", false));
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = fold_runs(rows, &mut folded, &mut unlisted);
        // a, req, resp, [16 folded], req, resp, z
        assert_eq!(out.len(), 7);
        assert_eq!(count(&out), (6, 16));
        assert_eq!(folded.len(), 16);
        assert!(
            matches!(&out[3], Row::Fold(f) if f.text.contains("the 2 arrows above, repeated 8 more times"))
        );
    }

    #[test]
    fn a_marked_arrow_is_never_folded_and_short_runs_stay() {
        let mut rows: Vec<Row> = (0..3).map(|_| arrow("d", false)).collect();
        rows.push(arrow("d", true));
        rows.extend((0..3).map(|_| arrow("d", false)));
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = fold_runs(rows, &mut folded, &mut unlisted);
        assert_eq!(count(&out), (7, 0));
    }

    #[test]
    fn long_diagrams_fold_their_middle_but_not_marked_arrows() {
        let mut rows: Vec<Row> = (0..1000).map(|i| arrow(&format!("s{i}"), false)).collect();
        rows[500] = arrow("bad", true);
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = fold_length(rows, &mut folded, &mut unlisted);
        let (drawn, hidden) = count(&out);
        assert_eq!(drawn + hidden, 1000);
        assert_eq!(drawn, HEAD_ROWS + TAIL_ROWS + 2 * AROUND_MARKED + 1);
        assert!(out.len() <= MAX_ROWS);
        assert!(out
            .iter()
            .any(|r| matches!(r, Row::Arrow(a) if a.mark != Mark::None)));
    }

    #[test]
    fn the_failing_offset_is_read_from_the_failure() {
        assert_eq!(
            failing_offset("at byte 108 of the plugin's output: a response"),
            Some(108)
        );
        assert_eq!(failing_offset("at byte 3 of the host's output"), None);
    }
}
