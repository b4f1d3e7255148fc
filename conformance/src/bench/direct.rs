//! The harness as a plain, fast host of one plugin process ([`DirectPlugin`]), built on the
//! runtime's connection and RPC client (the reference host's own machinery, without its
//! supervisor): launch and handshake (HS-4), activation with an API stream served as `LocalAPI`
//! (RPC-13, RPC-17, RPC-18), deactivation, and hook calls from any number of threads; or, for
//! pipelined calls, the hooks stream driven directly with the codec's client (RPC-4, RPC-6).
//! Unlike `plugin_under_test`, it records and checks nothing, so that the figures measure the
//! plugin and the protocol, not the harness's observer.
//!
//! Calls have no deadline of their own: a [`Watchdog`] ends whatever stalls (it closes the
//! connection, which fails every pending call, and kills the processes).

use std::io::{Read as _, Write as _};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin_runtime::codec::rpc::{Call, ClientCodec, Reply, API_SERVICE};
use rpcplugin_runtime::codec::stream::{Limits, Role};
use rpcplugin_runtime::connection::{Connection, StartError, Stream};
use rpcplugin_runtime::process::{launch, LaunchOptions, Output, PluginProcess};
use rpcplugin_runtime::rpc::{serve, RpcClient};

use super::BenchError;
use crate::plugin_under_test::{
    processes_with, PluginCommand, EXIT_BOUND, START_TIMEOUT, TOKEN_VAR,
};

/// How much of a plugin's standard error is kept for error messages.
const STDERR_KEEP: usize = 8 * 1024;

/// A plugin process the harness hosts directly.
pub struct DirectPlugin {
    process: PluginProcess,
    conn: Arc<Connection>,
    hooks: Hooks,
    /// The API stream of the current activation.
    api: Option<Stream>,
    /// `LoadPluginConfiguration` calls answered so far.
    loads: Arc<AtomicU64>,
    token: String,
    program: String,
    /// How long the plugin may take to exit once its connection has ended.
    exit_bound: Duration,
}

impl std::fmt::Debug for DirectPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectPlugin")
            .field("program", &self.program)
            .field("pid", &self.process.pid())
            .finish_non_exhaustive()
    }
}

/// How the harness calls the plugin's hooks.
enum Hooks {
    /// Through the runtime's RPC client, from any number of threads.
    Client(RpcClient),
    /// On the hooks stream directly, with a codec of the harness's own (one thread): for a
    /// window of calls in flight.
    Raw {
        stream: Stream,
        codec: Box<ClientCodec<Call>>,
    },
}

/// How a plugin is launched.
#[derive(Debug, Clone, Copy)]
pub struct LaunchHow {
    /// Multiplies START_TIMEOUT and EXIT_BOUND.
    pub scale: f64,
    /// Keep the start of the plugin's standard error for error messages (otherwise it goes to
    /// `/dev/null`, so that reading it costs the measurements nothing).
    pub keep_stderr: bool,
    /// Call the hooks on the raw stream ([`DirectPlugin::pipeline`]) rather than through the
    /// RPC client ([`DirectPlugin::call_deactivate`], [`DirectPlugin::activate`]).
    pub raw_hooks: bool,
}

/// A unique mark for the processes of one launch.
fn token() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "bench-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

