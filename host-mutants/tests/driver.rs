//! `rpcplugin-mutant-host driver --mutant NAME` end to end: each deliberately broken host
//! misbehaves as its name says, spoken to through the host driver contract with the test client
//! of `rpcplugin_test_support::host_driver` (which checks every line either driver writes).
//! Where the misbehaviour is a difference, the conforming reference host
//! (`rpcplugin-reference-host driver`) is shown doing the right thing first.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpcplugin_test_support::bins::reference_host;
use rpcplugin_test_support::host_driver::{ok, reference, Bundle, Driver, ANNOUNCE, WAIT};
use rpcplugin_test_support::procs::{kill9, process_state};
use serde_json::json;

const MUTANT_HOST: &str = env!("CARGO_BIN_EXE_rpcplugin-mutant-host");
const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// The conforming reference host's driver, `rpcplugin-reference-host driver`.
fn conforming() -> Driver {
    Driver::spawn(&reference_host(), &[])
}

/// The broken host `name`, `rpcplugin-mutant-host driver --mutant NAME`; its `hello` names it.
fn mutant(name: &str) -> Driver {
    let mut d = Driver::spawn(Path::new(MUTANT_HOST), &["--mutant", name]);
    let r = d.call("hello", json!({}));
    assert!(r["host"].as_str().unwrap().contains(name), "{r}");
    d
}

#[test]
fn mutant_never_restarts() {
    let b = Bundle::new("m-never-restarts", &reference(&[]));
    let mut d = mutant("never-restarts");
    let pid = d.start("p", &b, json!({}));
    kill9(pid);
    d.event("crashed");
    d.assert_none_for(3 * SEC, "a relaunch", |v| v["event"] == json!("restarted"));
    assert_eq!(b.pids().len(), 1);
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("backoff")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_restarts_without_delay() {
    let b = Bundle::new("m-restarts-without-delay", &reference(&[]));
    let mut d = mutant("restarts-without-delay");
    let pid = d.start("p", &b, json!({}));
    kill9(pid);
    let crashed = d.event("crashed");
    let seen = Instant::now();
    assert_eq!(crashed["delay_ms"], json!(0));
    b.wait_launches(2);
    let relaunched = seen.elapsed();
    assert!(relaunched < 700 * MS, "relaunched after {relaunched:?}");
    d.event("restarted");
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_ignores_start_timeout() {
    let b = Bundle::new("m-ignores-start-timeout", "exec sleep 30\n");
    let mut d = mutant("ignores-start-timeout");
    let start = d.send(
        "start",
        json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 200, "stop_grace_ms": 200}),
    );
    d.assert_none_for(1500 * MS, "the start ended", |v| v["id"] == json!(start));
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("starting")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    assert_eq!(d.reply(start)["ok"], json!(false));
    d.finish();
}

#[test]
fn mutant_leaves_orphans() {
    let silent = Bundle::new("m-leaves-orphans-silent", "exec sleep 30\n");
    let b = Bundle::new("m-leaves-orphans", &reference(&[]));
    let mut d = mutant("leaves-orphans");
    let r = d.call(
        "start",
        json!({"plugin": "s", "bundle": silent.path(), "start_timeout_ms": 200}),
    );
    assert_eq!(r["ok"], json!(false));
    let orphan = silent.pids()[0];
    std::thread::sleep(300 * MS);
    assert!(
        matches!(process_state(orphan), Some(s) if s != 'Z'),
        "the plugin of the failed start is not running: {:?}",
        process_state(orphan)
    );

    let pid = d.start("p", &b, json!({}));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["exit"], json!(null), "{r}");
    // The plugin exits on end-of-file, and nobody reaps it.
    let deadline = Instant::now() + WAIT;
    while process_state(pid) != Some('Z') {
        assert!(
            Instant::now() < deadline,
            "{pid} is {:?}",
            process_state(pid)
        );
        std::thread::sleep(20 * MS);
    }
    d.finish();
}

