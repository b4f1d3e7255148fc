//! The self-test: the suite proves its own teeth (spec/harness.md section 7).
//!
//! The whole catalog runs against the conforming subjects (the harness's agent as a plugin,
//! the reference host's driver as a host) and against every mutant: the agent's plugin
//! mutants ([`crate::agent::MUTANTS`]) and the host mutants of `rpcplugin-mutant-host`
//! ([`crate::mutants::host_mutants`]: every mutant that binary lists, each run as
//! `rpcplugin-mutant-host driver --mutant NAME`). The result is a table, case x subject, and
//! five rules over it:
//!
//! 1. a conforming subject passes every case of its mode;
//! 2. every mutant fails each case of its `caught_by` list, naming the requirement it breaks;
//! 3. every case catches (does not pass against) at least one mutant, or is listed in
//!    [`UNREACHED`] with the reason no mutant reaches it;
//! 4. a case listed in [`UNREACHED`] does not catch a mutant (the reason would be stale);
//! 5. no case fails any subject for a requirement it neither cites nor observes (spec 07
//!    spec/harness.md section 1.2), and none is a harness error against any subject.
//!
//! Rules 1 and 2 tie the table to the requirement ids; rules 3 and 4 keep the list of cases
//! without a mutant honest in both directions. Two more rows, `fuzz/plugin` and `fuzz/host`,
//! are a fixed-seed fuzz run ([`crate::fuzz`], the run's `--seed`) against each subject,
//! under the same rules.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::agent::MUTANTS;
use crate::cases::{catalog, Mode};
use crate::host_under_test::DriverCommand;
use crate::mutants::HostMutant;
use crate::outcome::Verdict;
use crate::plugin_under_test::PluginCommand;
use crate::progress::Progress;
use crate::report::Report;
use crate::runner::{run, selected, RunOptions};

/// Cases that no mutant reaches, each with the reason: what a mutant breaking the case's rule
/// would have to be, and why the catalog has none.
pub static UNREACHED: &[(&str, &str)] = &[];

/// One subject of the self-test: a column of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// `agent` or `reference-host` for the conforming subjects, else the mutant's name.
    pub name: String,
    /// The mode of the cases it is tested by.
    pub mode: &'static str,
    /// A conforming subject (rule 1), not a mutant.
    pub conforming: bool,
    /// What it does wrong (empty for a conforming subject).
    pub description: String,
    /// The cases that must catch it, with the requirement (or `|`-separated alternatives)
    /// their reason must name.
    pub caught_by: &'static [(&'static str, &'static str)],
    /// How long its run took, in milliseconds.
    pub duration_ms: u64,
}

/// One cell: a case's verdict against a subject.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// The verdict.
    pub verdict: Verdict,
    /// The reason, starting with the requirement id (empty on a pass).
    pub reason: String,
}

/// One case: a row of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The case id.
    pub case: &'static str,
    /// Its mode.
    pub mode: &'static str,
    /// Its cell per column, in the columns' order (`None`: the column's mode is another).
    pub cells: Vec<Option<Cell>>,
    /// The reason from [`UNREACHED`], if the case is listed there.
    pub unreached: Option<&'static str>,
}

/// The self-test's result.
#[derive(Debug, Clone, Serialize)]
pub struct SelfTest {
    /// `rpcplugin-conformance-self-test/v1`.
    pub schema: &'static str,
    /// The subjects.
    pub columns: Vec<Column>,
    /// The cases.
    pub rows: Vec<Row>,
    /// Every broken rule, in words; empty when the suite proved its teeth.
    pub problems: Vec<String>,
    /// How long the whole self-test took, in milliseconds.
    pub duration_ms: u64,
}

