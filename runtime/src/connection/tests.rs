//! Interleavings of the read role with real threads, forced on purpose rather than by sleeping:
//! the test watches the role's transitions ([`ReadRole::observe`](super::ReadRole::observe)),
//! RPC handlers block until the test lets them answer, and a long handover time keeps the
//! reader threads off a free role where a test needs that. Every wait is for evidence (a
//! transition, a reply) and bounded by [`EVIDENCE`], which only a hang reaches.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rpcplugin_codec::rpc::{Call, Reply, API_SERVICE, HOOKS_SERVICE};
use rpcplugin_codec::stream::{ConnectionEnd, Limits, Role};
use rpcplugin_test_support::within;

use super::read_role::{Holder, Seen, State};
use super::reading::token;
use super::{Connection, Cv, Stream, HANDOVER};
use crate::rpc::{serve, CallFailure, RpcClient};

/// How long a test waits for evidence before it calls the wait a hang.
const EVIDENCE: Duration = Duration::from_secs(10);

/// A handover time no test outlasts: a free role is then left to callers, and to reader
/// threads only when a thread blocks in a stream read.
const LONG: Duration = Duration::from_secs(3600);

/// A host and a plugin connection joined by two pipes.
fn pair() -> (Connection, Connection) {
    let (host_in, plugin_out) = std::io::pipe().unwrap();
    let (plugin_in, host_out) = std::io::pipe().unwrap();
    let limits = Limits::default();
    let host = Connection::new(Role::Host, host_in.into(), OwnedFd::from(host_out), limits);
    let plugin = Connection::new(Role::Plugin, plugin_in.into(), plugin_out.into(), limits);
    (host.unwrap(), plugin.unwrap())
}

/// The read role's transitions on `conn` from now on, its current state first.
fn observe(conn: &Connection) -> Receiver<Seen> {
    let (tx, rx) = channel();
    conn.shared.lock().role.observe(tx);
    rx
}

/// Sets the handover time of `conn`, and wakes its reader threads to wait by it.
fn set_handover(conn: &Connection, handover: Duration) {
    let mut inner = conn.shared.lock();
    inner.role.set_handover(handover);
    conn.shared.notify_all(&inner, Cv::Reader);
}

/// The next thing the role's observer sees, other than a caller parking.
fn next(rx: &Receiver<Seen>) -> Seen {
    loop {
        match rx.recv_timeout(EVIDENCE) {
            Ok(Seen::Parked(_)) => {}
            Ok(seen) => return seen,
            Err(e) => panic!("the read role did not move within {EVIDENCE:?}: {e}"),
        }
    }
}

/// The next state the role moves to, and the time of the transition if it had one.
fn next_state(rx: &Receiver<Seen>) -> (State, Option<Instant>) {
    match next(rx) {
        Seen::State(state, at) => (state, at),
        other => panic!("expected a transition of the read role, saw {other:?}"),
    }
}

/// Waits until caller `caller` parks; the role must not move meanwhile.
fn parked(rx: &Receiver<Seen>, caller: u64) {
    loop {
        match rx.recv_timeout(EVIDENCE) {
            Ok(Seen::Parked(c)) if c == caller => return,
            Ok(Seen::Parked(_)) => {}
            Ok(other) => panic!("expected caller {caller} to park, saw {other:?}"),
            Err(e) => panic!("caller {caller} did not park within {EVIDENCE:?}: {e}"),
        }
    }
}

/// Asserts that the role has not moved (callers may have parked).
fn still(rx: &Receiver<Seen>) {
    for seen in rx.try_iter() {
        assert!(matches!(seen, Seen::Parked(_)), "the role moved: {seen:?}");
    }
}

/// RPC handlers the test lets answer: a call with a closed gate reports that it runs (and on
/// which thread), then waits until the gate opens. Gates are named by the call:
/// `OnActivate { api_stream: n }` by `n`, `LoadPluginConfiguration` by [`CONFIGURATION`].
struct Gates {
    closed: Mutex<HashMap<i64, Receiver<()>>>,
    entered: Sender<(i64, String)>,
}

/// The gate of `LoadPluginConfiguration`.
const CONFIGURATION: i64 = -1;

impl Gates {
    fn handle(&self, call: Call) -> Result<Reply, String> {
        let (gate, reply) = match call {
            Call::OnActivate { api_stream } => (api_stream, Reply::Empty),
            Call::LoadPluginConfiguration => (CONFIGURATION, Reply::Configuration(b"{}".to_vec())),
            Call::OnDeactivate => return Ok(Reply::Empty),
        };
        let closed = self.closed.lock().unwrap().remove(&gate);
        if let Some(closed) = closed {
            let name = thread::current().name().unwrap_or_default().to_string();
            let _ = self.entered.send((gate, name));
            // Open, or dropped: both let the call answer.
            let _ = closed.recv();
        }
        Ok(reply)
    }
}

