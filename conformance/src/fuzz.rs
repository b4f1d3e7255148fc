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

use std::time::{Duration, Instant};

use rpcplugin_codec::frame::encode_frame;
use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::lifecycle::{Action, Exit, Lifecycle, Settings};
use rpcplugin_codec::rpc::Call;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::agent::{Behaviour, Order};
use crate::cases::host::{must, reaped};
use crate::cases::plugin::{close_and_expect_exit, send_malformed};
use crate::host_under_test::{DriverCommand, HostUnderTest, RESTART_DELAY_FLOOR};
use crate::outcome::{Outcome, Verdict};
use crate::plugin_under_test::{
    Launch, PluginCommand, PluginUnderTest, CALL_TIMEOUT, CONFIGURATION,
};
use crate::transcript::{CaseInfo, HarnessInfo, ReplayFile, REPLAY_SCHEMA};
use rpcplugin_codec::req;

/// The schema of the fuzz report (`--format json`).
pub const FUZZ_SCHEMA: &str = "rpcplugin-conformance-fuzz/v1";

/// Who a frame of a plugin schedule is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// A host-parity (odd) stream the host never announced.
    UnknownOdd,
    /// A plugin-parity (even) stream the plugin never opened.
    UnknownEven,
    /// Stream 0, after the handshake.
    Control,
}

impl Target {
    fn stream(self, n: u8) -> i64 {
        match self {
            Target::UnknownOdd => 10_001 + 2 * i64::from(n),
            Target::UnknownEven => 10_002 + 2 * i64::from(n),
            Target::Control => 0,
        }
    }
}

/// How a plugin schedule ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginEnd {
    /// The host closes its pipe: the plugin closes its output and exits with status 0.
    Close,
    /// A frame with a negative length (FRAME-6).
    NegativeLength,
    /// A header declaring more than MAX_PAYLOAD bytes (FRAME-8).
    Oversized,
    /// A stream id varint that overflows (FRAME-4).
    VarintOverflow,
}

/// One step of a plugin schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum PluginStep {
    /// Queue `OnActivate` with a new API stream (a successful response is due, RPC-5).
    Activate,
    /// Queue `OnDeactivate` (a successful response is due).
    Deactivate,
    /// Queue a data frame of `len` bytes for `target` (discarded, STREAM-5 / HS-8).
    Junk {
        /// Its stream.
        target: Target,
        /// Which stream of the kind (0-7).
        n: u8,
        /// Payload bytes.
        len: u16,
    },
    /// Queue a close frame for an unknown stream (discarded, STREAM-5).
    CloseUnknown {
        /// Its stream.
        target: Target,
        /// Which stream of the kind.
        n: u8,
    },
    /// Write what is queued, cut at these positions (per mille of its length), sleeping
    /// `stall_ms` between the pieces.
    Flush {
        /// Cut points, per mille.
        cuts: Vec<u16>,
        /// Pause between pieces.
        stall_ms: u16,
    },
    /// Write what is queued in one write, then wait for every due response.
    Await,
    /// Write what is queued in one write, then keep reading (serving `LocalAPI`) for `ms`.
    Pause {
        /// How long.
        ms: u16,
    },
}

/// A plugin schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginSchedule {
    /// The steps, in order.
    pub steps: Vec<PluginStep>,
    /// How it ends.
    pub end: PluginEnd,
}

/// One step of a host schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum HostStep {
    /// `activate` through the driver: it succeeds, and the plugin gets its configuration.
    Activate,
    /// `deactivate` through the driver: it succeeds, and the plugin gets `OnDeactivate`.
    Deactivate,
    /// The plugin crashes: it exits with `code`, or kills itself with SIGKILL; the host
    /// relaunches it (LIFE-6) after at least the floor (LIFE-8) and activates it again if it
    /// was active (LIFE-11).
    Crash {
        /// `None`: SIGKILL.
        code: Option<i32>,
    },
    /// The plugin writes a data frame of `len` bytes on an unknown stream (STREAM-5) or on
    /// stream 0 (HS-8); the host goes on.
    Junk {
        /// Stream 0 instead of an unknown stream.
        control: bool,
        /// Payload bytes.
        len: u16,
    },
    /// Nothing happens for `ms`.
    Pause {
        /// How long.
        ms: u16,
    },
}

/// A host schedule: its steps, then a stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSchedule {
    /// The steps, in order.
    pub steps: Vec<HostStep>,
}

/// A schedule of either mode, as a replay file stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mode")]
pub enum Schedule {
    /// Against a plugin.
    Plugin(PluginSchedule),
    /// Against a host.
    Host(HostSchedule),
}

