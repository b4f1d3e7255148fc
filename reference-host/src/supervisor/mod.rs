//! The supervisor: runs one plugin through its life cycle (`spec/06-lifecycle.md`).
//!
//! A [`Supervisor`] is a thin driver of the codec's sans-I/O life-cycle machine,
//! [`rpcplugin_codec::lifecycle::Lifecycle`], which decides every transition of Table 6-1
//! (rows L1 to L23): the start and its timeout (HS-4, LIFE-4, LIFE-5), the crash (LIFE-6,
//! LIFE-7), the restart delay and its backoff (LIFE-8 to LIFE-10), the re-activation
//! (LIFE-11), the failed restart attempt (LIFE-12), giving up (LIFE-13), hook calls while the
//! plugin is down (LIFE-14) and the stop in every state (LIFE-16 to LIFE-20, LIFE-22,
//! LIFE-23). The supervisor carries out what the machine asks for with processes, pipes and
//! threads, and tells it what happened.
//!
//! Files: this one holds the public face (options, states, errors, [`Supervisor`]);
//! `engine.rs` the thread that owns the machine and carries out its actions; `child.rs` the
//! plugin process (reaping, LIFE-19; the kill; its output); `instance.rs` the announced
//! plugin's connection, hooks client and API streams (RPC-13, RPC-16 to RPC-18); `seams.rs`
//! the points where test equipment may change the supervisor's behaviour (the reference host
//! changes nothing there).
//!
//! [`Supervisor::start`] launches the bundle's executable and waits for its announcement
//! within the start timeout; on failure nothing is left behind. While the plugin is Running,
//! the user's hook calls ([`Supervisor::activate`], [`Supervisor::deactivate`]) go to it; in
//! every other state they fail at once with [`HookError::NotRunning`] (LIFE-14).
//! [`Supervisor::stop`] works in every state and returns once the supervisor is Stopped.
//! Dropping a supervisor stops it.
//!
//! Every change is reported as a [`LifecycleEvent`] ([`Supervisor::events`], or synchronously
//! to [`Supervisor::on_event`] callbacks, which is how the driver orders its event messages
//! before its replies).
//!
//! The supervisor notices a crash (LIFE-6) at once when the process exits or the connection
//! ends, and within [`POLL`](engine) when the hooks stream alone ends (the runtime's
//! [`RpcClient::ended`](rpcplugin_runtime::rpc::RpcClient::ended) reports the plugin's close
//! frame and gob errors).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin_codec::lifecycle::Settings;
use rpcplugin_runtime::codec::gob::DecodeLimits;
use rpcplugin_runtime::codec::stream::{ConnectionEnd, Limits};
use rpcplugin_runtime::process::{Exit, LaunchError};
use rpcplugin_runtime::rpc::CallFailure;

use crate::bundle::Bundle;
use crate::event::LifecycleEvent;

mod child;
mod engine;
mod instance;
pub mod seams;

use engine::{Engine, Events, Input, Shared, Snapshot};
use instance::{relock, Instance};
pub use seams::{Conforming, Seams};

/// The constants of chapter 06, from the one place that defines them: the start timeout
/// (HS-4), the restart delays (LIFE-8, LIFE-9), the stable period (LIFE-10), the deactivation
/// timeout (LIFE-16) and the grace period (LIFE-17).
pub use rpcplugin_codec::lifecycle::{
    DEACTIVATE_TIMEOUT, RESTART_DELAY_MAX, RESTART_DELAY_MIN, STABLE_PERIOD, START_TIMEOUT,
    STOP_GRACE,
};
/// The supervisor keeps this many past events for [`Supervisor::events`] to replay.
pub const HISTORY_LIMIT: usize = 1024;

/// How long past its own bounds (deactivation timeout, grace period) a stop waits before it
/// reports, on standard error, that it still waits.
const STOP_STALL: Duration = Duration::from_secs(5);

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

