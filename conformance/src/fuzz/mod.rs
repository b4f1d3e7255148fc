//! Black-box schedule fuzzing (spec/harness.md section 8): `rpcplugin-conformance fuzz plugin`
//! and `fuzz host`.
//!
//! A schedule is a list of steps generated from a seed. Against a plugin, the harness plays
//! the host: activations and deactivations on the hooks stream, frames for streams nobody
//! opened (both parities) and for stream 0, close frames for unknown streams, all queued into
//! bursts that are written split at random points (with stalls inside frames) or coalesced,
//! ending with the host closing its pipe or sending a malformed frame. Against a host, the
//! harness plays the plugin (the agent): activations and deactivations through the driver,
//! crashes (exit or SIGKILL), frames on unknown streams and stream 0, ending with a stop.
//!
//! The model is the codec's: the harness's stream table and hooks client (plugin mode) and
//! the codec's life-cycle machine of chapter 06, `rpcplugin_codec::lifecycle` (host mode), say
//! what a conforming peer must do
//! (answer every request once, RPC-5; discard frames for unknown streams, STREAM-5, and for
//! stream 0, HS-8; end the connection on a malformed frame, FRAME-14, and exit, TRANS-9;
//! relaunch after a crash, LIFE-6, not sooner than the floor, LIFE-8, in the activation
//! state of before, LIFE-11; reap, LIFE-19), and the observers check every byte the subject
//! writes. A failing schedule is shrunk (delta debugging over its steps, keeping the
//! requirement it breaks) and written as a replay file.
//!
//! Files:
//!
//! - `schedule`: the steps of plugin and host schedules, [`Schedule`], and their generation
//!   from a seed ([`Rng`], [`plugin_schedule`], [`host_schedule`]);
//! - `run`: [`run_schedule`], one schedule against a [`Subject`], recorded as a replay file;
//! - `plugin`: a plugin schedule against a plugin (the harness plays the host);
//! - `host`: a host schedule against a host through its driver (the harness plays the plugin,
//!   the codec's life-cycle machine is the model);
//! - `shrink`: [`shrink`], delta debugging of a failing schedule;
//! - `report`: [`FuzzReport`] and its failures ([`Found`]).
//!
//! This file holds the run itself: [`fuzz`] with its [`FuzzOptions`] (schedules `jobs` at a
//! time until `cases` or `time`, each failure shrunk and written as a replay file) and
//! [`parse_duration`] for `--time`.

mod host;
mod plugin;
mod report;
mod run;
mod schedule;
mod shrink;

use std::time::{Duration, Instant};

pub use report::{Found, FuzzReport, FUZZ_SCHEMA};
pub use run::{run_schedule, Ran, Subject};
pub use schedule::{
    host_schedule, plugin_schedule, schedule_seed, HostSchedule, HostStep, PluginEnd,
    PluginSchedule, PluginStep, Rng, Schedule, Target,
};
pub use shrink::shrink;

use shrink::{failed, requirement};

/// How to fuzz.
#[derive(Debug, Clone)]
pub struct FuzzOptions {
    /// The subject.
    pub subject: Subject,
    /// The run's seed.
    pub seed: u64,
    /// Stop after this many schedules.
    pub cases: Option<u64>,
    /// Stop after this long.
    pub time: Option<Duration>,
    /// Schedules run at once.
    pub jobs: usize,
    /// Multiplies every timeout.
    pub timeout_scale: f64,
    /// At most this many runs to shrink one failure.
    pub shrink_runs: usize,
    /// Where the replay files of failures go (`None`: none are written).
    pub replay_dir: Option<std::path::PathBuf>,
    /// Go on after a failure (default: stop at the first one).
    pub keep_going: bool,
    /// Draw a progress line on standard error.
    pub progress: bool,
}

fn schedule_for(subject: &Subject, seed: u64) -> Schedule {
    match subject {
        Subject::Plugin(_) => Schedule::Plugin(plugin_schedule(seed)),
        Subject::Host(_) => Schedule::Host(host_schedule(seed)),
    }
}

/// `fuzz --time`: a duration as `humantime` reads it (`90s`, `10m`, `1h 30m`, `500ms`), or whole
/// seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let duration = match text.parse::<u64>() {
        Ok(seconds) => std::time::Duration::from_secs(seconds),
        Err(_) => humantime::parse_duration(text).map_err(|e| {
            format!("{text:?} is not a duration ({e}); examples: 90s, 10m, 1h 30m, 30 (seconds)")
        })?,
    };
    if duration.is_zero() {
        return Err(format!("{text:?}: a duration must be positive"));
    }
    Ok(duration)
}

