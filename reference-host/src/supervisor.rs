//! The supervisor: runs one plugin through its life cycle (`spec/06-lifecycle.md`).
//!
//! A [`Supervisor`] starts in the Stopped state. [`Supervisor::start`] launches the bundle's
//! executable, waits for its announcement within the start timeout (HS-4) and leaves nothing
//! behind when that fails (LIFE-4, LIFE-5). While the plugin is Running, the user's hook calls
//! ([`Supervisor::activate`], [`Supervisor::deactivate`]) go to it; in every other state they
//! fail at once with [`HookError::NotRunning`] (LIFE-14).
//!
//! One monitor thread per running plugin watches the process, the connection and the hooks
//! stream. A crash (LIFE-6) ends the connection, gives the process its grace period and kills it
//! if needed (LIFE-7), reaps it (LIFE-19), waits the restart delay (LIFE-8, LIFE-9, LIFE-10),
//! relaunches it and, if it was activated, activates the new process with the configuration of
//! its last activation (LIFE-11) before it reports `restarted`. A failed restart attempt counts
//! as another failure (LIFE-12); after [`SupervisorOptions::max_restarts`] failures in a row the
//! supervisor gives up (LIFE-13).
//!
//! [`Supervisor::stop`] works in every state (LIFE-20): it deactivates an activated plugin
//! (bounded by the deactivation timeout, LIFE-16), closes both pipes, waits the stop grace period
//! without sending any signal (LIFE-17), kills the process if it is still there (LIFE-18), reaps
//! it and joins every thread. Dropping a supervisor stops it.
//!
//! Every change is reported as a [`LifecycleEvent`] ([`Supervisor::events`], or synchronously
//! to [`Supervisor::on_event`] callbacks, which is how the driver orders its event messages
//! before its replies).
//!
//! [`SupervisorOptions::mutant`] (test only, default `None`) turns the supervisor into one of
//! the deliberately broken hosts of [`crate::mutant`], each breaking one rule for the
//! conformance harness's self-tests; with `None` none of those code paths is taken.
//!
//! The monitor notices a crash (LIFE-6) within one poll of the end: the exit of the process,
//! the end of the connection, or the end of the hooks stream alone (the runtime's
//! [`RpcClient::ended`] reports the plugin's close frame and gob errors).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin_runtime::codec::gob::DecodeLimits;
use rpcplugin_runtime::codec::handshake::HandshakeError;
use rpcplugin_runtime::codec::rpc::{Call, Reply, API_SERVICE, ON_ACTIVATE};
use rpcplugin_runtime::codec::stream::{ConnectionEnd, ConnectionError, Limits, Role};
use rpcplugin_runtime::connection::{Connection, StartError as HandshakeFailure, Stream};
use rpcplugin_runtime::process::{self, Exit, LaunchError, LaunchOptions, Output, PluginProcess};
use rpcplugin_runtime::rpc::{serve, CallFailure, RpcClient, ServeEnd};

use crate::bundle::Bundle;
use crate::event::{CrashCause, LifecycleEvent};
use crate::mutant::{self, Mutant};

/// The constants of chapter 06, from the one place that defines them: the start timeout
/// (HS-4), the restart delays (LIFE-8, LIFE-9), the stable period (LIFE-10), the deactivation
/// timeout (LIFE-16) and the grace period (LIFE-17).
pub use rpcplugin_codec::lifecycle::{
    DEACTIVATE_TIMEOUT, RESTART_DELAY_MAX, RESTART_DELAY_MIN, STABLE_PERIOD, START_TIMEOUT,
    STOP_GRACE,
};
/// The supervisor keeps this many past events for [`Supervisor::events`] to replay.
pub const HISTORY_LIMIT: usize = 1024;

/// How often the monitor looks at the connection and the hooks stream while it waits for the
/// process (process exits wake it at once).
const POLL: Duration = Duration::from_millis(50);
/// How long a failed start waits for a plugin whose connection ended to exit by itself, so that
/// the error can report its exit status, before it kills it.
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(500);
/// How long a stop or crash waits for the threads copying the plugin's output (they end when
/// every holder of the pipe has closed it; a child of the plugin may keep it open).
const OUTPUT_DRAIN_WAIT: Duration = Duration::from_secs(1);
/// How long past its own bounds (deactivation timeout, grace period) a stop waits for the
/// monitor before it reports, on standard error, what the monitor is stuck in.
const STOP_STALL: Duration = Duration::from_secs(5);
/// How long closing an API stream waits for its server thread, whose calls end with the
/// connection, before it reports the thread on standard error and leaves it behind.
const API_SERVER_WAIT: Duration = Duration::from_secs(5);

/// Which of the plugin's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// One line the plugin wrote to its standard output or standard error (never protocol data,
/// TRANS-3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLine {
    /// The process that wrote it.
    pub pid: u32,
    /// Where it wrote it.
    pub stream: OutputStream,
    /// The line, without its line break (invalid UTF-8 replaced).
    pub line: String,
}

/// Where the plugin's standard output or standard error goes.
#[derive(Debug, Clone, Default)]
pub enum PluginOutput {
    /// The host's own stream (what the seed does).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// The host's standard error, line by line (keeps a host's standard output clean).
    HostStderr,
    /// Each line is sent to the channel.
    Lines(Sender<OutputLine>),
}

/// How a supervisor runs its plugin. [`Default`] gives the constants of `spec/README.md`.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// How long a start waits for the announcement, from before the launch (HS-4).
    pub start_timeout: Duration,
    /// Delay before the first relaunch after a crash; doubled for each further failure in a
    /// row (LIFE-9). Values below [`RESTART_DELAY_MIN`] are raised to it (LIFE-8).
    pub restart_delay: Duration,
    /// Longest delay before a relaunch (LIFE-9); never below the first delay.
    pub restart_delay_max: Duration,
    /// Running time after which the failures in a row go back to zero (LIFE-10).
    pub stable_period: Duration,
    /// Give up after a crash or failed restart attempt that would need relaunch number
    /// `max_restarts + 1` in a row (LIFE-13); `None` relaunches for ever.
    pub max_restarts: Option<u32>,
    /// Bound of the `OnDeactivate` call of a stop (LIFE-16).
    pub deactivate_timeout: Duration,
    /// Time the plugin has to exit after its connection ended, before it is killed (LIFE-7,
    /// LIFE-17).
    pub stop_grace: Duration,
    /// Environment variables set in the plugin, on top of the host's environment.
    pub env: Vec<(OsString, OsString)>,
    /// The plugin's standard output.
    pub stdout: PluginOutput,
    /// The plugin's standard error.
    pub stderr: PluginOutput,
    /// The connection's limits as a receiver: frame payload and stream buffer (FRAME-8,
    /// STREAM-13); the codec's defaults unless set.
    pub limits: Limits,
    /// The gob decoding limits of the hooks client and the API servers (GOB-15, GOB-17).
    pub gob_limits: DecodeLimits,
    /// Test only: a deliberately broken behaviour that breaks one rule of the spec (see
    /// [`Mutant`]), for the conformance harness's self-tests. `None`, the default, is the
    /// conforming host.
    pub mutant: Option<Mutant>,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            start_timeout: START_TIMEOUT,
            restart_delay: RESTART_DELAY_MIN,
            restart_delay_max: RESTART_DELAY_MAX,
            stable_period: STABLE_PERIOD,
            max_restarts: None,
            deactivate_timeout: DEACTIVATE_TIMEOUT,
            stop_grace: STOP_GRACE,
            env: Vec::new(),
            stdout: PluginOutput::Inherit,
            stderr: PluginOutput::Inherit,
            limits: Limits::default(),
            gob_limits: DecodeLimits::default(),
            mutant: None,
        }
    }
}

impl SupervisorOptions {
    /// The delay before the relaunch that follows the `failures`-th failure in a row (LIFE-8,
    /// LIFE-9): the first delay doubled `failures - 1` times, at most the longest delay.
    pub fn restart_delay_after(&self, failures: u32) -> Duration {
        if self.mutant == Some(Mutant::RestartsWithoutDelay) {
            return Duration::ZERO;
        }
        let restart_delay_max = if self.mutant == Some(Mutant::UncappedBackoff) {
            // Broken on purpose: no longest delay (LIFE-9).
            Duration::MAX
        } else {
            self.restart_delay_max
        };
        rpcplugin_codec::lifecycle::Settings {
            restart_delay: self.restart_delay,
            restart_delay_max,
            ..Default::default()
        }
        .restart_delay(failures)
    }
}

