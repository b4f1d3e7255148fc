//! `rpcplugin-conformance`: tests a plugin executable against rpcplugin wire protocol 1.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rpcplugin_codec::stream::Role;
use rpcplugin_conformance::agent::{mutant, AgentEnd, Behaviour, MUTANTS};
use rpcplugin_conformance::cases::{catalog, find};
use rpcplugin_conformance::expect::ExpectList;
use rpcplugin_conformance::fuzz::{
    fuzz, parse_duration, run_schedule, FuzzOptions, Schedule, Subject,
};
use rpcplugin_conformance::host_under_test::DriverCommand;
use rpcplugin_conformance::html::{HtmlOptions, DEFAULT_SPEC_URL};
use rpcplugin_conformance::inspect::inspect_path;
use rpcplugin_conformance::plugin_under_test::PluginCommand;
use rpcplugin_conformance::replay::replay;
use rpcplugin_conformance::report::Report;
use rpcplugin_conformance::runner::{run, selected, RunOptions};
use rpcplugin_conformance::selftest::SelfTestOptions;
use rpcplugin_conformance::transcript::ReplayFile;

/// Writes to standard output, through `anstream`: ANSI colours pass only where `--color`
/// (auto: a terminal, no `NO_COLOR`; `CLICOLOR_FORCE` forces) allows them. A reader that has
/// gone away (`| head`) ends nothing of ours: the rest is dropped quietly, where `print!` would
/// panic.
fn write_out(args: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = anstream::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("rpcplugin-conformance: cannot write to standard output: {e}");
        }
    }
}

/// `print!` through [`write_out`].
macro_rules! out {
    ($($arg:tt)*) => { write_out(format_args!($($arg)*)) };
}

/// `println!` through [`write_out`].
macro_rules! outln {
    ($($arg:tt)*) => { write_out(format_args!("{}\n", format_args!($($arg)*))) };
}

const EXAMPLES: &str = "\
Examples:
  rpcplugin-conformance                          run the whole suite against the reference
                                                 plugin and the reference host next to this
                                                 binary, or else on PATH
  rpcplugin-conformance host -- ./my-driver --config x.toml
                                                 test a host through its driver (spec 07 section
                                                 7.2: JSON lines on stdin/stdout)
  rpcplugin-conformance --long host -- ./my-driver
                                                 the same, with the backoff cases that take
                                                 minutes when the driver cannot set the host's
                                                 longest restart delay and stable period
  rpcplugin-conformance plugin ./my-plugin       test ./my-plugin
  rpcplugin-conformance plugin ./my-plugin --verbose
                                                 test ./my-plugin, started with --verbose
  rpcplugin-conformance --case handshake --format json plugin ./my-plugin
  rpcplugin-conformance --jobs 4 --junit report.xml plugin ./my-plugin
  rpcplugin-conformance --html report.html plugin ./my-plugin
                                                 also write one self-contained HTML page: the
                                                 summary, the cases, and a sequence diagram of
                                                 each failing exchange (also for self-test, fuzz)
  rpcplugin-conformance --expect-fail known.txt plugin ./my-plugin
                                                 fail only on changes: new failures, failures
                                                 with another reason, and cases now passing
  rpcplugin-conformance list                     every case, the requirements it checks, its title
  rpcplugin-conformance list --requirements      every requirement: level, role (host, plugin,
                                                 both, driver), section, the cases checking it
  rpcplugin-conformance replay rpcplugin-conformance-replays/plugin__framing__oversized-frame.json
                                                 play a failing case's exchange back
  rpcplugin-conformance inspect capture.bin      decode the bytes a plugin wrote
  rpcplugin-conformance fuzz --seed 7 --time 5m plugin ./my-plugin
                                                 random schedules against ./my-plugin for five
                                                 minutes; a failure is shrunk to a replay file
  rpcplugin-conformance fuzz --cases 50 host -- ./my-driver
  rpcplugin-conformance self-test                the suite against every mutant: the table
                                                 case x mutant, and whether every case can fail

