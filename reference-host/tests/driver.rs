//! `rpcplugin-reference-host driver` end to end: the host driver contract
//! `rpcplugin-host-driver/1` of `spec/07-conformance.md` section 7.2 (DRV-1 to DRV-12), spoken
//! as JSON lines to the real binary, with the reference plugin and small shell plugins.
//!
//! Every line the driver writes is checked: one UTF-8 JSON object ending with a line feed,
//! valid against its schema in `spec/schemas/host-driver/` (replies by the command they answer,
//! events by their name, with the small validator below), and exactly one reply per command.
//! The commands the tests send are checked against their schemas too.
//!
//! Then one test per deliberately broken host (`--mutant`), showing that it misbehaves.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::fixtures;
use rpcplugin_test_support::procs::{assert_no_process_left, kill9, kill_all_left, process_state};
use serde_json::{json, Value};

const DRIVER: &str = env!("CARGO_BIN_EXE_rpcplugin-reference-host");
const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// How long a test waits for something that should happen (generous: the machine is shared).
const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// A validator for the subset of JSON Schema (draft 2020-12) that the contract's schemas use.

/// Checks `v` against `schema`; the error names the path and the rule broken. Keywords outside
/// the subset make the check fail, so that a schema that grows one is not half checked.
fn validate(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let Value::Object(s) = schema else {
        return Err(format!("{at}: the schema is not an object"));
    };
    for key in s.keys() {
        let known = [
            "$schema",
            "$id",
            "title",
            "description",
            "type",
            "const",
            "enum",
            "properties",
            "required",
            "additionalProperties",
            "minimum",
            "maximum",
            "minLength",
            "items",
            "uniqueItems",
            "oneOf",
        ];
        if !known.contains(&key.as_str()) {
            return Err(format!(
                "{at}: the validator does not know the keyword {key}"
            ));
        }
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: bad type keyword")),
        };
        let is = |t: &str| match t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
            _ => false,
        };
        if !types.iter().any(|t| is(t)) {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(c) = s.get("const") {
        if c != v {
            return Err(format!("{at}: {v} is not {c}"));
        }
    }
    if let Some(Value::Array(options)) = s.get("enum") {
        if !options.contains(v) {
            return Err(format!("{at}: {v} is not one of {options:?}"));
        }
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("{at}: {v} is below the minimum {min}"));
            }
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("{at}: {v} is above the maximum {max}"));
            }
        }
    }
    if let (Some(text), Some(min)) = (v.as_str(), s.get("minLength").and_then(Value::as_u64)) {
        if (text.chars().count() as u64) < min {
            return Err(format!("{at}: {v} is shorter than {min}"));
        }
    }
    if let Value::Object(obj) = v {
        let props = s.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = s.get("required") {
            for r in required.iter().filter_map(Value::as_str) {
                if !obj.contains_key(r) {
                    return Err(format!("{at}: the member {r} is missing"));
                }
            }
        }
        for (key, value) in obj {
            match props.and_then(|p| p.get(key)) {
                Some(sub) => validate(sub, value, &format!("{at}.{key}"))?,
                None => {
                    if s.get("additionalProperties") == Some(&Value::Bool(false)) {
                        return Err(format!("{at}: the member {key} is not allowed"));
                    }
                }
            }
        }
    }
    if let Value::Array(items) = v {
        if let Some(item) = s.get("items") {
            for (i, x) in items.iter().enumerate() {
                validate(item, x, &format!("{at}[{i}]"))?;
            }
        }
        if s.get("uniqueItems") == Some(&Value::Bool(true)) {
            for (i, x) in items.iter().enumerate() {
                if items[..i].contains(x) {
                    return Err(format!("{at}: {x} appears twice"));
                }
            }
        }
    }
    if let Some(Value::Array(options)) = s.get("oneOf") {
        let matching = options
            .iter()
            .filter(|o| validate(o, v, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!(
                "{at}: {v} matches {matching} of the oneOf alternatives, not exactly one"
            ));
        }
    }
    Ok(())
}

/// The schemas of `spec/schemas/host-driver/`, by file stem (`start.reply`, ...).
fn schemas() -> &'static HashMap<String, Value> {
    static SCHEMAS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../spec/schemas/host-driver");
        let mut all = HashMap::new();
        for e in std::fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Some(stem) = name.strip_suffix(".json") {
                let text = std::fs::read_to_string(&path).unwrap();
                all.insert(stem.to_string(), serde_json::from_str(&text).unwrap());
            }
        }
        assert_eq!(
            all.len(),
            21,
            "7 commands, 7 replies, an error reply, 6 events"
        );
        all
    })
}

fn check(schema: &str, v: &Value) {
    let s = schemas()
        .get(schema)
        .unwrap_or_else(|| panic!("no schema {schema}.json"));
    if let Err(e) = validate(s, v, "$") {
        panic!("{v} does not conform to {schema}.json: {e}");
    }
}

