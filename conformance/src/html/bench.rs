//! The page of a bench run (`bench plugin|host --html FILE`, [`page`]): what was measured, by
//! which harness build on which machine, the table of figures with their floors and ratios,
//! for each figure that has a floor and a distribution a plot of the two ([`super::plot`]),
//! how each figure was measured, and what could not be. It reads a [`BenchReport`] only, so a
//! JSON report read back gives the same page as the run that wrote it.

use askama::Template;

use super::plot::Plot;
use crate::bench::results::{shown, size_text, BenchReport, Better, Figure, Summary};

/// A row of the table of figures.
#[derive(Debug, Clone)]
struct FigureRow {
    id: String,
    title: String,
    /// The id of its plot; empty without one.
    plot: String,
    median: String,
    p99: String,
    min: String,
    max: String,
    samples: usize,
    floor_median: String,
    floor_p99: String,
    ratio: String,
}

/// A plot with what its caption says.
#[derive(Debug, Clone)]
struct PlotView {
    plot: Plot,
    title: String,
    figure_id: String,
    floor: String,
    better: &'static str,
    ratio: String,
}

/// The page.
#[derive(Template)]
#[template(path = "bench.html")]
struct BenchPage {
    title: String,
    generator: String,
    facts: Vec<(String, String)>,
    debug: bool,
    settings: Vec<(String, String)>,
    rows: Vec<FigureRow>,
    plots: Vec<PlotView>,
    how: Vec<(String, String)>,
    not_measured: Vec<(String, String)>,
}

/// `better` as the page says it.
fn better(b: Better) -> &'static str {
    match b {
        Better::Lower => "lower",
        Better::Higher => "higher",
    }
}

/// The id of a figure's plot.
fn plot_id(figure: &Figure) -> String {
    format!("plot-{}", figure.id.replace('.', "-"))
}

/// The HTML page of a bench run.
pub fn page(report: &BenchReport) -> Result<String, String> {
    let subject_name = report.subject.kind.clone();
    let mut plots = Vec::new();
    let mut rows = Vec::new();
    for f in &report.figures {
        let plot = f.floor.as_ref().and_then(|floor| {
            Plot::cdf(
                &plot_id(f),
                &f.unit,
                (&format!("the {subject_name}"), &f.value),
                ("the floor", &floor.value),
            )
        });
        let ratio = f
            .ratio
            .map(|r| format!("{r:.2}× ({} is better)", better(f.better)))
            .unwrap_or_default();
        // A cell with nothing to say has a dash.
        let dash = || "–".to_string();
        let p99 = |s: &Summary| s.p99.map(|v| shown(v, &f.unit)).unwrap_or_else(dash);
        rows.push(FigureRow {
            id: f.id.clone(),
            title: f.title.clone(),
            plot: plot.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
            median: shown(f.value.median, &f.unit),
            p99: p99(&f.value),
            min: shown(f.value.min, &f.unit),
            max: shown(f.value.max, &f.unit),
            samples: f.value.samples,
            floor_median: f
                .floor
                .as_ref()
                .map(|fl| shown(fl.value.median, &f.unit))
                .unwrap_or_else(dash),
            floor_p99: f
                .floor
                .as_ref()
                .map(|fl| p99(&fl.value))
                .unwrap_or_else(dash),
            ratio: if ratio.is_empty() {
                dash()
            } else {
                ratio.clone()
            },
        });
        if let Some(plot) = plot {
            plots.push(PlotView {
                plot,
                title: f.title.clone(),
                figure_id: f.id.clone(),
                floor: f
                    .floor
                    .as_ref()
                    .map(|fl| fl.what.clone())
                    .unwrap_or_default(),
                better: match f.better {
                    Better::Lower => "left",
                    Better::Higher => "right",
                },
                ratio,
            });
        }
    }
    let mut facts = vec![(
        report.subject.kind.clone(),
        report.subject.command.join(" "),
    )];
    if let Some(host) = &report.subject.host {
        facts.push((
            "host".to_string(),
            format!(
                "{host} (reports events: {})",
                if report.subject.events == Some(true) {
                    "yes"
                } else {
                    "no"
                }
            ),
        ));
    }
    facts.push((
        "harness".to_string(),
        format!(
            "rpcplugin-conformance {}, {} build",
            report.harness.version, report.harness.profile
        ),
    ));
    facts.push((
        "machine".to_string(),
        format!("{}, {} CPU(s)", report.machine.os, report.machine.cpus),
    ));
    let s = &report.settings;
    let mut settings = vec![
        ("rounds".to_string(), s.rounds.to_string()),
        ("round trips per round".to_string(), s.batch.to_string()),
        ("warm-up round trips".to_string(), s.warm_up.to_string()),
        ("starts".to_string(), s.starts.to_string()),
    ];
    if let Some(depth) = s.depth {
        settings.push(("calls in flight".to_string(), depth.to_string()));
    }
    if !s.payloads.is_empty() {
        settings.push((
            "payloads".to_string(),
            s.payloads
                .iter()
                .map(|&b| size_text(b))
                .collect::<Vec<_>>()
                .join(", "),
        ));
    }
    if let Some(restarts) = s.restarts {
        settings.push(("restarts".to_string(), restarts.to_string()));
    }
    settings.push(("timeout scale".to_string(), s.timeout_scale.to_string()));
    super::render(&BenchPage {
        title: format!(
            "rpcplugin conformance bench: {} {}",
            report.subject.kind,
            // The executable's name; the facts have its path and arguments.
            report.subject.command.first().map_or(String::new(), |c| {
                std::path::Path::new(c)
                    .file_name()
                    .map_or(c.clone(), |n| n.to_string_lossy().into_owned())
            })
        ),
        generator: super::generator(),
        facts,
        debug: report.harness.profile != "release",
        settings,
        rows,
        plots,
        how: report
            .how()
            .into_iter()
            .map(|(titles, how)| (titles.join("; "), how))
            .collect(),
        not_measured: report
            .not_measured
            .iter()
            .map(|n| (n.id.clone(), n.reason.clone()))
            .collect(),
    })
}
