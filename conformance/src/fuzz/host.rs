//! A host schedule against a host, through its driver: the harness plays the plugin (the
//! agent), and the codec's life-cycle machine (`rpcplugin_codec::lifecycle`, chapter 06) is the
//! model (`HostModel`) of what the host must do: relaunch after a crash (LIFE-6), not sooner
//! than the floor (LIFE-8), in the activation state of before (LIFE-11), reap (LIFE-19), and go
//! on after junk frames (STREAM-5, HS-8).

use std::time::{Duration, Instant};

use rpcplugin_codec::lifecycle::{Action, Exit, Lifecycle, Settings};
use rpcplugin_codec::req;
use serde_json::{json, Value};

use crate::agent::{Behaviour, Order};
use crate::cases::host::{must, reaped};
use crate::host_under_test::{DriverCommand, HostUnderTest, RESTART_DELAY_FLOOR};
use crate::outcome::Outcome;
use crate::plugin_under_test::CONFIGURATION;

use super::run::{frame, Raw, SCHEDULE_TIMEOUT};
use super::schedule::{HostSchedule, HostStep};

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

/// Runs a host schedule: the harness plays the plugin (the agent).
pub(super) fn run_host(command: &DriverCommand, s: &HostSchedule, scale: f64) -> Raw {
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
