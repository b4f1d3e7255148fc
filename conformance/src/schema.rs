//! The JSON Schemas of the host driver contract (`spec/schemas/host-driver/`, spec 07 section
//! 7.2.5), embedded at compile time, and a validator for the part of JSON Schema they use:
//! `type` (one or a list), `const`, `enum`, `properties`, `required`, `additionalProperties:
//! false`, `minimum`, `maximum`, `minLength`, `items`, `uniqueItems` and `oneOf`.
//!
//! Every message a driver writes is validated before the harness uses it (a reply against the
//! schema of the command it answers, an event against its event's schema); a message that does
//! not validate is a harness error naming the message, the schema and the rule it breaks.

use serde_json::Value;

macro_rules! schemas {
    ($($name:literal),+ $(,)?) => {
        /// Every schema file: its name and its text.
        pub const SCHEMAS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../../spec/schemas/host-driver/", $name)))),+
        ];
    };
}

schemas!(
    "hello.command.json",
    "start.command.json",
    "activate.command.json",
    "deactivate.command.json",
    "stop.command.json",
    "status.command.json",
    "quit.command.json",
    "hello.reply.json",
    "start.reply.json",
    "activate.reply.json",
    "deactivate.reply.json",
    "stop.reply.json",
    "status.reply.json",
    "quit.reply.json",
    "error.reply.json",
    "started.event.json",
    "start_failed.event.json",
    "crashed.event.json",
    "restarted.event.json",
    "gave_up.event.json",
    "stopped.event.json",
);

/// The commands of `rpcplugin-host-driver/1`.
pub const COMMANDS: &[&str] = &[
    "hello",
    "start",
    "activate",
    "deactivate",
    "stop",
    "status",
    "quit",
];

/// The schema called `name` (`start.command.json`), parsed.
pub fn schema(name: &str) -> Option<Value> {
    SCHEMAS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| serde_json::from_str(text).expect("the spec's schemas are valid JSON"))
}

/// Checks `value` against the schema called `name`; the error says where and why it fails.
pub fn validate(name: &str, value: &Value) -> Result<(), String> {
    let schema = schema(name).ok_or_else(|| format!("no schema {name}"))?;
    check(&schema, value, "").map_err(|e| format!("{e} (schema {name})"))
}

/// Checks a reply to a `cmd` command: `error.reply.json` when `ok` is false.
pub fn validate_reply(cmd: &str, value: &Value) -> Result<(), String> {
    if value.get("ok") == Some(&Value::Bool(false)) {
        validate("error.reply.json", value)
    } else {
        validate(&format!("{cmd}.reply.json"), value)
    }
}