impl Schedule {
    fn len(&self) -> usize {
        match self {
            Schedule::Plugin(s) => s.steps.len(),
            Schedule::Host(s) => s.steps.len(),
        }
    }

    /// The schedule without steps `from..to`.
    fn without(&self, from: usize, to: usize) -> Schedule {
        fn cut<T: Clone>(v: &[T], from: usize, to: usize) -> Vec<T> {
            v[..from].iter().chain(&v[to..]).cloned().collect()
        }
        match self {
            Schedule::Plugin(s) => Schedule::Plugin(PluginSchedule {
                steps: cut(&s.steps, from, to),
                end: s.end,
            }),
            Schedule::Host(s) => Schedule::Host(HostSchedule {
                steps: cut(&s.steps, from, to),
            }),
        }
    }

    /// Simpler variants (tried after removing steps): a plugin schedule that ends by closing
    /// its pipe, and flushes written whole.
    fn simpler(&self) -> Vec<Schedule> {
        let mut out = Vec::new();
        if let Schedule::Plugin(s) = self {
            if s.end != PluginEnd::Close {
                out.push(Schedule::Plugin(PluginSchedule {
                    steps: s.steps.clone(),
                    end: PluginEnd::Close,
                }));
            }
            for (i, step) in s.steps.iter().enumerate() {
                if let PluginStep::Flush { cuts, stall_ms } = step {
                    if !cuts.is_empty() || *stall_ms > 0 {
                        let mut steps = s.steps.clone();
                        steps[i] = PluginStep::Flush {
                            cuts: Vec::new(),
                            stall_ms: 0,
                        };
                        out.push(Schedule::Plugin(PluginSchedule { steps, end: s.end }));
                    }
                }
            }
        }
        out
    }
}

/// A small deterministic generator (SplitMix64): the same seed gives the same schedules on
/// every machine.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// The seed of schedule `index` of a run with `seed`.
pub fn schedule_seed(seed: u64, index: u64) -> u64 {
    Rng::new(seed ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93)).next_u64()
}

/// The plugin schedule of `seed`: 1 to 24 steps, then an end.
pub fn plugin_schedule(seed: u64) -> PluginSchedule {
    let mut r = Rng::new(seed);
    let n = 1 + r.below(24) as usize;
    let target = |r: &mut Rng| match r.below(3) {
        0 => Target::UnknownOdd,
        1 => Target::UnknownEven,
        _ => Target::Control,
    };
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        steps.push(match r.below(16) {
            0..=3 => PluginStep::Activate,
            4..=6 => PluginStep::Deactivate,
            7..=8 => {
                let target = target(&mut r);
                PluginStep::Junk {
                    target,
                    n: r.below(8) as u8,
                    len: match r.below(4) {
                        0 => 1,
                        1 => r.below(64) as u16 + 1,
                        2 => r.below(4096) as u16 + 1,
                        _ => r.below(40_000) as u16 + 1,
                    },
                }
            }
            9 => PluginStep::CloseUnknown {
                target: if r.below(2) == 0 {
                    Target::UnknownOdd
                } else {
                    Target::UnknownEven
                },
                n: r.below(8) as u8,
            },
            10..=12 => {
                let pieces = r.below(6) as usize;
                let mut cuts: Vec<u16> = (0..pieces).map(|_| r.below(1000) as u16).collect();
                cuts.sort_unstable();
                PluginStep::Flush {
                    cuts,
                    stall_ms: if r.below(4) == 0 {
                        r.below(50) as u16
                    } else {
                        0
                    },
                }
            }
            13..=14 => PluginStep::Await,
            _ => PluginStep::Pause {
                ms: r.below(100) as u16,
            },
        });
    }
    let end = match r.below(8) {
        0 => PluginEnd::NegativeLength,
        1 => PluginEnd::Oversized,
        2 => PluginEnd::VarintOverflow,
        _ => PluginEnd::Close,
    };
    PluginSchedule { steps, end }
}

/// The host schedule of `seed`: 1 to 8 steps (at most two crashes), then a stop.
pub fn host_schedule(seed: u64) -> HostSchedule {
    let mut r = Rng::new(seed);
    let n = 1 + r.below(8) as usize;
    let mut crashes = 0;
    let mut steps = Vec::with_capacity(n);
    for _ in 0..n {
        steps.push(match r.below(10) {
            0..=2 => HostStep::Activate,
            3..=4 => HostStep::Deactivate,
            5..=6 if crashes < 2 => {
                crashes += 1;
                HostStep::Crash {
                    code: match r.below(3) {
                        0 => None,
                        1 => Some(0),
                        _ => Some(1 + r.below(100) as i32),
                    },
                }
            }
            5..=7 => HostStep::Junk {
                control: r.below(2) == 0,
                len: r.below(2048) as u16 + 1,
            },
            _ => HostStep::Pause {
                ms: r.below(300) as u16,
            },
        });
    }
    HostSchedule { steps }
}

