//! `rpcplugin-reference-host driver` end to end: the host driver contract
//! `rpcplugin-host-driver/1` of `spec/07-conformance.md` section 7.2 (DRV-1 to DRV-12), spoken
//! as JSON lines to the real binary, with the reference plugin and small shell plugins.
//!
//! The test client is `rpcplugin_test_support::host_driver`: every line the driver writes is
//! checked there (one UTF-8 JSON object ending with a line feed, valid against its schema in
//! `spec/schemas/host-driver/`, exactly one reply per command), and so are the commands the
//! tests send. The deliberately broken hosts, and their tests, are `rpcplugin-host-mutants`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rpcplugin_test_support::host_driver::{
    check, ok, reference, schemas, scratch_dir, validate, Bundle, Driver, ANNOUNCE, WAIT,
};
use rpcplugin_test_support::procs::kill9;
use serde_json::json;

const DRIVER: &str = env!("CARGO_BIN_EXE_rpcplugin-reference-host");
const SEC: Duration = Duration::from_secs(1);
const MS: Duration = Duration::from_millis(1);

/// The reference host's driver, `rpcplugin-reference-host driver ARGS...`.
fn driver(args: &[&str]) -> Driver {
    Driver::spawn(Path::new(DRIVER), args)
}

// The validator itself: it accepts the spec's complete exchange and rejects each kind of
// deviation the driver could make.
#[test]
fn the_validator_enforces_the_schema_subset() {
    check(
        "hello.reply",
        &json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h 1","events":true,"honours":["stop_grace_ms"]}),
    );
    check(
        "hello.reply",
        &json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h 1","events":true,"honours":["stop_grace_ms"],"defaults":{"start_timeout_ms":3000}}),
    );
    check(
        "crashed.event",
        &json!({"event":"crashed","plugin":"p1","pid":4712,"exit":{"code":3},"reason":"the process exited","failures":1,"delay_ms":1000}),
    );
    check(
        "stop.reply",
        &json!({"id":7,"ok":true,"exit":null,"killed":false}),
    );
    check(
        "activate.command",
        &json!({"id":3,"cmd":"activate","plugin":"p","config":"[1,{\"a\":null}]"}),
    );
    let bad = [
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"status":0},"killed":false}),
        ),
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"code":256},"killed":false}),
        ),
        (
            "stop.reply",
            json!({"id":7,"ok":true,"exit":{"code":0,"signal":"SIGKILL"},"killed":false}),
        ),
        ("stop.reply", json!({"id":7,"ok":true,"exit":null})),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"Running","pid":null}),
        ),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"running","pid":0}),
        ),
        (
            "status.reply",
            json!({"id":1,"ok":true,"state":"running","pid":"12"}),
        ),
        ("error.reply", json!({"id":1,"ok":false,"error":""})),
        ("error.reply", json!({"id":0,"ok":false,"error":"x"})),
        ("error.reply", json!({"id":1,"ok":true,"error":"x"})),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":["stop_grace_ms","stop_grace_ms"]}),
        ),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":["spawn_timeout_ms"]}),
        ),
        (
            "hello.reply",
            json!({"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"h","events":true,"honours":[],"defaults":{"start_timeout_ms":0}}),
        ),
        (
            "activate.command",
            json!({"id":3,"cmd":"activate","plugin":"p","config":{"a":1}}),
        ),
        (
            "started.event",
            json!({"event":"started","plugin":"p","pid":1,"extra":1}),
        ),
        ("start.reply", json!({"id":1.5,"ok":true,"pid":1})),
    ];
    for (schema, v) in bad {
        assert!(
            validate(&schemas()[schema], &v, "$").is_err(),
            "{v} passed {schema}.json"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The contract.

// hello describes the driver: protocol, host and version, events, and the optional start
// arguments it passes on; every message (this test's and all the others') is one JSON object
// on one line, valid against its schema.
// covers: DRV-4
#[test]
fn hello_describes_the_driver() {
    let mut d = driver(&[]);
    let r = d.call("hello", json!({}));
    assert_eq!(r["protocol"], json!("rpcplugin-host-driver/1"));
    let host = r["host"].as_str().unwrap();
    assert!(host.starts_with("rpcplugin-reference-host "), "{host}");
    assert!(!host.contains("mutant"), "{host}");
    assert_eq!(r["events"], json!(true));
    assert_eq!(
        r["honours"],
        json!([
            "start_timeout_ms",
            "stop_grace_ms",
            "deactivate_timeout_ms",
            "restart_delay_max_ms",
            "stable_period_ms"
        ])
    );
    let (status, _) = d.finish();
    assert!(status.success());
    // A host whose backoff cannot be configured leaves the backoff settings out.
    let mut d = driver(&["--fixed-backoff"]);
    let r = d.call("hello", json!({}));
    assert_eq!(
        r["honours"],
        json!(["start_timeout_ms", "stop_grace_ms", "deactivate_timeout_ms"])
    );
    let (status, _) = d.finish();
    assert!(status.success());
}

// Standard output carries only messages: a plugin that writes to its standard output is heard
// on the driver's standard error, and the driver's logs go there too.
// covers: DRV-1
#[test]
fn standard_output_carries_only_messages() {
    let b = Bundle::new(
        "noisy",
        &format!(
            "echo 'noise from the plugin on stdout'\necho 'noise on stderr' >&2\n{}",
            reference(&[])
        ),
    );
    let mut d = driver(&[]);
    d.start("noisy", &b, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "noisy", "config": "{}"}))
    ));
    assert!(ok(&d.call("stop", json!({"plugin": "noisy"}))));
    let (status, _) = d.finish();
    assert!(status.success());
    // Every line was checked by `pump`: JSON objects only.
    assert!(d.seen().iter().all(|m| !m.contains("noise")));
    let stderr = d.stderr();
    assert!(
        stderr.contains("noise from the plugin on stdout"),
        "{stderr}"
    );
    assert!(stderr.contains("noise on stderr"), "{stderr}");
    assert!(stderr.contains("noisy: started"), "{stderr}");
    b.assert_no_process_left();
}

