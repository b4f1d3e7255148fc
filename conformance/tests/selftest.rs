//! `rpcplugin-conformance self-test`: the whole catalog and a fixed-seed fuzz run against the
//! conforming agent and reference host and against every mutant of both. The four rules of
//! spec/harness.md section 7 hold: the conforming subjects pass everything, every mutant is caught by
//! its cases with the requirement it breaks, every case catches a mutant or says why not.

use std::process::Command;

use rpcplugin_conformance::agent::MUTANTS;
use rpcplugin_conformance::cases::catalog;
use rpcplugin_conformance::mutants::host_mutants;
use rpcplugin_conformance::selftest::{FUZZ_HOST, FUZZ_PLUGIN, UNREACHED};
use serde_json::Value;

mod common;
use common::json_stdout;
use rpcplugin_test_support::bins::{mutant_host, reference_host};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

#[test]
fn every_case_can_fail_and_every_mutant_is_caught() {
    // The self-test finds the reference host and the host mutants next to the harness.
    reference_host();
    let listed = host_mutants(&mutant_host()).unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(BIN)
        .args(["--format", "json", "--progress", "never", "self-test"])
        .output()
        .expect("the binary runs");
    let r: Value = json_stdout(&out);
    assert_eq!(r["schema"], "rpcplugin-conformance-self-test/v1");
    assert_eq!(r["problems"], serde_json::json!([]), "{:#}", r["problems"]);
    assert_eq!(out.status.code(), Some(0));

    let columns = r["columns"].as_array().unwrap();
    assert_eq!(columns.len(), 2 + MUTANTS.len() + listed.len());
    assert!(MUTANTS.len() + listed.len() >= 15);
    // Every host mutant the binary lists is a column, with its description.
    let host_columns: Vec<(&str, &str)> = columns
        .iter()
        .filter(|c| c["mode"] == "host" && c["conforming"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["description"].as_str().unwrap(),
            )
        })
        .collect();
    let expected: Vec<(&str, &str)> = listed
        .iter()
        .map(|m| (m.listed.name.as_str(), m.listed.description.as_str()))
        .collect();
    assert_eq!(host_columns, expected);
    let rows = r["rows"].as_array().unwrap();
    assert_eq!(rows.len(), catalog().len() + 2);
    // Every mutant column has at least one failing cell (rule 2 makes it its own cases').
    for (i, c) in columns.iter().enumerate() {
        let caught = rows
            .iter()
            .filter(|row| {
                matches!(
                    row["cells"][i]["verdict"].as_str(),
                    Some("fail" | "timeout" | "warn")
                )
            })
            .count();
        if c["conforming"] == true {
            assert_eq!(caught, 0, "{} fails something", c["name"]);
        } else {
            assert!(caught > 0, "{} is caught by nothing", c["name"]);
        }
    }
    // The fuzz rows catch mutants of their own mode.
    for id in [FUZZ_PLUGIN, FUZZ_HOST] {
        let row = rows
            .iter()
            .find(|row| row["case"] == id)
            .expect("a fuzz row");
        let caught = row["cells"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["verdict"] == "fail")
            .count();
        assert!(caught >= 3, "{id} catches only {caught} mutant(s)");
    }
    // Rows without a mutant say why, in the table too.
    for (id, _) in UNREACHED {
        let row = rows.iter().find(|row| row["case"] == *id).unwrap();
        assert!(row["unreached"].is_string());
    }
}

#[test]
fn the_human_table_names_subjects_and_rules() {
    reference_host();
    mutant_host();
    // One mutant of each mode and two cases keep this quick.
    let out = Command::new(BIN)
        .args([
            "--progress",
            "never",
            "--case",
            "plugin/rpc/concurrent-calls",
            "--case",
            "host/restart/crash-after-activation",
            "self-test",
            "--mutant",
            "wrong-seq",
            "--mutant",
            "never-restarts",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    for needed in [
        "plugin cases x plugin subjects",
        "host cases x host subjects",
        "plugin/rpc/concurrent-calls",
        "host/restart/crash-after-activation",
        "agent (conforming)",
        "reference-host (conforming)",
        "wrong-seq",
        "never-restarts (",
        "a crashed plugin is never relaunched",
        ". pass  X fail",
        "the suite proved its teeth",
    ] {
        assert!(text.contains(needed), "no {needed:?} in\n{text}");
    }
    // The mutants' cells of their own cases are X.
    let line = text
        .lines()
        .find(|l| l.starts_with("plugin/rpc/concurrent-calls"))
        .unwrap();
    assert!(line.trim_end().ends_with(".X"), "{line}");
}
