//! The results of a bench run as plain data ([`BenchReport`]): what was measured, against which
//! floor, with which settings, and what could not be measured and why. Serializable both ways
//! (serde), so that the JSON report (schema [`BENCH_SCHEMA`]) can be read back and rendered
//! elsewhere (an HTML report, a comparison of two runs); [`BenchReport::human`] is the table
//! the command prints.
//!
//! Every figure has the same shape ([`Figure`]): a summary of the subject's samples, optionally
//! the same summary of its floor (the same operation without the protocol, measured in the same
//! run) and the ratio of the two, so that a renderer needs no knowledge of the individual
//! figures. A summary of more than one sample also keeps its distribution (a bounded set of
//! points of its cumulative distribution, [`Summary::distribution`]), which the HTML report
//! plots against the floor's.

use serde::{Deserialize, Serialize};

/// The `schema` of a bench report.
pub const BENCH_SCHEMA: &str = "rpcplugin-conformance-bench/v1";

/// A whole bench run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// [`BENCH_SCHEMA`].
    pub schema: String,
    /// The harness that measured, and how it was built.
    pub harness: Harness,
    /// The machine it ran on.
    pub machine: Machine,
    /// What was measured.
    pub subject: Subject,
    /// The settings of the run.
    pub settings: Settings,
    /// The figures, in the order the command prints them.
    pub figures: Vec<Figure>,
    /// The figures that could not be measured, and why.
    pub not_measured: Vec<NotMeasured>,
}

/// The harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Harness {
    /// The harness's version.
    pub version: String,
    /// `debug` or `release`: the harness's own side of every exchange is part of the figures,
    /// and a debug harness is several times slower than a release one.
    pub profile: String,
}

/// The machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Machine {
    /// `std::env::consts::OS`.
    pub os: String,
    /// The CPUs available to the harness.
    pub cpus: usize,
}

/// What was measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// `plugin` or `host`.
    pub kind: String,
    /// The plugin executable, or the driver, and their arguments.
    pub command: Vec<String>,
    /// What the driver's `hello` said of the host (`host`), for a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Whether the driver reports events (DRV-10), for a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<bool>,
}

/// The settings of a run (see `rpcplugin-conformance bench --help`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// Alternating rounds of each figure that has a floor.
    pub rounds: usize,
    /// Round trips per round.
    pub batch: usize,
    /// Round trips of each kind before the measured rounds.
    pub warm_up: usize,
    /// Launches for the start time.
    pub starts: usize,
    /// Calls in flight in the pipelined figure (plugin only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// Payload sizes of the throughput figures, in bytes (plugin only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub payloads: Vec<usize>,
    /// Crashes for the restart time (host only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarts: Option<usize>,
    /// The timeout scale.
    pub timeout_scale: f64,
}

/// Whether a smaller or a larger value is better, for a figure's value and its ratio alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// Times and memory.
    Lower,
    /// Rates.
    Higher,
}

/// One figure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// A stable name: `plugin.round_trip`, `plugin.throughput.65536`, `host.start`.
    pub id: String,
    /// What it measures, in a few words.
    pub title: String,
    /// The unit of every value: `us` (microseconds), `KiB`, `calls/s` or `MiB/s`.
    pub unit: String,
    /// Which way is better.
    pub better: Better,
    /// The subject's samples.
    pub value: Summary,
    /// The floor, when the figure has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<Floor>,
    /// The subject's value over the floor's (the median over the rounds of each round's ratio
    /// when the two alternate, else the ratio of the medians); read it with `better`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// How it was measured, when the title does not say it all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Figure {
    /// A figure without a floor or a note.
    pub fn new(id: &str, title: &str, unit: &str, better: Better, value: Summary) -> Figure {
        Figure {
            id: id.into(),
            title: title.into(),
            unit: unit.into(),
            better,
            value,
            floor: None,
            ratio: None,
            note: None,
        }
    }

    /// With a floor, and the ratio of the subject to it.
    pub fn floor(mut self, what: &str, value: Summary, ratio: Option<f64>) -> Figure {
        self.floor = Some(Floor {
            what: what.into(),
            value,
        });
        self.ratio = ratio;
        self
    }

    /// With a note on how it was measured.
    pub fn note(mut self, note: impl Into<String>) -> Figure {
        self.note = Some(note.into());
        self
    }
}