/// What running one schedule produced.
#[derive(Debug)]
pub struct Ran {
    /// Pass, or the failure with the requirement broken.
    pub outcome: Outcome,
    /// The exchange, as a replay file holds it.
    pub replay: ReplayFile,
}

/// The subject of a fuzz run.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A plugin executable.
    Plugin(PluginCommand),
    /// A host, through its driver.
    Host(DriverCommand),
}

impl Subject {
    fn mode(&self) -> &'static str {
        match self {
            Subject::Plugin(_) => "plugin",
            Subject::Host(_) => "host",
        }
    }

    fn display(&self) -> Vec<String> {
        match self {
            Subject::Plugin(p) => p.display(),
            Subject::Host(h) => h.display(),
        }
    }
}

/// The deadline of one schedule's run (scaled): generous, for the slowest schedules.
const SCHEDULE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `schedule` against `subject` once.
pub fn run_schedule(subject: &Subject, schedule: &Schedule, seed: u64, scale: f64) -> Ran {
    let run = std::panic::AssertUnwindSafe(|| match (subject, schedule) {
        (Subject::Plugin(command), Schedule::Plugin(s)) => run_plugin(command, s, seed, scale),
        (Subject::Host(command), Schedule::Host(s)) => run_host(command, s, scale),
        _ => (
            Outcome::error("a schedule of the other mode"),
            Vec::new(),
            None,
            String::new(),
        ),
    });
    let (outcome, exchange, exit, stderr) = std::panic::catch_unwind(run).unwrap_or_else(|p| {
        let what = crate::runner::panic_text(p.as_ref());
        (
            Outcome::error(format!(
                "the harness itself failed while running a schedule (please report it): {what}"
            )),
            Vec::new(),
            None,
            String::new(),
        )
    });
    let replay = ReplayFile {
        schema: REPLAY_SCHEMA.to_string(),
        harness: HarnessInfo::current(),
        mode: subject.mode().to_string(),
        case: CaseInfo {
            id: format!("fuzz/{}", subject.mode()),
            title: format!(
                "a random schedule of {} step(s) (seed {seed})",
                schedule.len()
            ),
            requirements: Vec::new(),
        },
        seed,
        timeout_scale: scale,
        subject: subject.display(),
        verdict: outcome.verdict().as_str().to_string(),
        reason: outcome.reason(),
        message: outcome.message(),
        exchange,
        exit,
        stderr,
        schedule: Some(serde_json::to_value(schedule).expect("a schedule serializes")),
    };
    Ran { outcome, replay }
}

type Raw = (
    Outcome,
    Vec<crate::transcript::Entry>,
    Option<crate::transcript::ExitRecord>,
    String,
);

fn run_plugin(command: &PluginCommand, s: &PluginSchedule, seed: u64, scale: f64) -> Raw {
    let launch = Launch {
        scale,
        case_timeout: SCHEDULE_TIMEOUT.mul_f64(scale),
        stdin_pipe: false,
        seed,
    };
    let mut p = match PluginUnderTest::launch(command, &launch) {
        Ok(p) => p,
        Err(e) => {
            return (
                Outcome::error(format!("cannot launch the plugin: {e}")),
                Vec::new(),
                None,
                String::new(),
            )
        }
    };
    let outcome = match plugin_steps(&mut p, s) {
        Ok(()) => Outcome::Pass,
        Err(o) => o,
    };
    p.drain_ready();
    let outcome = crate::runner::merge_observations(outcome, &p);
    let exit = p.try_exit().map(Into::into);
    let stderr = p.stderr();
    let exchange = p.recorder().entries();
    (outcome, exchange, exit, stderr)
}

/// The failure for a wait that ended because the plugin's output ended or was invalid: the
/// observer's finding if it has one (the runner puts it first), else LIFE-21.
fn ended(p: &PluginUnderTest, what: &str, got: String) -> Outcome {
    p.fail(
        req!("LIFE-21"),
        &format!("{what}, the plugin still serving its hooks stream"),
        &got,
    )
}

