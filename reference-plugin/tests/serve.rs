//! `serve_connection` in-process: a host-role [`Connection`] plays the host against the plugin
//! library over two pipes, as the seed's `TestHooks` and `TestAPI` did, plus the activation
//! rules of RPC-14 and RPC-15 and the end of the connection (TRANS-7 to TRANS-10).

use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rpcplugin_reference_plugin::codec::rpc::{Call, Reply, API_SERVICE};
use rpcplugin_reference_plugin::codec::stream::{ConnectionEnd, Limits, Role};
use rpcplugin_reference_plugin::runtime::connection::Connection;
use rpcplugin_reference_plugin::runtime::rpc::{serve, CallFailure, RpcClient, ServeEnd};
use rpcplugin_reference_plugin::runtime::Stream;
use rpcplugin_reference_plugin::{
    exit_code, serve_connection, Api, ApiError, Hooks, ServeError, ServeOutcome, EXIT_BOUND,
};
use rpcplugin_test_support::within;

const LIMIT: Duration = Duration::from_secs(10);
const CONFIG: &[u8] = br#"{"Foo":"foo","Bar":{"Baz":"baz"}}"#;

/// What the test hooks saw.
#[derive(Debug, Clone, PartialEq)]
enum Event {
    Activated {
        stream: i64,
        config: Result<serde_json::Value, String>,
    },
    Deactivated,
}

/// Hooks that load the configuration on activation and report everything on a channel.
struct Recorder {
    events: Mutex<Sender<Event>>,
    apis: Mutex<Vec<Api>>,
    fail: Option<String>,
    panic: bool,
    block: Option<Duration>,
}

impl Recorder {
    fn new() -> (Recorder, Receiver<Event>) {
        let (tx, rx) = channel();
        (
            Recorder {
                events: Mutex::new(tx),
                apis: Mutex::new(Vec::new()),
                fail: None,
                panic: false,
                block: None,
            },
            rx,
        )
    }

    fn send(&self, e: Event) {
        let _ = self.events.lock().unwrap().send(e);
    }
}

impl Hooks for Recorder {
    fn on_activate(&self, api: Api) -> Result<(), String> {
        let config = api
            .load_plugin_configuration_json()
            .map_err(|e| e.to_string());
        self.apis.lock().unwrap().push(api.clone());
        self.send(Event::Activated {
            stream: api.stream_id(),
            config,
        });
        if let Some(d) = self.block {
            thread::sleep(d);
        }
        if self.panic {
            panic!("the test hook panics");
        }
        match &self.fail {
            Some(text) => Err(text.clone()),
            None => Ok(()),
        }
    }

    fn on_deactivate(&self) -> Result<(), String> {
        self.send(Event::Deactivated);
        match &self.fail {
            Some(text) => Err(format!("{text} (deactivate)")),
            None => Ok(()),
        }
    }
}

/// The host's end of a running plugin.
struct Host {
    conn: Arc<Connection>,
    hooks: Arc<RpcClient>,
    plugin: Receiver<Result<ServeOutcome, ServeError>>,
}

/// An API stream the host opened and serves `LocalAPI` on.
struct ApiStream {
    stream: Stream,
    server: JoinHandle<ServeEnd>,
}

impl ApiStream {
    fn id(&self) -> i64 {
        self.stream.id().get()
    }

    /// Waits for the plugin to close the stream: the host's server loop ends.
    fn wait_closed(self) -> ServeEnd {
        let ApiStream { stream, server } = self;
        let end = within(LIMIT, move || server.join().unwrap());
        drop(stream); // STREAM-11: the host closes its side too.
        end
    }

    fn is_served(&self) -> bool {
        !self.server.is_finished()
    }
}

/// A host and a plugin connection joined by two pipes.
fn pair() -> (Connection, Connection) {
    let (host_in, plugin_out) = std::io::pipe().unwrap();
    let (plugin_in, host_out) = std::io::pipe().unwrap();
    let host = Connection::new(
        Role::Host,
        OwnedFd::from(host_in),
        OwnedFd::from(host_out),
        Limits::default(),
    )
    .unwrap();
    let plugin = Connection::new(
        Role::Plugin,
        OwnedFd::from(plugin_in),
        OwnedFd::from(plugin_out),
        Limits::default(),
    )
    .unwrap();
    (host, plugin)
}

impl Host {
    /// Starts `serve_connection` on a thread and does the host's side of the handshake.
    fn start(hooks: impl Hooks) -> Host {
        let (host, plugin) = pair();
        let (tx, rx) = channel();
        thread::spawn(move || {
            let _ = tx.send(serve_connection(plugin, hooks));
        });
        let hooks = host
            .wait_for_handshake(LIMIT)
            .expect("the plugin announces");
        assert_eq!(
            hooks.id().get(),
            2,
            "a conforming plugin announces stream 2"
        );
        Host {
            conn: Arc::new(host),
            hooks: Arc::new(RpcClient::new(hooks).unwrap()),
            plugin: rx,
        }
    }