Verdicts: pass; fail (a requirement not met); warn (a recommendation, SHOULD, not followed:
a failure under --strict); timeout (the case's own deadline passed); skipped.

Every case that does not pass writes a replay file (--replay-dir) with every byte sent and
received, for `replay` and `inspect`.

Exit status: 0 conformant, 1 not conformant (a case failed or timed out, including a plugin
that never announces; with --expect-fail, a listed case that passes or fails otherwise),
2 harness or setup error (the plugin is missing, not executable, or exited before the
handshake; an unreadable expected-failure list).";

/// Tests plugins and hosts against rpcplugin wire protocol 1: the harness plays the host
/// against a plugin executable, or the plugins of a host (through the host's driver), runs a
/// catalog of cases, and reports which requirements of the specification the subject meets,
/// citing the requirement each failure breaks.
#[derive(Debug, Parser)]
#[command(name = "rpcplugin-conformance", version = version_text(), after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Run only the cases whose id contains PATTERN (repeatable).
    #[arg(long = "case", value_name = "PATTERN", global = true)]
    cases: Vec<String>,
    /// Skip the cases whose id contains PATTERN (repeatable).
    #[arg(long, value_name = "PATTERN", global = true)]
    skip: Vec<String>,
    /// How many cases run at once, each with its own subject process (default: the number of
    /// CPUs).
    #[arg(long, global = true)]
    jobs: Option<usize>,
    /// Multiplies every timeout (for slow machines).
    #[arg(long, default_value_t = 1.0, global = true)]
    timeout_scale: f64,
    /// The seed of the cases that split or order at random; a failing case's replay file
    /// records it.
    #[arg(long, default_value_t = 1, global = true)]
    seed: u64,
    /// The report's format on standard output.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    format: Format,
    /// Also write the report as JUnit XML to FILE.
    #[arg(long, value_name = "FILE", global = true)]
    junit: Option<PathBuf>,
    /// Also write the report as one self-contained HTML page to FILE (no network, readable
    /// without JavaScript): the summary, the table of cases, and for each failing, warning or
    /// timed-out case its requirement, what was expected and what happened, and a sequence
    /// diagram of its exchange; for self-test the table case x subject, for fuzz each failure,
    /// for bench the figures and a plot of each distribution against its floor's.
    #[arg(long, value_name = "FILE", global = true)]
    html: Option<PathBuf>,
    /// The base of the HTML report's links to the specification's chapters,
    /// BASE/02-framing.md#24-header-values (the default, `spec`, is their folder in the
    /// repository, relative to the page).
    #[arg(long, value_name = "BASE", default_value = DEFAULT_SPEC_URL, global = true)]
    spec_url: String,
    /// An expected-failure list: one case id per line, then the start of its expected reason.
    #[arg(long, value_name = "FILE", global = true)]
    expect_fail: Option<PathBuf>,
    /// Rewrite the --expect-fail file with this run's failures.
    #[arg(long, global = true, requires = "expect_fail")]
    update_expect_fail: bool,
    /// Count warnings (recommendations not followed) as failures.
    #[arg(long, global = true)]
    strict: bool,
    /// Also run the long cases: the backoff cases of a host whose driver does not honour
    /// restart_delay_max_ms or stable_period_ms, which then take one to two minutes each at the
    /// host's own values (skipped otherwise, with a reason that says so).
    #[arg(long, global = true)]
    long: bool,
    /// Where failing cases write their replay files.
    #[arg(
        long,
        value_name = "DIR",
        default_value = "rpcplugin-conformance-replays",
        global = true
    )]
    replay_dir: PathBuf,
    /// Write no replay files.
    #[arg(long, global = true)]
    no_replays: bool,
    /// Colour the human report (auto: when standard output is a terminal and NO_COLOR is not
    /// set; CLICOLOR_FORCE forces it).
    #[arg(long, value_enum, default_value_t = When::Auto, global = true)]
    color: When,
    /// Show progress on standard error (auto: with the human format): a line redrawn in place
    /// where standard error is a terminal, and above it, or alone elsewhere, a line for each
    /// self-test subject done and each fuzz failure found.
    #[arg(long, value_enum, default_value_t = When::Auto, global = true)]
    progress: When,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Test a plugin executable (the default subject is the reference plugin).
    Plugin {
        /// The plugin executable.
        executable: PathBuf,
        /// Arguments passed to it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Test a host, through its driver (spec 07 section 7.2): the driver and its arguments
    /// after `--`.
    Host {
        /// The driver executable and its arguments.
        #[arg(last = true, required = true, value_name = "DRIVER")]
        driver: Vec<OsString>,
    },
    /// Fuzz a plugin or a host with random schedules from --seed: interleaved calls, frames for
    /// unknown streams and stream 0, random splits and stalls, malformed frames, crashes. A
    /// failing schedule is shrunk and written as a replay file (exit 0: no failure, 1: a
    /// requirement broken, 2: harness or setup error).
    Fuzz {
        #[command(subcommand)]
        subject: FuzzSubject,
        /// Stop after N schedules (default 100, or no limit with --time).
        #[arg(long = "cases", id = "fuzz_cases", value_name = "N", global = true)]
        schedules: Option<u64>,
        /// Stop after this long: `90s`, `10m`, `1h 30m` or whole seconds.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration, global = true)]
        time: Option<std::time::Duration>,
        /// At most this many runs to shrink a failing schedule.
        #[arg(long, default_value_t = 40, global = true)]
        shrink_runs: usize,
        /// Go on after a failure (default: stop at the first, once shrunk).
        #[arg(long, global = true)]
        keep_going: bool,
    },
    /// Print every case: id, requirements and title (tab-separated; JSON with --format json).
    /// With --requirements, every requirement instead: id, level, role (host, plugin, both,
    /// driver), section, the cases that check it, and its text.
    List {
        /// List the requirements of the specification, not the cases.
        #[arg(long)]
        requirements: bool,
    },
    /// Play a replay file's exchange back and compare the plugin's output with the recording
    /// (exit 0: reproduced, 1: the plugin behaved otherwise, 2: unusable file or plugin).
    Replay {
        /// The replay file.
        file: PathBuf,
        /// Re-run the case itself (same id, seed and timeout scale) instead of replaying bytes;
        /// exit codes as for a run.
        #[arg(long)]
        rerun: bool,
        /// The plugin and its arguments (default: the subject recorded in the file), after --.
        #[arg(last = true)]
        subject: Vec<OsString>,
    },
    /// Run as a plugin: the harness's own agent, conforming or as one of its mutants (each
    /// breaks one rule; `list-mutants` names them). Only a host starts it, with its pipes as
    /// descriptors 3 and 4: `rpcplugin-conformance plugin rpcplugin-conformance agent --mutant
    /// wrong-seq` shows the suite catching a mutant.
    Agent {
        /// The misbehaviour (default: none, a conforming plugin).
        #[arg(long, conflicts_with = "control")]
        mutant: Option<String>,
        /// For host cases: the harness's Unix socket, from which the agent takes its behaviour
        /// and to which it reports.
        #[arg(long, value_name = "SOCKET")]
        control: Option<PathBuf>,
        /// Accept exactly what the spec guarantees and nothing more (gob messages of 4 MiB
        /// nested 16 levels deep; frames of 1 MiB and 8 MiB stream buffers): the suite must
        /// pass against such a plugin too.
        #[arg(long, conflicts_with = "control")]
        min_limits: bool,
        /// For host cases: the arguments the host started the plugin with, after its name, as
        /// the agent's script passes them on (TRANS-14).
        #[arg(last = true, value_name = "HOST_ARGS")]
        host_args: Vec<String>,
    },
    /// Print every mutant the self-test proves the cases against, both roles: the agent's
    /// plugin mutants and the host mutants of rpcplugin-mutant-host (next to this binary), one
    /// per line: role, name, the cases that must catch it (with the requirement), and what it
    /// does wrong.
    ListMutants,
    /// Prove the suite's teeth: run the catalog against the conforming agent and reference
    /// host and against every mutant of both (the agent's, and the broken hosts of
    /// rpcplugin-mutant-host next to this binary, each run as `rpcplugin-mutant-host driver
    /// --mutant NAME`), print the table case x subject, and check that every mutant is caught
    /// by its cases (with the requirement it breaks) and every case catches a mutant or says
    /// why none reaches it (exit 0: all hold, 1: not).
    SelfTest {
        /// Test only the mutants whose name contains PATTERN (repeatable); the conforming
        /// subjects always run.
        #[arg(long = "mutant", value_name = "PATTERN")]
        mutants: Vec<String>,
        /// How many subjects are tested at once (each runs --jobs cases at once; most of a
        /// mutant's cases wait for something that never comes, so this may exceed the CPUs).
        #[arg(long, default_value_t = 6)]
        subjects: usize,
    },
    /// Benchmark a plugin or a host, each figure next to its floor (the same operation without
    /// the protocol) in alternating rounds: start time, hook round trip, pipelined calls,
    /// one-stream throughput and memory of a plugin; start, activation, hook call, stop and
    /// restart of a host through its driver (exit 0: figures printed, 2: cannot bench it).
    Bench(rpcplugin_conformance::bench::cli::BenchArgs),
    /// Decode a capture: a replay file, or the raw bytes one endpoint wrote (exit 0: no
    /// violation, 1: violations, 2: unusable input).
    Inspect {
        /// The file.
        file: PathBuf,
        /// Who wrote a raw capture.
        #[arg(long, value_enum, default_value_t = Sender::Plugin)]
        from: Sender,
        /// The raw capture is hex text, not bytes.
        #[arg(long)]
        hex: bool,
    },
}

