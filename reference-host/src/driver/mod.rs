//! The reference host's driver: the host driver contract `rpcplugin-host-driver/1` of
//! `spec/07-conformance.md`, section 7.2 (DRV-1 to DRV-12), over [`Supervisor`]s.
//!
//! [`run`] reads commands as JSON lines from its input and writes replies and events as JSON
//! lines to its output, nothing else (DRV-1); logs go to standard error. Each command is
//! answered by exactly one reply with its `id` (DRV-2). Every command but `hello` and `quit`
//! runs on a thread of its own, so that commands are carried out concurrently and answered in
//! the order they complete (DRV-3); every message is written whole, with one write, under one
//! lock. The commands:
//!
//! - `hello` describes the driver (DRV-4): `honours` lists the five optional settings of
//!   `start` (`start_timeout_ms`, `stop_grace_ms`, `deactivate_timeout_ms`,
//!   `restart_delay_max_ms`, `stable_period_ms`), which `start` passes to the supervisor (DRV-5,
//!   DRV-6); with [`DriverOptions::fixed_backoff`] the last two are left out and the supervisors
//!   keep the spec's RESTART_DELAY_MAX and STABLE_PERIOD;
//! - `start` creates a supervisor named `plugin` for the bundle and starts it with the start
//!   timeout `start_timeout_ms`, replying with the process id or the reason of the failure
//!   (DRV-5);
//! - `activate` and `deactivate` make the hook calls through the supervisor; `activate` serves
//!   the JSON text in the string `config`, byte for byte, to the plugin's
//!   `LoadPluginConfiguration` calls (DRV-7, RPC-18);
//! - `stop` stops the supervisor and replies with `exit` and `killed` (DRV-8);
//! - `status` replies with the state of section 6.5, in lowercase, and the process id (DRV-9);
//! - `quit`, like the end of the input, stops every supervisor and ends the driver; the binary
//!   then exits with status 0 (DRV-11).
//!
//! The supervisors' life-cycle events of Table 6-3 are written as event messages as they
//! happen (DRV-10), through [`Supervisor::on_event`]: a `started` event is written before the
//! reply to its `start`, a `stopped` event before the reply to its `stop`. Nothing a plugin does
//! reaches the driver's output other than through replies and events (DRV-12); a panic in a
//! command becomes an error reply.
//!
//! A line that cannot be understood is answered with an error reply when it carries a valid
//! `id`, and otherwise reported on standard error.
//!
//! [`main`] is the whole `driver` subcommand of a binary: it closes the descriptors the process
//! inherited (TRANS-4), runs the driver on standard input and output, and exits with status 0.
//!
//! What the driver does around its supervisors goes through [`DriverOptions::seams`]
//! ([`seams`]); the reference host's, [`ConformingDriver`], changes nothing.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rpcplugin_codec::lifecycle;
use rpcplugin_runtime::codec::gob::DecodeLimits;
use rpcplugin_runtime::codec::stream::Limits;
use rpcplugin_runtime::process::Exit;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::bundle::Bundle;
use crate::event::{ExitJson, LifecycleEvent};
use crate::supervisor::{PluginOutput, State, Supervisor, SupervisorOptions};

pub mod seams;

pub use seams::{ConformingDriver, DriverSeams};

/// The contract this driver speaks (DRV-4).
pub const PROTOCOL: &str = "rpcplugin-host-driver/1";

/// The commands of section 7.2.3.
pub const COMMANDS: [&str; 7] = [
    "hello",
    "start",
    "activate",
    "deactivate",
    "stop",
    "status",
    "quit",
];

/// The `start` arguments among the optional settings that this driver passes on to its
/// supervisors (DRV-4, DRV-5, DRV-6): all of them.
pub const HONOURS: [&str; 5] = [
    "start_timeout_ms",
    "stop_grace_ms",
    "deactivate_timeout_ms",
    "restart_delay_max_ms",
    "stable_period_ms",
];

/// The backoff settings, which [`DriverOptions::fixed_backoff`] leaves out of `honours`.
const BACKOFF_SETTINGS: [&str; 2] = ["restart_delay_max_ms", "stable_period_ms"];

