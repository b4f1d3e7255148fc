//! The engine of a supervisor: one thread that owns the codec's [`Lifecycle`]
//! (`spec/06-lifecycle.md`, Table 6-1) and carries out its actions with processes, pipes and
//! threads. Everything that happens (a command of the user, the exit of the process, the
//! announcement, the end of the connection or of the hooks stream, the answer of a hook call)
//! reaches it as one [`Input`] on one channel, in the order it happened; the machine's timer
//! is the channel's receive timeout. The engine decides nothing itself: the machine does, and
//! the [`Seams`] may change what it hears and what is done.
//!
//! Its length (over 800 lines) is one `impl Engine`: one thread's handling of one machine's
//! inputs and actions, which reads best in one place; the process, the announced plugin and
//! the seams are in files of their own.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rpcplugin_codec::lifecycle::{
    self, Action, CrashCause as MachineCause, Event, Lifecycle, StartFailure,
};
use rpcplugin_runtime::codec::handshake::HandshakeError;
use rpcplugin_runtime::codec::stream::{ConnectionEnd, ConnectionError, Role};
use rpcplugin_runtime::connection::{Connection, StartError as HandshakeFailure, Stream};
use rpcplugin_runtime::process::{self, Exit, LaunchOptions, Output};
use rpcplugin_runtime::rpc::RpcClient;

use super::child::{forward, Child};
use super::instance::{relock, Instance};
use super::seams::{ActionContext, ConnectionSlot, Delivery, Seams, Seen, Step};
use super::{OutputStream, PluginOutput, StartError, State, StopOutcome, SupervisorOptions};
use crate::bundle::Bundle;
use crate::event::{CrashCause, LifecycleEvent};

/// How often the watcher of a running plugin looks at its hooks stream while it waits for the
/// end of the connection.
const POLL: Duration = Duration::from_millis(50);
/// How long the end of a plugin's output before its announcement waits for the process's exit,
/// so that the failed start can say how the plugin ended.
const EXIT_REPORT_WAIT: Duration = Duration::from_millis(500);
/// How long the end of a running plugin's connection waits for the process's exit, so that the
/// crash names the exit as its cause when both come together.
const EXIT_PREFERENCE: Duration = POLL;
/// The handshake thread waits for the announcement until the connection ends; the machine's
/// start timeout ends it (HS-4).
const HANDSHAKE_WAIT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What reaches the engine.
pub(super) enum Input {
    /// The user asks for a start: `accepted` says at once whether it began, `done` how it ended.
    Start {
        accepted: Sender<Result<(), State>>,
        done: Sender<Result<u32, StartError>>,
    },
    /// The user asks for a stop.
    Stop { done: Sender<StopOutcome> },
    /// Process `gen` exited and was reaped.
    Exited { gen: u64, exit: Exit },
    /// The handshake of process `gen` is over.
    Handshake {
        gen: u64,
        result: Result<Stream, HandshakeFailure>,
    },
    /// The connection of announced process `gen` ended.
    ConnectionEnded { gen: u64, end: ConnectionEnd },
    /// The hooks stream of announced process `gen` ended.
    HooksEnded { gen: u64, reason: String },
    /// The re-activation of process `gen` is over.
    Reactivated {
        gen: u64,
        result: Result<(), String>,
    },
    /// The `OnDeactivate` of a stop of process `gen` is over.
    DeactivationDone { gen: u64 },
    /// The user's `OnActivate` on process `gen` is over: the configuration if it succeeded.
    Activation {
        gen: u64,
        config: Option<Arc<Vec<u8>>>,
        ack: Sender<()>,
    },
    /// The user called `OnDeactivate` on process `gen`.
    Deactivation { gen: u64, ack: Sender<()> },
    /// The supervisor is dropped.
    Quit,
}

/// What the machine hears late (a [`Delivery::Later`], or the waits for the exit).
enum Late {
    Exited(Exit),
    OutputEnded(ConnectionEnd),
    HandshakeFailed(ConnectionEnd),
    ConnectionEnded(ConnectionEnd),
    HooksEnded(String),
}

/// What the user's threads read: the state, and the running plugin.
pub(super) struct Snapshot {
    pub(super) state: State,
    /// The running plugin, with its generation, while Running.
    pub(super) running: Option<(u64, Arc<Instance>)>,
}