#[test]
fn mutant_hangs_on_stream_0() {
    // The reference plugin, and a second announcement sent on its output 0.3 s after the start,
    // by a background shell: a frame on stream 0 after the handshake.
    let b = Bundle::new(
        "m-hangs-on-stream-0",
        &format!(
            "(exec 3<&-; sleep 0.3; printf '\\000\\004\\000\\004' >&4; touch \"$here/sent\") &\n{}",
            reference(&[])
        ),
    );
    let sent = b.dir.join("sent");
    let wait_sent = || {
        let deadline = Instant::now() + WAIT;
        while !sent.exists() {
            assert!(Instant::now() < deadline, "the stream-0 frame was not sent");
            std::thread::sleep(10 * MS);
        }
        std::thread::sleep(100 * MS);
        let _ = std::fs::remove_file(&sent);
    };
    let mut good = conforming();
    good.start("p", &b, json!({}));
    wait_sent();
    assert!(ok(
        &good.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("hangs-on-stream-0");
    d.start("p", &b, json!({"stop_grace_ms": 500}));
    wait_sent();
    let activate = d.send("activate", json!({"plugin": "p", "config": "{}"}));
    d.assert_none_for(2 * SEC, "an answer", |v| v["id"] == json!(activate));
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    assert_eq!(d.reply(activate)["ok"], json!(false));
    d.finish();
}

#[test]
fn mutant_accepts_bad_announcement() {
    let control = Bundle::new(
        "m-bad-control-byte",
        "printf '\\000\\004\\001\\004' >&4\nexec sleep 30\n",
    );
    let odd = Bundle::new(
        "m-odd-hooks-id",
        "printf '\\000\\004\\000\\002' >&4\nexec sleep 30\n",
    );
    let zero = Bundle::new(
        "m-zero-hooks-id",
        "printf '\\000\\004\\000\\000' >&4\nexec sleep 30\n",
    );
    let mut good = conforming();
    let r = good.call(
        "start",
        json!({"plugin": "c", "bundle": control.path(), "start_timeout_ms": 5000}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    good.finish();

    let mut d = mutant("accepts-bad-announcement");
    for (name, bundle) in [("c", &control), ("o", &odd), ("z", &zero)] {
        d.start(name, bundle, json!({"stop_grace_ms": 200}));
        assert!(ok(&d.call("stop", json!({"plugin": name}))));
    }
    d.finish();
}

#[test]
fn mutant_no_reactivation() {
    let b = Bundle::new("m-no-reactivation", &reference(&[]));
    let mut d = mutant("no-reactivation");
    let pid = d.start("p", &b, json!({}));
    assert!(ok(&d.call(
        "activate",
        json!({"plugin": "p", "config": "{\"x\": 1}"})
    )));
    kill9(pid);
    let restarted = d.event("restarted");
    assert_eq!(restarted["reactivated"], json!(false));
    std::thread::sleep(300 * MS);
    d.wait_stderr("activated with configuration", 1);
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_kills_without_deactivate() {
    let b = Bundle::new("m-kills-without-deactivate", &reference(&[]));
    let mut d = mutant("kills-without-deactivate");
    d.start("p", &b, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    assert!(!d.stderr().contains("goodbye"));
    assert!(!d.stderr().contains("the host closed the connection"));
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_even_api_stream() {
    let b = Bundle::new("m-even-api-stream", &reference(&[]));
    let mut d = mutant("even-api-stream");
    d.start("p", &b, json!({}));
    let r = d.call("activate", json!({"plugin": "p", "config": "{}"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("1000002"), "{r}");
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_no_stop_grace() {
    // Announces, and exits by itself 2 s after its start: within the grace period it is given.
    let b = Bundle::new("m-no-stop-grace", &format!("{ANNOUNCE}\nexec sleep 2\n"));
    let mut d = mutant("no-stop-grace");
    d.start("p", &b, json!({"stop_grace_ms": 5000}));
    let t = Instant::now();
    let r = d.call("stop", json!({"plugin": "p"}));
    assert!(t.elapsed() < SEC, "{:?}", t.elapsed());
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    d.finish();
}

#[test]
fn mutant_leaks_descriptor() {
    // Lists its descriptors before it announces.
    let b = Bundle::new(
        "m-leaks-descriptor",
        &format!("ls -l /proc/$$/fd > \"$here/fds\"\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let fds = || std::fs::read_to_string(b.dir.join("fds")).unwrap();
    let mut good = conforming();
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(!fds().contains("plugin.json"), "{}", fds());
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("leaks-descriptor");
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(fds().contains("plugin.json"), "{}", fds());
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_inherits_stdin() {
    let b = Bundle::new(
        "m-inherits-stdin",
        &format!("readlink /proc/$$/fd/0 > \"$here/stdin\"\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let stdin = || std::fs::read_to_string(b.dir.join("stdin")).unwrap();
    let mut good = conforming();
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    assert_eq!(stdin().trim(), "/dev/null");
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    // The driver's standard input is the test's pipe of commands.
    let mut d = mutant("inherits-stdin");
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    assert!(stdin().starts_with("pipe:"), "{}", stdin());
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
}

#[test]
fn mutant_short_start_timeout() {
    let b = Bundle::new(
        "m-short-start-timeout",
        &format!("sleep 0.6\n{ANNOUNCE}\nexec sleep 30\n"),
    );
    let mut d = mutant("short-start-timeout");
    let t = Instant::now();
    let r = d.call(
        "start",
        json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 5000}),
    );
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(r["error"].as_str().unwrap().contains("250ms"), "{r}");
    assert!(t.elapsed() < 3 * SEC, "{:?}", t.elapsed());
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_waits_out_early_exit() {
    // Exits at once, without announcing.
    let b = Bundle::new("m-waits-out-early-exit", "exit 0\n");
    let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 2000});
    let mut good = conforming();
    let t = Instant::now();
    assert_eq!(good.call("start", start.clone())["ok"], json!(false));
    assert!(t.elapsed() < 1500 * MS, "{:?}", t.elapsed());
    good.finish();

    let mut d = mutant("waits-out-early-exit");
    let t = Instant::now();
    let r = d.call("start", start);
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(t.elapsed() >= 1900 * MS, "{:?}", t.elapsed());
    assert!(r["error"].as_str().unwrap().contains("timed out"), "{r}");
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_forgets_failed_start() {
    let b = Bundle::new("m-forgets-failed-start", "exit 1\n");
    let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 2000});
    let mut good = conforming();
    assert_eq!(good.call("start", start.clone())["ok"], json!(false));
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    let mut d = mutant("forgets-failed-start");
    assert_eq!(d.call("start", start)["ok"], json!(false));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("no plugin named p"),
        "{r}"
    );
    d.finish();
}

#[test]
fn mutant_forgets_stopped_plugin() {
    let b = Bundle::new("m-forgets-stopped-plugin", &reference(&[]));
    let mut d = mutant("forgets-stopped-plugin");
    d.start("p", &b, json!({}));
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    let r = d.call("stop", json!({"plugin": "p"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("no plugin named p"),
        "{r}"
    );
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_guesses_executable() {
    // The bundle's only executable file is `backend`.
    let b = Bundle::new("m-guesses-executable", &reference(&[]));
    let manifest = b.dir.join("plugin.json");
    for bad in [None, Some("[1, 2, 3]"), Some(r#"{"id": "x"}"#)] {
        match bad {
            None => std::fs::remove_file(&manifest).unwrap(),
            Some(text) => std::fs::write(&manifest, text).unwrap(),
        }
        let start = json!({"plugin": "p", "bundle": b.path(), "start_timeout_ms": 10_000});
        let mut good = conforming();
        assert_eq!(
            good.call("start", start.clone())["ok"],
            json!(false),
            "{bad:?}"
        );
        good.finish();
        let launches = b.pids().len();

        let mut d = mutant("guesses-executable");
        d.start("p", &b, json!({}));
        assert_eq!(b.pids().len(), launches + 1, "{bad:?}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
    b.assert_no_process_left();
}

#[test]
fn mutant_escapes_bundle() {
    // The bundle `outer` names the executable of the bundle `inner`.
    let inner = Bundle::new("m-escapes-bundle-inner", &reference(&[]));
    let outer = Bundle::new("m-escapes-bundle-outer", "exit 1\n");
    let absolute = inner.dir.join("backend").display().to_string();
    for executable in [
        absolute.as_str(),
        "../driver-m-escapes-bundle-inner/backend",
    ] {
        std::fs::write(
            outer.dir.join("plugin.json"),
            json!({"id": "x", "backend": {"executable": executable}}).to_string(),
        )
        .unwrap();
        let start = json!({"plugin": "p", "bundle": outer.path(), "start_timeout_ms": 10_000});
        let mut good = conforming();
        assert_eq!(
            good.call("start", start)["ok"],
            json!(false),
            "{executable}"
        );
        good.finish();
        let launches = inner.pids().len();

        let mut d = mutant("escapes-bundle");
        d.start("p", &outer, json!({}));
        assert_eq!(inner.pids().len(), launches + 1, "{executable}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
    assert!(outer.pids().is_empty());
    inner.assert_no_process_left();
}

/// The resident memory of process `pid`, in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

#[test]
fn mutant_unbounded_buffering() {
    // Announces, then writes 48 MiB on stream 4, which the host never connected and nobody
    // reads: 48 frames of 1 MiB (stream 4, length 1 048 576, as zigzag varints).
    const MIB: u64 = 1024;
    let b = Bundle::new(
        "m-unbounded-buffering",
        &format!(
            "{ANNOUNCE}\ni=0\nwhile [ $i -lt 48 ]; do printf '\\010\\200\\200\\200\\001'; \
             head -c 1048576 /dev/zero; i=$((i + 1)); done >&4\ntouch \"$here/flooded\"\n\
             exec sleep 30\n"
        ),
    );
    let flooded = b.dir.join("flooded");
    let wait_flooded = || {
        let deadline = Instant::now() + WAIT;
        while !flooded.exists() {
            assert!(Instant::now() < deadline, "the flood was not written");
            std::thread::sleep(10 * MS);
        }
        let _ = std::fs::remove_file(&flooded);
    };
    // The conforming host discards the data (STREAM-5): its memory hardly grows.
    let mut good = conforming();
    good.call("hello", json!({}));
    let before = rss_kib(good.child.id());
    good.start("p", &b, json!({"stop_grace_ms": 200}));
    wait_flooded();
    std::thread::sleep(200 * MS);
    let after = rss_kib(good.child.id());
    assert!(
        after < before + 16 * MIB,
        "{before} KiB before, {after} KiB after"
    );
    assert!(ok(&good.call("stop", json!({"plugin": "p"}))));
    good.finish();

    // The broken host connects stream 4 and buffers all of it.
    let mut d = mutant("unbounded-buffering");
    let before = rss_kib(d.child.id());
    d.start("p", &b, json!({"stop_grace_ms": 200}));
    wait_flooded();
    let deadline = Instant::now() + WAIT;
    loop {
        let after = rss_kib(d.child.id());
        if after >= before + 40 * MIB {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{before} KiB before, {after} KiB after"
        );
        std::thread::sleep(50 * MS);
    }
    assert_eq!(
        d.call("status", json!({"plugin": "p"}))["state"],
        json!("running")
    );
    assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
    d.finish();
    b.assert_no_process_left();
}

#[test]
fn mutant_clips_configuration() {
    let b = Bundle::new("m-clips-configuration", &reference(&[]));
    // A JSON string of 5 MiB: its reply cannot fit one gob message (GOB-16).
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    // The reference host answers LoadPluginConfiguration with an error response, which the
    // reference plugin's activation reports; the mutant's cut text is not JSON.
    for (mut d, expected) in [
        (conforming(), "cannot be sent"),
        (mutant("clips-configuration"), "not valid JSON"),
    ] {
        d.start("p", &b, json!({}));
        let r = d.call("activate", json!({"plugin": "p", "config": big}));
        assert!(r["error"].as_str().unwrap().contains(expected), "{r}");
        assert!(ok(&d.call("stop", json!({"plugin": "p"}))));
        d.finish();
    }
}

// `driver --help` lists every mutant as test only; an unknown mutant is refused with status 2
// and the list; `--mutant` is required.
#[test]
fn help_and_unknown_mutants() {
    let out = Command::new(MUTANT_HOST)
        .args(["driver", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for text in [
        "rpcplugin-host-driver/1",
        "TEST ONLY",
        "never-restarts",
        "no-stop-grace",
        "LIFE-8, LIFE-12",
    ] {
        assert!(help.contains(text), "{text:?} not in --help:\n{help}");
    }
    for args in [&["driver", "--mutant", "nope"][..], &["driver"]] {
        let out = Command::new(MUTANT_HOST)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains("--mutant"), "{args:?}: {err}");
        if args.len() == 3 {
            assert!(
                err.contains("never-restarts") && err.contains("even-api-stream"),
                "{err}"
            );
        }
    }
}

// `list` prints every mutant once, as a table and as the JSON list the harness reads (schema
// rpcplugin-host-mutants/v1: name, breaks, description, in the order of the table).
#[test]
fn list_prints_every_mutant() {
    let human = Command::new(MUTANT_HOST).arg("list").output().unwrap();
    assert!(human.status.success());
    let human = String::from_utf8(human.stdout).unwrap();
    let json = Command::new(MUTANT_HOST)
        .args(["list", "--format", "json"])
        .output()
        .unwrap();
    assert!(json.status.success());
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(list["schema"], "rpcplugin-host-mutants/v1");
    let mutants = list["mutants"].as_array().unwrap();
    assert_eq!(mutants.len(), rpcplugin_host_mutants::Mutant::ALL.len());
    assert_eq!(human.lines().count(), mutants.len());
    let mut names = std::collections::HashSet::new();
    for (m, line) in mutants.iter().zip(human.lines()) {
        let name = m["name"].as_str().unwrap();
        assert!(names.insert(name), "{name} twice");
        assert!(line.trim_start().starts_with(name), "{line}");
        assert!(!m["breaks"].as_array().unwrap().is_empty(), "{m}");
        assert!(!m["description"].as_str().unwrap().is_empty(), "{m}");
        assert!(line.ends_with(m["description"].as_str().unwrap()), "{line}");
    }
}