// The validator itself: it accepts the spec's complete exchange and rejects each kind of
// deviation the driver could make.
#[test]
fn the_validator_enforces_the_schema_subset() {
    check(
        "hello.reply",
        &json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h 1","events":true,"honours":["stop_grace_ms"]}),
    );
    check(
        "hello.reply",
        &json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h 1","events":true,"honours":["stop_grace_ms"],"defaults":{"start_timeout_ms":3000}}),
    );
    check(
        "crashed.event",
        &json!({"event":"crashed","plugin":"p1","pid":4712,"exit":{"code":3},"reason":"the process exited","failures":1,"delay_ms":1000}),
    );
    check(
        "stop.reply",
        &json!({"id":7,"ok":true,"exit":null,"killed":false}),
    );
    check(
        "activate.command",
        &json!({"id":3,"cmd":"activate","plugin":"p","config":"[1,{\"a\":null}]"}),
    );
    let bad = [
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"status":0},"killed":false}),
        ),
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"code":256},"killed":false}),
        ),
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"code":0,"signal":"SIGKILL"},"killed":false}),
        ),
        ("stop.reply", json!({"id":7,"ok":true,"exit":null})),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"Running","pid":null}),
        ),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"running","pid":0}),
        ),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"running","pid":"12"}),
        ),
        ("error.reply", json!({"id":1,"ok":false,"error":""})),
        ("error.reply", json!({"id":0,"ok":false,"error":"x"})),
        ("error.reply", json!({"id":1,"ok":true,"error":"x"})),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":["stop_grace_ms","stop_grace_ms"]}),
        ),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":["spawn_timeout_ms"]}),
        ),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":[],"defaults":{"start_timeout_ms":0}}),
        ),
        (
            "activate.command",
            json!({"id":3,"cmd":"activate","plugin":"p","config":{"a":1}}),
        ),
        (
            "started.event",
            json!({"event":"started","plugin":"p","pid":1,"extra":1}),
        ),
        ("start.reply", json!({"id":1.5,"ok":true,"pid":1})),
    ];
    for (schema, v) in bad {
        assert!(
            validate(&schemas()[schema], &v, "$").is_err(),
            "{v} passed {schema}.json"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Plugins: bundles whose executable is one launcher script, written once before anything is
// launched (see tests/common), which records its pid and then runs the bundle's
// `behaviour.sh` (read, not executed: no ETXTBSY).

const LAUNCHER: &str = r#"#!/bin/sh
here=$(dirname "$0")
echo "$$" >> "$here/pids"
. "$here/behaviour.sh"
"#;

/// The announcement of hooks stream 2 (HS-1), as printf octal escapes.
const ANNOUNCE: &str = r"printf '\000\004\000\004' >&4";

fn launcher() -> &'static Path {
    static LAUNCHER_PATH: OnceLock<PathBuf> = OnceLock::new();
    LAUNCHER_PATH.get_or_init(|| {
        let path = fixtures().root.join("driver-launcher.sh");
        {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(LAUNCHER.as_bytes()).unwrap();
            f.sync_all().unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
}

/// The reference plugin, with environment variables.
fn reference(env: &[(&str, &str)]) -> String {
    let mut script = String::new();
    for (k, v) in env {
        script.push_str(&format!("{k}={v}; export {k}\n"));
    }
    script.push_str(&format!("exec '{}'\n", fixtures().plugin.display()));
    script
}

/// A bundle directory; every process it launched is killed when it is dropped.
struct Bundle {
    dir: PathBuf,
}

impl Bundle {
    fn new(name: &str, behaviour: &str) -> Bundle {
        let launcher = launcher();
        let dir = fixtures().root.join(format!("driver-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(launcher, dir.join("backend")).unwrap();
        std::fs::write(
            dir.join("plugin.json"),
            format!(r#"{{"id": "{name}", "backend": {{"executable": "backend"}}}}"#),
        )
        .unwrap();
        std::fs::write(dir.join("behaviour.sh"), behaviour).unwrap();
        Bundle { dir }
    }

    fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The pids of every launch, in order.
    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pids"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    fn wait_launches(&self, n: usize) -> Vec<u32> {
        let deadline = Instant::now() + WAIT;
        loop {
            let pids = self.pids();
            if pids.len() >= n {
                return pids;
            }
            assert!(Instant::now() < deadline, "{n} launches did not happen");
            std::thread::sleep(10 * MS);
        }
    }

    /// No process this bundle launched is left, not even as a zombie.
    fn assert_no_process_left(&self) {
        assert_no_process_left(self.pids());
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        kill_all_left(self.pids());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---------------------------------------------------------------------------------------------
// The driver process.

/// What the stdout reader thread saw: a complete line, or the bytes before end-of-file.
enum Line {
    Full(Vec<u8>),
    End(Vec<u8>),
}

/// A message the driver wrote, and when the test received it.
#[derive(Debug, Clone)]
struct Msg {
    at: Instant,
    v: Value,
}

struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    next_id: u64,
    /// The command of every id sent ("?" for malformed lines).
    commands: HashMap<u64, String>,
    replied: HashSet<u64>,
    messages: Vec<(Msg, bool)>,
    ended: bool,
}

impl Driver {
    fn spawn(args: &[&str]) -> Driver {
        let mut child = Command::new(DRIVER)
            .arg("driver")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut buf = Vec::new();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(_) if buf.ends_with(b"\n") => {
                        if tx.send(Line::Full(buf)).is_err() {
                            return;
                        }
                    }
                    _ => {
                        let _ = tx.send(Line::End(buf));
                        return;
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let e = Arc::clone(&stderr);
        let stderr_reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match stderr_pipe.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => e
                        .lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n])),
                }
            }
        });
        Driver {
            child,
            stdin,
            lines,
            stderr,
            stderr_reader: Some(stderr_reader),
            next_id: 1,
            commands: HashMap::new(),
            replied: HashSet::new(),
            messages: Vec::new(),
            ended: false,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the driver's standard error holds `text` `n` times (plugin output takes a
    /// path of its own, so it can come after the reply it preceded).
    fn wait_stderr(&self, text: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.stderr().matches(text).count() < n {
            assert!(
                Instant::now() < deadline,
                "{text:?} not {n} times in\n{}",
                self.stderr()
            );
            std::thread::sleep(10 * MS);
        }
        assert_eq!(self.stderr().matches(text).count(), n, "{}", self.stderr());
    }

    fn write_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a command (checked against its schema) and returns its id.
    fn send(&mut self, cmd: &str, args: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut command = json!({"id": id, "cmd": cmd});
        for (k, v) in args.as_object().unwrap() {
            command[k] = v.clone();
        }
        check(&format!("{cmd}.command"), &command);
        self.commands.insert(id, cmd.to_string());
        self.write_line(command.to_string().as_bytes());
        id
    }

    /// Sends a line that is not a valid command; `id` is the id it carries, if any.
    fn send_raw(&mut self, line: &[u8], id: Option<u64>) {
        if let Some(id) = id {
            self.commands.insert(id, "?".into());
            self.next_id = self.next_id.max(id + 1);
        }
        self.write_line(line);
    }

    /// Takes one line from the driver's standard output (waiting up to `limit`) and checks it
    /// (DRV-1, DRV-2, the schemas). Returns false if none came.
    fn pump(&mut self, limit: Duration) -> bool {
        if self.ended {
            std::thread::sleep(limit.min(50 * MS));
            return false;
        }
        let line = match self.lines.recv_timeout(limit) {
            Ok(Line::Full(line)) => line,
            Ok(Line::End(rest)) => {
                assert!(
                    rest.is_empty(),
                    "the driver's output ends with an unterminated line: {:?}",
                    String::from_utf8_lossy(&rest)
                );
                self.ended = true;
                return false;
            }
            Err(RecvTimeoutError::Timeout) => return false,
            Err(RecvTimeoutError::Disconnected) => {
                self.ended = true;
                return false;
            }
        };
        let at = Instant::now();
        let text = std::str::from_utf8(&line)
            .unwrap_or_else(|_| panic!("the driver wrote a line that is not UTF-8: {line:?}"));
        let body = text.strip_suffix('\n').unwrap();
        assert!(
            !body.contains('\n') && !body.contains('\r'),
            "not one line: {body:?}"
        );
        let v: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the driver wrote a line that is not JSON ({e}): {body}"));
        assert!(v.is_object(), "the driver wrote a non-object: {body}");
        if let Some(event) = v.get("event") {
            let name = event.as_str().expect("event names are strings");
            check(&format!("{name}.event"), &v);
        } else {
            let id = v["id"]
                .as_u64()
                .unwrap_or_else(|| panic!("a reply without a valid id: {body}"));
            let cmd = self
                .commands
                .get(&id)
                .unwrap_or_else(|| panic!("a reply to id {id}, which was never sent: {body}"))
                .clone();
            assert!(
                self.replied.insert(id),
                "a second reply to command {id}: {body}"
            );
            if v["ok"] == json!(true) {
                assert_ne!(cmd, "?", "a malformed line was answered with ok: {body}");
                check(&format!("{cmd}.reply"), &v);
            } else {
                check("error.reply", &v);
            }
        }
        self.messages.push((Msg { at, v }, false));
        true
    }

    fn seen(&self) -> Vec<String> {
        self.messages.iter().map(|(m, _)| m.v.to_string()).collect()
    }

    /// Waits for the first message not taken yet that matches `pred`, and takes it.
    fn wait_msg(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Msg {
        let deadline = Instant::now() + limit;
        let mut from = 0;
        loop {
            for (m, taken) in &mut self.messages[from..] {
                if !*taken && pred(&m.v) {
                    *taken = true;
                    return m.clone();
                }
            }
            from = self.messages.len();
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "no {what} within {limit:?}; the driver wrote {:#?}\nstderr:\n{}",
                    self.seen(),
                    self.stderr()
                );
            }
            self.pump(left.min(100 * MS));
        }
    }

    fn reply_msg(&mut self, id: u64) -> Msg {
        self.wait_msg(&format!("reply to {id}"), WAIT, |v| {
            v.get("event").is_none() && v["id"] == json!(id)
        })
    }

    fn reply(&mut self, id: u64) -> Value {
        self.reply_msg(id).v
    }

    /// Sends a command and waits for its reply.
    fn call(&mut self, cmd: &str, args: Value) -> Value {
        let id = self.send(cmd, args);
        self.reply(id)
    }

    fn event_msg(&mut self, name: &str, limit: Duration) -> Msg {
        self.wait_msg(&format!("{name} event"), limit, |v| {
            v["event"] == json!(name)
        })
    }

    fn event(&mut self, name: &str) -> Value {
        self.event_msg(name, WAIT).v
    }

    /// Reads for `d` and fails if a message matching `pred` comes (or had come, untaken).
    fn assert_none_for(&mut self, d: Duration, what: &str, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + d;
        while Instant::now() < deadline {
            self.pump(
                deadline
                    .saturating_duration_since(Instant::now())
                    .min(100 * MS),
            );
        }
        if let Some((m, _)) = self.messages.iter().find(|(m, taken)| !taken && pred(&m.v)) {
            panic!("{what}: {}", m.v);
        }
    }

    /// The position of the first message matching `pred`, among all received so far.
    fn position(&self, pred: impl Fn(&Value) -> bool) -> Option<usize> {
        self.messages.iter().position(|(m, _)| pred(&m.v))
    }

    /// Starts `plugin` from `bundle` and returns its pid.
    fn start(&mut self, plugin: &str, bundle: &Bundle, extra: Value) -> u32 {
        let mut args =
            json!({"plugin": plugin, "bundle": bundle.path(), "start_timeout_ms": 10_000});
        for (k, v) in extra.as_object().unwrap() {
            args[k] = v.clone();
        }
        let r = self.call("start", args);
        assert_eq!(r["ok"], json!(true), "start failed: {r}\n{}", self.stderr());
        r["pid"].as_u64().unwrap() as u32
    }

    /// Closes standard input (or not, after `quit`) and waits for the driver to exit; reads
    /// every remaining message. Returns the exit status and how long the exit took.
    fn finish(&mut self) -> (ExitStatus, Duration) {
        let t = Instant::now();
        self.stdin.take();
        let deadline = t + WAIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the driver did not exit; stderr:\n{}",
                self.stderr()
            );
            self.pump(20 * MS);
        };
        let took = t.elapsed();
        while !self.ended {
            self.pump(SEC);
        }
        // All of standard error, which only the driver holds (the plugins' goes through it).
        if let Some(reader) = self.stderr_reader.take() {
            let deadline = Instant::now() + 2 * SEC;
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(10 * MS);
            }
        }
        (status, took)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn ok(v: &Value) -> bool {
    v["ok"] == json!(true)
}

// ---------------------------------------------------------------------------------------------
// The contract.

// hello describes the driver: protocol, host and version, events, and the optional start
// arguments it passes on; every message (this test's and all the others') is one JSON object
// on one line, valid against its schema.
// covers: DRV-4
#[test]
fn hello_describes_the_driver() {
    let mut d = Driver::spawn(&[]);
    let r = d.call("hello", json!({}));
    assert_eq!(r["protocol"], json!("rpcplugin-host-driver/1"));
    let host = r["host"].as_str().unwrap();
    assert!(host.starts_with("rpcplugin-reference-host "), "{host}");
    assert!(!host.contains("mutant"), "{host}");
    assert_eq!(r["events"], json!(true));
    assert_eq!(
        r["honours"],
        json!([
            "start_timeout_ms",
            "stop_grace_ms",
            "deactivate_timeout_ms",
            "restart_delay_max_ms",
            "stable_period_ms"
        ])
    );
    let (status, _) = d.finish();
    assert!(status.success());
    // A host whose backoff cannot be configured leaves the backoff settings out.
    let mut d = Driver::spawn(&["--fixed-backoff"]);
    let r = d.call("hello", json!({}));
    assert_eq!(
        r["honours"],
        json!(["start_timeout_ms", "stop_grace_ms", "deactivate_timeout_ms"])
    );
    let (status, _) = d.finish();
    assert!(status.success());
}

// Standard output carries only messages: a plugin that writes to its standard output is heard
// on the driver's standard error, and the driver's logs go there too.
// covers: DRV-1
#[test]
fn standard_output_carries_only_messages() {
    let b = Bundle::new(
        "noisy",
        &format!(
            "echo 'noise from the plugin on stdout'\necho 'noise on stderr' >&2\n{}",
            reference(&[])
        ),
    );
    let mut d = Driver::spawn(&[]);
    d.start("noisy", &b, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "noisy", "config": "{}"}))
    ));
    assert!(ok(&d.call("stop", json!({"plugin": "noisy"}))));
    let (status, _) = d.finish();
    assert!(status.success());
    // Every line was checked by `pump`: JSON objects only.
    assert!(d.seen().iter().all(|m| !m.contains("noise")));
    let stderr = d.stderr();
    assert!(
        stderr.contains("noise from the plugin on stdout"),
        "{stderr}"
    );
    assert!(stderr.contains("noise on stderr"), "{stderr}");
    assert!(stderr.contains("noisy: started"), "{stderr}");
    b.assert_no_process_left();
}