#[derive(Debug, Subcommand)]
enum FuzzSubject {
    /// Fuzz a plugin executable.
    Plugin {
        /// The plugin executable.
        executable: PathBuf,
        /// Arguments passed to it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Fuzz a host, through its driver (after `--`).
    Host {
        /// The driver executable and its arguments.
        #[arg(last = true, required = true, value_name = "DRIVER")]
        driver: Vec<OsString>,
    },
}

/// The driver and its arguments, as given after `--` (clap requires at least the driver).
fn driver_command(driver: &[OsString]) -> DriverCommand {
    let (program, rest) = driver.split_first().expect("clap requires the driver");
    DriverCommand {
        program: PathBuf::from(program),
        args: rest.to_vec(),
    }
}

/// `--version`: the harness's version and the specification it tests (the protocol and the
/// document version of `spec/requirements.json`).
fn version_text() -> &'static str {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TEXT.get_or_init(|| {
        format!(
            "{} (tests {}, specification {})",
            env!("CARGO_PKG_VERSION"),
            rpcplugin_codec::PROTOCOL,
            rpcplugin_conformance::requirements::spec_version()
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum When {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Sender {
    Plugin,
    Host,
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("rpcplugin-conformance: {message}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    // The bench's floor child takes descriptors 3 and 4 before anything, clap included: its
    // start and its memory are a floor.
    if let Some(code) = rpcplugin_conformance::bench::floor::run_if_floor() {
        return code;
    }
    let cli = Cli::parse();
    // The agent takes over descriptors 3 and 4 before anything else opens a file.
    if let Some(Command::Agent {
        mutant,
        control,
        min_limits,
        host_args,
    }) = &cli.command
    {
        return agent(
            mutant.as_deref(),
            control.as_deref(),
            *min_limits,
            host_args,
        );
    }
    let args = &cli.run;
    anstream::ColorChoice::write_global(match args.color {
        When::Auto => anstream::ColorChoice::Auto,
        When::Always => anstream::ColorChoice::Always,
        When::Never => anstream::ColorChoice::Never,
    });
    // Descriptors this process inherited without close-on-exec (from a shell, a CI runner)
    // would leak into the drivers and plugins it starts, and into their checks (TRANS-4).
    let _ = rpcplugin_runtime::process::close_inheritable_descriptors();
    if !(args.timeout_scale.is_finite() && args.timeout_scale > 0.0) {
        return fail("--timeout-scale must be a positive number");
    }
    match cli.command {
        Some(Command::List { requirements }) => {
            if requirements {
                list_requirements(args)
            } else {
                list(args)
            }
        }
        Some(Command::Agent { .. }) => unreachable!("handled first"),
        Some(Command::Bench(bench)) => bench_command(args, &bench),
        Some(Command::ListMutants) => {
            let hosts = match host_mutants() {
                Ok((_, hosts)) => hosts,
                Err(message) => return fail(message),
            };
            let caught = |by: &[(&str, &str)]| {
                by.iter()
                    .map(|(case, req)| format!("{case} ({req})"))
                    .collect::<Vec<String>>()
                    .join(", ")
            };
            for m in MUTANTS {
                outln!(
                    "plugin\t{}\t{}\t{}",
                    m.name,
                    caught(m.caught_by),
                    m.description
                );
            }
            for m in hosts {
                outln!(
                    "host\t{}\t{}\t{}",
                    m.listed.name,
                    caught(m.caught_by),
                    m.listed.description
                );
            }
            ExitCode::SUCCESS
        }
        Some(Command::SelfTest { mutants, subjects }) => self_test(args, mutants, subjects),
        Some(Command::Fuzz {
            subject,
            schedules,
            time,
            shrink_runs,
            keep_going,
        }) => {
            let subject = match subject {
                FuzzSubject::Plugin { executable, args } => Subject::Plugin(PluginCommand {
                    program: executable,
                    args,
                }),
                FuzzSubject::Host { driver } => Subject::Host(driver_command(&driver)),
            };
            let program = match &subject {
                Subject::Plugin(p) => &p.program,
                Subject::Host(h) => &h.program,
            };
            if let Err(message) = preflight(program) {
                return fail(message);
            }
            let report = fuzz(&FuzzOptions {
                subject,
                seed: args.seed,
                cases: schedules,
                time,
                jobs: jobs(args),
                timeout_scale: args.timeout_scale,
                shrink_runs,
                replay_dir: (!args.no_replays).then(|| args.replay_dir.clone()),
                keep_going,
                progress: progress(args),
            });
            match args.format {
                Format::Human => out!("{}", report.human()),
                Format::Json => outln!("{}", report.json()),
            }
            if let Err(code) = write_html(args, |o| rpcplugin_conformance::html::fuzz(&report, o)) {
                return code;
            }
            ExitCode::from(report.exit_code() as u8)
        }
        Some(Command::Plugin {
            executable,
            args: a,
        }) => suite(
            args,
            Some(PluginCommand {
                program: executable,
                args: a,
            }),
            None,
        ),
        Some(Command::Host { driver }) => suite(args, None, Some(driver_command(&driver))),
        None => match (
            reference_binary("rpcplugin-reference-plugin"),
            reference_binary("rpcplugin-reference-host"),
        ) {
            (Ok(plugin), Ok(host)) => suite(
                args,
                Some(PluginCommand {
                    program: plugin,
                    args: Vec::new(),
                }),
                Some(DriverCommand {
                    program: host,
                    args: vec!["driver".into()],
                }),
            ),
            (Err(message), _) | (_, Err(message)) => fail(format!(
                "{message}; or name the subjects yourself: `rpcplugin-conformance plugin \
                 <executable> [args]`, `rpcplugin-conformance host -- <driver> [args]`"
            )),
        },
        Some(Command::Replay {
            file,
            rerun,
            subject,
        }) => replay_command(args, &file, rerun, subject),
        Some(Command::Inspect { file, from, hex }) => {
            let sender = match from {
                Sender::Plugin => Role::Plugin,
                Sender::Host => Role::Host,
            };
            match inspect_path(&file, sender, hex) {
                Err(e) => fail(e),
                Ok(found) => {
                    match args.format {
                        Format::Human => out!("{}", found.human()),
                        Format::Json => outln!("{}", found.json()),
                    }
                    ExitCode::from(u8::from(found.violations > 0))
                }
            }
        }
    }
}

fn agent(
    name: Option<&str>,
    control: Option<&std::path::Path>,
    min_limits: bool,
    host_args: &[String],
) -> ExitCode {
    if let Some(socket) = control {
        return agent_end(rpcplugin_conformance::agent::run_controlled(
            socket, host_args,
        ));
    }
    let behaviour = match name {
        None => Behaviour::default(),
        Some(name) => match mutant(name) {
            Some(m) => (m.behaviour)(),
            None => {
                return fail(format!(
                    "no mutant {name:?} (`rpcplugin-conformance list-mutants` names them)"
                ))
            }
        },
    };
    agent_end(rpcplugin_conformance::agent::run(Behaviour {
        min_limits,
        ..behaviour
    }))
}

fn agent_end(end: AgentEnd) -> ExitCode {
    match end {
        AgentEnd::HostClosed(code) => ExitCode::from(code.clamp(0, 255) as u8),
        AgentEnd::Failed(e) => {
            eprintln!("rpcplugin-conformance agent: {e}");
            ExitCode::from(1)
        }
        AgentEnd::NoPipes(e) => fail(format!(
            "the agent is a plugin: start it from a host, which passes its pipes as \
             descriptors 3 and 4 ({e})"
        )),
    }
}

fn list(args: &RunArgs) -> ExitCode {
    let cases: Vec<_> = catalog()
        .iter()
        .filter(|c| selected(c, &args.cases))
        .collect();
    match args.format {
        Format::Human => {
            for case in cases {
                outln!(
                    "{}\t{}\t{}",
                    case.id,
                    case.requirements.join(","),
                    case.title
                );
            }
        }
        Format::Json => {
            let v: Vec<serde_json::Value> = cases
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id,
                        "mode": c.mode().as_str(),
                        "title": c.title,
                        "requirements": c.requirements,
                        "timeout_ms": c.timeout.as_millis() as u64,
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        }
    }
    ExitCode::SUCCESS
}

/// `list --requirements`: every requirement with the cases that check it (among the cases
/// --case and --skip select).
fn list_requirements(args: &RunArgs) -> ExitCode {
    let cases: Vec<_> = catalog()
        .iter()
        .filter(|c| selected(c, &args.cases))
        .collect();
    let checked_by = |id: &str| -> Vec<&str> {
        cases
            .iter()
            .filter(|c| c.requirements.contains(&id))
            .map(|c| c.id)
            .collect()
    };
    let all = rpcplugin_conformance::requirements::all();
    match args.format {
        Format::Human => {
            for r in all {
                let by = checked_by(&r.id);
                outln!(
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    r.id,
                    r.level,
                    r.role,
                    r.section,
                    if by.is_empty() {
                        "(no case: codec tests)".to_string()
                    } else {
                        by.join(",")
                    },
                    r.text
                );
            }
        }
        Format::Json => {
            let v: Vec<serde_json::Value> = all
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "id": r.id,
                        "level": r.level,
                        "role": r.role,
                        "chapter": r.chapter,
                        "section": r.section,
                        "cases": checked_by(&r.id),
                        "text": r.text,
                    })
                })
                .collect();
            outln!("{}", serde_json::to_string_pretty(&v).expect("serializes"));
        }
    }
    ExitCode::SUCCESS
}

