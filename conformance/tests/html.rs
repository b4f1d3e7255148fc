//! The HTML report (`--html`): its page for fixed replay files (a snapshot, and what the page
//! holds: one arrow per frame, drawn or folded; links to anchors that exist), the pages of a
//! fuzz run, of the self-test and of a bench (a snapshot of a fixed bench report), and a real
//! failing run's page and a real bench's page as headless Chromium renders them: the DOM it
//! builds, and a screenshot (under the target directory).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rpcplugin_conformance::bench::results::{
    BenchReport, Better, Figure, Harness, Machine, NotMeasured, Settings, Subject, Summary,
    BENCH_SCHEMA,
};
use rpcplugin_conformance::html::{self, HtmlOptions};
use rpcplugin_conformance::outcome::Verdict;
use rpcplugin_conformance::report::{CaseResult, Report, Subjects};
use rpcplugin_conformance::transcript::ReplayFile;
use rpcplugin_test_support::bins::{fresh_dir, spec_dir};
use rpcplugin_test_support::procs::output_text as text;
use rpcplugin_test_support::within_named;
use scraper::{ElementRef, Html, Selector};

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

/// The fixed replay files of the snapshot (recorded once against mutants, the subject's path
/// and standard error blanked).
const FIXTURES: &[&str] = &[
    "plugin__framing__one-byte-frames.json",
    "plugin__framing__negative-length.json",
    "host__stop__deactivates-then-ends-connection.json",
];

fn fixture(name: &str) -> (PathBuf, ReplayFile) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/html")
        .join(name);
    let file = ReplayFile::read(&path).unwrap();
    (path, file)
}

/// A fresh directory under the target directory.
fn scratch(name: &str) -> PathBuf {
    fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name))
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

fn verdict(name: &str) -> Verdict {
    match name {
        "pass" => Verdict::Pass,
        "fail" => Verdict::Fail,
        "warn" => Verdict::Warn,
        "timeout" => Verdict::Timeout,
        _ => Verdict::Skipped,
    }
}

/// A case's result as the runner makes it, from a replay file.
fn result_of(name: &str, duration_ms: u64) -> CaseResult {
    let (_, file) = fixture(name);
    let requirements: Vec<&'static str> = file.case.requirements.iter().map(|r| leak(r)).collect();
    CaseResult {
        id: leak(&file.case.id),
        mode: leak(&file.mode),
        title: leak(&file.case.title),
        requirements: Box::leak(requirements.into_boxed_slice()),
        verdict: verdict(&file.verdict),
        reason: file.reason.clone(),
        message: file.message.clone(),
        duration_ms,
        replay: Some(format!("rpcplugin-conformance-replays/{name}")),
        expectation: None,
        setup_error: false,
        stderr: String::new(),
        recording: Some(Box::new(file)),
    }
}

fn plain(id: &'static str, mode: &'static str, verdict: Verdict, reason: &str) -> CaseResult {
    CaseResult {
        id,
        mode,
        title: "a case that is no failure",
        requirements: &["RPC-12", "HS-7"],
        verdict,
        reason: reason.into(),
        message: String::new(),
        duration_ms: 3,
        replay: None,
        expectation: None,
        setup_error: false,
        stderr: String::new(),
        recording: None,
    }
}

/// A report of the three fixtures, a passing case and a skipped one, in catalog order.
fn fixed_report() -> Report {
    let cases = vec![
        plain(
            "plugin/hooks/activate-deactivate",
            "plugin",
            Verdict::Pass,
            "",
        ),
        result_of(FIXTURES[0], 4),
        result_of(FIXTURES[1], 5),
        result_of(FIXTURES[2], 89),
        plain(
            "host/transport/descriptors",
            "host",
            Verdict::Skipped,
            "skipped: skipped by --skip",
        ),
    ];
    Report::new(
        Subjects {
            plugin: Some(vec!["./my-plugin".into()]),
            host: Some(vec!["./my-host".into(), "driver".into()]),
        },
        1,
        false,
        cases,
    )
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).unwrap()
}

