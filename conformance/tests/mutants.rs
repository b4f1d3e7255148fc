//! The harness's own agent passes every plugin case, and its mutants (plugins that break one
//! rule each) name cases that exist and check the requirement they break. That each mutant
//! fails those cases, for that requirement, is the self-test's rule 2 (`tests/selftest.rs`).

use std::process::{Command, Output};

use rpcplugin_conformance::agent::MUTANTS;
use rpcplugin_conformance::cases::{catalog, find, Mode};

mod common;
use common::json_stdout;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["--no-replays", "--format", "json"])
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn the_agent_passes_every_plugin_case() {
    let out = run(&["--jobs", "2", "plugin", BIN, "agent"]);
    let r = json_stdout(&out);
    let failing: Vec<String> = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["verdict"] != "pass")
        .map(|c| format!("{}: {} {}", c["id"], c["verdict"], c["reason"]))
        .collect();
    assert!(failing.is_empty(), "{failing:#?}");
    let plugin_cases = catalog()
        .iter()
        .filter(|c| c.mode() == Mode::Plugin)
        .count();
    assert_eq!(r["summary"]["passed"].as_u64(), Some(plugin_cases as u64));
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn every_mutant_names_cases_that_exist() {
    let mut names = std::collections::HashSet::new();
    for m in MUTANTS {
        assert!(names.insert(m.name), "two mutants are called {}", m.name);
        assert!(!m.caught_by.is_empty(), "{} is caught by nothing", m.name);
        for (case, requirements) in m.caught_by {
            let c = find(case).unwrap_or_else(|| panic!("{}: no case {case}", m.name));
            let requirement = &requirements.split('|').next().unwrap();
            assert!(
                rpcplugin_conformance::requirements::lookup(requirement).is_some(),
                "{}: {requirement} is not a requirement",
                m.name
            );
            // Every alternative is the case's own, or one the observer enforces in every case.
            for requirement in requirements.split('|') {
                assert!(
                    rpcplugin_conformance::cases::may_fail_with(c, requirement),
                    "{}: {case} does not check {requirement}",
                    m.name
                );
            }
        }
    }
    assert!(MUTANTS.len() >= 15, "only {} mutants", MUTANTS.len());
}