fn suite(args: &RunArgs, plugin: Option<PluginCommand>, host: Option<DriverCommand>) -> ExitCode {
    for program in plugin
        .iter()
        .map(|p| &p.program)
        .chain(host.iter().map(|h| &h.program))
    {
        if let Err(message) = preflight(program) {
            return fail(message);
        }
    }
    let expect = match &args.expect_fail {
        Some(path) if !args.update_expect_fail || path.exists() => match ExpectList::read(path) {
            Ok(list) => Some(list),
            Err(e) => return fail(e),
        },
        _ => None,
    };
    let mut opts = RunOptions::new(PluginCommand {
        program: PathBuf::new(),
        args: Vec::new(),
    });
    opts.plugin = plugin;
    opts.host = host;
    opts.cases = args.cases.clone();
    opts.skip = args.skip.clone();
    opts.jobs = jobs(args);
    opts.timeout_scale = args.timeout_scale;
    opts.seed = args.seed;
    opts.replay_dir = (!args.no_replays).then(|| args.replay_dir.clone());
    opts.expect = if args.update_expect_fail {
        None
    } else {
        expect
    };
    opts.strict = args.strict;
    opts.long = args.long;
    opts.keep_recordings = args.html.is_some();
    opts.progress = progress(args);
    let report = run(&opts);
    print_report(args, &report);
    if let Some(path) = &args.junit {
        if let Err(e) = std::fs::write(path, report.junit()) {
            return fail(format!(
                "cannot write the JUnit report {}: {e}",
                path.display()
            ));
        }
    }
    if let Err(code) = write_html(args, |o| rpcplugin_conformance::html::report(&report, o)) {
        return code;
    }
    if args.update_expect_fail {
        let path = args
            .expect_fail
            .as_ref()
            .expect("clap requires --expect-fail");
        let failures: Vec<(String, String)> = report
            .cases
            .iter()
            .filter(|c| c.counts_as_failure(args.strict) && !c.setup_error)
            .map(|c| (c.id.to_string(), c.reason.clone()))
            .collect();
        if let Err(e) = std::fs::write(path, ExpectList::render(&failures)) {
            return fail(format!("cannot write {}: {e}", path.display()));
        }
        eprintln!(
            "rpcplugin-conformance: wrote {} expected failure(s) to {}",
            failures.len(),
            path.display()
        );
    }
    ExitCode::from(report.exit_code() as u8)
}