impl DirectPlugin {
    /// Launches `command` and waits at most START_TIMEOUT (HS-4) times the scale for its
    /// announcement; returns the plugin and the time from the launch to the announcement.
    pub fn launch(
        command: &PluginCommand,
        how: LaunchHow,
    ) -> Result<(DirectPlugin, Duration), BenchError> {
        let start_timeout = START_TIMEOUT.mul_f64(how.scale);
        let exit_bound = EXIT_BOUND.mul_f64(how.scale);
        let program = command.program.display().to_string();
        let token = token();
        let mut opts = LaunchOptions::new(&command.program);
        opts.args = command.args.clone();
        opts.stdout = Output::Null;
        opts.stderr = if how.keep_stderr {
            Output::Capture
        } else {
            Output::Null
        };
        opts.env = vec![(TOKEN_VAR.into(), token.clone().into())];
        let started = Instant::now();
        let mut launched = launch(&opts).map_err(|e| BenchError(e.to_string()))?;
        let stderr = launched
            .process
            .take_stderr()
            .map(|pipe| crate::transcript::keep_output(pipe, STDERR_KEEP));
        let conn = Connection::new(
            Role::Host,
            launched.reader,
            launched.writer,
            Limits::default(),
        )
        .map_err(|e| BenchError(format!("cannot start a connection to {program}: {e}")))?;
        let mut process = launched.process;
        let stream = match conn.wait_for_handshake(start_timeout) {
            Ok(stream) => stream,
            Err(e) => {
                drop(conn);
                // A plugin whose connection ended is exiting, or has: how it ended says why.
                let exit = match e {
                    StartError::Ended(_) => process.wait_timeout(exit_bound).ok().flatten(),
                    _ => None,
                };
                let _ = process.kill();
                kill_marked(&token);
                let why = match (&e, exit) {
                    (StartError::Timeout(t), _) => format!(
                        "{program} did not announce within {t:?} of its launch (HS-4): is it an \
                         rpcplugin plugin? (a slow machine: --timeout-scale)"
                    ),
                    (_, Some(exit)) => format!(
                        "{program} {exit} before its announcement: it is not an rpcplugin plugin, \
                         or it failed to start"
                    ),
                    (StartError::Ended(end), None) => {
                        format!("{program} ended its connection before its announcement: {end}")
                    }
                    (other, None) => format!("{program}: {other}"),
                };
                let said = stderr
                    .map(|kept| {
                        String::from_utf8_lossy(&kept.lock().unwrap_or_else(|e| e.into_inner()))
                            .trim()
                            .to_string()
                    })
                    .unwrap_or_default();
                return Err(BenchError(if said.is_empty() {
                    why
                } else {
                    format!("{why}; its standard error: {said}")
                }));
            }
        };
        let start = started.elapsed();
        let hooks = if how.raw_hooks {
            Hooks::Raw {
                stream,
                codec: Box::new(ClientCodec::new()),
            }
        } else {
            Hooks::Client(
                RpcClient::new(stream)
                    .map_err(|e| BenchError(format!("cannot call the hooks of {program}: {e}")))?,
            )
        };
        Ok((
            DirectPlugin {
                process,
                conn: Arc::new(conn),
                hooks,
                api: None,
                loads: Arc::new(AtomicU64::new(0)),
                token,
                program,
                exit_bound,
            },
            start,
        ))
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// How the process ended, if it has (for error messages).
    pub fn exited(&mut self) -> Option<rpcplugin_runtime::process::Exit> {
        self.process.try_wait().ok().flatten()
    }

    fn client(&self) -> Result<&RpcClient, BenchError> {
        match &self.hooks {
            Hooks::Client(client) => Ok(client),
            Hooks::Raw { .. } => Err(BenchError(
                "the harness launched this plugin to call its hooks directly".into(),
            )),
        }
    }

    /// Makes `total` `OnDeactivate` calls with `depth` of them in flight (at most) on the hooks
    /// stream, from this thread alone: `depth` requests first, then one more as each response
    /// arrives, written together when several arrive at once (RPC-4, RPC-6). Returns the time
    /// they took. Only for a plugin launched with `raw_hooks`.
    pub fn pipeline(
        &mut self,
        depth: usize,
        total: usize,
        dog: &Watchdog,
    ) -> Result<Duration, BenchError> {
        let program = &self.program;
        let Hooks::Raw { stream, codec } = &mut self.hooks else {
            return Err(BenchError(
                "the harness launched this plugin to call its hooks through its RPC client".into(),
            ));
        };
        let broken = |e: &dyn std::fmt::Display| {
            BenchError(format!("{program}: the pipelined calls failed: {e}"))
        };
        let started = Instant::now();
        let mut out = Vec::new();
        let (mut sent, mut done) = (0, 0);
        while sent < depth.max(1).min(total) {
            codec
                .call_typed(Call::OnDeactivate, &mut out)
                .map_err(|e| broken(&e))?;
            sent += 1;
        }
        let mut buf = vec![0u8; 64 * 1024];
        while done < total {
            if !out.is_empty() {
                (&*stream).write_all(&out).map_err(|e| broken(&e))?;
                out.clear();
            }
            let n = (&*stream).read(&mut buf).map_err(|e| broken(&e))?;
            if n == 0 {
                return Err(broken(&"the plugin closed its hooks stream"));
            }
            codec.push(&buf[..n]);
            while let Some(response) = codec.next_response().map_err(|e| broken(&e))? {
                if !response.header.error.is_empty() {
                    return Err(broken(&format!(
                        "an error response to OnDeactivate: {}",
                        response.header.error
                    )));
                }
                if response.call.is_none() {
                    // Read and discarded, as a client does (RPC-6); but a server answers each
                    // request once, with its Seq (RPC-5), so the bench cannot count on it.
                    return Err(broken(&format!(
                        "a response with Seq {}, which no pending call has (RPC-5)",
                        response.header.seq
                    )));
                }
                done += 1;
                if sent < total {
                    codec
                        .call_typed(Call::OnDeactivate, &mut out)
                        .map_err(|e| broken(&e))?;
                    sent += 1;
                }
            }
            dog.tick();
        }
        Ok(started.elapsed())
    }

    /// The connection, for a [`Watchdog`] to close.
    pub fn connection(&self) -> Arc<Connection> {
        Arc::clone(&self.conn)
    }

    /// Calls `OnDeactivate` (any number of threads may call at once). An error response or a
    /// failed call is an error.
    pub fn call_deactivate(&self) -> Result<(), BenchError> {
        match self.client()?.call(Call::OnDeactivate) {
            Ok(Reply::Empty) => Ok(()),
            Ok(other) => Err(BenchError(format!(
                "{}: OnDeactivate answered {other:?} instead of an empty struct (RPC-10)",
                self.program
            ))),
            Err(e) => Err(BenchError(format!("{}: {e}", self.program))),
        }
    }

    /// Deactivates the plugin and closes the activation's API stream if the plugin has not
    /// (RPC-17).
    pub fn deactivate(&mut self) -> Result<(), BenchError> {
        let result = self.call_deactivate();
        if let Some(api) = self.api.take() {
            api.close();
        }
        result
    }

    /// Activates the plugin as the reference host does (RPC-13, RPC-17): opens an API stream,
    /// serves `LocalAPI` on it (`LoadPluginConfiguration` answered with `config`), closes the
    /// previous activation's, and calls `OnActivate` with the new stream's id. Returns whether
    /// the plugin called `LoadPluginConfiguration` before it answered.
    pub fn activate(&mut self, config: Arc<Vec<u8>>) -> Result<bool, BenchError> {
        let program = &self.program;
        let before = self.loads.load(Ordering::SeqCst);
        let stream = self
            .conn
            .open_stream()
            .map_err(|e| BenchError(format!("{program}: cannot open an API stream: {e}")))?;
        let loads = Arc::clone(&self.loads);
        let handler = Arc::new(move |call: Call| match call {
            Call::LoadPluginConfiguration => {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Reply::Configuration(config.as_ref().clone()))
            }
            other => Err(format!("rpc: can't find method {}", other.service_method())),
        });
        // The server's thread ends by itself once the stream has ended.
        serve(stream.clone(), &[API_SERVICE], handler)
            .map_err(|e| BenchError(format!("cannot serve LocalAPI: {e}")))?;
        let id = stream.id().get();
        if let Some(previous) = self.api.replace(stream) {
            previous.close();
        }
        match self.client()?.call(Call::OnActivate { api_stream: id }) {
            Ok(Reply::Empty) => Ok(self.loads.load(Ordering::SeqCst) > before),
            Ok(other) => Err(BenchError(format!(
                "{program}: OnActivate answered {other:?} instead of an empty struct (RPC-10)"
            ))),
            Err(e) => Err(BenchError(format!("{program}: {e}"))),
        }
    }