/// The largest `_ms` value the schemas allow (one hour).
const MAX_MS: u64 = 3_600_000;

/// How long the end of the driver waits for commands still running after every supervisor
/// was stopped (they end with the connections of their plugins).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

/// How many log lines may wait for standard error before further ones are dropped.
const LOG_BACKLOG: usize = 4096;

/// How the driver runs.
#[derive(Debug, Clone)]
pub struct DriverOptions {
    /// What the driver does around its supervisors, and the seams each supervisor gets
    /// ([`seams`]); [`ConformingDriver`], the default, changes nothing.
    pub seams: Arc<dyn DriverSeams>,
    /// Every supervisor accepts exactly what the spec guarantees and nothing more (the
    /// minimum limits of frames, stream buffers, gob messages and nesting).
    pub min_limits: bool,
    /// The supervisors keep the spec's RESTART_DELAY_MAX and STABLE_PERIOD whatever `start`
    /// asks (`restart_delay_max_ms` and `stable_period_ms` are not honoured), as a host whose
    /// backoff cannot be configured: the harness's backoff cases are then long ones (`--long`).
    pub fixed_backoff: bool,
}

impl Default for DriverOptions {
    fn default() -> DriverOptions {
        DriverOptions {
            seams: Arc::new(ConformingDriver),
            min_limits: false,
            fixed_backoff: false,
        }
    }
}

/// The `host` of the `hello` reply (DRV-4): the reference host and its version, then the
/// seams' [`host_suffix`](DriverSeams::host_suffix), if any.
pub fn host_name(seams: &dyn DriverSeams) -> String {
    let name = format!("rpcplugin-reference-host {}", env!("CARGO_PKG_VERSION"));
    match seams.host_suffix() {
        Some(suffix) => format!("{name} {suffix}"),
        None => name,
    }
}

/// The `driver` subcommand of a binary: closes the descriptors this process inherited without
/// close-on-exec unless the seams say not to (TRANS-4: the host uses none of them, and every
/// plugin it launches would inherit them), runs the driver on standard input and output until
/// `quit` or the end of the input (DRV-11), and exits with status 0 without waiting for the
/// threads of commands that did not finish.
///
/// Call it first, before anything opens a file. SIGINT and SIGTERM keep their default action;
/// the plugins then read end-of-file (TRANS-9).
pub fn main(options: DriverOptions) -> ! {
    if options.seams.closes_inherited_descriptors() {
        crate::close_inherited_descriptors();
    }
    run(std::io::stdin().lock(), std::io::stdout(), options);
    std::process::exit(0)
}

/// Runs the driver: reads commands from `input` until `quit` or its end, then stops every
/// supervisor and returns once all of them are Stopped (DRV-11). Replies and events go to
/// `output`, one JSON object per line.
pub fn run(input: impl BufRead, output: impl Write + Send + 'static, options: DriverOptions) {
    let driver = Arc::new(Driver {
        out: Arc::new(Out {
            w: Mutex::new(Box::new(output)),
            broken: AtomicBool::new(false),
        }),
        log: Log::new(),
        options,
        plugins: Mutex::new(HashMap::new()),
        busy: Mutex::new(0),
        idle: Condvar::new(),
    });
    let quit = driver.read_commands(input);
    driver.shutdown(quit);
    driver.log.flush(Duration::from_secs(1));
}

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The driver's output: whole lines under one lock (DRV-1, DRV-3).
struct Out {
    w: Mutex<Box<dyn Write + Send>>,
    broken: AtomicBool,
}

impl Out {
    /// Writes one message: a JSON object with `fields` in this order, and a line feed.
    fn send(&self, fields: &[(&str, Value)], log: &Log) {
        let mut line = String::from("{");
        for (i, (key, value)) in fields.iter().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push_str(&Value::from(*key).to_string());
            line.push(':');
            line.push_str(&value.to_string());
        }
        line.push('}');
        self.write_line(line, log);
    }

    /// Writes one message serialized by serde, and a line feed.
    fn send_message(&self, message: &impl serde::Serialize, log: &Log) {
        match serde_json::to_string(message) {
            Ok(line) => self.write_line(line, log),
            Err(e) => log.line(format!("cannot serialize a message: {e}")),
        }
    }

    fn write_line(&self, mut line: String, log: &Log) {
        line.push('\n');
        let mut w = relock(&self.w);
        let result = w.write_all(line.as_bytes()).and_then(|()| w.flush());
        drop(w);
        if let Err(e) = result {
            if !self.broken.swap(true, Ordering::SeqCst) {
                log.line(format!("cannot write to standard output: {e}"));
            }
        }
    }
}

