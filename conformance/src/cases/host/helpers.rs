//! What the host cases share, and no case of its own: the driver-call helpers (a start, an
//! activation, a stop, a command that must succeed or must fail), waiting for the agent's
//! launches and reports, the configuration the harness has hosts give their plugins (RPC-18),
//! the agent's crash behaviours and the raw frames it sends, and the checks that cases of
//! several groups make (a start that fails at once, a clean stop, a connection that goes on
//! after a gob error, a setting the driver passes on).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::agent::{Behaviour, Crash, CrashWhen, Order};
use crate::host_under_test::{process_state, AgentLaunch, HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use crate::transcript::{from_hex, to_hex};
use rpcplugin_codec::req;

/// The start timeout the harness gives hosts, unless a case needs another: the spec's
/// (HS-4).
pub(super) const START: Duration = rpcplugin_codec::lifecycle::START_TIMEOUT;

/// The short start timeout of the timeout cases.
pub(super) const SHORT_START: Duration = Duration::from_secs(1);

/// How long a host may take to notice what a plugin did (a crash, garbage, a close).
pub(super) const NOTICE: Duration = Duration::from_secs(3);

/// The time a restart case allows for a relaunch (RESTART_DELAY_MIN and a start).
pub(super) const RELAUNCH: Duration = Duration::from_secs(8);

/// The configuration the harness has hosts give their plugins, as the JSON text the host must
/// serve byte for byte (RPC-18): members out of order, `<`, `>` and `&`, non-ASCII text and an
/// escape, an integer above 2^53, numbers a float would change, white space. A host that
/// decodes and encodes it again changes it.
pub(super) const CONFIG: &str = "{\"z\": \"last, first\",  \"a\": \"<b>&amp;</b> gr\\u00fc\\u00dfe grüße\",\n \"big\": 12345678901234567891, \"n\": [1.50, 1e400, -0]}";

/// The text `bytes` as a report shows it: lossy UTF-8, cut after 200 characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{:?}... ({} bytes)", &text[..at], bytes.len()),
        None => format!("{text:?} ({} bytes)", bytes.len()),
    }
}

/// Checks a `config` report of the agent against `expected`, byte for byte (RPC-18).
pub(super) fn check_config(
    h: &HostUnderTest,
    got: &Value,
    expected: &str,
    requirement: &'static str,
    what: &str,
) -> Result<(), Outcome> {
    let error = got["error"].as_str().unwrap_or("");
    if !error.is_empty() || got["broken"] == true {
        return Err(h.fail(
            requirement,
            &format!("{what}: a reply to LoadPluginConfiguration holding the configuration"),
            &format!("an error response: {error}"),
        ));
    }
    let bytes = from_hex(got["hex"].as_str().unwrap_or("")).unwrap_or_default();
    if bytes != expected.as_bytes() {
        return Err(h.fail(
            requirement,
            &format!(
                "{what}: the configuration given to activate, byte for byte: {}",
                shown(expected.as_bytes())
            ),
            &format!("the plugin received {}", shown(&bytes)),
        ));
    }
    Ok(())
}

/// The driver's reply to a command, a result or an error text; or the outcome that ended the
/// wait for it.
pub(super) type Reply = Result<Result<Value, String>, Outcome>;

/// The results of a command that must succeed; an error reply fails `requirement`.
pub(crate) fn must(
    h: &HostUnderTest,
    result: Reply,
    requirement: &'static str,
    what: &str,
) -> Result<Value, Outcome> {
    match result? {
        Ok(v) => Ok(v),
        Err(e) => Err(h.fail(requirement, what, &format!("an error: {e}"))),
    }
}

/// The error of a command that must fail; success fails `requirement`.
pub(super) fn must_fail(
    h: &HostUnderTest,
    result: Reply,
    requirement: &'static str,
    what: &str,
) -> Result<String, Outcome> {
    match result? {
        Err(e) => Ok(e),
        Ok(v) => Err(h.fail(requirement, what, &format!("success: {v}"))),
    }
}

/// A start of a plugin that announces its hooks stream at once, which must succeed (DRV-5).
pub(super) fn start_ok(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let r = h.start("p", START);
    must(
        h,
        r,
        req!("DRV-5"),
        "a successful start of a plugin that announces its hooks stream at once",
    )
    .map(|_| ())
}

/// An activation with [`CONFIG`] that must succeed.
pub(super) fn activate_ok(h: &mut HostUnderTest, requirement: &'static str) -> Result<(), Outcome> {
    activate_with(h, CONFIG, requirement)
}

