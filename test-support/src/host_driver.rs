//! A test client of the host driver contract `rpcplugin-host-driver/1`
//! (`spec/07-conformance.md` section 7.2, DRV-1 to DRV-12), for the tests of the drivers of this
//! workspace (`rpcplugin-reference-host driver`, `rpcplugin-mutant-host driver --mutant NAME`):
//! a [`Driver`] runs `<program> driver ARGS...` and speaks JSON lines to it, and a [`Bundle`] is
//! a plugin bundle whose behaviour is a shell script.
//!
//! Every line a driver writes is checked: one UTF-8 JSON object ending with a line feed, valid
//! against its schema in `spec/schemas/host-driver/` (replies by the command they answer,
//! events by their name, with the small [`validate`]), and exactly one reply per command. The
//! commands the tests send are checked against their schemas too.
//!
//! Bundles live in [`scratch_dir`]; every bundle's executable is one launcher script, written
//! once before anything is launched (executing a file that this multi-threaded process has just
//! written can fail with ETXTBSY when another thread forks meanwhile), which records its pid
//! and then runs the bundle's `behaviour.sh` (read, not executed).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::bins::{reference_plugin, spec_dir, target_dir};
use crate::procs::{assert_no_process_left, kill_all_left, process_exists};

const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);
/// How long a test waits for something that should happen (generous: the machine is shared).
pub const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------------------------
// A validator for the subset of JSON Schema (draft 2020-12) that the contract's schemas use.