// The whole round trip: start (the started event before the reply), activate with a
// configuration that reaches the plugin as sent, deactivate, activate again, stop (the stopped
// event before the reply, the plugin deactivated, exiting with status 0, not killed).
// covers: DRV-5, DRV-7, DRV-8, DRV-10
#[test]
fn start_activate_deactivate_stop_round_trip() {
    let b = Bundle::new("round-trip", &reference(&[]));
    let mut d = driver(&[]);
    let id = d.send(
        "start",
        json!({"plugin": "p1", "bundle": b.path(), "start_timeout_ms": 10000, "stop_grace_ms": 5000}),
    );
    let reply = d.reply(id);
    let pid = reply["pid"].as_u64().unwrap();
    assert_eq!(b.pids(), vec![pid as u32]);
    let started = d.position(|v| v["event"] == json!("started")).unwrap();
    let replied = d.position(|v| v["id"] == json!(id)).unwrap();
    assert!(started < replied, "{:#?}", d.seen());
    assert_eq!(
        d.event("started"),
        json!({"event": "started", "plugin": "p1", "pid": pid})
    );

    let config = r#"{"greeting":"hello","n":[1,2.5,null],"z":{"nested":true}}"#;
    let line = format!(
        r#"{{"id":100,"cmd":"activate","plugin":"p1","config":{}}}"#,
        json!(config)
    );
    d.commands.insert(100, "activate".into());
    d.write_line(line.as_bytes());
    assert_eq!(d.reply(100), json!({"id": 100, "ok": true}));
    d.wait_stderr(&format!("activated with configuration {config}"), 1);
    assert_eq!(
        d.call("status", json!({"plugin": "p1"})),
        json!({"id": d.next_id - 1, "ok": true, "state": "running", "pid": pid})
    );
    assert!(ok(&d.call("deactivate", json!({"plugin": "p1"}))));
    d.wait_stderr("goodbye", 1);
    assert!(ok(
        &d.call("activate", json!({"plugin": "p1", "config": "null"}))
    ));

    let id = d.send("stop", json!({"plugin": "p1"}));
    let reply = d.reply(id);
    assert_eq!(reply["exit"], json!({"code": 0}), "{reply}");
    assert_eq!(reply["killed"], json!(false));
    let stopped = d.position(|v| v["event"] == json!("stopped")).unwrap();
    let replied = d.position(|v| v["id"] == json!(id)).unwrap();
    assert!(stopped < replied, "{:#?}", d.seen());
    assert_eq!(
        d.event("stopped"),
        json!({"event": "stopped", "plugin": "p1", "exit": {"code": 0}, "killed": false})
    );
    d.wait_stderr("goodbye", 2);
    b.assert_no_process_left();

    // The hook calls of a stopped plugin fail at once (LIFE-14), as do those the plugin fails.
    let r = d.call("activate", json!({"plugin": "p1", "config": "{}"}));
    assert!(r["error"].as_str().unwrap().contains("not running"), "{r}");
    let r = d.call("deactivate", json!({"plugin": "p1"}));
    assert!(r["error"].as_str().unwrap().contains("not running"), "{r}");
    let failing = Bundle::new(
        "failing",
        &reference(&[("RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE", "1")]),
    );
    d.start("p2", &failing, json!({}));
    let r = d.call("activate", json!({"plugin": "p2", "config": "{}"}));
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("activation fails on purpose"),
        "{r}"
    );
    // The same name can be started again once stopped.
    let pid2 = d.start("p1", &b, json!({}));
    assert_ne!(pid2 as u64, pid);
    let (status, _) = d.finish();
    assert!(status.success());
    b.assert_no_process_left();
    failing.assert_no_process_left();
}