/// An activation with the configuration `config` that must succeed (`requirement` when it
/// fails or no reply comes).
pub(super) fn activate_with(
    h: &mut HostUnderTest,
    config: &str,
    requirement: &'static str,
) -> Result<(), Outcome> {
    let r = h.call_for(
        "activate",
        json!({"plugin": "p", "config": config}),
        REPLY_TIMEOUT,
        requirement,
    );
    must(
        h,
        r,
        requirement,
        "a successful activation of a plugin that accepts it",
    )
    .map(|_| ())
}

/// Waits for launch `index` of the agent.
pub(super) fn launch(
    h: &HostUnderTest,
    index: usize,
    within: Duration,
    requirement: &'static str,
    what: &str,
) -> Result<AgentLaunch, Outcome> {
    if !h.wait(within, |w| w.launches.len() > index) {
        return Err(h.fail(
            requirement,
            what,
            &format!(
                "{} launch(es) of the plugin within {:?}",
                h.launches().len(),
                h.scaled(within)
            ),
        ));
    }
    Ok(h.launches()[index].clone())
}

/// Waits for launch 1, the relaunch of a plugin that crashed (LIFE-6).
pub(super) fn relaunched(h: &HostUnderTest) -> Result<AgentLaunch, Outcome> {
    launch(
        h,
        1,
        RELAUNCH,
        req!("LIFE-6"),
        "a relaunch of the plugin after it crashed",
    )
}

/// The API stream of launch 0's first activation, as its OnActivate request named it (1 when
/// the agent has reported no request).
pub(super) fn api_stream(h: &HostUnderTest) -> i64 {
    h.launches()[0]
        .requests()
        .first()
        .and_then(|r| r.1)
        .unwrap_or(1)
}

/// A stop, given what the host may take for it (the deactivation timeout, the stop grace
/// period and a reply); no reply by then fails `requirement`.
pub(super) fn stop(h: &mut HostUnderTest, requirement: &'static str) -> Reply {
    let allowed = h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT;
    h.call_for("stop", json!({"plugin": "p"}), allowed, requirement)
}

/// Whether launch `index` has reported the end of its connection.
pub(super) fn saw_eof(h: &HostUnderTest, index: usize) -> bool {
    h.launches()[index].event("eof").is_some()
}

/// Waits for launch `index` to report `event`.
pub(super) fn agent_saw(
    h: &HostUnderTest,
    index: usize,
    event: &str,
    within: Duration,
) -> Option<Value> {
    h.wait_agent(index, event, within);
    h.launches()
        .get(index)
        .and_then(|l| l.event(event).cloned())
}