/// The state of a supervisor (`spec/06-lifecycle.md`, section 6.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No plugin process, nothing pending.
    Stopped,
    /// A start is in progress.
    Starting,
    /// The plugin is up; hook calls go through.
    Running {
        /// The plugin process.
        pid: u32,
        /// Whether the plugin is activated (section 6.1.1).
        activated: bool,
    },
    /// The plugin crashed, or a restart attempt failed; the supervisor waits for the old process
    /// to be gone and for the restart delay.
    Backoff {
        /// The failures in a row.
        failures: u32,
    },
    /// A relaunched plugin is being started and, if it was activated, re-activated.
    Restarting {
        /// The failures in a row.
        failures: u32,
    },
    /// A stop is in progress.
    Stopping,
    /// The supervisor gave up relaunching the plugin (LIFE-13).
    Failed {
        /// The failures in a row.
        failures: u32,
    },
}

impl State {
    /// Whether hook calls go through.
    pub fn is_running(&self) -> bool {
        matches!(self, State::Running { .. })
    }

    /// The state's name in section 6.5, in lowercase: `stopped`, `starting`, `running`,
    /// `backoff`, `restarting`, `stopping` or `failed`.
    pub fn name(&self) -> &'static str {
        match self {
            State::Stopped => "stopped",
            State::Starting => "starting",
            State::Running { .. } => "running",
            State::Backoff { .. } => "backoff",
            State::Restarting { .. } => "restarting",
            State::Stopping => "stopping",
            State::Failed { .. } => "failed",
        }
    }
}

/// How a stop ended the plugin process (Table 6-3, `stopped`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopOutcome {
    /// How the last process ended; `None` when there was no process to stop (L22).
    pub exit: Option<Exit>,
    /// Whether the process had to be killed after the grace period (LIFE-18).
    pub killed: bool,
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            State::Stopped => f.write_str("stopped"),
            State::Starting => f.write_str("starting"),
            State::Running {
                pid,
                activated: true,
            } => write!(f, "running and activated (pid {pid})"),
            State::Running { pid, .. } => write!(f, "running (pid {pid})"),
            State::Backoff { failures } => write!(
                f,
                "restarting after a crash (attempt {failures}, waiting for the restart delay)"
            ),
            State::Restarting { failures } => {
                write!(f, "restarting after a crash (attempt {failures})")
            }
            State::Stopping => f.write_str("stopping"),
            State::Failed { failures } => write!(
                f,
                "given up after {failures} failures in a row (start it again to retry)"
            ),
        }
    }
}

/// Why a start failed (L2, L4, L5). Nothing is left behind: the process, if one was launched,
/// has exited and was reaped (LIFE-4), and nothing will relaunch it (LIFE-5).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The executable could not be launched.
    #[error("plugin {id}: {source}")]
    Launch {
        /// The plugin's id.
        id: String,
        /// Why.
        #[source]
        source: LaunchError,
    },
    /// The connection could not be set up (threads, descriptors).
    #[error("plugin {id}: cannot set up the connection: {source}")]
    Connection {
        /// The plugin's id.
        id: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No announcement within the start timeout (HS-4); the plugin was killed.
    #[error(
        "plugin {id} did not announce its hooks stream within {timeout:?} \
         (timed out waiting for plugin, HS-4); it was killed"
    )]
    Timeout {
        /// The plugin's id.
        id: String,
        /// The start timeout.
        timeout: Duration,
    },
    /// The plugin exited before it announced its hooks stream (HS-6).
    #[error("plugin {id} {exit} before the handshake")]
    Exited {
        /// The plugin's id.
        id: String,
        /// How it ended.
        exit: Exit,
    },
    /// The announcement was malformed, or the connection failed before it (HS-5, HS-6,
    /// FRAME-14); the plugin was killed if it had not exited.
    #[error("plugin {id}: the handshake failed: {reason}")]
    Handshake {
        /// The plugin's id.
        id: String,
        /// How the connection ended.
        reason: ConnectionEnd,
    },
    /// A stop arrived during the start (L5, LIFE-23).
    #[error("plugin {id}: the start was cancelled: the supervisor was stopped")]
    Stopped {
        /// The plugin's id.
        id: String,
    },
    /// The supervisor is not Stopped or Failed.
    #[error("plugin {id} cannot be started: it is {state}")]
    NotStopped {
        /// The plugin's id.
        id: String,
        /// Its state.
        state: State,
    },
}

/// Why a hook call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// The plugin is not Running; nothing was sent (LIFE-14).
    #[error("plugin {id} is not running: it is {state}")]
    NotRunning {
        /// The plugin's id.
        id: String,
        /// The supervisor's state.
        state: State,
    },
    /// The call failed: an error response, or the end of the hooks stream or the connection
    /// (RPC-16, RPC-11).
    #[error("plugin {id} (pid {pid}): {failure}")]
    Call {
        /// The plugin's id.
        id: String,
        /// The plugin process.
        pid: u32,
        /// How the call failed.
        failure: CallFailure,
    },
    /// The configuration is not a JSON text (RPC-18).
    #[error("plugin {id}: the configuration is not valid JSON: {reason}")]
    InvalidConfiguration {
        /// The plugin's id.
        id: String,
        /// What serde_json said.
        reason: String,
    },
}

impl HookError {
    /// Whether the plugin answered with an error response (its hook failed).
    pub fn is_remote(&self) -> bool {
        matches!(
            self,
            HookError::Call {
                failure: CallFailure::Remote { .. },
                ..
            }
        )
    }
}

/// The plugin's process and the threads copying its output.
struct Child {
    pid: u32,
    /// `None` once abandoned ([`Mutant::LeavesOrphans`]).
    process: Option<PluginProcess>,
    output: Vec<JoinHandle<()>>,
    /// The supervisor's record of its current process, cleared once this one is gone.
    current: Arc<AtomicU32>,
}

impl Child {
    fn pid(&self) -> u32 {
        self.pid
    }

