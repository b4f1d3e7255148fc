//! `bench host -- <driver>`: what the driver contract (spec 07 section 7.2) lets the harness
//! time, through a [`HostUnderTest`] whose plugin is the harness's agent:
//!
//! 1. start (DRV-5), activation (DRV-7) and stop (DRV-8): command to reply, each start and
//!    activation next to the same agent launched and activated by the harness itself
//!    ([`DirectPlugin`]), alternating;
//! 2. a hook call through the driver: `deactivate` (DRV-7) after one activation, in batches
//!    alternating with batches of `status` (DRV-9), the driver's own round trip, which involves
//!    no plugin;
//! 3. restart after a crash (LIFE-6, LIFE-8, LIFE-11): the agent kills itself after its
//!    activation; from that moment (the machine's monotonic clock, as the agent read it) to the
//!    driver's `restarted` event (DRV-10), or, from a driver without events, to the relaunched
//!    agent's announcement; and the same less the host's restart delay (`delay_ms` of its
//!    `crashed` event);
//! 4. the driver's resident memory, after `hello` and after the run.
//!
//! Every command's time runs from just before the harness writes it (after checking it against
//! its schema) to the arrival of the reply's line (before the harness checks it against its
//! schema): both driver figures and their `status` floor include the same harness work.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::direct::{DirectPlugin, LaunchHow, Victims, Watchdog};
use super::floor::memory;
use super::results::{
    median_of, BenchReport, Better, Figure, NotMeasured, Settings, Subject, Summary, BENCH_SCHEMA,
};
use super::{harness, machine, us, BenchError, Common, Progress, STALL};
use crate::agent::{mono_ns, Order};
use crate::host_under_test::{
    DriverCommand, HostUnderTest, SetupError, REPLY_TIMEOUT, START_TIMEOUT,
};
use crate::plugin_under_test::PluginCommand;

/// The configuration every activation gives the agent.
const CONFIG: &str = "{\"bench\": true}";
/// The whole bench's limit for the driver's waits (each wait has its own, shorter limit).
const BENCH_LIMIT: Duration = Duration::from_secs(3600);
/// How long a crashed plugin may take to be back: a host's first restart delay (RESTART_DELAY_MIN
/// is 1 s, LIFE-8; hosts may wait longer) and a start.
const RESTART_WAIT: Duration = Duration::from_secs(30);

/// What `bench host` measures, and how.
#[derive(Debug, Clone)]
pub struct HostBenchOptions {
    /// The driver.
    pub driver: DriverCommand,
    /// The shared settings.
    pub common: Common,
    /// Crashes for the restart time.
    pub restarts: usize,
}

/// Runs `bench host`.
pub fn bench_host(opts: &HostBenchOptions, progress: &Progress) -> Result<BenchReport, BenchError> {
    let c = &opts.common;
    progress.phase("starting the driver");
    let mut h =
        HostUnderTest::launch(&opts.driver, c.timeout_scale, BENCH_LIMIT).map_err(|e| match e {
            SetupError::Spawn { .. } => BenchError(e.to_string()),
            other => {
                let text = other.to_string();
                let text = text.strip_prefix("setup error: ").unwrap_or(&text);
                BenchError(format!("{}: {text}", opts.driver.program.display()))
            }
        })?;
    let idle = memory(h.driver_pid());
    let mut figures = Vec::new();
    let mut not_measured = Vec::new();
    // Every wait for the driver has its own limit; a watchdog guards only what the harness
    // hosts itself (the floors).
    starts(&mut h, c, progress, &mut figures)?;
    hook_calls(&mut h, c, progress, &mut figures)?;
    restarts(&mut h, opts, progress, &mut figures)?;
    match (idle, memory(h.driver_pid())) {
        (Some(idle), Some(end)) => {
            let kib = |v: u64| Summary::single(v as f64);
            let note = "the driver's process only (VmRSS and VmHWM of /proc/PID/status): the \
                        plugins are processes of their own";
            figures.push(
                Figure::new(
                    "host.driver_rss_idle",
                    "driver resident memory after hello",
                    "KiB",
                    Better::Lower,
                    kib(idle.rss_kib),
                )
                .note(note),
            );
            figures.push(
                Figure::new(
                    "host.driver_rss",
                    "driver resident memory after the run",
                    "KiB",
                    Better::Lower,
                    kib(end.rss_kib),
                )
                .note(note),
            );
            figures.push(
                Figure::new(
                    "host.driver_hwm",
                    "driver peak resident memory",
                    "KiB",
                    Better::Lower,
                    kib(end.hwm_kib),
                )
                .note(note),
            );
        }
        _ => not_measured.push(NotMeasured {
            id: "host.driver_rss".into(),
            reason: "no /proc/PID/status for the driver (Linux only)".into(),
        }),
    }
    let hello = h.hello().clone();
    Ok(BenchReport {
        schema: BENCH_SCHEMA.into(),
        harness: harness(),
        machine: machine(),
        subject: Subject {
            kind: "host".into(),
            command: opts.driver.display(),
            host: Some(hello["host"].as_str().unwrap_or("").to_string()),
            events: Some(h.reports_events()),
        },
        settings: Settings {
            rounds: c.rounds,
            batch: c.batch,
            warm_up: c.warm_up,
            starts: c.starts,
            depth: None,
            payloads: Vec::new(),
            restarts: Some(opts.restarts),
            timeout_scale: c.timeout_scale,
        },
        figures,
        not_measured,
    })
}