    /// Opens a stream and serves `LocalAPI` on it, answering with `config` (RPC-13).
    fn open_api(&self, config: &'static [u8]) -> ApiStream {
        let stream = self.conn.open_stream().unwrap();
        let server = serve(
            stream.clone(),
            &[API_SERVICE],
            Arc::new(move |call| match call {
                Call::LoadPluginConfiguration => Ok(Reply::Configuration(config.to_vec())),
                other => Err(format!("unexpected {other}")),
            }),
        )
        .unwrap();
        ApiStream { stream, server }
    }

    fn call(&self, call: Call) -> Result<Reply, CallFailure> {
        let hooks = Arc::clone(&self.hooks);
        within(LIMIT, move || hooks.call(call))
    }

    fn activate(&self, id: i64) -> Result<Reply, CallFailure> {
        self.call(Call::OnActivate { api_stream: id })
    }

    /// Closes the connection and returns what `serve_connection` returned, and how long after.
    fn close(self) -> (Result<ServeOutcome, ServeError>, Duration) {
        let Host {
            conn,
            hooks,
            plugin,
        } = self;
        let start = Instant::now();
        conn.close();
        let result = plugin
            .recv_timeout(LIMIT)
            .expect("serve_connection returns after the host closed");
        let took = start.elapsed();
        drop(hooks);
        (result, took)
    }
}

fn next(events: &Receiver<Event>) -> Event {
    events.recv_timeout(LIMIT).expect("a hook event")
}

fn remote_text(r: Result<Reply, CallFailure>) -> String {
    match r {
        Err(CallFailure::Remote { text, .. }) => text,
        other => panic!("expected an error response, got {other:?}"),
    }
}

// The seed's TestHooks and TestAPI, against the plugin library: the hook loads the configuration
// through the API stream the host named, and OnDeactivate closes that stream after the hook.
// covers: HS-1, RPC-12, RPC-20, RPC-15
#[test]
fn activation_loads_the_configuration_and_deactivation_closes_the_api_stream() {
    let (hooks, events) = Recorder::new();
    let hooks = Arc::new(hooks);
    let host = Host::start(Arc::clone(&hooks));
    let api = host.open_api(CONFIG);
    assert_eq!(api.id(), 1);
    assert_eq!(host.activate(api.id()), Ok(Reply::Empty));
    assert_eq!(
        next(&events),
        Event::Activated {
            stream: 1,
            config: Ok(serde_json::json!({"Foo": "foo", "Bar": {"Baz": "baz"}})),
        }
    );
    // The API stays usable after the hook returned, until deactivation.
    let kept = hooks.apis.lock().unwrap()[0].clone();
    assert_eq!(
        within(LIMIT, {
            let kept = kept.clone();
            move || kept.load_plugin_configuration().unwrap()
        }),
        CONFIG
    );
    assert!(api.is_served());

    assert_eq!(host.call(Call::OnDeactivate), Ok(Reply::Empty));
    assert_eq!(next(&events), Event::Deactivated);
    // RPC-15: the plugin closed the API stream, so the host's LocalAPI server saw its end.
    assert_eq!(api.wait_closed(), ServeEnd::Closed);
    assert!(kept.is_closed());
    let err = within(LIMIT, move || kept.load_plugin_configuration().unwrap_err());
    assert!(matches!(err, ApiError::Closed { stream: 1, .. }), "{err}");
    assert!(err.to_string().contains("RPC-15"), "{err}");

    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);
}

// covers: RPC-14, STREAM-2
#[test]
fn on_activate_rejects_ids_the_host_cannot_have_allocated() {
    let (hooks, events) = Recorder::new();
    let host = Host::start(hooks);
    for bad in [0, -1, -3, 2, 4, i64::MIN] {
        let text = remote_text(host.activate(bad));
        assert!(
            text.starts_with(&format!("RPC-14: OnActivate({bad})")),
            "{bad}: {text}"
        );
    }
    assert!(events.try_recv().is_err(), "no hook runs for a rejected id");
    // OnActivate(2) did not take over the hooks stream: it still works.
    let first = host.open_api(CONFIG);
    let second = host.open_api(CONFIG);
    assert_eq!((first.id(), second.id()), (1, 3));
    assert_eq!(host.activate(3), Ok(Reply::Empty));
    assert!(matches!(next(&events), Event::Activated { stream: 3, .. }));
    // Ids at or below one already connected are refused, and the current activation stays.
    for stale in [3, 1] {
        let text = remote_text(host.activate(stale));
        assert!(text.contains("above 3"), "{text}");
    }
    assert!(events.try_recv().is_err());
    thread::sleep(Duration::from_millis(50));
    assert!(second.is_served(), "a rejected OnActivate closes nothing");
    assert_eq!(host.call(Call::OnDeactivate), Ok(Reply::Empty));
    assert_eq!(next(&events), Event::Deactivated);
    assert_eq!(second.wait_closed(), ServeEnd::Closed);
    // After a deactivation, the old id still cannot be reused.
    assert!(remote_text(host.activate(3)).contains("RPC-14"));
    drop(first);
    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);
}