fn self_test(args: &RunArgs, only: Vec<String>, subjects: usize) -> ExitCode {
    let harness = match std::env::current_exe() {
        Ok(path) => path,
        Err(e) => return fail(format!("cannot find the harness binary itself: {e}")),
    };
    let host = match reference_binary("rpcplugin-reference-host") {
        Ok(path) => path,
        Err(message) => return fail(message),
    };
    let (mutant_host, host_mutants) = match host_mutants() {
        Ok(found) => found,
        Err(message) => return fail(message),
    };
    let mut run = RunOptions::new(PluginCommand {
        program: PathBuf::new(),
        args: Vec::new(),
    });
    run.cases = args.cases.clone();
    run.skip = args.skip.clone();
    run.jobs = jobs(args);
    run.timeout_scale = args.timeout_scale;
    run.seed = args.seed;
    let result = rpcplugin_conformance::selftest::self_test(&SelfTestOptions {
        harness,
        host: DriverCommand {
            program: host,
            args: vec!["driver".into()],
        },
        mutant_host,
        host_mutants,
        run,
        subjects_at_once: subjects.max(1),
        only,
        progress: progress(args),
    });
    match args.format {
        Format::Human => out!("{}", result.human()),
        Format::Json => outln!("{}", result.json()),
    }
    if let Err(code) = write_html(args, |o| rpcplugin_conformance::html::self_test(&result, o)) {
        return code;
    }
    ExitCode::from(result.exit_code() as u8)
}