fn plugin_steps(p: &mut PluginUnderTest, s: &PluginSchedule) -> Result<(), Outcome> {
    p.handshake()?;
    let mut queued: Vec<u8> = Vec::new();
    // Every request sent and not answered yet: Seq, call.
    let mut due: Vec<(u64, Call)> = Vec::new();
    // Calls that were in flight together: an error response to one is allowed.
    let mut contested: Vec<u64> = Vec::new();
    for step in &s.steps {
        match step {
            PluginStep::Activate => {
                let api = p.open_api_stream()?;
                let call = Call::OnActivate {
                    api_stream: api.get(),
                };
                let seq = p.queue_call(call.clone())?;
                queued.extend(p.take_queued());
                contend(&due, &mut contested, seq);
                due.push((seq, call));
            }
            PluginStep::Deactivate => {
                let seq = p.queue_call(Call::OnDeactivate)?;
                queued.extend(p.take_queued());
                contend(&due, &mut contested, seq);
                due.push((seq, Call::OnDeactivate));
            }
            PluginStep::Junk { target, n, len } => {
                let payload: Vec<u8> = (0..*len).map(|i| (i % 251) as u8 ^ 0x5a).collect();
                frame(&mut queued, target.stream(*n), &payload)?;
            }
            PluginStep::CloseUnknown { target, n } => frame(&mut queued, target.stream(*n), &[])?,
            PluginStep::Flush { cuts, stall_ms } => {
                let bytes = std::mem::take(&mut queued);
                let cuts: Vec<usize> = cuts
                    .iter()
                    .map(|c| bytes.len() * usize::from((*c).min(1000)) / 1000)
                    .collect();
                let mut at = 0;
                for cut in cuts.iter().copied().chain(std::iter::once(bytes.len())) {
                    if cut > at {
                        if at > 0 && *stall_ms > 0 {
                            std::thread::sleep(Duration::from_millis(u64::from(*stall_ms)));
                        }
                        p.send(&bytes[at..cut])?;
                        at = cut;
                    }
                }
            }
            PluginStep::Await => {
                send_all(p, &mut queued)?;
                await_due(p, &mut due, &contested)?;
            }
            PluginStep::Pause { ms } => {
                send_all(p, &mut queued)?;
                p.wait_until(Duration::from_millis(u64::from(*ms)), |_| false)
                    .map_err(|got| ended(p, "during a pause", got))?;
                collect(p, &mut due, &contested)?;
            }
        }
    }
    send_all(p, &mut queued)?;
    match s.end {
        PluginEnd::Close => {
            await_due(p, &mut due, &contested)?;
            close_and_expect_exit(p)
        }
        end => {
            await_due(p, &mut due, &contested)?;
            let (bad, requirement): (&[u8], &'static str) = match end {
                PluginEnd::NegativeLength => (&[0x02, 0x01], req!("FRAME-6")),
                PluginEnd::Oversized => (&[0x02, 0x82, 0x80, 0x80, 0x10], req!("FRAME-8")),
                _ => (
                    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
                    req!("FRAME-4"),
                ),
            };
            send_malformed(p, bad, requirement)
        }
    }
}

/// A server may run requests in any order (RPC-5): an activation in flight with another
/// hook call may come second and find a higher API stream connected, or its API stream
/// closed by a deactivation. Only a call alone in flight must succeed.
fn contend(due: &[(u64, Call)], contested: &mut Vec<u64>, seq: u64) {
    if !due.is_empty() {
        contested.extend(due.iter().map(|d| d.0));
        contested.push(seq);
    }
}

fn frame(out: &mut Vec<u8>, stream: i64, payload: &[u8]) -> Result<(), Outcome> {
    let id = StreamId::new(stream).ok_or_else(|| Outcome::error("a negative stream id"))?;
    encode_frame(id, payload, out)
        .map_err(|e| Outcome::error(format!("encoding a frame failed: {e}")))
}

fn send_all(p: &mut PluginUnderTest, queued: &mut Vec<u8>) -> Result<(), Outcome> {
    if queued.is_empty() {
        return Ok(());
    }
    let bytes = std::mem::take(queued);
    p.send(&bytes)
}

/// Claims the responses that have arrived: each must answer a due request successfully.
fn collect(
    p: &mut PluginUnderTest,
    due: &mut Vec<(u64, Call)>,
    contested: &[u64],
) -> Result<(), Outcome> {
    let got = p
        .take_hook_responses()
        .map_err(|e| ended(p, "while responses were due", e))?;
    for r in got {
        let Some(at) = due.iter().position(|(seq, _)| *seq == r.header.seq) else {
            return Err(p.fail(
                req!("RPC-5"),
                "exactly one response per request",
                &format!(
                    "a response with Seq {} that answers no due request",
                    r.header.seq
                ),
            ));
        };
        let (seq, call) = due.remove(at);
        if !r.header.error.is_empty() && !contested.contains(&seq) {
            let requirement = match call {
                Call::OnActivate { .. } => req!("RPC-20"),
                _ => req!("RPC-15"),
            };
            return Err(p.fail(
                requirement,
                &format!("a successful response to {call}"),
                &format!("an error response: {}", r.header.error),
            ));
        }
    }
    Ok(())
}