    /// Closes the connection, lets the plugin exit (TRANS-9; killed after [`EXIT_BOUND`] times
    /// the timeout scale), and kills whatever it started.
    pub fn close(mut self) {
        self.conn.close();
        if !matches!(self.process.wait_timeout(self.exit_bound), Ok(Some(_))) {
            let _ = self.process.kill();
        }
        kill_marked(&self.token);
    }
}

/// Kills the processes marked with `token` (what a plugin started and left behind).
fn kill_marked(token: &str) {
    for (pid, _) in processes_with(&format!("{TOKEN_VAR}={token}")) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Ends a stalled measurement: when [`Watchdog::tick`] has not been called for a whole
/// `stall` period, it runs its action (closing connections, killing processes) once, which
/// makes whatever waited fail at once.
#[derive(Debug)]
pub struct Watchdog {
    stop: Option<Sender<()>>,
    progress: Arc<AtomicU64>,
    fired: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    stall: Duration,
}

impl Watchdog {
    /// Starts watching.
    pub fn start(stall: Duration, action: impl FnOnce() + Send + 'static) -> Watchdog {
        let (stop, stopped) = channel::<()>();
        let progress = Arc::new(AtomicU64::new(0));
        let fired = Arc::new(AtomicBool::new(false));
        let (p, f) = (Arc::clone(&progress), Arc::clone(&fired));
        let thread = std::thread::spawn(move || {
            let mut seen = p.load(Ordering::Relaxed);
            loop {
                match stopped.recv_timeout(stall) {
                    Err(RecvTimeoutError::Timeout) => {
                        let now = p.load(Ordering::Relaxed);
                        if now == seen {
                            f.store(true, Ordering::SeqCst);
                            action();
                            return;
                        }
                        seen = now;
                    }
                    _ => return,
                }
            }
        });
        Watchdog {
            stop: Some(stop),
            progress,
            fired,
            thread: Some(thread),
            stall,
        }
    }

    /// Notes progress.
    pub fn tick(&self) {
        self.progress.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether it ended a stall.
    pub fn fired(&self) -> bool {
        self.fired.load(Ordering::SeqCst)
    }

    /// `error`, or a clearer one if the watchdog ended a stall while `what` ran.
    pub fn explain(&self, what: &str, error: BenchError) -> BenchError {
        if self.fired() {
            BenchError(format!(
                "{what}: nothing happened for {:?} (a call or a transfer never completed), so the \
                 bench ended the subject ({error})",
                self.stall
            ))
        } else {
            error
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a [`Watchdog`] ends when it fires: connections to close and processes to kill. A
/// process is taken off the list before it is reaped, so that its id cannot have been reused
/// when the watchdog kills it.
#[derive(Debug, Clone, Default)]
pub struct Victims {
    inner: Arc<Mutex<VictimList>>,
}

#[derive(Debug, Default)]
struct VictimList {
    connections: Vec<Arc<Connection>>,
    pids: Vec<u32>,
}

impl Victims {
    fn list(&self) -> std::sync::MutexGuard<'_, VictimList> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a plugin: its connection and its process.
    pub fn add_plugin(&self, plugin: &DirectPlugin) {
        let mut list = self.list();
        list.connections.push(plugin.connection());
        list.pids.push(plugin.pid());
    }

    /// Adds a process.
    pub fn add_pid(&self, pid: u32) {
        self.list().pids.push(pid);
    }

    /// Takes a plugin off the list (before closing it).
    pub fn remove_plugin(&self, plugin: &DirectPlugin) {
        let conn = plugin.connection();
        let mut list = self.list();
        list.connections.retain(|c| !Arc::ptr_eq(c, &conn));
        list.pids.retain(|p| *p != plugin.pid());
    }

    /// Takes a process off the list (before reaping it).
    pub fn remove_pid(&self, pid: u32) {
        self.list().pids.retain(|p| *p != pid);
    }

    /// The watchdog's action: closes every connection and kills every process on the list.
    pub fn action(&self) -> impl FnOnce() + Send + 'static {
        let me = self.clone();
        move || {
            let list = me.list();
            for conn in &list.connections {
                conn.close();
            }
            for pid in &list.pids {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(*pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
