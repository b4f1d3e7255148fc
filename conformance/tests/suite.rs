//! The `rpcplugin-conformance` binary and library against the reference plugin and against
//! deliberately broken subjects.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use rpcplugin_conformance::cases::catalog;
use rpcplugin_conformance::requirements;

use rpcplugin_test_support::bins::reference_plugin;
use rpcplugin_test_support::procs::output_text as text;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

/// How many plugin cases the catalog has.
fn plugin_cases() -> usize {
    catalog()
        .iter()
        .filter(|c| c.mode() == rpcplugin_conformance::cases::Mode::Plugin)
        .count()
}

fn conformance(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--no-replays")
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn list_prints_every_case_id() {
    let out = conformance(&["list"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for case in catalog() {
        assert!(
            stdout
                .lines()
                .any(|l| l.split('\t').next() == Some(case.id)),
            "{} missing from:\n{stdout}",
            case.id
        );
    }
}

#[test]
fn list_requirements_gives_each_one_its_role_and_cases() {
    let out = conformance(&["list", "--requirements"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), requirements::all().len());
    for (fields, r) in lines.iter().zip(requirements::all()) {
        assert_eq!(fields[0], r.id);
        assert!(
            ["host", "plugin", "both", "driver"].contains(&fields[2]),
            "{fields:?}"
        );
    }
    let trans_14 = lines
        .iter()
        .find(|f| f[0] == "TRANS-14")
        .expect("TRANS-14 listed");
    assert_eq!(&trans_14[1..4], &["MUST", "host", "1.7"]);
    assert!(trans_14[4].contains("host/transport/arguments-and-signals"));
}

#[test]
fn output_to_a_reader_that_goes_away_is_not_a_panic() {
    // `list | head -1`: the reader closes the pipe after one line.
    let mut child = Command::new(BIN)
        .arg("list")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().unwrap();
    drop(stdout);
    let out = child.wait_with_output().expect("it ends");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{}",
        text(&out)
    );
}

#[test]
fn the_reference_plugin_is_conformant() {
    let plugin = reference_plugin();
    let start = Instant::now();
    let out = conformance(&["plugin", plugin.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let n = plugin_cases();
    assert!(
        all.lines().any(|l| l == format!("{n} passed, 0 failed")),
        "{all}"
    );
    assert!(start.elapsed() < Duration::from_secs(60), "{all}");
}

#[test]
fn parallel_json_report_against_the_reference_plugin() {
    let plugin = reference_plugin();
    let out = conformance(&[
        "--jobs",
        "2",
        "--format",
        "json",
        "--skip",
        "transport/eof-exit",
        "plugin",
        plugin.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["schema"], "rpcplugin-conformance-report/v1");
    let cases = report["cases"].as_array().unwrap();
    assert_eq!(cases.len(), plugin_cases());
    for case in cases {
        let verdict = case["verdict"].as_str().unwrap();
        if case["id"] == "plugin/transport/eof-exit" {
            assert_eq!(verdict, "skipped");
        } else {
            assert_eq!(verdict, "pass", "{case}");
        }
        assert!(case["duration_ms"].is_u64());
        assert!(case["requirements"].is_array());
    }
    assert_eq!(report["summary"]["skipped"], 1);
    assert_eq!(report["summary"]["failed"], 0);
}

// A "plugin" that never announces: not conformant (exit 1), and the failure names HS-1 with
// the rule's text, what was expected and what happened.
// covers: HS-1
#[test]
fn a_plugin_that_never_announces_fails_the_handshake() {
    let start = Instant::now();
    let out = conformance(&[
        "--case",
        "handshake/announce",
        "plugin",
        "/bin/sh",
        "-c",
        "exec sleep 30",
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("fail     plugin/handshake/announce-even-stream"),
        "{all}"
    );
    assert!(all.contains(requirements::text("HS-1")), "{all}");
    assert!(all.contains("expected: "), "{all}");
    assert!(all.contains("got: no whole frame in time"), "{all}");
    assert!(all.lines().any(|l| l == "0 passed, 1 failed"), "{all}");
    // START_TIMEOUT and a margin, not the 30 s of the sleep: the process was killed.
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_plugin_that_exits_before_the_handshake_is_a_setup_error() {
    let out = conformance(&["--case", "announce", "plugin", "/bin/true"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("crashed before the handshake"), "{all}");
}

#[test]
fn a_missing_plugin_is_a_setup_error() {
    let out = conformance(&["plugin", "/nonexistent/plugin"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("/nonexistent/plugin"), "{all}");
    assert!(all.contains("not found"), "{all}");
}

#[test]
fn help_has_examples() {
    let out = conformance(&["--help"]);
    assert!(out.status.success());
    let all = text(&out);
    assert!(all.contains("Examples:"), "{all}");
    assert!(all.contains("rpcplugin-conformance plugin"), "{all}");
}

#[test]
fn version_names_the_specification_it_tests() {
    let out = conformance(&["--version"]);
    assert!(out.status.success());
    let spec: serde_json::Value =
        serde_json::from_str(include_str!("../../spec/requirements.json")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!(
            "rpcplugin-conformance {} (tests rpcplugin wire protocol 1, specification {})",
            env!("CARGO_PKG_VERSION"),
            spec["spec_version"].as_str().unwrap()
        )
    );
}

/// A shell "plugin" that announces hooks stream `hooks_varint` (zigzag byte, in octal) and then
/// sleeps, reading nothing and answering nothing.
fn announcing_sleeper(hooks_varint: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("printf '\\000\\004\\000\\{hooks_varint}' >&4; exec sleep 30"),
    ]
}

// A plugin that announces, then ignores the end of its input: the exit case fails with TRANS-9
// and the run is not conformant.
// covers: TRANS-9
#[test]
fn a_plugin_that_does_not_exit_after_eof_fails_trans_9() {
    let start = Instant::now();
    let mut args = vec!["--case", "transport/eof-exit", "plugin"];
    let sleeper = announcing_sleeper("004");
    args.extend(sleeper.iter().map(String::as_str));
    let out = conformance(&args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("fail     plugin/transport/eof-exit"), "{all}");
    assert!(all.contains("TRANS-9: "), "{all}");
    assert!(all.contains("got: it is still running"), "{all}");
    assert!(start.elapsed() < Duration::from_secs(15));
}

// The same plugin passes the handshake case but never answers a hook call.
#[test]
fn a_plugin_that_never_answers_fails_the_hook_cases() {
    let mut args = vec![
        "--case",
        "handshake/announce",
        "--case",
        "even-id",
        "plugin",
    ];
    let sleeper = announcing_sleeper("004");
    args.extend(sleeper.iter().map(String::as_str));
    let out = conformance(&args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("pass     plugin/handshake/announce-even-stream"),
        "{all}"
    );
    assert!(
        all.contains("fail     plugin/hooks/activate-even-id-rejected"),
        "{all}"
    );
    assert!(all.lines().any(|l| l == "1 passed, 1 failed"), "{all}");
}

// A plugin that announces an odd hooks stream id fails the handshake case.
// covers: STREAM-2
#[test]
fn an_odd_hooks_stream_fails_the_handshake_case() {
    let mut args = vec!["--case", "handshake/announce", "plugin"];
    let sleeper = announcing_sleeper("002");
    args.extend(sleeper.iter().map(String::as_str));
    let out = conformance(&args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("fail     plugin/handshake/announce-even-stream"),
        "{all}"
    );
    assert!(
        all.contains(&format!("STREAM-2: {}", requirements::text("STREAM-2"))),
        "{all}"
    );
}

/// A shell "plugin" that announces hooks stream 2, then reads and discards everything the host
/// sends without ever ending the connection: it waits for any payload a header declares.
fn announcing_reader() -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        "printf '\\000\\004\\000\\004' >&4; exec cat <&3 >/dev/null".into(),
    ]
}

fn run_case(case: &str, plugin: &[String]) -> String {
    let mut args = vec!["--case", case, "plugin"];
    args.extend(plugin.iter().map(String::as_str));
    let out = conformance(&args);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.lines().any(|l| l == "0 passed, 1 failed"), "{all}");
    all
}

// A plugin that keeps reading after a header declaring 16 777 217 bytes, waiting for the
// payload instead of ending the connection, fails the oversized-frame case with FRAME-8.
// covers: FRAME-8
#[test]
fn a_plugin_that_waits_for_an_oversized_payload_fails_frame_8() {
    let start = Instant::now();
    let all = run_case("framing/oversized-frame", &announcing_reader());
    assert!(
        all.contains("fail     plugin/framing/oversized-frame"),
        "{all}"
    );
    assert!(
        all.contains(&format!("FRAME-8: {}", requirements::text("FRAME-8"))),
        "{all}"
    );
    assert!(all.contains("its output is still open"), "{all}");
    assert!(start.elapsed() < Duration::from_secs(15));
}

// The same plugin reads past a stream id varint that overflows 64 bits: FRAME-4.
// covers: FRAME-4
#[test]
fn a_plugin_that_reads_past_a_varint_overflow_fails_frame_4() {
    let all = run_case("framing/varint-overflow", &announcing_reader());
    assert!(
        all.contains("fail     plugin/framing/varint-overflow"),
        "{all}"
    );
    assert!(
        all.contains(&format!("FRAME-4: {}", requirements::text("FRAME-4"))),
        "{all}"
    );
}

// A plugin that never reads its input cannot take a 1 MiB frame: the case fails with FRAME-7
// within its bound instead of blocking on the write.
// covers: FRAME-7
#[test]
fn a_plugin_that_never_reads_fails_the_max_size_frame_case() {
    let start = Instant::now();
    let all = run_case("framing/max-size-frame", &announcing_sleeper("004"));
    assert!(
        all.contains("fail     plugin/framing/max-size-frame"),
        "{all}"
    );
    assert!(
        all.contains(&format!("FRAME-7: {}", requirements::text("FRAME-7"))),
        "{all}"
    );
    assert!(all.contains("did not read a 1048581-byte write"), "{all}");
    assert!(start.elapsed() < Duration::from_secs(15));
}

// A plugin that announces hooks stream 2 and then sends data on stream 5, an odd stream the
// host never opened, fails the parity case with STREAM-2.
// covers: STREAM-2
#[test]
fn a_plugin_that_opens_an_odd_stream_fails_stream_2() {
    let plugin = vec![
        "/bin/sh".to_string(),
        "-c".to_string(),
        "printf '\\000\\004\\000\\004\\012\\004hi' >&4; exec sleep 30".to_string(),
    ];
    let all = run_case("streams/parity-of-opened-streams", &plugin);
    assert!(
        all.contains("fail     plugin/streams/parity-of-opened-streams"),
        "{all}"
    );
    assert!(
        all.contains(&format!("STREAM-2: {}", requirements::text("STREAM-2"))),
        "{all}"
    );
    assert!(all.contains("a frame on stream 5"), "{all}");
}