// covers: RPC-20
#[test]
fn activating_again_closes_the_previous_api_stream() {
    let (hooks, events) = Recorder::new();
    let hooks = Arc::new(hooks);
    let host = Host::start(Arc::clone(&hooks));
    let first = host.open_api(CONFIG);
    assert_eq!(host.activate(first.id()), Ok(Reply::Empty));
    assert!(matches!(next(&events), Event::Activated { stream: 1, .. }));
    let second = host.open_api(b"null");
    assert_eq!(host.activate(second.id()), Ok(Reply::Empty));
    assert_eq!(
        next(&events),
        Event::Activated {
            stream: 3,
            config: Ok(serde_json::Value::Null)
        }
    );
    assert_eq!(first.wait_closed(), ServeEnd::Closed);
    assert!(second.is_served());
    let apis = hooks.apis.lock().unwrap().clone();
    assert!(apis[0].is_closed() && !apis[1].is_closed());
    let old = apis[0].clone();
    assert!(matches!(
        within(LIMIT, move || old.load_plugin_configuration()),
        Err(ApiError::Closed { stream: 1, .. })
    ));
    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);
}

// A failed hook is an error response carrying its text; OnDeactivate closes the API stream even
// when its hook fails; a panicking hook is answered too, and the hooks stream goes on.
// covers: RPC-5, RPC-20, RPC-15
#[test]
fn failing_hooks_answer_with_their_error_text() {
    let (mut hooks, events) = Recorder::new();
    hooks.fail = Some("not today".into());
    let host = Host::start(hooks);
    let api = host.open_api(CONFIG);
    assert_eq!(remote_text(host.activate(api.id())), "not today");
    assert!(matches!(
        next(&events),
        Event::Activated {
            stream: 1,
            config: Ok(_)
        }
    ));
    assert_eq!(
        remote_text(host.call(Call::OnDeactivate)),
        "not today (deactivate)"
    );
    assert_eq!(next(&events), Event::Deactivated);
    assert_eq!(api.wait_closed(), ServeEnd::Closed);
    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);

    let (mut hooks, events) = Recorder::new();
    hooks.panic = true;
    let host = Host::start(hooks);
    let api = host.open_api(CONFIG);
    let text = remote_text(host.activate(api.id()));
    assert_eq!(
        text,
        "the plugin's OnActivate hook panicked: the test hook panics"
    );
    assert!(matches!(next(&events), Event::Activated { .. }));
    assert_eq!(host.call(Call::OnDeactivate), Ok(Reply::Empty));
    assert_eq!(api.wait_closed(), ServeEnd::Closed);
    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);
}