    /// The process is gone (or forgotten): the supervisor no longer has a process.
    fn gone(&self) {
        let _ = self
            .current
            .compare_exchange(self.pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Waits up to `d` for the process to exit (reaping it).
    fn wait_for(&mut self, d: Duration) -> Option<Exit> {
        let Some(process) = self.process.as_mut() else {
            std::thread::sleep(d.min(POLL));
            return None;
        };
        match process.wait_timeout(d) {
            Ok(exit) => exit,
            // Not expected for our own child; treat it as still running and let the caller
            // kill it eventually.
            Err(_) => {
                std::thread::sleep(d.min(POLL));
                None
            }
        }
    }

    /// Kills the process (`SIGKILL`) unless it has exited, and reaps it.
    fn kill(&mut self) -> (Exit, bool) {
        let Some(process) = self.process.as_mut() else {
            return (Exit::Signal(nix::libc::SIGKILL), false);
        };
        match process.kill() {
            Ok(exit) => (exit, exit == Exit::Signal(nix::libc::SIGKILL)),
            Err(_) => match process.wait() {
                Ok(exit) => (exit, false),
                Err(_) => (Exit::Signal(nix::libc::SIGKILL), true),
            },
        }
    }

    /// [`Mutant::LeavesOrphans`]: forgets the process without killing or reaping it.
    fn abandon(&mut self) {
        if let Some(process) = self.process.take() {
            std::mem::forget(process);
        }
        self.output.clear();
        self.gone();
    }

    /// Test only (mutants): hands the process to a thread that waits for it to exit by itself,
    /// however long that takes, and reaps it then; no signal is sent.
    fn reap_in_background(&mut self) {
        if let Some(mut process) = self.process.take() {
            std::thread::spawn(move || {
                let _ = process.wait();
            });
        }
        self.output.clear();
        self.gone();
    }

    /// Gives the process `grace` to exit, sending no signal, then kills it (`SIGKILL`); reaps
    /// it; waits a little for the output threads. Returns how it ended and whether it was
    /// killed.
    fn finish(&mut self, grace: Duration) -> (Exit, bool) {
        let result = match self.wait_for(grace) {
            Some(exit) => (exit, false),
            None => self.kill(),
        };
        self.gone();
        let deadline = Instant::now() + OUTPUT_DRAIN_WAIT;
        for t in self.output.drain(..) {
            while !t.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            if t.is_finished() {
                let _ = t.join();
            }
            // Otherwise a descendant of the plugin still holds the pipe (TRANS-11); the thread
            // ends when it closes it.
        }
        result
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        // The process, if not reaped yet, is killed and reaped by PluginProcess's Drop.
        self.gone();
    }
}

/// An API stream of an activation, with the thread serving `LocalAPI` on it (RPC-13).
struct ApiStream {
    stream: Stream,
    server: JoinHandle<ServeEnd>,
}

impl ApiStream {
    /// Closes the stream and waits for its server thread, at most [`API_SERVER_WAIT`]: its
    /// calls end once the connection has (a LocalAPI call never blocks on the plugin).
    fn close(self) {
        let id = self.stream.id();
        self.stream.close();
        let deadline = Instant::now() + API_SERVER_WAIT;
        while !self.server.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        if self.server.is_finished() {
            let _ = self.server.join();
        } else {
            eprintln!(
                "rpcplugin-host: the LocalAPI server of stream {id} has not ended {API_SERVER_WAIT:?} \
                 after its stream closed; left behind"
            );
        }
    }
}

/// One launched process whose handshake succeeded.
struct Instance {
    pid: u32,
    conn: Arc<Connection>,
    hooks: RpcClient,
    api: Mutex<Option<ApiStream>>,
    /// Set when a call found the hooks stream ended while the connection was up (LIFE-6).
    hooks_ended: Mutex<Option<String>>,
    /// The supervisor's mutant ([`Mutant::EvenApiStream`] changes the `OnActivate` argument).
    mutant: Option<Mutant>,
}

/// Why a connection taken out of the supervisor's state is dropped only after the lock is
/// released (`let conn = self.lock().conn.take(); drop(conn);`, never one expression, whose
/// temporary guard would outlive the drop): dropping the last handle on a connection waits for
/// its threads, which must never happen under the lock that the driver's commands and the stop
/// need.
const _FORGET_CONN: () = ();

fn relock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Instance {
    /// Ends the connection, closes the API stream and waits for its server.
    fn teardown(&self) {
        self.conn.close();
        self.hooks.close();
        if let Some(api) = relock(&self.api).take() {
            api.close();
        }
    }

    fn note_call_failure(&self, failure: &CallFailure) {
        if let CallFailure::Ended { reason, .. } = failure {
            if self.conn.ended().is_none() {
                relock(&self.hooks_ended).get_or_insert_with(|| reason.clone());
            }
        }
    }

    /// RPC-13: opens a new API stream, serves `LocalAPI` on it (answering
    /// `LoadPluginConfiguration` with `config`), closes the previous one (RPC-17), then calls
    /// `OnActivate` with the new stream's id. On failure the new stream is closed (RPC-17).
    fn activate(&self, config: Arc<Vec<u8>>, loads: Arc<AtomicU64>) -> Result<(), CallFailure> {
        let ended = |reason: String| CallFailure::Ended {
            method: ON_ACTIVATE.to_string(),
            reason,
        };
        let stream = self.conn.open_stream().map_err(|e| ended(e.to_string()))?;
        let id = stream.id();
        let clip = self.mutant == Some(Mutant::ClipsConfiguration);
        let reencode = self.mutant == Some(Mutant::ReencodesConfiguration);
        let handler = Arc::new(move |call: Call| match call {
            Call::LoadPluginConfiguration => {
                loads.fetch_add(1, Ordering::Relaxed);
                let config = config.as_ref().clone();
                Ok(Reply::Configuration(if clip {
                    mutant::clip_configuration(config)
                } else if reencode {
                    mutant::reencode_configuration(&config)?
                } else {
                    config
                }))
            }
            other => Err(format!("rpc: can't find method {}", other.service_method())),
        });
        let server = serve(stream.clone(), &[API_SERVICE], handler).map_err(|e| {
            stream.close();
            ended(format!("cannot serve LocalAPI: {e}"))
        })?;
        let previous = relock(&self.api).replace(ApiStream { stream, server });
        if let Some(previous) = previous {
            previous.close();
        }
        let result = self
            .hooks
            .call(Call::OnActivate {
                api_stream: mutant::api_id_for_plugin(self.mutant, id.get()),
            })
            .map(|_| ());
        if let Err(failure) = &result {
            self.note_call_failure(failure);
            let mut api = relock(&self.api);
            if api.as_ref().is_some_and(|a| a.stream.id() == id) {
                let mine = api.take();
                drop(api);
                if let Some(mine) = mine {
                    mine.close();
                }
            }
        }
        result
    }

    /// Calls `OnDeactivate`, then closes the API stream if the plugin has not (RPC-17).
    fn deactivate(&self) -> Result<(), CallFailure> {
        let result = self.hooks.call(Call::OnDeactivate).map(|_| ());
        if let Err(failure) = &result {
            self.note_call_failure(failure);
        }
        let api = relock(&self.api).take();
        if let Some(api) = api {
            api.close();
        }
        result
    }
}

struct Inner {
    state: State,
    /// A stop has begun: a start or relaunch in progress is abandoned, nothing is relaunched.
    stop_requested: bool,
    /// The stop's deactivation is over: the monitor ends the plugin now.
    shutdown: bool,
    /// The connection of the current process, as soon as it exists (a stop closes it).
    conn: Option<Arc<Connection>>,
    /// The current process, once Running.
    instance: Option<Arc<Instance>>,
    /// The configuration of the last successful activation, while the plugin is activated.
    activation: Option<Arc<Vec<u8>>>,
    /// The failures in a row.
    failures: u32,
    /// How the process that a stop ended went away.
    stop_report: Option<(Exit, bool)>,
}

/// A function that sees every event as it is reported ([`Supervisor::on_event`]).
type EventCallback = Box<dyn Fn(&LifecycleEvent) + Send>;

struct Events {
    history: VecDeque<LifecycleEvent>,
    subscribers: Vec<Sender<LifecycleEvent>>,
    callbacks: Vec<EventCallback>,
}

struct Shared {
    bundle: Bundle,
    options: SupervisorOptions,
    inner: Mutex<Inner>,
    changed: Condvar,
    events: Mutex<Events>,
    config_loads: Arc<AtomicU64>,
    /// The current plugin process (0: none), in any state.
    current_pid: Arc<AtomicU32>,
    /// What the monitor thread is doing, for the diagnostic of a stop that waits too long.
    phase: Mutex<&'static str>,
}

/// Runs one plugin: start, hook calls, crash restarts, stop (see the module documentation).
pub struct Supervisor {
    shared: Arc<Shared>,
    monitor: Mutex<Option<JoinHandle<()>>>,
    /// Serialises stops (L21) and starts.
    control: Mutex<()>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("plugin", &self.shared.bundle.id())
            .field("state", &self.state())
            .finish()
    }
}

enum LaunchFailure {
    /// The start failed; the process (if any) is gone.
    Failed {
        error: StartError,
        pid: Option<u32>,
        exit: Option<Exit>,
    },
    /// A stop arrived; the process (if any) was ended as a stop ends it and `stop_report` is
    /// set.
    Stopped {
        /// The process that was launched.
        pid: u32,
    },
}

/// What the monitor saw end a Running plugin.
enum Observed {
    Exited,
    Connection(ConnectionEnd),
    Hooks(String),
    Shutdown,
}

/// The monitor's next step.
enum Next {
    Watch(Child, Arc<Instance>),
    Backoff { detected: Instant },
    Done,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        relock(&self.inner)
    }

    fn id(&self) -> &str {
        self.bundle.id()
    }

    /// Records what the monitor is doing now.
    fn phase(&self, phase: &'static str) {
        *relock(&self.phase) = phase;
    }

    fn emit(&self, event: LifecycleEvent) {
        let mut events = relock(&self.events);
        if events.history.len() == HISTORY_LIMIT {
            events.history.pop_front();
        }
        events.history.push_back(event.clone());
        events.subscribers.retain(|s| s.send(event.clone()).is_ok());
        for callback in &events.callbacks {
            callback(&event);
        }
    }

    /// The connection's limits: the options', but no per-stream buffer limit for
    /// [`Mutant::UnboundedBuffering`] (STREAM-15).
    fn limits(&self) -> Limits {
        if self.mutant_is(Mutant::UnboundedBuffering) {
            mutant::unbounded_limits()
        } else {
            self.options.limits
        }
    }

    fn mutant_is(&self, mutant: Mutant) -> bool {
        self.options.mutant == Some(mutant)
    }

    /// The start timeout (HS-4); at most [`mutant::SHORT_START_TIMEOUT`] for
    /// [`Mutant::ShortStartTimeout`].
    fn start_timeout(&self) -> Duration {
        if self.mutant_is(Mutant::ShortStartTimeout) {
            self.options.start_timeout.min(mutant::SHORT_START_TIMEOUT)
        } else {
            self.options.start_timeout
        }
    }

    /// The grace period of a stop (LIFE-17); none for [`Mutant::NoStopGrace`].
    fn stop_grace(&self) -> Duration {
        if self.mutant_is(Mutant::NoStopGrace) {
            Duration::ZERO
        } else {
            self.options.stop_grace
        }
    }