/// The same operation without the protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Floor {
    /// What the floor is.
    pub what: String,
    /// Its samples.
    pub value: Summary,
}

/// A summary of samples.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The median.
    pub median: f64,
    /// The 99th percentile (nearest rank) of a time: its slow tail. `None` for a rate, whose
    /// slow tail is `min`.
    pub p99: Option<f64>,
    /// The smallest sample.
    pub min: f64,
    /// The largest sample.
    pub max: f64,
    /// How many samples.
    pub samples: usize,
    /// The distribution of the samples, for plots: points of their empirical cumulative
    /// distribution, ascending: every sample when there are at most [`ALL_SAMPLES`], else the
    /// smallest and those at the nearest ranks of [`FRACTIONS`] (so at most
    /// `FRACTIONS.len() + 1` points, whatever the count). Empty for a single sample.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distribution: Vec<CdfPoint>,
}

/// A point of a distribution: a sample, and the fraction of the samples at its rank or below
/// (rank / count, the samples sorted ascending).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CdfPoint {
    /// Rank / count: in (0, 1], 1 for the largest sample.
    pub fraction: f64,
    /// The sample, in the figure's unit.
    pub value: f64,
}

/// Up to this many samples, a distribution keeps them all.
pub const ALL_SAMPLES: usize = 32;

/// The fractions, in thousandths, whose samples (nearest rank) a distribution of more than
/// [`ALL_SAMPLES`] keeps: dense in the middle, and the slow tail (99%, 99.9%) of a time.
pub const FRACTIONS: [u32; 26] = [
    10, 20, 50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 550, 600, 650, 700, 750, 800, 850,
    900, 950, 980, 990, 995, 999, 1000,
];

/// The distribution of sorted samples (see [`Summary::distribution`]).
fn distribution(sorted: &[f64]) -> Vec<CdfPoint> {
    let n = sorted.len();
    if n < 2 {
        return Vec::new();
    }
    let ranks: Vec<usize> = if n <= ALL_SAMPLES {
        (1..=n).collect()
    } else {
        let mut ranks = vec![1];
        for per_mille in FRACTIONS {
            // Nearest rank: the smallest with at least that fraction at or below it.
            let rank = (n * per_mille as usize).div_ceil(1000).clamp(1, n);
            if ranks.last() != Some(&rank) {
                ranks.push(rank);
            }
        }
        ranks
    };
    ranks
        .into_iter()
        .map(|rank| CdfPoint {
            fraction: rank as f64 / n as f64,
            value: sorted[rank - 1],
        })
        .collect()
}

impl Summary {
    /// The summary of time samples (with a p99); `None` for no samples.
    pub fn of_times(samples: &[f64]) -> Option<Summary> {
        let mut s = Summary::of_values(samples)?;
        let sorted = sorted(samples);
        // Nearest rank: the smallest sample with at least 99% of the samples at or below it.
        let rank = (sorted.len() * 99).div_ceil(100).max(1);
        s.p99 = Some(sorted[rank - 1]);
        Some(s)
    }

    /// The summary of samples without a tail (rates, memory; no p99); `None` for no samples.
    pub fn of_values(samples: &[f64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let sorted = sorted(samples);
        Some(Summary {
            median: median(&sorted),
            p99: None,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            samples: sorted.len(),
            distribution: distribution(&sorted),
        })
    }

    /// A single value (a memory reading).
    pub fn single(value: f64) -> Summary {
        Summary {
            median: value,
            p99: None,
            min: value,
            max: value,
            samples: 1,
            distribution: Vec::new(),
        }
    }
}

/// A figure that could not be measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotMeasured {
    /// The figure's id.
    pub id: String,
    /// Why.
    pub reason: String,
}