/// A function that sees every event as it is reported.
pub(super) type EventCallback = Box<dyn Fn(&LifecycleEvent) + Send>;

/// The events reported so far, and who wants them.
pub(super) struct Events {
    pub(super) history: VecDeque<LifecycleEvent>,
    pub(super) subscribers: Vec<Sender<LifecycleEvent>>,
    pub(super) callbacks: Vec<EventCallback>,
}

/// What the engine shares with the user's threads.
pub(super) struct Shared {
    pub(super) bundle: Bundle,
    pub(super) options: SupervisorOptions,
    pub(super) snapshot: Mutex<Snapshot>,
    pub(super) changed: Condvar,
    pub(super) events: Mutex<Events>,
    pub(super) config_loads: Arc<AtomicU64>,
    /// The current plugin process (0: none), from its launch until it is reaped.
    pub(super) current_pid: Arc<AtomicU32>,
}

impl Shared {
    /// The engine ended abnormally (a panic): the process is killed (its reaping thread still
    /// reaps it) and the supervisor is Failed; the users waiting for an answer get an error.
    pub(super) fn engine_failed(&self) {
        let pid = self.current_pid.load(std::sync::atomic::Ordering::SeqCst);
        if pid != 0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let mut snapshot = relock(&self.snapshot);
        snapshot.running = None;
        snapshot.state = State::Failed { failures: 0 };
        drop(snapshot);
        self.changed.notify_all();
    }

    pub(super) fn id(&self) -> &str {
        self.bundle.id()
    }

    pub(super) fn emit(&self, event: LifecycleEvent) {
        let mut events = relock(&self.events);
        if events.history.len() == super::HISTORY_LIMIT {
            events.history.pop_front();
        }
        events.history.push_back(event.clone());
        events.subscribers.retain(|s| s.send(event.clone()).is_ok());
        for callback in &events.callbacks {
            callback(&event);
        }
    }
}

/// The current process.
struct Current {
    gen: u64,
    child: Arc<Child>,
    conn: Arc<Connection>,
    instance: Option<Arc<Instance>>,
    /// Reaped (or forgotten): the engine lets go of it at the end of the step.
    gone: bool,
}

/// An answer to the user, given once the step's events are reported.
enum Answer {
    Start(Result<u32, StartError>),
    Stop(StopOutcome),
}

/// The engine (see the module documentation).
pub(super) struct Engine {
    shared: Arc<Shared>,
    seams: Arc<dyn Seams>,
    machine: Lifecycle,
    tx: Sender<Input>,
    rx: Receiver<Input>,
    gen: u64,
    current: Option<Current>,
    late: Vec<(Instant, u64, Late)>,
    start_reply: Option<Sender<Result<u32, StartError>>>,
    stop_replies: VecDeque<Sender<StopOutcome>>,
    /// The process of the last launch, `None` if it failed.
    attempt_pid: Option<u32>,
    /// Why the last launch failed.
    launch_error: Option<StartError>,
    /// How the connection of the last failed handshake ended.
    handshake_end: Option<ConnectionEnd>,
    /// What ended the running plugin, in words.
    crash_detail: Option<String>,
    /// The text of the start failure being answered, for its event.
    start_text: Option<String>,
}

fn to_machine(exit: Exit) -> lifecycle::Exit {
    match exit {
        Exit::Code(c) => lifecycle::Exit::Status(c),
        Exit::Signal(s) => lifecycle::Exit::Signal(s),
    }
}