/// Waits (at most CALL_TIMEOUT from now) until every due request is answered.
fn await_due(
    p: &mut PluginUnderTest,
    due: &mut Vec<(u64, Call)>,
    contested: &[u64],
) -> Result<(), Outcome> {
    let seqs: Vec<u64> = due.iter().map(|d| d.0).collect();
    let done = p
        .wait_until(CALL_TIMEOUT, |p| {
            seqs.iter().all(|s| p.has_hook_response(*s))
        })
        .map_err(|got| ended(p, "while responses were due", got))?;
    collect(p, due, contested)?;
    if !done || !due.is_empty() {
        let missing: Vec<String> = due
            .iter()
            .map(|(seq, c)| format!("{c} (Seq {seq})"))
            .collect();
        return Err(p.fail(
            req!("RPC-5"),
            &format!("a response to every request within {CALL_TIMEOUT:?}"),
            &format!("no response to {}", missing.join(", ")),
        ));
    }
    Ok(())
}

/// The host cases' budgets, scaled by the harness.
const REPLY: Duration = Duration::from_secs(5);
const RELAUNCH: Duration = Duration::from_secs(10);

/// The configuration of the fuzzer's activations, as a JSON text (DRV-7).
fn host_config() -> String {
    format!(
        "{{\"fuzz\": true, \"bytes\": {}}}",
        Value::from(String::from_utf8_lossy(CONFIGURATION).into_owned())
    )
}

fn run_host(command: &DriverCommand, s: &HostSchedule, scale: f64) -> Raw {
    let mut h = match HostUnderTest::launch(command, scale, SCHEDULE_TIMEOUT.mul_f64(scale)) {
        Ok(h) => h,
        Err(e) => {
            return (
                Outcome::error(e.to_string()),
                Vec::new(),
                None,
                String::new(),
            )
        }
    };
    let outcome = match host_steps(&mut h, s) {
        Ok(()) => Outcome::Pass,
        Err(o) => o,
    };
    h.shut_down();
    let outcome = crate::runner::merge_host_observations(outcome, &h);
    let stderr = h.stderr();
    (outcome, h.recorder().entries(), None, stderr)
}

