//! Expected-failure lists (`--expect-fail FILE`), with the strict semantics of protobuf's
//! conformance runner: a listed case must fail, and with a reason that starts with the listed
//! prefix; a listed case that passes, or fails for another reason, fails the run.
//!
//! The file has one case per line: the case id, then optionally white space and the prefix of
//! the expected one-line reason (`FRAME-8: its output is still open`). Blank lines and lines
//! starting with `#` are ignored. `--update-expect-fail` rewrites the file from a run.

use std::collections::BTreeMap;
use std::path::Path;

use crate::cases::find;

/// What a list says of one case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The reason must start with this (empty: any reason).
    pub prefix: String,
    /// The line it came from (1-based).
    pub line: usize,
}

/// A parsed expected-failure list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExpectList {
    /// By case id.
    pub cases: BTreeMap<String, Expectation>,
}

/// How a case's result compares with the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Not listed.
    NotListed,
    /// Listed, and it failed with the listed reason: not counted as a failure.
    ExpectedFailure,
    /// Listed, but it passed: the list is out of date, and the run fails.
    NowPassing,
    /// Listed, but it failed with another reason: the run fails.
    OtherReason,
}

impl ExpectList {
    /// Parses the text of a list; unknown case ids and repeated ids are errors.
    pub fn parse(text: &str) -> Result<ExpectList, String> {
        let mut cases = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (id, prefix) = match line.split_once(char::is_whitespace) {
                Some((id, rest)) => (id, rest.trim()),
                None => (line, ""),
            };
            if find(id).is_none() {
                return Err(format!(
                    "line {}: {id:?} is not a case id (see `rpcplugin-conformance list`)",
                    i + 1
                ));
            }
            let old = cases.insert(
                id.to_string(),
                Expectation {
                    prefix: prefix.to_string(),
                    line: i + 1,
                },
            );
            if let Some(old) = old {
                return Err(format!(
                    "line {}: {id} is listed already on line {}",
                    i + 1,
                    old.line
                ));
            }
        }
        Ok(ExpectList { cases })
    }

    /// Reads and parses a list.
    pub fn read(path: &Path) -> Result<ExpectList, String> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            format!(
                "cannot read the expected-failure list {}: {e}",
                path.display()
            )
        })?;
        ExpectList::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// How a case with this id and outcome compares with the list. `failed` is whether the
    /// case failed or timed out; `reason` its one-line reason.
    pub fn check(&self, id: &str, failed: bool, reason: &str) -> Match {
        match self.cases.get(id) {
            None => Match::NotListed,
            Some(_) if !failed => Match::NowPassing,
            Some(e) if reason.starts_with(&e.prefix) => Match::ExpectedFailure,
            Some(_) => Match::OtherReason,
        }
    }

    /// The text of a list of `failures` (case id and reason), as `--update-expect-fail`
    /// writes it.
    pub fn render(failures: &[(String, String)]) -> String {
        let mut s = String::from(
            "# Expected failures of rpcplugin-conformance: one case id per line, then the start\n\
             # of its expected reason. Written by --update-expect-fail; edit the reasons down to\n\
             # the part that must stay the same.\n",
        );
        for (id, reason) in failures {
            s.push_str(id);
            if !reason.is_empty() {
                s.push(' ');
                s.push_str(reason);
            }
            s.push('\n');
        }
        s
    }
}