/// How to run the self-test.
#[derive(Debug, Clone)]
pub struct SelfTestOptions {
    /// The harness binary (its `agent` subcommand is the plugin subject).
    pub harness: std::path::PathBuf,
    /// The conforming host driver.
    pub host: DriverCommand,
    /// The host mutants' binary (`rpcplugin-mutant-host`): each host mutant runs as
    /// `<mutant_host> ARGS --mutant NAME`, ARGS being those of [`host`](Self::host) (`driver`).
    pub mutant_host: std::path::PathBuf,
    /// The host mutants ([`crate::mutants::host_mutants`] of `mutant_host`).
    pub host_mutants: Vec<HostMutant>,
    /// Case selection, jobs per subject, timeout scale and seed (the subjects are set here).
    pub run: RunOptions,
    /// How many subjects are tested at once.
    pub subjects_at_once: usize,
    /// Test only the subjects whose name contains one of these (all when empty); the
    /// conforming subjects always run.
    pub only: Vec<String>,
    /// Draw the progress line on standard error, with a line above it as each subject is
    /// done ([`crate::progress`]).
    pub progress: bool,
}

struct Subject {
    column: Column,
    options: RunOptions,
}

fn subjects(opts: &SelfTestOptions) -> Vec<Subject> {
    let wanted = |name: &str| opts.only.is_empty() || opts.only.iter().any(|p| name.contains(p));
    let agent = |extra: &[&str]| PluginCommand {
        program: opts.harness.clone(),
        args: std::iter::once("agent")
            .chain(extra.iter().copied())
            .map(Into::into)
            .collect(),
    };
    let mutant_host = |name: &str| DriverCommand {
        program: opts.mutant_host.clone(),
        args: opts
            .host
            .args
            .iter()
            .cloned()
            .chain(["--mutant".into(), name.into()])
            .collect(),
    };
    let column = |name: &str, mode: Mode, description: &str, caught_by| Column {
        name: name.to_string(),
        mode: mode.as_str(),
        conforming: caught_by == &[][..],
        description: description.to_string(),
        caught_by,
        duration_ms: 0,
    };
    let with = |plugin: Option<PluginCommand>, host: Option<DriverCommand>| {
        let mut o = opts.run.clone();
        o.plugin = plugin;
        o.host = host;
        o.replay_dir = None;
        o.expect = None;
        o.progress = false;
        o
    };
    let mut all = vec![
        Subject {
            column: column("agent", Mode::Plugin, "", &[]),
            options: with(Some(agent(&[])), None),
        },
        Subject {
            column: column("reference-host", Mode::Host, "", &[]),
            options: with(None, Some(opts.host.clone())),
        },
    ];
    all.extend(MUTANTS.iter().filter(|m| wanted(m.name)).map(|m| Subject {
        column: column(m.name, Mode::Plugin, m.description, m.caught_by),
        options: with(Some(agent(&["--mutant", m.name])), None),
    }));
    all.extend(
        opts.host_mutants
            .iter()
            .filter(|m| wanted(&m.listed.name))
            .map(|m| Subject {
                column: column(
                    &m.listed.name,
                    Mode::Host,
                    &m.listed.description,
                    m.caught_by,
                ),
                options: with(None, Some(mutant_host(&m.listed.name))),
            }),
    );
    all
}

/// The subjects that take longest (measured: a mutant that stops reading makes every case
/// wait out its deadline), started first so that the run does not end on a long tail; the
/// table keeps the order of [`subjects`].
const SLOWEST_FIRST: &[&str] = &["stops-reading", "drops-first-frame", "never-restarts"];

fn run_order(subjects: &[Subject]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..subjects.len()).collect();
    order.sort_by_key(|&i| {
        SLOWEST_FIRST
            .iter()
            .position(|n| *n == subjects[i].column.name)
            .unwrap_or(SLOWEST_FIRST.len())
    });
    order
}

/// A subject's report, its fuzz cell, and how long both took.
type Tested = (Report, Option<Cell>, Duration);

