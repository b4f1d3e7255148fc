//! Folding long exchanges: runs of rows that repeat, and the middle of a diagram still too
//! long; the folded arrows are kept for the list under the diagram.

use super::{span, Arrow, Fold, Mark, Row};

/// A run folds when its rows repeat at least this many times.
pub const MIN_PERIODS: usize = 4;
/// Longest period (in rows) of a repeating run that folds.
pub const MAX_PERIOD: usize = 3;
/// Rows a diagram draws at most, folds included; beyond, the middle is folded.
pub const MAX_ROWS: usize = 300;
/// Rows kept at the start of a diagram folded for length.
const HEAD_ROWS: usize = 150;
/// Rows kept at its end.
const TAIL_ROWS: usize = 100;
/// Rows kept on each side of a marked arrow.
const AROUND_MARKED: usize = 2;
/// Folded arrows listed under a diagram at most.
pub const MAX_LISTED: usize = 1000;

/// The shape of a row for folding; `None`: never folded (events, marked arrows).
fn shape(row: &Row) -> Option<&str> {
    match row {
        Row::Arrow(a) if a.mark == Mark::None => Some(&a.shape),
        _ => None,
    }
}

fn list(arrow: Arrow, folded: &mut Vec<Arrow>, unlisted: &mut usize) {
    if folded.len() < MAX_LISTED {
        folded.push(arrow);
    } else {
        *unlisted += 1;
    }
}

/// Folds runs of rows that repeat with a period of 1 to [`MAX_PERIOD`] rows, at least
/// [`MIN_PERIODS`] times: the first and last period stay, the rest is one fold.
pub(super) fn runs(rows: Vec<Row>, folded: &mut Vec<Arrow>, unlisted: &mut usize) -> Vec<Row> {
    let shapes: Vec<Option<String>> = rows.iter().map(|r| shape(r).map(String::from)).collect();
    let n = rows.len();
    // (start, period, periods) of every run that folds.
    let mut runs: Vec<(usize, usize, usize)> = Vec::new();
    let mut i = 0;
    while i < n {
        let mut best: Option<(usize, usize)> = None;
        for p in 1..=MAX_PERIOD {
            if i + p > n || shapes[i..i + p].iter().any(Option::is_none) {
                break;
            }
            let mut j = i + p;
            while j < n && shapes[j].is_some() && shapes[j] == shapes[j - p] {
                j += 1;
            }
            let periods = (j - i) / p;
            if periods >= MIN_PERIODS && best.is_none_or(|(_, bp)| periods * p > bp) {
                best = Some((p, periods * p));
            }
        }
        match best {
            Some((p, len)) => {
                runs.push((i, p, len / p));
                i += len;
            }
            None => i += 1,
        }
    }
    let mut out = Vec::with_capacity(n);
    let mut rows = rows.into_iter().enumerate().peekable();
    for (start, p, periods) in runs {
        while rows.peek().is_some_and(|(k, _)| *k < start + p) {
            out.push(rows.next().expect("peeked").1);
        }
        let hidden = (periods - 2) * p;
        let first_listed = folded.len() + *unlisted;
        let mut times = (u64::MAX, 0);
        for _ in 0..hidden {
            if let Some((_, Row::Arrow(a))) = rows.next() {
                times = (times.0.min(a.t_us), times.1.max(a.t_us));
                list(a, folded, unlisted);
            }
        }
        let what = if p == 1 {
            "the arrow above, repeated".to_string()
        } else {
            format!("the {p} arrows above, repeated {} more times", hidden / p)
        };
        out.push(Row::Fold(Fold {
            arrows: hidden,
            events: 0,
            text: format!("⋮ {hidden} arrows folded: {what}, {}", span(times)),
            first_listed,
        }));
    }
    out.extend(rows.map(|(_, r)| r));
    out
}