/// Writes the HTML report to the `--html` file, if one was asked for.
fn write_html(
    args: &RunArgs,
    page: impl FnOnce(&HtmlOptions) -> Result<String, String>,
) -> Result<(), ExitCode> {
    let Some(path) = &args.html else {
        return Ok(());
    };
    let text = page(&HtmlOptions {
        spec_url: args.spec_url.clone(),
    })
    .map_err(fail)?;
    std::fs::write(path, text).map_err(|e| {
        fail(format!(
            "cannot write the HTML report {}: {e}",
            path.display()
        ))
    })
}

/// Whether run, fuzz and self-test show their progress ([`rpcplugin_conformance::progress`]):
/// under `auto`, with the human format. The line itself is drawn only on a terminal.
fn progress(args: &RunArgs) -> bool {
    match args.progress {
        When::Always => true,
        When::Never => false,
        When::Auto => args.format == Format::Human,
    }
}

fn jobs(args: &RunArgs) -> usize {
    args.jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1)
}

fn print_report(args: &RunArgs, report: &Report) {
    match args.format {
        // Coloured; write_out strips the colours where --color does not want them.
        Format::Human => out!("{}", report.human(true)),
        Format::Json => outln!("{}", report.json()),
    }
}

fn replay_command(
    args: &RunArgs,
    file: &std::path::Path,
    rerun: bool,
    subject: Vec<OsString>,
) -> ExitCode {
    let recorded = match ReplayFile::read(file) {
        Ok(f) => f,
        Err(e) => return fail(e),
    };
    let (program, rest): (PathBuf, Vec<OsString>) = match subject.split_first() {
        Some((program, rest)) => (PathBuf::from(program), rest.to_vec()),
        None => match recorded.subject.split_first() {
            Some((program, rest)) => (
                PathBuf::from(program),
                rest.iter().map(OsString::from).collect(),
            ),
            None => {
                return fail(format!(
                    "{} names no subject; give one after --",
                    file.display()
                ))
            }
        },
    };
    if let Err(message) = preflight(&program) {
        return fail(message);
    }
    let host_case = recorded.mode == "host";
    if let Some(schedule) = &recorded.schedule {
        if rerun || host_case {
            return rerun_schedule(args, &recorded, schedule, program, rest);
        }
    }
    if rerun || host_case {
        // A host initiates its exchanges, so a host case is always run again.
        if find(&recorded.case.id).is_none() {
            return fail(format!(
                "{} records case {}, which this harness does not have",
                file.display(),
                recorded.case.id
            ));
        }
        let mut opts = RunOptions::new(PluginCommand {
            program: program.clone(),
            args: rest.clone(),
        });
        if host_case {
            opts.plugin = None;
            opts.host = Some(DriverCommand {
                program,
                args: rest,
            });
        }
        opts.cases = vec![recorded.case.id.clone()];
        opts.seed = recorded.seed;
        opts.timeout_scale = recorded.timeout_scale;
        opts.replay_dir = None;
        opts.strict = args.strict;
        // A rerun names its case: a long one runs however long it takes.
        opts.long = true;
        let mut report = run(&opts);
        report.cases.retain(|c| c.id == recorded.case.id);
        let report = Report::new(report.subject, report.seed, args.strict, report.cases);
        print_report(args, &report);
        return ExitCode::from(report.exit_code() as u8);
    }
    let command = PluginCommand {
        program,
        args: rest,
    };
    match replay(&recorded, &command) {
        Err(e) => fail(e),
        Ok(result) => {
            for line in &result.lines {
                outln!("{line}");
            }
            if result.reproduced() {
                outln!("reproduced: the plugin did what the recording shows");
                ExitCode::SUCCESS
            } else {
                outln!("not reproduced: the plugin behaved otherwise than in the recording");
                ExitCode::from(1)
            }
        }
    }
}