/// How many arrows the subject's and the harness's bytes make: one per frame, and one for
/// bytes that are no frame (what `inspect` decodes).
fn frames_in(replay: &Path) -> usize {
    let out = Command::new(BIN)
        .args(["--format", "json", "inspect"])
        .arg(replay)
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("inspect: {e}: {}", text(&out));
    });
    let lines = v["lines"].as_array().unwrap();
    let frames = lines.iter().filter(|l| l["kind"] == "frame").count();
    // Malformed bytes: a framing violation (FRAME-1) where no frame starts.
    let malformed = lines
        .iter()
        .filter(|l| {
            l["kind"] == "violation"
                && l["requirement"] == "FRAME-1"
                && !lines.iter().any(|f| {
                    f["kind"] == "frame" && f["sender"] == l["sender"] && f["offset"] == l["offset"]
                })
        })
        .count();
    frames + malformed
}

/// The arrows a diagram draws, and those it folds.
fn arrows(diagram: ElementRef<'_>) -> (usize, usize) {
    let drawn = diagram.select(&sel("g.arrow")).count();
    let folded = diagram
        .select(&sel("g.fold"))
        .map(|f| {
            f.value()
                .attr("data-folded")
                .unwrap()
                .parse::<usize>()
                .unwrap()
        })
        .sum();
    (drawn, folded)
}

/// The anchors a Markdown renderer gives a chapter's headings, computed here on their own:
/// lowercase, letters, digits, `-` and `_` kept, spaces turned into `-`, repeats numbered.
fn heading_anchors(markdown: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
            continue;
        }
        let Some(rest) = line.strip_prefix('#') else {
            continue;
        };
        if in_code {
            continue;
        }
        let heading = rest.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base: String = heading
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let n = out
            .iter()
            .filter(|a| **a == base || a.starts_with(&format!("{base}-")))
            .count();
        out.push(if n == 0 { base } else { format!("{base}-{n}") });
    }
    out
}

/// Every link of a page resolves: `#id` to an element of the page, a link into the
/// specification (base `spec`) to a chapter file and one of its headings' anchors. Returns how
/// many links into the specification there were.
fn check_links(page: &Html) -> usize {
    let mut spec_links = 0;
    for a in page.select(&sel("a[href]")) {
        let href = a.value().attr("href").unwrap();
        if let Some(id) = href.strip_prefix('#') {
            let found = page
                .select(&sel("[id]"))
                .any(|e| e.value().attr("id") == Some(id));
            assert!(found, "a link to #{id}, which the page does not have");
        } else if let Some(rest) = href.strip_prefix("spec/") {
            let (file, anchor) = rest.split_once('#').expect("a section anchor");
            let markdown = std::fs::read_to_string(spec_dir().join(file))
                .unwrap_or_else(|e| panic!("{href}: {e}"));
            assert!(
                heading_anchors(&markdown).iter().any(|a| a == anchor),
                "{href}: {file} has no heading with anchor {anchor}"
            );
            spec_links += 1;
        } else {
            panic!("a link out of the page: {href}");
        }
    }
    spec_links
}

/// The page loads nothing: no scripts, styles, images or fonts from elsewhere.
fn check_self_contained(html: &str) {
    let page = Html::parse_document(html);
    assert_eq!(
        page.select(&sel("script[src], link, img, iframe")).count(),
        0
    );
    let without_svg_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    for needle in ["http://", "https://", "@import", "url("] {
        assert!(
            !without_svg_namespace.contains(needle),
            "the page refers to {needle}"
        );
    }
}

fn stable(html: &str) -> String {
    html.replace(
        concat!("rpcplugin-conformance ", env!("CARGO_PKG_VERSION")),
        "rpcplugin-conformance [version]",
    )
}

