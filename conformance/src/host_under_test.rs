//! [`HostUnderTest`]: the harness against a host, through the host's driver (spec 07 section
//! 7.2), with the harness's own agents as the host's plugins (spec/harness.md section 6).
//!
//! Each case gets a fresh driver process and a scratch directory holding a Unix socket and a
//! plugin bundle whose executable starts `rpcplugin-conformance agent --control <socket>`.
//! Everything arrives in one shared [`World`]: the driver's replies and events (each validated
//! against its JSON Schema first: a message that breaks the contract ends the case as a harness
//! error) and, for every launch of the agent, its hello (process id, descriptors) and the events
//! it reports (announced, requests, configurations, end of file, violations of the host's
//! sender rules it observed, exiting). Cases wait on the world with deadlines; every exchange is
//! recorded for the case's replay file. Dropping the driver quits it, kills it if it does not
//! go, kills every agent process still marked with the case's token, and then removes the
//! scratch directory (a `tempfile` directory: nothing is left behind, even when the launch
//! fails half-way).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt as _, FdMapping};
use serde_json::{json, Value};

use crate::agent::{AgentHello, Behaviour, Order};
use crate::agent::{SIGBLK_VAR, SIGIGN_VAR};
use crate::outcome::{Failure, Outcome};
use crate::plugin_under_test::TOKEN_VAR;
use crate::schema;
use crate::transcript::Recorder;
use rpcplugin_codec::req;

/// How long the harness waits for a driver's answer to a command that should be quick.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a driver may take to say hello.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the driver's standard error is kept.
const STDERR_KEEP: usize = 64 * 1024;
/// The descriptor every driver starts with besides 0 to 2, open without close-on-exec on the
/// file [`INHERITED_MARKER`] of the case's directory (TRANS-4).
pub const INHERITED_FD: i32 = 9;
/// The file the driver's extra descriptor refers to.
pub const INHERITED_MARKER: &str = "descriptor-the-driver-inherited";
/// The spec's values, which the harness assumes for a host whose driver neither honours the
/// corresponding setting nor reports its own: START_TIMEOUT (HS-4), STOP_GRACE (LIFE-17),
/// DEACTIVATE_TIMEOUT (LIFE-16), RESTART_DELAY_MAX (LIFE-9), STABLE_PERIOD (LIFE-10).
pub use rpcplugin_codec::lifecycle::{
    DEACTIVATE_TIMEOUT, RESTART_DELAY_MAX, STABLE_PERIOD, START_TIMEOUT, STOP_GRACE,
};

/// The least restart delay a host passes LIFE-8 with: RESTART_DELAY_MIN, less what two readings
/// of the monotonic clock around the crash and the relaunch can differ by.
pub const RESTART_DELAY_FLOOR: Duration =
    Duration::from_millis(rpcplugin_codec::lifecycle::RESTART_DELAY_MIN.as_millis() as u64 - 10);
/// The stop grace period the harness asks for (before `--timeout-scale`).
const ASKED_STOP_GRACE: Duration = Duration::from_secs(2);
/// The deactivation timeout the harness asks for (before `--timeout-scale`).
const ASKED_DEACTIVATE_TIMEOUT: Duration = Duration::from_secs(2);

/// The driver executable and its arguments.
#[derive(Debug, Clone)]
pub struct DriverCommand {
    /// Path of the executable.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
}

impl DriverCommand {
    /// The program and its arguments as text, for reports.
    pub fn display(&self) -> Vec<String> {
        let mut v = vec![self.program.display().to_string()];
        v.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        v
    }
}

