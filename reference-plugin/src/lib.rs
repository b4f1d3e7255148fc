//! # rpcplugin-reference-plugin
//!
//! The plugin side of rpcplugin wire protocol 1, built on [`rpcplugin_runtime`]: a plugin
//! implements [`Hooks`] and calls [`serve`] from `main`.
//!
//! - [`serve`] takes over the pipes the host passed as descriptors 3 and 4 (TRANS-1, TRANS-2)
//!   and hands them to [`serve_connection`], which also runs in-process on any plugin-role
//!   [`Connection`].
//! - [`serve_connection`] opens the hooks stream, registers it and announces it as the first
//!   frame (HS-1, STREAM-4), then serves the `LocalHooks` service on it (RPC-12):
//!   - `OnActivate(id)` rejects an id that is not a positive odd number above every API stream
//!     id connected before, with an error response and without connecting anything or running
//!     the hook (RPC-14); otherwise it closes the previous activation's API stream, connects the
//!     new one, and runs [`Hooks::on_activate`] with an [`Api`] that calls the host's `LocalAPI`
//!     on that stream (RPC-20);
//!   - `OnDeactivate` runs [`Hooks::on_deactivate`], then closes the API stream (RPC-15);
//!   - a hook's error (or panic) becomes the text of the error response.
//! - It returns once the connection has ended (TRANS-7), within [`HOOK_GRACE`] even if a hook is
//!   still running, so that a plugin exits well within EXIT_BOUND (TRANS-9); [`exit_code`] maps
//!   the outcome to the plugin's exit status (TRANS-10).
//!
//! The hooks run one at a time: an `OnActivate` or `OnDeactivate` request waits for the hook
//! call in progress to return.
//!
//! The `rpcplugin-reference-plugin` binary (`src/main.rs`) is a plugin built on this library.

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError, Weak};
use std::time::{Duration, Instant};

use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::rpc::{check_api_stream, Call, Reply, HOOKS_SERVICE};
use rpcplugin_codec::stream::{ConnectionEnd, Limits, Role, StreamError};
use rpcplugin_runtime::connection::Connection;
use rpcplugin_runtime::process::{inherited_pipes, InheritError};
use rpcplugin_runtime::rpc::{self, CallFailure, RpcClient};

pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;

/// The longest a plugin takes to exit after its connection has ended (TRANS-9).
pub use rpcplugin_codec::lifecycle::EXIT_BOUND;

/// How long [`serve_connection`] lets hook calls still running finish after the connection has
/// ended before it returns anyway (well below [`EXIT_BOUND`], TRANS-9).
pub const HOOK_GRACE: Duration = Duration::from_secs(1);

/// A plugin's hooks: what the host calls on the hooks stream (RPC-12).
///
/// The hooks run one at a time, each on a thread of its own. An `Err` becomes the text of the
/// error response the host receives (RPC-20, RPC-15); so does a panic.
pub trait Hooks: Send + Sync + 'static {
    /// Runs when the host activates the plugin. `api` calls the host's `LocalAPI` on the
    /// activation's API stream; it stops working when the plugin is deactivated or activated
    /// again (RPC-20, RPC-15).
    fn on_activate(&self, api: Api) -> Result<(), String>;

    /// Runs when the host deactivates the plugin. The API stream is closed after it returns
    /// (RPC-15).
    fn on_deactivate(&self) -> Result<(), String>;
}

impl<H: Hooks> Hooks for Arc<H> {
    fn on_activate(&self, api: Api) -> Result<(), String> {
        (**self).on_activate(api)
    }

    fn on_deactivate(&self) -> Result<(), String> {
        (**self).on_deactivate()
    }
}