/// Runs the catalog against every subject, `subjects_at_once` subjects at a time, and checks
/// the five rules.
pub fn self_test(opts: &SelfTestOptions) -> SelfTest {
    let start = Instant::now();
    let subjects = subjects(opts);
    let reports: Mutex<Vec<Option<Tested>>> =
        Mutex::new((0..subjects.len()).map(|_| None).collect());
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let order = run_order(&subjects);
    let progress = Progress::new(opts.progress, Some(subjects.len() as u64));
    let running: Mutex<Vec<&str>> = Mutex::new(Vec::new());
    let show_running = |running: &[&str]| {
        progress.set_message(format!("self-test: {}", running.join(", ")));
    };
    thread::scope(|s| {
        for _ in 0..opts.subjects_at_once.clamp(1, subjects.len()) {
            s.spawn(|| {
                while let Some(&i) = order.get(next.fetch_add(1, Ordering::SeqCst)) {
                    let subject = &subjects[i];
                    {
                        let mut r = running.lock().unwrap_or_else(|e| e.into_inner());
                        r.push(subject.column.name.as_str());
                        show_running(&r);
                    }
                    let began = Instant::now();
                    let report = run(&subject.options);
                    let fuzzed = fuzz_cell(opts, subject);
                    let took = began.elapsed();
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    let caught = report.cases.iter().filter(|c| catches(c.verdict)).count();
                    progress.println(format!(
                        "[{n}/{}] {} {}: {caught} of {} case(s) did not pass ({:.1} s)",
                        subjects.len(),
                        subject.column.mode,
                        subject.column.name,
                        report.cases.len(),
                        took.as_secs_f64()
                    ));
                    progress.inc();
                    {
                        let mut r = running.lock().unwrap_or_else(|e| e.into_inner());
                        r.retain(|name| *name != subject.column.name.as_str());
                        show_running(&r);
                    }
                    reports.lock().unwrap_or_else(|e| e.into_inner())[i] =
                        Some((report, fuzzed, took));
                }
            });
        }
    });
    progress.finish();
    let reports: Vec<Tested> = reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every subject ran"))
        .collect();
    let columns: Vec<Column> = subjects
        .iter()
        .zip(&reports)
        .map(|(s, (_, _, took))| Column {
            duration_ms: took.as_millis() as u64,
            ..s.column.clone()
        })
        .collect();
    let mut rows: Vec<Row> = catalog()
        .iter()
        .filter(|c| selected(c, &opts.run.cases))
        .map(|case| Row {
            case: case.id,
            mode: case.mode().as_str(),
            cells: reports
                .iter()
                .map(|(report, _, _)| {
                    report.cases.iter().find(|r| r.id == case.id).map(|r| Cell {
                        verdict: r.verdict,
                        reason: r.reason.clone(),
                    })
                })
                .collect(),
            unreached: UNREACHED
                .iter()
                .find(|(id, _)| *id == case.id)
                .map(|(_, why)| *why),
        })
        .collect();
    for (id, mode) in [(FUZZ_PLUGIN, Mode::Plugin), (FUZZ_HOST, Mode::Host)] {
        if fuzz_selected(opts, id) {
            rows.push(Row {
                case: id,
                mode: mode.as_str(),
                cells: subjects
                    .iter()
                    .zip(&reports)
                    .map(|(s, (_, cell, _))| {
                        if s.column.mode == mode.as_str() {
                            cell.clone()
                        } else {
                            None
                        }
                    })
                    .collect(),
                unreached: None,
            });
        }
    }
    let problems = check(&columns, &rows, opts.only.is_empty());
    SelfTest {
        schema: "rpcplugin-conformance-self-test/v1",
        columns,
        rows,
        problems,
        duration_ms: start.elapsed().as_millis() as u64,
    }
}

/// The row of the fixed-seed fuzz run against each plugin subject.
pub const FUZZ_PLUGIN: &str = "fuzz/plugin";
/// The row of the fixed-seed fuzz run against each host subject.
pub const FUZZ_HOST: &str = "fuzz/host";
/// Schedules of the fixed-seed fuzz run per plugin subject.
pub const FUZZ_PLUGIN_SCHEDULES: u64 = 30;
/// Schedules of the fixed-seed fuzz run per host subject.
pub const FUZZ_HOST_SCHEDULES: u64 = 6;

fn fuzz_selected(opts: &SelfTestOptions, id: &str) -> bool {
    opts.run.cases.is_empty() || opts.run.cases.iter().any(|p| id.contains(p.as_str()))
}

