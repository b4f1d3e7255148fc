//! What a case finds: [`Outcome`], [`Failure`] and the reported [`Verdict`].

use serde::Serialize;

/// A requirement the plugin did not meet, or a harness or setup error.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    /// The requirement id, such as `HS-1`; `None` for a harness or setup error.
    pub requirement: Option<&'static str>,
    /// What the harness expected.
    pub expected: String,
    /// What happened instead.
    pub got: String,
    /// Set when the failure is a harness or setup error (the plugin could not be launched,
    /// crashed before the handshake, or the harness itself failed): the run then exits with 2.
    pub setup: Option<String>,
    /// The plugin's standard error, as far as it was captured.
    pub stderr: String,
    /// Further violations seen while the case ran (by the harness's observer of the plugin's
    /// output), each as `ID: text`.
    pub also: Vec<String>,
}

impl Failure {
    /// A failure of `requirement`.
    pub fn new(
        requirement: &'static str,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Failure {
            requirement: Some(requirement),
            expected: expected.into(),
            got: got.into(),
            ..Failure::default()
        }
    }

    /// One paragraph: the requirement id, its text, what was expected and what happened.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        if let Some(setup) = &self.setup {
            s.push_str(&format!("setup error: {setup}\n"));
        }
        if let Some(id) = self.requirement {
            s.push_str(&format!("{id}: {}\n", crate::requirements::text(id)));
        }
        if !self.expected.is_empty() {
            s.push_str(&format!("expected: {}\n", self.expected));
        }
        s.push_str(&format!("got: {}", self.got));
        for more in &self.also {
            s.push_str(&format!("\nalso: {more}"));
        }
        s
    }

    /// One line: `ID: what happened`, or `setup error: ...`.
    pub fn reason(&self) -> String {
        match (&self.setup, self.requirement) {
            (Some(setup), _) => format!("setup error: {setup}"),
            (None, Some(id)) => format!("{id}: {}", self.got),
            (None, None) => self.got.clone(),
        }
    }

    /// Whether the requirement broken is a recommendation (SHOULD, RECOMMENDED), which makes
    /// the case a warning rather than a failure.
    pub fn is_recommendation(&self) -> bool {
        self.setup.is_none()
            && self.requirement.is_some_and(|id| {
                crate::requirements::lookup(id).is_some_and(|r| {
                    matches!(
                        r.level.as_str(),
                        "SHOULD" | "SHOULD NOT" | "RECOMMENDED" | "NOT RECOMMENDED"
                    )
                })
            })
    }
}

/// What running one case found.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The plugin met every requirement the case checks.
    Pass,
    /// It did not, or the case could not be run.
    Fail(Box<Failure>),
    /// The case's own deadline passed before it could decide; the text says where.
    Timeout(String),
    /// The case was not run; the text says why.
    Skipped(String),
}

impl Outcome {
    /// A failure.
    pub fn fail(failure: Failure) -> Outcome {
        Outcome::Fail(Box::new(failure))
    }

    /// A harness or setup error.
    pub fn error(what: impl Into<String>) -> Outcome {
        let what = what.into();
        Outcome::Fail(Box::new(Failure {
            requirement: None,
            expected: String::new(),
            got: what.clone(),
            setup: Some(what),
            ..Failure::default()
        }))
    }

    /// The verdict this outcome is reported as.
    pub fn verdict(&self) -> Verdict {
        match self {
            Outcome::Pass => Verdict::Pass,
            Outcome::Fail(f) if f.is_recommendation() => Verdict::Warn,
            Outcome::Fail(_) => Verdict::Fail,
            Outcome::Timeout(_) => Verdict::Timeout,
            Outcome::Skipped(_) => Verdict::Skipped,
        }
    }

    /// A human-readable explanation; empty for a pass.
    pub fn message(&self) -> String {
        match self {
            Outcome::Pass => String::new(),
            Outcome::Fail(f) => f.describe(),
            Outcome::Timeout(t) | Outcome::Skipped(t) => t.clone(),
        }
    }

    /// One line: why the case did not pass (empty for a pass); what `--expect-fail` lists
    /// match against.
    pub fn reason(&self) -> String {
        match self {
            Outcome::Pass => String::new(),
            Outcome::Fail(f) => f.reason(),
            Outcome::Timeout(t) => format!("timeout: {}", t.lines().next().unwrap_or("")),
            Outcome::Skipped(t) => format!("skipped: {t}"),
        }
    }

    /// Whether this is a harness or setup error.
    pub fn is_setup_error(&self) -> bool {
        matches!(self, Outcome::Fail(f) if f.setup.is_some())
    }
}

/// The verdict of a case in a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Met.
    Pass,
    /// Not met (or a setup error, see [`Failure::setup`]).
    Fail,
    /// A recommendation (SHOULD) not followed: reported, but the plugin may still conform
    /// (`--strict` counts it as a failure).
    Warn,
    /// The case's deadline passed.
    Timeout,
    /// Not run.
    Skipped,
}

impl Verdict {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Warn => "warn",
            Verdict::Timeout => "timeout",
            Verdict::Skipped => "skipped",
        }
    }
}
