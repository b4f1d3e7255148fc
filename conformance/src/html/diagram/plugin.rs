//! Plugin mode: the arrows of a replay file's bytes, both directions decoded by the codec's
//! tracer ([`crate::inspect::trace_replay`]): one per frame, with the announcement (HS-1), RPC
//! requests and responses (RPC-2, RPC-4), closes (STREAM-8) and malformed bytes (FRAME-1), the
//! subject's violations and the failure's `at byte N` marked, the harness's own as deliberate.

use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::{Note, Violation, What};

use super::{Arrow, Event, Failure, Mark, Row};
use crate::inspect::trace_replay;
use crate::transcript::{EventKind, ReplayFile};
use rpcplugin_codec::req;

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

/// The rows of a plugin case's exchange.
pub(super) fn rows(file: &ReplayFile, failure: &Failure<'_>) -> Vec<Row> {
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
                .all(|w| matches!(w, What::Violation(v) if v.requirement == req!("FRAME-9")))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_failing_offset_is_read_from_the_failure() {
        assert_eq!(
            failing_offset("at byte 108 of the plugin's output: a response"),
            Some(108)
        );
        assert_eq!(failing_offset("at byte 3 of the host's output"), None);
    }
}