// The whole round trip: start (the started event before the reply), activate with a
// configuration that reaches the plugin as sent, deactivate, activate again, stop (the stopped
// event before the reply, the plugin deactivated, exiting with status 0, not killed).
// covers: DRV-5, DRV-7, DRV-8, DRV-10
#[test]
fn start_activate_deactivate_stop_round_trip() {
    let b = Bundle::new("round-trip", &reference(&[]));
    let mut d = Driver::spawn(&[]);
    let id = d.send(
        "start",
        json!({"plugin": "p1", "bundle": b.path(), "start_timeout_ms": 10000, "stop_grace_ms": 5000}),
    );
    let reply = d.reply(id);
    let pid = reply["pid"].as_u64().unwrap();
    assert_eq!(b.pids(), vec![pid as u32]);
    let started = d.position(|v| v["event"] == json!("started")).unwrap();
    let replied = d.position(|v| v["id"] == json!(id)).unwrap();
    assert!(started < replied, "{:#?}", d.seen());
    assert_eq!(
        d.event("started"),
        json!({"event": "started", "plugin": "p1", "pid": pid})
    );

    let config = r#"{"greeting":"hello","n":[1,2.5,null],"z":{"nested":true}}"#;
    let line = format!(
        r#"{{"id":100,"cmd":"activate","plugin":"p1","config":{}}}"#,
        json!(config)
    );
    d.commands.insert(100, "activate".into());
    d.write_line(line.as_bytes());
    assert_eq!(d.reply(100), json!({"id": 100, "ok": true}));
    d.wait_stderr(&format!("activated with configuration {config}"), 1);
    assert_eq!(
        d.call("status", json!({"plugin": "p1"})),
        json!({"id": d.next_id - 1, "ok": true, "state": "running", "pid": pid})
    );
    assert!(ok(&d.call("deactivate", json!({"plugin": "p1"}))));
    d.wait_stderr("goodbye", 1);
    assert!(ok(
        &d.call("activate", json!({"plugin": "p1", "config": "null"}))
    ));

    let id = d.send("stop", json!({"plugin": "p1"}));
    let reply = d.reply(id);
    assert_eq!(reply["exit"], json!({"code": 0}), "{reply}");
    assert_eq!(reply["killed"], json!(false));
    let stopped = d.position(|v| v["event"] == json!("stopped")).unwrap();
    let replied = d.position(|v| v["id"] == json!(id)).unwrap();
    assert!(stopped < replied, "{:#?}", d.seen());
    assert_eq!(
        d.event("stopped"),
        json!({"event": "stopped", "plugin": "p1", "exit": {"code": 0}, "killed": false})
    );
    d.wait_stderr("goodbye", 2);
    b.assert_no_process_left();

    // The hook calls of a stopped plugin fail at once (LIFE-14), as do those the plugin fails.
    let r = d.call("activate", json!({"plugin": "p1", "config": "{}"}));
    assert!(r["error"].as_str().unwrap().contains("not running"), "{r}");
    let r = d.call("deactivate", json!({"plugin": "p1"}));
    assert!(r["error"].as_str().unwrap().contains("not running"), "{r}");
    let failing = Bundle::new(
        "failing",
        &reference(&[("RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE", "1")]),
    );
    d.start("p2", &failing, json!({}));
    let r = d.call("activate", json!({"plugin": "p2", "config": "{}"}));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("activation fails on purpose"),
        "{r}"
    );
    // The same name can be started again once stopped.
    let pid2 = d.start("p1", &b, json!({}));
    assert_ne!(pid2 as u64, pid);
    let (status, _) = d.finish();
    assert!(status.success());
    b.assert_no_process_left();
    failing.assert_no_process_left();
}