fn host_steps(h: &mut HostUnderTest, s: &HostSchedule) -> Result<(), Outcome> {
    // Every launch behaves; crashes and junk are ordered over the socket.
    h.script(vec![Behaviour::default(); 8]);
    let start = h.start("p", Duration::from_secs(3));
    must(h, start, req!("DRV-5"), "a successful start")?;
    // What the host must do, from the codec's model of chapter 06 (Table 6-1): fed the same
    // steps, it says whether a relaunch is due and whether it re-activates (LIFE-11).
    let mut model = HostModel::started();
    let mut current = 0usize;
    // The requirement of the last junk the plugin sent: an unexpected relaunch breaks it.
    let mut last_junk: Option<&'static str> = None;
    let mut settle: Option<Instant> = None;
    let wait_launch = |h: &HostUnderTest, index: usize| -> Result<(), Outcome> {
        if !h.wait(Duration::from_secs(3), |w| {
            w.launches
                .get(index)
                .is_some_and(|l| l.event("announced").is_some())
        }) {
            return Err(h.fail(
                req!("LIFE-1"),
                "the plugin launched and announced",
                &format!("{} launch(es)", h.launches().len()),
            ));
        }
        Ok(())
    };
    wait_launch(h, 0)?;
    // The plugin relaunched or ended although nothing crashed it: the host ended its
    // connection, breaking the rule of the junk it sent last.
    let unexpected = |h: &HostUnderTest, current: usize, last_junk: Option<&'static str>| {
        let l = h.launches();
        (l.len() > current + 1 || l[current].ended_at.is_some()).then(|| {
            h.fail(
                last_junk.unwrap_or(req!("LIFE-6")),
                "the plugin's connection kept (nothing crashed it)",
                "the host ended it",
            )
        })
    };
    for step in &s.steps {
        match step {
            HostStep::Activate => {
                let before = h.launches()[current].events_named("config").count();
                let args = json!({"plugin": "p", "config": host_config()});
                let r = command(h, "activate", args, settle);
                if let Err(e) = must(h, r, req!("DRV-7"), "a successful activation") {
                    return Err(unexpected(h, current, last_junk)
                        .unwrap_or_else(|| stalled(h, last_junk, e)));
                }
                if !h.wait(REPLY, |w| {
                    w.launches[current].events_named("config").count() > before
                }) {
                    return Err(h.fail(
                        req!("RPC-13"),
                        "the plugin's LoadPluginConfiguration answered during OnActivate",
                        "no answer",
                    ));
                }
                model.activated();
            }
            HostStep::Deactivate => {
                let r = command(h, "deactivate", json!({"plugin": "p"}), settle);
                if let Err(e) = must(h, r, req!("DRV-7"), "a successful deactivation") {
                    return Err(unexpected(h, current, last_junk)
                        .unwrap_or_else(|| stalled(h, last_junk, e)));
                }
                if !h.wait_request(current, "LocalHooks.OnDeactivate", REPLY) {
                    return Err(h.fail(
                        req!("DRV-7"),
                        "an OnDeactivate request at the plugin",
                        "none",
                    ));
                }
                model.deactivated();
            }
            HostStep::Crash { code } => {
                let order = match code {
                    Some(code) => Order::Exit { code: *code },
                    None => Order::Kill,
                };
                h.order(current, &order)?;
                let reactivates = model.crash_and_relaunch(*code);
                let crashed = h.launches()[current].pid;
                let next = current + 1;
                if !h.wait(RELAUNCH, |w| w.launches.len() > next) {
                    return Err(h.fail(
                        req!("LIFE-6"),
                        "a relaunch of the plugin that crashed",
                        &format!("{} launch(es) within {:?}", next, h.scaled(RELAUNCH)),
                    ));
                }
                // Everything the crashed agent reported has arrived once its socket has
                // closed; the delay is judged by the machine's monotonic clock, as the two
                // agents read it (not by when the harness heard of them).
                h.wait_ended(current, REPLY);
                let l = h.launches();
                let delay = l[current].delay_to(&l[next]);
                if delay < RESTART_DELAY_FLOOR {
                    return Err(h.fail(
                        req!("LIFE-8"),
                        "at least RESTART_DELAY_MIN (1 s) between a crash and the relaunch",
                        &format!(
                            "{delay:?} from the crash to the start of the relaunched plugin (the \
                             machine's monotonic clock)"
                        ),
                    ));
                }
                wait_launch(h, next)?;
                if reactivates && !h.wait(REPLY, |w| w.launches[next].event("config").is_some()) {
                    return Err(h.fail(
                        req!("LIFE-11"),
                        "the relaunched plugin activated again, as the crashed one was",
                        &format!("it received {:?}", h.launches()[next].requests()),
                    ));
                }
                reaped(crashed, Duration::from_secs(2))
                    .map_err(|e| h.fail(req!("LIFE-19"), "the crashed plugin reaped", &e))?;
                current = next;
                // The host may refuse calls until it reports the relaunched plugin Running
                // (LIFE-11, LIFE-14): the next command is retried for a while.
                settle = Some(h.deadline(REPLY));
            }
            HostStep::Junk { control, len } => {
                let payload: Vec<u8> = (0..*len).map(|i| (i % 253) as u8).collect();
                let stream = if *control { 0 } else { 10_001 };
                let mut bytes = Vec::new();
                frame(&mut bytes, stream, &payload)?;
                h.order(
                    current,
                    &Order::Send {
                        hex: crate::transcript::to_hex(&bytes),
                    },
                )?;
                last_junk = Some(if *control {
                    req!("HS-8")
                } else {
                    req!("STREAM-5")
                });
            }
            HostStep::Pause { ms } => std::thread::sleep(Duration::from_millis(u64::from(*ms))),
        }
        if let Some(e) = unexpected(h, current, last_junk) {
            return Err(e);
        }
    }
    let r = h.call("stop", json!({"plugin": "p"}), Duration::from_secs(20));
    must(h, r, req!("DRV-8"), "a successful stop")?;
    for l in h.launches() {
        reaped(l.pid, Duration::from_secs(2)).map_err(|e| {
            h.fail(
                req!("LIFE-19"),
                "every plugin process reaped after the stop",
                &e,
            )
        })?;
    }
    Ok(())
}

/// The fuzzer's model of the host under test: the codec's [`Lifecycle`] fed the schedule's
/// steps (start, activations, crashes), which says what the host must do next.
struct HostModel {
    lc: Lifecycle,
    now: Instant,
}

impl HostModel {
    /// A supervisor whose start has succeeded (L1, L3).
    fn started() -> HostModel {
        let now = Instant::now();
        let mut lc = Lifecycle::new(Settings::default());
        lc.start(now).expect("a new supervisor starts");
        lc.launched(now, Ok(()));
        lc.announced(now);
        let mut m = HostModel { lc, now };
        m.drain();
        m
    }

