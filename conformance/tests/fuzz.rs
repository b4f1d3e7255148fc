//! `rpcplugin-conformance fuzz`: random schedules pass against the reference plugin and host,
//! catch broken subjects with the right requirement, shrink, and write replay files that
//! `replay` runs again.

use std::process::{Command, Output};

use serde_json::Value;

mod common;
use common::json_stdout;
use rpcplugin_test_support::bins::{mutant_host, reference_host, reference_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn fuzz(args: &[&str]) -> (Output, Value) {
    let out = Command::new(BIN)
        .args(["--format", "json"])
        .args(args)
        .output()
        .expect("the binary runs");
    let report = json_stdout(&out);
    (out, report)
}

#[test]
fn the_reference_plugin_passes_a_fixed_seed_run() {
    let plugin = reference_plugin();
    let (out, r) = fuzz(&[
        "--no-replays",
        "--jobs",
        "2",
        "--seed",
        "11",
        "fuzz",
        "--cases",
        "60",
        "plugin",
        plugin.to_str().unwrap(),
    ]);
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}");
    assert_eq!(r["schema"], "rpcplugin-conformance-fuzz/v1");
    assert_eq!(r["schedules"], 60);
    assert!(r["exec_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn the_reference_host_passes_a_fixed_seed_run() {
    let host = reference_host();
    let (out, r) = fuzz(&[
        "--no-replays",
        "--jobs",
        "4",
        "--seed",
        "5",
        "fuzz",
        "--cases",
        "8",
        "host",
        "--",
        host.to_str().unwrap(),
        "driver",
    ]);
    assert_eq!(r["failures"], serde_json::json!([]), "{r:#}");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_broken_plugin_is_caught_shrunk_and_replayed() {
    let dir = tempdir("plugin");
    let (out, r) = fuzz(&[
        "--replay-dir",
        dir.path().to_str().unwrap(),
        "--jobs",
        "2",
        "fuzz",
        "--cases",
        "20",
        "plugin",
        BIN,
        "agent",
        "--mutant",
        "wrong-seq",
    ]);
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    let f = &r["failures"][0];
    assert_eq!(f["requirement"], "RPC-5", "{f:#}");
    let (steps, shrunk) = (
        f["steps"].as_u64().unwrap(),
        f["shrunk_steps"].as_u64().unwrap(),
    );
    assert!(shrunk <= steps, "{f:#}");
    // Every request is answered with the wrong Seq: one activation or deactivation is enough.
    assert!(shrunk <= 2, "shrunk to {shrunk} steps: {f:#}");
    let file = f["replay"].as_str().expect("a replay file");
    let replay: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
    assert_eq!(replay["case"]["id"], "fuzz/plugin");
    assert_eq!(replay["schedule"], f["schedule"]);
    // Running the shrunk schedule again fails again, with the same requirement.
    let again = Command::new(BIN)
        .args(["--format", "json", "replay", "--rerun", file])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    let again: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert!(
        again["reason"].as_str().unwrap().starts_with("RPC-5: "),
        "{again:#}"
    );
    // And against the conforming agent, the same schedule passes.
    let fixed = Command::new(BIN)
        .args(["replay", "--rerun", file, "--", BIN, "agent"])
        .output()
        .unwrap();
    assert_eq!(fixed.status.code(), Some(0), "{fixed:?}");
}

#[test]
fn a_host_that_restarts_at_once_is_caught() {
    let host = mutant_host();
    let dir = tempdir("host");
    let (out, r) = fuzz(&[
        "--replay-dir",
        dir.path().to_str().unwrap(),
        "--jobs",
        "4",
        "fuzz",
        "--cases",
        "12",
        "--shrink-runs",
        "4",
        "host",
        "--",
        host.to_str().unwrap(),
        "driver",
        "--mutant",
        "restarts-without-delay",
    ]);
    assert_eq!(out.status.code(), Some(1), "{r:#}");
    let f = &r["failures"][0];
    assert_eq!(f["requirement"], "LIFE-8", "{f:#}");
    let crashes = f["schedule"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "crash")
        .count();
    assert!(crashes >= 1, "{f:#}");
    // `replay` of a host file runs its schedule again.
    let again = Command::new(BIN)
        .args(["replay", f["replay"].as_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(String::from_utf8_lossy(&again.stdout).contains("LIFE-8: "));
}

#[test]
fn bad_arguments_are_said_plainly() {
    let out = Command::new(BIN)
        .args(["fuzz", "--time", "soon", "plugin", BIN])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a duration"), "{err}");
    let out = Command::new(BIN)
        .args(["fuzz", "plugin", "/nonexistent/plugin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/plugin"));
}

/// A scratch directory for a test's replay files, removed when the test ends.
fn tempdir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("rpcplugin-conformance-fuzz-test-{name}-"))
        .tempdir()
        .unwrap()
}
