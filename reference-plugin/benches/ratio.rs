//! The round-trip target as a ratio measured under the same noise
//! (`cargo bench -p rpcplugin-reference-plugin --bench ratio`).
//!
//! On a shared machine the time of a round trip drifts by more than the difference being
//! measured, so timing the two sides one after the other (as the `process` bench's criterion
//! groups do) can compare a quiet minute with a busy one. Here rounds alternate: in each round,
//! `BATCH` raw ping-pongs through `sh -c 'exec cat <&3 >&4'`, then `BATCH` `OnDeactivate` calls
//! to the reference plugin binary, both launched the same way. Each round gives a ratio; the
//! bench prints the median ratio and the medians of both times. Target: at most 1.5.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use rpcplugin_runtime::codec::rpc::{Call, Reply};
use rpcplugin_runtime::codec::stream::{Limits, Role};
use rpcplugin_runtime::connection::Connection;
use rpcplugin_runtime::process::{launch, LaunchOptions, Output};
use rpcplugin_runtime::rpc::RpcClient;

const BATCH: u32 = 500;
const ROUNDS: usize = 41;

/// The sum over every thread of process `pid` of what `field` reads from the thread's `file`
/// in /proc (Linux; 0 elsewhere).
fn per_thread(pid: u32, file: &str, field: impl Fn(&str) -> Option<u64>) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join(file)).ok())
        .filter_map(|s| field(&s))
        .sum()
}

/// Voluntary context switches of every thread of process `pid` so far.
fn switches(pid: u32) -> u64 {
    per_thread(pid, "status", |s| {
        s.lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
            .trim()
            .parse()
            .ok()
    })
}

/// CPU time (ns) of every thread of process `pid` so far.
fn cpu(pid: u32) -> u64 {
    per_thread(pid, "schedstat", |s| {
        s.split_whitespace().next()?.parse().ok()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    // `cargo test --benches` runs bench targets with `--bench` absent: stay quick then.
    let rounds = if std::env::args().any(|a| a == "--bench") {
        ROUNDS
    } else {
        3
    };
    let mut echo = LaunchOptions::new("/bin/sh");
    echo.args = vec!["-c".into(), "exec cat <&3 >&4".into()];
    let raw = launch(&echo).expect("launch sh");
    let mut to = std::fs::File::from(raw.writer);
    let mut from = std::fs::File::from(raw.reader);

    let mut plugin = LaunchOptions::new(env!("CARGO_BIN_EXE_rpcplugin-reference-plugin"));
    plugin.stderr = Output::Null;
    let launched = launch(&plugin).expect("launch the reference plugin");
    let conn = Connection::new(
        Role::Host,
        launched.reader,
        launched.writer,
        Limits::default(),
    )
    .expect("a connection");
    let hooks = RpcClient::new(
        conn.wait_for_handshake(Duration::from_secs(5))
            .expect("the plugin announces"),
    )
    .expect("a client");

    let mut byte = [0u8; 1];
    let mut ping = || {
        to.write_all(b"x").unwrap();
        from.read_exact(&mut byte).unwrap();
    };
    let call = || assert_eq!(hooks.call(Call::OnDeactivate), Ok(Reply::Empty));
    // Warm up both.
    for _ in 0..BATCH {
        ping();
        call();
    }
    let (mut ratios, mut raws, mut calls) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        for _ in 0..BATCH {
            ping();
        }
        let raw = t.elapsed().as_secs_f64() / f64::from(BATCH);
        let t = Instant::now();
        for _ in 0..BATCH {
            call();
        }
        let hook = t.elapsed().as_secs_f64() / f64::from(BATCH);
        ratios.push(hook / raw);
        raws.push(raw * 1e6);
        calls.push(hook * 1e6);
    }
    // Thread switches per round trip, on each side: the structural cost, which noise does not
    // change (a raw ping-pong costs one on each side).
    let me = std::process::id();
    let (host0, plugin0) = (switches(me), switches(launched.process.pid()));
    let (hc0, pc0) = (cpu(me), cpu(launched.process.pid()));
    for _ in 0..BATCH {
        call();
    }
    let (host1, plugin1) = (switches(me), switches(launched.process.pid()));
    let (hc1, pc1) = (cpu(me), cpu(launched.process.pid()));
    let (rc0, cc0) = (cpu(me), cpu(raw.process.pid()));
    let (host0r, cat0) = (switches(me), switches(raw.process.pid()));
    for _ in 0..BATCH {
        ping();
    }
    let (host1r, cat1) = (switches(me), switches(raw.process.pid()));
    let (rc1, cc1) = (cpu(me), cpu(raw.process.pid()));
    let per = |a: u64, b: u64| (b - a) as f64 / f64::from(BATCH);
    let us = |a: u64, b: u64| (b - a) as f64 / 1e3 / f64::from(BATCH);
    println!(
        "CPU time per round trip (all threads): hooks call {:.1} µs in the host, {:.1} µs in \
         the plugin; raw ping-pong {:.1} µs in the host, {:.1} µs in cat",
        us(hc0, hc1),
        us(pc0, pc1),
        us(rc0, rc1),
        us(cc0, cc1)
    );
    println!(
        "voluntary thread switches per round trip: hooks call {:.2} in the host, {:.2} in the \
         plugin; raw ping-pong {:.2} in the host, {:.2} in cat",
        per(host0, host1),
        per(plugin0, plugin1),
        per(host0r, host1r),
        per(cat0, cat1)
    );
    println!(
        "round trip over {rounds} alternating rounds of {BATCH}: raw ping-pong median {:.1} µs, \
         hooks call median {:.1} µs, median ratio {:.2} (target: at most 1.5)",
        median(raws),
        median(calls),
        median(ratios)
    );
    drop(hooks);
    drop(conn);
    drop((to, from));
    let mut process = launched.process;
    let _ = process.wait_timeout(Duration::from_secs(5));
    let mut process = raw.process;
    let _ = process.wait_timeout(Duration::from_secs(5));
}