fn sorted(samples: &[f64]) -> Vec<f64> {
    let mut v = samples.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// The median of sorted samples (the mean of the middle two for an even count).
fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median of unsorted samples; `None` for none.
pub fn median_of(samples: &[f64]) -> Option<f64> {
    (!samples.is_empty()).then(|| median(&sorted(samples)))
}

/// A value in `unit` as the table shows it: times in µs, ms or s, the rest with three
/// significant digits.
pub fn shown(value: f64, unit: &str) -> String {
    fn digits(v: f64) -> String {
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else if v.abs() >= 10.0 {
            format!("{v:.1}")
        } else {
            format!("{v:.2}")
        }
    }
    match unit {
        "us" if value >= 1e6 => format!("{} s", digits(value / 1e6)),
        "us" if value >= 1e3 => format!("{} ms", digits(value / 1e3)),
        "us" => format!("{} µs", digits(value)),
        "KiB" if value >= 1024.0 => format!("{} MiB", digits(value / 1024.0)),
        other => format!("{} {other}", digits(value)),
    }
}

/// A size in bytes as the reports show it: `512 B`, `64 KiB`, `1 MiB`.
pub fn size_text(size: usize) -> String {
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        format!("{} MiB", size >> 20)
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{} KiB", size >> 10)
    } else {
        format!("{size} B")
    }
}

impl BenchReport {
    /// How the figures were measured: each figure's note and floor as sentences, figures
    /// measured alike sharing one entry (their titles, in order, and the sentences).
    pub fn how(&self) -> Vec<(Vec<&str>, String)> {
        let mut explained: Vec<(Vec<&str>, String)> = Vec::new();
        for f in self.figures.iter() {
            let mut how = Vec::new();
            if let Some(note) = &f.note {
                how.push(format!("{note}."));
            }
            if let Some(floor) = &f.floor {
                how.push(format!("Floor: {}.", floor.what));
            }
            if how.is_empty() {
                continue;
            }
            let how = how.join(" ");
            match explained.iter_mut().find(|(_, h)| *h == how) {
                Some((titles, _)) => titles.push(&f.title),
                None => explained.push((vec![&f.title], how)),
            }
        }
        explained
    }

