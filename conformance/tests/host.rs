//! The host half: the reference host, through its driver, passes every host case, and each of
//! its mutants fails the cases meant to catch it, naming the requirement it breaks.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use rpcplugin_conformance::cases::{catalog, find, Mode};
use rpcplugin_conformance::mutants::HOST_MUTANTS;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

/// Builds the reference host once and returns its path.
fn reference_host() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "rpcplugin-reference-host"])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the reference host failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let path = target.join("debug/rpcplugin-reference-host");
        assert!(path.is_file(), "no reference host at {}", path.display());
        path
    })
    .clone()
}

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
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
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
fn every_host_mutant_is_caught_by_its_cases() {
    let mut missed = Vec::new();
    for m in HOST_MUTANTS {
        let mut args: Vec<&str> = Vec::new();
        for (case, _) in m.caught_by {
            assert!(find(case).is_some(), "{}: no case {case}", m.name);
            args.extend(["--case", case]);
        }
        let (out, r) = run(&args, Some(m.name));
        let cases = r["cases"].as_array().unwrap();
        for (case, requirement) in m.caught_by {
            let Some(c) = cases.iter().find(|c| c["id"] == *case) else {
                missed.push(format!("{}: {case} did not run", m.name));
                continue;
            };
            let reason = c["reason"].as_str().unwrap();
            if c["verdict"] == "pass" {
                missed.push(format!("{}: {case} passes", m.name));
            } else if !reason.starts_with(&format!("{requirement}: ")) {
                missed.push(format!(
                    "{}: {case} fails with {reason:?}, not {requirement}",
                    m.name
                ));
            }
        }
        if out.status.code() != Some(1) {
            missed.push(format!("{}: exit status {:?}", m.name, out.status.code()));
        }
    }
    assert!(missed.is_empty(), "{missed:#?}");
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