/// Runs a fuzz failure's shrunk schedule again; exit codes as for `fuzz`.
fn rerun_schedule(
    args: &RunArgs,
    recorded: &ReplayFile,
    schedule: &serde_json::Value,
    program: PathBuf,
    rest: Vec<OsString>,
) -> ExitCode {
    let schedule: Schedule = match serde_json::from_value(schedule.clone()) {
        Ok(s) => s,
        Err(e) => return fail(format!("the replay file's schedule is unusable: {e}")),
    };
    let subject = match schedule {
        Schedule::Plugin(_) => Subject::Plugin(PluginCommand {
            program,
            args: rest,
        }),
        Schedule::Host(_) => Subject::Host(DriverCommand {
            program,
            args: rest,
        }),
    };
    let ran = run_schedule(&subject, &schedule, recorded.seed, recorded.timeout_scale);
    let verdict = ran.outcome.verdict();
    match args.format {
        Format::Human => {
            outln!(
                "{} {}: {} (recorded: {} {})",
                recorded.case.id,
                verdict.as_str(),
                ran.outcome.reason(),
                recorded.verdict,
                recorded.reason
            );
        }
        Format::Json => outln!(
            "{}",
            serde_json::json!({
                "case": recorded.case.id,
                "verdict": verdict.as_str(),
                "reason": ran.outcome.reason(),
                "recorded_verdict": recorded.verdict,
                "recorded_reason": recorded.reason,
            })
        ),
    }
    if ran.outcome.is_setup_error() {
        ExitCode::from(2)
    } else if matches!(verdict, rpcplugin_conformance::outcome::Verdict::Pass) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// A reference binary (`rpcplugin-reference-plugin`, `rpcplugin-reference-host`): next to this
/// one (a cargo target directory, or the `bin` directory `cargo install` filled), else on PATH.
fn reference_binary(name: &str) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    let executable = |path: &std::path::Path| {
        std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)));
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    if let Some(found) = beside
        .iter()
        .cloned()
        .chain(on_path)
        .find(|p| executable(p))
    {
        return Ok(found);
    }
    Err(format!(
        "{name} is neither next to this program{} nor on PATH. Install the reference plugin and \
         host beside it from a checkout of this repository: `cargo install --path \
         reference-plugin` and `cargo install --path reference-host` (with the same --root as \
         this program, if any), or build them there with `cargo build -p \
         rpcplugin-reference-plugin -p rpcplugin-reference-host` and run \
         target/debug/rpcplugin-conformance",
        beside
            .as_ref()
            .and_then(|p| p.parent())
            .map(|dir| format!(" (in {})", dir.display()))
            .unwrap_or_default()
    ))
}

