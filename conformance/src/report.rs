//! The results of a run and their three renderings: the human report, the JSON report (schema
//! [`REPORT_SCHEMA`], documented in `spec/harness.md`) and JUnit XML.

use serde::Serialize;

use crate::expect::Match;
use crate::outcome::Verdict;

/// The `schema` of a JSON report.
pub const REPORT_SCHEMA: &str = "rpcplugin-conformance-report/v1";

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: &'static str,
    /// Who it tests: `plugin`.
    pub mode: &'static str,
    /// The case's title.
    pub title: &'static str,
    /// The requirement ids it checks.
    pub requirements: &'static [&'static str],
    /// Its verdict.
    pub verdict: Verdict,
    /// Why it did not pass, in one line (`ID: what happened`); empty for a pass.
    pub reason: String,
    /// The full explanation: the requirement's text, what was expected, what happened.
    pub message: String,
    /// How long it took.
    pub duration_ms: u64,
    /// The replay file written for it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<String>,
    /// How it compares with the expected-failure list, when one was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expectation: Option<Match>,
    /// Whether the failure is a harness or setup error.
    #[serde(skip)]
    pub setup_error: bool,
    /// The subject's standard error, for JUnit's `system-err`.
    #[serde(skip)]
    pub stderr: String,
    /// The recorded exchange (a replay file's content), kept for the HTML report's diagrams
    /// when [`crate::runner::RunOptions::keep_recordings`] is set and the case did not pass.
    #[serde(skip)]
    pub recording: Option<Box<crate::transcript::ReplayFile>>,
}

impl CaseResult {
    /// Whether the case makes the run fail: a failure or time out that the expected-failure
    /// list does not expect, a listed case that passes or fails for another reason, and under
    /// `strict` a warning.
    pub fn counts_as_failure(&self, strict: bool) -> bool {
        match self.expectation {
            Some(Match::ExpectedFailure) => false,
            Some(Match::NowPassing | Match::OtherReason) => true,
            Some(Match::NotListed) | None => match self.verdict {
                Verdict::Fail | Verdict::Timeout => true,
                Verdict::Warn => strict,
                Verdict::Pass | Verdict::Skipped => false,
            },
        }
    }
}

/// Counts of the verdicts.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed (time outs included).
    pub failed: usize,
    /// Of those, the ones that timed out.
    pub timed_out: usize,
    /// Cases that found a recommendation (SHOULD) not followed.
    pub warned: usize,
    /// Cases skipped.
    pub skipped: usize,
    /// Failures the expected-failure list expects (with their reason).
    pub expected_failures: usize,
    /// Listed cases that passed: the list is out of date.
    pub now_passing: Vec<&'static str>,
    /// Listed cases that failed for another reason than the listed one.
    pub other_reason: Vec<&'static str>,
    /// Whether `--strict` was given (warnings count as failures).
    pub strict: bool,
    /// Whether the subject met every requirement checked (apart from expected failures).
    pub conformant: bool,
    /// The exit code of the run: 0 conformant, 1 not conformant, 2 harness or setup error.
    pub exit_code: i32,
}

/// What a run tested.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Subjects {
    /// The plugin executable and its arguments, if plugin cases ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Vec<String>>,
    /// The host's driver and its arguments, if host cases ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<Vec<String>>,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The schema, [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// The harness and the specification version.
    pub harness: crate::transcript::HarnessInfo,
    /// The subjects: the plugin and the host's driver, each with its arguments.
    pub subject: Subjects,
    /// The run's seed.
    pub seed: u64,
    /// The cases, in catalog order.
    pub cases: Vec<CaseResult>,
    /// The counts.
    pub summary: Summary,
}