/// A host and a plugin after the handshake: the plugin serves LocalHooks on the hooks stream
/// and the host calls it through `hooks`; the host serves LocalAPI on a stream it opened and
/// the plugin calls it through `api`. Both servers answer through [`Gates`].
struct Rig {
    host: Connection,
    plugin: Connection,
    hooks: Arc<RpcClient>,
    api: Arc<RpcClient>,
    gates: Arc<Gates>,
    entered: Receiver<(i64, String)>,
}

fn rig() -> Rig {
    let (host, plugin) = pair();
    let hooks_p = plugin.announce().unwrap();
    let hooks_h = host.wait_for_handshake(EVIDENCE).unwrap();
    let (entered_tx, entered) = channel();
    let gates = Arc::new(Gates {
        closed: Mutex::default(),
        entered: entered_tx,
    });
    let g = Arc::clone(&gates);
    serve(hooks_p, &[HOOKS_SERVICE], Arc::new(move |c| g.handle(c))).unwrap();
    let hooks = Arc::new(RpcClient::new(hooks_h).unwrap());
    let api_h = host.open_stream().unwrap();
    let api_p = plugin.connect_stream(api_h.id()).unwrap();
    let g = Arc::clone(&gates);
    serve(api_h, &[API_SERVICE], Arc::new(move |c| g.handle(c))).unwrap();
    let api = Arc::new(RpcClient::new(api_p).unwrap());
    Rig {
        host,
        plugin,
        hooks,
        api,
        gates,
        entered,
    }
}

/// A call running on its own thread: the thread's token, and the call's result to come.
type Calling = (u64, JoinHandle<Result<Reply, CallFailure>>);

/// Calls `call` through `client` on a new thread.
fn call_from_thread(client: &Arc<RpcClient>, call: Call) -> Calling {
    let client = Arc::clone(client);
    let (tx, rx) = channel();
    let calling = thread::spawn(move || {
        tx.send(token()).unwrap();
        client.call(call)
    });
    (rx.recv().unwrap(), calling)
}

/// Waits for a call's result.
fn result(calling: Calling) -> Result<Reply, CallFailure> {
    within(EVIDENCE, move || calling.1.join().unwrap())
}

impl Rig {
    /// Closes gate `n`; sending on (or dropping) what it returns opens it.
    fn gate(&self, n: i64) -> Sender<()> {
        let (open, gate) = channel();
        self.gates.closed.lock().unwrap().insert(n, gate);
        open
    }

    /// Calls `OnActivate { api_stream: n }` from the host, on a new thread.
    fn call(&self, n: i64) -> Calling {
        call_from_thread(&self.hooks, Call::OnActivate { api_stream: n })
    }

    /// Waits until the handler of gate `n` runs; returns its thread's name.
    fn entered(&self, n: i64) -> String {
        loop {
            match self.entered.recv_timeout(EVIDENCE) {
                Ok((m, name)) if m == n => return name,
                Ok(_) => {}
                Err(e) => panic!("the handler of {n} did not run within {EVIDENCE:?}: {e}"),
            }
        }
    }

    /// Leaves the host's read role free, and nothing unread on its way: with the host's
    /// handover time long, the plugin calls LocalAPI; the host's reader thread that reads the
    /// request runs its handler as a job, and lets go of the role for it. The handler waits
    /// until the returned gate opens (the returned call is the plugin's). Returns the role's
    /// transitions from there, its current state (free) first.
    fn host_role_free(&self) -> (Receiver<Seen>, Sender<()>, Calling) {
        set_handover(&self.host, LONG);
        let gate = self.gate(CONFIGURATION);
        let configuration = call_from_thread(&self.api, Call::LoadPluginConfiguration);
        assert_eq!(self.entered(CONFIGURATION), "rpcplugin-host-reader");
        let rx = observe(&self.host);
        assert!(matches!(next_state(&rx).0, State::Free { .. }));
        (rx, gate, configuration)
    }
}

/// A thread that reads 4 bytes from a new stream of the host, and the plugin's end of it.
fn blocked_read(rig: &Rig) -> (JoinHandle<[u8; 4]>, Stream) {
    let s_h = rig.host.open_stream().unwrap();
    let s_p = rig.plugin.connect_stream(s_h.id()).unwrap();
    let read = thread::spawn(move || {
        let mut buf = [0u8; 4];
        (&s_h).read_exact(&mut buf).unwrap();
        buf
    });
    (read, s_p)
}