#[test]
fn the_page_of_fixed_replays() {
    let report = fixed_report();
    let html = html::report(&report, &HtmlOptions::default()).unwrap();
    // The same results make the same page.
    assert_eq!(
        html,
        html::report(&fixed_report(), &HtmlOptions::default()).unwrap()
    );
    check_self_contained(&html);
    let page = Html::parse_document(&html);
    // Every failing case has its section with its diagram: one arrow per frame, drawn or
    // folded; the passing and skipped cases have none.
    for name in FIXTURES {
        let (path, file) = fixture(name);
        let id = format!("case-{}", file.case.id.replace('/', "__"));
        let section = page
            .select(&sel(&format!("section[id=\"{id}\"]")))
            .next()
            .unwrap_or_else(|| panic!("no section {id}"));
        let diagram = section.select(&sel("figure.diagram")).next().unwrap();
        let (drawn, folded) = arrows(diagram);
        let declared: usize = diagram
            .value()
            .attr("data-arrows")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(drawn + folded, declared, "{name}");
        if file.mode == "plugin" {
            assert_eq!(drawn + folded, frames_in(&path), "{name}");
        } else {
            // Host cases: one arrow per driver line and per agent report that crosses.
            assert!(drawn >= 10, "{name}: {drawn}");
        }
    }
    assert_eq!(page.select(&sel("section.case")).count(), 3);
    // The one-byte frames fold, and the response with the wrong Seq is the marked arrow.
    let one_byte = page
        .select(&sel(
            "section[id=\"case-plugin__framing__one-byte-frames\"]",
        ))
        .next()
        .unwrap();
    let (drawn, folded) = arrows(one_byte);
    assert!(folded > 50 && drawn < 10, "{drawn} drawn, {folded} folded");
    let marked: Vec<String> = one_byte
        .select(&sel("g.arrow.violation text.label"))
        .map(|t| t.text().collect())
        .collect();
    assert_eq!(marked.len(), 1, "{marked:?}");
    assert!(
        marked[0].starts_with("✗ RPC-5: response Seq 1"),
        "{marked:?}"
    );
    assert_eq!(
        one_byte.select(&sel("details.folded tbody tr")).count(),
        folded
    );
    // The harness's malformed frame is drawn as sent on purpose; the failure that no arrow
    // carries is the diagram's last note.
    let negative = page
        .select(&sel(
            "section[id=\"case-plugin__framing__negative-length\"]",
        ))
        .next()
        .unwrap();
    assert_eq!(negative.select(&sel("g.arrow.deliberate")).count(), 1);
    assert_eq!(negative.select(&sel("g.missing")).count(), 1);
    // The requirement's text, its link to its section, expected and observed.
    let requirement = negative
        .select(&sel("blockquote.requirement"))
        .next()
        .unwrap();
    let link = requirement.select(&sel("a.req")).next().unwrap();
    assert_eq!(link.text().collect::<String>(), "FRAME-6");
    assert_eq!(
        link.value().attr("href"),
        Some("spec/02-framing.md#24-header-values")
    );
    assert!(check_links(&page) > 10);
    // The counts: per role and per chapter.
    let role_rows: Vec<String> = page
        .select(&sel("#per-role tbody tr"))
        .map(|r| r.text().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(role_rows, ["plugin 2 0 0 1 0 3", "host 1 0 0 0 1 2"]);
    insta::assert_snapshot!(stable(&html));
}

#[test]
fn the_spec_url_is_the_base_of_requirement_links() {
    let html = html::report(
        &fixed_report(),
        &HtmlOptions {
            spec_url: "https://example.org/rpcplugin/spec/".into(),
        },
    )
    .unwrap();
    assert!(
        html.contains("href=\"https://example.org/rpcplugin/spec/02-framing.md#24-header-values\"")
    );
}

#[test]
fn a_fuzz_failure_has_its_page() {
    let dir = scratch("html-fuzz");
    let file = dir.join("fuzz.html");
    let out = Command::new(BIN)
        .args(["--progress", "never", "--no-replays", "--html"])
        .arg(&file)
        .args([
            "fuzz",
            "--cases",
            "20",
            "--shrink-runs",
            "4",
            "plugin",
            BIN,
            "agent",
            "--mutant",
            "wrong-seq",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let html = std::fs::read_to_string(&file).unwrap();
    check_self_contained(&html);
    let page = Html::parse_document(&html);
    let section = page.select(&sel("section.case")).next().expect("a failure");
    assert!(section
        .value()
        .attr("id")
        .unwrap()
        .starts_with("case-fuzz__plugin__schedule-"));
    // Each failure's diagram marks the arrow that breaks the rule, or ends with a note that
    // states the failure.
    for section in page.select(&sel("section.case")) {
        let diagram = section.select(&sel("figure.diagram")).next().unwrap();
        assert!(arrows(diagram).0 > 0);
        let marked = section.select(&sel("g.arrow.violation")).count();
        let noted = section.select(&sel("g.missing")).count();
        assert_eq!(marked.min(1) + noted, 1, "{marked} marked, {noted} noted");
    }
    check_links(&page);
}

#[test]
fn the_self_test_page_is_the_grid_case_by_subject() {
    rpcplugin_test_support::bins::reference_host();
    rpcplugin_test_support::bins::mutant_host();
    let dir = scratch("html-self-test");
    let file = dir.join("self-test.html");
    let out = Command::new(BIN)
        .args(["--progress", "never", "--html"])
        .arg(&file)
        .args([
            "--case",
            "plugin/rpc/concurrent-calls",
            "self-test",
            "--mutant",
            "wrong-seq",
            "--mutant",
            "never-restarts",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let html = std::fs::read_to_string(&file).unwrap();
    check_self_contained(&html);
    let page = Html::parse_document(&html);
    let grid = page.select(&sel("#grid-plugin table.grid")).next().unwrap();
    let heads: Vec<String> = grid
        .select(&sel("thead th.subject"))
        .map(|h| h.text().collect())
        .collect();
    assert_eq!(heads, ["1 agent", "2 wrong-seq"]);
    let cells: Vec<(String, String)> = grid
        .select(&sel("tbody td.cell"))
        .map(|c| {
            (
                c.value().attr("class").unwrap().to_string(),
                c.text().collect(),
            )
        })
        .collect();
    assert_eq!(
        cells,
        [
            ("cell v-pass".to_string(), "·".to_string()),
            ("cell v-fail".to_string(), "✗".to_string())
        ]
    );
    // The host mode has no case selected: no grid.
    assert_eq!(page.select(&sel("#grid-host")).count(), 0);
}

/// Chromium, if it is installed.
fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .flat_map(|name| std::env::split_paths(&path).map(move |dir| dir.join(name)))
    .find(|p| p.is_file())
}

/// Runs headless Chromium on `page` with `args`, within two minutes.
fn headless(browser: &Path, profile: &Path, args: &[String], page: &Path) -> Output {
    let mut command = Command::new(browser);
    command
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()));
    within_named(
        std::time::Duration::from_secs(120),
        "headless Chromium",
        move || command.output().expect("Chromium runs"),
    )
}

#[test]
fn a_failing_runs_page_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true, and Chromium is not installed: .ci/run installs Debian's chromium"
        );
        let message = "SKIPPED: a_failing_runs_page_in_a_real_browser: Chromium is not installed \
                       (apt-get install chromium); the HTML report was not rendered in a browser";
        println!("{message}");
        eprintln!("{message}");
        return;
    };
    let dir = scratch("html-chromium");
    let report = dir.join("report.html");
    let replays = dir.join("replays");
    let out = Command::new(BIN)
        .args(["--progress", "never", "--html"])
        .arg(&report)
        .arg("--replay-dir")
        .arg(&replays)
        .args([
            "--case",
            "plugin/framing/one-byte-frames",
            "--case",
            "plugin/hooks/activate-deactivate",
            "--case",
            "plugin/streams/data-after-close-discarded",
            "plugin",
            BIN,
            "agent",
            "--mutant",
            "wrong-seq",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let dumped = headless(
        &browser,
        &dir.join("profile-dom"),
        &["--dump-dom".to_string()],
        &report,
    );
    assert!(dumped.status.success(), "{}", text(&dumped));
    let dom = Html::parse_document(&String::from_utf8_lossy(&dumped.stdout));
    // The filter script ran: it shows the form that stays hidden without JavaScript.
    let form = dom
        .select(&sel("form#filters"))
        .next()
        .expect("the filters");
    assert_eq!(form.value().attr("hidden"), None, "the script did not run");
    assert_eq!(dom.select(&sel("table.cases tbody tr")).count(), 3);
    // Each failing case: its section, its diagram with one arrow per frame of its replay file.
    for case in [
        "plugin/framing/one-byte-frames",
        "plugin/hooks/activate-deactivate",
    ] {
        let id = format!("case-{}", case.replace('/', "__"));
        let section = dom
            .select(&sel(&format!("section[id=\"{id}\"]")))
            .next()
            .unwrap_or_else(|| panic!("no section {id}"));
        let diagram = section.select(&sel("figure.diagram svg")).next().unwrap();
        let (drawn, folded) = arrows(diagram);
        let frames = frames_in(&replays.join(format!("{}.json", case.replace('/', "__"))));
        assert_eq!(
            drawn + folded,
            frames,
            "{case}: {drawn} drawn, {folded} folded"
        );
        assert_eq!(
            section.select(&sel("g.arrow.violation")).count(),
            1,
            "{case}"
        );
        // Its id in the table links to it.
        assert!(dom
            .select(&sel(&format!("table.cases a[href=\"#{id}\"]")))
            .next()
            .is_some());
    }
    assert_eq!(dom.select(&sel("section.case")).count(), 2);
    assert!(check_links(&dom) > 5);

    // Without JavaScript (the page without its script: headless Chromium's --dump-dom needs
    // scripts on), everything shows and the form that needs it does not.
    let page = std::fs::read_to_string(&report).unwrap();
    let (before, rest) = page.split_once("<script>").unwrap();
    let (_, after) = rest.split_once("</script>").unwrap();
    let no_script = dir.join("no-script.html");
    std::fs::write(&no_script, format!("{before}{after}")).unwrap();
    let dumped = headless(
        &browser,
        &dir.join("profile-no-script"),
        &["--dump-dom".to_string()],
        &no_script,
    );
    let dom = Html::parse_document(&String::from_utf8_lossy(&dumped.stdout));
    let form = dom.select(&sel("form#filters")).next().unwrap();
    assert!(form.value().attr("hidden").is_some(), "the script ran");
    assert_eq!(dom.select(&sel("[data-verdict][hidden]")).count(), 0);
    assert_eq!(dom.select(&sel("[data-verdict]")).count(), 3 + 2);

    // The filter: the same page, with a script after the page's own that leaves out the
    // passing cases and keeps chapter 5 only, as a reader clicking the form does.
    let filtered = dir.join("filtered.html");
    let click = r#"<script>
var form = document.getElementById("filters");
form.querySelector("input[value=pass]").checked = false;
form.querySelector("select[name=chapter]").value = "05-rpc";
form.dispatchEvent(new Event("change"));
</script></body>"#;
    std::fs::write(&filtered, page.replace("</body>", click)).unwrap();
    let dumped = headless(
        &browser,
        &dir.join("profile-filter"),
        &["--dump-dom".to_string()],
        &filtered,
    );
    let dom = Html::parse_document(&String::from_utf8_lossy(&dumped.stdout));
    let shown: Vec<(String, String)> = dom
        .select(&sel("[data-verdict]:not([hidden])"))
        .map(|e| {
            (
                e.value().name().to_string(),
                e.value().attr("data-verdict").unwrap().to_string(),
            )
        })
        .collect();
    // activate-deactivate (chapter 5, failing): its row and its section; one-byte-frames is
    // chapter 2, data-after-close-discarded passes.
    assert_eq!(
        shown,
        [
            ("tr".to_string(), "fail".to_string()),
            ("section".to_string(), "fail".to_string())
        ]
    );
    assert!(dom
        .select(&sel(
            "#case-plugin__hooks__activate-deactivate:not([hidden])"
        ))
        .next()
        .is_some());

    let shot = dir.join("report.png");
    let took = headless(
        &browser,
        &dir.join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600".to_string(),
        ],
        &report,
    );
    assert!(took.status.success(), "{}", text(&took));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
    println!("screenshot of the HTML report: {}", shot.display());
}

