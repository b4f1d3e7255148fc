//! The HTML report (`--html FILE`): one self-contained page per run, readable without
//! JavaScript and with no network access (styles and the optional filter script are inline,
//! fonts are the browser's own), drawn by templates that askama compiles into the binary
//! (`conformance/templates/`).
//!
//! - [`report`]: a run of the suite (the default run, `plugin`, `host`): the subject, the
//!   specification version, counts by verdict, per role and per chapter, the table of cases
//!   (filterable by verdict and chapter when JavaScript is on), and for every failing, warning
//!   or timed-out case the requirement it names, with its text and a link to its section of
//!   the specification ([`spec`]), what was expected and what happened, and the sequence
//!   diagram of the recorded exchange ([`diagram`]);
//! - [`fuzz`]: a fuzz run, each failure with its shrunk schedule and diagram;
//! - [`self_test`]: the self-test's table case x subject as a grid, and its rules' verdict;
//! - [`bench()`]: a bench run's figures next to their floors, each distribution plotted against
//!   its floor's ([`mod@bench`], [`plot`]).
//!
//! Nothing in a page depends on when it was made: the same results give the same page.
//! `spec/harness.md` section 3 states what the page holds; the requirements it cites come from
//! `spec/requirements.json` ([`crate::requirements`]), and the diagrams decode frames (FRAME-1),
//! the announcement (HS-1) and RPC messages (RPC-2) with the codec's tracer.

pub mod bench;
pub mod diagram;
pub mod plot;
pub mod spec;

use askama::Template;

use crate::expect::Match;
use crate::fuzz::FuzzReport;
use crate::outcome::Verdict;
use crate::report::{CaseResult, Report};
use crate::selftest::SelfTest;
use crate::transcript::ReplayFile;
use diagram::{Diagram, Row};

/// The default base of links to the specification: its folder in the repository.
pub const DEFAULT_SPEC_URL: &str = "spec";

/// How to render.
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// The base of links to the specification: `BASE/02-framing.md#anchor`.
    pub spec_url: String,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        HtmlOptions {
            spec_url: DEFAULT_SPEC_URL.to_string(),
        }
    }
}

/// The verdicts, in the order the pages show them.
const VERDICTS: [Verdict; 5] = [
    Verdict::Fail,
    Verdict::Timeout,
    Verdict::Warn,
    Verdict::Pass,
    Verdict::Skipped,
];

/// A requirement id with its link.
#[derive(Debug, Clone)]
struct ReqLink {
    id: String,
    /// Empty for an id the specification does not have.
    url: String,
}

impl ReqLink {
    fn new(id: &str, opts: &HtmlOptions) -> ReqLink {
        ReqLink {
            id: id.to_string(),
            url: spec::requirement_url(&opts.spec_url, id).unwrap_or_default(),
        }
    }
}

/// A requirement in full.
#[derive(Debug, Clone)]
struct RequirementView {
    link: ReqLink,
    level: String,
    section: String,
    chapter: String,
    text: String,
}

impl RequirementView {
    fn new(id: &str, opts: &HtmlOptions) -> Option<RequirementView> {
        let r = crate::requirements::lookup(id)?;
        Some(RequirementView {
            link: ReqLink::new(id, opts),
            level: r.level.clone(),
            section: r.section.clone(),
            chapter: chapter_title(&r.chapter),
            text: r.text.clone(),
        })
    }
}

fn chapter_title(stem: &str) -> String {
    spec::chapter(stem).map_or_else(|| stem.to_string(), |c| c.title.clone())
}

/// The chapter a case belongs to: that of the first requirement it cites.
fn case_chapter(requirements: &[&str]) -> String {
    requirements
        .first()
        .and_then(|id| crate::requirements::lookup(id))
        .map_or_else(|| "other".to_string(), |r| r.chapter.clone())
}

/// The id of a case's section in the page.
fn anchor(id: &str) -> String {
    format!("case-{}", id.replace('/', "__"))
}

/// Counts by verdict.
#[derive(Debug, Clone, Default)]
struct Counts {
    counts: [usize; 5],
}