/// Folds the middle of a diagram longer than [`MAX_ROWS`] rows, keeping its start, its end
/// and the rows around every marked arrow.
pub(super) fn length(rows: Vec<Row>, folded: &mut Vec<Arrow>, unlisted: &mut usize) -> Vec<Row> {
    let n = rows.len();
    if n <= MAX_ROWS {
        return rows;
    }
    let mut keep = vec![false; n];
    for (i, k) in keep.iter_mut().enumerate() {
        *k = i < HEAD_ROWS || i >= n - TAIL_ROWS;
    }
    for (i, r) in rows.iter().enumerate() {
        if matches!(r, Row::Arrow(a) if a.mark != Mark::None) {
            for k in &mut keep[i.saturating_sub(AROUND_MARKED)..(i + AROUND_MARKED + 1).min(n)] {
                *k = true;
            }
        }
    }
    let mut out = Vec::new();
    let mut gap: Option<(Fold, (u64, u64))> = None;
    for (row, kept) in rows.into_iter().zip(keep) {
        if kept {
            if let Some((fold, _)) = gap.take() {
                out.push(Row::Fold(fold));
            }
            out.push(row);
            continue;
        }
        let (fold, times) = gap.get_or_insert_with(|| {
            (
                Fold {
                    arrows: 0,
                    events: 0,
                    text: String::new(),
                    first_listed: folded.len() + *unlisted,
                },
                (u64::MAX, 0),
            )
        });
        match row {
            Row::Arrow(a) => {
                fold.arrows += 1;
                *times = (times.0.min(a.t_us), times.1.max(a.t_us));
                list(a, folded, unlisted);
            }
            Row::Event(e) => {
                fold.events += 1;
                *times = (times.0.min(e.t_us), times.1.max(e.t_us));
            }
            Row::Fold(f) => {
                fold.arrows += f.arrows;
                fold.events += f.events;
            }
        }
        fold.text = format!(
            "⋮ {} arrows and {} events folded to keep the diagram short, {}",
            fold.arrows,
            fold.events,
            span(*times)
        );
    }
    if let Some((fold, _)) = gap {
        out.push(Row::Fold(fold));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(shape: &str, marked: bool) -> Row {
        Row::Arrow(Arrow {
            from_harness: true,
            t_us: 1,
            channel: "stream 2".into(),
            length: "3 B".into(),
            kind: "data",
            meaning: shape.into(),
            shape: shape.into(),
            mark: if marked {
                Mark::Violation("X-1".into(), "bad".into())
            } else {
                Mark::None
            },
        })
    }

    fn count(rows: &[Row]) -> (usize, usize) {
        let drawn = rows.iter().filter(|r| matches!(r, Row::Arrow(_))).count();
        let folded = rows
            .iter()
            .map(|r| match r {
                Row::Fold(f) => f.arrows,
                _ => 0,
            })
            .sum();
        (drawn, folded)
    }

    #[test]
    fn runs_fold_keeping_their_first_and_last_period() {
        let mut rows = vec![arrow("a", false)];
        for _ in 0..10 {
            rows.push(arrow("req", false));
            rows.push(arrow("resp", false));
        }
        rows.push(arrow("z", false));
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = runs(rows, &mut folded, &mut unlisted);
        // a, req, resp, [16 folded], req, resp, z
        assert_eq!(out.len(), 7);
        assert_eq!(count(&out), (6, 16));
        assert_eq!(folded.len(), 16);
        assert!(
            matches!(&out[3], Row::Fold(f) if f.text.contains("the 2 arrows above, repeated 8 more times"))
        );
    }

    #[test]
    fn a_marked_arrow_is_never_folded_and_short_runs_stay() {
        let mut rows: Vec<Row> = (0..3).map(|_| arrow("d", false)).collect();
        rows.push(arrow("d", true));
        rows.extend((0..3).map(|_| arrow("d", false)));
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = runs(rows, &mut folded, &mut unlisted);
        assert_eq!(count(&out), (7, 0));
    }

    #[test]
    fn long_diagrams_fold_their_middle_but_not_marked_arrows() {
        let mut rows: Vec<Row> = (0..1000).map(|i| arrow(&format!("s{i}"), false)).collect();
        rows[500] = arrow("bad", true);
        let (mut folded, mut unlisted) = (Vec::new(), 0);
        let out = length(rows, &mut folded, &mut unlisted);
        let (drawn, hidden) = count(&out);
        assert_eq!(drawn + hidden, 1000);
        assert_eq!(drawn, HEAD_ROWS + TAIL_ROWS + 2 * AROUND_MARKED + 1);
        assert!(out.len() <= MAX_ROWS);
        assert!(out
            .iter()
            .any(|r| matches!(r, Row::Arrow(a) if a.mark != Mark::None)));
    }
}