// stop_grace_ms and deactivate_timeout_ms are the supervisor's: a plugin that answers its
// activation and then nothing, and never exits, is stopped after the deactivation timeout and
// the grace period it was given (300 ms each), not after the defaults (5 s each).
// covers: DRV-6
#[test]
fn start_passes_the_stop_grace_and_deactivation_timeout_on() {
    // Announces, answers the first hook call with the recorded successful OnActivate response
    // (spec/05-rpc.md section 5.6.2), then nothing more, and never exits.
    let activate_only = format!(
        "trap '' TERM\n{ANNOUNCE}\ndd bs=1 count=1 <&3 >/dev/null 2>&1\nprintf '{}' >&4\nexec sleep 60\n",
        r"\004\312\001\072\377\203\003\001\001\010\122\145\163\160\157\156\163\145\001\377\204\000\001\003\001\015\123\145\162\166\151\143\145\115\145\164\150\157\144\001\014\000\001\003\123\145\161\001\006\000\001\005\105\162\162\157\162\001\014\000\000\000\032\377\204\001\025\114\157\143\141\154\110\157\157\153\163\056\117\156\101\143\164\151\166\141\164\145\000\012\377\205\003\001\002\377\206\000\000\000\003\377\206\000"
    );
    let b = Bundle::new("activate-only", &activate_only);
    let mut d = Driver::spawn(&[]);
    d.start(
        "p",
        &b,
        json!({"stop_grace_ms": 300, "deactivate_timeout_ms": 300}),
    );
    assert!(ok(
        &d.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    let t = Instant::now();
    let r = d.call("stop", json!({"plugin": "p"}));
    let took = t.elapsed();
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    assert!(
        took >= 550 * MS && took < 4 * SEC,
        "the stop took {took:?}, not 0.3 s + 0.3 s"
    );
    b.assert_no_process_left();
    d.finish();
}

// Commands run concurrently: a stop sent while a start waits for an announcement that never
// comes (start timeout 20 s) is answered once the plugin is stopped, the start with an error;
// status works meanwhile and says starting.
// covers: DRV-3, DRV-9
#[test]
fn a_stop_during_a_start_that_waits() {
    let b = Bundle::new("silent", "exec sleep 30\n");
    let mut d = Driver::spawn(&[]);
    let t = Instant::now();
    let start = d.send(
        "start",
        json!({"plugin": "s", "bundle": b.path(), "start_timeout_ms": 20000, "stop_grace_ms": 300}),
    );
    let pid = b.wait_launches(1)[0];
    let status = d.call("status", json!({"plugin": "s"}));
    assert_eq!(status["state"], json!("starting"), "{status}");
    assert_eq!(status["pid"], json!(pid));
    assert!(ok(&d.call("hello", json!({}))));
    let stop = d.send("stop", json!({"plugin": "s"}));
    let stop_reply = d.reply(stop);
    let start_reply = d.reply(start);
    assert!(t.elapsed() < 10 * SEC, "{:?}", t.elapsed());
    assert_eq!(stop_reply["ok"], json!(true));
    assert_eq!(stop_reply["exit"], json!({"signal": "SIGKILL"}));
    assert_eq!(stop_reply["killed"], json!(true));
    assert_eq!(start_reply["ok"], json!(false));
    assert!(
        start_reply["error"].as_str().unwrap().contains("stopped"),
        "{start_reply}"
    );
    let failed = d.event("start_failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("stopped"),
        "{failed}"
    );
    d.event("stopped");
    assert_eq!(
        d.call("status", json!({"plugin": "s"})),
        json!({"id": d.next_id - 1, "ok": true, "state": "stopped", "pid": null})
    );
    b.assert_no_process_left();
    d.finish();
}

// Crashes and restarts become events: a crash during the activation (exit status 3) and
// the relaunch 1 s later, not activated; a SIGKILL after a successful activation, and the
// relaunch activated again; status says backoff in between and running after.
// covers: DRV-9, DRV-10, DRV-12
#[test]
fn crashes_and_restarts_are_events() {
    let crashing = Bundle::new(
        "crash-on-activate",
        &reference(&[("RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE", "1")]),
    );
    let b = Bundle::new("killed", &reference(&[]));
    let mut d = Driver::spawn(&[]);
    let pid = d.start("c", &crashing, json!({}));
    let r = d.call("activate", json!({"plugin": "c", "config": "{}"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    let crashed = d.event_msg("crashed", WAIT);
    assert_eq!(crashed.v["pid"], json!(pid));
    assert_eq!(crashed.v["exit"], json!({"code": 3}));
    assert_eq!(crashed.v["failures"], json!(1));
    assert_eq!(crashed.v["delay_ms"], json!(1000));
    let status = d.call("status", json!({"plugin": "c"}));
    assert_eq!(status["state"], json!("backoff"), "{status}");
    let restarted = d.event_msg("restarted", WAIT);
    assert!(
        restarted.at - crashed.at >= 900 * MS,
        "relaunched {:?} after the crash",
        restarted.at - crashed.at
    );
    assert_eq!(restarted.v["reactivated"], json!(false));
    let new_pid = restarted.v["pid"].as_u64().unwrap();
    assert_ne!(new_pid, pid as u64);
    assert_eq!(crashing.pids().len(), 2);

    let pid = d.start("k", &b, json!({}));
    assert!(ok(&d.call(
        "activate",
        json!({"plugin": "k", "config": "{\"a\":1}"})
    )));
    kill9(pid);
    let crashed = d.event_msg("crashed", WAIT);
    assert_eq!(crashed.v["plugin"], json!("k"));
    assert_eq!(crashed.v["exit"], json!({"signal": "SIGKILL"}));
    let restarted = d.event_msg("restarted", WAIT);
    assert_eq!(restarted.v["plugin"], json!("k"));
    assert_eq!(restarted.v["reactivated"], json!(true));
    let status = d.call("status", json!({"plugin": "k"}));
    assert_eq!(status["state"], json!("running"));
    assert_eq!(status["pid"], restarted.v["pid"]);
    d.wait_stderr(r#"activated with configuration {"a":1}"#, 2);
    assert!(ok(&d.call("hello", json!({}))));
    let (status, _) = d.finish();
    assert!(status.success());
    crashing.assert_no_process_left();
    b.assert_no_process_left();
}

// A plugin that breaks the framing after its handshake, one that closes its pipes, and one
// that floods its standard error: the driver reports crashes and keeps answering.
// covers: DRV-12
#[test]
fn misbehaving_plugins_do_not_stop_the_driver() {
    let garbage = Bundle::new(
        "garbage",
        &format!("{ANNOUNCE}\nprintf '\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377' >&4\nexec sleep 30\n"),
    );
    let hangup = Bundle::new(
        "hangup",
        &format!("{ANNOUNCE}\nexec 3<&- 4>&-\nexec sleep 30\n"),
    );
    let flood = Bundle::new(
        "flood",
        &format!(
            "(exec 3<&- 4>&-; yes 'flooding standard error' | head -c 5000000 >&2) &\n{}",
            reference(&[])
        ),
    );
    let mut d = Driver::spawn(&[]);
    for (name, bundle) in [("g", &garbage), ("h", &hangup)] {
        d.start(name, bundle, json!({"stop_grace_ms": 200}));
    }
    d.start("f", &flood, json!({}));
    for name in ["g", "h"] {
        let c = d.wait_msg("crash", WAIT, |v| {
            v["event"] == json!("crashed") && v["plugin"] == json!(name)
        });
        assert!(
            c.v["reason"].as_str().unwrap().contains("connection"),
            "{}",
            c.v
        );
    }
    assert!(ok(&d.call("hello", json!({}))));
    assert!(ok(
        &d.call("activate", json!({"plugin": "f", "config": "{}"}))
    ));
    for name in ["g", "h", "f"] {
        assert!(ok(&d.call("stop", json!({"plugin": name}))));
    }
    let (status, _) = d.finish();
    assert!(status.success());
    garbage.assert_no_process_left();
    hangup.assert_no_process_left();
}

// Errors: names that no start created, lines that are not commands (answered when they carry
// an id, reported on standard error otherwise), and a bundle without plugin.json; the driver
// goes on answering.
// covers: DRV-2
#[test]
fn errors_for_unknown_plugins_and_malformed_lines() {
    let mut d = Driver::spawn(&[]);
    for cmd in ["deactivate", "stop", "status"] {
        let r = d.call(cmd, json!({"plugin": "nope"}));
        assert_eq!(r["error"], json!("no plugin named nope"), "{r}");
    }
    let r = d.call("activate", json!({"plugin": "nope", "config": "null"}));
    assert_eq!(r["error"], json!("no plugin named nope"));
    let empty = fixtures().root.join("driver-not-a-bundle");
    std::fs::create_dir_all(&empty).unwrap();
    let r = d.call(
        "start",
        json!({"plugin": "x", "bundle": empty.to_str().unwrap(), "start_timeout_ms": 1000}),
    );
    assert!(r["error"].as_str().unwrap().contains("plugin.json"), "{r}");

    // With an id: an error reply each.
    let with_id: [(&[u8], u64); 9] = [
        (br#"{"id":50,"cmd":"fly"}"#, 50),
        (br#"{"id":51}"#, 51),
        (br#"{"id":52,"cmd":7}"#, 52),
        (br#"{"id":53,"cmd":"stop"}"#, 53),
        (br#"{"id":54,"cmd":"start","plugin":"p","bundle":"/b"}"#, 54),
        (
            br#"{"id":55,"cmd":"start","plugin":"p","bundle":"/b","start_timeout_ms":-1}"#,
            55,
        ),
        (br#"{"id":56,"cmd":"activate","plugin":"p"}"#, 56),
        (br#"{"id":57,"cmd":"hello","extra":true}"#, 57),
        (br#"{"id":58,"cmd":"status","plugin":""}"#, 58),
    ];
    for (line, id) in with_id {
        d.send_raw(line, Some(id));
    }
    for (_, id) in with_id {
        let r = d.reply(id);
        assert_eq!(r["ok"], json!(false), "{r}");
    }
    // Without a usable id: nothing on standard output.
    let before = d.messages.len();
    for line in [
        &b"not json"[..],
        b"[1,2]",
        b"{\"cmd\":\"hello\"}",
        b"{\"id\":0,\"cmd\":\"hello\"}",
        b"{\"id\":\"9\",\"cmd\":\"hello\"}",
        b"\xff\xfe{}",
        b"",
        b"   ",
    ] {
        d.send_raw(line, None);
    }
    let r = d.call("hello", json!({}));
    assert!(ok(&r));
    assert_eq!(d.messages.len(), before + 1, "{:#?}", d.seen());
    let (status, _) = d.finish();
    assert!(status.success());
    let stderr = d.stderr();
    assert!(stderr.contains("not JSON"), "{stderr}");
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}

// quit stops every plugin (the stopped event comes before the reply to quit) and the driver
// exits with status 0; the end of standard input does the same without a reply.
// covers: DRV-11
#[test]
fn quit_and_end_of_input_stop_every_plugin() {
    let b1 = Bundle::new("quit-1", &reference(&[]));
    let b2 = Bundle::new("quit-2", &reference(&[]));
    let mut d = Driver::spawn(&[]);
    d.start("a", &b1, json!({}));
    d.start("b", &b2, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "a", "config": "{}"}))
    ));
    let quit = d.send("quit", json!({}));
    let reply = d.reply(quit);
    assert_eq!(reply, json!({"id": quit, "ok": true}));
    let (status, _) = d.finish();
    assert!(status.success(), "{status}");
    let quit_at = d.position(|v| v["id"] == json!(quit)).unwrap();
    for name in ["a", "b"] {
        let at = d
            .position(|v| v["event"] == json!("stopped") && v["plugin"] == json!(name))
            .unwrap_or_else(|| panic!("{name} was not stopped: {:#?}", d.seen()));
        assert!(at < quit_at);
    }
    d.wait_stderr("goodbye", 1);
    b1.assert_no_process_left();
    b2.assert_no_process_left();

    let b3 = Bundle::new("eof", &reference(&[]));
    let mut d = Driver::spawn(&[]);
    d.start("c", &b3, json!({}));
    let (status, took) = d.finish();
    assert!(status.success(), "{status}");
    assert!(took < 10 * SEC);
    d.event("stopped");
    b3.assert_no_process_left();
}

// `driver --help` teaches the contract with an example exchange and lists the mutants as
// test only; an unknown mutant is refused with status 2 and the list.
#[test]
fn help_and_unknown_mutants() {
    let out = Command::new(DRIVER)
        .args(["driver", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for text in [
        "rpcplugin-host-driver/1",
        r#"{"id":1,"cmd":"hello"}"#,
        r#""cmd":"start""#,
        "Example exchange",
        "TEST ONLY",
        "never-restarts",
        "no-stop-grace",
    ] {
        assert!(help.contains(text), "{text:?} not in --help:\n{help}");
    }
    let out = Command::new(DRIVER)
        .args(["driver", "--mutant", "nope"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("never-restarts") && err.contains("even-api-stream"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------------------------
// The deliberately broken hosts: each misbehaves as its name says.

fn mutant(name: &str) -> Driver {
    let mut d = Driver::spawn(&["--mutant", name]);
    let r = d.call("hello", json!({}));
    assert!(r["host"].as_str().unwrap().contains(name), "{r}");
    d
}

#[test]
fn mutant_never_restarts() {
    let b = Bundle::new("m-never-restarts", &reference(&[]));
    let mut d = mutant("never-restarts");
    let pid = d.start("p", &b, json!({}));
    kill9(pid);
    d.event("crashed");
    d.assert_none_for(3 * SEC, "a relaunch", |v| v["event"] == json!("restarted"));
    assert_eq!(b.pids().len(), 1);
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("backoff")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_restarts_without_delay() {
    let b = Bundle::new("m-restarts-without-delay", &reference(&[]));
    let mut d = mutant("restarts-without-delay");
    let pid = d.start("p", &b, json!({}));
    kill9(pid);
    let crashed = d.event("crashed");
    let seen = Instant::now();
    assert_eq!(crashed["delay_ms"], json!(0));
    b.wait_launches(2);
    let relaunched = seen.elapsed();
    assert!(relaunched < 700 * MS, "relaunched after {relaunched:?}");
    d.event("restarted");
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_ignores_start_timeout() {
    let b = Bundle::new("m-ignores-start-timeout", "exec sleep 30\n");
    let mut d = mutant("ignores-start-timeout");
    let start = d.send(
        "start",
        json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 200, "stop_grace_ms": 200}),
    );
    d.assert_none_for(1500 * MS, "the start ended", |v| v["id"] == json!(start));
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("starting")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    assert_eq!(d.reply(start)["ok"], json!(false));
    d.finish();
}

#[test]
fn mutant_leaves_orphans() {
    let silent = Bundle::new("m-leaves-orphans-silent", "exec sleep 30\n");
    let b = Bundle::new("m-leaves-orphans", &reference(&[]));
    let mut d = mutant("leaves-orphans");
    let r = d.call(
        "start",
        json!({"plugin": "s", "bundle": silent.path(), "start_timeout_ms": 200}),
    );
    assert_eq!(r["ok"], json!(false));
    let orphan = silent.pids()[0];
    std::thread::sleep(300 * MS);
    assert!(
        matches!(process_state(orphan), Some(s) if s != 'Z'),
        "the plugin of the failed start is not running: {:?}",
        process_state(orphan)
    );

    let pid = d.start("p", &b, json!({}));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["exit"], json!(null), "{r}");
    // The plugin exits on end-of-file, and nobody reaps it.
    let deadline = Instant::now() + WAIT;
    while process_state(pid) != Some('Z') {
        assert!(
            Instant::now() < deadline,
            "{pid} is {:?}",
            process_state(pid)
        );
        std::thread::sleep(20 * MS);
    }
    d.finish();
}

#[test]
fn mutant_hangs_on_stream_0() {
    // The reference plugin, and a second announcement sent on its output 0.3 s after the start,
    // by a background shell: a frame on stream 0 after the handshake.
    let b = Bundle::new(
        "m-hangs-on-stream-0",
        &format!(
            "(exec 3<&-; sleep 0.3; printf '\\000\\004\\000\\004' >&4; touch \"$here/sent\") &\n{}",
            reference(&[])
        ),
    );
    let sent = b.dir.join("sent");
    let wait_sent = || {
        let deadline = Instant::now() + WAIT;
        while !sent.exists() {
            assert!(Instant::now() < deadline, "the stream-0 frame was not sent");
            std::thread::sleep(10 * MS);
        }
        std::thread::sleep(100 * MS);
        let _ = std::fs::remove_file(&sent);
    };
    let mut good = Driver::spawn(&[]);
    good.start("p", &b, json!({}));
    wait_sent();
    assert!(ok(
        &good.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("hangs-on-stream-0");
    d.start("p", &b, json!({"stop_grace_ms": 500}));
    wait_sent();
    let activate = d.send("activate", json!({"plugin": "p", "config": "{}"}));
    d.assert_none_for(2 * SEC, "an answer", |v| v["id"] == json!(activate));
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    assert_eq!(d.reply(activate)["ok"], json!(false));
    d.finish();
}

#[test]
fn mutant_accepts_bad_announcement() {
    let control = Bundle::new(
        "m-bad-control-byte",
        "printf '\\000\\004\\001\\004' >&4\nexec sleep 30\n",
    );
    let odd = Bundle::new(
        "m-odd-hooks-id",
        "printf '\\000\\004\\000\\002' >&4\nexec sleep 30\n",
    );
    let zero = Bundle::new(
        "m-zero-hooks-id",
        "printf '\\000\\004\\000\\000' >&4\nexec sleep 30\n",
    );
    let mut good = Driver::spawn(&[]);
    let r = good.call(
        "start",
        json!({"plugin": "c", "bundle": control.path(), "start_timeout_ms": 5000}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    good.finish();

    let mut d = mutant("accepts-bad-announcement");
    for (name, bundle) in [("c", &control), ("o", &odd), ("z", &zero)] {
        d.start(name, bundle, json!({"stop_grace_ms": 200}));
        assert!(ok(&d.call("stop", json!({"plugin": name}))));
    }
    d.finish();
}

#[test]
fn mutant_no_reactivation() {
    let b = Bundle::new("m-no-reactivation", &reference(&[]));
    let mut d = mutant("no-reactivation");
    let pid = d.start("p", &b, json!({}));
    assert!(ok(&d.call(
        "activate",
        json!({"plugin": "p", "config": "{\"x\": 1}"})
    )));
    kill9(pid);
    let restarted = d.event("restarted");
    assert_eq!(restarted["reactivated"], json!(false));
    std::thread::sleep(300 * MS);
    d.wait_stderr("activated with configuration", 1);
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_kills_without_deactivate() {
    let b = Bundle::new("m-kills-without-deactivate", &reference(&[]));
    let mut d = mutant("kills-without-deactivate");
    d.start("p", &b, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    assert!(!d.stderr().contains("goodbye"));
    assert!(!d.stderr().contains("the host closed the connection"));
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_even_api_stream() {
    let b = Bundle::new("m-even-api-stream", &reference(&[]));
    let mut d = mutant("even-api-stream");
    d.start("p", &b, json!({}));
    let r = d.call("activate", json!({"plugin": "p", "config": "{}"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("1000002"), "{r}");
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_no_stop_grace() {
    // Announces, and exits by itself 2 s after its start: within the grace period it is given.
    let b = Bundle::new("m-no-stop-grace", &format!("{ANNOUNCE}\nexec sleep 2\n"));
    let mut d = mutant("no-stop-grace");
    d.start("p", &b, json!({"stop_grace_ms": 5000}));
    let t = Instant::now();
    let r = d.call("stop", json!({"plugin": "p"}));
    assert!(t.elapsed() < SEC, "{:?}", t.elapsed());
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    d.finish();
}

#[test]
fn mutant_leaks_descriptor() {
    // Lists its descriptors before it announces.
    let b = Bundle::new(
        "m-leaks-descriptor",
        &format!("ls -l /proc/$$/fd > \"$here/fds\"\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let fds = || std::fs::read_to_string(b.dir.join("fds")).unwrap();
    let mut good = Driver::spawn(&[]);
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(!fds().contains("plugin.json"), "{}", fds());
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("leaks-descriptor");
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(fds().contains("plugin.json"), "{}", fds());
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_inherits_stdin() {
    let b = Bundle::new(
        "m-inherits-stdin",
        &format!("readlink /proc/$$/fd/0 > \"$here/stdin\"\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let stdin = || std::fs::read_to_string(b.dir.join("stdin")).unwrap();
    let mut good = Driver::spawn(&[]);
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    assert_eq!(stdin().trim(), "/dev/null");
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    // The driver's standard input is the test's pipe of commands.
    let mut d = mutant("inherits-stdin");
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(stdin().starts_with("pipe:"), "{}", stdin());
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_short_start_timeout() {
    let b = Bundle::new(
        "m-short-start-timeout",
        &format!("sleep 0.6\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let mut d = mutant("short-start-timeout");
    let t = Instant::now();
    let r = d.call(
        "start",
        json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 5000}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("250ms"), "{r}");
    assert!(t.elapsed() < 3 * SEC, "{:?}", t.elapsed());
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_waits_out_early_exit() {
    // Exits at once, without announcing.
    let b = Bundle::new("m-waits-out-early-exit", "exit 0\n");
    let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 2000});
    let mut good = Driver::spawn(&[]);
    let t = Instant::now();
    assert_eq!(good.call("start", start.clone())["ok"], json!(false));
    assert!(t.elapsed() < 1500 * MS, "{:?}", t.elapsed());
    good.finish();

    let mut d = mutant("waits-out-early-exit");
    let t = Instant::now();
    let r = d.call("start", start);
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(t.elapsed() >= 1900 * MS, "{:?}", t.elapsed());
    assert!(r["error"].as_str().unwrap().contains("timed out"), "{r}");
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_forgets_failed_start() {
    let b = Bundle::new("m-forgets-failed-start", "exit 1\n");
    let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 2000});
    let mut good = Driver::spawn(&[]);
    assert_eq!(good.call("start", start.clone())["ok"], json!(false));
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("forgets-failed-start");
    assert_eq!(d.call("start", start)["ok"], json!(false));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("no plugin named p"),
        "{r}"
    );
    d.finish();
}

#[test]
fn mutant_forgets_stopped_plugin() {
    let b = Bundle::new("m-forgets-stopped-plugin", &reference(&[]));
    let mut d = mutant("forgets-stopped-plugin");
    d.start("p", &b, json!({}));
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("no plugin named p"),
        "{r}"
    );
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_guesses_executable() {
    // The bundle's only executable file is `backend`.
    let b = Bundle::new("m-guesses-executable", &reference(&[]));
    let manifest = b.dir.join("plugin.json");
    for bad in [None, Some("[1, 2, 3]"), Some(r#"{"id": "x"}"#)] {
        match bad {
            None => std::fs::remove_file(&manifest).unwrap(),
            Some(text) => std::fs::write(&manifest, text).unwrap(),
        }
        let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 10_000});
        let mut good = Driver::spawn(&[]);
        assert_eq!(
            good.call("start", start.clone())["ok"],
            json!(false),
            "{bad:?}"
        );
        good.finish();
        let launches = b.pids().len();

        let mut d = mutant("guesses-executable");
        d.start("p", &b, json!({}));
        assert_eq!(b.pids().len(), launches + 1, "{bad:?}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
    b.assert_no_process_left();
}

#[test]
fn mutant_escapes_bundle() {
    // The bundle `outer` names the executable of the bundle `inner`.
    let inner = Bundle::new("m-escapes-bundle-inner", &reference(&[]));
    let outer = Bundle::new("m-escapes-bundle-outer", "exit 1\n");
    let absolute = inner.dir.join("backend").display().to_string();
    for executable in [
        absolute.as_str(),
        "../driver-m-escapes-bundle-inner/backend",
    ] {
        std::fs::write(
            outer.dir.join("plugin.json"),
            json!({"id": "x", "backend": {"executable": executable}}).to_string(),
        )
        .unwrap();
        let start = json!({"plugin": "p", "bundle": outer.path(), "start_timeout_ms": 10_000});
        let mut good = Driver::spawn(&[]);
        assert_eq!(
            good.call("start", start)["ok"],
            json!(false),
            "{executable}"
        );
        good.finish();
        let launches = inner.pids().len();

        let mut d = mutant("escapes-bundle");
        d.start("p", &outer, json!({}));
        assert_eq!(inner.pids().len(), launches + 1, "{executable}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
    assert!(outer.pids().is_empty());
    inner.assert_no_process_left();
}

/// The resident memory of process `pid`, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

#[test]
fn mutant_unbounded_buffering() {
    // Announces, then writes 48 MiB on stream 4, which the host never connected and nobody
    // reads: 48 frames of 1 MiB (stream 4, length 1 048 576, as zigzag varints).
    const MIB: u64 = 1024;
    let b = Bundle::new(
        "m-unbounded-buffering",
        &format!(
            "{ANNOUNCE}\ni=0\nwhile [ $i -lt 48 ]; do printf '\\010\\200\\200\\200\\001'; \
             head -c 1048576 /dev/zero; i=$((i + 1)); done >&4\ntouch \"$here/flooded\"\n\
             exec sleep 30\n"
        ),
    );
    let flooded = b.dir.join("flooded");
    let wait_flooded = || {
        let deadline = Instant::now() + WAIT;
        while !flooded.exists() {
            assert!(Instant::now() < deadline, "the flood was not written");
            std::thread::sleep(10 * MS);
        }
        let _ = std::fs::remove_file(&flooded);
    };
    // The conforming host discards the data (STREAM-5): its memory hardly grows.
    let mut good = Driver::spawn(&[]);
    good.call("hello", json!({}));
    let before = rss_kib(good.child.id());
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    wait_flooded();
    std::thread::sleep(200 * MS);
    let after = rss_kib(good.child.id());
    assert!(
        after < before + 16 * MIB,
        "{before} KiB before, {after} KiB after"
    );
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    // The broken host connects stream 4 and buffers all of it.
    let mut d = mutant("unbounded-buffering");
    let before = rss_kib(d.child.id());
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    wait_flooded();
    let deadline = Instant::now() + WAIT;
    loop {
        let after = rss_kib(d.child.id());
        if after >= before + 40 * MIB {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{before} KiB before, {after} KiB after"
        );
        std::thread::sleep(50 * MS);
    }
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("running")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_clips_configuration() {
    let b = Bundle::new("m-clips-configuration", &reference(&[]));
    // A JSON string of 5 MiB: its reply cannot fit one gob message (GOB-16).
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    // The reference host answers LoadPluginConfiguration with an error response, which the
    // reference plugin's activation reports; the mutant's cut text is not JSON.
    for (mut d, expected) in [
        (Driver::spawn(&[]), "cannot be sent"),
        (mutant("clips-configuration"), "not valid JSON"),
    ] {
        d.start("p", &b, json!({}));
        let r = d.call("activate", json!({"plugin": "p", "config": big}));
        assert!(r["error"].as_str().unwrap().contains(expected), "{r}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
}
