//! A reader thread on standby that sees the end of the connection just as its quiet period
//! runs out must still exit: the connection's drop waits for it (runtime/src/connection.rs,
//! `read_loop`). The end is timed around `QUIET` (100 ms) after a caller let go of the read
//! role, when the standby reader stops checking on a timer; many connections at once, each
//! ending at another offset, hit the window on most runs.

use std::os::fd::OwnedFd;
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use rpcplugin_runtime::codec::rpc::{Call, Reply, HOOKS_SERVICE};
use rpcplugin_runtime::codec::stream::{Limits, Role};
use rpcplugin_runtime::connection::Connection;
use rpcplugin_runtime::rpc::{serve, RpcClient};

/// Connections tried at once, and one after the other on each thread.
const THREADS: u64 = 8;
const ROUNDS: u64 = 60;

/// Ends one host connection `delay` after the reply of a call let go of the read role; whether
/// dropping it then returned within 5 s.
fn ends_cleanly(delay: Duration) -> bool {
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
    let hooks_p = plugin.announce().unwrap();
    let hooks_h = host.wait_for_handshake(Duration::from_secs(5)).unwrap();
    let _server = serve(hooks_p, &[HOOKS_SERVICE], Arc::new(|_| Ok(Reply::Empty))).unwrap();
    let hooks = RpcClient::new(hooks_h).unwrap();
    // The caller reads the reply itself and lets go of the read role: a reader thread takes
    // it, the other one stands by on a timer for QUIET.
    assert_eq!(hooks.call(Call::OnDeactivate), Ok(Reply::Empty));
    let until = Instant::now() + delay;
    thread::sleep(delay.saturating_sub(Duration::from_millis(3)));
    while Instant::now() < until {}
    host.close();
    drop(hooks);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        drop(host);
        let _ = tx.send(());
    });
    let ok = rx.recv_timeout(Duration::from_secs(5)).is_ok();
    // The plugin's side saw the end too, and may hang the same way: not waited for here.
    thread::spawn(move || drop(plugin));
    ok
}

// covers: TRANS-8
#[test]
fn a_standby_reader_exits_when_the_end_comes_as_its_quiet_period_runs_out() {
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            thread::spawn(move || {
                let mut hung = Vec::new();
                for r in 0..ROUNDS {
                    // 99.0 ms to 102.0 ms, spread over the threads and rounds.
                    let offset = (r * THREADS + t) * 3_000 / (THREADS * ROUNDS);
                    let delay = Duration::from_micros(99_000 + offset);
                    if !ends_cleanly(delay) {
                        hung.push(delay);
                    }
                }
                hung
            })
        })
        .collect();
    let hung: Vec<Duration> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(
        hung.is_empty(),
        "dropping a connection hung (a reader thread never exited) when it ended {hung:?} \
         after the last let-go of the read role"
    );
}