impl Counts {
    fn add(&mut self, v: Verdict) {
        if let Some(i) = VERDICTS.iter().position(|x| *x == v) {
            self.counts[i] += 1;
        }
    }

    fn total(&self) -> usize {
        self.counts.iter().sum()
    }

    /// The count of verdict `v` (its lowercase name).
    fn count(&self, v: &str) -> usize {
        VERDICTS
            .iter()
            .position(|x| x.as_str() == v)
            .map_or(0, |i| self.counts[i])
    }
}

/// A row of a count table: a role or a chapter.
#[derive(Debug, Clone)]
struct CountRow {
    label: String,
    counts: Counts,
}

/// A row of the table of cases.
#[derive(Debug, Clone)]
struct CaseRow {
    id: String,
    anchor: String,
    detailed: bool,
    mode: String,
    chapter: String,
    verdict: &'static str,
    requirements: Vec<ReqLink>,
    duration: String,
    reason: String,
    expectation: &'static str,
}

/// What a failure's message says, line by line (see [`crate::outcome::Failure::describe`]).
#[derive(Debug, Clone, Default)]
struct Message {
    requirement: Option<String>,
    expected: String,
    got: String,
    also: Vec<String>,
    notes: Vec<String>,
}

fn parse_message(message: &str, reason: &str) -> Message {
    let mut m = Message::default();
    let mut in_got = false;
    for line in message.lines() {
        if let Some(x) = line.strip_prefix("expected: ") {
            m.expected = x.to_string();
            in_got = false;
        } else if let Some(x) = line.strip_prefix("got: ") {
            m.got = x.to_string();
            in_got = true;
        } else if let Some(x) = line.strip_prefix("also: ") {
            m.also.push(x.to_string());
            in_got = false;
        } else if let Some((id, _)) = line
            .split_once(": ")
            .filter(|(id, text)| crate::requirements::lookup(id).is_some_and(|r| r.text == *text))
        {
            if m.requirement.is_none() {
                m.requirement = Some(id.to_string());
            }
            in_got = false;
        } else if in_got {
            m.got.push('\n');
            m.got.push_str(line);
        } else if !line.trim().is_empty() {
            m.notes.push(line.to_string());
        }
    }
    // The reason's `ID:` is the failure's requirement.
    if let Some((id, _)) = reason.split_once(": ") {
        if crate::requirements::lookup(id).is_some() {
            m.requirement = Some(id.to_string());
        }
    }
    if m.got.is_empty() && m.notes.is_empty() && !reason.is_empty() {
        m.notes.push(reason.to_string());
    }
    m
}

/// A failing, warning or timed-out case (or fuzz failure) in full.
#[derive(Debug, Clone)]
struct Detail {
    anchor: String,
    id: String,
    title: String,
    mode: String,
    chapter: String,
    verdict: &'static str,
    reason: String,
    requirement: Option<RequirementView>,
    cited: Vec<ReqLink>,
    expected: String,
    got: String,
    also: Vec<String>,
    notes: Vec<String>,
    replay: String,
    stderr: String,
    schedule: String,
    diagram: Option<Diagram>,
    no_diagram: String,
}

impl Detail {
    #[allow(clippy::too_many_arguments)]
    fn new(
        n: usize,
        id: &str,
        title: &str,
        mode: &str,
        cited: &[&str],
        verdict: Verdict,
        reason: &str,
        message: &str,
        recording: Option<&ReplayFile>,
        opts: &HtmlOptions,
    ) -> Detail {
        let m = parse_message(message, reason);
        let diagram = recording.map(|file| {
            diagram::diagram(
                &format!("d{n}"),
                file,
                &diagram::Failure {
                    requirement: m.requirement.as_deref(),
                    expected: &m.expected,
                    got: &m.got,
                    reason,
                },
            )
        });
        Detail {
            anchor: anchor(id),
            id: id.to_string(),
            title: title.to_string(),
            mode: mode.to_string(),
            chapter: case_chapter(cited),
            verdict: verdict.as_str(),
            reason: reason.to_string(),
            requirement: m
                .requirement
                .as_deref()
                .and_then(|r| RequirementView::new(r, opts)),
            cited: cited.iter().map(|r| ReqLink::new(r, opts)).collect(),
            expected: m.expected,
            got: m.got,
            also: m.also,
            notes: m.notes,
            replay: String::new(),
            stderr: String::new(),
            schedule: String::new(),
            diagram,
            no_diagram: if recording.is_some() {
                String::new()
            } else {
                "No exchange was recorded for this case: the subject could not be launched, or \
                 the harness failed before it talked to it."
                    .to_string()
            },
        }
    }
}