    fn drain(&mut self) -> Vec<Action> {
        std::iter::from_fn(|| self.lc.poll_action()).collect()
    }

    /// A successful activation (L6).
    fn activated(&mut self) {
        self.lc.activation_succeeded(host_config().into_bytes());
    }

    /// A deactivation (L6).
    fn deactivated(&mut self) {
        self.lc.deactivation_called();
    }

    /// The plugin crashed (L7) and the host relaunched it after the delay (L10) and saw its
    /// announcement (L13, L14): whether the relaunched plugin must be activated (LIFE-11).
    fn crash_and_relaunch(&mut self, code: Option<i32>) -> bool {
        let exit = code.map_or(Exit::Signal(9), Exit::Status);
        self.lc.exited(self.now, exit);
        self.drain();
        // The virtual clock jumps to the relaunch, whatever the host's actual delay.
        if let Some(due) = self.lc.poll_timeout() {
            self.now = self.now.max(due);
        }
        self.lc.handle_timeout(self.now);
        self.lc.launched(self.now, Ok(()));
        self.lc.announced(self.now);
        let reactivates = self
            .drain()
            .iter()
            .any(|a| matches!(a, Action::Activate { .. }));
        if reactivates {
            self.lc.reactivated(self.now, Ok(()));
            self.drain();
        }
        reactivates
    }
}

/// Sends a command and waits for its reply; an error reply before `settle` is retried.
fn command(
    h: &mut HostUnderTest,
    cmd: &str,
    args: Value,
    settle: Option<Instant>,
) -> Result<Result<Value, String>, Outcome> {
    loop {
        let r = h.call_for(cmd, args.clone(), REPLY, req!("DRV-12"))?;
        match r {
            Err(_) if settle.is_some_and(|t| Instant::now() < t) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            r => return Ok(r),
        }
    }
}

/// A command the driver did not answer, or answered with an error: after junk from the
/// plugin, the rule of that junk (the host stalled or crashed on it), else the driver's own
/// failure.
fn stalled(h: &HostUnderTest, last_junk: Option<&'static str>, e: Outcome) -> Outcome {
    match last_junk {
        Some(requirement) if !e.is_setup_error() => h.fail(
            requirement,
            "the host goes on after the frames the plugin sent: the driver carries out commands",
            &e.reason(),
        ),
        _ => e,
    }
}

/// A failure the fuzzer found, shrunk.
#[derive(Debug, Clone, Serialize)]
pub struct Found {
    /// Which schedule of the run (0-based).
    pub index: u64,
    /// Its seed.
    pub seed: u64,
    /// The verdict of the shrunk schedule.
    pub verdict: Verdict,
    /// The requirement broken (`None`: a harness or setup error).
    pub requirement: Option<String>,
    /// The shrunk schedule's reason.
    pub reason: String,
    /// Steps before shrinking.
    pub steps: usize,
    /// Steps after.
    pub shrunk_steps: usize,
    /// How many runs shrinking took.
    pub shrink_runs: usize,
    /// The shrunk schedule.
    pub schedule: Schedule,
    /// Its replay file, when one was written.
    pub replay: Option<String>,
    /// The shrunk schedule's recorded exchange (the replay file's content), for the HTML
    /// report's diagram.
    #[serde(skip)]
    pub recording: Option<Box<ReplayFile>>,
}

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

/// The fuzz run's report.
#[derive(Debug, Clone, Serialize)]
pub struct FuzzReport {
    /// [`FUZZ_SCHEMA`].
    pub schema: &'static str,
    /// `plugin` or `host`.
    pub mode: &'static str,
    /// The subject's command line.
    pub subject: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// Schedules run (shrinking runs not counted).
    pub schedules: u64,
    /// Schedules per second.
    pub exec_per_s: f64,
    /// The failures found, shrunk.
    pub failures: Vec<Found>,
    /// How long the run took, in milliseconds.
    pub duration_ms: u64,
}

impl FuzzReport {
    /// 0: no failure; 1: a requirement broken; 2: only harness or setup errors.
    pub fn exit_code(&self) -> i32 {
        if self.failures.iter().any(|f| f.requirement.is_some()) {
            1
        } else if self.failures.is_empty() {
            0
        } else {
            2
        }
    }