/// Why a call to the host's API failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApiError {
    /// The activation this handle belongs to is over: the plugin was deactivated or activated
    /// again, which closes the activation's API stream (RPC-20, RPC-15).
    #[error(
        "{method} failed: the API stream {stream} of this activation is closed (the plugin was \
         deactivated or activated again, RPC-20, RPC-15)"
    )]
    Closed {
        /// `Service.Method`.
        method: &'static str,
        /// The API stream's id.
        stream: i64,
    },
    /// The host answered with an error response, or the API stream or the connection ended
    /// before the reply (RPC-10, RPC-11).
    #[error(transparent)]
    Call(#[from] CallFailure),
    /// The host's reply to `LoadPluginConfiguration` is not a JSON text (RPC-18).
    #[error(
        "LocalAPI.LoadPluginConfiguration: the host's configuration is not valid JSON (RPC-18): \
         {0}"
    )]
    Json(#[from] serde_json::Error),
}

struct ApiInner {
    client: RpcClient,
    closed: AtomicBool,
}

/// The host's API, as handed to [`Hooks::on_activate`]: a typed client of the `LocalAPI`
/// service on the activation's API stream (RPC-12). Clones share the stream.
#[derive(Clone)]
pub struct Api {
    inner: Arc<ApiInner>,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("stream", &self.stream_id())
            .field("closed", &self.is_closed())
            .finish()
    }
}