    /// How a stop ends a process: the grace period, then the kill (LIFE-17, LIFE-18), or
    /// nothing at all for [`Mutant::LeavesOrphans`] (no report then).
    fn end_for_stop(&self, child: &mut Child) -> Option<(Exit, bool)> {
        if self.mutant_is(Mutant::LeavesOrphans) {
            child.abandon();
            return None;
        }
        Some(child.finish(self.stop_grace()))
    }

    fn output(&self, which: &PluginOutput) -> Output {
        match which {
            PluginOutput::Inherit => Output::Inherit,
            PluginOutput::Null => Output::Null,
            PluginOutput::HostStderr | PluginOutput::Lines(_) => Output::Capture,
        }
    }

    /// Launches the plugin and waits for its handshake (L1 to L5, L10, L13, L16). On failure
    /// the process is gone; on a stop it was ended as a stop ends it.
    fn launch(&self, relaunch: bool) -> Result<(Child, Arc<Instance>), LaunchFailure> {
        let id = self.id().to_string();
        let started = Instant::now();
        // Broken on purpose for three mutants: an argument (TRANS-14), or the plugin started
        // through env(1) with signals blocked (TRANS-15) or ignored (TRANS-16).
        let (program, args) = match self.options.mutant {
            Some(Mutant::PassesArguments) => {
                (self.bundle.executable_path(), vec![id.clone().into()])
            }
            Some(m @ (Mutant::BlocksSignals | Mutant::IgnoresSigpipe)) => {
                let signals: &[&str] = if m == Mutant::BlocksSignals {
                    &["--block-signal=CHLD", "--block-signal=TERM"]
                } else {
                    &["--ignore-signal=PIPE"]
                };
                let mut args: Vec<std::ffi::OsString> = signals.iter().map(|s| s.into()).collect();
                args.push("--".into());
                args.push(self.bundle.executable_path().into_os_string());
                (std::path::PathBuf::from("/usr/bin/env"), args)
            }
            _ => (self.bundle.executable_path(), Vec::new()),
        };
        let opts = LaunchOptions {
            program,
            args,
            env: self.options.env.clone(),
            cwd: None,
            stdout: self.output(&self.options.stdout),
            stderr: self.output(&self.options.stderr),
            stdin: if self.mutant_is(Mutant::InheritsStdin) {
                // Broken on purpose: the host's own standard input (TRANS-6).
                process::Stdin::Inherit
            } else {
                process::Stdin::Null
            },
            // Broken on purpose for SharedProcessGroup: the host's process group (TRANS-13).
            own_process_group: !self.mutant_is(Mutant::SharedProcessGroup),
        };
        // Broken on purpose: a descriptor without close-on-exec, open across the launch
        // (TRANS-4).
        let leaked = if self.mutant_is(Mutant::LeaksDescriptor) {
            mutant::LeakedDescriptor::open(self.bundle.dir())
        } else {
            None
        };
        let launched = process::launch(&opts);
        drop(leaked);
        let mut launched = launched.map_err(|source| LaunchFailure::Failed {
            error: StartError::Launch {
                id: id.clone(),
                source,
            },
            pid: None,
            exit: None,
        })?;
        let pid = launched.process.pid();
        self.current_pid.store(pid, Ordering::SeqCst);
        let stdout = launched.process.take_stdout();
        let stderr = launched.process.take_stderr();
        let mut child = Child {
            pid,
            process: Some(launched.process),
            output: Vec::new(),
            current: Arc::clone(&self.current_pid),
        };
        if let Some(out) = stdout {
            child.output.extend(forward(
                out,
                pid,
                OutputStream::Stdout,
                &self.options.stdout,
                &id,
            ));
        }
        if let Some(err) = stderr {
            child.output.extend(forward(
                err,
                pid,
                OutputStream::Stderr,
                &self.options.stderr,
                &id,
            ));
        }
        let relayed = mutant::ConnectionSlot::default();
        let pipes = match self.options.mutant {
            Some(m) if m.tampers_with_frames() => {
                mutant::interpose(m, launched.reader, launched.writer, Arc::clone(&relayed))
            }
            _ => Ok((launched.reader, launched.writer)),
        };
        let conn = match pipes
            .and_then(|(reader, writer)| Connection::new(Role::Host, reader, writer, self.limits()))
        {
            Ok(conn) => {
                conn.set_gob_limits(if self.mutant_is(Mutant::NoGobLimit) {
                    // Broken on purpose: no message limit (GOB-15, GOB-19).
                    mutant::no_gob_limit()
                } else {
                    self.options.gob_limits
                });
                let conn = Arc::new(conn);
                let _ = relayed.set(Arc::downgrade(&conn));
                conn
            }
            Err(source) => {
                let (exit, _) = child.finish(Duration::ZERO);
                return Err(LaunchFailure::Failed {
                    error: StartError::Connection { id, source },
                    pid: Some(pid),
                    exit: Some(exit),
                });
            }
        };
        {
            let mut inner = self.lock();
            if inner.stop_requested {
                conn.close();
            }
            inner.conn = Some(Arc::clone(&conn));
        }
        let remaining = if self.mutant_is(Mutant::IgnoresStartTimeout) {
            Duration::MAX
        } else {
            self.start_timeout().saturating_sub(started.elapsed())
        };
        let handshake = match conn.wait_for_handshake(remaining) {
            Err(HandshakeFailure::Ended(reason))
                if output_ended(&reason) && self.mutant_is(Mutant::WaitsOutEarlyExit) =>
            {
                // Broken on purpose, as the seed (Table 4-1, E11): the end of the plugin's
                // output is not noticed, the start waits for its timeout (HS-6).
                let deadline = started + self.start_timeout();
                while Instant::now() < deadline && !self.lock().stop_requested {
                    std::thread::sleep(
                        POLL.min(deadline.saturating_duration_since(Instant::now())),
                    );
                }
                Err(HandshakeFailure::Timeout(self.start_timeout()))
            }
            other => other,
        };
        let hooks = match handshake {
            Ok(hooks) => hooks,
            Err(e) => {
                conn.close();
                return Err(self.failed_start(child, e, relaunch));
            }
        };
        let hooks = match RpcClient::new(hooks) {
            Ok(hooks) => hooks,
            Err(source) => {
                conn.close();
                let (exit, _) = child.finish(Duration::ZERO);
                // Taken under the lock, dropped after it (see _FORGET_CONN).
                let conn = self.lock().conn.take();
                drop(conn);
                return Err(LaunchFailure::Failed {
                    error: StartError::Connection { id, source },
                    pid: Some(pid),
                    exit: Some(exit),
                });
            }
        };
        let instance = Arc::new(Instance {
            pid,
            conn,
            hooks,
            api: Mutex::new(None),
            hooks_ended: Mutex::new(None),
            mutant: self.options.mutant,
        });
        Ok((child, instance))
    }

    /// After a failed handshake: ends the process (as a stop would when one was requested, at
    /// once otherwise: LIFE-4) and says why the start failed.
    fn failed_start(&self, mut child: Child, e: HandshakeFailure, relaunch: bool) -> LaunchFailure {
        let id = self.id().to_string();
        let pid = child.pid();
        if self.lock().stop_requested {
            let report = self.end_for_stop(&mut child);
            let mut inner = self.lock();
            let conn = inner.conn.take();
            inner.stop_report = report;
            drop(inner);
            drop(conn);
            return LaunchFailure::Stopped { pid };
        }
        if !relaunch && self.mutant_is(Mutant::LeavesOrphans) {
            // Broken on purpose: the process is neither killed nor reaped (LIFE-4).
            child.abandon();
            let error = match e {
                HandshakeFailure::Timeout(_) => StartError::Timeout {
                    id,
                    timeout: self.start_timeout(),
                },
                HandshakeFailure::Ended(reason) => StartError::Handshake { id, reason },
                other => StartError::Handshake {
                    id,
                    reason: ConnectionEnd::Transport(other.to_string()),
                },
            };
            // Taken under the lock, dropped after it (see _FORGET_CONN).
            let conn = self.lock().conn.take();
            drop(conn);
            return LaunchFailure::Failed {
                error,
                pid: Some(pid),
                exit: None,
            };
        }
        let (error, exit) = match e {
            HandshakeFailure::Timeout(_) => {
                let (exit, _) = child.finish(Duration::ZERO);
                // The timer ran from before the launch: report the configured timeout.
                let timeout = self.start_timeout();
                (StartError::Timeout { id, timeout }, exit)
            }
            HandshakeFailure::Ended(reason)
                if !relaunch
                    && (self.mutant_is(Mutant::WaitsForFailedPlugin)
                        || self.mutant_is(Mutant::RelaunchesAfterFailedStart)) =>
            {
                // Broken on purpose, as the seed after a rejected announcement: the
                // connection is closed and the process left to exit by itself, reaped
                // whenever it does (LIFE-4); and for RelaunchesAfterFailedStart, launched
                // again every second in the background (LIFE-5).
                child.reap_in_background();
                if self.mutant_is(Mutant::RelaunchesAfterFailedStart) {
                    mutant::launch_in_background(
                        self.bundle.executable_path(),
                        Duration::from_secs(1),
                        3,
                    );
                }
                // Taken under the lock, dropped after it (see _FORGET_CONN).
                let conn = self.lock().conn.take();
                drop(conn);
                return LaunchFailure::Failed {
                    error: StartError::Handshake { id, reason },
                    pid: Some(pid),
                    exit: None,
                };
            }
            HandshakeFailure::Ended(reason) => {
                // End-of-file or a failed pipe: most likely the process is exiting; give it a
                // moment so that the error can say how it ended.
                let wait = if output_ended(&reason) {
                    EXIT_REPORT_WAIT
                } else {
                    Duration::ZERO
                };
                let (exit, killed) = child.finish(wait);
                let error = if !killed && output_ended(&reason) {
                    StartError::Exited { id, exit }
                } else {
                    StartError::Handshake { id, reason }
                };
                (error, exit)
            }
            other => {
                let (exit, _) = child.finish(Duration::ZERO);
                (
                    StartError::Handshake {
                        id,
                        reason: ConnectionEnd::Transport(other.to_string()),
                    },
                    exit,
                )
            }
        };
        // Taken under the lock, dropped after it (see _FORGET_CONN).
        let conn = self.lock().conn.take();
        drop(conn);
        LaunchFailure::Failed {
            error,
            pid: Some(pid),
            exit: Some(exit),
        }
    }