    /// The report for a terminal.
    pub fn human(&self) -> String {
        let mut out = format!(
            "fuzz {}: {} schedule(s) from seed {} in {:.1} s ({:.1} exec/s), {} failure(s)\n",
            self.mode,
            self.schedules,
            self.seed,
            self.duration_ms as f64 / 1000.0,
            self.exec_per_s,
            self.failures.len()
        );
        for f in &self.failures {
            out.push_str(&format!(
                "\n{} schedule {} (seed {}): {}\n  shrunk from {} to {} step(s) in {} run(s): {}\n",
                f.verdict.as_str().to_uppercase(),
                f.index,
                f.seed,
                f.reason,
                f.steps,
                f.shrunk_steps,
                f.shrink_runs,
                serde_json::to_string(&f.schedule).unwrap_or_default()
            ));
            if let Some(requirement) = &f.requirement {
                if let Some(r) = crate::requirements::lookup(requirement) {
                    out.push_str(&format!("  {requirement}: {}\n", r.text));
                }
            }
            if let Some(path) = &f.replay {
                out.push_str(&format!("  replay: rpcplugin-conformance replay {path}\n"));
            }
        }
        out
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a fuzz report serializes")
    }
}

fn schedule_for(subject: &Subject, seed: u64) -> Schedule {
    match subject {
        Subject::Plugin(_) => Schedule::Plugin(plugin_schedule(seed)),
        Subject::Host(_) => Schedule::Host(host_schedule(seed)),
    }
}

fn requirement(o: &Outcome) -> Option<&'static str> {
    match o {
        Outcome::Fail(f) => f.requirement,
        _ => None,
    }
}

fn failed(o: &Outcome) -> bool {
    matches!(
        o.verdict(),
        Verdict::Fail | Verdict::Timeout | Verdict::Warn
    )
}

/// Shrinks a failing schedule: removes chunks of steps (halves, quarters, ... single steps)
/// and tries the simpler variants, keeping a change when the schedule still fails with the
/// same requirement; at most `budget` runs.
pub fn shrink(
    subject: &Subject,
    schedule: Schedule,
    first: Ran,
    seed: u64,
    scale: f64,
    budget: usize,
) -> (Schedule, Ran, usize) {
    let want = requirement(&first.outcome);
    let mut best = (schedule, first);
    let mut runs = 0;
    let still = |ran: &Ran| failed(&ran.outcome) && requirement(&ran.outcome) == want;
    let mut chunk = best.0.len().div_ceil(2).max(1);
    while runs < budget && best.0.len() > 0 {
        let mut changed = false;
        let mut from = 0;
        while from < best.0.len() && runs < budget {
            let to = (from + chunk).min(best.0.len());
            let candidate = best.0.without(from, to);
            runs += 1;
            let ran = run_schedule(subject, &candidate, seed, scale);
            if still(&ran) {
                best = (candidate, ran);
                changed = true;
            } else {
                from = to;
            }
        }
        if !changed {
            if chunk == 1 {
                break;
            }
            chunk = chunk.div_ceil(2);
        }
    }
    for candidate in best.0.simpler() {
        if runs >= budget {
            break;
        }
        runs += 1;
        let ran = run_schedule(subject, &candidate, seed, scale);
        if still(&ran) {
            best = (candidate, ran);
        }
    }
    (best.0, best.1, runs)
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
    fn schedules_are_deterministic_and_varied() {
        assert_eq!(plugin_schedule(7), plugin_schedule(7));
        assert_eq!(host_schedule(7), host_schedule(7));
        let distinct: std::collections::HashSet<String> = (0..50)
            .map(|i| serde_json::to_string(&plugin_schedule(schedule_seed(1, i))).unwrap())
            .collect();
        assert!(distinct.len() > 45, "{}", distinct.len());
        for i in 0..200 {
            let s = host_schedule(schedule_seed(3, i));
            let crashes = s
                .steps
                .iter()
                .filter(|s| matches!(s, HostStep::Crash { .. }))
                .count();
            assert!(crashes <= 2 && !s.steps.is_empty() && s.steps.len() <= 8);
        }
    }

    #[test]
    fn schedules_round_trip_through_json() {
        for i in 0..20 {
            for s in [
                Schedule::Plugin(plugin_schedule(i)),
                Schedule::Host(host_schedule(i)),
            ] {
                let text = serde_json::to_string(&s).unwrap();
                assert_eq!(serde_json::from_str::<Schedule>(&text).unwrap(), s);
            }
        }
    }

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

    #[test]
    fn removing_steps_keeps_the_end() {
        let s = Schedule::Plugin(PluginSchedule {
            steps: vec![
                PluginStep::Activate,
                PluginStep::Deactivate,
                PluginStep::Await,
            ],
            end: PluginEnd::Oversized,
        });
        let Schedule::Plugin(cut) = s.without(0, 2) else {
            unreachable!()
        };
        assert_eq!(cut.steps, vec![PluginStep::Await]);
        assert_eq!(cut.end, PluginEnd::Oversized);
        assert_eq!(s.simpler().len(), 1);
    }
}