/// One launch of the agent, as it reported itself.
#[derive(Debug, Clone)]
pub struct AgentLaunch {
    /// 0 for the first launch of the case, 1 for the next, and so on.
    pub index: usize,
    /// Its process id.
    pub pid: u32,
    /// Its process group (TRANS-13: its own, so equal to `pid`).
    pub pgid: i64,
    /// When its hello arrived.
    pub hello_at: Instant,
    /// The earlier launches whose process was still running (not gone, not a zombie) when
    /// this one's hello arrived (LIFE-7: none), with their pids.
    pub earlier_alive: Vec<(usize, u32)>,
    /// The descriptors it had open when it started: number and target.
    pub fds: Vec<(i64, String)>,
    /// The command-line arguments the host gave it after the program name (TRANS-14: none).
    pub args: Vec<String>,
    /// The signals blocked and ignored when it started, as `/proc/PID/status` shows them
    /// (`SigBlk`, `SigIgn`: hexadecimal masks, bit N-1 for signal N), read by the agent's
    /// script before anything could change them (TRANS-15, TRANS-16); `None` where unknown.
    pub signals_blocked: Option<u64>,
    /// See [`AgentLaunch::signals_blocked`].
    pub signals_ignored: Option<u64>,
    /// What it reported since, with when.
    pub events: Vec<(Instant, Value)>,
    /// When its socket closed (it exited or was killed).
    pub ended_at: Option<Instant>,
    /// The machine's monotonic clock when it started, as it read it ([`crate::agent::mono_ns`]).
    pub started_mono: Option<u64>,
}

impl AgentLaunch {
    /// The machine's monotonic clock when it began to crash or exit, as it read it (`crashing`,
    /// `exiting`): no later than the host could notice.
    pub fn gone_mono(&self) -> Option<u64> {
        self.events
            .iter()
            .map(|(_, v)| v)
            .find(|v| v["event"] == "crashing" || v["event"] == "exiting")
            .and_then(|v| v["mono_ns"].as_u64())
    }

    /// The time from the end of this launch to the start of `next`, for a lower bound of a
    /// host's restart delay (LIFE-8): by the machine's monotonic clock, from this agent's report
    /// that it was crashing (no later than the host's detection) to the next agent's start (no
    /// earlier than its launch), so that neither the harness's own scheduling nor the reports'
    /// travel can shorten it; by the harness's own clock (the end of this agent's socket to the
    /// next one's hello) when an agent could not read the monotonic clock.
    pub fn delay_to(&self, next: &AgentLaunch) -> Duration {
        match (self.gone_mono(), next.started_mono) {
            (Some(gone), Some(started)) => Duration::from_nanos(started.saturating_sub(gone)),
            _ => next
                .hello_at
                .saturating_duration_since(self.ended_at.unwrap_or(self.hello_at)),
        }
    }

    /// The first event called `name`.
    pub fn event(&self, name: &str) -> Option<&Value> {
        self.events
            .iter()
            .map(|(_, v)| v)
            .find(|v| v["event"] == name)
    }

    /// Every event called `name`.
    pub fn events_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .map(|(_, v)| v)
            .filter(move |v| v["event"] == name)
    }

    /// When the first event called `name` arrived.
    pub fn event_at(&self, name: &str) -> Option<Instant> {
        self.events
            .iter()
            .find(|(_, v)| v["event"] == name)
            .map(|(at, _)| *at)
    }

    /// The hook requests it received: `(method, api_stream)`.
    pub fn requests(&self) -> Vec<(String, Option<i64>)> {
        self.events_named("request")
            .map(|v| {
                (
                    v["method"].as_str().unwrap_or("").to_string(),
                    v["api_stream"].as_i64(),
                )
            })
            .collect()
    }
}

/// What the harness knows of the driver and the agents.
#[derive(Debug, Default)]
pub struct World {
    /// Replies by command id, with when they arrived.
    pub replies: BTreeMap<u64, (Instant, Value)>,
    /// Events, in order.
    pub events: Vec<(Instant, Value)>,
    /// Every launch of the agent.
    pub launches: Vec<AgentLaunch>,
    /// The driver closed its standard output.
    pub driver_eof: bool,
    /// A message of the driver that broke the contract.
    pub contract_error: Option<String>,
    /// The command name of each id sent.
    sent: BTreeMap<u64, String>,
    /// The behaviour of each launch (the last repeats).
    scripts: Vec<Behaviour>,
    /// Sockets to the agents, by launch index, for orders.
    writers: BTreeMap<usize, UnixStream>,
}

impl World {
    /// The behaviour for launch `index`.
    fn script(&self, index: usize) -> Behaviour {
        self.scripts
            .get(index)
            .or(self.scripts.last())
            .cloned()
            .unwrap_or_default()
    }

