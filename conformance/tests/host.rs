//! The host half: the reference host, through its driver, passes every host case; the host
//! mutants (`rpcplugin-mutant-host`) are exactly those the harness knows, and name cases that
//! check the requirement they break (that they fail them is the self-test's rule 2,
//! `tests/selftest.rs`); a driver that breaks the contract is a harness error.

use std::process::{Command, Output};

use rpcplugin_conformance::cases::{catalog, find, Mode};
use rpcplugin_conformance::mutants::{host_mutants, HOST_CATCHES};

mod common;
use common::json_stdout;
use rpcplugin_test_support::bins::{mutant_host, reference_host};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn run(args: &[&str]) -> (Output, serde_json::Value) {
    let host = reference_host();
    let mut cmd = Command::new(BIN);
    cmd.args(["--no-replays", "--format", "json", "--jobs", "2"])
        .args(args)
        .args(["host", "--", host.to_str().unwrap(), "driver"]);
    let out = cmd.output().expect("the binary runs");
    let report = json_stdout(&out);
    (out, report)
}

#[test]
fn the_reference_host_passes_every_host_case() {
    let (out, r) = run(&[]);
    let failing: Vec<String> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| format!("{}: {} {}", c["id"], c["verdict"], c["message"]))
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
    let hosts = catalog().iter().filter(|c| c.mode() == Mode::Host).count();
    assert_eq!(r["summary"]["passed"].as_u64(), Some(hosts as u64));
    assert!(r["subject"]["host"].is_array() && r["subject"]["plugin"].is_null());
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_host_mutant_names_cases_that_check_its_requirement() {
    // That each one fails those cases is the self-test's rule 2 (tests/selftest.rs).
    let mut names = std::collections::HashSet::new();
    for m in HOST_CATCHES {
        assert!(
            names.insert(m.name),
            "two host mutants are called {}",
            m.name
        );
        assert!(!m.caught_by.is_empty(), "{} is caught by nothing", m.name);
        for (case, requirement) in m.caught_by {
            let c = find(case).unwrap_or_else(|| panic!("{}: no case {case}", m.name));
            assert_eq!(c.mode(), Mode::Host, "{}: {case}", m.name);
            // Every alternative is the case's own, or one the observer enforces in every case.
            for requirement in requirement.split('|') {
                assert!(
                    rpcplugin_conformance::cases::may_fail_with(c, requirement),
                    "{}: {case} does not check {requirement}",
                    m.name
                );
            }
        }
    }
}

// The one list of host mutants is the binary's (`rpcplugin-mutant-host list --format json`):
// the self-test runs every mutant it lists (tests/selftest.rs counts the columns), each has
// cases that must catch it, none has catches the binary does not list, and each breaks
// requirements that exist; `list-mutants` prints them all.
#[test]
fn the_host_mutants_are_exactly_the_binarys_list() {
    let program = mutant_host();
    let mutants = host_mutants(&program).unwrap_or_else(|e| panic!("{e}"));
    let listed: Vec<&str> = mutants.iter().map(|m| m.listed.name.as_str()).collect();
    let known: Vec<&str> = HOST_CATCHES.iter().map(|c| c.name).collect();
    assert_eq!(listed.len(), known.len(), "{listed:?}\n{known:?}");
    for name in &known {
        assert!(listed.contains(name), "{name} is not listed: {listed:?}");
    }
    for m in &mutants {
        assert!(
            !m.caught_by.is_empty(),
            "{} is caught by nothing",
            m.listed.name
        );
        assert!(!m.listed.description.is_empty(), "{}", m.listed.name);
        assert!(!m.listed.breaks.is_empty(), "{}", m.listed.name);
        for id in &m.listed.breaks {
            assert!(
                rpcplugin_conformance::requirements::lookup(id).is_some(),
                "{} breaks {id}, which is not a requirement",
                m.listed.name
            );
        }
    }
    // list-mutants finds the binary next to the harness, as the self-test does.
    reference_host();
    let out = Command::new(BIN).arg("list-mutants").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let hosts: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("host\t"))
        .collect();
    assert_eq!(hosts.len(), mutants.len(), "{text}");
    for (line, m) in hosts.iter().zip(&mutants) {
        assert!(line.starts_with(&format!("{}\t", m.listed.name)), "{line}");
        assert!(line.ends_with(&m.listed.description), "{line}");
    }
}