    /// Watches a Running plugin until it crashes or the stop ends it.
    fn watch(&self, child: &mut Child, instance: &Instance) -> Observed {
        loop {
            if child.wait_for(POLL).is_some() {
                return Observed::Exited;
            }
            if self.lock().shutdown {
                return Observed::Shutdown;
            }
            if let Some(end) = instance.conn.ended() {
                // The process usually exits at the same moment; prefer its exit as the cause.
                if child.wait_for(POLL).is_some() {
                    return Observed::Exited;
                }
                return Observed::Connection(end);
            }
            // LIFE-6: the end of the hooks stream alone (the plugin closed it, or its gob
            // stream broke) is a crash too.
            if let Some(reason) = relock(&instance.hooks_ended)
                .clone()
                .or_else(|| instance.hooks.ended())
            {
                return Observed::Hooks(reason);
            }
        }
    }

    /// The Running state of the monitor: waits for a crash or a stop.
    fn run(&self, mut child: Child, instance: Arc<Instance>) -> Next {
        let running_since = Instant::now();
        self.phase("watching the running plugin");
        let observed = self.watch(&mut child, &instance);
        self.phase("ending the connection of the ended plugin");
        let detected = Instant::now();
        // Broken on purpose: the stop's kill comes before the end of the connection.
        let kill_first = matches!(observed, Observed::Shutdown)
            && self.mutant_is(Mutant::KillsWithoutDeactivate);
        if !kill_first {
            // LIFE-6: end the connection at once, so that pending calls fail (RPC-11).
            instance.conn.close();
        }
        let stopping = {
            let mut inner = self.lock();
            if !inner.stop_requested {
                // Broken on purpose for BackoffNeverResets: the failures in a row only grow.
                if running_since.elapsed() >= self.options.stable_period
                    && !self.mutant_is(Mutant::BackoffNeverResets)
                {
                    inner.failures = 0; // LIFE-10
                }
                inner.failures += 1;
                inner.state = State::Backoff {
                    failures: inner.failures,
                };
            }
            inner.stop_requested
        };
        if stopping || matches!(observed, Observed::Shutdown) {
            return self.stop_now(&mut child, &instance);
        }
        let pid = instance.pid;
        self.phase("waiting for the crashed process to exit");
        // LIFE-7: the grace period, then the kill; LIFE-19: reaped.
        let exit = if self.mutant_is(Mutant::RelaunchesWhileAlive) {
            // Broken on purpose: the relaunch does not wait for the crashed process (LIFE-7).
            child.reap_in_background();
            None
        } else {
            Some(child.finish(self.options.stop_grace).0)
        };
        self.phase("closing the crashed plugin's streams");
        instance.teardown();
        drop(instance);
        self.phase("reporting the crash");
        let cause = match observed {
            Observed::Exited => CrashCause::ProcessExited,
            Observed::Connection(end) => CrashCause::ConnectionEnded(end.to_string()),
            Observed::Hooks(reason) => CrashCause::HooksStreamEnded(reason),
            Observed::Shutdown => unreachable!("handled above"),
        };
        self.after_failure(Some(pid), cause, exit, detected, false)
    }

    /// Reports a crash or failed restart attempt (counting it first when `count`) and decides
    /// what follows: the backoff, giving up (LIFE-13), or the end of a stop.
    fn after_failure(
        &self,
        pid: Option<u32>,
        cause: CrashCause,
        exit: Option<Exit>,
        detected: Instant,
        count: bool,
    ) -> Next {
        let mut inner = self.lock();
        // Dropped once the lock is released (see _FORGET_CONN).
        let gone = (inner.instance.take(), inner.conn.take());
        if count && !inner.stop_requested {
            inner.failures += 1;
            inner.state = State::Backoff {
                failures: inner.failures,
            };
        }
        let failures = inner.failures;
        let give_up = self.options.max_restarts.is_some_and(|m| failures > m);
        let stopping = inner.stop_requested;
        let delay = (!give_up && !stopping).then(|| self.options.restart_delay_after(failures));
        drop(inner);
        drop(gone);
        self.emit(LifecycleEvent::Crashed {
            pid,
            cause,
            exit,
            failures,
            delay,
        });
        if stopping {
            self.finish_stop(None);
            return Next::Done;
        }
        if give_up {
            let mut inner = self.lock();
            inner.state = State::Failed { failures };
            inner.activation = None;
            drop(inner);
            self.changed.notify_all();
            self.emit(LifecycleEvent::GaveUp { failures });
            return Next::Done;
        }
        Next::Backoff { detected }
    }

