//! The plot of a bench figure's distribution against its floor's ([`Plot::cdf`]): the empirical
//! cumulative distribution of each ([`crate::bench::results::Summary::distribution`]) on one
//! logarithmic value axis, drawn as steps (exactly the empirical distribution when every sample
//! was kept, and a staircase through the kept ranks otherwise, which passes through the median
//! either way), worked out here as coordinates (axes and ticks, one polyline per series, its
//! median marked, a legend) which `conformance/templates/bench.html` draws as an
//! inline SVG, readable without JavaScript. Nothing here measures or judges: the same summaries
//! give the same plot.

use crate::bench::results::{shown, Summary};

/// The drawing's width, in SVG user units.
const WIDTH: f64 = 760.0;
/// The plot area's edges.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 736.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 226.0;
/// Below the plot area: tick labels, the axis title, then one legend row per series.
const LEGEND_TOP: f64 = 292.0;
const LEGEND_ROW: f64 = 22.0;
/// The narrowest value range drawn, as a factor from its smallest to its largest value.
const MIN_SPAN: f64 = 2.5;

/// A point in SVG user units, rounded to a tenth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// From the left.
    pub x: f64,
    /// From the top.
    pub y: f64,
}

/// A tick of an axis, with its grid line.
#[derive(Debug, Clone, PartialEq)]
pub struct Tick {
    /// Where, along its axis (x for the value axis, y for the fraction axis).
    pub at: f64,
    /// Its label; empty for a minor grid line.
    pub label: String,
}

/// One distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// `subject` or `floor`: the class that styles it, and the test's handle on it.
    pub key: &'static str,
    /// What it is, for the legend.
    pub name: String,
    /// The polyline: from the left edge at 0, up the distribution in steps (up at each of its
    /// points, level between), to the right edge at 1.
    pub points: Vec<Point>,
    /// Where its median sits (on the 50% line).
    pub median: Point,
    /// The median as the table shows it.
    pub median_text: String,
    /// The p99 as the table shows it; empty for a figure without one (a rate).
    pub p99_text: String,
    /// How many samples.
    pub samples: usize,
    /// The baseline of its legend row.
    pub legend_y: f64,
}

/// A plot: two cumulative distributions on a logarithmic value axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// The figure element's id.
    pub id: String,
    /// The drawing's size (its viewBox).
    pub width: f64,
    /// See `width`.
    pub height: f64,
    /// The plot area.
    pub left: f64,
    /// See `left`.
    pub right: f64,
    /// See `left`.
    pub top: f64,
    /// See `left`.
    pub bottom: f64,
    /// Ticks of the value axis (x).
    pub x_ticks: Vec<Tick>,
    /// Ticks of the fraction axis (y).
    pub y_ticks: Vec<Tick>,
    /// The value axis's title.
    pub x_title: String,
    /// The series, subject first.
    pub series: Vec<Series>,
}

impl Plot {
    /// The plot of `subject` against `floor` (both in `unit`), if both have a distribution.
    pub fn cdf(
        id: &str,
        unit: &str,
        subject: (&str, &Summary),
        floor: (&str, &Summary),
    ) -> Option<Plot> {
        let both = [subject, floor];
        if both.iter().any(|(_, s)| s.distribution.is_empty()) {
            return None;
        }
        let values = || {
            both.iter()
                .flat_map(|(_, s)| [s.min, s.max, s.median])
                .filter(|v| v.is_finite() && *v > 0.0)
        };
        let lo = values().fold(f64::INFINITY, f64::min);
        let hi = values().fold(0.0, f64::max);
        if !lo.is_finite() || hi <= 0.0 {
            return None;
        }
        // Memory of a MiB or more is drawn in MiB, as the table shows it.
        let (axis_unit, per) = if unit == "KiB" && lo >= 1024.0 {
            ("MiB", 1024.0)
        } else {
            (unit, 1.0)
        };
        let axis = LogAxis::new(lo / per, hi / per);
        let at = |value: f64| axis.x(value / per);
        let y = |fraction: f64| round(BOTTOM - fraction.clamp(0.0, 1.0) * (BOTTOM - TOP));
        let series = both
            .iter()
            .zip(["subject", "floor"])
            .enumerate()
            .map(|(i, ((name, s), key))| {
                let mut points = vec![Point { x: LEFT, y: y(0.0) }];
                // Steps, as an empirical distribution is: up at each sample, level between.
                let mut below = 0.0;
                for p in &s.distribution {
                    let x = at(p.value);
                    points.push(Point { x, y: y(below) });
                    points.push(Point {
                        x,
                        y: y(p.fraction),
                    });
                    below = p.fraction;
                }
                points.push(Point {
                    x: RIGHT,
                    y: y(1.0),
                });
                Series {
                    key,
                    name: name.to_string(),
                    points,
                    median: Point {
                        x: at(s.median),
                        y: y(0.5),
                    },
                    median_text: shown(s.median, unit),
                    p99_text: s.p99.map(|v| shown(v, unit)).unwrap_or_default(),
                    samples: s.samples,
                    legend_y: LEGEND_TOP + LEGEND_ROW * i as f64,
                }
            })
            .collect();
        Some(Plot {
            id: id.to_string(),
            width: WIDTH,
            height: LEGEND_TOP + LEGEND_ROW * both.len() as f64,
            left: LEFT,
            right: RIGHT,
            top: TOP,
            bottom: BOTTOM,
            x_ticks: axis.ticks(axis_unit),
            y_ticks: [0.0, 0.25, 0.5, 0.75, 1.0]
                .into_iter()
                .map(|f| Tick {
                    at: y(f),
                    label: format!("{}%", (f * 100.0) as u32),
                })
                .collect(),
            x_title: if axis_unit == "us" {
                "time (logarithmic scale)".to_string()
            } else {
                format!("{axis_unit} (logarithmic scale)")
            },
            series,
        })
    }