/// Whether process `pid` is gone and reaped, waiting at most `within`; otherwise its state.
pub(crate) fn reaped(pid: u32, within: Duration) -> Result<(), String> {
    let deadline = Instant::now() + within;
    loop {
        match process_state(pid) {
            None => return Ok(()),
            Some(state) if Instant::now() >= deadline => {
                return Err(if state == 'Z' {
                    format!("process {pid} is a zombie: it exited but the host never reaped it")
                } else {
                    format!("process {pid} is still running (state {state})")
                })
            }
            Some(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// DRV-6, a recommendation: the driver passes the setting `name` on to its host (its hello
/// lists it in honours); `got` says what the case did without it.
pub(super) fn honoured(h: &HostUnderTest, name: &str, got: String) -> Result<(), Outcome> {
    if h.honours(name) {
        return Ok(());
    }
    Err(h.fail(
        req!("DRV-6"),
        &format!("a driver that passes {name} on to its host (its hello lists it in honours)"),
        &got,
    ))
}

/// After a stop of launch `index`, which exits with status 0 at the end of its connection:
/// the host must have closed its pipes and let it exit, without a signal (LIFE-17), and the
/// stop reply must say so (DRV-8). The agent's own report of how it ended tells which of the
/// two is wrong.
pub(super) fn stopped_cleanly(
    h: &HostUnderTest,
    index: usize,
    stopped: &Value,
) -> Result<(), Outcome> {
    if stopped["exit"] == json!({"code": 0}) && stopped["killed"] == false {
        return Ok(());
    }
    h.wait_ended(index, REPLY_TIMEOUT);
    let l = h.launches()[index].clone();
    let exiting = l.event("exiting").cloned();
    match (l.event("eof").is_some(), exiting) {
        // The plugin saw the end of its connection and exited with 0 by itself: the reply is
        // wrong.
        (true, Some(e)) if e["code"] == 0 => Err(h.fail(
            req!("DRV-8"),
            "a stop reply saying how the plugin ended: exit status 0, not killed",
            &format!(
                "{stopped}, although the plugin reported that it exited with status 0 after the \
                 end of its connection"
            ),
        )),
        (eof, exiting) => Err(h.fail(
            req!("LIFE-17"),
            "the host ends the connection (end of file at the plugin) and lets the plugin exit \
             by itself, with no signal before the stop grace period",
            &format!(
                "the stop reply says {stopped}; the plugin {} and {}",
                if eof {
                    "saw the end of its connection"
                } else {
                    "never saw the end of its connection"
                },
                match exiting {
                    Some(e) => format!("reported exiting with status {}", e["code"]),
                    None => "died without reporting an exit of its own (killed)".to_string(),
                }
            ),
        )),
    }
}

/// A start of a plugin that behaves as `b` fails (`requirement`: `what` it is), as soon as the
/// plugin gives the reason and not at the start timeout; then the launch must be gone: killed
/// if it was still running, and reaped (LIFE-4), a moment given for `/proc` to show it.
pub(super) fn fails_at_once_and_is_reaped(
    h: &mut HostUnderTest,
    b: Behaviour,
    requirement: &'static str,
    what: &str,
) -> Result<(), Outcome> {
    h.script(vec![b]);
    let began = Instant::now();
    // Unanswered, the start breaks the rule that should have ended it at once.
    let r = h.start_for("p", START, requirement);
    let took = began.elapsed();
    must_fail(h, r, requirement, &format!("a failed start: {what}"))?;
    if took >= h.start_timeout(START) {
        return Err(h.fail(
            requirement,
            "the start failing as soon as the plugin gives the reason, not at the start timeout",
            &format!("it failed after {took:?}"),
        ));
    }
    let l = launch(h, 0, Duration::ZERO, requirement, "the plugin launched")?;
    reaped(l.pid, Duration::from_millis(500)).map_err(|e| {
        h.fail(
            req!("LIFE-4"),
            "the plugin killed (SIGKILL) if it still runs, and reaped, before the start is \
             reported failed",
            &format!("{e}, after the start failed"),
        )
    })
}

/// A plugin that crashes `when`, exiting with `exit` (`None`: killed by SIGKILL).
pub(super) fn crashing(exit: Option<i32>, when: CrashWhen) -> Behaviour {
    Behaviour {
        crash: Some(Crash { when, exit }),
        ..Behaviour::default()
    }
}

/// Activates a plugin that crashes 100 ms later, waits until the host has noticed and is in
/// its restart delay, and sends `command` then: the reply, and how long it took. `None` when
/// the host relaunched already (the window is gone: the restart cases check the delay).
pub(super) fn in_restart_delay(
    h: &mut HostUnderTest,
    command: &str,
) -> Result<Option<(Reply, Duration)>, Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, req!("DRV-7"))?;
    if !h.wait(NOTICE, |w| w.launches[0].ended_at.is_some()) {
        return Err(Outcome::error(
            "the harness's agent did not crash 100 ms after its activation, as it was told to",
        ));
    }
    // The host needs a moment to notice; then it waits at least 1 s to relaunch.
    std::thread::sleep(Duration::from_millis(300));
    if h.launches().len() != 1 {
        return Ok(None);
    }
    let began = Instant::now();
    let r = h.call(command, json!({"plugin": "p"}), REPLY_TIMEOUT);
    Ok(Some((r, began.elapsed())))
}

/// Launch `index` of the agent writes `bytes` to the host.
pub(super) fn send(h: &mut HostUnderTest, index: usize, bytes: &[u8]) -> Result<(), Outcome> {
    h.order(index, &Order::Send { hex: to_hex(bytes) })
}

/// `payload` as one frame on `stream`.
pub(super) fn frame(stream: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rpcplugin_codec::frame::encode_frame(
        rpcplugin_codec::StreamId::new(stream).expect("valid"),
        payload,
        &mut out,
    );
    out
}

/// After a gob error on an API stream: the host kept the plugin's connection (GOB-18,
/// `expected` in words), and a deactivation succeeds (`what` in words).
pub(super) fn connection_went_on(
    h: &mut HostUnderTest,
    expected: &str,
    what: &str,
) -> Result<(), Outcome> {
    if saw_eof(h, 0) || h.launches().len() > 1 {
        return Err(h.fail(
            req!("GOB-18"),
            expected,
            "the host ended the plugin's connection",
        ));
    }
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, req!("GOB-18"), what)?;
    Ok(())
}
