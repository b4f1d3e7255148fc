//! The results of a run and their three renderings: the human report (coloured with
//! `anstyle`), the JSON report (schema [`REPORT_SCHEMA`], documented in `spec/harness.md`) and
//! JUnit XML (written by `quick-junit`).

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
    /// (`anstyle`); the binary asks for colour and lets `anstream` strip it where it does not
    /// belong (`--color`, `NO_COLOR`, not a terminal).
    pub fn human(&self, color: bool) -> String {
        use anstyle::{AnsiColor, Style};
        let paint = |verdict: Verdict, text: &str| -> String {
            if !color {
                return text.to_string();
            }
            let style = match verdict {
                Verdict::Pass => AnsiColor::Green.on_default(),
                Verdict::Fail | Verdict::Timeout => AnsiColor::Red.on_default().bold(),
                Verdict::Warn => AnsiColor::Yellow.on_default(),
                Verdict::Skipped => Style::new().dimmed(),
            };
            format!("{style}{text}{style:#}")
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

    /// The report as JUnit XML (written by `quick-junit`): one `testsuite` per mode, one
    /// `testcase` per case. Failures and time outs are `failure` (its `type` the verdict, its
    /// `message` the one-line reason, its text the full explanation and the replay file),
    /// setup errors `error`, skipped cases and expected failures `skipped`; warnings pass, with
    /// the finding in `system-out` (a `failure` under `--strict`). Each suite's properties
    /// name the subject, the seed and the specification version; each case's property
    /// `requirements` the ids it checks. Text XML cannot carry
    /// (control characters, ANSI escapes in a subject's standard error) is left out.
    pub fn junit(&self) -> String {
        use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
        let mut modes: Vec<&str> = Vec::new();
        for c in &self.cases {
            if !modes.contains(&c.mode) {
                modes.push(c.mode);
            }
        }
        let ms = std::time::Duration::from_millis;
        let mut junit = quick_junit::Report::new("rpcplugin-conformance");
        junit.set_time(ms(self.cases.iter().map(|c| c.duration_ms).sum()));
        for mode in modes {
            let mut suite = TestSuite::new(mode);
            let subject = match mode {
                "host" => &self.subject.host,
                _ => &self.subject.plugin,
            };
            suite.add_properties([
                Property::new("subject", subject.clone().unwrap_or_default().join(" ")),
                Property::new("seed", self.seed.to_string()),
                Property::new("spec_version", self.harness.spec_version.as_str()),
            ]);
            let mut suite_ms = 0;
            for c in self.cases.iter().filter(|c| c.mode == mode) {
                suite_ms += c.duration_ms;
                let mut body = c.message.clone();
                if let Some(replay) = &c.replay {
                    body.push_str(&format!("\nreplay: {replay}"));
                }
                let kind = self.junit_kind(c);
                let status = match kind {
                    "failure" => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                        s.set_message(c.reason.as_str())
                            .set_type(c.verdict.as_str())
                            .set_description(body.as_str());
                        s
                    }
                    "error" => {
                        let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                        s.set_message(c.reason.as_str())
                            .set_type("setup")
                            .set_description(body.as_str());
                        s
                    }
                    "skipped" => {
                        let mut s = TestCaseStatus::skipped();
                        s.set_message(if c.expectation == Some(Match::ExpectedFailure) {
                            format!("expected failure: {}", c.reason)
                        } else {
                            c.reason.clone()
                        });
                        s
                    }
                    _ => TestCaseStatus::success(),
                };
                let mut case = TestCase::new(c.id, status);
                case.set_classname(
                    c.id.rsplit_once('/')
                        .map_or(c.id, |(head, _)| head)
                        .replace('/', "."),
                )
                .set_time(ms(c.duration_ms))
                .add_property(Property::new("requirements", c.requirements.join(",")));
                if kind == "pass" && c.verdict == Verdict::Warn {
                    case.set_system_out(format!("warning: {body}"));
                }
                if kind != "pass" && !c.stderr.is_empty() {
                    case.set_system_err(c.stderr.as_str());
                }
                suite.add_test_case(case);
            }
            suite.set_time(ms(suite_ms));
            junit.add_test_suite(suite);
        }
        junit
            .to_string()
            .expect("a JUnit report serializes to memory")
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

#[cfg(test)]
mod tests {
    use super::*;
    use quick_junit::{NonSuccessKind, TestCaseStatus};

    fn case(id: &'static str, verdict: Verdict, reason: &str) -> CaseResult {
        CaseResult {
            id,
            mode: id.split('/').next().unwrap(),
            title: "a case",
            requirements: &["FRAME-4", "STREAM-9"],
            verdict,
            reason: reason.into(),
            message: if reason.is_empty() {
                String::new()
            } else {
                format!("{reason}\nexpected: this\ngot: that")
            },
            duration_ms: 1234,
            replay: None,
            expectation: None,
            setup_error: false,
            stderr: String::new(),
            recording: None,
        }
    }

    /// Every case, its kind, message, type, requirement ids and time survive into the XML
    /// (read back with quick-junit's own parser), in both suites.
    #[test]
    fn junit_carries_every_case_and_its_kind() {
        let mut failed = case("plugin/framing/bad", Verdict::Fail, "FRAME-4: bad < & \"");
        failed.replay = Some("replays/plugin__framing__bad.json".into());
        failed.stderr = "plugin says \u{1b}[31mno\u{1b}[0m\u{1}".into();
        let mut setup = case("host/start/setup", Verdict::Fail, "no driver");
        setup.setup_error = true;
        let mut expected = case("host/start/expected", Verdict::Fail, "FRAME-4: known");
        expected.expectation = Some(Match::ExpectedFailure);
        let cases = vec![
            failed,
            case("plugin/framing/ok", Verdict::Pass, ""),
            case("plugin/framing/slow", Verdict::Timeout, "no answer"),
            case(
                "plugin/streams/should",
                Verdict::Warn,
                "STREAM-9: not closed",
            ),
            setup,
            expected,
            case("host/start/skipped", Verdict::Skipped, "skipped by --skip"),
        ];
        let report = Report::new(Subjects::default(), 7, false, cases);
        let xml = report.junit();
        let parsed = quick_junit::Report::deserialize_from_str(&xml).expect(&xml);
        assert_eq!(
            (parsed.tests, parsed.failures, parsed.errors, parsed.skipped),
            (7, 2, 1, 2),
            "{xml}"
        );
        let suites: Vec<&str> = parsed.test_suites.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(suites, ["plugin", "host"]);
        let all: Vec<&quick_junit::TestCase> = parsed
            .test_suites
            .iter()
            .flat_map(|s| &s.test_cases)
            .collect();
        let ids: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(ids, report.cases.iter().map(|c| c.id).collect::<Vec<_>>());
        for c in &all {
            assert_eq!(c.time, Some(std::time::Duration::from_millis(1234)));
            assert_eq!(c.properties[0].value.as_str(), "FRAME-4,STREAM-9");
        }
        assert_eq!(all[0].classname.as_deref(), Some("plugin.framing"));
        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Failure,
            message,
            ty,
            description,
            ..
        } = &all[0].status
        else {
            panic!("{:?}", all[0].status)
        };
        assert_eq!(message.as_deref(), Some("FRAME-4: bad < & \""));
        assert_eq!(ty.as_deref(), Some("fail"));
        assert!(description
            .as_deref()
            .unwrap()
            .ends_with("got: that\nreplay: replays/plugin__framing__bad.json"));
        // ANSI escapes and control characters are left out of system-err.
        assert_eq!(
            all[0].system_err.as_deref(),
            Some("plugin says no"),
            "{xml}"
        );
        assert!(matches!(all[1].status, TestCaseStatus::Success { .. }));
        assert!(matches!(
            &all[2].status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, ty, .. }
                if ty.as_deref() == Some("timeout")
        ));
        // A warning passes, with the finding in system-out.
        assert!(matches!(all[3].status, TestCaseStatus::Success { .. }));
        assert!(all[3]
            .system_out
            .as_deref()
            .unwrap()
            .starts_with("warning: STREAM-9: not closed"));
        assert!(matches!(
            &all[4].status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Error, ty, .. }
                if ty.as_deref() == Some("setup")
        ));
        assert!(matches!(
            &all[5].status,
            TestCaseStatus::Skipped { message, .. }
                if message.as_deref() == Some("expected failure: FRAME-4: known")
        ));
        assert!(matches!(all[6].status, TestCaseStatus::Skipped { .. }));
        let props: Vec<(&str, &str)> = parsed.test_suites[0]
            .properties
            .iter()
            .map(|p| (p.name.as_str(), p.value.as_str()))
            .collect();
        assert_eq!(props[1], ("seed", "7"));
        assert_eq!(props[2].0, "spec_version");
    }

    /// Under --strict a warning is a failure of type `warn`.
    #[test]
    fn junit_makes_a_warning_a_failure_under_strict() {
        let cases = vec![case("plugin/streams/should", Verdict::Warn, "STREAM-9: x")];
        let report = Report::new(Subjects::default(), 1, true, cases);
        let parsed = quick_junit::Report::deserialize_from_str(&report.junit()).unwrap();
        assert!(matches!(
            &parsed.test_suites[0].test_cases[0].status,
            TestCaseStatus::NonSuccess { kind: NonSuccessKind::Failure, ty, .. }
                if ty.as_deref() == Some("warn")
        ));
    }
}