/// The driver's own log lines, written to standard error by a thread of their own, so that a
/// reader of standard error that falls behind never holds up a command or an event (lines
/// beyond [`LOG_BACKLOG`] are dropped).
#[derive(Clone)]
struct Log {
    tx: Option<SyncSender<LogMsg>>,
}

enum LogMsg {
    Line(String),
    /// Answered once every earlier line has been written.
    Flush(std::sync::mpsc::Sender<()>),
}

impl Log {
    fn new() -> Log {
        let (tx, rx) = sync_channel::<LogMsg>(LOG_BACKLOG);
        let spawned = std::thread::Builder::new()
            .name("rpcplugin-driver-log".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        LogMsg::Line(line) => {
                            let mut err = std::io::stderr().lock();
                            let _ = writeln!(err, "rpcplugin-reference-host driver: {line}");
                        }
                        LogMsg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            });
        Log {
            tx: spawned.ok().map(|_| tx),
        }
    }

    fn line(&self, line: String) {
        if let Some(tx) = &self.tx {
            match tx.try_send(LogMsg::Line(line)) {
                Ok(()) | Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {}
            }
        }
    }

    /// Waits (at most `limit`) until the lines logged so far are written.
    fn flush(&self, limit: Duration) {
        if let Some(tx) = &self.tx {
            let (done, wait) = channel();
            if tx.send(LogMsg::Flush(done)).is_ok() {
                let _ = wait.recv_timeout(limit);
            }
        }
    }
}

/// A supervisor the harness named.
struct Entry {
    supervisor: Arc<Supervisor>,
    /// Set when the name is given to a new supervisor: this one's events are no longer written.
    muted: Arc<AtomicBool>,
}

struct Driver {
    out: Arc<Out>,
    log: Log,
    options: DriverOptions,
    plugins: Mutex<HashMap<String, Arc<Entry>>>,
    /// Commands running on threads of their own.
    busy: Mutex<usize>,
    idle: Condvar,
}

/// A command, checked against its schema (`spec/schemas/host-driver/<cmd>.command.json`).
#[derive(Debug)]
enum Command {
    Hello,
    Start {
        plugin: String,
        bundle: PathBuf,
        settings: Settings,
    },
    Activate {
        plugin: String,
        config: Vec<u8>,
    },
    Deactivate {
        plugin: String,
    },
    Stop {
        plugin: String,
    },
    Status {
        plugin: String,
    },
    Quit,
}

/// The settings of a `start` (DRV-5, DRV-6); `None` where the command leaves one out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Settings {
    start_timeout: Duration,
    stop_grace: Option<Duration>,
    deactivate_timeout: Option<Duration>,
    restart_delay_max: Option<Duration>,
    stable_period: Option<Duration>,
}

/// A line that is not a command: the id to answer, if it has a valid one, and why.
struct BadLine {
    id: Option<u64>,
    error: String,
}

