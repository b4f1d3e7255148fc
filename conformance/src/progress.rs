//! [`Progress`]: the one progress mechanism of `run`, `fuzz` and `self-test` (drawn by
//! `indicatif` on standard error). While work runs, a single line is redrawn in place (a
//! count, with a total when there is one, and a message); lines worth keeping (a self-test
//! subject done, a fuzz failure found) are printed above it. Where standard error is not a
//! terminal, no line is drawn and only those lines are written, one per line. Progress says
//! nothing about verdicts: the reports do (no spec requirement is checked here).

use std::borrow::Cow;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress line on standard error, shared by the threads of one run; a disabled one does
/// nothing.
#[derive(Debug, Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress line when `enabled`: `[done/total] message` with a `total`, `message` alone
    /// without one. Drawn only where standard error is a terminal.
    pub fn new(enabled: bool, total: Option<u64>) -> Progress {
        if !enabled {
            return Progress { bar: None };
        }
        let template = if total.is_some() {
            "[{pos}/{len}] {wide_msg}"
        } else {
            "{wide_msg}"
        };
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Progress { bar: Some(bar) }
    }

    /// Replaces the message of the line.
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message);
        }
    }

    /// Counts one piece of work done.
    pub fn inc(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }

    /// Prints `line` on standard error: above the progress line on a terminal, as a line of
    /// its own elsewhere.
    pub fn println(&self, line: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            if bar.is_hidden() {
                eprintln!("{}", line.as_ref());
            } else {
                bar.println(line);
            }
        }
    }

    /// Clears the progress line; the lines printed above it stay.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