// stop_grace_ms and deactivate_timeout_ms are the supervisor's: a plugin that answers its
// activation and then nothing, and never exits, is stopped after the deactivation timeout and
// the grace period it was given (300 ms each), not after the defaults (5 s each).
// covers: DRV-6
#[test]
fn start_passes_the_stop_grace_and_deactivation_timeout_on() {
    // Announces, answers the first hook call with the recorded successful OnActivate response
    // (spec/05-rpc.md section 5.6.2), then nothing more, and never exits.
    let activate_only = format!(
        "trap '' TERM\n{ANNOUNCE}\ndd bs=1 count=1 <&3 >/dev/null 2>&1\nprintf '{}' >&4\nexec sleep 60\n",
        r"\004\312\001\072\377\203\003\001\001\010\122\145\163\160\157\156\163\145\001\377\204\000\001\003\001\015\123\145\162\166\151\143\145\115\145\164\150\157\144\001\014\000\001\003\123\145\161\001\006\000\001\005\105\162\162\157\162\001\014\000\000\000\032\377\204\001\025\114\157\143\141\154\110\157\157\153\163\056\117\156\101\143\164\151\166\141\164\145\000\012\377\205\003\001\002\377\206\000\000\000\003\377\206\000"
    );
    let b = Bundle::new("activate-only", &activate_only);
    let mut d = driver(&[]);
    d.start(
        "p",
        &b,
        json!({"stop_grace_ms": 300, "deactivate_timeout_ms": 300}),
    );
    assert!(ok(
        &d.call("activate", json!({"plugin": "p", "config": "{}"}))
    ));
    let t = Instant::now();
    let r = d.call("stop", json!({"plugin": "p"}));
    let took = t.elapsed();
    assert_eq!(r["exit"], json!({"signal": "SIGKILL"}), "{r}");
    assert_eq!(r["killed"], json!(true));
    assert!(
        took >= 550 * MS && took < 4 * SEC,
        "the stop took {took:?}, not 0.3 s + 0.3 s"
    );
    b.assert_no_process_left();
    d.finish();
}