    /// The middle of the plot area, across.
    pub fn x_middle(&self) -> f64 {
        round((self.left + self.right) / 2.0)
    }

    /// The middle of the plot area, down.
    pub fn y_middle(&self) -> f64 {
        round((self.top + self.bottom) / 2.0)
    }

    /// The baseline of the value axis's tick labels.
    pub fn x_labels_y(&self) -> f64 {
        self.bottom + 18.0
    }

    /// The baseline of the value axis's title.
    pub fn x_title_y(&self) -> f64 {
        self.bottom + 40.0
    }
}

/// A logarithmic value axis across the plot area.
struct LogAxis {
    /// log10 of the values at the left and right edges.
    from: f64,
    to: f64,
}

impl LogAxis {
    /// An axis from a little below `lo` to a little above `hi`, at least [`MIN_SPAN`] wide.
    fn new(lo: f64, hi: f64) -> LogAxis {
        let (mut from, mut to) = (lo.log10(), hi.log10());
        let min_span = MIN_SPAN.log10();
        if to - from < min_span {
            let middle = (from + to) / 2.0;
            from = middle - min_span / 2.0;
            to = middle + min_span / 2.0;
        }
        // A margin of 4% of the span at each end, so that no curve runs along an edge.
        let margin = (to - from) * 0.04;
        LogAxis {
            from: from - margin,
            to: to + margin,
        }
    }

    /// Where `value` is drawn.
    fn x(&self, value: f64) -> f64 {
        let at = if value > 0.0 {
            value.log10()
        } else {
            self.from
        };
        round(LEFT + (at - self.from) / (self.to - self.from) * (RIGHT - LEFT))
    }

    /// The ticks at 1, 2, 3 ... 9 times the powers of ten in range (and 1.2, 1.5, 2.5 in a
    /// range narrower than a decade): which of them are labelled, and which are drawn at all,
    /// depends on how wide a decade is.
    fn ticks(&self, unit: &str) -> Vec<Tick> {
        // Mantissas in tenths.
        const ALL: [u32; 12] = [10, 12, 15, 20, 25, 30, 40, 50, 60, 70, 80, 90];
        const WHOLE: [u32; 9] = [10, 20, 30, 40, 50, 60, 70, 80, 90];
        let per_decade = (RIGHT - LEFT) / (self.to - self.from);
        let (labelled, drawn): (&[u32], &[u32]) = if per_decade >= 900.0 {
            (&ALL, &[])
        } else if per_decade >= 450.0 {
            (&[10, 20, 30, 50, 70], &WHOLE)
        } else if per_decade >= 200.0 {
            (&[10, 20, 50], &WHOLE)
        } else if per_decade >= 60.0 {
            (&[10], &WHOLE)
        } else {
            (&[10], &[])
        };
        let mut ticks = Vec::new();
        for exponent in (self.from.floor() as i32)..=(self.to.ceil() as i32) {
            for tenths in ALL {
                let label = labelled.contains(&tenths);
                if !label && !drawn.contains(&tenths) {
                    continue;
                }
                let at = f64::from(tenths).log10() - 1.0 + f64::from(exponent);
                if at < self.from || at > self.to {
                    continue;
                }
                ticks.push(Tick {
                    at: round(LEFT + (at - self.from) / (self.to - self.from) * (RIGHT - LEFT)),
                    label: if label {
                        tick_label(tenths, exponent - 1, unit)
                    } else {
                        String::new()
                    },
                });
            }
        }
        ticks
    }
}

/// A tick's label: `mantissa` x 10^`exponent` in `unit`; times in µs, ms or s, other units as a
/// plain number with k or M (the unit is in the axis's title).
fn tick_label(mantissa: u32, exponent: i32, unit: &str) -> String {
    // The power of ten of the value's leading digit.
    let magnitude = exponent + mantissa.max(1).ilog10() as i32;
    let (scale, suffix) = if unit == "us" {
        match magnitude {
            ..3 => (0, " µs"),
            3..6 => (3, " ms"),
            _ => (6, " s"),
        }
    } else {
        match magnitude {
            ..3 => (0, ""),
            3..6 => (3, "k"),
            _ => (6, "M"),
        }
    };
    format!("{}{suffix}", decimal(mantissa, exponent - scale))
}