/// `n` samples spread deterministically around `middle`, with a slow tail: every 25th is
/// `tail` times slower.
fn samples(n: usize, middle: f64, tail: f64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let spread = middle * (0.9 + 0.2 * ((i * 37) % n) as f64 / n as f64);
            if i % 25 == 24 {
                spread * tail
            } else {
                spread
            }
        })
        .collect()
}

/// A bench report built here, with no measurement: a plugin's figures, times with their
/// floors, a rate, a memory reading, and a figure that could not be measured.
fn fixed_bench() -> BenchReport {
    let times = |v: &[f64]| Summary::of_times(v).unwrap();
    let values = |v: &[f64]| Summary::of_values(v).unwrap();
    BenchReport {
        schema: BENCH_SCHEMA.into(),
        harness: Harness {
            version: "9.9.9".into(),
            profile: "debug".into(),
        },
        machine: Machine {
            os: "linux".into(),
            cpus: 8,
        },
        subject: Subject {
            kind: "plugin".into(),
            command: vec!["./my-plugin".into(), "--verbose".into()],
            host: None,
            events: None,
        },
        settings: Settings {
            rounds: 5,
            batch: 40,
            warm_up: 10,
            starts: 6,
            depth: Some(16),
            payloads: vec![1024],
            restarts: None,
            timeout_scale: 1.0,
        },
        figures: vec![
            Figure::new(
                "plugin.start",
                "start (launch to announcement)",
                "us",
                Better::Lower,
                times(&samples(6, 2400.0, 1.0)),
            )
            .floor(
                "the floor child's launch to its first answer (one byte each way)",
                times(&samples(6, 1500.0, 1.0)),
                Some(1.6),
            ),
            Figure::new(
                "plugin.round_trip",
                "hook round trip (OnDeactivate)",
                "us",
                Better::Lower,
                times(&samples(200, 42.0, 6.0)),
            )
            .floor(
                "a one-byte ping-pong through the floor child's descriptors 3 and 4",
                times(&samples(200, 9.0, 3.0)),
                Some(4.67),
            )
            .note("one call at a time"),
            Figure::new(
                "plugin.pipelined",
                "pipelined calls (16 in flight)",
                "calls/s",
                Better::Higher,
                values(&samples(5, 80_000.0, 1.0)),
            )
            .floor(
                "the same calls one at a time, on the same stream",
                values(&samples(5, 25_000.0, 1.0)),
                Some(3.2),
            ),
            Figure::new(
                "plugin.rss",
                "resident memory after the run",
                "KiB",
                Better::Lower,
                Summary::single(5400.0),
            )
            .floor(
                "the floor child's, after the ping-pongs",
                Summary::single(2100.0),
                Some(2.57),
            )
            .note("VmRSS of /proc/PID/status"),
        ],
        not_measured: vec![NotMeasured {
            id: "plugin.throughput.1024".into(),
            reason: "the plugin does not call LocalAPI.LoadPluginConfiguration when activated"
                .into(),
        }],
    }
}