// Commands run concurrently: a stop sent while a start waits for an announcement that never
// comes (start timeout 20 s) is answered once the plugin is stopped, the start with an error;
// status works meanwhile and says starting.
// covers: DRV-3, DRV-9
#[test]
fn a_stop_during_a_start_that_waits() {
    let b = Bundle::new("silent", "exec sleep 30\n");
    let mut d = driver(&[]);
    let t = Instant::now();
    let start = d.send(
        "start",
        json!({"plugin": "s", "bundle": b.path(), "start_timeout_ms": 20000, "stop_grace_ms": 300}),
    );
    let pid = b.wait_launches(1)[0];
    let status = d.call("status", json!({"plugin": "s"}));
    assert_eq!(status["state"], json!("starting"), "{status}");
    assert_eq!(status["pid"], json!(pid));
    assert!(ok(&d.call("hello", json!({}))));
    let stop = d.send("stop", json!({"plugin": "s"}));
    let stop_reply = d.reply(stop);
    let start_reply = d.reply(start);
    assert!(t.elapsed() < 10 * SEC, "{:?}", t.elapsed());
    assert_eq!(stop_reply["ok"], json!(true));
    assert_eq!(stop_reply["exit"], json!({"signal": "SIGKILL"}));
    assert_eq!(stop_reply["killed"], json!(true));
    assert_eq!(start_reply["ok"], json!(false));
    assert!(
        start_reply["error"].as_str().unwrap().contains("stopped"),
        "{start_reply}"
    );
    let failed = d.event("start_failed");
    assert!(
        failed["reason"].as_str().unwrap().contains("stopped"),
        "{failed}"
    );
    d.event("stopped");
    assert_eq!(
        d.call("status", json!({"plugin": "s"})),
        json!({"id": d.next_id - 1, "ok": true, "state": "stopped", "pid": null})
    );
    b.assert_no_process_left();
    d.finish();
}