/// A command's results (the fields after `id` and `ok`), or why it failed.
type Outcome = Result<Vec<(&'static str, Value)>, String>;

/// A command as it arrives, after its `id` (`spec/schemas/host-driver/<cmd>.command.json`):
/// read by serde, every member checked, none unknown.
#[derive(Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase", deny_unknown_fields)]
enum Wire {
    Hello {},
    Start {
        #[serde(deserialize_with = "non_empty")]
        plugin: String,
        #[serde(deserialize_with = "non_empty")]
        bundle: String,
        #[serde(deserialize_with = "start_timeout_ms")]
        start_timeout_ms: Duration,
        #[serde(default, deserialize_with = "stop_grace_ms")]
        stop_grace_ms: Option<Duration>,
        #[serde(default, deserialize_with = "deactivate_timeout_ms")]
        deactivate_timeout_ms: Option<Duration>,
        #[serde(default, deserialize_with = "restart_delay_max_ms")]
        restart_delay_max_ms: Option<Duration>,
        #[serde(default, deserialize_with = "stable_period_ms")]
        stable_period_ms: Option<Duration>,
    },
    Activate {
        #[serde(deserialize_with = "non_empty")]
        plugin: String,
        /// The configuration's JSON text, served byte for byte (RPC-18).
        #[serde(deserialize_with = "config_text")]
        config: String,
    },
    Deactivate {
        #[serde(deserialize_with = "non_empty")]
        plugin: String,
    },
    Stop {
        #[serde(deserialize_with = "non_empty")]
        plugin: String,
    },
    Status {
        #[serde(deserialize_with = "non_empty")]
        plugin: String,
    },
    Quit {},
}

impl From<Wire> for Command {
    fn from(wire: Wire) -> Command {
        match wire {
            Wire::Hello {} => Command::Hello,
            Wire::Quit {} => Command::Quit,
            Wire::Start {
                plugin,
                bundle,
                start_timeout_ms,
                stop_grace_ms,
                deactivate_timeout_ms,
                restart_delay_max_ms,
                stable_period_ms,
            } => Command::Start {
                plugin,
                bundle: PathBuf::from(bundle),
                settings: Settings {
                    start_timeout: start_timeout_ms,
                    stop_grace: stop_grace_ms,
                    deactivate_timeout: deactivate_timeout_ms,
                    restart_delay_max: restart_delay_max_ms,
                    stable_period: stable_period_ms,
                },
            },
            Wire::Activate { plugin, config } => Command::Activate {
                plugin,
                config: config.into_bytes(),
            },
            Wire::Deactivate { plugin } => Command::Deactivate { plugin },
            Wire::Stop { plugin } => Command::Stop { plugin },
            Wire::Status { plugin } => Command::Status { plugin },
        }
    }
}

fn non_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = String::deserialize(d)?;
    if s.is_empty() {
        return Err(D::Error::custom(
            "an empty string where a plugin name or a bundle path is needed",
        ));
    }
    Ok(s)
}

/// `config`: a string holding the configuration's JSON text.
fn config_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(text) => Ok(text),
        other => Err(D::Error::custom(format!(
            "config must be a string holding the configuration's JSON text, not {other}"
        ))),
    }
}

/// `key`'s value: an integer of milliseconds from 1 to [`MAX_MS`].
fn millis<'de, D: Deserializer<'de>>(d: D, key: &str) -> Result<Duration, D::Error> {
    let v = Value::deserialize(d)?;
    match v.as_u64().filter(|ms| (1..=MAX_MS).contains(ms)) {
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Err(D::Error::custom(format!(
            "{key} must be an integer of milliseconds from 1 to {MAX_MS}, not {v}"
        ))),
    }
}

/// Declares `fn $name(d)`, reading the member `$key` with [`millis`] (so that its error names
/// it); `Some` with `optional`.
macro_rules! millis_of {
    ($name:ident, $key:literal) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
            millis(d, $key)
        }
    };
    ($name:ident, $key:literal, optional) => {
        fn $name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            millis(d, $key).map(Some)
        }
    };
}

millis_of!(start_timeout_ms, "start_timeout_ms");
millis_of!(stop_grace_ms, "stop_grace_ms", optional);
millis_of!(deactivate_timeout_ms, "deactivate_timeout_ms", optional);
millis_of!(restart_delay_max_ms, "restart_delay_max_ms", optional);
millis_of!(stable_period_ms, "stable_period_ms", optional);

