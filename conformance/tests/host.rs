//! The host half: the reference host, through its driver, passes every host case; its mutants
//! name cases that check the requirement they break (that they fail them is the self-test's
//! rule 2, `tests/selftest.rs`); a driver that breaks the contract is a harness error.

use std::process::{Command, Output};

use rpcplugin_conformance::cases::{catalog, find, Mode};
use rpcplugin_conformance::mutants::HOST_MUTANTS;

mod common;
use common::{json_stdout, reference_host};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn run(args: &[&str], mutant: Option<&str>) -> (Output, serde_json::Value) {
    let host = reference_host();
    let mut cmd = Command::new(BIN);
    cmd.args(["--no-replays", "--format", "json", "--jobs", "2"])
        .args(args)
        .args(["host", "--", host.to_str().unwrap(), "driver"]);
    if let Some(m) = mutant {
        cmd.args(["--mutant", m]);
    }
    let out = cmd.output().expect("the binary runs");
    let report = json_stdout(&out);
    (out, report)
}

#[test]
fn the_reference_host_passes_every_host_case() {
    let (out, r) = run(&[], None);
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
    for m in HOST_MUTANTS {
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