// Crashes and restarts become events: a crash during the activation (exit status 3) and
// the relaunch 1 s later, not activated; a SIGKILL after a successful activation, and the
// relaunch activated again; status says backoff in between and running after.
// covers: DRV-9, DRV-10, DRV-12
#[test]
fn crashes_and_restarts_are_events() {
    let crashing = Bundle::new(
        "crash-on-activate",
        &reference(&[("RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE", "1")]),
    );
    let b = Bundle::new("killed", &reference(&[]));
    let mut d = driver(&[]);
    let pid = d.start("c", &crashing, json!({}));
    let r = d.call("activate", json!({"plugin": "c", "config": "{}"}));
    assert_eq!(r["ok"], json!(false), "{r}");
    let crashed = d.event_msg("crashed", WAIT);
    assert_eq!(crashed.v["pid"], json!(pid));
    assert_eq!(crashed.v["exit"], json!({"code": 3}));
    assert_eq!(crashed.v["failures"], json!(1));
    assert_eq!(crashed.v["delay_ms"], json!(1000));
    let status = d.call("status", json!({"plugin": "c"}));
    assert_eq!(status["state"], json!("backoff"), "{status}");
    let restarted = d.event_msg("restarted", WAIT);
    assert!(
        restarted.at - crashed.at >= 900 * MS,
        "relaunched {:?} after the crash",
        restarted.at - crashed.at
    );
    assert_eq!(restarted.v["reactivated"], json!(false));
    let new_pid = restarted.v["pid"].as_u64().unwrap();
    assert_ne!(new_pid, pid as u64);
    assert_eq!(crashing.pids().len(), 2);

    let pid = d.start("k", &b, json!({}));
    assert!(ok(&d.call(
        "activate",
        json!({"plugin": "k", "config": "{\"a\":1}"})
    )));
    kill9(pid);
    let crashed = d.event_msg("crashed", WAIT);
    assert_eq!(crashed.v["plugin"], json!("k"));
    assert_eq!(crashed.v["exit"], json!({"signal": "SIGKILL"}));
    let restarted = d.event_msg("restarted", WAIT);
    assert_eq!(restarted.v["plugin"], json!("k"));
    assert_eq!(restarted.v["reactivated"], json!(true));
    let status = d.call("status", json!({"plugin": "k"}));
    assert_eq!(status["state"], json!("running"));
    assert_eq!(status["pid"], restarted.v["pid"]);
    d.wait_stderr(r#"activated with configuration {"a":1}"#, 2);
    assert!(ok(&d.call("hello", json!({}))));
    let (status, _) = d.finish();
    assert!(status.success());
    crashing.assert_no_process_left();
    b.assert_no_process_left();
}

// A plugin that breaks the framing after its handshake, one that closes its pipes, and one
// that floods its standard error: the driver reports crashes and keeps answering.
// covers: DRV-12
#[test]
fn misbehaving_plugins_do_not_stop_the_driver() {
    let garbage = Bundle::new(
        "garbage",
        &format!("{ANNOUNCE}\nprintf '\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377\\377' >&4\nexec sleep 30\n"),
    );
    let hangup = Bundle::new(
        "hangup",
        &format!("{ANNOUNCE}\nexec 3<&- 4>&-\nexec sleep 30\n"),
    );
    let flood = Bundle::new(
        "flood",
        &format!(
            "(exec 3<&- 4>&-; yes 'flooding standard error' | head -c 5000000 >&2) &\n{}",
            reference(&[])
        ),
    );
    let mut d = driver(&[]);
    for (name, bundle) in [("g", &garbage), ("h", &hangup)] {
        d.start(name, bundle, json!({"stop_grace_ms": 200}));
    }
    d.start("f", &flood, json!({}));
    for name in ["g", "h"] {
        let c = d.wait_msg("crash", WAIT, |v| {
            v["event"] == json!("crashed") && v["plugin"] == json!(name)
        });
        assert!(
            c.v["reason"].as_str().unwrap().contains("connection"),
            "{}",
            c.v
        );
    }
    assert!(ok(&d.call("hello", json!({}))));
    assert!(ok(
        &d.call("activate", json!({"plugin": "f", "config": "{}"}))
    ));
    for name in ["g", "h", "f"] {
        assert!(ok(&d.call("stop", json!({"plugin": name}))));
    }
    let (status, _) = d.finish();
    assert!(status.success());
    garbage.assert_no_process_left();
    hangup.assert_no_process_left();
}

// Errors: names that no start created, lines that are not commands (answered when they carry
// an id, reported on standard error otherwise), and a bundle without plugin.json; the driver
// goes on answering.
// covers: DRV-2
#[test]
fn errors_for_unknown_plugins_and_malformed_lines() {
    let mut d = driver(&[]);
    for cmd in ["deactivate", "stop", "status"] {
        let r = d.call(cmd, json!({"plugin": "nope"}));
        assert_eq!(r["error"], json!("no plugin named nope"), "{r}");
    }
    let r = d.call("activate", json!({"plugin": "nope", "config": "null"}));
    assert_eq!(r["error"], json!("no plugin named nope"));
    let empty = scratch_dir().join("driver-not-a-bundle");
    std::fs::create_dir_all(&empty).unwrap();
    let r = d.call(
        "start",
        json!({"plugin": "x", "bundle": empty.to_str().unwrap(), "start_timeout_ms": 1000}),
    );
    assert!(r["error"].as_str().unwrap().contains("plugin.json"), "{r}");

    // With an id: an error reply each.
    let with_id: [(&[u8], u64); 9] = [
        (br#"{"id":50,"cmd":"fly"}"#, 50),
        (br#"{"id":51}"#, 51),
        (br#"{"id":52,"cmd":7}"#, 52),
        (br#"{"id":53,"cmd":"stop"}"#, 53),
        (br#"{"id":54,"cmd":"start","plugin":"p","bundle":"/b"}"#, 54),
        (
            br#"{"id":55,"cmd":"start","plugin":"p","bundle":"/b","start_timeout_ms":-1}"#,
            55,
        ),
        (br#"{"id":56,"cmd":"activate","plugin":"p"}"#, 56),
        (br#"{"id":57,"cmd":"hello","extra":true}"#, 57),
        (br#"{"id":58,"cmd":"status","plugin":""}"#, 58),
    ];
    for (line, id) in with_id {
        d.send_raw(line, Some(id));
    }
    for (_, id) in with_id {
        let r = d.reply(id);
        assert_eq!(r["ok"], json!(false), "{r}");
    }
    // Without a usable id: nothing on standard output.
    let before = d.messages.len();
    for line in [
        &b"not json"[..],
        b"[1,2]",
        b"{\"cmd\":\"hello\"}",
        b"{\"id\":0,\"cmd\":\"hello\"}",
        b"{\"id\":\"9\",\"cmd\":\"hello\"}",
        b"\xff\xfe{}",
        b"",
        b"   ",
    ] {
        d.send_raw(line, None);
    }
    let r = d.call("hello", json!({}));
    assert!(ok(&r));
    assert_eq!(d.messages.len(), before + 1, "{:#?}", d.seen());
    let (status, _) = d.finish();
    assert!(status.success());
    let stderr = d.stderr();
    assert!(stderr.contains("not JSON"), "{stderr}");
    assert!(stderr.contains("not UTF-8"), "{stderr}");
}

// quit stops every plugin (the stopped event comes before the reply to quit) and the driver
// exits with status 0; the end of standard input does the same without a reply.
// covers: DRV-11
#[test]
fn quit_and_end_of_input_stop_every_plugin() {
    let b1 = Bundle::new("quit-1", &reference(&[]));
    let b2 = Bundle::new("quit-2", &reference(&[]));
    let mut d = driver(&[]);
    d.start("a", &b1, json!({}));
    d.start("b", &b2, json!({}));
    assert!(ok(
        &d.call("activate", json!({"plugin": "a", "config": "{}"}))
    ));
    let quit = d.send("quit", json!({}));
    let reply = d.reply(quit);
    assert_eq!(reply, json!({"id": quit, "ok": true}));
    let (status, _) = d.finish();
    assert!(status.success(), "{status}");
    let quit_at = d.position(|v| v["id"] == json!(quit)).unwrap();
    for name in ["a", "b"] {
        let at = d
            .position(|v| v["event"] == json!("stopped") && v["plugin"] == json!(name))
            .unwrap_or_else(|| panic!("{name} was not stopped: {:#?}", d.seen()));
        assert!(at < quit_at);
    }
    d.wait_stderr("goodbye", 1);
    b1.assert_no_process_left();
    b2.assert_no_process_left();

    let b3 = Bundle::new("eof", &reference(&[]));
    let mut d = driver(&[]);
    d.start("c", &b3, json!({}));
    let (status, took) = d.finish();
    assert!(status.success(), "{status}");
    assert!(took < 10 * SEC);
    d.event("stopped");
    b3.assert_no_process_left();
}

// `driver --help` teaches the contract with an example exchange; the shipped host has no
// deliberately broken modes (they are the test equipment `rpcplugin-mutant-host`): no
// `--mutant`, and no list of mutants.
#[test]
fn help_teaches_the_contract_and_knows_no_mutants() {
    let out = Command::new(DRIVER)
        .args(["driver", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for text in [
        "rpcplugin-host-driver/1",
        r#"{"id":1,"cmd":"hello"}"#,
        r#""cmd":"start""#,
        "Example exchange",
    ] {
        assert!(help.contains(text), "{text:?} not in --help:\n{help}");
    }
    for text in ["mutant", "TEST ONLY", "never-restarts"] {
        assert!(
            !help.to_lowercase().contains(&text.to_lowercase()),
            "{text:?} in --help:\n{help}"
        );
    }
    let out = Command::new(DRIVER)
        .args(["driver", "--mutant", "never-restarts"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("--mutant"), "{err}");
}