// A host error response to LoadPluginConfiguration, and a reply that is not JSON, reach the
// hook as errors; the hook decides whether it fails.
// covers: RPC-10, RPC-20
#[test]
fn api_failures_reach_the_hook() {
    let (hooks, events) = Recorder::new();
    let host = Host::start(hooks);
    let api = host.open_api(b"{not json");
    assert_eq!(host.activate(api.id()), Ok(Reply::Empty));
    match next(&events) {
        Event::Activated {
            config: Err(text), ..
        } => assert!(text.contains("not valid JSON"), "{text}"),
        other => panic!("{other:?}"),
    }
    // A host whose LocalAPI server refuses the call.
    let stream = host.conn.open_stream().unwrap();
    let server = serve(
        stream.clone(),
        &[API_SERVICE],
        Arc::new(|_| Err("no configuration for you".to_string())),
    )
    .unwrap();
    assert_eq!(host.activate(stream.id().get()), Ok(Reply::Empty));
    match next(&events) {
        Event::Activated {
            config: Err(text), ..
        } => assert_eq!(
            text,
            "LocalAPI.LoadPluginConfiguration failed: no configuration for you"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(api.wait_closed(), ServeEnd::Closed);
    drop((stream, server));
    let (result, _) = host.close();
    assert_eq!(result.unwrap(), ServeOutcome::HostClosed);
}

// covers: TRANS-7, TRANS-10
#[test]
fn the_host_closing_its_pipes_is_a_clean_end() {
    let (hooks, _events) = Recorder::new();
    let host = Host::start(hooks);
    let (result, took) = host.close();
    assert_eq!(result.as_ref().unwrap(), &ServeOutcome::HostClosed);
    assert_eq!(exit_code(&result), 0);
    assert!(took < EXIT_BOUND, "{took:?}");
}

// The plugin returns within EXIT_BOUND of the end of its connection even while a hook is still
// running (the seed waits for it); the host's pending call fails at once.
// covers: TRANS-7, TRANS-9, TRANS-10, RPC-11
#[test]
fn serving_ends_promptly_when_the_host_closes_during_a_hook() {
    let (mut hooks, events) = Recorder::new();
    hooks.block = Some(Duration::from_secs(30));
    let host = Host::start(hooks);
    let api = host.open_api(CONFIG);
    let client = Arc::clone(&host.hooks);
    let id = api.id();
    let pending = thread::spawn(move || client.call(Call::OnActivate { api_stream: id }));
    assert!(matches!(
        next(&events),
        Event::Activated { config: Ok(_), .. }
    ));
    let (result, took) = host.close();
    assert_eq!(result.as_ref().unwrap(), &ServeOutcome::HostClosed);
    assert_eq!(exit_code(&result), 0);
    assert!(took < EXIT_BOUND, "serve_connection took {took:?}");
    let got = within(LIMIT, move || pending.join().unwrap());
    assert!(matches!(got, Err(CallFailure::Ended { .. })), "{got:?}");
}

// Raw bytes on both pipes: the announcement is exactly the first frame, and a malformed frame
// from the host (a negative stream id) ends serving with a protocol error, after which the
// plugin has closed its pipes.
// covers: HS-1, FRAME-14, TRANS-8, TRANS-10
#[test]
fn a_connection_error_ends_serving_with_a_protocol_error() {
    let (mut host_in, plugin_out) = std::io::pipe().unwrap();
    let (plugin_in, mut host_out) = std::io::pipe().unwrap();
    let plugin = Connection::new(
        Role::Plugin,
        OwnedFd::from(plugin_in),
        OwnedFd::from(plugin_out),
        Limits::default(),
    )
    .unwrap();
    let (hooks, _events) = Recorder::new();
    let (tx, rx) = channel();
    thread::spawn(move || {
        let _ = tx.send(serve_connection(plugin, hooks));
    });
    let (announcement, mut host_in) = within(LIMIT, move || {
        let mut buf = [0u8; 4];
        host_in.read_exact(&mut buf).unwrap();
        (buf, host_in)
    });
    assert_eq!(announcement, [0x00, 0x04, 0x00, 0x04]);
    host_out.write_all(&[0x01, 0x00]).unwrap();
    let result = rx.recv_timeout(LIMIT).expect("serve_connection returns");
    match &result {
        Err(ServeError::Protocol(ConnectionEnd::Error(_))) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(exit_code(&result), 1);
    let rest = within(LIMIT, move || {
        let mut rest = Vec::new();
        host_in.read_to_end(&mut rest).unwrap();
        rest
    });
    assert!(rest.is_empty(), "nothing after the announcement: {rest:?}");
}

// A host that closed its pipes may make the plugin's next write fail (EPIPE) before the plugin
// reads end-of-file: that is the same clean end.
// covers: TRANS-7, TRANS-10
#[test]
fn a_failed_write_to_a_closed_host_pipe_is_a_clean_end() {
    let (host_in, plugin_out) = std::io::pipe().unwrap();
    let (plugin_in, host_out) = std::io::pipe().unwrap();
    drop(host_in);
    let plugin = Connection::new(
        Role::Plugin,
        OwnedFd::from(plugin_in),
        OwnedFd::from(plugin_out),
        Limits::default(),
    )
    .unwrap();
    let (hooks, _events) = Recorder::new();
    let result = within(LIMIT, move || serve_connection(plugin, hooks));
    assert_eq!(result.as_ref().unwrap(), &ServeOutcome::HostClosed);
    assert_eq!(exit_code(&result), 0);
    drop(host_out);
}

// covers: TRANS-10
#[test]
fn exit_codes() {
    assert_eq!(exit_code(&Ok(ServeOutcome::HostClosed)), 0);
    assert_eq!(
        exit_code(&Err(ServeError::Protocol(ConnectionEnd::Transport(
            "reading the pipe failed: I/O error".into()
        )))),
        1
    );
    assert_eq!(
        exit_code(&Err(ServeError::Setup(std::io::Error::other("no threads")))),
        2
    );
}