fn from_machine(exit: lifecycle::Exit) -> Exit {
    match exit {
        lifecycle::Exit::Status(c) => Exit::Code(c),
        lifecycle::Exit::Signal(s) => Exit::Signal(s),
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

impl Engine {
    pub(super) fn new(shared: Arc<Shared>, tx: Sender<Input>, rx: Receiver<Input>) -> Engine {
        let seams = Arc::clone(&shared.options.seams);
        let mut settings = shared.options.lifecycle.clone();
        seams.settings(&mut settings);
        Engine {
            shared,
            seams,
            machine: Lifecycle::new(settings),
            tx,
            rx,
            gen: 0,
            current: None,
            late: Vec::new(),
            start_reply: None,
            stop_replies: VecDeque::new(),
            attempt_pid: None,
            launch_error: None,
            handshake_end: None,
            crash_detail: None,
            start_text: None,
        }
    }

    /// The engine's loop, until [`Input::Quit`] or every sender is gone.
    pub(super) fn run(mut self) {
        loop {
            let due = self.next_wake();
            let input = match due {
                None => self.rx.recv().ok(),
                Some(at) => {
                    match self
                        .rx
                        .recv_timeout(at.saturating_duration_since(Instant::now()))
                    {
                        Ok(input) => Some(input),
                        Err(RecvTimeoutError::Timeout) => {
                            self.tick();
                            continue;
                        }
                        Err(RecvTimeoutError::Disconnected) => None,
                    }
                }
            };
            match input {
                None | Some(Input::Quit) => break,
                Some(input) => self.step(input),
            }
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let timer = self
            .machine
            .poll_timeout()
            .map(|due| self.seams.wake(due, &self.machine));
        let late = self.late.iter().map(|(at, _, _)| *at).min();
        match (timer, late) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self) {
        let now = Instant::now();
        let before = self.machine.state();
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.late.len() {
            if self.late[i].0 <= now {
                due.push(self.late.remove(i));
            } else {
                i += 1;
            }
        }
        for (_, gen, late) in due {
            if self.is_current(gen) {
                self.hear_late(now, late);
            }
        }
        if let Some(due) = self.machine.poll_timeout() {
            if self.seams.wake(due, &self.machine) <= Instant::now() {
                self.machine.handle_timeout(now.max(due));
            }
        }
        self.drain(before, now);
    }

    fn is_current(&self, gen: u64) -> bool {
        self.current
            .as_ref()
            .is_some_and(|c| c.gen == gen && !c.gone)
    }

    /// When the machine hears of `seen`: `default`, unless the seams say otherwise; `true`
    /// for now. `late` is what the machine hears later (`None`: nothing).
    fn deliver(
        &mut self,
        seen: &Seen<'_>,
        now: Instant,
        gen: u64,
        default: Delivery,
        late: Option<Late>,
    ) -> bool {
        match self.seams.observe(seen, &mut self.machine, now, default) {
            Delivery::Now => true,
            Delivery::Later(at) => {
                if let Some(late) = late {
                    self.late.push((at, gen, late));
                }
                false
            }
            Delivery::Drop => false,
        }
    }

    fn hear_late(&mut self, now: Instant, late: Late) {
        match late {
            Late::Exited(exit) => self.machine_exited(now, exit),
            Late::OutputEnded(end) => {
                self.handshake_end = Some(end);
                self.machine.connection_ended(now);
            }
            Late::HandshakeFailed(end) => {
                let text = end.to_string();
                self.handshake_end = Some(end);
                self.machine.handshake_failed(now, text);
            }
            Late::ConnectionEnded(end) => {
                self.crash_detail = Some(end.to_string());
                self.machine.connection_ended(now);
            }
            Late::HooksEnded(reason) => {
                self.crash_detail = Some(reason);
                self.machine.hooks_stream_ended(now);
            }
        }
    }

    fn machine_exited(&mut self, now: Instant, exit: Exit) {
        if let Some(current) = self.current.as_mut() {
            current.gone = true;
        }
        self.machine.exited(now, to_machine(exit));
    }

    fn step(&mut self, input: Input) {
        let now = Instant::now();
        let before = self.machine.state();
        match input {
            Input::Start { accepted, done } => match self.machine.start(now) {
                Err(_) => {
                    let _ = accepted.send(Err(self.public_state()));
                }
                Ok(()) => {
                    let _ = accepted.send(Ok(()));
                    self.start_reply = Some(done);
                    self.launch_error = None;
                    self.handshake_end = None;
                }
            },
            Input::Stop { done } => {
                self.stop_replies.push_back(done);
                self.machine.stop(now);
            }
            Input::Exited { gen, exit } => {
                if self.is_current(gen)
                    && self.deliver(
                        &Seen::Exited(to_machine(exit)),
                        now,
                        gen,
                        Delivery::Now,
                        Some(Late::Exited(exit)),
                    )
                {
                    self.machine_exited(now, exit);
                }
            }
            Input::Handshake { gen, result } => {
                if self.is_current(gen) {
                    self.handshake(now, gen, result);
                }
            }
            Input::ConnectionEnded { gen, end } => {
                if self.is_current(gen) {
                    let seen = Seen::ConnectionEnded(&end);
                    // The process usually exits at the same moment: its exit, if it comes
                    // first, is the cause.
                    let wait = Delivery::Later(now + EXIT_PREFERENCE);
                    let late = Some(Late::ConnectionEnded(end.clone()));
                    if self.deliver(&seen, now, gen, wait, late) {
                        self.hear_late(now, Late::ConnectionEnded(end));
                    }
                }
            }
            Input::HooksEnded { gen, reason } => {
                if self.is_current(gen)
                    && self.deliver(
                        &Seen::HooksStreamEnded,
                        now,
                        gen,
                        Delivery::Now,
                        Some(Late::HooksEnded(reason.clone())),
                    )
                {
                    self.crash_detail = Some(reason);
                    self.machine.hooks_stream_ended(now);
                }
            }
            Input::Reactivated { gen, result } => {
                if self.is_current(gen) {
                    self.machine.reactivated(now, result);
                }
            }
            Input::DeactivationDone { gen } => {
                if self.is_current(gen) {
                    self.machine.deactivation_done(now);
                }
            }
            Input::Activation { gen, config, ack } => {
                if self.is_current(gen) {
                    let seen = Seen::Activated(config.is_some());
                    if self.deliver(&seen, now, gen, Delivery::Now, None) {
                        match config {
                            Some(config) => self.machine.activation_succeeded(config.to_vec()),
                            None => self.machine.activation_failed(),
                        }
                    }
                }
                self.drain(before, now);
                let _ = ack.send(());
                return;
            }
            Input::Deactivation { gen, ack } => {
                if self.is_current(gen) {
                    self.machine.deactivation_called();
                }
                self.drain(before, now);
                let _ = ack.send(());
                return;
            }
            // The loop of `run` ends on Quit before a step.
            Input::Quit => {}
        }
        self.drain(before, now);
    }

    fn handshake(&mut self, now: Instant, gen: u64, result: Result<Stream, HandshakeFailure>) {
        match result {
            Ok(stream) => match RpcClient::new(stream) {
                Ok(hooks) => {
                    let Some(current) = self.current.as_mut() else {
                        return;
                    };
                    let instance = Arc::new(Instance::new(
                        current.child.pid(),
                        Arc::clone(&current.conn),
                        hooks,
                        Arc::clone(&self.seams),
                    ));
                    current.instance = Some(Arc::clone(&instance));
                    self.watch(gen, instance);
                    if self.deliver(&Seen::Announced, now, gen, Delivery::Now, None) {
                        self.machine.announced(now);
                    }
                }
                Err(e) => {
                    let end =
                        ConnectionEnd::Transport(format!("cannot read the hooks stream: {e}"));
                    self.handshake_end = Some(end.clone());
                    self.machine.handshake_failed(now, end.to_string());
                }
            },
            Err(HandshakeFailure::Ended(end)) => {
                let ended = output_ended(&end);
                let seen = Seen::HandshakeFailed {
                    end: &end,
                    output_ended: ended,
                };
                let (default, late) = if ended {
                    // Most likely the process is exiting: give it a moment, so that the
                    // failure can say how it ended.
                    (
                        Delivery::Later(now + EXIT_REPORT_WAIT),
                        Late::OutputEnded(end.clone()),
                    )
                } else {
                    (Delivery::Now, Late::HandshakeFailed(end.clone()))
                };
                let hear = self.deliver(&seen, now, gen, default, Some(late));
                if hear {
                    self.hear_late(
                        now,
                        if ended {
                            Late::OutputEnded(end)
                        } else {
                            Late::HandshakeFailed(end)
                        },
                    );
                }
            }
            Err(HandshakeFailure::Timeout(_)) => {
                // Only after HANDSHAKE_WAIT: the machine's timeout came long before.
            }
            Err(other) => self.hear_late(
                now,
                Late::HandshakeFailed(ConnectionEnd::Transport(other.to_string())),
            ),
        }
    }

    /// Starts the thread that watches an announced plugin's connection and hooks stream
    /// (LIFE-6).
    fn watch(&self, gen: u64, instance: Arc<Instance>) {
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("rpcplugin-watch-{}", instance.pid))
            .spawn(move || loop {
                if let Some(end) = instance.conn.wait_ended(POLL) {
                    let _ = tx.send(Input::ConnectionEnded { gen, end });
                    return;
                }
                if let Some(reason) = instance.hooks_ended() {
                    let _ = tx.send(Input::HooksEnded { gen, reason });
                    return;
                }
            });
        if let Err(e) = spawned {
            let _ = self.tx.send(Input::HooksEnded {
                gen,
                reason: format!("cannot watch the hooks stream: {e}"),
            });
        }
    }

    /// Drains the machine's actions, through the seams, then publishes the state and answers
    /// the user.
    fn drain(&mut self, before: lifecycle::State, now: Instant) {
        let mut answers = Vec::new();
        while let Some(action) = self.machine.poll_action() {
            let steps = self.seams.action(
                action,
                &ActionContext {
                    before,
                    machine: &self.machine,
                    bundle: &self.shared.bundle,
                    now,
                },
            );
            for step in steps {
                match step {
                    Step::Act(action) => self.act(action, now, &mut answers),
                    Step::Forget { reap, exit } => self.forget(reap, exit, now),
                }
            }
        }
        if self.current.as_ref().is_some_and(|c| c.gone) {
            if let Some(current) = self.current.take() {
                let_go(current);
            }
        }
        self.publish();
        for answer in answers {
            match answer {
                Answer::Start(result) => {
                    if let Some(reply) = self.start_reply.take() {
                        let _ = reply.send(result);
                    }
                }
                Answer::Stop(outcome) => {
                    if let Some(reply) = self.stop_replies.pop_front() {
                        let _ = reply.send(outcome);
                    }
                }
            }
        }
    }

    fn forget(&mut self, reap: bool, exit: lifecycle::Exit, now: Instant) {
        if let Some(current) = self.current.as_mut() {
            if reap {
                current.child.gone();
            } else {
                current.child.abandon();
            }
            current.gone = true;
        }
        self.machine.exited(now, exit);
    }

    fn act(&mut self, action: Action, now: Instant, answers: &mut Vec<Answer>) {
        match action {
            Action::Launch => self.launch(now),
            Action::EndConnection => {
                if let Some(current) = self.current.as_mut() {
                    current.conn.close();
                    if let Some(instance) = current.instance.take() {
                        instance.hooks.close();
                        in_thread("rpcplugin-teardown", move || instance.teardown());
                    }
                }
            }
            Action::Kill => {
                if let Some(current) = &self.current {
                    current.child.kill();
                }
            }
            Action::Activate { config } => {
                let Some((gen, instance)) = self.current_instance() else {
                    return;
                };
                let tx = self.tx.clone();
                let loads = Arc::clone(&self.shared.config_loads);
                in_thread("rpcplugin-reactivate", move || {
                    let result = instance
                        .activate(Arc::new(config), loads)
                        .map_err(|f| f.to_string());
                    let _ = tx.send(Input::Reactivated { gen, result });
                });
            }
            Action::Deactivate => {
                let Some((gen, instance)) = self.current_instance() else {
                    return;
                };
                let tx = self.tx.clone();
                let shared = Arc::clone(&self.shared);
                in_thread("rpcplugin-deactivate", move || {
                    if instance.deactivate().is_ok() {
                        shared.emit(LifecycleEvent::Deactivated { pid: instance.pid });
                    }
                    let _ = tx.send(Input::DeactivationDone { gen });
                });
            }
            Action::StartDone(result) => {
                let result = match result {
                    Ok(()) => Ok(self.attempt_pid.unwrap_or(0)),
                    Err(failure) => {
                        let error = self.start_error(failure);
                        self.start_text = Some(error.to_string());
                        Err(error)
                    }
                };
                answers.push(Answer::Start(result));
            }
            Action::StopDone { exit, killed } => answers.push(Answer::Stop(StopOutcome {
                exit: exit.map(from_machine),
                killed,
            })),
            Action::Report(event) => self.report(event),
        }
    }

    fn current_instance(&self) -> Option<(u64, Arc<Instance>)> {
        let current = self.current.as_ref()?;
        Some((current.gen, Arc::clone(current.instance.as_ref()?)))
    }

    fn start_error(&mut self, failure: StartFailure) -> StartError {
        let id = self.shared.id().to_string();
        match failure {
            StartFailure::Launch(text) => {
                self.launch_error.take().unwrap_or(StartError::Connection {
                    id,
                    source: std::io::Error::other(text),
                })
            }
            StartFailure::Timeout => StartError::Timeout {
                id,
                timeout: self.machine.settings().start_timeout,
            },
            StartFailure::Handshake(text) => StartError::Handshake {
                id,
                reason: self
                    .handshake_end
                    .clone()
                    .unwrap_or(ConnectionEnd::Transport(text)),
            },
            StartFailure::EndOfInput => StartError::Handshake {
                id,
                reason: self
                    .handshake_end
                    .clone()
                    .unwrap_or(ConnectionEnd::PeerClosed),
            },
            StartFailure::Exited(exit) => StartError::Exited {
                id,
                exit: from_machine(exit),
            },
            StartFailure::Stopped => StartError::Stopped { id },
        }
    }

    fn report(&mut self, event: Event) {
        let event = match event {
            Event::Started => LifecycleEvent::Started {
                pid: self.attempt_pid.unwrap_or(0),
            },
            Event::StartFailed(failure) => LifecycleEvent::StartFailed {
                reason: match self.start_text.take() {
                    Some(text) => text,
                    None => self.start_error(failure).to_string(),
                },
            },
            Event::Crashed {
                cause,
                exit,
                failures,
                delay,
            } => {
                let detail = self.crash_detail.take().unwrap_or_default();
                let cause = match cause {
                    MachineCause::Exited => CrashCause::ProcessExited,
                    MachineCause::ConnectionEnded => CrashCause::ConnectionEnded(detail),
                    MachineCause::HooksStreamEnded => CrashCause::HooksStreamEnded(detail),
                    MachineCause::RestartFailed(failure) => {
                        CrashCause::RestartFailed(self.start_error(failure).to_string())
                    }
                    MachineCause::ReactivationFailed(e) => CrashCause::ReactivationFailed(e),
                };
                LifecycleEvent::Crashed {
                    pid: self.attempt_pid,
                    cause,
                    exit: exit.map(from_machine),
                    failures,
                    delay,
                }
            }
            Event::Restarted { reactivated } => LifecycleEvent::Restarted {
                pid: self.attempt_pid.unwrap_or(0),
                reactivated,
            },
            Event::GaveUp { failures } => LifecycleEvent::GaveUp { failures },
            Event::Stopped { exit, killed } => LifecycleEvent::Stopped {
                exit: exit.map(from_machine),
                killed,
            },
        };
        // Whoever sees the event finds the state it reports.
        self.publish();
        self.shared.emit(event);
    }

    /// [`Action::Launch`]: creates the pipes, launches the plugin (chapter 01), sets up its
    /// connection and the threads that reap it and wait for its handshake; then tells the
    /// machine how it went.
    fn launch(&mut self, now: Instant) {
        if let Some(old) = self.current.take() {
            let_go(old);
        }
        self.gen += 1;
        let gen = self.gen;
        self.attempt_pid = None;
        self.launch_error = None;
        self.handshake_end = None;
        let result = self.try_launch(gen);
        let result = result.map_err(|error| {
            let text = error.to_string();
            self.launch_error = Some(error);
            text
        });
        self.machine.launched(now, result);
    }

    fn try_launch(&mut self, gen: u64) -> Result<(), StartError> {
        let shared = Arc::clone(&self.shared);
        let id = shared.id().to_string();
        let options = &shared.options;
        let output = |which: &PluginOutput| match which {
            PluginOutput::Inherit => Output::Inherit,
            PluginOutput::Null => Output::Null,
            PluginOutput::HostStderr | PluginOutput::Lines(_) => Output::Capture,
        };
        let mut opts = LaunchOptions {
            program: shared.bundle.executable_path(),
            args: Vec::new(),
            env: options.env.clone(),
            cwd: None,
            stdout: output(&options.stdout),
            stderr: output(&options.stderr),
            stdin: process::Stdin::Null,
            own_process_group: true,
        };
        let guard = self.seams.launch(&mut opts, &shared.bundle);
        let launched = process::launch(&opts);
        drop(guard);
        let mut launched = launched.map_err(|source| StartError::Launch {
            id: id.clone(),
            source,
        })?;
        let stdout = launched.process.take_stdout();
        let stderr = launched.process.take_stderr();
        let child = Child::new(launched.process, Arc::clone(&shared.current_pid));
        let pid = child.pid();
        let mut copying = Vec::new();
        if let Some(out) = stdout {
            copying.extend(forward(
                out,
                pid,
                OutputStream::Stdout,
                &options.stdout,
                &id,
            ));
        }
        if let Some(err) = stderr {
            copying.extend(forward(
                err,
                pid,
                OutputStream::Stderr,
                &options.stderr,
                &id,
            ));
        }
        let tx = self.tx.clone();
        if let Err(source) = child.reap_in_thread(copying, move |exit| {
            let _ = tx.send(Input::Exited { gen, exit });
        }) {
            // Dropping the child's last handle kills and reaps it.
            drop(child);
            return Err(StartError::Connection { id, source });
        }
        let mut limits = options.limits;
        let mut gob_limits = options.gob_limits;
        let slot = ConnectionSlot::default();
        let conn = self
            .seams
            .connection(
                launched.reader,
                launched.writer,
                &mut limits,
                &mut gob_limits,
                Arc::clone(&slot),
            )
            .and_then(|(reader, writer)| Connection::new(Role::Host, reader, writer, limits));
        let conn = match conn {
            Ok(conn) => Arc::new(conn),
            Err(source) => {
                // The process goes at once; its reaper's report is for a generation the
                // machine never saw running.
                child.kill();
                return Err(StartError::Connection { id, source });
            }
        };
        conn.set_gob_limits(gob_limits);
        let _ = slot.set(Arc::downgrade(&conn));
        self.attempt_pid = Some(pid);
        let tx = self.tx.clone();
        let waiting = Arc::clone(&conn);
        let spawned = std::thread::Builder::new()
            .name(format!("rpcplugin-handshake-{pid}"))
            .spawn(move || {
                let result = waiting.wait_for_handshake(HANDSHAKE_WAIT);
                let _ = tx.send(Input::Handshake { gen, result });
            });
        self.current = Some(Current {
            gen,
            child,
            conn,
            instance: None,
            gone: false,
        });
        if let Err(e) = spawned {
            let _ = self.tx.send(Input::Handshake {
                gen,
                result: Err(HandshakeFailure::Ended(ConnectionEnd::Transport(format!(
                    "cannot wait for the handshake: {e}"
                )))),
            });
        }
        Ok(())
    }

    fn public_state(&self) -> State {
        let pid = self.current.as_ref().map_or(0, |c| c.child.pid());
        match self.machine.state() {
            lifecycle::State::Stopped => State::Stopped,
            lifecycle::State::Starting => State::Starting,
            lifecycle::State::Running => State::Running {
                pid,
                activated: self.machine.activation().is_some(),
            },
            lifecycle::State::Backoff { failures } => State::Backoff { failures },
            lifecycle::State::Restarting { failures } => State::Restarting { failures },
            lifecycle::State::Stopping => State::Stopping,
            lifecycle::State::Failed => State::Failed {
                failures: self.machine.failures(),
            },
        }
    }

    fn publish(&self) {
        let state = self.public_state();
        let running = match state {
            State::Running { .. } => self.current_instance(),
            _ => None,
        };
        let mut snapshot = relock(&self.shared.snapshot);
        snapshot.state = state;
        snapshot.running = running;
        drop(snapshot);
        self.shared.changed.notify_all();
    }
}

/// Lets go of a process that is gone: its connection's last handles are dropped on another
/// thread (dropping a connection waits for its threads).
fn let_go(current: Current) {
    in_thread("rpcplugin-let-go", move || {
        if let Some(instance) = current.instance {
            instance.teardown();
        }
        current.conn.close();
        drop(current.conn);
    });
}

/// Runs `f` on a new thread; on the engine's thread if none can be made.
fn in_thread(name: &str, f: impl FnOnce() + Send + 'static) {
    let f = Arc::new(Mutex::new(Some(f)));
    let g = Arc::clone(&f);
    let spawned = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            if let Some(f) = relock(&g).take() {
                f();
            }
        });
    if spawned.is_err() {
        if let Some(f) = relock(&f).take() {
            f();
        }
    }
}
