//! `bench plugin <exe>`: the figures of a plugin executable, the harness playing a plain host
//! ([`DirectPlugin`]) and the floor child ([`FloorChild`]) giving each figure its floor.
//!
//! 1. Start time (HS-1, HS-4): launch to announcement, alternating with the floor child's launch
//!    to its first answer; the resident memory of each just after (idle).
//! 2. Hook round trip (RPC-12): `OnDeactivate` after one activation, one call at a time,
//!    alternating batches with one-byte ping-pongs through the floor child (median, p99, and the
//!    ratio as `reference-plugin/benches/ratio.rs` computes it).
//! 3. Pipelined calls (RPC-4, RPC-6): `--depth` `OnDeactivate` calls in flight on the hooks
//!    stream of a plugin launched for this, the next written as each response arrives (one
//!    thread, [`DirectPlugin::pipeline`]), alternating with the same calls one at a time.
//! 4. One-stream throughput, per payload size (RPC-13, RPC-18): an activation whose configuration
//!    (a JSON string of exactly that size) the plugin loads through `LoadPluginConfiguration`:
//!    from opening the API stream to the `OnActivate` reply; its floor, the same bytes through a
//!    pipe to the floor child, which answers one byte. A plugin that never loads its
//!    configuration has no such figure (the spec does not oblige it to, section 5.5.6).
//! 5. Resident memory after all this (`VmRSS`, `VmHWM`, and `RssAnon`: the heap and stacks
//!    without the executable's pages), next to the floor child's.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::direct::{DirectPlugin, LaunchHow, Victims, Watchdog};
use super::floor::{memory, FloorChild, Memory};
use super::results::{
    median_of, size_text, BenchReport, Better, Figure, NotMeasured, Settings, Subject, Summary,
    BENCH_SCHEMA,
};
use super::{harness, machine, us, BenchError, Common, Progress, STALL};
use crate::plugin_under_test::PluginCommand;

/// The configuration of the session's first activation.
const CONFIG: &[u8] = b"{\"bench\": true}";

/// What `bench plugin` measures, and how.
#[derive(Debug, Clone)]
pub struct PluginBenchOptions {
    /// The plugin.
    pub plugin: PluginCommand,
    /// The shared settings.
    pub common: Common,
    /// Calls in flight in the pipelined figure.
    pub depth: usize,
    /// The payload sizes of the throughput figures, in bytes (at least 2: a JSON string).
    pub payloads: Vec<usize>,
}

/// Runs `bench plugin`.
pub fn bench_plugin(
    opts: &PluginBenchOptions,
    progress: &Progress,
) -> Result<BenchReport, BenchError> {
    let c = &opts.common;
    let mut figures = Vec::new();
    let mut not_measured = Vec::new();
    let victims = Victims::default();
    let dog = Watchdog::start(STALL.mul_f64(c.timeout_scale), victims.action());
    let run = (|| {
        starts(
            opts,
            progress,
            &victims,
            &dog,
            &mut figures,
            &mut not_measured,
        )?;
        session(
            opts,
            progress,
            &victims,
            &dog,
            &mut figures,
            &mut not_measured,
        )?;
        pipelined(opts, progress, &victims, &dog, &mut figures)
    })();
    run.map_err(|e| dog.explain("bench plugin", e))?;
    // The calls side by side: the pipelined figure after the round trip.
    if let (Some(from), Some(to)) = (
        figures.iter().position(|f| f.id == "plugin.pipelined"),
        figures.iter().position(|f| f.id == "plugin.round_trip"),
    ) {
        let piped = figures.remove(from);
        figures.insert(to + 1, piped);
    }
    Ok(BenchReport {
        schema: BENCH_SCHEMA.into(),
        harness: harness(),
        machine: machine(),
        subject: Subject {
            kind: "plugin".into(),
            command: opts.plugin.display(),
            host: None,
            events: None,
        },
        settings: Settings {
            rounds: c.rounds,
            batch: c.batch,
            warm_up: c.warm_up,
            starts: c.starts,
            depth: Some(opts.depth),
            payloads: opts.payloads.clone(),
            restarts: None,
            timeout_scale: c.timeout_scale,
        },
        figures,
        not_measured,
    })
}

/// One launch of the floor child to its first answer: the time and its memory then.
fn floor_start(
    c: &Common,
    victims: &Victims,
    dog: &Watchdog,
) -> Result<(Duration, Option<Memory>), BenchError> {
    let started = Instant::now();
    let mut floor = FloorChild::launch(&c.harness, 1)?;
    victims.add_pid(floor.pid());
    let answered = floor.exchange(b"x");
    let took = started.elapsed();
    let mem = memory(floor.pid());
    victims.remove_pid(floor.pid());
    floor.close(c.timeout_scale);
    answered?;
    dog.tick();
    Ok((took, mem))
}