#[test]
fn the_page_of_a_fixed_bench() {
    let report = fixed_bench();
    let page_html = html::bench(&report, &HtmlOptions::default()).unwrap();
    assert_eq!(
        page_html,
        html::bench(&fixed_bench(), &HtmlOptions::default()).unwrap()
    );
    // A report read back from its JSON gives the same page.
    let read_back: BenchReport = serde_json::from_str(&report.json()).unwrap();
    assert_eq!(
        html::bench(&read_back, &HtmlOptions::default()).unwrap(),
        page_html
    );
    check_self_contained(&page_html);
    let page = Html::parse_document(&page_html);
    check_links(&page);
    let rows: Vec<Vec<String>> = page
        .select(&sel("table.figures tbody tr"))
        .map(|r| {
            r.select(&sel("td"))
                .map(|c| c.text().collect::<String>())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), 4);
    assert_eq!(
        rows[1][0],
        "hook round trip (OnDeactivate)plugin.round_trip"
    );
    assert_eq!(rows[1][8], "4.67× (lower is better)");
    // A plot for each figure with a floor and a distribution: not the memory read once.
    let plots: Vec<&str> = page
        .select(&sel("figure.plot"))
        .map(|f| f.value().attr("data-figure").unwrap())
        .collect();
    assert_eq!(
        plots,
        ["plugin.start", "plugin.round_trip", "plugin.pipelined"]
    );
    for f in page.select(&sel("figure.plot svg")) {
        let keys: Vec<&str> = f
            .select(&sel("g.series[data-series]"))
            .map(|g| g.value().attr("data-series").unwrap())
            .collect();
        assert_eq!(keys, ["subject", "floor"]);
        assert_eq!(f.select(&sel("g.legend g.series")).count(), 2);
        assert!(f.select(&sel("g.axis text.x")).count() >= 2);
    }
    // The debug build is said; so is what was not measured.
    assert_eq!(page.select(&sel("p.notice")).count(), 1);
    assert_eq!(
        page.select(&sel("#not-measured dt"))
            .next()
            .unwrap()
            .text()
            .collect::<String>(),
        "plugin.throughput.1024"
    );
    insta::assert_snapshot!(stable(&page_html));
}

