//! `rpcplugin-reference-host`: runs one plugin bundle under a supervisor and prints its
//! life-cycle events (`run`), or serves the host driver contract of `spec/07-conformance.md`
//! section 7.2 for the conformance harness (`driver`); see `--help`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{channel, Sender};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use rpcplugin_reference_host::bundle::Bundle;
use rpcplugin_reference_host::driver::{self, DriverOptions};
use rpcplugin_reference_host::event::LifecycleEvent;
use rpcplugin_reference_host::supervisor::{
    PluginOutput, Supervisor, SupervisorOptions, START_TIMEOUT,
};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

const AFTER_HELP: &str = "\
Example, with the reference plugin of this workspace:

  cargo build -p rpcplugin-reference-plugin -p rpcplugin-reference-host
  mkdir -p /tmp/hello
  cp target/debug/rpcplugin-reference-plugin /tmp/hello/
  echo '{\"id\": \"hello\", \"backend\": {\"executable\": \"rpcplugin-reference-plugin\"}}' \\
    > /tmp/hello/plugin.json
  echo '{\"Foo\": \"foo\", \"Bar\": {\"Baz\": \"baz\"}}' > /tmp/hello-config.json
  target/debug/rpcplugin-reference-host run /tmp/hello --config /tmp/hello-config.json

It prints one line per life-cycle event (started, activated, crashed, restarted, gave_up,
stopped; --json prints them as JSON objects, one per line, the event messages of the driver
contract of spec/07-conformance.md section 7.2.4). Press Ctrl-C (or send SIGTERM) to
deactivate the plugin, close its pipes and stop it; a plugin that has not exited 5 seconds later
is killed.

Exit status: 0 after a stop by SIGINT or SIGTERM; 1 when the activation failed or the host gave
up restarting the plugin; 2 for a bad bundle, a bad configuration file or a failed start.";

/// Runs rpcplugin plugins (rpcplugin wire protocol 1) as the reference host does.
#[derive(Debug, Parser)]
#[command(name = "rpcplugin-reference-host", version, after_long_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start a plugin bundle, activate it, restart it when it crashes, and stop it on Ctrl-C.
    ///
    /// The bundle is a directory with a plugin.json manifest, for example
    /// {"id": "hello", "backend": {"executable": "bin/hello-plugin"}}; the executable path is
    /// relative to the bundle directory.
    #[command(after_long_help = AFTER_HELP)]
    Run(RunArgs),
    /// Serve the host driver contract rpcplugin-host-driver/1 on standard input and output, so
    /// that the conformance harness can test this host (spec/07-conformance.md, section 7.2).
    ///
    /// Commands arrive as JSON lines on standard input; replies and events leave as JSON lines
    /// on standard output, and nothing else does; logs and the plugins' output go to standard
    /// error. Normally started by `rpcplugin-conformance host -- rpcplugin-reference-host
    /// driver`.
    #[command(after_long_help = DRIVER_HELP)]
    Driver(DriverArgs),
}

#[derive(Debug, Args)]
struct DriverArgs {
    /// Accept exactly what the spec guarantees and nothing more: frames of 1 MiB, 8 MiB of
    /// unread data per stream, gob messages of 4 MiB nested 16 levels deep. The conformance
    /// tests run the host suite this way too, so that no case demands more than the spec
    /// guarantees.
    #[arg(long)]
    min_limits: bool,
    /// Keep the spec's longest restart delay (30 s) and stable period (60 s) whatever `start`
    /// asks: `hello` leaves restart_delay_max_ms and stable_period_ms out of honours, as a host
    /// whose backoff cannot be configured, and the harness's backoff cases become long ones
    /// (run with --long, about two minutes).
    #[arg(long)]
    fixed_backoff: bool,
}

const DRIVER_HELP: &str = r#"Commands (one JSON object per line; id is a positive integer, unique in the session):

  {"id":1,"cmd":"hello"}
      -> protocol, host, events (true), honours (["start_timeout_ms","stop_grace_ms",
         "deactivate_timeout_ms","restart_delay_max_ms","stable_period_ms"])
  {"id":2,"cmd":"start","plugin":"p1","bundle":"/abs/bundle","start_timeout_ms":3000,
   "stop_grace_ms":2000,"deactivate_timeout_ms":2000,"restart_delay_max_ms":30000,
   "stable_period_ms":60000}                                 (the last four are optional)
      -> pid, once the plugin has announced its hooks stream; an error if the start failed
  {"id":3,"cmd":"activate","plugin":"p1","config":"{\"greeting\": \"hello\"}"}
      -> ok; LoadPluginConfiguration answers with the JSON text in config, byte for byte
  {"id":4,"cmd":"deactivate","plugin":"p1"}
  {"id":5,"cmd":"stop","plugin":"p1"}
      -> exit (null, {"code":0} or {"signal":"SIGKILL"}), killed (true after the grace period)
  {"id":6,"cmd":"status","plugin":"p1"}
      -> state (stopped, starting, running, backoff, restarting, stopping, failed), pid
  {"id":7,"cmd":"quit"}
      -> stops every plugin, replies, exits with status 0 (as does end of input)