impl Api {
    fn new(client: RpcClient) -> Api {
        Api {
            inner: Arc::new(ApiInner {
                client,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The id of the API stream (a positive odd number the host allocated, STREAM-2).
    pub fn stream_id(&self) -> i64 {
        self.inner.client.stream().id().get()
    }

    /// Whether the plugin has closed this activation's API stream (RPC-20, RPC-15).
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Closes the API stream: calls in progress and later calls fail.
    fn close(&self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.client.close();
    }

    /// Calls `LocalAPI.LoadPluginConfiguration` and returns the host's reply: the plugin's
    /// configuration as a JSON text, `null` when it has none (RPC-18). The bytes are returned
    /// as they came, unchecked.
    pub fn load_plugin_configuration(&self) -> Result<Vec<u8>, ApiError> {
        let call = Call::LoadPluginConfiguration;
        let method = call.service_method();
        let closed = || ApiError::Closed {
            method,
            stream: self.stream_id(),
        };
        if self.is_closed() {
            return Err(closed());
        }
        match self.inner.client.call(call) {
            Ok(Reply::Configuration(json)) => Ok(json),
            Ok(other) => Err(ApiError::Call(CallFailure::ReplyType {
                method: method.to_string(),
                text: format!("unexpected reply {other:?}"),
            })),
            Err(_) if self.is_closed() => Err(closed()),
            Err(e) => {
                if matches!(e, CallFailure::Ended { .. }) {
                    // The stream is gone: close this side too (STREAM-11).
                    self.inner.client.stream().close();
                }
                Err(ApiError::Call(e))
            }
        }
    }

    /// [`Api::load_plugin_configuration`], parsed as JSON (RPC-18).
    pub fn load_plugin_configuration_json(&self) -> Result<serde_json::Value, ApiError> {
        let bytes = self.load_plugin_configuration()?;
        Ok(serde_json::from_slice(&bytes)?)
    }
}

/// How [`serve`] or [`serve_connection`] ended without an error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServeOutcome {
    /// The host closed its pipes: the clean end of the connection (TRANS-7, TRANS-8).
    HostClosed,
}

/// Why [`serve`] or [`serve_connection`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Descriptors 3 and 4 are not the host's pipes (TRANS-1): the program was not started by a
    /// host.
    #[error(
        "this program is an rpcplugin plugin: start it from an rpcplugin host (for example \
         `rpcplugin-reference-host run <this program>`), which passes the plugin's pipes as file \
         descriptors 3 and 4 (here, {detail})",
        detail = inherit_detail(.0)
    )]
    NotStartedByHost(#[source] InheritError),
    /// The connection or the hooks server could not be started (threads, descriptors).
    #[error("cannot start serving the connection: {0}")]
    Setup(#[source] io::Error),
    /// The hooks stream could not be opened and announced (HS-1).
    #[error("cannot announce the hooks stream (HS-1): {0}")]
    Announce(#[source] StreamError),
    /// The connection ended otherwise than by the host closing its pipes: a connection error
    /// (FRAME-14) or a failed read or write (TRANS-7).
    #[error("the connection to the host failed: {0}")]
    Protocol(ConnectionEnd),
}

/// What is wrong with descriptors 3 and 4, without [`InheritError`]'s own hint (which
/// [`ServeError::NotStartedByHost`] gives in its own words).
fn inherit_detail(e: &InheritError) -> String {
    match e {
        InheritError::NotOpen { fd } => format!("file descriptor {fd} is not open"),
        InheritError::WrongMode {
            fd,
            expected,
            actual,
        } => format!("file descriptor {fd} is open {actual} but must be {expected}"),
        other => other.to_string(),
    }
}

/// The exit status of a plugin whose [`serve`] returned `result` (TRANS-10): 0 when the host
/// closed the connection, 1 after a protocol or connection error, 2 when the plugin could not
/// start serving (no descriptors 3 and 4, for instance).
pub fn exit_code(result: &Result<ServeOutcome, ServeError>) -> i32 {
    match result {
        Ok(ServeOutcome::HostClosed) => 0,
        Err(ServeError::NotStartedByHost(_) | ServeError::Setup(_)) => 2,
        Err(ServeError::Announce(_) | ServeError::Protocol(_)) => 1,
    }
}

/// Serves `hooks` over the pipes the host passed as descriptors 3 (read) and 4 (write)
/// (TRANS-1, TRANS-2) until the connection ends; see [`serve_connection`].
///
/// Call it first thing in `main`, before opening any file: if the program was not started by a
/// host, descriptors 3 and 4 would be whatever is opened next. Without them it fails with
/// [`ServeError::NotStartedByHost`].
pub fn serve(hooks: impl Hooks) -> Result<ServeOutcome, ServeError> {
    serve_with_limits(hooks, Limits::default(), DecodeLimits::default())
}

/// [`serve`], with the given stream-table limits (frame payload, stream buffer: FRAME-8,
/// STREAM-13) and gob decoding limits (message size, nesting: GOB-15, GOB-17). With
/// [`Limits::minimum`] and [`DecodeLimits::minimum`] the plugin accepts exactly what the spec
/// guarantees and nothing more, as the conformance tests run it (`--min-limits`).
pub fn serve_with_limits(
    hooks: impl Hooks,
    limits: Limits,
    gob: DecodeLimits,
) -> Result<ServeOutcome, ServeError> {
    let (input, output) = inherited_pipes().map_err(ServeError::NotStartedByHost)?;
    gob.validate()
        .map_err(|e| ServeError::Setup(std::io::Error::new(std::io::ErrorKind::InvalidInput, e)))?;
    let conn = Connection::new(Role::Plugin, input, output, limits).map_err(ServeError::Setup)?;
    conn.set_gob_limits(gob);
    serve_connection(conn, hooks)
}

/// The outcome for a connection that ended with `end`.
fn outcome(end: ConnectionEnd) -> Result<ServeOutcome, ServeError> {
    match end {
        // End of input, or EPIPE on a write (the runtime reports both as the peer closing).
        ConnectionEnd::PeerClosed => Ok(ServeOutcome::HostClosed),
        other => Err(ServeError::Protocol(other)),
    }
}

/// Serves `hooks` on `conn`, a plugin-role connection, until the connection ends.
///
/// Announces the hooks stream (HS-1), serves `LocalHooks` on it (RPC-12, RPC-14, RPC-20, RPC-15), and
/// waits for the connection to end. It then gives hook calls still running up to
/// [`HOOK_GRACE`] to finish, closes the connection (both pipes, TRANS-8) and returns
/// [`ServeOutcome::HostClosed`] if the host closed its pipes, [`ServeError::Protocol`] if the
/// connection failed.
///
/// The end of the hooks stream alone (the host closed it, or its gob stream broke, GOB-18) does
/// not end serving: what follows is the host's decision, and the plugin waits for the
/// connection to end.
pub fn serve_connection(conn: Connection, hooks: impl Hooks) -> Result<ServeOutcome, ServeError> {
    let conn = Arc::new(conn);
    let hooks_stream = match conn.announce() {
        Ok(stream) => stream,
        Err(e) => {
            let end = conn.ended();
            conn.close();
            return match end {
                Some(end) => outcome(end),
                None => Err(ServeError::Announce(e)),
            };
        }
    };
    let served = Arc::new(Served {
        hooks,
        conn: Arc::downgrade(&conn),
        state: Mutex::new(Activation { last: 0, api: None }),
    });
    let handler = {
        let served = Arc::clone(&served);
        Arc::new(move |call: Call| served.handle(call))
    };
    let server = match rpc::serve(hooks_stream, &[HOOKS_SERVICE], handler) {
        Ok(server) => server,
        Err(e) => {
            conn.close();
            return Err(ServeError::Setup(e));
        }
    };
    // TRANS-9: wait for the connection, not for the server (whose hooks may never return).
    let end = loop {
        if let Some(end) = conn.wait_ended(Duration::from_secs(3600)) {
            break end;
        }
    };
    let deadline = Instant::now() + HOOK_GRACE;
    while !server.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if server.is_finished() {
        let _ = server.join();
    }
    served.close_api();
    conn.close();
    outcome(end)
}

/// The plugin's activation state.
struct Activation {
    /// The largest API stream id connected so far (0 if none, RPC-14).
    last: i64,
    /// The current activation's API, until it is closed.
    api: Option<Api>,
}

struct Served<H> {
    hooks: H,
    conn: Weak<Connection>,
    /// Held for the whole of each hook call, so that hooks run one at a time.
    state: Mutex<Activation>,
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a non-text panic".to_string()
    }
}

impl<H: Hooks> Served<H> {
    fn lock(&self) -> MutexGuard<'_, Activation> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Closes the current API stream, unless a hook call holds the state (it may never return;
    /// the connection's end fails the stream anyway).
    fn close_api(&self) {
        let mut state = match self.state.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return,
        };
        if let Some(api) = state.api.take() {
            api.close();
        }
    }

    fn run_hook(
        &self,
        name: &str,
        hook: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        match catch_unwind(AssertUnwindSafe(hook)) {
            Ok(result) => result,
            Err(payload) => Err(format!(
                "the plugin's {name} hook panicked: {}",
                panic_text(&*payload)
            )),
        }
    }

    fn handle(&self, call: Call) -> Result<Reply, String> {
        match call {
            Call::OnActivate { api_stream } => self.on_activate(api_stream),
            Call::OnDeactivate => self.on_deactivate(),
            // Not routed here: the server serves LocalHooks only (RPC-8 answers the rest).
            Call::LoadPluginConfiguration => {
                Err(format!("rpc: can't find service {}", call.service_method()))
            }
        }
    }

    /// RPC-14 (an id to refuse), RPC-20 (the activation).
    fn on_activate(&self, id: i64) -> Result<Reply, String> {
        let mut state = self.lock();
        let stream_id = check_api_stream(id, state.last).map_err(|e| e.to_string())?;
        if let Some(previous) = state.api.take() {
            previous.close();
        }
        let conn = self
            .conn
            .upgrade()
            .ok_or_else(|| "the connection has ended".to_string())?;
        let stream = conn
            .connect_stream(stream_id)
            .map_err(|e| format!("cannot connect the API stream {id}: {e}"))?;
        drop(conn);
        state.last = id;
        let client = RpcClient::new(stream)
            .map_err(|e| format!("cannot start the API client on stream {id}: {e}"))?;
        let api = Api::new(client);
        state.api = Some(api.clone());
        self.run_hook("OnActivate", || self.hooks.on_activate(api))?;
        Ok(Reply::Empty)
    }

    /// RPC-15.
    fn on_deactivate(&self) -> Result<Reply, String> {
        let mut state = self.lock();
        let result = self.run_hook("OnDeactivate", || self.hooks.on_deactivate());
        if let Some(api) = state.api.take() {
            api.close();
        }
        result.map(|()| Reply::Empty)
    }
}