/// The host mutants' binary next to this one, and its mutants joined with the cases that must
/// catch them.
fn host_mutants() -> Result<(PathBuf, Vec<rpcplugin_conformance::mutants::HostMutant>), String> {
    let program = rpcplugin_conformance::mutants::find_mutant_host()?;
    let mutants = rpcplugin_conformance::mutants::host_mutants(&program)?;
    Ok((program, mutants))
}

/// Says plainly when the plugin cannot be launched at all.
fn preflight(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("plugin executable {} not found: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "plugin executable {} is not a file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "plugin executable {} is not executable",
            path.display()
        ));
    }
    Ok(())
}

/// `bench`: the figures of a plugin or a host (`rpcplugin_conformance::bench`), as a table or
/// JSON on standard output, and the HTML page under `--html`; exit 2 with the reason when the
/// subject cannot be benched.
fn bench_command(args: &RunArgs, bench: &rpcplugin_conformance::bench::cli::BenchArgs) -> ExitCode {
    match bench.run(args.timeout_scale, progress(args)) {
        Ok(report) => {
            match args.format {
                Format::Human => out!("{}", report.human()),
                Format::Json => outln!("{}", report.json()),
            }
            if let Err(code) = write_html(args, |o| rpcplugin_conformance::html::bench(&report, o))
            {
                return code;
            }
            ExitCode::SUCCESS
        }
        Err(e) => fail(e),
    }
}