    /// Backoff and Restarting: waits for the delay (a stop cuts it short, L12, LIFE-22), relaunches,
    /// re-activates (LIFE-11), and reports `restarted`.
    fn relaunch(&self, detected: Instant) -> Next {
        self.phase("waiting out the restart delay");
        let until = {
            let inner = self.lock();
            detected + self.options.restart_delay_after(inner.failures)
        };
        let mut inner = self.lock();
        loop {
            if inner.stop_requested {
                drop(inner);
                self.finish_stop(None);
                if self.mutant_is(Mutant::StopLeavesRelaunch) {
                    // Broken on purpose: the relaunch is not cancelled (LIFE-22).
                    mutant::launch_in_background(
                        self.bundle.executable_path(),
                        until.saturating_duration_since(Instant::now()),
                        1,
                    );
                }
                return Next::Done;
            }
            if self.mutant_is(Mutant::NeverRestarts) {
                // Broken on purpose: the relaunch never comes (LIFE-8, LIFE-12).
                inner = self.changed.wait(inner).unwrap_or_else(|e| e.into_inner());
                continue;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            inner = self
                .changed
                .wait_timeout(inner, until - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        inner.state = State::Restarting {
            failures: inner.failures,
        };
        drop(inner);
        self.phase("relaunching the plugin");
        let (mut child, instance) = match self.launch(true) {
            Ok(launched) => launched,
            Err(LaunchFailure::Stopped { .. }) => {
                // `launch` recorded how the process ended.
                self.finish_stop(None);
                return Next::Done;
            }
            Err(LaunchFailure::Failed { error, pid, exit }) => {
                return self.after_failure(
                    pid,
                    CrashCause::RestartFailed(error.to_string()),
                    exit,
                    Instant::now(),
                    true,
                );
            }
        };
        let config = if self.mutant_is(Mutant::NoReactivation) {
            // Broken on purpose: the new process is left unactivated (LIFE-11).
            self.lock().activation.take();
            None
        } else {
            self.lock().activation.clone()
        };
        let mut reactivated = false;
        self.phase("re-activating the relaunched plugin");
        if let Some(config) = config {
            if let Err(failure) = instance.activate(config, Arc::clone(&self.config_loads)) {
                let detected = Instant::now();
                instance.conn.close();
                if self.lock().stop_requested {
                    return self.stop_now(&mut child, &instance);
                }
                let pid = instance.pid;
                let (exit, _) = child.finish(self.options.stop_grace);
                instance.teardown();
                return self.after_failure(
                    Some(pid),
                    CrashCause::ReactivationFailed(failure.to_string()),
                    Some(exit),
                    detected,
                    true,
                );
            }
            reactivated = true;
        }
        let mut inner = self.lock();
        if inner.stop_requested {
            drop(inner);
            return self.stop_now(&mut child, &instance);
        }
        let pid = instance.pid;
        inner.state = State::Running {
            pid,
            activated: reactivated,
        };
        inner.instance = Some(Arc::clone(&instance));
        drop(inner);
        self.changed.notify_all();
        self.emit(LifecycleEvent::Restarted { pid, reactivated });
        Next::Watch(child, instance)
    }

    /// A stop asked for while a process runs: close its pipes, give it the grace period, kill
    /// it if needed and reap it (LIFE-17..LIFE-19), then report Stopped.
    fn stop_now(&self, child: &mut Child, instance: &Instance) -> Next {
        self.phase("ending the plugin for a stop");
        let report = if self.mutant_is(Mutant::KillsWithoutDeactivate) {
            // Broken on purpose: SIGKILL before the pipes are closed (LIFE-17).
            let report = child.kill();
            instance.conn.close();
            child.finish(Duration::ZERO);
            Some(report)
        } else {
            instance.conn.close();
            self.end_for_stop(child)
        };
        instance.teardown();
        self.finish_stop(report);
        Next::Done
    }

    /// The end of a stop: Stopped, with how the process ended.
    fn finish_stop(&self, report: Option<(Exit, bool)>) {
        let mut inner = self.lock();
        // Dropped once the lock is released (see _FORGET_CONN).
        let gone = (inner.instance.take(), inner.conn.take());
        inner.activation = None;
        if report.is_some() {
            inner.stop_report = report;
        }
        inner.state = State::Stopped;
        drop(inner);
        drop(gone);
        self.changed.notify_all();
    }

    fn monitor(self: Arc<Self>, child: Child, instance: Arc<Instance>) {
        self.monitor_from(Next::Watch(child, instance));
    }

    /// The monitor's loop, from `next`. A panic in it (a bug) is reported on standard error and
    /// leaves the supervisor Failed (Stopped if a stop was asked for), with its process killed
    /// and reaped by the unwinding, so that a stop still returns.
    fn monitor_from(self: Arc<Self>, next: Next) {
        let s = Arc::clone(&self);
        let looped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let mut next = next;
            loop {
                next = match next {
                    Next::Watch(child, instance) => s.run(child, instance),
                    Next::Backoff { detected } => s.relaunch(detected),
                    Next::Done => return,
                };
            }
        }));
        if let Err(panic) = looped {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic".into());
            let phase = *relock(&self.phase);
            eprintln!(
                "rpcplugin-host: the supervisor of plugin {} failed while {phase}: {what}",
                self.id()
            );
            let mut inner = self.lock();
            let gone = (inner.instance.take(), inner.conn.take());
            inner.activation = None;
            inner.state = if inner.stop_requested {
                State::Stopped
            } else {
                State::Failed {
                    failures: inner.failures,
                }
            };
            drop(inner);
            drop(gone);
            self.changed.notify_all();
        }
        self.phase("ended");
    }
}

/// Whether the connection ended because the plugin's output ended (end-of-file or a failed
/// pipe): what a plugin that exits does to it.
fn output_ended(reason: &ConnectionEnd) -> bool {
    matches!(
        reason,
        ConnectionEnd::PeerClosed
            | ConnectionEnd::Transport(_)
            | ConnectionEnd::Error(ConnectionError::Handshake(HandshakeError::EndOfInput))
    )
}

/// Starts the thread that copies one of the plugin's output pipes.
fn forward(
    pipe: impl Read + Send + 'static,
    pid: u32,
    stream: OutputStream,
    to: &PluginOutput,
    id: &str,
) -> Option<JoinHandle<()>> {
    let to = to.clone();
    let prefix = format!("[{id} {pid}] ");
    std::thread::Builder::new()
        .name(format!("rpcplugin-output-{pid}"))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                match &to {
                    PluginOutput::Lines(tx) => {
                        // A receiver that went away no longer wants lines; keep draining.
                        let _ = tx.send(OutputLine { pid, stream, line });
                    }
                    _ => {
                        let mut err = std::io::stderr().lock();
                        let _ = writeln!(err, "{prefix}{line}");
                    }
                }
            }
        })
        .ok()
}

impl Supervisor {
    /// A supervisor for `bundle`, in the Stopped state; nothing is launched yet.
    pub fn new(bundle: Bundle, options: SupervisorOptions) -> Supervisor {
        Supervisor {
            shared: Arc::new(Shared {
                bundle,
                options,
                inner: Mutex::new(Inner {
                    state: State::Stopped,
                    stop_requested: false,
                    shutdown: false,
                    conn: None,
                    instance: None,
                    activation: None,
                    failures: 0,
                    stop_report: None,
                }),
                changed: Condvar::new(),
                events: Mutex::new(Events {
                    history: VecDeque::new(),
                    subscribers: Vec::new(),
                    callbacks: Vec::new(),
                }),
                current_pid: Arc::new(AtomicU32::new(0)),
                config_loads: Arc::new(AtomicU64::new(0)),
                phase: Mutex::new("not started"),
            }),
            monitor: Mutex::new(None),
            control: Mutex::new(()),
        }
    }

    /// [`Supervisor::new`], then [`Supervisor::start`].
    pub fn start_new(bundle: Bundle, options: SupervisorOptions) -> Result<Supervisor, StartError> {
        let supervisor = Supervisor::new(bundle, options);
        supervisor.start()?;
        Ok(supervisor)
    }

    /// The bundle this supervisor runs.
    pub fn bundle(&self) -> &Bundle {
        &self.shared.bundle
    }

    /// The options this supervisor runs with.
    pub fn options(&self) -> &SupervisorOptions {
        &self.shared.options
    }

    /// The plugin's id.
    pub fn id(&self) -> &str {
        self.shared.id()
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.lock().state
    }

    /// The current plugin process, while Running.
    pub fn pid(&self) -> Option<u32> {
        match self.state() {
            State::Running { pid, .. } => Some(pid),
            _ => None,
        }
    }

    /// How many `LoadPluginConfiguration` calls the supervisor has answered so far.
    pub fn configuration_requests(&self) -> u64 {
        self.shared.config_loads.load(Ordering::Relaxed)
    }

    /// A receiver of the life-cycle events: first the events so far (the last
    /// [`HISTORY_LIMIT`]), then each new one as it happens.
    pub fn events(&self) -> Receiver<LifecycleEvent> {
        let (tx, rx) = channel();
        let mut events = relock(&self.shared.events);
        for e in &events.history {
            let _ = tx.send(e.clone());
        }
        events.subscribers.push(tx);
        rx
    }

    /// The events so far (the last [`HISTORY_LIMIT`]).
    pub fn history(&self) -> Vec<LifecycleEvent> {
        relock(&self.shared.events)
            .history
            .iter()
            .cloned()
            .collect()
    }

    /// Starts the plugin from Stopped or Failed (L1): launches it and waits for its
    /// announcement within the start timeout. On failure nothing is left behind (LIFE-4,
    /// LIFE-5) and `start_failed` is reported; on success, `started`.
    pub fn start(&self) -> Result<(), StartError> {
        self.start_with(|| {}).map(|_| ())
    }