#[test]
fn a_driver_that_breaks_the_contract_is_a_harness_error() {
    // A "driver" that answers hello with something that is not a reply.
    let out = Command::new(BIN)
        .args([
            "--no-replays",
            "--case",
            "host/lifecycle",
            "host",
            "--",
            "/bin/sh",
            "-c",
            "read line; echo '{\"id\": 1, \"ok\": true, \"protocol\": \"nope\"}'; sleep 5",
        ])
        .output()
        .unwrap();
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("the driver broke the driver contract"),
        "{all}"
    );
    assert!(all.contains("hello.reply.json"), "{all}");
}

/// The verdicts of the backoff cases against the reference host, or the host mutant `mutant`,
/// with `--fixed-backoff` (a host whose longest restart delay and stable period cannot be
/// configured): `(id, verdict, reason)` of each.
fn backoff_verdicts(
    long: bool,
    cases: &[&str],
    mutant: Option<&str>,
) -> Vec<(String, String, String)> {
    let host = match mutant {
        Some(_) => mutant_host(),
        None => reference_host(),
    };
    let mut cmd = Command::new(BIN);
    cmd.args(["--no-replays", "--format", "json", "--jobs", "2"]);
    if long {
        cmd.arg("--long");
    }
    for case in cases {
        cmd.args(["--case", case]);
    }
    cmd.args([
        "host",
        "--",
        host.to_str().unwrap(),
        "driver",
        "--fixed-backoff",
    ]);
    if let Some(m) = mutant {
        cmd.args(["--mutant", m]);
    }
    let out = cmd.output().expect("the binary runs");
    let report = json_stdout(&out);
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (s("id"), s("verdict"), s("reason"))
        })
        .collect()
}

// The backoff cases are long ones when the driver does not honour the backoff settings:
// skipped with a reason that names --long, and with --long run at the spec's own 30 s and 60 s
// (about 95 s, all three runs at once), where the conforming host only gets the DRV-6 warning
// and the two backoff mutants are caught.
// covers: LIFE-9, LIFE-10, DRV-6
#[test]
fn backoff_cases_at_the_spec_constants_are_long_ones() {
    const BOTH: &[&str] = &["host/restart/backoff-capped", "host/restart/backoff-resets"];
    let skipped = backoff_verdicts(false, BOTH, None);
    assert_eq!(skipped.len(), 2, "{skipped:?}");
    for (id, verdict, reason) in &skipped {
        assert_eq!(verdict, "skipped", "{id}: {reason}");
        assert!(reason.contains("run it with --long"), "{id}: {reason}");
    }
    let conforming = std::thread::spawn(|| backoff_verdicts(true, BOTH, None));
    let uncapped =
        std::thread::spawn(|| backoff_verdicts(true, &BOTH[..1], Some("uncapped-backoff")));
    let never_resets =
        std::thread::spawn(|| backoff_verdicts(true, &BOTH[1..], Some("backoff-never-resets")));
    let conforming = conforming.join().unwrap();
    assert_eq!(conforming.len(), 2, "{conforming:?}");
    for (id, verdict, reason) in &conforming {
        assert_eq!(verdict, "warn", "{id}: {reason}");
        assert!(reason.starts_with("DRV-6: it does not"), "{id}: {reason}");
    }
    for (run, requirement) in [(uncapped, "LIFE-9:"), (never_resets, "LIFE-10:")] {
        let v = run.join().unwrap();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].1, "warn", "{v:?}");
        assert!(v[0].2.starts_with(requirement), "{v:?}");
    }
}

// covers: TRANS-16
#[test]
fn a_host_started_with_signals_ignored_still_starts_its_plugins_with_the_defaults() {
    // Under `nohup`, or as a background job of a script, the harness and the driver start with
    // SIGHUP, SIGINT and SIGQUIT ignored, and a host that only restores SIGPIPE passes them on
    // to its plugins (TRANS-16). env(1) ignores them here as such a start would.
    let probe = Command::new("env")
        .args(["--ignore-signal=HUP", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but env(1) has no --ignore-signal (GNU coreutils 8.31 or later)"
        );
        eprintln!(
            "\n*** SKIPPED: env(1) has no --ignore-signal (GNU coreutils 8.31 or later) ***\n"
        );
        return;
    }
    let host = reference_host();
    let out = Command::new("env")
        .args([
            "--ignore-signal=HUP",
            "--ignore-signal=INT",
            "--ignore-signal=QUIT",
            BIN,
            "--no-replays",
            "--format",
            "json",
            "--case",
            "host/transport/arguments-and-signals",
            "host",
            "--",
            host.to_str().unwrap(),
            "driver",
        ])
        .output()
        .expect("the binary runs");
    let report = json_stdout(&out);
    let case = &report["cases"][0];
    assert_eq!(case["id"], "host/transport/arguments-and-signals");
    assert_eq!(case["verdict"], "pass", "{}", case["message"]);
}
