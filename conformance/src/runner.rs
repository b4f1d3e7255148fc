//! Selecting and running cases: each case gets a fresh subject process, `jobs` cases run at
//! once, a progress line ([`crate::progress`]) is drawn while they run, the observer's findings
//! are merged into each case's outcome, and every case that does not pass gets a replay file.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crate::cases::Mode;
use crate::cases::{catalog, Case, Runner};
use crate::expect::ExpectList;
use crate::host_under_test::{DriverCommand, HostUnderTest};
use crate::outcome::{Failure, Outcome, Verdict};
use crate::plugin_under_test::{Launch, PluginCommand, PluginUnderTest};
use crate::progress::Progress;
use crate::report::{CaseResult, Report};
use crate::transcript::{CaseInfo, HarnessInfo, ReplayFile, REPLAY_SCHEMA};

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The plugin to test (plugin cases run only with one).
    pub plugin: Option<PluginCommand>,
    /// The host to test, through its driver (host cases run only with one).
    pub host: Option<DriverCommand>,
    /// Run only the cases whose id contains one of these (all when empty).
    pub cases: Vec<String>,
    /// Report the cases whose id contains one of these as skipped.
    pub skip: Vec<String>,
    /// How many cases run at once, each with its own plugin process.
    pub jobs: usize,
    /// Multiplies every timeout.
    pub timeout_scale: f64,
    /// The seed of the cases that choose at random.
    pub seed: u64,
    /// Where replay files go; `None`: none are written.
    pub replay_dir: Option<PathBuf>,
    /// The expected-failure list, if any.
    pub expect: Option<ExpectList>,
    /// Warnings (SHOULD) count as failures.
    pub strict: bool,
    /// Draw a progress line on standard error.
    pub progress: bool,
    /// Run the long cases (`--long`): those that take minutes at a host's own settings.
    pub long: bool,
    /// Keep the recorded exchange of every case that does not pass in its result
    /// ([`CaseResult::recording`]), for the HTML report, whether or not replay files are
    /// written.
    pub keep_recordings: bool,
}

impl RunOptions {
    /// Options that run every plugin case once against `command`, one at a time, with seed 1,
    /// no replay files, no progress line.
    pub fn new(command: PluginCommand) -> RunOptions {
        RunOptions {
            plugin: Some(command),
            host: None,
            cases: Vec::new(),
            skip: Vec::new(),
            jobs: 1,
            timeout_scale: 1.0,
            seed: 1,
            replay_dir: None,
            expect: None,
            strict: false,
            progress: false,
            long: false,
            keep_recordings: false,
        }
    }
}

impl RunOptions {
    /// Whether the run has a subject for `case`'s mode.
    pub fn has_subject(&self, case: &Case) -> bool {
        match case.mode() {
            Mode::Plugin => self.plugin.is_some(),
            Mode::Host => self.host.is_some(),
        }
    }

    /// The subjects, as the report shows them.
    pub fn subjects(&self) -> crate::report::Subjects {
        crate::report::Subjects {
            plugin: self.plugin.as_ref().map(PluginCommand::display),
            host: self.host.as_ref().map(DriverCommand::display),
        }
    }
}

/// Whether `case` is selected by the `--case` patterns (substring match; all when empty).
pub fn selected(case: &Case, patterns: &[String]) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| case.id.contains(p.as_str()))
}

/// What running one case produced: its outcome and, for the replay file, its exchange.
#[derive(Debug)]
pub struct Ran {
    /// The outcome, with the observer's findings merged in.
    pub outcome: Outcome,
    /// The subject's standard error.
    pub stderr: String,
    /// The replay file's content (verdict fields filled in by the caller).
    pub replay: Option<ReplayFile>,
}

/// Runs one case against a freshly launched subject. A panic of the harness while it runs the
/// case is that case's harness error, not the end of the run.
pub fn run_case(case: &Case, opts: &RunOptions) -> Ran {
    let run = std::panic::AssertUnwindSafe(|| match case.mode() {
        Mode::Plugin => match &opts.plugin {
            Some(command) => run_case_inner(case, command, opts.timeout_scale, opts.seed),
            None => no_subject(case),
        },
        Mode::Host => match &opts.host {
            Some(command) => run_host_case(case, command, opts),
            None => no_subject(case),
        },
    });
    let mut ran = std::panic::catch_unwind(run).unwrap_or_else(|payload| {
        let what = panic_text(payload.as_ref());
        Ran {
            outcome: Outcome::error(format!(
                "the harness itself failed while running {} (please report it): {what}",
                case.id
            )),
            stderr: String::new(),
            replay: None,
        }
    });
    ran.outcome = cited_or_harness_error(case, ran.outcome);
    ran
}

