//! The fuzz run's report ([`FuzzReport`], schema [`FUZZ_SCHEMA`]): the failures found
//! ([`Found`], each shrunk, with its replay file), for a terminal or as JSON, and the exit code.

use serde::Serialize;

use crate::outcome::Verdict;
use crate::transcript::ReplayFile;

use super::schedule::Schedule;

/// The schema of the fuzz report (`--format json`).
pub const FUZZ_SCHEMA: &str = "rpcplugin-conformance-fuzz/v1";

/// A failure the fuzzer found, shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// Which schedule of the run (0-based).
    pub index: u64,
    /// Its seed.
    pub seed: u64,
    /// The verdict of the shrunk schedule.
    pub verdict: Verdict,
    /// The requirement broken (`None`: a harness or setup error).
    pub requirement: Option<String>,
    /// The shrunk schedule's reason.
    pub reason: String,
    /// Steps before shrinking.
    pub steps: usize,
    /// Steps after.
    pub shrunk_steps: usize,
    /// How many runs shrinking took.
    pub shrink_runs: usize,
    /// The shrunk schedule.
    pub schedule: Schedule,
    /// Its replay file, when one was written.
    pub replay: Option<String>,
    /// The shrunk schedule's recorded exchange (the replay file's content), for the HTML
    /// report's diagram.
    #[serde(skip)]
    pub recording: Option<Box<ReplayFile>>,
}

/// The fuzz run's report.
#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    /// [`FUZZ_SCHEMA`].
    pub schema: &'static str,
    /// `plugin` or `host`.
    pub mode: &'static str,
    /// The subject's command line.
    pub subject: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// Schedules run (shrinking runs not counted).
    pub schedules: u64,
    /// Schedules per second.
    pub exec_per_s: f64,
    /// The failures found, shrunk.
    pub failures: Vec<Found>,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
}

impl FuzzReport {
    /// 0: no failure; 1: a requirement broken; 2: only harness or setup errors.
    pub fn exit_code(&self) -> i32 {
        if self.failures.iter().any(|f| f.requirement.is_some()) {
            1
        } else if self.failures.is_empty() {
            0
        } else {
            2
        }
    }

    /// The report for a terminal.
    pub fn human(&self) -> String {
        let mut out = format!(
            "fuzz {}: {} schedule(s) from seed {} in {:.1} s ({:.1} exec/s), {} failure(s)\n",
            self.mode,
            self.schedules,
            self.seed,
            self.duration_ms as f64 / 1000.0,
            self.exec_per_s,
            self.failures.len()
        );
        for f in &self.failures {
            out.push_str(&format!(
                "\n{} schedule {} (seed {}): {}\n  shrunk from {} to {} step(s) in {} run(s): {}\n",
                f.verdict.as_str().to_uppercase(),
                f.index,
                f.seed,
                f.reason,
                f.steps,
                f.shrunk_steps,
                f.shrink_runs,
                serde_json::to_string(&f.schedule).unwrap_or_default()
            ));
            if let Some(requirement) = &f.requirement {
                if let Some(r) = crate::requirements::lookup(requirement) {
                    out.push_str(&format!("  {requirement}: {}\n", r.text));
                }
            }
            if let Some(path) = &f.replay {
                out.push_str(&format!("  replay: rpcplugin-conformance replay {path}\n"));
            }
        }
        out
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fuzz report serializes")
    }
}