Every command gets exactly one reply: {"id":N,"ok":true,...results} or
{"id":N,"ok":false,"error":"why"}. Commands run concurrently: a stop sent while a start
waits for the announcement makes that start fail, and both are answered. A line that is not
a command gets an error reply if it has a valid id, and a line on standard error otherwise.

Events, as they happen: started (pid), start_failed (reason), crashed (pid, exit, reason,
failures, delay_ms), restarted (pid, reactivated), gave_up (failures), stopped (exit,
killed); each with "event" and "plugin". The JSON Schemas of every message are in
spec/schemas/host-driver/.

Example exchange (> to the driver, < from it):

  > {"id":1,"cmd":"hello"}
  < {"id":1,"ok":true,"protocol":"rpcplugin-host-driver/1","host":"rpcplugin-reference-host 0.1.0","events":true,"honours":["start_timeout_ms","stop_grace_ms","deactivate_timeout_ms","restart_delay_max_ms","stable_period_ms"]}
  > {"id":2,"cmd":"start","plugin":"p1","bundle":"/tmp/hello","start_timeout_ms":3000}
  < {"event":"started","plugin":"p1","pid":4712}
  < {"id":2,"ok":true,"pid":4712}
  > {"id":3,"cmd":"activate","plugin":"p1","config":"{\"Foo\": \"foo\"}"}
  < {"id":3,"ok":true}
    (the plugin is killed with SIGKILL; the host restarts it after 1 s and re-activates it)
  < {"event":"crashed","plugin":"p1","pid":4712,"exit":{"signal":"SIGKILL"},"reason":"the plugin process exited","failures":1,"delay_ms":1000}
  < {"event":"restarted","plugin":"p1","pid":4730,"reactivated":true}
  > {"id":4,"cmd":"status","plugin":"p1"}
  < {"id":4,"ok":true,"state":"running","pid":4730}
  > {"id":5,"cmd":"activate","plugin":"nope","config":"null"}
  < {"id":5,"ok":false,"error":"no plugin named nope"}
  > {"id":6,"cmd":"stop","plugin":"p1"}
  < {"event":"stopped","plugin":"p1","exit":{"code":0},"killed":false}
  < {"id":6,"ok":true,"exit":{"code":0},"killed":false}
  > {"id":7,"cmd":"quit"}
  < {"id":7,"ok":true}

To try it by hand, make the bundle of the `run` example (/tmp/hello) and type the lines:

  target/debug/rpcplugin-reference-host driver"#;

#[derive(Debug, Args)]
struct RunArgs {
    /// The plugin bundle: a directory holding plugin.json and the plugin executable.
    bundle: PathBuf,
    /// A JSON file with the plugin's configuration, which the plugin loads with
    /// LoadPluginConfiguration during its activation [default: {}].
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Seconds to wait for the plugin to announce its hooks stream after its launch.
    #[arg(long, value_name = "SECS", default_value_t = START_TIMEOUT.as_secs_f64(), value_parser = parse_seconds)]
    start_timeout: f64,
    /// Print the events as JSON objects, one per line.
    #[arg(long)]
    json: bool,
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    let v: f64 = s.parse().map_err(|e| format!("{e}"))?;
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(v)
    } else {
        Err("must be a number of seconds above 0 and at most 86400".into())
    }
}

/// What the main thread waits for.
enum Msg {
    Event(LifecycleEvent),
    Signal(&'static str),
    ActivationFailed(String),
}

fn main() -> ExitCode {
    // Parsing the command line opens no file.
    let cli = Cli::parse();
    let args = match cli.command {
        Command::Run(args) => args,
        // The driver closes the inherited descriptors itself, ends with quit or the end of its
        // input (DRV-11) and exits with status 0.
        Command::Driver(args) => driver::main(DriverOptions {
            min_limits: args.min_limits,
            fixed_backoff: args.fixed_backoff,
            ..DriverOptions::default()
        }),
    };
    // TRANS-4: descriptors this process inherited without close-on-exec would reach every
    // plugin it launches; close them before anything else runs.
    rpcplugin_reference_host::close_inherited_descriptors();
    // SIGINT and SIGTERM are caught (not blocked: a blocked mask would be inherited by the
    // plugins this host launches) and read from a self-pipe by the signal thread.
    let signals = match Signals::new([SIGINT, SIGTERM]) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("rpcplugin-reference-host: cannot catch SIGINT and SIGTERM: {e}");
            return ExitCode::from(2);
        }
    };
    run(args, signals)
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("rpcplugin-reference-host: {message}");
    ExitCode::from(2)
}