/// The page of a run.
#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage {
    title: String,
    generator: String,
    subjects: Vec<(String, String)>,
    spec_version: String,
    seed: u64,
    conformant: bool,
    exit_code: i32,
    strict: bool,
    totals: Counts,
    verdicts: Vec<&'static str>,
    by_role: Vec<CountRow>,
    by_chapter: Vec<CountRow>,
    chapters: Vec<(String, String)>,
    cases: Vec<CaseRow>,
    details: Vec<Detail>,
    notices: Vec<String>,
}

fn generator() -> String {
    format!(
        "rpcplugin-conformance {} (tests {}, specification {})",
        env!("CARGO_PKG_VERSION"),
        rpcplugin_codec::PROTOCOL,
        crate::requirements::spec_version()
    )
}

fn detailed(v: Verdict) -> bool {
    matches!(v, Verdict::Fail | Verdict::Warn | Verdict::Timeout)
}

fn expectation(c: &CaseResult) -> &'static str {
    match c.expectation {
        Some(Match::ExpectedFailure) => "expected failure",
        Some(Match::NowPassing) => "now passing: remove it from the expected-failure list",
        Some(Match::OtherReason) => "listed as an expected failure, with another reason",
        _ => "",
    }
}

fn render(page: &impl Template) -> Result<String, String> {
    page.render()
        .map_err(|e| format!("cannot render the HTML report: {e}"))
}

/// The HTML page of a run of the suite. Diagrams need the cases' recordings
/// ([`crate::runner::RunOptions::keep_recordings`]); a case without one says so.
pub fn report(report: &Report, opts: &HtmlOptions) -> Result<String, String> {
    let mut totals = Counts::default();
    let mut by_role: Vec<CountRow> = Vec::new();
    let mut by_chapter: Vec<(String, Counts)> = Vec::new();
    for c in &report.cases {
        totals.add(c.verdict);
        match by_role.iter_mut().find(|r| r.label == c.mode) {
            Some(r) => r.counts.add(c.verdict),
            None => {
                let mut counts = Counts::default();
                counts.add(c.verdict);
                by_role.push(CountRow {
                    label: c.mode.to_string(),
                    counts,
                });
            }
        }
        let chapter = case_chapter(c.requirements);
        match by_chapter.iter_mut().find(|(s, _)| *s == chapter) {
            Some((_, counts)) => counts.add(c.verdict),
            None => {
                let mut counts = Counts::default();
                counts.add(c.verdict);
                by_chapter.push((chapter, counts));
            }
        }
    }
    // Chapters in the specification's order, cases citing none last.
    by_chapter.sort_by_key(|(stem, _)| {
        spec::chapters()
            .iter()
            .position(|c| c.stem == stem)
            .unwrap_or(usize::MAX)
    });
    let chapters: Vec<(String, String)> = by_chapter
        .iter()
        .map(|(stem, _)| (stem.clone(), chapter_title(stem)))
        .collect();
    let cases = report
        .cases
        .iter()
        .map(|c| CaseRow {
            id: c.id.to_string(),
            anchor: anchor(c.id),
            detailed: detailed(c.verdict),
            mode: c.mode.to_string(),
            chapter: case_chapter(c.requirements),
            verdict: c.verdict.as_str(),
            requirements: c
                .requirements
                .iter()
                .map(|r| ReqLink::new(r, opts))
                .collect(),
            duration: format!("{} ms", c.duration_ms),
            reason: c.reason.clone(),
            expectation: expectation(c),
        })
        .collect();
    let details = report
        .cases
        .iter()
        .filter(|c| detailed(c.verdict))
        .enumerate()
        .map(|(n, c)| {
            let mut d = Detail::new(
                n,
                c.id,
                c.title,
                c.mode,
                c.requirements,
                c.verdict,
                &c.reason,
                &c.message,
                c.recording.as_deref(),
                opts,
            );
            d.replay = c.replay.clone().unwrap_or_default();
            d.stderr = c.stderr.clone();
            d
        })
        .collect();
    let s = &report.summary;
    let mut notices = Vec::new();
    if !s.now_passing.is_empty() {
        notices.push(format!(
            "Now passing (listed as expected failures): {}",
            s.now_passing.join(", ")
        ));
    }
    if !s.other_reason.is_empty() {
        notices.push(format!(
            "Failing with another reason than the listed one: {}",
            s.other_reason.join(", ")
        ));
    }
    for c in report.cases.iter().filter(|c| c.setup_error) {
        notices.push(format!(
            "Harness or setup error in {}: {}",
            c.id,
            c.message.lines().next().unwrap_or("")
        ));
    }
    let mut subjects = Vec::new();
    if let Some(p) = &report.subject.plugin {
        subjects.push(("plugin".to_string(), p.join(" ")));
    }
    if let Some(h) = &report.subject.host {
        subjects.push(("host driver".to_string(), h.join(" ")));
    }
    render(&ReportPage {
        title: format!(
            "rpcplugin conformance: {}",
            if s.conformant {
                "conformant"
            } else {
                "NOT conformant"
            }
        ),
        generator: generator(),
        subjects,
        spec_version: report.harness.spec_version.clone(),
        seed: report.seed,
        conformant: s.conformant,
        exit_code: s.exit_code,
        strict: s.strict,
        totals,
        verdicts: VERDICTS.iter().map(|v| v.as_str()).collect(),
        by_role,
        by_chapter: by_chapter
            .into_iter()
            .map(|(stem, counts)| CountRow {
                label: chapter_title(&stem),
                counts,
            })
            .collect(),
        chapters,
        cases,
        details,
        notices,
    })
}