/// The fixed-seed fuzz run (the run's `--seed`, no shrinking) against a subject.
fn fuzz_cell(opts: &SelfTestOptions, subject: &Subject) -> Option<Cell> {
    let (target, id, schedules) = match (&subject.options.plugin, &subject.options.host) {
        (Some(p), _) => (
            crate::fuzz::Subject::Plugin(p.clone()),
            FUZZ_PLUGIN,
            FUZZ_PLUGIN_SCHEDULES,
        ),
        (None, Some(h)) => (
            crate::fuzz::Subject::Host(h.clone()),
            FUZZ_HOST,
            FUZZ_HOST_SCHEDULES,
        ),
        (None, None) => return None,
    };
    if !fuzz_selected(opts, id) {
        return None;
    }
    let report = crate::fuzz::fuzz(&crate::fuzz::FuzzOptions {
        subject: target,
        seed: opts.run.seed,
        cases: Some(schedules),
        time: None,
        jobs: opts.run.jobs,
        timeout_scale: opts.run.timeout_scale,
        shrink_runs: 0,
        replay_dir: None,
        keep_going: false,
        progress: false,
    });
    Some(match report.failures.first() {
        None => Cell {
            verdict: Verdict::Pass,
            reason: String::new(),
        },
        Some(f) => Cell {
            verdict: f.verdict,
            reason: f.reason.clone(),
        },
    })
}

/// Whether a verdict against a mutant counts as catching it.
fn catches(verdict: Verdict) -> bool {
    matches!(verdict, Verdict::Fail | Verdict::Timeout | Verdict::Warn)
}

/// The rules (module documentation); rule 3 only when every mutant ran.
fn check(columns: &[Column], rows: &[Row], every_mutant: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, column) in columns.iter().enumerate() {
        let cell = |case: &str| {
            rows.iter()
                .find(|r| r.case == case)
                .and_then(|r| r.cells[i].as_ref())
        };
        if column.conforming {
            for row in rows {
                if let Some(c) = &row.cells[i] {
                    if !matches!(c.verdict, Verdict::Pass | Verdict::Skipped) {
                        problems.push(format!(
                            "{} (conforming) does not pass {}: {} {}",
                            column.name,
                            row.case,
                            c.verdict.as_str(),
                            c.reason
                        ));
                    }
                }
            }
            continue;
        }
        for (case, requirement) in column.caught_by {
            let Some(c) = cell(case) else { continue };
            if !catches(c.verdict) {
                problems.push(format!(
                    "mutant {} is not caught by {case}: {}",
                    column.name,
                    c.verdict.as_str()
                ));
            } else if !requirement
                .split('|')
                .any(|r| c.reason.starts_with(&format!("{r}: ")))
            {
                problems.push(format!(
                    "mutant {} is caught by {case}, but for {:?}, not {requirement}",
                    column.name, c.reason
                ));
            }
        }
    }
    // Rule 5: no verdict names a requirement its case does not check (the runner reports such
    // a failure as a harness error), and no case is a harness error against any subject.
    for row in rows {
        let case = crate::cases::find(row.case);
        for (column, cell) in columns.iter().zip(&row.cells) {
            let Some(c) = cell else { continue };
            if c.reason.starts_with("setup error:") {
                problems.push(format!(
                    "{} is a harness error against {}: {}",
                    row.case, column.name, c.reason
                ));
            } else if let (Some(case), true) = (case, catches(c.verdict)) {
                let id = c.reason.split(':').next().unwrap_or("");
                if c.verdict != Verdict::Timeout && !crate::cases::may_fail_with(case, id) {
                    problems.push(format!(
                        "{} fails {} for {id}, which it neither cites nor observes: {}",
                        row.case, column.name, c.reason
                    ));
                }
            }
        }
    }
    for row in rows {
        let caught: Vec<&str> = columns
            .iter()
            .zip(&row.cells)
            .filter(|(col, c)| !col.conforming && c.as_ref().is_some_and(|c| catches(c.verdict)))
            .map(|(col, _)| col.name.as_str())
            .collect();
        match (row.unreached, caught.is_empty()) {
            (None, true) if every_mutant && row.cells.iter().any(Option::is_some) => {
                problems.push(format!(
                    "{} catches no mutant, and UNREACHED gives no reason",
                    row.case
                ))
            }
            (Some(_), false) => problems.push(format!(
                "{} is listed as reached by no mutant, but catches {}",
                row.case,
                caught.join(", ")
            )),
            _ => {}
        }
    }
    problems
}