/// Checks `v` against `schema`; the error names the path and the rule broken. Keywords outside
/// the subset make the check fail, so that a schema that grows one is not half checked.
pub fn validate(schema: &Value, v: &Value, at: &str) -> Result<(), String> {
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
pub fn schemas() -> &'static HashMap<String, Value> {
    static SCHEMAS: OnceLock<HashMap<String, Value>> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let dir = spec_dir().join("schemas/host-driver");
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

/// Checks `v` against the schema `spec/schemas/host-driver/<schema>.json`; panics with the
/// rule it breaks.
pub fn check(schema: &str, v: &Value) {
    let s = schemas()
        .get(schema)
        .unwrap_or_else(|| panic!("no schema {schema}.json"));
    if let Err(e) = validate(s, v, "$") {
        panic!("{v} does not conform to {schema}.json: {e}");
    }
}

// The validator itself: it accepts the spec's complete exchange and rejects each kind of

// ---------------------------------------------------------------------------------------------
// Plugins: bundles whose executable is one launcher script, which records its pid and then runs
// the bundle's `behaviour.sh`.

const LAUNCHER: &str = r#"#!/bin/sh
here=$(dirname "$0")
echo "$$" >> "$here/pids"
. "$here/behaviour.sh"
"#;

/// The announcement of hooks stream 2 (HS-1), as a shell command that writes it to the
/// plugin's output, descriptor 4.
pub const ANNOUNCE: &str = r"printf '\000\004\000\004' >&4";

/// This test process's scratch directory, `<target>/tmp/host-driver-<pid>`, created on first
/// use; those of earlier test processes that are gone are removed then.
pub fn scratch_dir() -> &'static Path {
    static SCRATCH: OnceLock<PathBuf> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let tmp = target_dir().join("tmp");
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("host-driver-") {
                    if pid.parse().is_ok_and(|pid: u32| !process_exists(pid)) {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let dir = tmp.join(format!("host-driver-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        dir
    })
}

/// The launcher script, written once per test process.
fn launcher() -> &'static Path {
    static LAUNCHER_PATH: OnceLock<PathBuf> = OnceLock::new();
    LAUNCHER_PATH.get_or_init(|| {
        let path = scratch_dir().join("driver-launcher.sh");
        {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(LAUNCHER.as_bytes()).unwrap();
            f.sync_all().unwrap();
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    })
}

/// A behaviour: the reference plugin (`rpcplugin-reference-plugin`, built on demand), run with
/// the environment variables `env`.
pub fn reference(env: &[(&str, &str)]) -> String {
    let mut script = String::new();
    for (k, v) in env {
        script.push_str(&format!("{k}={v}; export {k}\n"));
    }
    script.push_str(&format!("exec '{}'\n", reference_plugin().display()));
    script
}

/// A bundle directory, `<scratch>/driver-<name>`, whose manifest names the launcher (id:
/// `name`) and whose `behaviour.sh` the launcher runs; every process it launched is killed
/// when it is dropped, and the directory removed.
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
}

impl Bundle {
    /// A fresh bundle named `name` whose plugin runs the shell script `behaviour` (in which
    /// `$here` is the bundle directory).
    pub fn new(name: &str, behaviour: &str) -> Bundle {
        let launcher = launcher();
        let dir = scratch_dir().join(format!("driver-{name}"));
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

    /// The directory, as the `bundle` of a `start`.
    pub fn path(&self) -> &str {
        self.dir.to_str().unwrap()
    }

    /// The pids of every launch, in order.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pids"))
            .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
            .unwrap_or_default()
    }

    /// Waits (at most [`WAIT`]) for `n` launches, and returns the pids of all of them.
    pub fn wait_launches(&self, n: usize) -> Vec<u32> {
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
    pub fn assert_no_process_left(&self) {
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
pub struct Msg {
    /// When the test received it.
    pub at: Instant,
    /// The message.
    pub v: Value,
}

/// A driver process (`<program> driver ARGS...`), its standard error collected, every line of
/// its standard output checked; it is killed when dropped if it has not exited.
pub struct Driver {
    /// The driver process.
    pub child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    stderr: Arc<Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
    /// The id of the next command [`send`](Driver::send) sends.
    pub next_id: u64,
    /// The command of every id sent ("?" for malformed lines): which schema its reply has.
    pub commands: HashMap<u64, String>,
    replied: HashSet<u64>,
    /// Every message received so far, and whether a `wait_` method took it.
    pub messages: Vec<(Msg, bool)>,
    ended: bool,
}

impl Driver {
    /// Starts `<program> driver ARGS...` with piped standard input, output and error.
    pub fn spawn(program: &Path, args: &[&str]) -> Driver {
        let mut child = Command::new(program)
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

    /// Everything the driver wrote to standard error so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the driver's standard error holds `text` `n` times (plugin output takes a
    /// path of its own, so it can come after the reply it preceded).
    pub fn wait_stderr(&self, text: &str, n: usize) {
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

    /// Writes `line` and a line feed to the driver's standard input.
    pub fn write_line(&mut self, line: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(line).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// Sends a command (checked against its schema) and returns its id.
    pub fn send(&mut self, cmd: &str, args: Value) -> u64 {
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
    pub fn send_raw(&mut self, line: &[u8], id: Option<u64>) {
        if let Some(id) = id {
            self.commands.insert(id, "?".into());
            self.next_id = self.next_id.max(id + 1);
        }
        self.write_line(line);
    }

    /// Takes one line from the driver's standard output (waiting up to `limit`) and checks it
    /// (DRV-1, DRV-2, the schemas). Returns false if none came.
    pub fn pump(&mut self, limit: Duration) -> bool {
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

    /// Every message received so far, as JSON text.
    pub fn seen(&self) -> Vec<String> {
        self.messages.iter().map(|(m, _)| m.v.to_string()).collect()
    }

    /// Waits for the first message not taken yet that matches `pred`, and takes it.
    pub fn wait_msg(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Msg {
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

    /// Waits for the reply to command `id`, and takes it.
    pub fn reply_msg(&mut self, id: u64) -> Msg {
        self.wait_msg(&format!("reply to {id}"), WAIT, |v| {
            v.get("event").is_none() && v["id"] == json!(id)
        })
    }

    /// The reply to command `id` (see [`reply_msg`](Driver::reply_msg)).
    pub fn reply(&mut self, id: u64) -> Value {
        self.reply_msg(id).v
    }

    /// Sends a command and waits for its reply.
    pub fn call(&mut self, cmd: &str, args: Value) -> Value {
        let id = self.send(cmd, args);
        self.reply(id)
    }

    /// Waits (at most `limit`) for an event named `name` not taken yet, and takes it.
    pub fn event_msg(&mut self, name: &str, limit: Duration) -> Msg {
        self.wait_msg(&format!("{name} event"), limit, |v| {
            v["event"] == json!(name)
        })
    }

    /// Waits (at most [`WAIT`]) for an event named `name` not taken yet, and takes it.
    pub fn event(&mut self, name: &str) -> Value {
        self.event_msg(name, WAIT).v
    }

    /// Reads for `d` and fails if a message matching `pred` comes (or had come, untaken).
    pub fn assert_none_for(&mut self, d: Duration, what: &str, pred: impl Fn(&Value) -> bool) {
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
    pub fn position(&self, pred: impl Fn(&Value) -> bool) -> Option<usize> {
        self.messages.iter().position(|(m, _)| pred(&m.v))
    }

    /// Starts `plugin` from `bundle` and returns its pid.
    pub fn start(&mut self, plugin: &str, bundle: &Bundle, extra: Value) -> u32 {
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
    pub fn finish(&mut self) -> (ExitStatus, Duration) {
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

/// Whether a reply says ok.
pub fn ok(v: &Value) -> bool {
    v["ok"] == json!(true)
}