/// `mantissa` x 10^`exponent` written out, without trailing zeros after the point: `200`,
/// `5`, `1.5`, `0.05`.
fn decimal(mantissa: u32, exponent: i32) -> String {
    let digits = mantissa.to_string();
    if exponent >= 0 {
        return format!("{digits}{}", "0".repeat(exponent as usize));
    }
    let point = (-exponent) as usize;
    let padded = format!(
        "{}{digits}",
        "0".repeat((point + 1).saturating_sub(digits.len()))
    );
    let (whole, fraction) = padded.split_at(padded.len() - point);
    let fraction = fraction.trim_end_matches('0');
    if fraction.is_empty() {
        whole.to_string()
    } else {
        format!("{whole}.{fraction}")
    }
}

/// Rounded to a tenth of a unit: the SVG stays short, and the same figures give the same text.
fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short_and_in_a_readable_unit() {
        assert_eq!(tick_label(2, 1, "us"), "20 µs");
        assert_eq!(tick_label(5, -1, "us"), "0.5 µs");
        assert_eq!(tick_label(1, 3, "us"), "1 ms");
        assert_eq!(tick_label(5, 5, "us"), "500 ms");
        assert_eq!(tick_label(2, 6, "us"), "2 s");
        assert_eq!(tick_label(2, 4, "calls/s"), "20k");
        assert_eq!(tick_label(1, 6, "MiB/s"), "1M");
        assert_eq!(tick_label(5, -2, "MiB/s"), "0.05");
        // Mantissas in tenths, as the axis makes them.
        assert_eq!(tick_label(15, 2, "us"), "1.5 ms");
        assert_eq!(tick_label(20, 2, "us"), "2 ms");
        assert_eq!(tick_label(12, -1, "us"), "1.2 µs");
        assert_eq!(tick_label(25, -3, "us"), "0.025 µs");
        assert_eq!(tick_label(10, 5, "us"), "1 s");
    }

    #[test]
    fn the_axis_spans_both_series_and_labels_at_least_two_ticks() {
        for (lo, hi) in [
            (10.0, 12.0),
            (3.0, 3.0),
            (1500.0, 1850.0),
            (1000.0, 1300.0),
            (8.0, 2000.0),
            (0.4, 9e6),
        ] {
            let axis = LogAxis::new(lo, hi);
            assert!(axis.x(lo) > LEFT && axis.x(hi) < RIGHT, "{lo}..{hi}");
            let ticks = axis.ticks("us");
            let labelled = ticks.iter().filter(|t| !t.label.is_empty()).count();
            assert!((2..=12).contains(&labelled), "{lo}..{hi}: {ticks:?}");
            assert!(ticks.windows(2).all(|w| w[0].at < w[1].at), "{ticks:?}");
        }
    }

    #[test]
    fn each_series_rises_from_0_to_1_left_to_right() {
        let subject =
            Summary::of_times(&(1..=100).map(|i| 50.0 + f64::from(i)).collect::<Vec<_>>()).unwrap();
        let floor = Summary::of_times(&[9.0, 10.0, 11.0, 12.0, 30.0]).unwrap();
        let plot = Plot::cdf("p", "us", ("plugin", &subject), ("floor", &floor)).unwrap();
        assert_eq!(plot.series.len(), 2);
        for s in &plot.series {
            assert_eq!(s.points.first().unwrap().y, BOTTOM);
            assert_eq!(s.points.last().unwrap().y, TOP);
            assert!(s
                .points
                .windows(2)
                .all(|w| w[0].x <= w[1].x && w[0].y >= w[1].y));
            assert_eq!(s.median.y, (BOTTOM + TOP) / 2.0);
            // The median is on the curve, whether it is a sample (an odd count: on a step up)
            // or between two (an even count: on the level at 50%).
            let m = s.median;
            assert!(
                s.points.windows(2).any(|w| {
                    let (a, b) = (w[0], w[1]);
                    (a.x == m.x && b.x == m.x && b.y <= m.y && m.y <= a.y)
                        || (a.y == m.y && b.y == m.y && a.x <= m.x && m.x <= b.x)
                }),
                "{m:?} is not on {:?}",
                s.points
            );
        }
        // The floor is faster: its median sits left of the subject's.
        assert!(plot.series[1].median.x < plot.series[0].median.x);
        // Memory of a MiB or more is drawn in MiB.
        let rss = Summary::of_values(&[4096.0, 4300.0, 5120.0]).unwrap();
        let floor_rss = Summary::of_values(&[1500.0, 1600.0]).unwrap();
        let plot = Plot::cdf("m", "KiB", ("plugin", &rss), ("floor", &floor_rss)).unwrap();
        assert_eq!(plot.x_title, "MiB (logarithmic scale)");
        assert!(
            plot.x_ticks.iter().any(|t| t.label == "2"),
            "{:?}",
            plot.x_ticks
        );
        assert_eq!(plot.series[0].median_text, "4.20 MiB");
        // A single reading has no distribution, so no plot.
        let single = Summary::single(5.0);
        assert!(Plot::cdf("p", "KiB", ("plugin", &single), ("floor", &floor)).is_none());
    }
}