    /// The events called `name`.
    pub fn events_named(&self, name: &str) -> Vec<&Value> {
        self.events
            .iter()
            .map(|(_, v)| v)
            .filter(|v| v["event"] == name)
            .collect()
    }
}

struct Shared {
    world: Mutex<World>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A host, through its driver, under test.
pub struct HostUnderTest {
    driver: Child,
    stdin: Option<ChildStdin>,
    shared: Arc<Shared>,
    next_id: u64,
    stderr: Arc<Mutex<Vec<u8>>>,
    recorder: Recorder,
    scale: f64,
    case_deadline: Instant,
    /// The case's scratch directory, removed when the host under test is dropped.
    dir: tempfile::TempDir,
    bundle: PathBuf,
    token: String,
    hello: Value,
    /// The run allows long cases (`--long`).
    long: bool,
}

impl std::fmt::Debug for HostUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostUnderTest")
            .field("driver", &self.driver.id())
            .field("dir", &self.dir.path())
            .finish_non_exhaustive()
    }
}

/// Why a host case could not begin.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The scratch directory or the socket could not be made.
    #[error("cannot prepare the case's directory: {0}")]
    Scratch(String),
    /// The driver could not be started.
    #[error("cannot start the driver {program}: {source}")]
    Spawn {
        /// The driver.
        program: String,
        /// Why.
        source: std::io::Error,
    },
    /// The driver broke the contract, or did not say hello.
    #[error("{0}")]
    Driver(String),
}

fn next_case() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Quotes `s` for `/bin/sh`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