/// How a supervisor runs its plugin. [`Default`] gives the constants of `spec/README.md`
/// ([`Settings::default`]).
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// The life cycle's timing and restart policy (`spec/06-lifecycle.md`): the start timeout
    /// (HS-4), the restart delays (LIFE-8, LIFE-9), the stable period (LIFE-10), when to give
    /// up (LIFE-13), the deactivation timeout (LIFE-16) and the grace period (LIFE-7, LIFE-17),
    /// as the codec's life-cycle machine takes them.
    pub lifecycle: Settings,
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
    /// The seams through which test equipment changes what the supervisor does
    /// ([`seams`]); [`Conforming`], the default, changes nothing.
    pub seams: Arc<dyn Seams>,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            lifecycle: Settings::default(),
            env: Vec::new(),
            stdout: PluginOutput::Inherit,
            stderr: PluginOutput::Inherit,
            limits: Limits::default(),
            gob_limits: DecodeLimits::default(),
            seams: Arc::new(Conforming),
        }
    }
}

impl SupervisorOptions {
    /// The delay before the relaunch that follows the `failures`-th failure in a row (LIFE-8,
    /// LIFE-9): the first delay doubled `failures - 1` times, at most the longest delay.
    pub fn restart_delay_after(&self, failures: u32) -> Duration {
        self.lifecycle.restart_delay(failures)
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

/// Runs one plugin: start, hook calls, crash restarts, stop (see the module documentation).
pub struct Supervisor {
    shared: Arc<Shared>,
    tx: Mutex<Sender<Input>>,
    engine: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Supervisor")
            .field("plugin", &self.shared.id())
            .field("state", &self.state())
            .finish()
    }
}

impl Supervisor {
    /// A supervisor for `bundle`, in the Stopped state; nothing is launched yet.
    pub fn new(bundle: Bundle, options: SupervisorOptions) -> Supervisor {
        let shared = Arc::new(Shared {
            bundle,
            options,
            snapshot: Mutex::new(Snapshot {
                state: State::Stopped,
                running: None,
            }),
            changed: Condvar::new(),
            events: Mutex::new(Events {
                history: VecDeque::new(),
                subscribers: Vec::new(),
                callbacks: Vec::new(),
            }),
            config_loads: Arc::new(AtomicU64::new(0)),
            current_pid: Arc::new(AtomicU32::new(0)),
        });
        let (tx, rx) = channel();
        let engine = Engine::new(Arc::clone(&shared), tx.clone(), rx);
        let s = Arc::clone(&shared);
        let handle = std::thread::Builder::new()
            .name(format!("rpcplugin-supervisor-{}", shared.id()))
            .spawn(move || {
                let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| engine.run()));
                if let Err(panic) = ran {
                    let what = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    eprintln!(
                        "rpcplugin-host: the supervisor of plugin {} failed: {what}",
                        s.id()
                    );
                    s.engine_failed();
                }
            });
        Supervisor {
            shared,
            tx: Mutex::new(tx),
            // Without an engine every command fails at once (its channel is closed).
            engine: Mutex::new(handle.ok()),
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
        relock(&self.shared.snapshot).state
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

    fn send(&self, input: Input) -> bool {
        relock(&self.tx).send(input).is_ok()
    }

    fn engine_gone(&self) -> StartError {
        StartError::Connection {
            id: self.id().to_string(),
            source: std::io::Error::other("the supervisor has failed (see standard error)"),
        }
    }

    /// Starts the plugin from Stopped or Failed (L1): launches it and waits for its
    /// announcement within the start timeout. On failure nothing is left behind (LIFE-4,
    /// LIFE-5) and `start_failed` is reported; on success, `started`.
    pub fn start(&self) -> Result<(), StartError> {
        self.start_with(|| {}).map(|_| ())
    }

    /// [`Supervisor::start`], calling `starting` as soon as the supervisor is Starting (from
    /// then on a stop makes this start fail, L5) or has refused the start; returns the process
    /// id of the started plugin. A caller that hands the start to another thread can wait for
    /// `starting` so that its later commands find the start under way.
    pub fn start_with(&self, starting: impl FnOnce()) -> Result<u32, StartError> {
        let (accepted_tx, accepted) = channel();
        let (done_tx, done) = channel();
        let sent = self.send(Input::Start {
            accepted: accepted_tx,
            done: done_tx,
        });
        let accepted = if sent { accepted.recv().ok() } else { None };
        starting();
        match accepted {
            None => Err(self.engine_gone()),
            Some(Err(state)) => Err(StartError::NotStopped {
                id: self.id().to_string(),
                state,
            }),
            Some(Ok(())) => done.recv().unwrap_or_else(|_| Err(self.engine_gone())),
        }
    }

    fn running(&self) -> Result<(u64, Arc<Instance>), HookError> {
        let snapshot = relock(&self.shared.snapshot);
        match (&snapshot.state, &snapshot.running) {
            (State::Running { .. }, Some((gen, instance))) => Ok((*gen, Arc::clone(instance))),
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
        let (gen, instance) = self.running()?;
        let config = Arc::new(config);
        let result = instance.activate(Arc::clone(&config), Arc::clone(&self.shared.config_loads));
        let (ack, acked) = channel();
        if self.send(Input::Activation {
            gen,
            config: result.is_ok().then_some(config),
            ack,
        }) {
            let _ = acked.recv();
        }
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
        let (gen, instance) = self.running()?;
        let (ack, acked) = channel();
        if self.send(Input::Deactivation { gen, ack }) {
            let _ = acked.recv();
        }
        match instance.deactivate() {
            Ok(()) => {
                self.shared
                    .emit(LifecycleEvent::Deactivated { pid: instance.pid });
                Ok(())
            }
            Err(failure) => Err(self.call_error(&instance, failure)),
        }
    }

    /// Stops the plugin, in any state (LIFE-20): deactivates it if it is Running and activated
    /// (LIFE-16, at most the deactivation timeout), ends the connection, waits the grace
    /// period without sending a signal (LIFE-17), kills the process if it is still there
    /// (LIFE-18) and reaps it (LIFE-19). A stop during a start makes the start fail (LIFE-23); a
    /// stop during the restart delay cancels the relaunch at once (LIFE-22); a second stop
    /// waits for the first (L21). Returns once the supervisor is Stopped, with no process and
    /// nothing pending, reports `stopped`, and returns how the process ended.
    pub fn stop(&self) -> StopOutcome {
        let (done_tx, done) = channel();
        let gone = StopOutcome {
            exit: None,
            killed: false,
        };
        if !self.send(Input::Stop { done: done_tx }) {
            return gone;
        }
        // Every step of a stop is bounded (the deactivation timeout, the grace period, the
        // kill); a stop that still waits long after them has found a bug: say so, once, and
        // go on waiting.
        let options = &self.shared.options;
        let stall =
            options.lifecycle.deactivate_timeout + options.lifecycle.stop_grace + STOP_STALL;
        let since = Instant::now();
        match done.recv_timeout(stall) {
            Ok(outcome) => outcome,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => gone,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                eprintln!(
                    "rpcplugin-host: the stop of plugin {} has waited {:?} (state {})",
                    self.id(),
                    since.elapsed(),
                    self.state()
                );
                done.recv().unwrap_or(gone)
            }
        }
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

    /// The current plugin process in any state, from its launch until it has been reaped (or
    /// forgotten); `None` when there is none.
    pub fn process_id(&self) -> Option<u32> {
        match self.shared.current_pid.load(Ordering::SeqCst) {
            0 => None,
            pid => Some(pid),
        }
    }
}

impl Drop for Supervisor {
    /// Stops the plugin unless it is already stopped, then ends the engine.
    fn drop(&mut self) {
        if self.state() != State::Stopped {
            let _ = self.stop();
        }
        self.send(Input::Quit);
        if let Some(engine) = relock(&self.engine).take() {
            let _ = engine.join();
        }
    }
}