// Rows "held by a reader thread | a sink callback hands it a job" and "free | a caller waits
// for a reply": while the plugin's reader thread runs the handler of a request it decoded, a
// caller on the plugin takes the free role, reads its own reply and lets go; the reader thread
// takes the role back after the handler.
// covers: STREAM-14
#[test]
fn a_caller_reads_its_reply_itself_while_the_reader_thread_runs_a_job() {
    let rig = rig();
    set_handover(&rig.plugin, LONG);
    let gate = rig.gate(1);
    let activate = rig.call(1);
    assert_eq!(rig.entered(1), "rpcplugin-plugin-reader");
    let rx = observe(&rig.plugin);
    assert!(matches!(next_state(&rx).0, State::Free { .. }));
    let job_reader = rig.plugin.shared.lock().role.reader_in_job();
    let job_reader = job_reader.expect("the handler runs as a job of a reader thread");

    let configuration = call_from_thread(&rig.api, Call::LoadPluginConfiguration);
    let caller = configuration.0;
    assert_eq!(
        result(configuration),
        Ok(Reply::Configuration(b"{}".to_vec()))
    );
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(caller)));
    assert!(matches!(next_state(&rx).0, State::Free { .. }));
    assert!(!activate.1.is_finished(), "the handler still runs");

    gate.send(()).unwrap();
    assert_eq!(
        next_state(&rx).0,
        State::Held(Holder::Reader(job_reader)),
        "the reader thread took the role back after its job"
    );
    assert_eq!(result(activate), Ok(Reply::Empty));
}

// Rows "held by a caller | its reply arrives" (read by the caller for another one, and for
// itself), "free | a caller waits for a reply", "free | a thread blocks in a stream read" and
// "held by a reader thread | data read, a caller waits", in a forced order on the host.
// covers: RPC-4, STREAM-14
#[test]
fn replies_reach_their_callers_while_other_callers_wait() {
    let rig = rig();
    let (rx, job_gate, configuration) = rig.host_role_free();
    let job_reader = rig.host.shared.lock().role.reader_in_job().unwrap();

    // Free: a caller takes the role.
    let gate1 = rig.gate(1);
    let first = rig.call(1);
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(first.0)));

    // Another caller parks; its reply, read by the first caller, reaches it, and the first
    // caller reads on.
    let gate2 = rig.gate(2);
    let second = rig.call(2);
    parked(&rx, second.0);
    gate2.send(()).unwrap();
    assert_eq!(result(second), Ok(Reply::Empty));
    still(&rx);

    // The holder's own reply: it lets go, and the caller waiting takes the role.
    let gate3 = rig.gate(3);
    let third = rig.call(3);
    parked(&rx, third.0);
    gate1.send(()).unwrap();
    assert_eq!(result(first), Ok(Reply::Empty));
    assert!(matches!(next_state(&rx).0, State::Free { .. }));
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(third.0)));
    gate3.send(()).unwrap();
    assert_eq!(result(third), Ok(Reply::Empty));
    assert!(matches!(next_state(&rx).0, State::Free { .. }));

    // A thread blocks in a stream read: a reader thread takes the role. A caller parks; the
    // data comes; the reader thread lets go, and the caller takes the role.
    let (read, s_p) = blocked_read(&rig);
    let (reader, _) = next_state(&rx);
    assert!(matches!(reader, State::Held(Holder::Reader(r)) if r != job_reader));
    let gate4 = rig.gate(4);
    let fourth = rig.call(4);
    parked(&rx, fourth.0);
    (&s_p).write_all(b"ping").unwrap();
    assert_eq!(within(EVIDENCE, move || read.join().unwrap()), *b"ping");
    assert!(matches!(next_state(&rx).0, State::Free { .. }));
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(fourth.0)));
    gate4.send(()).unwrap();
    assert_eq!(result(fourth), Ok(Reply::Empty));
    assert!(matches!(next_state(&rx).0, State::Free { .. }));

    // The job ends: its reader thread takes the free role back.
    job_gate.send(()).unwrap();
    assert_eq!(
        result(configuration),
        Ok(Reply::Configuration(b"{}".to_vec()))
    );
    assert_eq!(next_state(&rx).0, State::Held(Holder::Reader(job_reader)));
    still(&rx);
}

// Row "any | the connection ends", closed locally while a caller holds the role: the caller's
// poll is cancelled, its call fails at once, the input closes and every thread exits.
// covers: RPC-11, TRANS-8
#[test]
fn closing_the_connection_while_a_caller_holds_the_role_ends_its_call() {
    let rig = rig();
    let (rx, job_gate, configuration) = rig.host_role_free();
    let _gate1 = rig.gate(1);
    let first = rig.call(1);
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(first.0)));
    rig.host.close();
    assert_eq!(next(&rx), Seen::Ending);
    assert_eq!(next_state(&rx).0, State::Ended);
    let got = result(first);
    assert!(matches!(got, Err(CallFailure::Ended { .. })), "{got:?}");
    drop(job_gate);
    let got = result(configuration);
    assert!(matches!(got, Err(CallFailure::Ended { .. })), "{got:?}");
    within(EVIDENCE, move || drop(rig.host));
    assert!(
        rig.plugin.wait_ended(EVIDENCE).is_some(),
        "the plugin saw the host's pipes close"
    );
}