impl HostUnderTest {
    /// Starts the driver, says hello, and prepares the agent's bundle and socket.
    pub fn launch(
        command: &DriverCommand,
        scale: f64,
        case_timeout: Duration,
    ) -> Result<HostUnderTest, SetupError> {
        let recorder = Recorder::new();
        let n = next_case();
        let token = format!(
            "host-{}-{n}-{}",
            std::process::id(),
            recorder.start().elapsed().as_nanos()
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!(
                "rpcplugin-conformance-{}-{n}-",
                std::process::id()
            ))
            .tempdir()
            .map_err(|e| SetupError::Scratch(e.to_string()))?;
        let bundle = dir.path().join("bundle");
        std::fs::create_dir_all(&bundle).map_err(|e| SetupError::Scratch(e.to_string()))?;
        let socket = dir.path().join("control.sock");
        let listener =
            UnixListener::bind(&socket).map_err(|e| SetupError::Scratch(e.to_string()))?;
        let harness = std::env::current_exe().map_err(|e| SetupError::Scratch(e.to_string()))?;
        write_bundle(&bundle, &harness, &socket, &token)
            .map_err(|e| SetupError::Scratch(e.to_string()))?;

        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            changed: Condvar::new(),
        });
        // The agents' socket.
        {
            let shared = Arc::clone(&shared);
            let record = recorder.clone();
            thread::spawn(move || accept_agents(listener, shared, record));
        }
        // The driver starts with a descriptor it did not open itself, as a host started by a
        // shell or a CI runner often does: a host must not pass it on to its plugins
        // (TRANS-4), and host/transport/descriptors checks that it does not.
        let inherited = std::fs::File::create(dir.path().join(INHERITED_MARKER))
            .map_err(|e| SetupError::Scratch(e.to_string()))?;
        let mut command_line = Command::new(&command.program);
        command_line
            .args(&command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command_line
            .fd_mappings(vec![FdMapping {
                parent_fd: inherited.into(),
                child_fd: INHERITED_FD,
            }])
            .map_err(|e| SetupError::Scratch(e.to_string()))?;
        let mut child = command_line.spawn().map_err(|source| SetupError::Spawn {
            program: command.program.display().to_string(),
            source,
        })?;
        drop(command_line);
        let stderr = match child.stderr.take() {
            Some(pipe) => crate::transcript::keep_output(pipe, STDERR_KEEP),
            None => Arc::new(Mutex::new(Vec::new())),
        };
        if let Some(stdout) = child.stdout.take() {
            let shared = Arc::clone(&shared);
            let record = recorder.clone();
            thread::spawn(move || read_driver(stdout, shared, record));
        }
        let stdin = child.stdin.take();
        let mut host = HostUnderTest {
            driver: child,
            stdin,
            shared,
            next_id: 1,
            stderr,
            recorder,
            scale,
            case_deadline: Instant::now() + case_timeout,
            dir,
            bundle,
            token,
            hello: Value::Null,
            long: false,
        };
        let id = host
            .send("hello", json!({}))
            .map_err(|e| SetupError::Driver(e.reason()))?;
        match host.reply(id, HELLO_TIMEOUT) {
            Ok(Ok(v)) => host.hello = v,
            Ok(Err(e)) => {
                return Err(SetupError::Driver(format!(
                    "the driver answered hello with an error: {e}"
                )))
            }
            Err(outcome) => return Err(SetupError::Driver(outcome.reason())),
        }
        Ok(host)
    }

    /// The recorder of the case's exchange.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// The driver's process id.
    pub fn driver_pid(&self) -> u32 {
        self.driver.id()
    }

    /// The plugin bundle whose executable is the agent.
    pub fn bundle(&self) -> &Path {
        &self.bundle
    }

    /// The case's scratch directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The results of the driver's `hello` (DRV-4).
    pub fn hello(&self) -> &Value {
        &self.hello
    }

    /// Whether the driver reports events (its hello said so).
    pub fn reports_events(&self) -> bool {
        self.hello["events"] == true
    }

    /// Allows the long cases, which take minutes where the driver does not honour a setting
    /// (`--long`, spec 07 section 7.2.3).
    pub fn allow_long(&mut self, long: bool) {
        self.long = long;
    }

    /// Whether the run allows long cases.
    pub fn long_allowed(&self) -> bool {
        self.long
    }

    /// Whether the driver passes the optional `start` argument `name` on to its host.
    pub fn honours(&self, name: &str) -> bool {
        self.hello["honours"]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == name))
    }

    /// What the driver wrote to its standard error so far (the first 64 KiB).
    pub fn stderr(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }

    /// `d` multiplied by the timeout scale.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }

    /// `within`, scaled, from now, but no later than the case's deadline.
    pub fn deadline(&self, within: Duration) -> Instant {
        (Instant::now() + within.mul_f64(self.scale)).min(self.case_deadline)
    }

    /// Whether the case's deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.case_deadline
    }

    /// The behaviours of the agent's launches, in order; the last one repeats.
    pub fn script(&self, behaviours: Vec<Behaviour>) {
        self.shared.lock().scripts = behaviours;
    }

    /// A copy of the world, now.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.shared.lock()
    }

    /// The launches so far.
    pub fn launches(&self) -> Vec<AgentLaunch> {
        self.shared.lock().launches.clone()
    }

    /// Waits (at most `within`, scaled) until `done` holds of the world; whether it did.
    pub fn wait(&self, within: Duration, done: impl FnMut(&World) -> bool) -> bool {
        self.wait_until(self.deadline(within), done)
    }

    /// Waits until `deadline` at the latest for `done` to hold of the world; whether it did.
    pub fn wait_until(&self, deadline: Instant, mut done: impl FnMut(&World) -> bool) -> bool {
        let mut w = self.shared.lock();
        loop {
            if done(&w) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            w = self
                .shared
                .changed
                .wait_timeout(w, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for launch `index` to have reported a hook request for `method`: the agent's
    /// reports travel over their own socket, so one may arrive after the driver's reply to
    /// the command that caused it.
    pub fn wait_request(&self, index: usize, method: &str, within: Duration) -> bool {
        self.wait(within, |w| {
            w.launches
                .get(index)
                .is_some_and(|l| l.requests().iter().any(|(m, _)| m == method))
        })
    }

    /// Waits for launch `index` to have reported `event`.
    pub fn wait_agent(&self, index: usize, event: &str, within: Duration) -> bool {
        self.wait(within, |w| {
            w.launches
                .get(index)
                .is_some_and(|l| l.event(event).is_some())
        })
    }

    /// Waits (at most `within`, scaled) until launch `index` of the agent has ended: its
    /// process exited or was killed, which closes its socket after everything it reported.
    /// After that its reports are complete, whatever order they and the driver's replies
    /// arrived in.
    pub fn wait_ended(&self, index: usize, within: Duration) -> bool {
        self.wait(within, |w| {
            w.launches.get(index).is_some_and(|l| l.ended_at.is_some())
        })
    }

    /// Sends a command (validated against its schema); returns its id.
    pub fn send(&mut self, cmd: &str, args: Value) -> Result<u64, Outcome> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({"id": id, "cmd": cmd});
        if let (Some(m), Some(a)) = (msg.as_object_mut(), args.as_object()) {
            for (k, v) in a {
                m.insert(k.clone(), v.clone());
            }
        }
        schema::validate(&format!("{cmd}.command.json"), &msg)
            .map_err(|e| Outcome::error(format!("the harness built an invalid command: {e}")))?;
        self.shared.lock().sent.insert(id, cmd.to_string());
        let line = format!("{msg}\n");
        self.recorder.driver_line("to_driver", &msg.to_string());
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Outcome::error("the driver's standard input is closed"))?;
        stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| {
                Outcome::error(format!(
                    "the driver does not read its commands (writing {cmd} failed: {e}); DRV-1, DRV-12"
                ))
            })?;
        Ok(id)
    }

    /// The reply to command `id`, waiting at most `within` (scaled): `Ok(Ok(results))`,
    /// `Ok(Err(error))`, or a failure (no reply: DRV-2; a message that broke the contract or
    /// the driver's end: a harness error).
    pub fn reply(&mut self, id: u64, within: Duration) -> Result<Result<Value, String>, Outcome> {
        self.reply_for(id, within, req!("DRV-2"))
    }

    /// [`HostUnderTest::reply`], with `requirement` as the one broken when no reply comes in
    /// time (the host is stuck, not its driver).
    pub fn reply_for(
        &mut self,
        id: u64,
        within: Duration,
        requirement: &'static str,
    ) -> Result<Result<Value, String>, Outcome> {
        let deadline = self.deadline(within);
        let mut w = self.shared.lock();
        loop {
            if let Some(e) = &w.contract_error {
                return Err(Outcome::error(e.clone()));
            }
            if let Some((_, v)) = w.replies.get(&id) {
                return Ok(if v["ok"] == true {
                    Ok(v.clone())
                } else {
                    Err(v["error"].as_str().unwrap_or("").to_string())
                });
            }
            if w.driver_eof {
                drop(w);
                let exit = self.driver.try_wait().ok().flatten();
                return Err(Outcome::error(format!(
                    "the driver closed its standard output before answering command {id}{} (DRV-12)",
                    exit.map(|e| format!("; it {e}")).unwrap_or_default()
                )));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let cmd = w.sent.get(&id).cloned().unwrap_or_default();
                drop(w);
                return Err(self.fail(
                    requirement,
                    &format!(
                        "a reply to the {cmd} command (id {id}) within {:?}",
                        self.scaled(within)
                    ),
                    "none",
                ));
            }
            w = self
                .shared
                .changed
                .wait_timeout(w, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Sends a command and waits for its reply.
    pub fn call(
        &mut self,
        cmd: &str,
        args: Value,
        within: Duration,
    ) -> Result<Result<Value, String>, Outcome> {
        let id = self.send(cmd, args)?;
        self.reply(id, within)
    }

    /// [`HostUnderTest::call`], with `requirement` broken when no reply comes in time.
    pub fn call_for(
        &mut self,
        cmd: &str,
        args: Value,
        within: Duration,
        requirement: &'static str,
    ) -> Result<Result<Value, String>, Outcome> {
        let id = self.send(cmd, args)?;
        self.reply_for(id, within, requirement)
    }

    /// `start` of the plugin `plugin` from the agent's bundle, asking for the start timeout
    /// `start_timeout` (scaled) and a stop grace period and deactivation timeout of 2 s
    /// (scaled); the host uses them where its driver honours them (DRV-4, DRV-6).
    pub fn start_args(&self, plugin: &str, start_timeout: Duration) -> Value {
        let ms = |d: Duration| d.as_millis().clamp(1, 3_600_000) as u64;
        json!({
            "plugin": plugin,
            "bundle": self.bundle.display().to_string(),
            "start_timeout_ms": ms(self.scaled(start_timeout)),
            "stop_grace_ms": ms(self.scaled(ASKED_STOP_GRACE)),
            "deactivate_timeout_ms": ms(self.scaled(ASKED_DEACTIVATE_TIMEOUT)),
        })
    }

    /// The value the host uses for the optional `start` setting `name` (`start_timeout_ms`,
    /// `stop_grace_ms`, `deactivate_timeout_ms`) when the harness asks for `asked`: `asked`,
    /// scaled, if the driver honours the setting; otherwise the host's own value as its hello
    /// reported it in `defaults`, or else the default of chapter 06, `default` (DRV-4). A
    /// setting the driver does not honour never turns into a failure: the cases time it by
    /// the host's own value.
    pub fn setting(&self, name: &str, asked: Duration, default: Duration) -> Duration {
        if self.honours(name) {
            self.scaled(asked)
        } else {
            self.hello["defaults"][name]
                .as_u64()
                .map_or(default, Duration::from_millis)
        }
    }

    /// The start timeout the host uses when the harness asks for `asked`.
    pub fn start_timeout(&self, asked: Duration) -> Duration {
        self.setting("start_timeout_ms", asked, START_TIMEOUT)
    }

    /// The stop grace period the host uses.
    pub fn stop_grace(&self) -> Duration {
        self.setting("stop_grace_ms", ASKED_STOP_GRACE, STOP_GRACE)
    }

    /// The deactivation timeout the host uses.
    pub fn deactivate_timeout(&self) -> Duration {
        self.setting(
            "deactivate_timeout_ms",
            ASKED_DEACTIVATE_TIMEOUT,
            DEACTIVATE_TIMEOUT,
        )
    }

    /// Starts `plugin`, asking for the start timeout `start_timeout`, and waits for the start's
    /// reply (the start timeout the host uses and a margin).
    pub fn start(
        &mut self,
        plugin: &str,
        start_timeout: Duration,
    ) -> Result<Result<Value, String>, Outcome> {
        // A start that never ends is the host ignoring its start timeout.
        self.start_for(plugin, start_timeout, req!("HS-4"))
    }

    /// [`HostUnderTest::start`], where a start that is not answered within the start timeout
    /// and [`REPLY_TIMEOUT`] breaks `requirement` (the rule that should have ended it sooner:
    /// HS-5 for a start whose announcement is invalid, for instance).
    pub fn start_for(
        &mut self,
        plugin: &str,
        start_timeout: Duration,
        requirement: &'static str,
    ) -> Result<Result<Value, String>, Outcome> {
        let args = self.start_args(plugin, start_timeout);
        let effective = self.start_timeout(start_timeout);
        self.call_for("start", args, effective + REPLY_TIMEOUT, requirement)
    }

    /// Sends `order` to launch `index` of the agent.
    pub fn order(&self, index: usize, order: &Order) -> Result<(), Outcome> {
        let line = format!(
            "{}\n",
            serde_json::to_string(order).expect("an order serializes")
        );
        self.recorder
            .agent_line(index, &format!("order: {}", line.trim_end()));
        let mut w = self.shared.lock();
        let writer = w.writers.get_mut(&index).ok_or_else(|| {
            Outcome::error(format!("no agent launch {index} to send an order to"))
        })?;
        writer
            .write_all(line.as_bytes())
            .map_err(|e| Outcome::error(format!("the agent of launch {index} is gone: {e}")))
    }

    /// The violations of the host's sender rules the agents observed: requirement and text.
    pub fn violations(&self) -> Vec<(&'static str, String)> {
        let w = self.shared.lock();
        let mut found = Vec::new();
        for l in &w.launches {
            for v in l.events_named("violation") {
                let id = v["requirement"].as_str().unwrap_or("");
                let requirement =
                    crate::requirements::lookup(id).map_or(req!("HS-3"), |r| r.id.as_str());
                found.push((
                    requirement,
                    format!(
                        "launch {} of the plugin saw at byte {} of the host's output: {}",
                        l.index,
                        v["offset"],
                        v["text"].as_str().unwrap_or("")
                    ),
                ));
            }
        }
        found
    }

    /// A failure of `requirement`, with the driver's standard error attached.
    pub fn fail(&self, requirement: &'static str, expected: &str, got: &str) -> Outcome {
        let mut failure = Failure::new(requirement, expected, got);
        failure.stderr = self.stderr();
        Outcome::fail(failure)
    }

    /// The driver's resident memory in KiB (Linux), with its descendants other than agents.
    pub fn driver_rss_kib(&self) -> Option<u64> {
        rss_kib(self.driver.id())
    }

    /// Processes still running that carry the case's token: the agents still alive, and
    /// anything they started.
    pub fn marked_processes(&self) -> Vec<(u32, String)> {
        crate::plugin_under_test::processes_with(&format!("{TOKEN_VAR}={}", self.token))
    }

    /// Quits the driver (waiting at most 15 s), kills it if it does not exit, and kills every
    /// agent still running.
    pub fn shut_down(&mut self) {
        if self.stdin.is_some() {
            let id = self.next_id;
            if let Ok(id) = self.send("quit", json!({})) {
                let _ = self.reply(id, Duration::from_secs(15));
            }
            let _ = id;
        }
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.driver.try_wait(), Ok(Some(_))) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if !matches!(self.driver.try_wait(), Ok(Some(_))) {
            let _ = self.driver.kill();
            let _ = self.driver.wait();
        }
        for (pid, _) in self.marked_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Every agent is gone now: once their sockets have closed, everything they reported
        // has arrived (the observer's findings included).
        self.wait_until(Instant::now() + Duration::from_secs(5), |w| {
            w.launches.iter().all(|l| l.ended_at.is_some())
        });
    }
}

impl Drop for HostUnderTest {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// A process's resident set size in KiB, from `/proc/<pid>/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// What `/proc` says of process `pid`: `None` when it is gone (reaped), else its state letter
/// (`Z` for a zombie).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) S ...": the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn write_bundle(bundle: &Path, harness: &Path, socket: &Path, token: &str) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    // The signal mask and the ignored signals are read with shell built-ins only, before the
    // agent's own runtime could change them (Rust ignores SIGPIPE at start-up); the host's
    // arguments, if any, are passed on after `--` (TRANS-14..TRANS-16).
    let script = format!(
        "#!/bin/sh\n# The conformance harness's agent (spec/harness.md section 6).\n{TOKEN_VAR}={}\nexport {TOKEN_VAR}\n\
         while read -r k v; do case $k in SigBlk:) {SIGBLK_VAR}=$v;; SigIgn:) {SIGIGN_VAR}=$v;; esac; done < /proc/$$/status\n\
         export {SIGBLK_VAR} {SIGIGN_VAR}\n\
         exec {} agent --control {} -- \"$@\"\n",
        sh_quote(token),
        sh_quote(&harness.display().to_string()),
        sh_quote(&socket.display().to_string())
    );
    let exe = bundle.join("agent");
    std::fs::write(&exe, script)?;
    std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755))?;
    std::fs::write(
        bundle.join("plugin.json"),
        json!({"id": "rpcplugin-conformance-agent", "backend": {"executable": "agent"}})
            .to_string(),
    )
}