/// Sends a command and waits (at most `within`, scaled) for its reply: the results and the
/// time from the send to the reply's arrival.
fn command(
    h: &mut HostUnderTest,
    cmd: &str,
    args: Value,
    within: Duration,
) -> Result<(Value, Duration), BenchError> {
    let sent = Instant::now();
    let id = h.send(cmd, args).map_err(|o| BenchError(o.reason()))?;
    match h.reply(id, within) {
        Ok(Ok(results)) => {
            let at = h
                .world()
                .replies
                .get(&id)
                .map_or_else(Instant::now, |(at, _)| *at);
            Ok((results, at.saturating_duration_since(sent)))
        }
        Ok(Err(e)) => Err(BenchError(format!("the driver's {cmd} failed: {e}"))),
        Err(o) => Err(BenchError(format!("{cmd}: {}", o.reason()))),
    }
}

/// The agent's executable in the bundle the driver is given (its `plugin.json` names it).
fn agent_executable(h: &HostUnderTest) -> Result<PathBuf, BenchError> {
    let manifest = h.bundle().join("plugin.json");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|e| BenchError(format!("cannot read {}: {e}", manifest.display())))?;
    let v: Value = serde_json::from_str(&text)
        .map_err(|e| BenchError(format!("{}: {e}", manifest.display())))?;
    let name = v["backend"]["executable"]
        .as_str()
        .ok_or_else(|| BenchError(format!("{} names no executable", manifest.display())))?;
    Ok(h.bundle().join(name))
}

/// The floor of a start and an activation: the agent launched and activated by the harness
/// itself, under a watchdog.
fn direct_floor(
    agent: &PluginCommand,
    config: &std::sync::Arc<Vec<u8>>,
    scale: f64,
) -> Result<(Duration, Duration), BenchError> {
    let how = LaunchHow {
        scale,
        keep_stderr: true,
        raw_hooks: false,
    };
    let (mut direct, start) = DirectPlugin::launch(agent, how)?;
    let victims = Victims::default();
    victims.add_plugin(&direct);
    let dog = Watchdog::start(STALL.mul_f64(scale), victims.action());
    let t = Instant::now();
    let activated = direct.activate(std::sync::Arc::clone(config));
    let activation = t.elapsed();
    victims.remove_plugin(&direct);
    direct.close();
    match activated {
        Ok(_) => Ok((start, activation)),
        Err(e) => Err(dog.explain("activating the agent directly", e)),
    }
}