impl Report {
    /// A report of `cases`, with its summary.
    pub fn new(subject: Subjects, seed: u64, strict: bool, cases: Vec<CaseResult>) -> Report {
        let mut summary = Summary {
            strict,
            ..Summary::default()
        };
        for c in &cases {
            match c.verdict {
                Verdict::Pass => summary.passed += 1,
                Verdict::Fail => summary.failed += 1,
                Verdict::Timeout => {
                    summary.failed += 1;
                    summary.timed_out += 1
                }
                Verdict::Warn => summary.warned += 1,
                Verdict::Skipped => summary.skipped += 1,
            }
            match c.expectation {
                Some(Match::ExpectedFailure) => summary.expected_failures += 1,
                Some(Match::NowPassing) => summary.now_passing.push(c.id),
                Some(Match::OtherReason) => summary.other_reason.push(c.id),
                _ => {}
            }
        }
        summary.conformant = !cases.iter().any(|c| c.counts_as_failure(strict));
        summary.exit_code = if cases.iter().any(|c| c.setup_error) {
            2
        } else if summary.conformant {
            0
        } else {
            1
        };
        Report {
            schema: REPORT_SCHEMA,
            harness: crate::transcript::HarnessInfo::current(),
            subject,
            seed,
            cases,
            summary,
        }
    }

    /// The exit code: 0 conformant, 1 not conformant, 2 harness or setup error.
    pub fn exit_code(&self) -> i32 {
        self.summary.exit_code
    }

    /// The human-readable report: one line per case, the details of every case that did not
    /// pass, and the summary line `N passed, N failed`. With `color`, verdicts are coloured
    /// with ANSI escapes.
    pub fn human(&self, color: bool) -> String {
        let paint = |verdict: Verdict, text: &str| -> String {
            if !color {
                return text.to_string();
            }
            let code = match verdict {
                Verdict::Pass => "32",
                Verdict::Fail | Verdict::Timeout => "31;1",
                Verdict::Warn => "33",
                Verdict::Skipped => "2",
            };
            format!("\x1b[{code}m{text}\x1b[0m")
        };
        let mut out = String::new();
        if let Some(plugin) = &self.subject.plugin {
            out.push_str(&format!("plugin: {}\n", plugin.join(" ")));
        }
        if let Some(host) = &self.subject.host {
            out.push_str(&format!("host driver: {}\n", host.join(" ")));
        }
        for c in &self.cases {
            let expect = match c.expectation {
                Some(Match::ExpectedFailure) => " (expected failure)",
                Some(Match::NowPassing) => {
                    " (NOW PASSING: remove it from the expected-failure list)"
                }
                Some(Match::OtherReason) => " (listed as an expected failure, with another reason)",
                _ => "",
            };
            out.push_str(&format!(
                "{} {} ({} ms) [{}]{expect}\n",
                paint(c.verdict, &format!("{:<8}", c.verdict.as_str())),
                c.id,
                c.duration_ms,
                c.requirements.join(", ")
            ));
            if c.verdict != Verdict::Pass && !c.message.is_empty() {
                for line in c.message.lines() {
                    out.push_str(&format!("    {line}\n"));
                }
                if let Some(replay) = &c.replay {
                    out.push_str(&format!("    replay: {replay}\n"));
                }
            }
        }
        for c in self.cases.iter().filter(|c| c.setup_error) {
            out.push_str(&format!(
                "error: {}: {}\n",
                c.id,
                c.message.lines().next().unwrap_or("")
            ));
        }
        let s = &self.summary;
        if !s.now_passing.is_empty() {
            out.push_str(&format!(
                "now passing (listed as expected failures): {}\n",
                s.now_passing.join(", ")
            ));
        }
        if !s.other_reason.is_empty() {
            out.push_str(&format!(
                "failing with another reason than the listed one: {}\n",
                s.other_reason.join(", ")
            ));
        }
        out.push_str(&format!("{} passed, {} failed\n", s.passed, s.failed));
        let mut more = Vec::new();
        if s.timed_out > 0 {
            more.push(format!("{} timed out", s.timed_out));
        }
        if s.warned > 0 {
            more.push(format!(
                "{} warning(s){}",
                s.warned,
                if s.strict {
                    ", failures under --strict"
                } else {
                    ""
                }
            ));
        }
        if s.skipped > 0 {
            more.push(format!("{} skipped", s.skipped));
        }
        if s.expected_failures > 0 {
            more.push(format!("{} expected failure(s)", s.expected_failures));
        }
        if !more.is_empty() {
            out.push_str(&format!("({})\n", more.join(", ")));
        }
        out.push_str(if s.conformant {
            "conformant\n"
        } else {
            "NOT conformant\n"
        });
        out
    }

    /// The JSON report (schema [`REPORT_SCHEMA`]).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }

    /// The report as JUnit XML: one `testsuite` per mode, one `testcase` per case. Failures
    /// and time outs are `failure`, setup errors `error`, skipped cases and expected failures
    /// `skipped`; warnings pass, with the finding in `system-out` (a `failure` under
    /// `--strict`).
    pub fn junit(&self) -> String {
        let mut modes: Vec<&str> = Vec::new();
        for c in &self.cases {
            if !modes.contains(&c.mode) {
                modes.push(c.mode);
            }
        }
        let seconds = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
        let total_ms: u64 = self.cases.iter().map(|c| c.duration_ms).sum();
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        let kinds: Vec<(&CaseResult, &str)> =
            self.cases.iter().map(|c| (c, self.junit_kind(c))).collect();
        let count = |mode: Option<&str>, kind: &str| {
            kinds
                .iter()
                .filter(|(c, k)| *k == kind && mode.is_none_or(|m| c.mode == m))
                .count()
        };
        out.push_str(&format!(
            "<testsuites name=\"rpcplugin-conformance\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">\n",
            self.cases.len(),
            count(None, "failure"),
            count(None, "error"),
            count(None, "skipped"),
            seconds(total_ms)
        ));
        for mode in modes {
            let cases: Vec<&(&CaseResult, &str)> =
                kinds.iter().filter(|(c, _)| c.mode == mode).collect();
            let ms: u64 = cases.iter().map(|(c, _)| c.duration_ms).sum();
            out.push_str(&format!(
                "  <testsuite name=\"{mode}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">\n",
                cases.len(),
                count(Some(mode), "failure"),
                count(Some(mode), "error"),
                count(Some(mode), "skipped"),
                seconds(ms)
            ));
            out.push_str(&format!(
                "    <properties><property name=\"subject\" value=\"{}\"/><property name=\"seed\" value=\"{}\"/><property name=\"spec_version\" value=\"{}\"/></properties>\n",
                xml(&match mode {
                    "host" => self.subject.host.clone(),
                    _ => self.subject.plugin.clone(),
                }
                .unwrap_or_default()
                .join(" ")),
                self.seed,
                xml(&self.harness.spec_version)
            ));
            for (c, kind) in cases {
                let class =
                    c.id.rsplit_once('/')
                        .map_or(c.id, |(head, _)| head)
                        .replace('/', ".");
                out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\">\n",
                    xml(&class),
                    xml(c.id),
                    seconds(c.duration_ms)
                ));
                let mut body = c.message.clone();
                if let Some(replay) = &c.replay {
                    body.push_str(&format!("\nreplay: {replay}"));
                }
                match *kind {
                    "failure" => out.push_str(&format!(
                        "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                        xml(&c.reason),
                        c.verdict.as_str(),
                        xml(&body)
                    )),
                    "error" => out.push_str(&format!(
                        "      <error message=\"{}\" type=\"setup\">{}</error>\n",
                        xml(&c.reason),
                        xml(&body)
                    )),
                    "skipped" => out.push_str(&format!(
                        "      <skipped message=\"{}\"/>\n",
                        xml(&if c.expectation == Some(Match::ExpectedFailure) {
                            format!("expected failure: {}", c.reason)
                        } else {
                            c.reason.clone()
                        })
                    )),
                    _ => {
                        if c.verdict == Verdict::Warn {
                            out.push_str(&format!(
                                "      <system-out>warning: {}</system-out>\n",
                                xml(&body)
                            ));
                        }
                    }
                }
                if *kind != "pass" && !c.stderr.is_empty() {
                    out.push_str(&format!(
                        "      <system-err>{}</system-err>\n",
                        xml(&c.stderr)
                    ));
                }
                out.push_str("    </testcase>\n");
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        out
    }

    fn junit_kind(&self, c: &CaseResult) -> &'static str {
        if c.setup_error {
            return "error";
        }
        if c.expectation == Some(Match::ExpectedFailure) || c.verdict == Verdict::Skipped {
            return "skipped";
        }
        if c.counts_as_failure(self.summary.strict) {
            "failure"
        } else {
            "pass"
        }
    }
}

/// Escapes text for XML attributes and content; drops characters XML 1.0 cannot carry.
fn xml(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' | '\r' | '\t' => out.push(ch),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}