// Row "any | the connection ends", by the peer while a caller holds the role: the caller reads
// the end itself, closes the input and fails its call.
// covers: RPC-11, TRANS-7
#[test]
fn the_peer_going_away_while_a_caller_holds_the_role_ends_its_call() {
    let rig = rig();
    let (rx, job_gate, configuration) = rig.host_role_free();
    let _gate1 = rig.gate(1);
    let first = rig.call(1);
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(first.0)));
    // The plugin goes, with the first call's handler still running.
    within(EVIDENCE, move || drop(rig.plugin));
    // The caller saw the end of input: it closed the input, then ended the connection.
    assert_eq!(next_state(&rx).0, State::Ended);
    assert_eq!(next(&rx), Seen::Ending);
    let got = result(first);
    assert!(matches!(got, Err(CallFailure::Ended { .. })), "{got:?}");
    assert_eq!(rig.host.ended(), Some(ConnectionEnd::PeerClosed));
    drop(job_gate);
    let got = result(configuration);
    assert!(matches!(got, Err(CallFailure::Ended { .. })), "{got:?}");
}

// Row "free for HANDOVER | the standby reader thread's timer": a caller lets go of the role and
// no caller comes; the standby reader thread takes it, no sooner than HANDOVER after.
// covers: STREAM-14
#[test]
fn the_standby_takes_the_role_when_no_caller_comes() {
    let rig = rig();
    let (rx, job_gate, configuration) = rig.host_role_free();
    let job_reader = rig.host.shared.lock().role.reader_in_job().unwrap();
    let gate1 = rig.gate(1);
    let first = rig.call(1);
    assert_eq!(next_state(&rx).0, State::Held(Holder::Caller(first.0)));
    set_handover(&rig.host, HANDOVER);
    gate1.send(()).unwrap();
    assert_eq!(result(first), Ok(Reply::Empty));
    let (State::Free { since }, _) = next_state(&rx) else {
        panic!("the caller let go of the role");
    };
    let (taken, at) = next_state(&rx);
    assert!(
        matches!(taken, State::Held(Holder::Reader(r)) if r != job_reader),
        "{taken:?}"
    );
    let at = at.expect("a reader thread takes the role at a time");
    assert!(
        at.duration_since(since) >= HANDOVER,
        "taken {:?} after the let-go",
        at.duration_since(since)
    );
    job_gate.send(()).unwrap();
    assert_eq!(
        result(configuration),
        Ok(Reply::Configuration(b"{}".to_vec()))
    );
}

// Row "free | a thread blocks in a stream read": a reader thread takes the free role at once
// (here the handover time is long: nothing else would make it).
#[test]
fn a_thread_blocking_in_a_stream_read_has_a_reader_thread_take_the_role_at_once() {
    let rig = rig();
    let (rx, job_gate, configuration) = rig.host_role_free();
    let (read, s_p) = blocked_read(&rig);
    assert!(matches!(next_state(&rx).0, State::Held(Holder::Reader(_))));
    (&s_p).write_all(b"ping").unwrap();
    assert_eq!(within(EVIDENCE, move || read.join().unwrap()), *b"ping");
    still(&rx);
    job_gate.send(()).unwrap();
    assert_eq!(
        result(configuration),
        Ok(Reply::Configuration(b"{}".to_vec()))
    );
}

// Row "held by a reader thread | a sink callback hands it a job, the other reader thread is not
// in a job": while one reader thread runs a handler, the other one, which decodes the next
// request, is not handed it: the handler runs on a worker.
// covers: STREAM-14, RPC-5
#[test]
fn no_job_is_handed_to_a_reader_thread_while_the_other_runs_one() {
    let rig = rig();
    let first_gate = rig.gate(1);
    let second_gate = rig.gate(2);
    let first = rig.call(1);
    assert_eq!(rig.entered(1), "rpcplugin-plugin-reader");
    let second = rig.call(2);
    assert_eq!(rig.entered(2), "rpcplugin-rpc-call");
    second_gate.send(()).unwrap();
    first_gate.send(()).unwrap();
    assert_eq!(result(first), Ok(Reply::Empty));
    assert_eq!(result(second), Ok(Reply::Empty));
}