/// Runs schedules until `cases` or `time` is reached (or the first failure, unless
/// `keep_going`), `jobs` at a time; shrinks each failure and writes its replay file.
pub fn fuzz(opts: &FuzzOptions) -> FuzzReport {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Mutex;
    let start = Instant::now();
    let next = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let failures: Mutex<Vec<Found>> = Mutex::new(Vec::new());
    let limit = opts
        .cases
        .unwrap_or(if opts.time.is_some() { u64::MAX } else { 100 });
    let progress =
        crate::progress::Progress::new(opts.progress, (limit != u64::MAX).then_some(limit));
    let show = |done: u64, failures: usize| {
        let secs = start.elapsed().as_secs_f64().max(0.001);
        progress.set_message(format!(
            "fuzz {}: {done} schedule(s), {failures} failure(s), {:.1} exec/s",
            opts.subject.mode(),
            done as f64 / secs
        ));
    };
    show(0, 0);
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.max(1) {
            s.spawn(|| loop {
                if stop.load(Ordering::SeqCst) || opts.time.is_some_and(|t| start.elapsed() >= t) {
                    break;
                }
                let index = next.fetch_add(1, Ordering::SeqCst);
                if index >= limit {
                    break;
                }
                let seed = schedule_seed(opts.seed, index);
                let schedule = schedule_for(&opts.subject, seed);
                let ran = run_schedule(&opts.subject, &schedule, seed, opts.timeout_scale);
                let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                progress.inc();
                if failed(&ran.outcome) {
                    if !opts.keep_going {
                        stop.store(true, Ordering::SeqCst);
                    }
                    let steps = schedule.len();
                    let (shrunk, ran, runs) = if ran.outcome.is_setup_error() {
                        (schedule, ran, 0)
                    } else {
                        shrink(
                            &opts.subject,
                            schedule,
                            ran,
                            seed,
                            opts.timeout_scale,
                            opts.shrink_runs,
                        )
                    };
                    let replay = opts.replay_dir.as_ref().and_then(|dir| {
                        let path = dir.join(format!(
                            "fuzz__{}__seed-{}-{index}.json",
                            opts.subject.mode(),
                            opts.seed
                        ));
                        let text = serde_json::to_string_pretty(&ran.replay).ok()?;
                        std::fs::create_dir_all(dir).ok()?;
                        std::fs::write(&path, text).ok()?;
                        Some(path.display().to_string())
                    });
                    progress.println(format!(
                        "fuzz {}: schedule {index} (seed {seed}): {} {}",
                        opts.subject.mode(),
                        ran.outcome.verdict().as_str(),
                        ran.outcome.reason()
                    ));
                    let mut all = failures.lock().unwrap_or_else(|e| e.into_inner());
                    all.push(Found {
                        index,
                        seed,
                        verdict: ran.outcome.verdict(),
                        requirement: requirement(&ran.outcome).map(str::to_string),
                        reason: ran.outcome.reason(),
                        steps,
                        shrunk_steps: shrunk.len(),
                        shrink_runs: runs,
                        schedule: shrunk,
                        replay,
                        recording: Some(Box::new(ran.replay)),
                    });
                    show(n, all.len());
                } else {
                    show(n, failures.lock().map(|f| f.len()).unwrap_or(0));
                }
            });
        }
    });
    progress.finish();
    let schedules = done.load(Ordering::SeqCst);
    let mut failures = failures.into_inner().unwrap_or_else(|e| e.into_inner());
    failures.sort_by_key(|f| f.index);
    let elapsed = start.elapsed();
    FuzzReport {
        schema: FUZZ_SCHEMA,
        mode: opts.subject.mode(),
        subject: opts.subject.display(),
        seed: opts.seed,
        schedules,
        exec_per_s: schedules as f64 / elapsed.as_secs_f64().max(0.001),
        failures,
        duration_ms: elapsed.as_millis() as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_humantime_or_seconds() {
        let secs = |s: &str| parse_duration(s).map(|d| d.as_millis());
        assert_eq!(secs("90s"), Ok(90_000));
        assert_eq!(secs("5m"), Ok(300_000));
        assert_eq!(secs("1h 30m"), Ok(5_400_000));
        assert_eq!(secs("250ms"), Ok(250));
        assert_eq!(secs(" 30 "), Ok(30_000));
        for bad in ["soon", "5 parsecs", "-1s", ""] {
            let e = parse_duration(bad).unwrap_err();
            assert!(
                e.contains("is not a duration") && e.contains("10m"),
                "{bad}: {e}"
            );
        }
        assert!(parse_duration("0s")
            .unwrap_err()
            .contains("must be positive"));
        assert!(parse_duration("0")
            .unwrap_err()
            .contains("must be positive"));
    }
}