#[test]
fn a_bench_page_in_a_real_browser() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true, and Chromium is not installed: .ci/run installs Debian's chromium"
        );
        let message = "SKIPPED: a_bench_page_in_a_real_browser: Chromium is not installed \
                       (apt-get install chromium); the bench's HTML page was not rendered in a \
                       browser";
        println!("{message}");
        eprintln!("{message}");
        return;
    };
    let plugin = rpcplugin_test_support::bins::reference_plugin();
    let dir = scratch("html-bench-chromium");
    let report = dir.join("bench.html");
    let out = Command::new(BIN)
        .args(["--progress", "never", "--html"])
        .arg(&report)
        .args([
            "bench",
            "--rounds",
            "5",
            "--batch",
            "40",
            "--warm-up",
            "20",
            "--starts",
            "3",
            "plugin",
            "--payload",
            "1KiB",
        ])
        .arg(&plugin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The page, with a script after its own (it has none) that writes into the DOM what the
    // browser laid out: each plot's drawn width, and each series' drawn length and extent.
    let page = std::fs::read_to_string(&report).unwrap();
    assert!(!page.contains("<script"), "the bench page needs no script");
    let measure = r#"<script>
for (const svg of document.querySelectorAll("figure.plot svg")) {
  svg.dataset.drawnWidth = Math.round(svg.getBoundingClientRect().width);
  for (const line of svg.querySelectorAll("g.series[data-series] polyline")) {
    const box = line.getBBox();
    line.dataset.length = Math.round(line.getTotalLength());
    line.dataset.extent = Math.round(box.width) + "x" + Math.round(box.height);
  }
}
</script></body>"#;
    let measured = dir.join("measured.html");
    std::fs::write(&measured, page.replace("</body>", measure)).unwrap();
    let dumped = headless(
        &browser,
        &dir.join("profile-dom"),
        &["--dump-dom".to_string()],
        &measured,
    );
    assert!(dumped.status.success(), "{}", text(&dumped));
    let dom = Html::parse_document(&String::from_utf8_lossy(&dumped.stdout));
    let svg = dom
        .select(&sel("figure.plot#plot-plugin-round_trip svg"))
        .next()
        .expect("the round trip's plot");
    let width: u32 = svg
        .value()
        .attr("data-drawn-width")
        .expect("the script ran")
        .parse()
        .unwrap();
    assert!(width >= 400, "the plot is drawn {width} pixels wide");
    let series: Vec<(&str, &str, u32)> = svg
        .select(&sel("g.series[data-series]"))
        .map(|g| {
            let line = g.select(&sel("polyline")).next().unwrap().value();
            (
                g.value().attr("data-series").unwrap(),
                line.attr("data-extent").unwrap(),
                line.attr("data-length").unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(series.len(), 2, "{series:?}");
    assert_eq!((series[0].0, series[1].0), ("subject", "floor"));
    for (key, extent, length) in &series {
        // From the left edge to the right, and from 0% to 100%: the plot area, 672 x 212;
        // a staircase that only goes right and up, so as long as the two together.
        assert_eq!(*extent, "672x212", "{key}");
        assert!(length.abs_diff(672 + 212) <= 2, "{key}: {length}");
    }
    // Each plot's legend names both series; each axis has its labels.
    for figure in dom.select(&sel("figure.plot")) {
        let legend: Vec<String> = figure
            .select(&sel("g.legend text"))
            .map(|t| t.text().collect())
            .collect();
        assert_eq!(legend.len(), 2, "{legend:?}");
        assert!(legend[0].starts_with("the plugin: median"), "{legend:?}");
        assert!(legend[1].starts_with("the floor: median"), "{legend:?}");
        assert!(figure.select(&sel("g.axis text.x")).count() >= 2);
    }
    check_links(&dom);

    let shot = dir.join("bench.png");
    let took = headless(
        &browser,
        &dir.join("profile-shot"),
        &[
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,2600".to_string(),
        ],
        &report,
    );
    assert!(took.status.success(), "{}", text(&took));
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000);
    println!("screenshot of the bench's HTML page: {}", shot.display());
}