/// Checks an event message, by its `event` name.
pub fn validate_event(value: &Value) -> Result<(), String> {
    let name = value
        .get("event")
        .and_then(Value::as_str)
        .ok_or_else(|| "an event without a string \"event\" member".to_string())?;
    let file = format!("{name}.event.json");
    if schema(&file).is_none() {
        return Err(format!(
            "an event {name:?}, which rpcplugin-host-driver/1 does not define (section 7.2.4)"
        ));
    }
    validate(&file, value)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_ok(want: &str, v: &Value) -> bool {
    let got = type_name(v);
    want == got || (want == "number" && got == "integer")
}

fn at(path: &str) -> String {
    if path.is_empty() {
        "the message".to_string()
    } else {
        format!("member {path}")
    }
}

fn check(schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    let Some(s) = schema.as_object() else {
        return Ok(());
    };
    if let Some(t) = s.get("type") {
        let ok = match t {
            Value::String(t) => type_ok(t, v),
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(|t| type_ok(t, v)),
            _ => true,
        };
        if !ok {
            return Err(format!("{} is {}, not {t}", at(path), type_name(v)));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{} is {v}, not {c}", at(path)));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.contains(v) {
            return Err(format!(
                "{} is {v}, not one of {}",
                at(path),
                Value::Array(options.clone())
            ));
        }
    }
    if let (Some(min), Some(n)) = (s.get("minimum").and_then(Value::as_f64), v.as_f64()) {
        if n < min {
            return Err(format!("{} is {v}, below the minimum {min}", at(path)));
        }
    }
    if let (Some(max), Some(n)) = (s.get("maximum").and_then(Value::as_f64), v.as_f64()) {
        if n > max {
            return Err(format!("{} is {v}, above the maximum {max}", at(path)));
        }
    }
    if let (Some(min), Some(text)) = (s.get("minLength").and_then(Value::as_u64), v.as_str()) {
        if (text.chars().count() as u64) < min {
            return Err(format!("{} is shorter than {min} character(s)", at(path)));
        }
    }
    if let (Some(items), Some(list)) = (s.get("items"), v.as_array()) {
        for (i, item) in list.iter().enumerate() {
            check(items, item, &format!("{path}[{i}]"))?;
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, item) in list.iter().enumerate() {
                if list[..i].contains(item) {
                    return Err(format!("{} lists {item} twice", at(path)));
                }
            }
        }
    }
    if let Some(Value::Array(options)) = s.get("oneOf") {
        let matching = options.iter().filter(|o| check(o, v, path).is_ok()).count();
        if matching != 1 {
            return Err(format!(
                "{} is {v}, which matches {matching} of the {} allowed forms, not exactly one",
                at(path),
                options.len()
            ));
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = s.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return Err(format!("{} has no member {r:?}", at(path)));
                }
            }
        }
        for (k, value) in obj {
            let child = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            match props.and_then(|p| p.get(k)) {
                Some(sub) => check(sub, value, &child)?,
                None if s.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!(
                        "{} has a member {k:?} that the contract does not define",
                        at(path)
                    ))
                }
                None => {}
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_schema_parses_and_the_example_exchange_validates() {
        for (name, _) in SCHEMAS {
            assert!(schema(name).is_some(), "{name}");
        }
        validate("start.command.json", &json!({"id": 2, "cmd": "start", "plugin": "p1", "bundle": "/b", "start_timeout_ms": 3000})).unwrap();
        validate_reply(
            "stop",
            &json!({"id": 7, "ok": true, "exit": {"code": 0}, "killed": false}),
        )
        .unwrap();
        validate_reply(
            "stop",
            &json!({"id": 7, "ok": true, "exit": null, "killed": true}),
        )
        .unwrap();
        validate_reply(
            "activate",
            &json!({"id": 6, "ok": false, "error": "no plugin named nope"}),
        )
        .unwrap();
        validate_event(
            &json!({"event": "restarted", "plugin": "p1", "pid": 4730, "reactivated": true}),
        )
        .unwrap();
    }

    #[test]
    fn broken_messages_are_named_precisely() {
        let e =
            validate_reply("stop", &json!({"id": 7, "ok": true, "exit": {"code": 0}})).unwrap_err();
        assert!(e.contains("no member \"killed\""), "{e}");
        let e = validate_reply(
            "status",
            &json!({"id": 1, "ok": true, "state": "sleeping", "pid": 3}),
        )
        .unwrap_err();
        assert!(
            e.contains("member state is \"sleeping\", not one of"),
            "{e}"
        );
        let e = validate_reply("hello", &json!({"id": 1, "ok": true, "protocol": "rpcplugin-host-driver/1", "host": "h", "events": true, "honours": [], "extra": 1})).unwrap_err();
        assert!(e.contains("member \"extra\""), "{e}");
        let e =
            validate_reply("activate", &json!({"id": 1, "ok": false, "error": ""})).unwrap_err();
        assert!(e.contains("shorter"), "{e}");
        let e = validate_event(&json!({"event": "exploded", "plugin": "p1"})).unwrap_err();
        assert!(e.contains("does not define"), "{e}");
        let e = validate_reply(
            "stop",
            &json!({"id": 7, "ok": true, "exit": {"code": 1, "signal": "SIGKILL"}, "killed": true}),
        )
        .unwrap_err();
        assert!(e.contains("matches 0 of the 3 allowed forms"), "{e}");
    }
}