/// A case fails only for a requirement it cites or one the observer enforces in every case of
/// its mode (spec/harness.md section 1.2); a failure that names another is a bug of the harness, and
/// is reported as one (a harness error, exit code 2) rather than as a verdict on the subject.
pub fn cited_or_harness_error(case: &Case, outcome: Outcome) -> Outcome {
    let Outcome::Fail(f) = &outcome else {
        return outcome;
    };
    match f.requirement {
        Some(id) if f.setup.is_none() && !crate::cases::may_fail_with(case, id) => {
            Outcome::error(format!(
                "the harness itself failed (please report it): case {} failed with {id}, which \
                 it neither checks nor observes; the failure was: {}",
                case.id,
                f.reason()
            ))
        }
        _ => outcome,
    }
}

/// What a caught panic says.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".to_string())
}

fn no_subject(case: &Case) -> Ran {
    Ran {
        outcome: Outcome::Skipped(format!("no {} to test", case.mode().as_str())),
        stderr: String::new(),
        replay: None,
    }
}

/// The replay file of a case run with `(seed, timeout scale)`.
fn replay_file(
    case: &Case,
    subject: Vec<String>,
    (seed, scale): (u64, f64),
    outcome: &Outcome,
    exchange: Vec<crate::transcript::Entry>,
    exit: Option<crate::transcript::ExitRecord>,
    stderr: &str,
) -> ReplayFile {
    ReplayFile {
        schema: REPLAY_SCHEMA.to_string(),
        harness: HarnessInfo::current(),
        mode: case.mode().as_str().to_string(),
        case: CaseInfo {
            id: case.id.to_string(),
            title: case.title.to_string(),
            requirements: case.requirements.iter().map(|r| r.to_string()).collect(),
        },
        seed,
        timeout_scale: scale,
        subject,
        verdict: outcome.verdict().as_str().to_string(),
        reason: outcome.reason(),
        message: outcome.message(),
        exchange,
        exit,
        stderr: stderr.to_string(),
        schedule: None,
    }
}

/// Runs one host case against a fresh driver.
fn run_host_case(case: &Case, command: &DriverCommand, opts: &RunOptions) -> Ran {
    let (scale, seed) = (opts.timeout_scale, opts.seed);
    let timeout = case.timeout.mul_f64(scale);
    let mut host = match HostUnderTest::launch(command, scale, timeout) {
        Ok(mut host) => {
            host.allow_long(opts.long);
            host
        }
        Err(e) => {
            return Ran {
                outcome: Outcome::error(e.to_string()),
                stderr: String::new(),
                replay: None,
            }
        }
    };
    let outcome = match case.runner {
        Runner::Host(run) => run(&mut host),
        Runner::HostWith(run, arg) => run(&mut host, arg),
        _ => Outcome::error("a plugin case run as a host case"),
    };
    let expired = host.expired();
    // The driver quits and every agent ends first, so that the agents' reports are complete.
    host.shut_down();
    let outcome = merge_host_observations(outcome, &host);
    let outcome = match outcome {
        Outcome::Fail(f) if expired && f.setup.is_none() => Outcome::Timeout(format!(
            "the case did not finish within {timeout:?}\n{}",
            f.describe()
        )),
        other => other,
    };
    let stderr = host.stderr();
    // Only a case that does not pass writes a replay file.
    let replay = (!matches!(outcome, Outcome::Pass)).then(|| {
        replay_file(
            case,
            command.display(),
            (seed, scale),
            &outcome,
            host.recorder().entries(),
            None,
            &stderr,
        )
    });
    Ran {
        outcome,
        stderr,
        replay,
    }
}

