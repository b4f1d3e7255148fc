//! Shrinking a failing schedule ([`shrink`]): delta debugging over its steps, keeping the
//! requirement it breaks; and what counts as a failure.

use crate::outcome::{Outcome, Verdict};

use super::run::{run_schedule, Ran, Subject};
use super::schedule::Schedule;

/// The requirement a failure breaks (`None`: not a failure, or a harness or setup error).
pub(super) fn requirement(o: &Outcome) -> Option<&'static str> {
    match o {
        Outcome::Fail(f) => f.requirement,
        _ => None,
    }
}

/// Whether an outcome counts as a failure to shrink and report.
pub(super) fn failed(o: &Outcome) -> bool {
    matches!(
        o.verdict(),
        Verdict::Fail | Verdict::Timeout | Verdict::Warn
    )
}

/// Shrinks a failing schedule: removes chunks of steps (halves, quarters, ... single steps)
/// and tries the simpler variants, keeping a change when the schedule still fails with the
/// same requirement; at most `budget` runs.
pub fn shrink(
    subject: &Subject,
    schedule: Schedule,
    first: Ran,
    seed: u64,
    scale: f64,
    budget: usize,
) -> (Schedule, Ran, usize) {
    let want = requirement(&first.outcome);
    let mut best = (schedule, first);
    let mut runs = 0;
    let still = |ran: &Ran| failed(&ran.outcome) && requirement(&ran.outcome) == want;
    let mut chunk = best.0.len().div_ceil(2).max(1);
    while runs < budget && best.0.len() > 0 {
        let mut changed = false;
        let mut from = 0;
        while from < best.0.len() && runs < budget {
            let to = (from + chunk).min(best.0.len());
            let candidate = best.0.without(from, to);
            runs += 1;
            let ran = run_schedule(subject, &candidate, seed, scale);
            if still(&ran) {
                best = (candidate, ran);
                changed = true;
            } else {
                from = to;
            }
        }
        if !changed {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    for candidate in best.0.simpler() {
        if runs >= budget {
            break;
        }
        runs += 1;
        let ran = run_schedule(subject, &candidate, seed, scale);
        if still(&ran) {
            best = (candidate, ran);
        }
    }
    (best.0, best.1, runs)
}