fn accept_agents(listener: UnixListener, shared: Arc<Shared>, record: Recorder) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { break };
        let shared = Arc::clone(&shared);
        let record = record.clone();
        thread::spawn(move || serve_agent(stream, shared, record));
    }
}

fn serve_agent(stream: UnixStream, shared: Arc<Shared>, record: Recorder) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut lines = BufReader::new(stream).lines();
    let Some(Ok(first)) = lines.next() else {
        return;
    };
    let Ok(hello) = serde_json::from_str::<AgentHello>(&first) else {
        return;
    };
    let (index, script) = {
        let mut w = shared.lock();
        let index = w.launches.len();
        // LIFE-7: judged by the state of the processes when this one speaks, not by the order
        // in which the harness's threads happened to note their ends.
        let earlier_alive: Vec<(usize, u32)> = w
            .launches
            .iter()
            .filter(|l| l.pid != hello.pid)
            .filter(|l| matches!(process_state(l.pid), Some(state) if state != 'Z'))
            .map(|l| (l.index, l.pid))
            .collect();
        w.launches.push(AgentLaunch {
            index,
            pid: hello.pid,
            pgid: i64::from(hello.pgid),
            hello_at: Instant::now(),
            earlier_alive,
            fds: hello
                .fds
                .iter()
                .map(|f| (i64::from(f.fd), f.target.clone()))
                .collect(),
            started_mono: hello.mono_ns,
            args: hello.args.clone(),
            signals_blocked: hello
                .sig_blocked
                .as_deref()
                .and_then(|m| u64::from_str_radix(m, 16).ok()),
            signals_ignored: hello
                .sig_ignored
                .as_deref()
                .and_then(|m| u64::from_str_radix(m, 16).ok()),
            events: Vec::new(),
            ended_at: None,
        });
        if let Ok(clone) = writer.try_clone() {
            w.writers.insert(index, clone);
        }
        (index, w.script(index))
    };
    record.agent_line(index, &first);
    shared.changed.notify_all();
    let script = serde_json::to_string(&script).expect("a behaviour serializes");
    let _ = writer.write_all(format!("{script}\n").as_bytes());
    for line in lines {
        let Ok(line) = line else { break };
        record.agent_line(index, &line);
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            shared.lock().launches[index]
                .events
                .push((Instant::now(), v));
            shared.changed.notify_all();
        }
    }
    shared.lock().launches[index].ended_at = Some(Instant::now());
    shared.changed.notify_all();
}