/// Fails a host case (or fuzz schedule) that passed when the agents' observer found a
/// violation of the host's sender rules, and puts the observer's finding first in a failure.
/// Call it after [`HostUnderTest::shut_down`], which waits for every agent to end, so that
/// their reports (which travel on their own sockets) are complete.
pub(crate) fn merge_host_observations(outcome: Outcome, host: &HostUnderTest) -> Outcome {
    let found = host.violations();
    match outcome {
        Outcome::Fail(f) if f.setup.is_some() => Outcome::Fail(f),
        // The observer's finding is the more precise: it leads, the case's own failure follows.
        Outcome::Pass | Outcome::Fail(_) if !found.is_empty() => {
            let mut f = Failure::new(
                found[0].0,
                "everything the host writes follows the sender's rules (the agents' observer of \
                 its output)",
                found[0].1.clone(),
            );
            f.also = found[1..]
                .iter()
                .map(|(r, t)| format!("{r}: {t}"))
                .collect();
            if let Outcome::Fail(case) = &outcome {
                f.also
                    .push(format!("the case then failed: {}", case.reason()));
            }
            f.stderr = host.stderr();
            Outcome::fail(f)
        }
        other => other,
    }
}

fn run_case_inner(case: &Case, command: &PluginCommand, scale: f64, seed: u64) -> Ran {
    let timeout = case.timeout.mul_f64(scale);
    let launch = Launch {
        scale,
        case_timeout: timeout,
        stdin_pipe: case.stdin_pipe,
        seed,
    };
    let mut plugin = match PluginUnderTest::launch(command, &launch) {
        Err(e) => {
            return Ran {
                outcome: Outcome::error(format!("cannot launch the plugin: {e}")),
                stderr: String::new(),
                replay: None,
            }
        }
        Ok(plugin) => plugin,
    };
    let outcome = match case.runner {
        Runner::Plugin(run) => run(&mut plugin),
        Runner::PluginWith(run, arg) => run(&mut plugin, arg),
        _ => Outcome::error("a host case run as a plugin case"),
    };
    // Whatever the plugin wrote meanwhile is observed too.
    plugin.drain_ready();
    let outcome = merge_observations(outcome, &plugin);
    let outcome = match outcome {
        Outcome::Fail(f) if plugin.expired() && f.setup.is_none() => Outcome::Timeout(format!(
            "the case did not finish within {timeout:?}\n{}",
            f.describe()
        )),
        other => other,
    };
    let exit = plugin.try_exit();
    let stderr = plugin.stderr();
    // Only a case that does not pass writes a replay file.
    let replay = (!matches!(outcome, Outcome::Pass)).then(|| {
        replay_file(
            case,
            command.display(),
            (seed, scale),
            &outcome,
            plugin.recorder().entries(),
            exit.map(Into::into),
            &stderr,
        )
    });
    // `plugin` is dropped here: killed and reaped, with whatever it left behind.
    Ran {
        outcome,
        stderr,
        replay,
    }
}

/// Fails a case that passed when the observer found a violation in what the plugin wrote, and
/// adds the observer's findings to a failure.
pub(crate) fn merge_observations(outcome: Outcome, plugin: &PluginUnderTest) -> Outcome {
    let found: Vec<(u64, rpcplugin_codec::trace::Violation)> = plugin.violations().to_vec();
    if found.is_empty() {
        return outcome;
    }
    let describe = |(offset, v): &(u64, rpcplugin_codec::trace::Violation)| {
        format!("at byte {offset} of the plugin's output: {}", v.text)
    };
    match outcome {
        // The case stopped because of what the observer saw: that is the failure.
        Outcome::Fail(f) if plugin.stopped_by_observer() && f.setup.is_none() => {
            let first = &found[0];
            let mut primary = Failure::new(
                first.1.requirement,
                "everything the plugin writes follows the sender's rules (the harness's observer \
                 of its output)",
                describe(first),
            );
            primary.also = found[1..]
                .iter()
                .map(|x| format!("{}: {}", x.1.requirement, describe(x)))
                .collect();
            primary
                .also
                .push(format!("the case then failed: {}", f.reason()));
            primary.stderr = plugin.stderr();
            Outcome::fail(primary)
        }
        Outcome::Fail(mut f) => {
            f.also.extend(
                found
                    .iter()
                    .map(|x| format!("{}: {}", x.1.requirement, describe(x))),
            );
            Outcome::Fail(f)
        }
        _ => {
            let first = &found[0];
            let mut f = Failure::new(
                first.1.requirement,
                "everything the plugin writes follows the sender's rules (the harness's observer \
                 of its output)",
                describe(first),
            );
            f.also = found[1..]
                .iter()
                .map(|x| format!("{}: {}", x.1.requirement, describe(x)))
                .collect();
            f.stderr = plugin.stderr();
            Outcome::fail(f)
        }
    }
}