/// Reads one line: its id (a positive integer; without one the line cannot be answered), then
/// the command by [`Wire`].
fn parse(line: &str) -> Result<(u64, Command), BadLine> {
    let bad = |id, error: String| BadLine { id, error };
    let value: Value =
        serde_json::from_str(line).map_err(|e| bad(None, format!("not JSON: {e}")))?;
    let Value::Object(mut obj) = value else {
        return Err(bad(None, "not a JSON object".into()));
    };
    let id = match obj.remove("id") {
        Some(v) => match v.as_u64().filter(|&id| id >= 1) {
            Some(id) => id,
            None => return Err(bad(None, format!("the id {v} is not a positive integer"))),
        },
        None => return Err(bad(None, "no id".into())),
    };
    let cmd = match obj.get("cmd") {
        Some(Value::String(cmd)) => cmd.clone(),
        Some(other) => return Err(bad(Some(id), format!("cmd {other} is not a string"))),
        None => return Err(bad(Some(id), "no cmd".into())),
    };
    if !COMMANDS.contains(&cmd.as_str()) {
        return Err(bad(
            Some(id),
            format!(
                "unknown command {}; the commands are {}",
                Value::from(cmd),
                COMMANDS.join(", ")
            ),
        ));
    }
    match serde_json::from_value::<Wire>(Value::Object(obj)) {
        Ok(wire) => Ok((id, wire.into())),
        Err(e) => Err(bad(Some(id), format!("{cmd}: {e}"))),
    }
}

/// `exit` as the schemas have it: null, `{"code": n}` or `{"signal": "SIGKILL"}`.
fn exit_value(exit: Option<Exit>) -> Value {
    serde_json::to_value(exit.map(ExitJson::from)).unwrap_or(Value::Null)
}

fn pid_value(pid: Option<u32>) -> Value {
    pid.map_or(Value::Null, Value::from)
}

