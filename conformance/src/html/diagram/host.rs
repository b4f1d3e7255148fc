//! Host mode: a host case records no bytes, but the lines of the driver contract (spec 07
//! section 7.2) and the reports of the harness's agents: an arrow per driver command, reply and
//! event, and per agent report of something the host did to the agent or the agent to the
//! host (its announcement, HS-1; the host's requests, RPC-2; a violation the agent observed,
//! marked); the rest are events on a lifeline.

use serde_json::Value;

use super::{Arrow, Event, Mark, Row};
use crate::transcript::{EventKind, ReplayFile};

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

/// The rows of a host case's exchange.
pub(super) fn rows(file: &ReplayFile) -> Vec<Row> {
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