impl SelfTest {
    /// 0 when every rule holds, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        i32::from(!self.problems.is_empty())
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a self-test report serializes")
    }

    /// The table for a terminal: a row per case, a column per subject (numbered, with a
    /// legend), then the rules' verdict.
    ///
    /// Cells: `.` pass, `X` fail, `T` timeout, `w` warn, `s` skipped, blank: another mode.
    pub fn human(&self) -> String {
        let mut out = String::new();
        let width = self.rows.iter().map(|r| r.case.len()).max().unwrap_or(4);
        for mode in ["plugin", "host"] {
            let cols: Vec<usize> = (0..self.columns.len())
                .filter(|&i| self.columns[i].mode == mode)
                .collect();
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.mode == mode).collect();
            if cols.is_empty() || rows.is_empty() {
                continue;
            }
            out.push_str(&format!("{mode} cases x {mode} subjects\n"));
            for digit in [100, 10, 1] {
                if digit > cols.len() {
                    continue;
                }
                out.push_str(&format!("{:width$}  ", ""));
                for (n, _) in cols.iter().enumerate() {
                    let n = n + 1;
                    out.push(if n >= digit {
                        char::from(b'0' + ((n / digit) % 10) as u8)
                    } else {
                        ' '
                    });
                }
                out.push('\n');
            }
            for row in rows {
                out.push_str(&format!("{:width$}  ", row.case));
                for &i in &cols {
                    out.push(match &row.cells[i] {
                        None => ' ',
                        Some(c) => match c.verdict {
                            Verdict::Pass => '.',
                            Verdict::Fail => 'X',
                            Verdict::Timeout => 'T',
                            Verdict::Warn => 'w',
                            Verdict::Skipped => 's',
                        },
                    });
                }
                if let Some(why) = row.unreached {
                    out.push_str(&format!("  (no mutant: {why})"));
                }
                out.push('\n');
            }
            out.push('\n');
            for (n, &i) in cols.iter().enumerate() {
                let c = &self.columns[i];
                out.push_str(&format!(
                    "{:>3} {}{} ({:.1} s){}\n",
                    n + 1,
                    c.name,
                    if c.conforming { " (conforming)" } else { "" },
                    c.duration_ms as f64 / 1000.0,
                    if c.description.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", c.description)
                    }
                ));
            }
            out.push('\n');
        }
        out.push_str(". pass  X fail  T timeout  w warn  s skipped\n\n");
        let mutants = self.columns.iter().filter(|c| !c.conforming).count();
        if self.problems.is_empty() {
            out.push_str(&format!(
                "the suite proved its teeth: {} case(s), {mutants} mutant(s), every mutant \
                 caught by its cases, every case catching a mutant or saying why not ({:.1} s)\n",
                self.rows.len(),
                self.duration_ms as f64 / 1000.0
            ));
        } else {
            out.push_str(&format!("{} problem(s):\n", self.problems.len()));
            for p in &self.problems {
                out.push_str(&format!("  {p}\n"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &'static str, caught_by: &'static [(&'static str, &'static str)]) -> Column {
        Column {
            name: name.into(),
            mode: "plugin",
            conforming: caught_by.is_empty(),
            description: String::new(),
            caught_by,
            duration_ms: 0,
        }
    }

    fn cell(verdict: Verdict, reason: &str) -> Option<Cell> {
        Some(Cell {
            verdict,
            reason: reason.into(),
        })
    }

    fn row(case: &'static str, cells: Vec<Option<Cell>>, unreached: Option<&'static str>) -> Row {
        Row {
            case,
            mode: "plugin",
            cells,
            unreached,
        }
    }

    #[test]
    fn a_complete_table_has_no_problem() {
        let columns = [column("agent", &[]), column("m", &[("a", "X-1|X-2")])];
        let rows = [
            row(
                "a",
                vec![cell(Verdict::Pass, ""), cell(Verdict::Fail, "X-2: no")],
                None,
            ),
            row(
                "b",
                vec![cell(Verdict::Pass, ""), cell(Verdict::Pass, "")],
                Some("why"),
            ),
        ];
        assert_eq!(check(&columns, &rows, true), Vec::<String>::new());
    }

    #[test]
    fn each_rule_is_enforced() {
        let columns = [column("agent", &[]), column("m", &[("a", "X-1")])];
        let rows = [
            // Rule 1: the conforming subject fails; rule 2: caught for another reason.
            row(
                "a",
                vec![
                    cell(Verdict::Fail, "X-1: bad"),
                    cell(Verdict::Fail, "X-9: no"),
                ],
                None,
            ),
            // Rule 3: catches nothing, no reason.
            row(
                "b",
                vec![cell(Verdict::Pass, ""), cell(Verdict::Pass, "")],
                None,
            ),
            // Rule 4: listed as unreached, but catches m.
            row(
                "c",
                vec![cell(Verdict::Pass, ""), cell(Verdict::Timeout, "X-3: slow")],
                Some("why"),
            ),
        ];
        let problems = check(&columns, &rows, true);
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].contains("agent (conforming) does not pass a"));
        assert!(problems[1].contains("for \"X-9: no\", not X-1"));
        assert!(problems[2].contains("b catches no mutant"));
        assert!(problems[3].contains("c is listed as reached by no mutant, but catches m"));
        // With some mutants left out, rule 3 is not checked.
        assert_eq!(check(&columns, &rows, false).len(), 3);
    }

    #[test]
    fn a_mutant_not_caught_is_a_problem() {
        let columns = [column("m", &[("a", "X-1")])];
        let rows = [row("a", vec![cell(Verdict::Skipped, "")], Some("n/a"))];
        let problems = check(&columns, &rows, true);
        assert_eq!(problems, vec!["mutant m is not caught by a: skipped"]);
    }

    #[test]
    fn every_host_mutant_listed_is_a_subject_of_the_mutant_host() {
        use crate::mutants::{join, ListedHostMutant, HOST_CATCHES};
        let listed = HOST_CATCHES
            .iter()
            .map(|c| ListedHostMutant {
                name: c.name.into(),
                breaks: vec!["LIFE-1".into()],
                description: format!("what {} does wrong", c.name),
            })
            .collect();
        let mut opts = SelfTestOptions {
            harness: "/bin/harness".into(),
            host: DriverCommand {
                program: "/bin/reference-host".into(),
                args: vec!["driver".into()],
            },
            mutant_host: "/bin/mutant-host".into(),
            host_mutants: join(listed).unwrap(),
            run: RunOptions::new(PluginCommand {
                program: "/bin/unused".into(),
                args: Vec::new(),
            }),
            subjects_at_once: 1,
            only: Vec::new(),
            progress: false,
        };
        let all = subjects(&opts);
        let hosts: Vec<&Subject> = all
            .iter()
            .filter(|s| s.column.mode == "host" && !s.column.conforming)
            .collect();
        assert_eq!(hosts.len(), HOST_CATCHES.len());
        for (s, c) in hosts.iter().zip(HOST_CATCHES) {
            assert_eq!(s.column.name, c.name);
            assert_eq!(s.column.description, format!("what {} does wrong", c.name));
            assert_eq!(s.column.caught_by, c.caught_by);
            let driver = s.options.host.as_ref().unwrap();
            assert_eq!(driver.program, std::path::Path::new("/bin/mutant-host"));
            assert_eq!(driver.args, ["driver", "--mutant", c.name]);
        }
        let conforming = all
            .iter()
            .find(|s| s.column.name == "reference-host")
            .unwrap();
        assert!(conforming.column.conforming);
        assert_eq!(
            conforming.options.host.as_ref().unwrap().program,
            std::path::Path::new("/bin/reference-host")
        );
        // --mutant PATTERN keeps the matching host mutants only.
        opts.only = vec!["never-restarts".into()];
        let names: Vec<String> = subjects(&opts).into_iter().map(|s| s.column.name).collect();
        assert_eq!(names, ["agent", "reference-host", "never-restarts"]);
    }

    #[test]
    fn every_unreached_case_exists() {
        for (id, why) in UNREACHED {
            assert!(crate::cases::find(id).is_some(), "no case {id}");
            assert!(why.len() > 20, "{id}: write the reason out");
        }
    }
}
