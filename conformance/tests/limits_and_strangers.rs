//! Verdicts that hold on subjects the suite was not written against (spec/harness.md section 1.2):
//!
//! - subjects with every limit at the spec's minimum (`--min-limits` of the reference plugin,
//!   the reference host's driver and the agent) pass every case of their mode: no case demands
//!   more than the spec guarantees;
//! - a plugin and a host written in Python from `spec/` alone
//!   (`tests/subjects/python-plugin`, `tests/subjects/python-host`), whose limits are the
//!   minimums, whose stream buffers count a message as unread until it is whole, which answer
//!   concurrent calls out of order (the plugin's `--concurrent`) and number their gob types as
//!   Go does (the host), pass every case of their mode; and a host whose start timeout cannot be
//!   configured (`--fixed-start-timeout`, declared through `hello`'s `defaults`) passes the
//!   start cases, timed by its own value.
//!
//! The Python subjects need `python3` (3.11 or later): without it these tests say SKIPPED, and
//! fail under `CI=true`, where `.ci/run` installs it.

use std::path::PathBuf;
use std::process::{Command, Output};

use rpcplugin_conformance::cases::{catalog, Mode};

mod common;
use common::json_stdout;
use rpcplugin_test_support::bins::{reference_host, reference_plugin};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn subjects() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/subjects")
}

/// Whether `python3` can run the Python subjects; otherwise says SKIPPED (and panics under
/// `CI=true`).
fn python3() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none_or(|v| v != "true"),
            "python3 (3.11 or later) is needed for the independent Python subjects under CI=true"
        );
        eprintln!("SKIPPED: no python3 3.11 or later, so the Python subjects cannot run");
    }
    ok
}

/// Runs the harness with `args`, in JSON, and returns every case that did not pass, with its
/// verdict and reason, and the report.
fn run(args: &[&str]) -> (Output, Vec<String>, serde_json::Value) {
    let out = Command::new(BIN)
        .args(["--no-replays", "--format", "json", "--progress", "never"])
        .args(args)
        .output()
        .expect("the binary runs");
    let report = json_stdout(&out);
    let failing = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| format!("{} {}: {}", c["id"], c["verdict"], c["reason"]))
        .collect();
    (out, failing, report)
}

fn count(mode: Mode) -> u64 {
    catalog().iter().filter(|c| c.mode() == mode).count() as u64
}

/// Every case of `mode` passed in `report`.
fn all_passed(args: &[&str], mode: Mode) {
    let (out, failing, report) = run(args);
    assert!(failing.is_empty(), "{args:?}: {failing:#?}");
    assert_eq!(
        report["summary"]["passed"].as_u64(),
        Some(count(mode)),
        "{args:?}"
    );
    assert_eq!(out.status.code(), Some(0), "{args:?}");
}

#[test]
fn plugins_at_the_minimum_limits_pass_every_plugin_case() {
    let plugin = reference_plugin();
    all_passed(
        &["plugin", plugin.to_str().unwrap(), "--min-limits"],
        Mode::Plugin,
    );
    all_passed(&["plugin", BIN, "agent", "--min-limits"], Mode::Plugin);
}

#[test]
fn the_reference_host_at_the_minimum_limits_passes_every_host_case() {
    let host = reference_host();
    all_passed(
        &[
            "host",
            "--",
            host.to_str().unwrap(),
            "driver",
            "--min-limits",
        ],
        Mode::Host,
    );
}

#[test]
fn a_plugin_written_from_the_spec_alone_passes_every_plugin_case() {
    if !python3() {
        return;
    }
    let plugin = subjects().join("python-plugin/plugin.py");
    // Minimum limits, whole-message buffer accounting, calls answered out of order.
    all_passed(
        &["plugin", plugin.to_str().unwrap(), "--concurrent"],
        Mode::Plugin,
    );
}

#[test]
fn a_host_written_from_the_spec_alone_passes_every_host_case() {
    if !python3() {
        return;
    }
    let driver = subjects().join("python-host/driver.py");
    all_passed(&["host", "--", driver.to_str().unwrap()], Mode::Host);
    // A start timeout that cannot be configured, declared in hello: the start cases are timed
    // by the host's own value instead of failing.
    let (out, failing, report) = run(&[
        "--case",
        "host/start/",
        "host",
        "--",
        driver.to_str().unwrap(),
        "--fixed-start-timeout",
    ]);
    assert!(failing.is_empty(), "{failing:#?}");
    assert!(report["summary"]["passed"].as_u64() >= Some(5));
    assert_eq!(out.status.code(), Some(0));
}
