//! `rpcplugin-conformance bench`: the reference plugin's and the reference host's figures are
//! produced and sane (positive, a tail at or above its median, ratios positive), the JSON
//! report keeps its shape (snapshots, every measured number redacted) and each summary its
//! distribution, `--html` writes the page with each distribution plotted against its floor's,
//! and a subject that cannot be benched is exit status 2 with a plain reason, never a hang. No
//! test asserts a speed.

use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rpcplugin_test_support::bins::{reference_host, reference_plugin};
use rpcplugin_test_support::procs::output_text as text;
use rpcplugin_test_support::within;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

/// Runs the harness with `args` (within two minutes).
fn conformance(args: Vec<String>) -> Output {
    within(Duration::from_secs(120), move || {
        Command::new(BIN)
            .args(&args)
            .output()
            .expect("the binary runs")
    })
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

/// A short bench: few rounds, small batches.
const SHORT: &[&str] = &[
    "--format",
    "json",
    "bench",
    "--rounds",
    "3",
    "--batch",
    "20",
    "--warm-up",
    "5",
    "--starts",
    "2",
];

/// The JSON report of a short bench of the reference plugin (run once per test process).
fn plugin_report() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(|| {
        let plugin = reference_plugin();
        let mut args = strings(SHORT);
        args.extend(strings(&[
            "plugin",
            "--depth",
            "4",
            "--payload",
            "1KiB,64KiB",
        ]));
        args.push(plugin.display().to_string());
        let out = conformance(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("a JSON report")
    })
}

/// The JSON report of a short bench of the reference host (run once per test process).
fn host_report() -> &'static Value {
    static REPORT: OnceLock<Value> = OnceLock::new();
    REPORT.get_or_init(|| {
        let host = reference_host();
        let mut args = strings(SHORT);
        args.extend(strings(&["host", "--restarts", "1", "--"]));
        args.push(host.display().to_string());
        args.push("driver".into());
        let out = conformance(args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        serde_json::from_slice(&out.stdout).expect("a JSON report")
    })
}

/// Checks one summary: positive, ordered, its tail (if any) at or above its median.
fn check_summary(id: &str, s: &Value) {
    let n = |k: &str| {
        s[k].as_f64()
            .unwrap_or_else(|| panic!("{id}: {k} is not a number in {s}"))
    };
    let (median, min, max) = (n("median"), n("min"), n("max"));
    assert!(median.is_finite() && median > 0.0, "{id}: {s}");
    assert!(min > 0.0 && min <= median && median <= max, "{id}: {s}");
    assert!(s["samples"].as_u64().unwrap_or(0) >= 1, "{id}: {s}");
    if !s["p99"].is_null() {
        assert!(n("p99") >= median && n("p99") <= max, "{id}: {s}");
    }
    check_distribution(id, s);
}

/// A summary of more than one sample keeps its distribution: a bounded, ascending set of its
/// samples with their fractions, from the smallest to the largest (at 1).
fn check_distribution(id: &str, s: &Value) {
    let samples = s["samples"].as_u64().unwrap();
    let Some(points) = s["distribution"].as_array() else {
        assert_eq!(samples, 1, "{id}: no distribution in {s}");
        return;
    };
    let points: Vec<(f64, f64)> = points
        .iter()
        .map(|p| {
            (
                p["fraction"].as_f64().unwrap(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    let all = samples as usize <= rpcplugin_conformance::bench::results::ALL_SAMPLES;
    if all {
        assert_eq!(points.len(), samples as usize, "{id}: {s}");
    } else {
        let most = rpcplugin_conformance::bench::results::FRACTIONS.len() + 1;
        assert!(points.len() <= most, "{id}: {} points", points.len());
    }
    assert!(
        points
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "{id}: {points:?}"
    );
    let (first, last) = (points[0], points[points.len() - 1]);
    assert_eq!(first.1, s["min"].as_f64().unwrap(), "{id}");
    assert_eq!(last, (1.0, s["max"].as_f64().unwrap()), "{id}");
}

/// Checks every figure of a report, and that `ids` are among them.
fn check_figures(report: &Value, ids: &[&str]) {
    let figures = report["figures"].as_array().expect("figures");
    for f in figures {
        let id = f["id"].as_str().expect("an id");
        check_summary(id, &f["value"]);
        if !f["floor"].is_null() {
            check_summary(&format!("{id} floor"), &f["floor"]["value"]);
        }
        if !f["ratio"].is_null() {
            let r = f["ratio"].as_f64().expect("a ratio");
            assert!(r.is_finite() && r > 0.0, "{id}: ratio {r}");
        }
        assert!(
            matches!(f["better"].as_str(), Some("lower" | "higher")),
            "{f}"
        );
    }
    let found: Vec<&str> = figures.iter().filter_map(|f| f["id"].as_str()).collect();
    for id in ids {
        assert!(found.contains(id), "{id} missing from {found:?}");
    }
    assert_eq!(report["not_measured"], Value::Array(Vec::new()));
}

#[test]
fn the_reference_plugin_figures_are_produced_and_sane() {
    let report = plugin_report();
    check_figures(
        report,
        &[
            "plugin.start",
            "plugin.rss_idle",
            "plugin.round_trip",
            "plugin.pipelined",
            "plugin.throughput.1024",
            "plugin.throughput.65536",
            "plugin.rss",
            "plugin.hwm",
            "plugin.anon",
        ],
    );
    let figure = |id: &str| {
        report["figures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["id"] == id)
            .unwrap()
    };
    // Every call of every round is a sample; so is every ping-pong.
    assert_eq!(figure("plugin.round_trip")["value"]["samples"], 60);
    assert_eq!(figure("plugin.round_trip")["floor"]["value"]["samples"], 60);
    assert!(figure("plugin.rss")["value"]["median"].as_f64().unwrap() > 0.0);
    assert!(
        figure("plugin.hwm")["value"]["median"].as_f64().unwrap()
            >= figure("plugin.rss")["value"]["median"].as_f64().unwrap()
    );
}

#[test]
fn the_reference_host_figures_are_produced_and_sane() {
    let report = host_report();
    check_figures(
        report,
        &[
            "host.start",
            "host.activate",
            "host.stop",
            "host.hook_call",
            "host.restart",
            "host.restart_delay",
            "host.restart_beyond_delay",
            "host.driver_rss_idle",
            "host.driver_rss",
            "host.driver_hwm",
        ],
    );
    assert_eq!(report["subject"]["events"], true);
    let restart = report["figures"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == "host.restart")
        .unwrap();
    // The restart includes the host's restart delay, at least RESTART_DELAY_MIN (LIFE-8).
    assert!(restart["value"]["median"].as_f64().unwrap() >= 990_000.0);
}

/// The report with every measured number, and what varies by machine and build, redacted.
fn redacted(report: &Value) -> Value {
    let mut v = report.clone();
    v["harness"]["version"] = "[version]".into();
    v["harness"]["profile"] = "[profile]".into();
    v["machine"]["os"] = "[os]".into();
    v["machine"]["cpus"] = "[cpus]".into();
    v["subject"]["command"][0] = "[executable]".into();
    if v["subject"]["host"].is_string() {
        v["subject"]["host"] = "[host and version]".into();
    }
    let redact = |s: &mut Value| {
        for k in ["median", "p99", "min", "max"] {
            if s[k].is_number() {
                s[k] = "[figure]".into();
            }
        }
        // How many points depends on the count of samples only.
        if let Some(points) = s["distribution"].as_array() {
            s["distribution"] = format!("[{} points]", points.len()).into();
        }
    };
    for f in v["figures"].as_array_mut().expect("figures") {
        redact(&mut f["value"]);
        if f["floor"].is_object() {
            redact(&mut f["floor"]["value"]);
        }
        if f["ratio"].is_number() {
            f["ratio"] = "[ratio]".into();
        }
    }
    v
}

#[test]
fn the_json_shape_of_a_plugin_bench() {
    insta::assert_json_snapshot!(redacted(plugin_report()));
}

#[test]
fn the_json_shape_of_a_host_bench() {
    insta::assert_json_snapshot!(redacted(host_report()));
}

#[test]
fn the_human_report_is_a_table_with_its_floors_explained() {
    let plugin = reference_plugin();
    let mut args = strings(&SHORT[2..]);
    args.extend(strings(&["plugin", "--payload", "2"]));
    args.push(plugin.display().to_string());
    let out = conformance(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let all = String::from_utf8_lossy(&out.stdout);
    let header = all
        .lines()
        .find(|l| l.starts_with("figure"))
        .unwrap_or_else(|| panic!("no table header in {all}"));
    for column in ["median", "p99", "floor median", "floor p99", "ratio"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(all.contains("hook round trip (OnDeactivate)"), "{all}");
    assert!(all.contains("one stream, 2 B payload"), "{all}");
    assert!(all.contains("\nhow:\n"), "{all}");
    assert!(
        all.contains("Floor: a one-byte ping-pong through the floor child's descriptors 3 and 4."),
        "{all}"
    );
}

#[test]
fn html_writes_a_page_with_each_distribution_plotted_against_its_floor() {
    let dir = rpcplugin_test_support::bins::fresh_dir(
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-html"),
    );
    let page = dir.join("bench.html");
    let plugin = reference_plugin();
    let mut args = strings(&["--progress", "never", "--html"]);
    args.push(page.display().to_string());
    args.extend(strings(&SHORT[2..]));
    args.extend(strings(&["plugin", "--payload", "1KiB"]));
    args.push(plugin.display().to_string());
    let out = conformance(args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The table still goes to standard output.
    assert!(String::from_utf8_lossy(&out.stdout).contains("hook round trip"));
    let html = std::fs::read_to_string(&page).expect("the page is written");
    let doc = scraper::Html::parse_document(&html);
    let sel = |s: &str| scraper::Selector::parse(s).unwrap();
    // The table: one row per figure.
    assert_eq!(doc.select(&sel("table.figures tbody tr")).count(), 8);
    assert!(html.contains(&plugin.display().to_string()));
    // The round trip's plot: the subject's distribution and the floor's, each a polyline
    // with its median.
    let plot = doc
        .select(&sel("figure.plot#plot-plugin-round_trip svg"))
        .next()
        .expect("the round trip's plot");
    let series: Vec<(String, usize)> = plot
        .select(&sel("g.series[data-series]"))
        .map(|g| {
            let points = g
                .select(&sel("polyline"))
                .next()
                .and_then(|p| p.value().attr("points"))
                .unwrap_or_default()
                .split(' ')
                .count();
            assert_eq!(g.select(&sel("circle.median")).count(), 1);
            (g.value().attr("data-series").unwrap().to_string(), points)
        })
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!(
        (series[0].0.as_str(), series[1].0.as_str()),
        ("subject", "floor")
    );
    // 60 samples each: a staircase through at least the smallest and the largest.
    assert!(series.iter().all(|(_, n)| *n >= 6), "{series:?}");
    // Every figure with a floor and more than one sample has its plot: all but the memory
    // read once at the end.
    let plotted: Vec<&str> = doc
        .select(&sel("figure.plot"))
        .filter_map(|f| f.value().attr("data-figure"))
        .collect();
    assert_eq!(
        plotted,
        [
            "plugin.start",
            "plugin.rss_idle",
            "plugin.round_trip",
            "plugin.pipelined",
            "plugin.throughput.1024"
        ]
    );
}

/// Runs a bench that must fail with exit status 2 and a message containing every one of
/// `expected`; returns how long it took.
fn fails_with(args: &[&str], expected: &[&str]) -> Duration {
    let start = Instant::now();
    let out = conformance(strings(args));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    for e in expected {
        assert!(all.contains(e), "{e:?} not in {all}");
    }
    assert!(!all.contains("panicked"), "{all}");
    start.elapsed()
}

#[test]
fn a_missing_plugin_or_driver_is_exit_2_with_a_plain_reason() {
    fails_with(
        &["bench", "plugin", "/nonexistent/plugin"],
        &["plugin executable /nonexistent/plugin not found"],
    );
    fails_with(
        &["bench", "host", "--", "/nonexistent/driver"],
        &["cannot start the driver /nonexistent/driver"],
    );
}

#[test]
fn a_program_that_is_not_a_plugin_is_exit_2_with_a_plain_reason() {
    fails_with(
        &["bench", "plugin", "/bin/sh", "-c", "echo hello; exit 3"],
        &[
            "/bin/sh exited with status 3 before its announcement",
            "not an rpcplugin plugin",
        ],
    );
    // A program that never announces: the start timeout (scaled), not its 30 s.
    let took = fails_with(
        &[
            "--timeout-scale",
            "0.2",
            "bench",
            "plugin",
            "/bin/sh",
            "-c",
            "exec sleep 30",
        ],
        &["/bin/sh did not announce within 600ms of its launch (HS-4)"],
    );
    assert!(took < Duration::from_secs(20), "{took:?}");
    // A program that is not a driver.
    fails_with(
        &["bench", "host", "--", "/bin/sh", "-c", "echo hello"],
        &["/bin/sh: the driver"],
    );
}

#[test]
fn a_plugin_that_never_answers_is_ended_not_waited_for() {
    // Announces hooks stream 2, then sleeps: the first activation never completes, and the
    // watchdog ends it after the (scaled) stall limit.
    let took = fails_with(
        &[
            "--timeout-scale",
            "0.2",
            "bench",
            "--starts",
            "1",
            "plugin",
            "/bin/sh",
            "-c",
            "printf '\\000\\004\\000\\004' >&4; exec sleep 30",
        ],
        &["nothing happened for 2s", "the first activation failed"],
    );
    assert!(took < Duration::from_secs(25), "{took:?}");
}

#[test]
fn bad_options_are_refused_with_the_reason() {
    fails_with(
        &["bench", "plugin", "--payload", "8MiB", "/bin/true"],
        &["a payload is a JSON string of 2 to"],
    );
    fails_with(
        &["bench", "--rounds", "0", "plugin", "/bin/true"],
        &["\"0\" is not a positive whole number"],
    );
}

#[test]
fn help_teaches_the_options() {
    let out = conformance(strings(&["bench", "--help"]));
    assert!(out.status.success(), "{}", text(&out));
    let all = text(&out);
    for needle in [
        "--rounds",
        "--batch",
        "--warm-up",
        "--starts",
        "[default: 21]",
        "Examples:",
        "bench plugin target/debug/rpcplugin-reference-plugin",
        "--release",
    ] {
        assert!(all.contains(needle), "{needle:?} not in {all}");
    }
    let out = conformance(strings(&["bench", "plugin", "--help"]));
    let all = text(&out);
    for needle in ["--depth", "--payload", "[default: 1KiB 64KiB 1MiB]"] {
        assert!(all.contains(needle), "{needle:?} not in {all}");
    }
    // The floor child is no subcommand of the help.
    let out = conformance(strings(&["--help"]));
    assert!(!text(&out).contains("bench-floor"));
}