/// The page of a fuzz run.
#[derive(Template)]
#[template(path = "fuzz.html")]
struct FuzzPage {
    title: String,
    generator: String,
    mode: String,
    subject: String,
    seed: u64,
    schedules: u64,
    exec_per_s: String,
    duration: String,
    details: Vec<Detail>,
}

/// The HTML page of a fuzz run: each failure with its requirement, shrunk schedule and the
/// diagram of its recorded exchange.
pub fn fuzz(report: &FuzzReport, opts: &HtmlOptions) -> Result<String, String> {
    let details = report
        .failures
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let id = format!("fuzz/{}/schedule-{}", report.mode, f.index);
            let cited: Vec<&str> = f.requirement.as_deref().into_iter().collect();
            let message = f.recording.as_ref().map_or("", |r| r.message.as_str());
            let mut d = Detail::new(
                n,
                &id,
                &format!(
                    "schedule {} (seed {}), shrunk from {} to {} step(s) in {} run(s)",
                    f.index, f.seed, f.steps, f.shrunk_steps, f.shrink_runs
                ),
                report.mode,
                &cited,
                f.verdict,
                &f.reason,
                message,
                f.recording.as_deref(),
                opts,
            );
            d.replay = f.replay.clone().unwrap_or_default();
            d.stderr = f
                .recording
                .as_ref()
                .map(|r| r.stderr.clone())
                .unwrap_or_default();
            d.schedule = serde_json::to_string_pretty(&f.schedule).unwrap_or_default();
            d
        })
        .collect();
    render(&FuzzPage {
        title: format!(
            "rpcplugin conformance fuzz {}: {} failure(s)",
            report.mode,
            report.failures.len()
        ),
        generator: generator(),
        mode: report.mode.to_string(),
        subject: report.subject.join(" "),
        seed: report.seed,
        schedules: report.schedules,
        exec_per_s: format!("{:.1}", report.exec_per_s),
        duration: format!("{:.1} s", report.duration_ms as f64 / 1000.0),
        details,
    })
}

/// A column of the self-test's grid.
#[derive(Debug, Clone)]
struct GridColumn {
    number: usize,
    name: String,
    conforming: bool,
    description: String,
    caught_by: String,
    duration: String,
}