    /// [`Supervisor::start`], calling `starting` as soon as the supervisor is Starting (from
    /// then on a stop makes this start fail, L5) or has refused the start, before the launch;
    /// returns the process id of the started plugin. A caller that hands the start to another
    /// thread can wait for `starting` so that its later commands find the start under way.
    pub fn start_with(&self, starting: impl FnOnce()) -> Result<u32, StartError> {
        let shared = &self.shared;
        {
            let _control = relock(&self.control);
            let mut inner = shared.lock();
            match inner.state {
                State::Stopped | State::Failed { .. } => {}
                state => {
                    drop(inner);
                    starting();
                    return Err(StartError::NotStopped {
                        id: shared.id().to_string(),
                        state,
                    });
                }
            }
            inner.state = State::Starting;
            inner.failures = 0;
            inner.stop_requested = false;
            inner.shutdown = false;
            inner.stop_report = None;
            inner.activation = None;
        }
        starting();
        // A monitor left from before giving up has ended; collect it.
        if let Some(old) = relock(&self.monitor).take() {
            let _ = old.join();
        }
        match shared.launch(false) {
            Ok((mut child, instance)) => {
                // Held until the monitor's handle is stored, so that a stop that follows at
                // once finds it and joins it.
                let mut slot = relock(&self.monitor);
                let mut inner = shared.lock();
                if inner.stop_requested {
                    // L5: a stop arrived just as the handshake completed.
                    drop(inner);
                    instance.conn.close();
                    let report = shared.end_for_stop(&mut child);
                    instance.teardown();
                    let error = StartError::Stopped {
                        id: shared.id().to_string(),
                    };
                    shared.emit(LifecycleEvent::StartFailed {
                        reason: error.to_string(),
                    });
                    shared.finish_stop(report);
                    return Err(error);
                }
                let pid = instance.pid;
                inner.state = State::Running {
                    pid,
                    activated: false,
                };
                inner.instance = Some(Arc::clone(&instance));
                drop(inner);
                shared.changed.notify_all();
                shared.emit(LifecycleEvent::Started { pid });
                let s = Arc::clone(shared);
                let monitor = std::thread::Builder::new()
                    .name(format!("rpcplugin-supervisor-{pid}"))
                    .spawn(move || s.monitor(child, instance));
                match monitor {
                    Ok(handle) => {
                        *slot = Some(handle);
                        Ok(pid)
                    }
                    Err(e) => {
                        // No monitor: end the plugin again, leaving nothing behind.
                        let error = StartError::Connection {
                            id: shared.id().to_string(),
                            source: e,
                        };
                        shared.emit(LifecycleEvent::StartFailed {
                            reason: error.to_string(),
                        });
                        // The closure (child, instance) was dropped by the failed spawn: the
                        // child was killed and reaped by PluginProcess's Drop.
                        shared.finish_stop(None);
                        Err(error)
                    }
                }
            }
            Err(LaunchFailure::Failed { error, .. })
                if shared.mutant_is(Mutant::LaunchFailureIsACrash) =>
            {
                // Broken on purpose: the failed start goes on as a crash would, with its
                // backoff and relaunches (LIFE-5).
                shared.emit(LifecycleEvent::StartFailed {
                    reason: error.to_string(),
                });
                let next = shared.after_failure(
                    None,
                    CrashCause::RestartFailed(error.to_string()),
                    None,
                    Instant::now(),
                    true,
                );
                let s = Arc::clone(shared);
                if let Ok(handle) = std::thread::Builder::new()
                    .name("rpcplugin-supervisor-mutant".into())
                    .spawn(move || s.monitor_from(next))
                {
                    *relock(&self.monitor) = Some(handle);
                }
                Err(error)
            }
            Err(LaunchFailure::Failed { error, .. }) => {
                shared.emit(LifecycleEvent::StartFailed {
                    reason: error.to_string(),
                });
                let mut inner = shared.lock();
                inner.state = State::Stopped;
                let conn = inner.conn.take();
                drop(inner);
                drop(conn);
                shared.changed.notify_all();
                Err(error)
            }
            Err(LaunchFailure::Stopped { pid }) if shared.mutant_is(Mutant::StartSurvivesStop) => {
                // Broken on purpose: the cancelled start is answered as a success (LIFE-23).
                shared.finish_stop(None);
                Ok(pid)
            }
            Err(LaunchFailure::Stopped { .. }) => {
                let error = StartError::Stopped {
                    id: shared.id().to_string(),
                };
                shared.emit(LifecycleEvent::StartFailed {
                    reason: error.to_string(),
                });
                shared.finish_stop(None);
                Err(error)
            }
        }
    }

    fn running(&self) -> Result<Arc<Instance>, HookError> {
        let inner = self.shared.lock();
        match (&inner.state, &inner.instance) {
            (State::Running { .. }, Some(instance)) => Ok(Arc::clone(instance)),
            (state, _) => Err(HookError::NotRunning {
                id: self.id().to_string(),
                state: *state,
            }),
        }
    }

    fn call_error(&self, instance: &Instance, failure: CallFailure) -> HookError {
        HookError::Call {
            id: self.id().to_string(),
            pid: instance.pid,
            failure,
        }
    }

    /// Activates the plugin with `config` (RPC-13): opens an API stream, serves `LocalAPI` on
    /// it (`LoadPluginConfiguration` answers with `config` as JSON text, RPC-18), then calls
    /// `LocalHooks.OnActivate` with its id. On success the plugin is activated, and a crash
    /// will be followed by a re-activation with this configuration (LIFE-11); on failure it is
    /// not activated (RPC-16).
    pub fn activate(&self, config: &serde_json::Value) -> Result<(), HookError> {
        let bytes = serde_json::to_vec(config).map_err(|e| HookError::InvalidConfiguration {
            id: self.id().to_string(),
            reason: e.to_string(),
        })?;
        self.activate_json(bytes)
    }

    /// [`Supervisor::activate`] with the configuration as JSON text, checked and sent as it is.
    pub fn activate_json(&self, config: impl Into<Vec<u8>>) -> Result<(), HookError> {
        let config = config.into();
        if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&config) {
            return Err(HookError::InvalidConfiguration {
                id: self.id().to_string(),
                reason: e.to_string(),
            });
        }
        let instance = self.running()?;
        let config = Arc::new(config);
        let result = instance.activate(Arc::clone(&config), Arc::clone(&self.shared.config_loads));
        let mut inner = self.shared.lock();
        let current = inner
            .instance
            .as_ref()
            .is_some_and(|i| Arc::ptr_eq(i, &instance));
        if current {
            let activated = result.is_ok();
            let first = self
                .shared
                .mutant_is(Mutant::ReactivatesWithFirstConfiguration)
                && activated
                && inner.activation.is_some();
            // Broken on purpose for ReactivatesWithFirstConfiguration: an activation that
            // follows another keeps the first one's configuration for re-activation (LIFE-11).
            if !first {
                inner.activation = activated.then_some(config);
            }
            if let State::Running { pid, .. } = inner.state {
                inner.state = State::Running { pid, activated };
            }
        }
        drop(inner);
        match result {
            Ok(()) => {
                self.shared
                    .emit(LifecycleEvent::Activated { pid: instance.pid });
                Ok(())
            }
            Err(failure) => Err(self.call_error(&instance, failure)),
        }
    }

    /// Deactivates the plugin: calls `LocalHooks.OnDeactivate` (the plugin is no longer
    /// activated, whatever the outcome), then closes the API stream if the plugin has not
    /// (RPC-17).
    pub fn deactivate(&self) -> Result<(), HookError> {
        let instance = self.running()?;
        self.mark_deactivated(&instance);
        match instance.deactivate() {
            Ok(()) => {
                self.shared
                    .emit(LifecycleEvent::Deactivated { pid: instance.pid });
                Ok(())
            }
            Err(failure) => Err(self.call_error(&instance, failure)),
        }
    }

    fn mark_deactivated(&self, instance: &Arc<Instance>) {
        let mut inner = self.shared.lock();
        if inner
            .instance
            .as_ref()
            .is_some_and(|i| Arc::ptr_eq(i, instance))
        {
            inner.activation = None;
            if let State::Running { pid, .. } = inner.state {
                inner.state = State::Running {
                    pid,
                    activated: false,
                };
            }
        }
    }

    /// The stop's deactivation, bounded by the deactivation timeout (LIFE-16); whether it
    /// succeeded.
    fn deactivate_for_stop(&self, instance: &Arc<Instance>) -> bool {
        let timeout = self.shared.options.deactivate_timeout;
        std::thread::scope(|s| {
            let (tx, rx) = channel();
            let inst = Arc::clone(instance);
            s.spawn(move || {
                let _ = tx.send(inst.deactivate());
            });
            match rx.recv_timeout(timeout) {
                Ok(result) => result.is_ok(),
                Err(_) => {
                    // L18: end the connection; the call fails and its thread ends.
                    instance.conn.close();
                    false
                }
            }
        })
    }

    /// Stops the plugin, in any state (LIFE-20): deactivates it if it is Running and activated
    /// (LIFE-16, at most the deactivation timeout), ends the connection, waits the grace
    /// period without sending a signal (LIFE-17), kills the process if it is still there
    /// (LIFE-18), reaps it (LIFE-19) and joins the monitor. A stop during a start makes the
    /// start fail; a stop during the restart delay cancels the relaunch at once; a second stop
    /// waits for the first. Returns once the supervisor is Stopped, with no process and nothing
    /// pending, reports `stopped`, and returns how the process ended.
    pub fn stop(&self) -> StopOutcome {
        let _control = relock(&self.control);
        let shared = &self.shared;
        let mut inner = shared.lock();
        let mut deactivate = None;
        // Broken on purpose: the monitor ends a Running plugin itself, killing it before
        // anything else (KillsWithoutDeactivate) or closing the pipes and forgetting the process
        // at once, before its monitor could reap it (LeavesOrphans).
        let mut monitor_ends = false;
        match inner.state {
            State::Stopped | State::Failed { .. } => {
                // L22.
                inner.state = State::Stopped;
                drop(inner);
                if let Some(monitor) = relock(&self.monitor).take() {
                    let _ = monitor.join();
                }
                let outcome = StopOutcome {
                    exit: None,
                    killed: false,
                };
                shared.emit(LifecycleEvent::Stopped {
                    exit: outcome.exit,
                    killed: outcome.killed,
                });
                return outcome;
            }
            State::Running { .. } if shared.mutant_is(Mutant::KillsWithoutDeactivate) => {
                monitor_ends = true;
            }
            State::Running { activated, .. } => {
                monitor_ends = shared.mutant_is(Mutant::LeavesOrphans);
                if activated {
                    deactivate = inner.instance.clone();
                }
            }
            State::Starting | State::Backoff { .. } | State::Restarting { .. } => {}
            State::Stopping => {}
        }
        inner.state = State::Stopping;
        inner.stop_requested = true;
        drop(inner);
        shared.changed.notify_all();
        if let Some(instance) = deactivate {
            self.mark_deactivated(&instance);
            if self.deactivate_for_stop(&instance) {
                shared.emit(LifecycleEvent::Deactivated { pid: instance.pid });
            }
        }
        let mut inner = shared.lock();
        inner.shutdown = true;
        if let Some(conn) = inner.conn.as_ref().filter(|_| !monitor_ends) {
            // LIFE-17: end the connection (both pipes).
            conn.close();
        }
        shared.changed.notify_all();
        // Every step of a stop is bounded (the grace period, the kill, the deactivation
        // timeout); a stop that still waits long after them has found a bug: say where the
        // monitor is, once, and go on waiting.
        let stall = shared.options.deactivate_timeout + shared.stop_grace() + STOP_STALL;
        let waiting_since = Instant::now();
        let mut told = false;
        while inner.state != State::Stopped {
            inner = shared
                .changed
                .wait_timeout(inner, POLL.max(Duration::from_millis(500)))
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if !told && waiting_since.elapsed() >= stall {
                told = true;
                eprintln!(
                    "rpcplugin-host: the stop of plugin {} has waited {:?} for its monitor, \
                     which is {} (state {:?})",
                    shared.id(),
                    waiting_since.elapsed(),
                    *relock(&shared.phase),
                    inner.state
                );
            }
        }
        let report = inner.stop_report.take();
        drop(inner);
        if let Some(monitor) = relock(&self.monitor).take() {
            let _ = monitor.join();
        }
        let outcome = StopOutcome {
            exit: report.map(|r| r.0),
            killed: report.is_some_and(|r| r.1),
        };
        shared.emit(LifecycleEvent::Stopped {
            exit: outcome.exit,
            killed: outcome.killed,
        });
        outcome
    }

    /// Calls `callback` with every event from now on, as it is reported, on the thread that
    /// reports it and in the order of [`Supervisor::events`]; the event is reported only once
    /// the callback has returned (a `started` before [`Supervisor::start`] returns, a `stopped`
    /// before [`Supervisor::stop`] returns). The callback must not call the supervisor.
    pub fn on_event(&self, callback: impl Fn(&LifecycleEvent) + Send + 'static) {
        relock(&self.shared.events)
            .callbacks
            .push(Box::new(callback));
    }

    /// The current plugin process in any state, from its launch until it has been reaped (or,
    /// for [`Mutant::LeavesOrphans`], forgotten); `None` when there is none.
    pub fn process_id(&self) -> Option<u32> {
        match self.shared.current_pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }
}