fn read_driver(stdout: std::process::ChildStdout, shared: Arc<Shared>, record: Recorder) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line)
            .trim_end_matches('\n')
            .to_string();
        record.driver_line("from_driver", &text);
        let checked = check_line(&line, &shared);
        let mut w = shared.lock();
        match checked {
            Ok(Some((id, v))) => {
                w.replies.insert(id, (Instant::now(), v));
            }
            Ok(None) => {
                let v: Value = serde_json::from_slice(&line).unwrap_or(Value::Null);
                w.events.push((Instant::now(), v));
            }
            Err(e) => {
                w.contract_error.get_or_insert(format!(
                    "the driver broke the driver contract (spec 07 section 7.2): {e}; the line: {}",
                    if text.len() > 300 {
                        format!("{}...", &text[..300])
                    } else {
                        text.clone()
                    }
                ));
            }
        }
        drop(w);
        shared.changed.notify_all();
    }
    shared.lock().driver_eof = true;
    shared.changed.notify_all();
}

/// Validates one line of the driver: `Ok(Some((id, reply)))`, `Ok(None)` for an event.
fn check_line(line: &[u8], shared: &Shared) -> Result<Option<(u64, Value)>, String> {
    let text =
        std::str::from_utf8(line).map_err(|_| "a line that is not UTF-8 (DRV-1)".to_string())?;
    if !text.ends_with('\n') {
        return Err("a last line without a line feed (DRV-1)".into());
    }
    let v: Value = serde_json::from_str(text.trim_end_matches('\n'))
        .map_err(|e| format!("a line that is not one JSON object ({e}; DRV-1)"))?;
    if !v.is_object() {
        return Err("a line that is not a JSON object (DRV-1)".into());
    }
    if v.get("event").is_some() {
        schema::validate_event(&v).map_err(|e| format!("an invalid event: {e} (section 7.2.4)"))?;
        return Ok(None);
    }
    let id = v.get("id").and_then(Value::as_u64).ok_or_else(|| {
        "a message that is neither an event nor a reply with an id (DRV-2)".to_string()
    })?;
    let cmd = shared
        .lock()
        .sent
        .get(&id)
        .cloned()
        .ok_or_else(|| format!("a reply with id {id}, which no command had (DRV-2)"))?;
    if shared.lock().replies.contains_key(&id) {
        return Err(format!("a second reply to command {id} (DRV-2)"));
    }
    schema::validate_reply(&cmd, &v)
        .map_err(|e| format!("an invalid reply to {cmd}: {e} (DRV-2)"))?;
    Ok(Some((id, v)))
}
