//! The harness's outputs as a user sees them: the human, JSON and JUnit reports (snapshots),
//! replay files that `replay` plays back and `inspect` decodes, and expected-failure lists with
//! their strict semantics.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rpcplugin_test_support::bins::fresh_dir;
use rpcplugin_test_support::procs::output_text as text;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

fn conformance(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name))
}

/// Durations, paths and versions vary from run to run; the rest of a report does not.
fn stable(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let mut line = line.replace(BIN, "[harness]");
        // "(12 ms)" in the human report.
        if let (Some(a), Some(b)) = (line.find(" ("), line.find(" ms)")) {
            if a < b && line[a + 2..b].chars().all(|c| c.is_ascii_digit()) {
                line = format!("{} (_ ms){}", &line[..a], &line[b + 4..]);
            }
        }
        // time="0.012" in JUnit.
        while let Some(at) = line.find("time=\"") {
            let end = line[at + 6..].find('"').map(|e| at + 6 + e).unwrap();
            line = format!("{}time=_{}", &line[..at], &line[end + 1..]);
        }
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Three cases against a mutant that ignores close frames: one passes, one fails, one warns.
const CASES: &[&str] = &[
    "--case",
    "plugin/hooks/activate-deactivate",
    "--case",
    "plugin/streams/data-after-close",
    "--case",
    "plugin/streams/close-answered",
];

fn mutant_run(extra: &[&str]) -> Output {
    let mut args: Vec<&str> = vec!["--no-replays"];
    args.extend(CASES);
    args.extend(extra);
    args.extend(["plugin", BIN, "agent", "--mutant", "ignores-close"]);
    conformance(&args)
}

#[test]
fn the_human_report_of_a_failing_run() {
    let out = mutant_run(&["--color", "never"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    insta::assert_snapshot!(stable(&String::from_utf8_lossy(&out.stdout)));
}

#[test]
fn the_json_report_of_a_failing_run() {
    let out = mutant_run(&["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    report["subject"]["plugin"][0] = "[harness]".into();
    report["harness"]["version"] = "[version]".into();
    for case in report["cases"].as_array_mut().unwrap() {
        case["duration_ms"] = "[ms]".into();
    }
    insta::assert_json_snapshot!(report);
}

#[test]
fn the_junit_report_of_a_failing_run() {
    let dir = scratch("junit");
    let file = dir.join("report.xml");
    let out = mutant_run(&["--junit", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let xml = std::fs::read_to_string(&file).unwrap();
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"));
    insta::assert_snapshot!(stable(&xml));
}

#[test]
fn strict_makes_a_warning_a_failure() {
    let args = [
        "--no-replays",
        "--case",
        "plugin/streams/close-answered",
        "plugin",
        BIN,
        "agent",
        "--mutant",
        "ignores-close",
    ];
    let out = conformance(&args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("warn     plugin/streams/close-answered-with-close"));
    let mut strict = vec!["--strict"];
    strict.extend(args);
    let out = conformance(&strict);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

fn replay_of(dir: &Path, case: &str, mutant: &str) -> PathBuf {
    let out = conformance(&[
        "--replay-dir",
        dir.to_str().unwrap(),
        "--case",
        case,
        "plugin",
        BIN,
        "agent",
        "--mutant",
        mutant,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let file = dir.join(format!("{}.json", case.replace('/', "__")));
    assert!(
        text(&out).contains(&format!("replay: {}", file.display())),
        "{}",
        text(&out)
    );
    file
}

#[test]
fn a_failing_case_writes_a_replay_file_that_replays_and_inspects() {
    let dir = scratch("replays");
    let file = replay_of(
        &dir,
        "plugin/framing/negative-length",
        "accepts-negative-length",
    );
    let replay: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(replay["schema"], "rpcplugin-conformance-replay/v1");
    assert_eq!(replay["case"]["id"], "plugin/framing/negative-length");
    assert_eq!(replay["verdict"], "fail");
    assert!(replay["reason"].as_str().unwrap().starts_with("FRAME-6: "));
    let events: Vec<&str> = replay["exchange"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"sent") && events.contains(&"received"),
        "{events:?}"
    );

    // The same mutant does the same again.
    let out = conformance(&["replay", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("reproduced"), "{}", text(&out));

    // A conforming plugin does not: it ends the connection instead of answering.
    let out = conformance(&["replay", file.to_str().unwrap(), "--", BIN, "agent"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("differs from the recording at byte"),
        "{}",
        text(&out)
    );

    // --rerun runs the case again: it still fails against the mutant.
    let out = conformance(&["replay", "--rerun", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("fail     plugin/framing/negative-length"));

    // inspect shows both directions, the malformed frame the harness sent among them.
    let out = conformance(&["inspect", file.to_str().unwrap()]);
    let shown = text(&out);
    assert!(shown.contains("announcement: hooks stream 2"), "{shown}");
    assert!(shown.contains("VIOLATION FRAME-1"), "{shown}");
    // The harness's own violation (the negative length) is not the plugin's.
    assert_eq!(out.status.code(), Some(0), "{shown}");
}

#[test]
fn inspect_points_at_a_broken_rule_with_its_offset_and_text() {
    let dir = scratch("inspect");
    let file = replay_of(
        &dir,
        "plugin/hooks/activate-deactivate",
        "nonminimal-varints",
    );
    let out = conformance(&["inspect", file.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("plugin@0     VIOLATION FRAME-2"), "{shown}");
    assert!(
        shown.contains(rpcplugin_conformance::requirements::text("FRAME-2")),
        "{shown}"
    );

    // A raw capture, as bytes and as hex: the announcement, then a frame with a non-minimal
    // header.
    let raw = dir.join("capture.bin");
    std::fs::write(&raw, [0x00, 0x04, 0x00, 0x04, 0x84, 0x00, 0x02, 0x68]).unwrap();
    let out = conformance(&["inspect", raw.to_str().unwrap()]);
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(shown.contains("plugin@4     VIOLATION FRAME-2"), "{shown}");
    let hex = dir.join("capture.hex");
    std::fs::write(&hex, "00 04 00 04\n").unwrap();
    let out = conformance(&[
        "inspect",
        "--hex",
        hex.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["violations"], 0);
    assert_eq!(found["lines"][1]["kind"], "announcement");
    // A file that is not there is a usage error.
    let out = conformance(&["inspect", "/nonexistent/capture"]);
    assert_eq!(out.status.code(), Some(2));
}

fn expect_run(list: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["--no-replays", "--expect-fail", list.to_str().unwrap()];
    args.extend(extra);
    args.extend(CASES);
    args.extend(["plugin", BIN, "agent", "--mutant", "ignores-close"]);
    conformance(&args)
}

#[test]
fn expected_failure_lists_are_strict() {
    let dir = scratch("expect");
    let list = dir.join("known.txt");

    // The failure, with the start of its reason: the run passes.
    std::fs::write(
        &list,
        "# known\nplugin/streams/data-after-close-discarded STREAM-9: a response\n",
    )
    .unwrap();
    let out = expect_run(&list, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("(expected failure)"), "{}", text(&out));

    // Another reason: the run fails.
    std::fs::write(
        &list,
        "plugin/streams/data-after-close-discarded FRAME-8:\n",
    )
    .unwrap();
    let out = expect_run(&list, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("with another reason"), "{}", text(&out));

    // A listed case that passes: the run fails, and says so.
    std::fs::write(
        &list,
        "plugin/streams/data-after-close-discarded\nplugin/hooks/activate-deactivate\n",
    )
    .unwrap();
    let out = expect_run(&list, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains(
            "now passing (listed as expected failures): plugin/hooks/activate-deactivate"
        ),
        "{}",
        text(&out)
    );

    // An unknown id is an error of the list.
    std::fs::write(&list, "plugin/no/such-case\n").unwrap();
    let out = expect_run(&list, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("line 1: \"plugin/no/such-case\" is not a case id"));

    // --update-expect-fail writes the run's failures; the next run then passes.
    let fresh = dir.join("fresh.txt");
    let out = expect_run(&fresh, &["--update-expect-fail"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let written = std::fs::read_to_string(&fresh).unwrap();
    assert!(
        written.contains("plugin/streams/data-after-close-discarded STREAM-9: "),
        "{written}"
    );
    let out = expect_run(&fresh, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn list_as_json_names_every_case_with_its_requirements() {
    let out = conformance(&["list", "--format", "json"]);
    assert!(out.status.success());
    let cases: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), rpcplugin_conformance::cases::catalog().len());
    for c in cases {
        let id = c["id"].as_str().unwrap();
        assert!(
            id.starts_with(&format!("{}/", c["mode"].as_str().unwrap())),
            "{id}"
        );
        assert!(!c["requirements"].as_array().unwrap().is_empty());
    }
}

#[test]
fn colour_follows_the_color_option_and_the_environment() {
    let coloured = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command.env_remove("NO_COLOR").env_remove("CLICOLOR_FORCE");
        command.env_remove("CLICOLOR");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command
            .args(["--no-replays", "--case", "plugin/hooks/activate-deactivate"])
            .args(args)
            .args(["plugin", BIN, "agent"])
            .output()
            .expect("the binary runs");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        out.stdout.contains(&0x1b)
    };
    // Standard output is a pipe here: auto means no colour, unless CLICOLOR_FORCE says so.
    assert!(!coloured(&[], &[]));
    assert!(coloured(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(!coloured(
        &[],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")]
    ));
    assert!(coloured(&["--color", "always"], &[("NO_COLOR", "1")]));
    assert!(!coloured(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]));
}