impl Drop for Supervisor {
    /// Stops the plugin unless it is already stopped.
    fn drop(&mut self) {
        if self.state() == State::Stopped {
            if let Some(monitor) = relock(&self.monitor).take() {
                let _ = monitor.join();
            }
        } else {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    //! The activation protocol of one connection (RPC-13, RPC-17) against an in-process plugin
    //! whose `OnDeactivate` leaves the API stream open, so that the host's own closes show.

    use std::os::fd::OwnedFd;
    use std::sync::atomic::AtomicBool;

    use rpcplugin_runtime::codec::rpc::HOOKS_SERVICE;
    use rpcplugin_runtime::codec::StreamId;

    use super::*;

    /// What the fake plugin saw in one `OnActivate`: the API stream id, the configuration it
    /// loaded while the call was pending, and its API client (kept open).
    type Seen = (i64, Result<Reply, CallFailure>, RpcClient);

    fn setup(fail: Arc<AtomicBool>) -> (Instance, Arc<Connection>, Receiver<Seen>) {
        let (host_in, plugin_out) = std::io::pipe().unwrap();
        let (plugin_in, host_out) = std::io::pipe().unwrap();
        let limits = Limits::default();
        let host = Connection::new(
            Role::Host,
            OwnedFd::from(host_in),
            OwnedFd::from(host_out),
            limits,
        )
        .unwrap();
        let plugin = Arc::new(
            Connection::new(
                Role::Plugin,
                OwnedFd::from(plugin_in),
                OwnedFd::from(plugin_out),
                limits,
            )
            .unwrap(),
        );
        let hooks_p = plugin.announce().unwrap();
        let hooks_h = host.wait_for_handshake(Duration::from_secs(5)).unwrap();
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let p = Arc::clone(&plugin);
        serve(
            hooks_p,
            &[HOOKS_SERVICE],
            Arc::new(move |call| match call {
                Call::OnActivate { api_stream } => {
                    let id = StreamId::new(api_stream).ok_or("bad id")?;
                    let stream = p.connect_stream(id).map_err(|e| e.to_string())?;
                    let api = RpcClient::new(stream).map_err(|e| e.to_string())?;
                    let config = api.call(Call::LoadPluginConfiguration);
                    relock(&tx).send((api_stream, config, api)).unwrap();
                    if fail.load(Ordering::SeqCst) {
                        Err("activation refused".into())
                    } else {
                        Ok(Reply::Empty)
                    }
                }
                _ => Ok(Reply::Empty),
            }),
        )
        .unwrap();
        let instance = Instance {
            pid: 0,
            conn: Arc::new(host),
            hooks: RpcClient::new(hooks_h).unwrap(),
            api: Mutex::new(None),
            hooks_ended: Mutex::new(None),
            mutant: None,
        };
        (instance, plugin, rx)
    }

    /// Waits until calls on the plugin's API client fail: the host closed the API stream.
    fn assert_closed_by_host(api: &RpcClient) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while api.call(Call::LoadPluginConfiguration).is_ok() {
            assert!(
                Instant::now() < deadline,
                "the host kept the API stream open"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn loaded(config: &[u8]) -> Result<Reply, CallFailure> {
        Ok(Reply::Configuration(config.to_vec()))
    }

    // The host serves LocalAPI on the new stream before and while OnActivate is pending (the
    // plugin loads its configuration from inside the call), and closes the API stream when
    // OnActivate fails, when it activates again, and after OnDeactivate.
    // covers: RPC-13, RPC-16, RPC-17, RPC-18, STREAM-2
    #[test]
    fn activation_opens_serves_and_closes_api_streams() {
        let fail = Arc::new(AtomicBool::new(true));
        let (instance, plugin, seen) = setup(Arc::clone(&fail));
        let loads = Arc::new(AtomicU64::new(0));
        let config = Arc::new(br#"{"Foo":"foo","Bar":{"Baz":"baz"}}"#.to_vec());
        let wait = Duration::from_secs(5);

        let err = instance
            .activate(Arc::clone(&config), Arc::clone(&loads))
            .unwrap_err();
        assert!(
            matches!(&err, CallFailure::Remote { text, .. } if text == "activation refused"),
            "{err:?}"
        );
        let (id, got, api1) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (1, loaded(&config)));
        assert!(relock(&instance.api).is_none());
        assert_closed_by_host(&api1);

        fail.store(false, Ordering::SeqCst);
        instance
            .activate(Arc::clone(&config), Arc::clone(&loads))
            .unwrap();
        let (id, got, api3) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (3, loaded(&config)));
        assert_eq!(api3.call(Call::LoadPluginConfiguration), loaded(&config));

        let other = Arc::new(b"null".to_vec());
        instance
            .activate(Arc::clone(&other), Arc::clone(&loads))
            .unwrap();
        let (id, got, api5) = seen.recv_timeout(wait).unwrap();
        assert_eq!((id, got), (5, loaded(&other)));
        assert_closed_by_host(&api3);
        assert_eq!(api5.call(Call::LoadPluginConfiguration), loaded(&other));

        instance.deactivate().unwrap();
        assert_closed_by_host(&api5);
        assert_eq!(loads.load(Ordering::Relaxed), 5);

        instance.teardown();
        plugin.close();
    }
}