fn result(case: &Case, outcome: &Outcome, start: Instant, stderr: String) -> CaseResult {
    CaseResult {
        id: case.id,
        mode: case.mode().as_str(),
        title: case.title,
        requirements: case.requirements,
        verdict: outcome.verdict(),
        reason: outcome.reason(),
        message: outcome.message(),
        duration_ms: start.elapsed().as_millis() as u64,
        replay: None,
        expectation: None,
        setup_error: outcome.is_setup_error(),
        stderr,
        recording: None,
    }
}

/// The file name of a case's replay file: its id with `/` turned into `__`.
pub fn replay_file_name(id: &str) -> String {
    format!("{}.json", id.replace('/', "__"))
}

fn write_replay(dir: &std::path::Path, file: &ReplayFile) -> Result<PathBuf, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the replay directory {}: {e}", dir.display()))?;
    let path = dir.join(replay_file_name(&file.case.id));
    let text = serde_json::to_string_pretty(file).map_err(|e| e.to_string())?;
    std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}

/// What the progress line of a run shows: cases done, failed and warned, and the cases running.
struct RunProgress {
    line: Progress,
    state: Mutex<(usize, usize, Vec<&'static str>)>,
}

impl RunProgress {
    fn update(&self, done: Option<(&'static str, Verdict)>, started: Option<&'static str>) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((id, verdict)) = done {
            self.line.inc();
            if matches!(verdict, Verdict::Fail | Verdict::Timeout) {
                st.0 += 1;
            }
            if verdict == Verdict::Warn {
                st.1 += 1;
            }
            st.2.retain(|r| *r != id);
        }
        if let Some(id) = started {
            st.2.push(id);
        }
        let running = st.2.first().copied().unwrap_or("");
        self.line
            .set_message(format!("{} failed, {} warned  {running}", st.0, st.1));
    }
}

/// Runs the selected cases, `jobs` at a time.
pub fn run(opts: &RunOptions) -> Report {
    let cases: Vec<&Case> = catalog()
        .iter()
        .filter(|c| selected(c, &opts.cases) && opts.has_subject(c))
        .collect();
    let results: Mutex<Vec<Option<CaseResult>>> = Mutex::new(vec![None; cases.len()]);
    let next = AtomicUsize::new(0);
    let jobs = opts.jobs.clamp(1, cases.len().max(1));
    let progress = RunProgress {
        line: Progress::new(opts.progress, Some(cases.len() as u64)),
        state: Mutex::new((0, 0, Vec::new())),
    };
    thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(case) = cases.get(i) else { break };
                let start = Instant::now();
                let mut r = if opts.skip.iter().any(|p| case.id.contains(p.as_str())) {
                    result(
                        case,
                        &Outcome::Skipped("skipped by --skip".into()),
                        start,
                        String::new(),
                    )
                } else {
                    progress.update(None, Some(case.id));
                    let ran = run_case(case, opts);
                    let mut r = result(case, &ran.outcome, start, ran.stderr);
                    if let Some(file) = ran.replay {
                        if !matches!(r.verdict, Verdict::Pass | Verdict::Skipped) {
                            if let Some(dir) = &opts.replay_dir {
                                match write_replay(dir, &file) {
                                    Ok(path) => r.replay = Some(path.display().to_string()),
                                    Err(e) => {
                                        r.message.push_str(&format!("\n(no replay file: {e})"))
                                    }
                                }
                            }
                            if opts.keep_recordings {
                                r.recording = Some(Box::new(file));
                            }
                        }
                    }
                    r
                };
                if let Some(list) = &opts.expect {
                    let failed = matches!(r.verdict, Verdict::Fail | Verdict::Timeout);
                    if r.verdict != Verdict::Skipped {
                        r.expectation = Some(list.check(r.id, failed, &r.reason));
                    }
                }
                progress.update(Some((case.id, r.verdict)), None);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    progress.line.finish();
    let cases: Vec<CaseResult> = results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .flatten()
        .collect();
    Report::new(opts.subjects(), opts.seed, opts.strict, cases)
}

/// How long a whole run may take at most, for the cases selected (their timeouts, scaled,
/// divided among the jobs): a bound for tests and progress estimates.
pub fn worst_case(opts: &RunOptions) -> Duration {
    let total: Duration = catalog()
        .iter()
        .filter(|c| selected(c, &opts.cases) && opts.has_subject(c))
        .map(|c| c.timeout.mul_f64(opts.timeout_scale))
        .sum();
    total / opts.jobs.max(1) as u32
}