/// Start, activation and stop through the driver, next to the agent hosted directly.
fn starts(
    h: &mut HostUnderTest,
    c: &Common,
    progress: &Progress,
    figures: &mut Vec<Figure>,
) -> Result<(), BenchError> {
    progress.phase(&format!(
        "start, activation and stop: {} through the driver and {} by the harness itself, \
         alternating",
        c.starts, c.starts
    ));
    let agent = PluginCommand {
        program: agent_executable(h)?,
        args: Vec::new(),
    };
    let config = std::sync::Arc::new(CONFIG.as_bytes().to_vec());
    let (mut start, mut start_floor, mut start_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let (mut act, mut act_floor, mut act_ratio) = (Vec::new(), Vec::new(), Vec::new());
    let mut stop = Vec::new();
    // Round 0 is unmeasured: it reads the executables from disk.
    for i in 0..=c.starts {
        progress.step(i, c.starts + 1);
        let (fs, fa) = direct_floor(&agent, &config, c.timeout_scale)?;

        let name = format!("start-{i}");
        let args = h.start_args(&name, START_TIMEOUT);
        let within = h.start_timeout(START_TIMEOUT) + REPLY_TIMEOUT;
        let (_, s) = command(h, "start", args, within)?;
        let (_, a) = command(
            h,
            "activate",
            json!({"plugin": name, "config": CONFIG}),
            h.deactivate_timeout() + REPLY_TIMEOUT,
        )?;
        let within = h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT;
        let (_, st) = command(h, "stop", json!({"plugin": name}), within)?;
        if i > 0 {
            start.push(us(s));
            start_floor.push(us(fs));
            start_ratio.push(s.as_secs_f64() / fs.as_secs_f64());
            act.push(us(a));
            act_floor.push(us(fa));
            act_ratio.push(a.as_secs_f64() / fa.as_secs_f64());
            stop.push(us(st));
        }
    }
    progress.done();
    let times = |v: &[f64]| Summary::of_times(v).expect("at least one start");
    figures.push(
        Figure::new(
            "host.start",
            "start through the driver",
            "us",
            Better::Lower,
            times(&start),
        )
        .floor(
            "the same agent launched by the harness itself, to its announcement",
            times(&start_floor),
            median_of(&start_ratio),
        )
        .note("start command to its reply: the host launches the agent and waits for its announcement"),
    );
    figures.push(
        Figure::new(
            "host.activate",
            "activation through the driver",
            "us",
            Better::Lower,
            times(&act),
        )
        .floor(
            "the same activation made by the harness itself (OnActivate, and the agent's \
             LoadPluginConfiguration)",
            times(&act_floor),
            median_of(&act_ratio),
        )
        .note("activate command to its reply, right after the start"),
    );
    figures.push(
        Figure::new(
            "host.stop",
            "stop through the driver",
            "us",
            Better::Lower,
            times(&stop),
        )
        .note("stop command to its reply: deactivation, closing the pipes, the agent's exit"),
    );
    Ok(())
}

/// Hook calls through the driver against the driver's own round trip.
fn hook_calls(
    h: &mut HostUnderTest,
    c: &Common,
    progress: &Progress,
    figures: &mut Vec<Figure>,
) -> Result<(), BenchError> {
    progress.phase(&format!(
        "hook call through the driver: {} rounds of {} deactivate and {} status commands, \
         alternating",
        c.rounds, c.batch, c.batch
    ));
    let name = "calls";
    let args = h.start_args(name, START_TIMEOUT);
    let within = h.start_timeout(START_TIMEOUT) + REPLY_TIMEOUT;
    command(h, "start", args, within)?;
    let call = h.deactivate_timeout() + REPLY_TIMEOUT;
    command(
        h,
        "activate",
        json!({"plugin": name, "config": CONFIG}),
        call,
    )?;
    let plugin = json!({ "plugin": name });
    for _ in 0..c.warm_up {
        command(h, "status", plugin.clone(), REPLY_TIMEOUT)?;
        command(h, "deactivate", plugin.clone(), call)?;
    }
    let (mut status, mut calls, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..c.rounds {
        progress.step(r, c.rounds);
        let mut status_sum = 0.0;
        for _ in 0..c.batch {
            let (_, t) = command(h, "status", plugin.clone(), REPLY_TIMEOUT)?;
            status.push(us(t));
            status_sum += us(t);
        }
        let mut call_sum = 0.0;
        for _ in 0..c.batch {
            let (_, t) = command(h, "deactivate", plugin.clone(), call)?;
            calls.push(us(t));
            call_sum += us(t);
        }
        ratios.push(call_sum / status_sum);
    }
    progress.done();
    let within = h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT;
    command(h, "stop", plugin, within)?;
    figures.push(
        Figure::new(
            "host.hook_call",
            "hook call through the driver (deactivate)",
            "us",
            Better::Lower,
            Summary::of_times(&calls).expect("at least one round"),
        )
        .floor(
            "the driver's own round trip: status (DRV-9), which involves no plugin",
            Summary::of_times(&status).expect("at least one round"),
            median_of(&ratios),
        )
        .note(
            "OnDeactivate through the host, one command at a time, after one activation; the \
             ratio is the median over the rounds of each round's mean deactivate over its mean \
             status",
        ),
    );
    Ok(())
}

/// The machine's monotonic clock at `at`, an instant in the past.
fn mono_at(at: Instant) -> Option<u64> {
    let (now, mono) = (Instant::now(), mono_ns()?);
    let ago = u64::try_from(now.saturating_duration_since(at).as_nanos()).ok()?;
    Some(mono.saturating_sub(ago))
}

/// One crash and restart: the time from the crash to the host's `restarted` event (or to the
/// relaunched agent's announcement), and the host's restart delay if it said.
fn restart_once(
    h: &mut HostUnderTest,
    name: &str,
) -> Result<(Duration, Option<Duration>), BenchError> {
    let args = h.start_args(name, START_TIMEOUT);
    let within = h.start_timeout(START_TIMEOUT) + REPLY_TIMEOUT;
    let (started, _) = command(h, "start", args, within)?;
    let call = h.deactivate_timeout() + REPLY_TIMEOUT;
    command(
        h,
        "activate",
        json!({"plugin": name, "config": CONFIG}),
        call,
    )?;
    let pid = started["pid"].as_u64().ok_or_else(|| {
        BenchError(format!(
            "the driver's reply to start names no pid ({started}), so the bench cannot tell \
             which plugin to crash"
        ))
    })? as u32;
    if !h.wait(REPLY_TIMEOUT, |w| w.launches.iter().any(|l| l.pid == pid)) {
        return Err(BenchError(format!(
            "the plugin the host started (pid {pid}) never reported to the harness"
        )));
    }
    let (index, before) = {
        let w = h.world();
        let index = w.launches.iter().position(|l| l.pid == pid).unwrap_or(0);
        (index, w.launches.len())
    };
    h.order(index, &Order::Kill)
        .map_err(|o| BenchError(o.reason()))?;
    let events = h.reports_events();
    let back = h.wait(RESTART_WAIT, |w| {
        let relaunched = w.launches[before..]
            .iter()
            .any(|l| l.event("announced").is_some());
        let restarted = !events
            || w.events
                .iter()
                .any(|(_, e)| e["event"] == "restarted" && e["plugin"] == name);
        relaunched && restarted
    });
    if !back {
        return Err(BenchError(format!(
            "the host did not restart the crashed plugin within {:?} (LIFE-6{})",
            h.scaled(RESTART_WAIT),
            if events {
                ", or no restarted event: DRV-10"
            } else {
                ""
            }
        )));
    }
    // Everything the crashed agent reported has arrived once its socket has closed.
    h.wait_ended(index, REPLY_TIMEOUT);
    let (crash, back_at, delay) = {
        let w = h.world();
        let crash = w.launches[index].gone_mono();
        let back_at = if events {
            w.events
                .iter()
                .find(|(_, e)| e["event"] == "restarted" && e["plugin"] == name)
                .map(|(at, _)| *at)
        } else {
            w.launches[before..]
                .iter()
                .find_map(|l| l.event_at("announced"))
        };
        let delay = w
            .events
            .iter()
            .find(|(_, e)| e["event"] == "crashed" && e["plugin"] == name)
            .and_then(|(_, e)| e["delay_ms"].as_u64())
            .map(Duration::from_millis);
        (crash, back_at, delay)
    };
    let took = match (crash, back_at.and_then(mono_at)) {
        (Some(crash), Some(back)) => Duration::from_nanos(back.saturating_sub(crash)),
        _ => {
            return Err(BenchError(
                "cannot read the machine's monotonic clock, so the restart cannot be timed".into(),
            ))
        }
    };
    let within = h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT;
    command(h, "stop", json!({ "plugin": name }), within)?;
    Ok((took, delay))
}

/// Restarts after a crash.
fn restarts(
    h: &mut HostUnderTest,
    opts: &HostBenchOptions,
    progress: &Progress,
    figures: &mut Vec<Figure>,
) -> Result<(), BenchError> {
    progress.phase(&format!(
        "restart after a crash: {} crashes, each waiting for the host's restart delay",
        opts.restarts
    ));
    let (mut total, mut beyond, mut delays) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..opts.restarts {
        progress.step(i, opts.restarts);
        let (took, delay) = restart_once(h, &format!("restart-{i}"))?;
        total.push(us(took));
        if let Some(delay) = delay {
            delays.push(us(delay));
            beyond.push(us(took.saturating_sub(delay)));
        }
    }
    progress.done();
    let events = h.reports_events();
    let to = if events {
        "the driver's restarted event"
    } else {
        "the relaunched plugin's announcement"
    };
    let note = format!(
        "from the crash (the plugin's own monotonic clock as it killed itself, after its \
         activation) to {to}; the host's restart delay included"
    );
    figures.push(
        Figure::new(
            "host.restart",
            "restart after a crash",
            "us",
            Better::Lower,
            Summary::of_times(&total).expect("at least one restart"),
        )
        .note(note),
    );
    if beyond.len() == total.len() {
        figures.push(
            Figure::new(
                "host.restart_delay",
                "restart delay, as the host reports it",
                "us",
                Better::Lower,
                Summary::of_times(&delays).expect("at least one restart"),
            )
            .note("delay_ms of the driver's crashed events (LIFE-8: at least 1 s)"),
        );
        figures.push(
            Figure::new(
                "host.restart_beyond_delay",
                "restart after a crash, less the restart delay",
                "us",
                Better::Lower,
                Summary::of_times(&beyond).expect("at least one restart"),
            )
            .note(format!(
                "the host's own work: noticing the crash, relaunching, the handshake{}",
                if events {
                    " and the re-activation (LIFE-11)"
                } else {
                    ""
                }
            )),
        );
    }
    Ok(())
}