    /// The JSON report, pretty-printed.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a bench report serializes")
    }

    /// The human report: a header, the table of figures, the floors and how each figure was
    /// measured, and what was not measured.
    pub fn human(&self) -> String {
        let mut out = format!(
            "rpcplugin-conformance bench: {} {}\n",
            self.subject.kind,
            self.subject.command.join(" ")
        );
        if let Some(host) = &self.subject.host {
            out.push_str(&format!(
                "host: {host} (events: {})\n",
                if self.subject.events == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            ));
        }
        let s = &self.settings;
        out.push_str(&format!(
            "harness {} ({} build), {} CPUs, {}; {} rounds of {}, warm-up {}, {} starts\n",
            self.harness.version,
            self.harness.profile,
            self.machine.cpus,
            self.machine.os,
            s.rounds,
            s.batch,
            s.warm_up,
            s.starts
        ));
        if self.harness.profile != "release" {
            out.push_str(
                "note: a debug harness is part of every figure; build with --release for figures \
                 to quote\n",
            );
        }
        out.push('\n');
        let header: Vec<String> = [
            "figure",
            "median",
            "p99",
            "floor median",
            "floor p99",
            "ratio",
        ]
        .map(String::from)
        .to_vec();
        let mut rows = vec![header];
        for f in &self.figures {
            let p99 = |s: &Summary| s.p99.map_or("-".to_string(), |v| shown(v, &f.unit));
            rows.push(vec![
                f.title.clone(),
                shown(f.value.median, &f.unit),
                p99(&f.value),
                f.floor
                    .as_ref()
                    .map_or("-".into(), |fl| shown(fl.value.median, &f.unit)),
                f.floor.as_ref().map_or("-".into(), |fl| p99(&fl.value)),
                f.ratio.map_or("-".into(), |r| {
                    format!(
                        "{r:.2}x ({} is better)",
                        match f.better {
                            Better::Lower => "lower",
                            Better::Higher => "higher",
                        }
                    )
                }),
            ]);
        }
        let widths: Vec<usize> = (0..rows[0].len())
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        for row in &rows {
            let mut line = String::new();
            for (c, cell) in row.iter().enumerate() {
                let pad = widths[c] - cell.chars().count();
                if c == 0 {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push_str("  ");
                    if c == row.len() - 1 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&" ".repeat(pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let explained = self.how();
        if !explained.is_empty() {
            out.push_str("\nhow:\n");
            for (titles, how) in explained {
                out.push_str(&format!("  {}: {how}\n", titles.join("; ")));
            }
        }
        if !self.not_measured.is_empty() {
            out.push_str("\nnot measured:\n");
            for n in &self.not_measured {
                out.push_str(&format!("  {}: {}\n", n.id, n.reason));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_of_times_has_its_tail_at_or_above_its_median() {
        let s = Summary::of_times(&[5.0, 1.0, 3.0, 2.0, 4.0]).unwrap();
        assert_eq!((s.median, s.p99, s.min, s.max), (3.0, Some(5.0), 1.0, 5.0));
        let s = Summary::of_times(&[2.0, 1.0]).unwrap();
        assert_eq!((s.median, s.p99), (1.5, Some(2.0)));
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(Summary::of_times(&hundred).unwrap().p99, Some(99.0));
        assert_eq!(Summary::of_times(&[]), None);
        assert_eq!(Summary::of_values(&[7.0]).unwrap().p99, None);
    }

    #[test]
    fn a_distribution_keeps_few_samples_all_and_many_at_bounded_ranks() {
        let few = Summary::of_times(&[3.0, 1.0, 2.0]).unwrap().distribution;
        let pairs: Vec<(f64, f64)> = few.iter().map(|p| (p.fraction, p.value)).collect();
        assert_eq!(pairs, [(1.0 / 3.0, 1.0), (2.0 / 3.0, 2.0), (1.0, 3.0)]);
        assert!(Summary::single(4.0).distribution.is_empty());
        assert!(Summary::of_times(&[4.0]).unwrap().distribution.is_empty());
        for n in [33usize, 100, 1000, 100_000] {
            let samples: Vec<f64> = (1..=n).rev().map(|i| i as f64).collect();
            let s = Summary::of_times(&samples).unwrap();
            let d = &s.distribution;
            assert!(d.len() <= FRACTIONS.len() + 1, "{n}: {}", d.len());
            assert_eq!((d[0].value, d[0].fraction), (1.0, 1.0 / n as f64), "{n}");
            let last = d[d.len() - 1];
            assert_eq!((last.value, last.fraction), (n as f64, 1.0), "{n}");
            assert!(d
                .windows(2)
                .all(|w| w[0].value < w[1].value && w[0].fraction < w[1].fraction));
            // Each point is a sample with its rank: value k has k samples at or below it.
            assert!(d.iter().all(|p| p.fraction == p.value / n as f64), "{n}");
            // The p99 is one of them.
            assert!(d.iter().any(|p| Some(p.value) == s.p99), "{n}");
        }
        // Rates keep theirs too.
        assert_eq!(
            Summary::of_values(&[5.0, 6.0]).unwrap().distribution.len(),
            2
        );
    }

    #[test]
    fn values_are_shown_in_a_readable_unit() {
        assert_eq!(shown(12.345, "us"), "12.3 µs");
        assert_eq!(shown(4321.0, "us"), "4.32 ms");
        assert_eq!(shown(2_500_000.0, "us"), "2.50 s");
        assert_eq!(shown(2048.0, "KiB"), "2.00 MiB");
        assert_eq!(shown(12345.0, "calls/s"), "12345 calls/s");
    }
}
