//! Selecting and running cases, and the reports.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::Instant;

use serde::Serialize;

use crate::cases::{catalog, Case};
use crate::driver::{PluginCommand, PluginUnderTest};
use crate::outcome::{Outcome, Verdict};

/// The `schema` of a JSON report.
pub const REPORT_SCHEMA: &str = "rpcplugin-conformance-report/v1";

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The plugin to test.
    pub command: PluginCommand,
    /// Run only the cases whose id contains one of these (all when empty).
    pub cases: Vec<String>,
    /// Report the cases whose id contains one of these as skipped.
    pub skip: Vec<String>,
    /// How many cases run at once, each with its own plugin process.
    pub jobs: usize,
    /// Multiplies every timeout.
    pub timeout_scale: f64,
}

/// The result of one case.
#[derive(Debug, Clone, Serialize)]
pub struct CaseResult {
    /// The case's id.
    pub id: &'static str,
    /// The case's title.
    pub title: &'static str,
    /// The requirement ids it checks.
    pub requirements: &'static [&'static str],
    /// Its verdict.
    pub verdict: Verdict,
    /// Why it did not pass; empty for a pass.
    pub message: String,
    /// How long it took.
    pub duration_ms: u64,
    /// Whether the failure is a harness or setup error.
    #[serde(skip)]
    pub setup_error: bool,
}

/// Counts of the verdicts.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    /// Cases that passed.
    pub passed: usize,
    /// Cases that failed or timed out.
    pub failed: usize,
    /// Of those, the ones that timed out.
    pub timed_out: usize,
    /// Cases skipped.
    pub skipped: usize,
    /// Whether the plugin met every requirement checked.
    pub conformant: bool,
    /// The exit code of the run.
    pub exit_code: i32,
}

/// The results of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The schema, [`REPORT_SCHEMA`].
    pub schema: &'static str,
    /// The plugin's path and arguments.
    pub plugin: Vec<String>,
    /// The cases, in catalog order.
    pub cases: Vec<CaseResult>,
    /// The counts.
    pub summary: Summary,
}

/// Whether `case` is selected by the `--case` patterns (substring match; all when empty).
pub fn selected(case: &Case, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| case.id.contains(p.as_str()))
}

/// Runs one case against a freshly launched plugin.
pub fn run_case(case: &Case, command: &PluginCommand, scale: f64) -> CaseResult {
    let start = Instant::now();
    let timeout = case.timeout.mul_f64(scale);
    let outcome = match PluginUnderTest::launch(command, scale, timeout) {
        Err(e) => Outcome::error(format!("cannot launch the plugin: {e}")),
        Ok(mut plugin) => {
            let outcome = (case.run)(&mut plugin);
            match outcome {
                Outcome::Fail(f) if plugin.expired() && f.setup.is_none() => {
                    Outcome::Timeout(format!(
                        "the case did not finish within {timeout:?}\n{}",
                        f.describe()
                    ))
                }
                other => other,
            }
            // `plugin` is dropped here: killed and reaped.
        }
    };
    result(case, &outcome, start)
}

fn result(case: &Case, outcome: &Outcome, start: Instant) -> CaseResult {
    CaseResult {
        id: case.id,
        title: case.title,
        requirements: case.requirements,
        verdict: outcome.verdict(),
        message: outcome.message(),
        duration_ms: start.elapsed().as_millis() as u64,
        setup_error: outcome.is_setup_error(),
    }
}

/// Runs the selected cases, `jobs` at a time.
pub fn run(opts: &RunOptions) -> Report {
    let cases: Vec<&Case> = catalog()
        .iter()
        .filter(|c| selected(c, &opts.cases))
        .collect();
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let next = AtomicUsize::new(0);
    let jobs = opts.jobs.clamp(1, cases.len().max(1));
    thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let r = if opts.skip.iter().any(|p| case.id.contains(p.as_str())) {
                    result(
                        case,
                        &Outcome::Skipped("skipped by --skip".into()),
                        Instant::now(),
                    )
                } else {
                    run_case(case, &opts.command, opts.timeout_scale)
                };
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    let cases: Vec<CaseResult> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    let mut plugin = vec![opts.command.program.display().to_string()];
    plugin.extend(
        opts.command
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    Report::new(plugin, cases)
}

impl Report {
    /// A report of `cases`, with its summary.
    pub fn new(plugin: Vec<String>, cases: Vec<CaseResult>) -> Report {
        let mut summary = Summary::default();
        for c in &cases {
            match c.verdict {
                Verdict::Pass => summary.passed += 1,
                Verdict::Fail => summary.failed += 1,
                Verdict::Timeout => {
                    summary.failed += 1;
                    summary.timed_out += 1
                }
                Verdict::Skipped => summary.skipped += 1,
            }
        }
        summary.conformant = summary.failed == 0;
        summary.exit_code = if cases.iter().any(|c| c.setup_error) {
            2
        } else if summary.conformant {
            0
        } else {
            1
        };
        Report {
            schema: REPORT_SCHEMA,
            plugin,
            cases,
            summary,
        }
    }

    /// The exit code: 0 conformant, 1 not conformant, 2 harness or setup error.
    pub fn exit_code(&self) -> i32 {
        self.summary.exit_code
    }

    /// The human-readable report: one line per case, the failures' details, and the summary
    /// line `N passed, N failed`.
    pub fn human(&self) -> String {
        let mut out = format!("plugin: {}\n", self.plugin.join(" "));
        for c in &self.cases {
            out.push_str(&format!(
                "{:<8} {} ({} ms) [{}]\n",
                c.verdict.as_str(),
                c.id,
                c.duration_ms,
                c.requirements.join(", ")
            ));
            if c.verdict != Verdict::Pass && !c.message.is_empty() {
                for line in c.message.lines() {
                    out.push_str(&format!("    {line}\n"));
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
        out.push_str(&format!("{} passed, {} failed\n", s.passed, s.failed));
        if s.timed_out > 0 || s.skipped > 0 {
            out.push_str(&format!(
                "({} timed out, {} skipped)\n",
                s.timed_out, s.skipped
            ));
        }
        out
    }

    /// The JSON report (schema [`REPORT_SCHEMA`]).
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serializes")
    }
}
