//! A plugin schedule against a plugin: the harness plays the host, its stream table and
//! hooks client the model. Every due request must be answered once and successfully (RPC-5,
//! RPC-15, RPC-20), frames for unknown streams and stream 0 discarded (STREAM-5, HS-8), and the
//! end honoured: when the host closes its pipe, or sends a malformed frame (FRAME-4, FRAME-6,
//! FRAME-8), the plugin ends the connection (FRAME-14) and exits (TRANS-9).

use std::time::Duration;

use rpcplugin_codec::req;
use rpcplugin_codec::rpc::Call;

use crate::cases::plugin::{close_and_expect_exit, send_malformed};
use crate::outcome::Outcome;
use crate::plugin_under_test::{Launch, PluginCommand, PluginUnderTest, CALL_TIMEOUT};

use super::run::{frame, Raw, SCHEDULE_TIMEOUT};
use super::schedule::{PluginEnd, PluginSchedule, PluginStep};

/// Runs a plugin schedule: the harness plays the host.
pub(super) fn run_plugin(
    command: &PluginCommand,
    s: &PluginSchedule,
    seed: u64,
    scale: f64,
) -> Raw {
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