/// A cell of the grid.
#[derive(Debug, Clone)]
struct GridCell {
    verdict: &'static str,
    symbol: &'static str,
    reason: String,
}

/// A row of the grid.
#[derive(Debug, Clone)]
struct GridRow {
    case: String,
    cells: Vec<Option<GridCell>>,
    unreached: String,
}

/// The grid of one mode.
#[derive(Debug, Clone)]
struct Grid {
    mode: String,
    columns: Vec<GridColumn>,
    rows: Vec<GridRow>,
}

/// The self-test's page.
#[derive(Template)]
#[template(path = "selftest.html")]
struct SelfTestPage {
    title: String,
    generator: String,
    grids: Vec<Grid>,
    problems: Vec<String>,
    mutants: usize,
    cases: usize,
    duration: String,
}

fn symbol(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "·",
        Verdict::Fail => "✗",
        Verdict::Timeout => "T",
        Verdict::Warn => "w",
        Verdict::Skipped => "s",
    }
}

/// The HTML page of the self-test: per mode, the grid case x subject, the subjects' legend,
/// and the rules' verdict.
pub fn self_test(result: &SelfTest, _opts: &HtmlOptions) -> Result<String, String> {
    let mut grids = Vec::new();
    for mode in ["plugin", "host"] {
        let cols: Vec<usize> = (0..result.columns.len())
            .filter(|&i| result.columns[i].mode == mode)
            .collect();
        let rows: Vec<GridRow> = result
            .rows
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| GridRow {
                case: r.case.to_string(),
                cells: cols
                    .iter()
                    .map(|&i| {
                        r.cells[i].as_ref().map(|c| GridCell {
                            verdict: c.verdict.as_str(),
                            symbol: symbol(c.verdict),
                            reason: c.reason.clone(),
                        })
                    })
                    .collect(),
                unreached: r.unreached.unwrap_or("").to_string(),
            })
            .collect();
        if cols.is_empty() || rows.is_empty() {
            continue;
        }
        grids.push(Grid {
            mode: mode.to_string(),
            columns: cols
                .iter()
                .enumerate()
                .map(|(n, &i)| {
                    let c = &result.columns[i];
                    GridColumn {
                        number: n + 1,
                        name: c.name.to_string(),
                        conforming: c.conforming,
                        description: c.description.to_string(),
                        caught_by: c
                            .caught_by
                            .iter()
                            .map(|(case, req)| format!("{case} ({req})"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        duration: format!("{:.1} s", c.duration_ms as f64 / 1000.0),
                    }
                })
                .collect(),
            rows,
        });
    }
    render(&SelfTestPage {
        title: format!(
            "rpcplugin conformance self-test: {}",
            if result.problems.is_empty() {
                "the suite proved its teeth".to_string()
            } else {
                format!("{} problem(s)", result.problems.len())
            }
        ),
        generator: generator(),
        grids,
        problems: result.problems.clone(),
        mutants: result.columns.iter().filter(|c| !c.conforming).count(),
        cases: result.rows.len(),
        duration: format!("{:.1} s", result.duration_ms as f64 / 1000.0),
    })
}

/// The HTML page of a bench run: the table of figures and, for each figure with a floor and
/// a distribution, a plot of the two ([`mod@bench`]).
pub fn bench(
    report: &crate::bench::results::BenchReport,
    _opts: &HtmlOptions,
) -> Result<String, String> {
    bench::page(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failures_message_splits_into_its_parts() {
        let text = crate::requirements::text("RPC-5");
        let message = format!(
            "the case did not finish within 5s\nRPC-5: {text}\nexpected: a response\ngot: none\nstill none\nalso: HS-2: more"
        );
        let m = parse_message(&message, "timeout: the case did not finish within 5s");
        assert_eq!(m.requirement.as_deref(), Some("RPC-5"));
        assert_eq!(m.expected, "a response");
        assert_eq!(m.got, "none\nstill none");
        assert_eq!(m.also, ["HS-2: more"]);
        assert_eq!(m.notes, ["the case did not finish within 5s"]);
    }
}