fn read_config(path: &PathBuf) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
        .map_err(|e| format!("{}: not valid JSON: {e}", path.display()))?;
    Ok(bytes)
}

fn print_event(id: &str, event: &LifecycleEvent, json: bool) {
    if json {
        match serde_json::to_string(&event.message(id)) {
            Ok(line) => println!("{line}"),
            Err(e) => eprintln!("rpcplugin-reference-host: cannot serialize an event: {e}"),
        }
    } else {
        println!("[{id}] {event}");
    }
}

fn run(args: RunArgs, mut signals: Signals) -> ExitCode {
    let bundle = match Bundle::load(&args.bundle) {
        Ok(bundle) => bundle,
        Err(e) => return fail(e),
    };
    let config = match &args.config {
        Some(path) => match read_config(path) {
            Ok(config) => config,
            Err(e) => return fail(format!("configuration {e}")),
        },
        None => b"{}".to_vec(),
    };
    let options = SupervisorOptions {
        lifecycle: rpcplugin_codec::lifecycle::Settings {
            start_timeout: Duration::from_secs_f64(args.start_timeout),
            ..Default::default()
        },
        // The plugin's standard output would mix with the event lines: send it to stderr.
        stdout: PluginOutput::HostStderr,
        stderr: PluginOutput::Inherit,
        ..SupervisorOptions::default()
    };
    let id = bundle.id().to_string();
    let supervisor = Arc::new(Supervisor::new(bundle, options));
    let (tx, rx) = channel::<Msg>();

    let events = supervisor.events();
    spawn("events", tx.clone(), move |tx| {
        for event in events {
            if tx.send(Msg::Event(event)).is_err() {
                return;
            }
        }
    });
    spawn("signals", tx.clone(), move |tx| {
        for number in signals.forever() {
            let name = if number == SIGINT {
                "SIGINT"
            } else {
                "SIGTERM"
            };
            if tx.send(Msg::Signal(name)).is_err() {
                return;
            }
        }
    });
    // The exit status, once a stop has begun.
    let mut stopping: Option<u8> = None;
    let stop = |code: u8, stopping: &mut Option<u8>| {
        if stopping.is_none() {
            *stopping = Some(code);
            supervisor.stop();
        }
    };
    // The start runs here, so that nothing can launch the plugin once a stop has begun; a
    // signal waits for it (at most the start timeout). The activation, which has no time
    // limit, runs on a thread of its own so that a stop can interrupt it.
    match supervisor.start() {
        Err(e) => {
            eprintln!("rpcplugin-reference-host: {e}");
            // Nothing was left running (LIFE-4); the stop only reports `stopped`.
            stop(2, &mut stopping);
        }
        Ok(()) => {
            let worker = Arc::clone(&supervisor);
            spawn("activate", tx, move |tx| {
                if let Err(e) = worker.activate_json(config) {
                    let _ = tx.send(Msg::ActivationFailed(e.to_string()));
                }
            });
        }
    }
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event(event) => {
                print_event(&id, &event, args.json);
                match event {
                    LifecycleEvent::GaveUp { .. } => stop(1, &mut stopping),
                    LifecycleEvent::Stopped { .. } if stopping.is_some() => break,
                    _ => {}
                }
            }
            Msg::Signal(signal) => {
                if stopping.is_none() {
                    eprintln!(
                        "rpcplugin-reference-host: {signal}: deactivating and stopping plugin {id}"
                    );
                }
                stop(0, &mut stopping);
            }
            Msg::ActivationFailed(e) => {
                if stopping.is_none() {
                    eprintln!("rpcplugin-reference-host: the activation failed: {e}");
                    stop(1, &mut stopping);
                }
            }
        }
    }
    ExitCode::from(stopping.unwrap_or(1))
}

fn spawn(name: &str, tx: Sender<Msg>, f: impl FnOnce(Sender<Msg>) + Send + 'static) {
    if let Err(e) = std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || f(tx))
    {
        eprintln!("rpcplugin-reference-host: cannot start the {name} thread: {e}");
        std::process::exit(2);
    }
}