impl Driver {
    /// Reads and dispatches commands until `quit` (its id is returned) or the end of the input.
    fn read_commands(self: &Arc<Self>, mut input: impl BufRead) -> Option<u64> {
        let mut buf = Vec::new();
        let mut number = 0u64;
        loop {
            buf.clear();
            match input.read_until(b'\n', &mut buf) {
                Ok(0) => {
                    self.log
                        .line("end of standard input: stopping every plugin".into());
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.log.line(format!(
                        "cannot read standard input ({e}): stopping every plugin"
                    ));
                    return None;
                }
            }
            number += 1;
            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                buf.pop();
            }
            let Ok(line) = std::str::from_utf8(&buf) else {
                self.log
                    .line(format!("line {number} ignored: it is not UTF-8"));
                continue;
            };
            if line.trim().is_empty() {
                continue;
            }
            match parse(line) {
                Ok((id, Command::Quit)) => return Some(id),
                Ok((id, command)) => self.dispatch(id, command),
                Err(BadLine {
                    id: Some(id),
                    error,
                }) => {
                    self.log.line(format!("line {number}: {error}"));
                    self.reply(id, Err(error));
                }
                Err(BadLine { id: None, error }) => {
                    self.log.line(format!(
                        "line {number} ignored (no reply without an id): {error}"
                    ));
                }
            }
        }
    }

    fn reply(&self, id: u64, outcome: Outcome) {
        let mut fields = vec![("id", Value::from(id))];
        match outcome {
            Ok(results) => {
                fields.push(("ok", Value::Bool(true)));
                fields.extend(results);
            }
            Err(mut error) => {
                if error.is_empty() {
                    error.push_str("the command failed");
                }
                fields.push(("ok", Value::Bool(false)));
                fields.push(("error", Value::from(error)));
            }
        }
        self.out.send(&fields, &self.log);
    }

    fn entry(&self, plugin: &str) -> Result<Arc<Entry>, String> {
        relock(&self.plugins)
            .get(plugin)
            .cloned()
            .ok_or_else(|| format!("no plugin named {plugin}"))
    }

    /// Runs `work` on a thread of its own and replies with its outcome (DRV-3); a panic
    /// becomes an error reply.
    fn spawn(
        self: &Arc<Self>,
        id: u64,
        name: &'static str,
        work: impl FnOnce() -> Outcome + Send + 'static,
    ) {
        *relock(&self.busy) += 1;
        let driver = Arc::clone(self);
        let done = Arc::clone(self);
        let spawned = std::thread::Builder::new()
            .name(format!("rpcplugin-driver-{name}-{id}"))
            .spawn(move || {
                let outcome = catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|panic| {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    Err(format!("internal error of the driver: {what}"))
                });
                if let Err(e) = &outcome {
                    driver
                        .log
                        .line(format!("command {id} ({name}) failed: {e}"));
                }
                driver.reply(id, outcome);
                *relock(&driver.busy) -= 1;
                driver.idle.notify_all();
            });
        if let Err(e) = spawned {
            *relock(&done.busy) -= 1;
            done.reply(
                id,
                Err(format!("cannot start a thread for the command: {e}")),
            );
        }
    }

    fn dispatch(self: &Arc<Self>, id: u64, command: Command) {
        match command {
            Command::Hello => self.reply(
                id,
                Ok(vec![
                    ("protocol", Value::from(PROTOCOL)),
                    ("host", Value::from(host_name(&*self.options.seams))),
                    ("events", Value::Bool(true)),
                    ("honours", Value::from(self.honours())),
                ]),
            ),
            Command::Start {
                plugin,
                bundle,
                settings,
            } => self.start(id, plugin, bundle, settings),
            Command::Activate { plugin, config } => match self.entry(&plugin) {
                Ok(e) => self.spawn(id, "activate", move || {
                    e.supervisor
                        .activate_json(config)
                        .map(|()| Vec::new())
                        .map_err(|e| e.to_string())
                }),
                Err(e) => self.reply(id, Err(e)),
            },
            Command::Deactivate { plugin } => match self.entry(&plugin) {
                Ok(e) => self.spawn(id, "deactivate", move || {
                    e.supervisor
                        .deactivate()
                        .map(|()| Vec::new())
                        .map_err(|e| e.to_string())
                }),
                Err(e) => self.reply(id, Err(e)),
            },
            Command::Stop { plugin } => match self.entry(&plugin) {
                Ok(e) => {
                    let driver = Arc::clone(self);
                    self.spawn(id, "stop", move || {
                        let outcome = e.supervisor.stop();
                        if driver.options.seams.forgets_stopped_plugin() {
                            driver.forget(&plugin, &e);
                        }
                        Ok(vec![
                            ("exit", exit_value(outcome.exit)),
                            ("killed", Value::Bool(outcome.killed)),
                        ])
                    })
                }
                Err(e) => self.reply(id, Err(e)),
            },
            Command::Status { plugin } => match self.entry(&plugin) {
                Ok(e) => self.spawn(id, "status", move || {
                    let state = e.supervisor.state();
                    let pid = match state {
                        State::Running { pid, .. } => Some(pid),
                        _ => e.supervisor.process_id(),
                    };
                    Ok(vec![
                        ("state", Value::from(state.name())),
                        ("pid", pid_value(pid)),
                    ])
                }),
                Err(e) => self.reply(id, Err(e)),
            },
            Command::Quit => unreachable!("quit ends the reading loop"),
        }
    }

    /// The settings this driver passes on (DRV-4).
    fn honours(&self) -> Vec<&'static str> {
        HONOURS
            .into_iter()
            .filter(|s| !(self.options.fixed_backoff && BACKOFF_SETTINGS.contains(s)))
            .collect()
    }

    /// `start` (DRV-5, DRV-6): a new supervisor under the name, started on a thread of its
    /// own; returns once the supervisor is Starting, so that the next command finds it so.
    fn start(self: &Arc<Self>, id: u64, plugin: String, bundle: PathBuf, settings: Settings) {
        if let Ok(entry) = self.entry(&plugin) {
            let state = entry.supervisor.state();
            if !matches!(state, State::Stopped | State::Failed { .. }) {
                return self.reply(
                    id,
                    Err(format!(
                        "plugin {plugin} is {state}: stop it before starting it again"
                    )),
                );
            }
        }
        let bundle = match Bundle::load(&bundle) {
            Ok(bundle) => bundle,
            Err(e) => match self.options.seams.refused_bundle(&bundle, &e) {
                Some(bundle) => bundle,
                None => return self.reply(id, Err(e.to_string())),
            },
        };
        let defaults = SupervisorOptions::default();
        let backoff = |asked: Option<Duration>, default: Duration| match asked {
            Some(d) if !self.options.fixed_backoff => d,
            _ => default,
        };
        let lifecycle = &defaults.lifecycle;
        let options = SupervisorOptions {
            lifecycle: lifecycle::Settings {
                start_timeout: settings.start_timeout,
                stop_grace: settings.stop_grace.unwrap_or(lifecycle.stop_grace),
                deactivate_timeout: settings
                    .deactivate_timeout
                    .unwrap_or(lifecycle.deactivate_timeout),
                restart_delay_max: backoff(settings.restart_delay_max, lifecycle.restart_delay_max),
                stable_period: backoff(settings.stable_period, lifecycle.stable_period),
                ..lifecycle.clone()
            },
            // The driver's standard output carries only messages (DRV-1).
            stdout: PluginOutput::HostStderr,
            stderr: PluginOutput::HostStderr,
            seams: self.options.seams.supervisor_seams(),
            limits: if self.options.min_limits {
                Limits::minimum()
            } else {
                defaults.limits
            },
            gob_limits: if self.options.min_limits {
                DecodeLimits::minimum()
            } else {
                defaults.gob_limits
            },
            ..defaults
        };
        let supervisor = Arc::new(Supervisor::new(bundle, options));
        let muted = Arc::new(AtomicBool::new(false));
        {
            let (out, log, name, muted) = (
                Arc::clone(&self.out),
                self.log.clone(),
                plugin.clone(),
                Arc::clone(&muted),
            );
            supervisor.on_event(move |event| {
                if muted.load(Ordering::SeqCst) {
                    return;
                }
                log.line(format!("{name}: {event}"));
                // The reference host's own activated and deactivated are not the contract's
                // (Table 6-3).
                if !matches!(
                    event,
                    LifecycleEvent::Activated { .. } | LifecycleEvent::Deactivated { .. }
                ) {
                    out.send_message(&event.message(&name), &log);
                }
            });
        }
        let entry = Arc::new(Entry {
            supervisor: Arc::clone(&supervisor),
            muted,
        });
        let forget = self
            .options
            .seams
            .forgets_failed_start()
            .then(|| (Arc::clone(self), plugin.clone(), Arc::clone(&entry)));
        let old = relock(&self.plugins).insert(plugin, entry);
        if let Some(old) = old {
            // Stopped or Failed: dropping it reports nothing more.
            old.muted.store(true, Ordering::SeqCst);
            drop(old);
        }
        let (starting, started) = channel();
        self.spawn(id, "start", move || {
            let result = supervisor
                .start_with(|| {
                    let _ = starting.send(());
                })
                .map(|pid| vec![("pid", Value::from(pid))])
                .map_err(|e| e.to_string());
            if let (Err(_), Some((driver, plugin, entry))) = (&result, forget) {
                driver.forget(&plugin, &entry);
            }
            result
        });
        // Returns at once if the thread could not start or died: the sender is gone.
        let _ = started.recv();
    }

    /// [`DriverSeams::forgets_failed_start`], [`DriverSeams::forgets_stopped_plugin`]: removes
    /// `plugin` from the driver's table if it still names `entry`, so that later commands find
    /// no plugin.
    fn forget(&self, plugin: &str, entry: &Arc<Entry>) {
        let mut plugins = relock(&self.plugins);
        if plugins.get(plugin).is_some_and(|e| Arc::ptr_eq(e, entry)) {
            plugins.remove(plugin);
        }
    }

    /// The end of the driver (DRV-11): stops every supervisor that is not Stopped, waits for
    /// the commands still running, and answers `quit`.
    fn shutdown(self: &Arc<Self>, quit: Option<u64>) {
        let entries: Vec<(String, Arc<Entry>)> = relock(&self.plugins)
            .iter()
            .map(|(name, e)| (name.clone(), Arc::clone(e)))
            .collect();
        let stops: Vec<_> = entries
            .into_iter()
            .filter(|(_, e)| e.supervisor.state() != State::Stopped)
            .filter_map(|(name, e)| {
                std::thread::Builder::new()
                    .name(format!("rpcplugin-driver-quit-{name}"))
                    .spawn(move || {
                        e.supervisor.stop();
                    })
                    .ok()
            })
            .collect();
        for stop in stops {
            let _ = stop.join();
        }
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        let mut busy = relock(&self.busy);
        while *busy > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.log.line(format!(
                    "{} command(s) still running after every plugin was stopped; exiting",
                    *busy
                ));
                break;
            }
            busy = self
                .idle
                .wait_timeout(busy, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(busy);
        if let Some(id) = quit {
            self.reply(id, Ok(Vec::new()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(line: &str) -> (Option<u64>, String) {
        match parse(line) {
            Ok(c) => panic!("{line} parsed as {c:?}"),
            Err(BadLine { id, error }) => (id, error),
        }
    }

    #[test]
    fn commands_are_checked_like_their_schemas() {
        assert!(matches!(
            parse(r#"{"id":1,"cmd":"hello"}"#),
            Ok((1, Command::Hello))
        ));
        assert!(matches!(
            parse(r#"{"id":2,"cmd":"start","plugin":"p","bundle":"/b","start_timeout_ms":5}"#),
            Ok((
                2,
                Command::Start {
                    settings: Settings {
                        stop_grace: None,
                        restart_delay_max: None,
                        ..
                    },
                    ..
                }
            ))
        ));
        assert_eq!(error_of("nope").0, None);
        assert_eq!(error_of("[1]").0, None);
        assert_eq!(error_of(r#"{"cmd":"hello"}"#).0, None);
        assert_eq!(error_of(r#"{"id":0,"cmd":"hello"}"#).0, None);
        assert_eq!(error_of(r#"{"id":"1","cmd":"hello"}"#).0, None);
        assert_eq!(error_of(r#"{"id":3}"#).0, Some(3));
        assert_eq!(error_of(r#"{"id":3,"cmd":"fly"}"#).0, Some(3));
        assert_eq!(error_of(r#"{"id":3,"cmd":"hello","x":1}"#).0, Some(3));
        assert_eq!(error_of(r#"{"id":3,"cmd":"stop"}"#).0, Some(3));
        assert_eq!(error_of(r#"{"id":3,"cmd":"stop","plugin":""}"#).0, Some(3));
        assert_eq!(
            error_of(r#"{"id":3,"cmd":"activate","plugin":"p"}"#).0,
            Some(3)
        );
        assert_eq!(
            error_of(r#"{"id":4,"cmd":"start","plugin":"p","bundle":"/b","start_timeout_ms":0}"#).0,
            Some(4)
        );
    }

    #[test]
    fn activate_keeps_the_exact_text_of_config() {
        let line = r#"{"id":1,"cmd":"activate","plugin":"p","config":"{\"b\": 1,  \"a\":[true, 1e400, \"\u003c\"]}"}"#;
        match parse(line) {
            Ok((1, Command::Activate { config, .. })) => {
                assert_eq!(config, br#"{"b": 1,  "a":[true, 1e400, "<"]}"#)
            }
            other => panic!("{:?}", other.map_err(|e| e.error)),
        }
        match parse(r#"{"id":1,"cmd":"activate","plugin":"p","config":"null"}"#) {
            Ok((1, Command::Activate { config, .. })) => assert_eq!(config, b"null"),
            other => panic!("{:?}", other.map_err(|e| e.error)),
        }
        let refused = error_of(r#"{"id":2,"cmd":"activate","plugin":"p","config":{"a":1}}"#);
        assert_eq!(refused.0, Some(2));
        assert!(
            refused.1.contains("config must be a string"),
            "{}",
            refused.1
        );
    }

    #[test]
    fn messages_are_one_line_with_fields_in_order() {
        #[derive(Clone, Default)]
        struct Buffer(Arc<Mutex<Vec<u8>>>);
        impl Write for Buffer {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                relock(&self.0).extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let out = Out {
            w: Mutex::new(Box::new(buffer.clone())),
            broken: AtomicBool::new(false),
        };
        let log = Log { tx: None };
        out.send(
            &[
                ("id", Value::from(1)),
                ("ok", Value::Bool(false)),
                ("error", "a\nb".into()),
            ],
            &log,
        );
        assert_eq!(
            String::from_utf8(relock(&buffer.0).clone()).unwrap(),
            "{\"id\":1,\"ok\":false,\"error\":\"a\\nb\"}\n"
        );
        assert_eq!(
            exit_value(Some(Exit::Signal(9))),
            serde_json::json!({"signal": "SIGKILL"})
        );
        assert_eq!(
            exit_value(Some(Exit::Code(3))),
            serde_json::json!({"code": 3})
        );
        assert_eq!(exit_value(None), Value::Null);
    }
}