/// One launch of the plugin to its announcement: the time and its memory then.
fn plugin_start(
    opts: &PluginBenchOptions,
    victims: &Victims,
    dog: &Watchdog,
) -> Result<(Duration, Option<Memory>), BenchError> {
    let how = LaunchHow {
        scale: opts.common.timeout_scale,
        keep_stderr: true,
        raw_hooks: false,
    };
    let (plugin, took) = DirectPlugin::launch(&opts.plugin, how)?;
    victims.add_plugin(&plugin);
    let mem = memory(plugin.pid());
    victims.remove_plugin(&plugin);
    plugin.close();
    dog.tick();
    Ok((took, mem))
}

/// Start time and idle memory.
fn starts(
    opts: &PluginBenchOptions,
    progress: &Progress,
    victims: &Victims,
    dog: &Watchdog,
    figures: &mut Vec<Figure>,
    not_measured: &mut Vec<NotMeasured>,
) -> Result<(), BenchError> {
    let c = &opts.common;
    progress.phase(&format!(
        "start time: {} launches of the plugin and of the floor child, alternating",
        c.starts
    ));
    // Unmeasured: the first launch reads both executables from disk, and tells a plugin that
    // cannot start at all.
    plugin_start(opts, victims, dog)?;
    floor_start(c, victims, dog)?;
    let (mut plugin_t, mut floor_t, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let (mut plugin_rss, mut floor_rss) = (Vec::new(), Vec::new());
    for i in 0..c.starts {
        progress.step(i, c.starts);
        let (f, fm) = floor_start(c, victims, dog)?;
        let (p, pm) = plugin_start(opts, victims, dog)?;
        floor_t.push(us(f));
        plugin_t.push(us(p));
        ratios.push(p.as_secs_f64() / f.as_secs_f64());
        plugin_rss.extend(pm.map(|m| m.rss_kib as f64));
        floor_rss.extend(fm.map(|m| m.rss_kib as f64));
    }
    progress.done();
    figures.push(
        Figure::new(
            "plugin.start",
            "start (launch to announcement)",
            "us",
            Better::Lower,
            Summary::of_times(&plugin_t).expect("at least one start"),
        )
        .floor(
            "the floor child's launch to its first answer (one byte each way)",
            Summary::of_times(&floor_t).expect("at least one start"),
            median_of(&ratios),
        ),
    );
    match (
        Summary::of_values(&plugin_rss),
        Summary::of_values(&floor_rss),
    ) {
        (Some(p), Some(f)) => {
            let ratio = p.median / f.median;
            figures.push(
                Figure::new(
                    "plugin.rss_idle",
                    "resident memory just after the announcement",
                    "KiB",
                    Better::Lower,
                    p,
                )
                .floor(
                    "the floor child's, just after its first answer",
                    f,
                    Some(ratio),
                )
                .note("VmRSS of /proc/PID/status, over the start launches"),
            );
        }
        _ => not_measured.push(NotMeasured {
            id: "plugin.rss_idle".into(),
            reason: "no /proc/PID/status on this system (Linux only)".into(),
        }),
    }
    Ok(())
}

/// Everything measured on one long-lived plugin process.
fn session(
    opts: &PluginBenchOptions,
    progress: &Progress,
    victims: &Victims,
    dog: &Watchdog,
    figures: &mut Vec<Figure>,
    not_measured: &mut Vec<NotMeasured>,
) -> Result<(), BenchError> {
    let c = &opts.common;
    let how = LaunchHow {
        scale: c.timeout_scale,
        keep_stderr: false,
        raw_hooks: false,
    };
    let mut floor = FloorChild::launch(&c.harness, 1)?;
    let mut plugin = match DirectPlugin::launch(&opts.plugin, how) {
        Ok((plugin, _)) => plugin,
        Err(e) => {
            floor.close(c.timeout_scale);
            return Err(e);
        }
    };
    victims.add_plugin(&plugin);
    victims.add_pid(floor.pid());
    let result = (|| {
        plugin.activate(Arc::new(CONFIG.to_vec())).map_err(|e| {
            BenchError(format!(
                "the first activation failed, so nothing can be measured: {e}"
            ))
        })?;
        round_trips(&plugin, &mut floor, c, progress, dog, figures)?;
        throughput(
            &mut plugin,
            opts,
            progress,
            victims,
            dog,
            figures,
            not_measured,
        )?;
        plugin.deactivate()?;
        match (memory(plugin.pid()), memory(floor.pid())) {
            (Some(p), Some(f)) => {
                let what = "the floor child's, after the ping-pongs";
                let kib = |v: u64| Summary::single(v as f64);
                figures.push(
                    Figure::new(
                        "plugin.rss",
                        "resident memory after the run",
                        "KiB",
                        Better::Lower,
                        kib(p.rss_kib),
                    )
                    .floor(
                        what,
                        kib(f.rss_kib),
                        Some(p.rss_kib as f64 / f.rss_kib as f64),
                    )
                    .note("VmRSS of /proc/PID/status"),
                );
                figures.push(
                    Figure::new(
                        "plugin.hwm",
                        "peak resident memory",
                        "KiB",
                        Better::Lower,
                        kib(p.hwm_kib),
                    )
                    .floor(
                        what,
                        kib(f.hwm_kib),
                        Some(p.hwm_kib as f64 / f.hwm_kib as f64),
                    )
                    .note("VmHWM of /proc/PID/status, at the end of the run"),
                );
                figures.push(
                    Figure::new(
                        "plugin.anon",
                        "anonymous resident memory after the run",
                        "KiB",
                        Better::Lower,
                        kib(p.anon_kib),
                    )
                    .floor(
                        what,
                        kib(f.anon_kib),
                        Some(p.anon_kib as f64 / f.anon_kib.max(1) as f64),
                    )
                    .note(
                        "RssAnon of /proc/PID/status: the heap and stacks, without the pages of \
                         the executable, which make most of a small program's VmRSS",
                    ),
                );
            }
            _ => {
                for id in ["plugin.rss", "plugin.hwm", "plugin.anon"] {
                    not_measured.push(NotMeasured {
                        id: id.into(),
                        reason: "no /proc/PID/status on this system (Linux only)".into(),
                    });
                }
            }
        }
        Ok(())
    })();
    // A plugin that died in the middle says how.
    let result = result.map_err(|e| match plugin.exited() {
        Some(exit) => BenchError(format!("{e} (the plugin {exit})")),
        None => e,
    });
    victims.remove_plugin(&plugin);
    victims.remove_pid(floor.pid());
    plugin.close();
    floor.close(c.timeout_scale);
    result
}

/// Hook round trips against ping-pongs.
fn round_trips(
    plugin: &DirectPlugin,
    floor: &mut FloorChild,
    c: &Common,
    progress: &Progress,
    dog: &Watchdog,
    figures: &mut Vec<Figure>,
) -> Result<(), BenchError> {
    progress.phase(&format!(
        "hook round trip: {} rounds of {} OnDeactivate calls and {} ping-pongs, alternating",
        c.rounds, c.batch, c.batch
    ));
    for _ in 0..c.warm_up {
        floor.exchange(b"x")?;
        plugin.call_deactivate()?;
        dog.tick();
    }
    let (mut raw, mut calls, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for r in 0..c.rounds {
        progress.step(r, c.rounds);
        let mut raw_sum = 0.0;
        for _ in 0..c.batch {
            let t = Instant::now();
            floor.exchange(b"x")?;
            let d = us(t.elapsed());
            raw.push(d);
            raw_sum += d;
        }
        dog.tick();
        let mut call_sum = 0.0;
        for _ in 0..c.batch {
            let t = Instant::now();
            plugin.call_deactivate()?;
            let d = us(t.elapsed());
            calls.push(d);
            call_sum += d;
        }
        dog.tick();
        ratios.push(call_sum / raw_sum);
    }
    progress.done();
    let value = Summary::of_times(&calls).expect("at least one round");
    figures.push(
        Figure::new(
            "plugin.round_trip",
            "hook round trip (OnDeactivate)",
            "us",
            Better::Lower,
            value,
        )
        .floor(
            "a one-byte ping-pong through the floor child's descriptors 3 and 4",
            Summary::of_times(&raw).expect("at least one round"),
            median_of(&ratios),
        )
        .note(
            "one call at a time; the ratio is the median over the rounds of each round's mean \
             call over its mean ping-pong",
        ),
    );
    Ok(())
}

/// Calls per second with `depth` calls in flight against one at a time, alternating, on a
/// plugin of its own whose hooks stream the harness drives directly from one thread.
fn pipelined(
    opts: &PluginBenchOptions,
    progress: &Progress,
    victims: &Victims,
    dog: &Watchdog,
    figures: &mut Vec<Figure>,
) -> Result<(), BenchError> {
    let c = &opts.common;
    let depth = opts.depth;
    let total = c.batch * depth;
    progress.phase(&format!(
        "pipelined calls: {} rounds of {total} calls {depth} in flight and {total} one at a \
         time, alternating",
        c.rounds
    ));
    let how = LaunchHow {
        scale: c.timeout_scale,
        keep_stderr: false,
        raw_hooks: true,
    };
    let (mut plugin, _) = DirectPlugin::launch(&opts.plugin, how)?;
    victims.add_plugin(&plugin);
    let measured = (|| {
        // Unmeasured: one round of each.
        plugin.pipeline(1, total, dog)?;
        plugin.pipeline(depth, total, dog)?;
        let (mut piped, mut single, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..c.rounds {
            progress.step(r, c.rounds);
            let one = plugin.pipeline(1, total, dog)?.as_secs_f64();
            let many = plugin.pipeline(depth, total, dog)?.as_secs_f64();
            single.push(total as f64 / one);
            piped.push(total as f64 / many);
            ratios.push(one / many);
        }
        Ok((piped, single, ratios))
    })();
    let measured = measured.map_err(|e| match plugin.exited() {
        Some(exit) => BenchError(format!("{e} (the plugin {exit})")),
        None => e,
    });
    victims.remove_plugin(&plugin);
    plugin.close();
    progress.done();
    let (piped, single, ratios) = measured?;
    figures.push(
        Figure::new(
            "plugin.pipelined",
            &format!("pipelined calls ({depth} in flight)"),
            "calls/s",
            Better::Higher,
            Summary::of_values(&piped).expect("at least one round"),
        )
        .floor(
            "the same calls one at a time, on the same stream",
            Summary::of_values(&single).expect("at least one round"),
            median_of(&ratios),
        )
        .note(format!(
            "OnDeactivate, {total} calls a round: the next request written as each response \
             arrives, by one thread, on the hooks stream of a plugin launched for this; the \
             floor keeps the protocol, and the ratio is the gain from pipelining"
        )),
    );
    Ok(())
}

/// A JSON text of exactly `size` bytes (at least 2): a string of `a`s.
pub(super) fn json_payload(size: usize) -> Vec<u8> {
    let mut v = Vec::with_capacity(size.max(2));
    v.push(b'"');
    v.resize(size.max(2) - 1, b'a');
    v.push(b'"');
    v
}

/// One-stream throughput per payload size.
fn throughput(
    plugin: &mut DirectPlugin,
    opts: &PluginBenchOptions,
    progress: &Progress,
    victims: &Victims,
    dog: &Watchdog,
    figures: &mut Vec<Figure>,
    not_measured: &mut Vec<NotMeasured>,
) -> Result<(), BenchError> {
    let c = &opts.common;
    for (n, &size) in opts.payloads.iter().enumerate() {
        progress.phase(&format!(
            "throughput: {} rounds of a {} configuration and the same through a pipe, alternating",
            c.rounds,
            size_text(size)
        ));
        let config = Arc::new(json_payload(size));
        let mut floor = FloorChild::launch(&c.harness, config.len())?;
        victims.add_pid(floor.pid());
        let measured = (|| {
            // Unmeasured: one of each, and whether the plugin loads its configuration at all.
            floor.exchange(&config)?;
            if !plugin.activate(Arc::clone(&config))? {
                return Ok(None);
            }
            dog.tick();
            let (mut raw, mut proto, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
            let mib = config.len() as f64 / f64::from(1u32 << 20);
            for r in 0..c.rounds {
                progress.step(r, c.rounds);
                let t = Instant::now();
                floor.exchange(&config)?;
                let raw_t = t.elapsed().as_secs_f64();
                dog.tick();
                let t = Instant::now();
                let loaded = plugin.activate(Arc::clone(&config))?;
                let proto_t = t.elapsed().as_secs_f64();
                dog.tick();
                if !loaded {
                    return Err(BenchError(format!(
                        "{}: an activation did not load the configuration, where the earlier \
                         ones had",
                        opts.plugin.program.display()
                    )));
                }
                raw.push(mib / raw_t);
                proto.push(mib / proto_t);
                ratios.push(raw_t / proto_t);
            }
            Ok(Some((raw, proto, ratios)))
        })();
        victims.remove_pid(floor.pid());
        floor.close(c.timeout_scale);
        progress.done();
        match measured? {
            Some((raw, proto, ratios)) => figures.push(
                Figure::new(
                    &format!("plugin.throughput.{size}"),
                    &format!("one stream, {} payload", size_text(size)),
                    "MiB/s",
                    Better::Higher,
                    Summary::of_values(&proto).expect("at least one round"),
                )
                .floor(
                    "the same bytes through a pipe to the floor child, which answers one byte",
                    Summary::of_values(&raw).expect("at least one round"),
                    median_of(&ratios),
                )
                .note(
                    "an activation whose configuration (a JSON string of that size) the plugin \
                     loads: opening the API stream to the OnActivate reply, so whatever the \
                     plugin does with its configuration before it answers counts too",
                ),
            ),
            None => {
                for &size in &opts.payloads[n..] {
                    not_measured.push(NotMeasured {
                        id: format!("plugin.throughput.{size}"),
                        reason: "the plugin does not call LocalAPI.LoadPluginConfiguration \
                                 when activated, so no payload travels on one of its streams \
                                 (the spec leaves that call to the plugin, section 5.5.6)"
                            .into(),
                    });
                }
                return Ok(());
            }
        }
    }
    Ok(())
}
