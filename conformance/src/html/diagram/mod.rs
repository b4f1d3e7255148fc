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

mod fold;
mod host;
mod plugin;

pub use fold::{MAX_LISTED, MAX_PERIOD, MAX_ROWS, MIN_PERIODS};

use crate::transcript::ReplayFile;

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
        host::rows(file)
    } else {
        plugin::rows(file, failure)
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
    rows = fold::runs(rows, &mut folded, &mut unlisted);
    rows = fold::length(rows, &mut folded, &mut unlisted);
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
