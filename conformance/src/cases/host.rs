//! Cases against a host, through its driver (spec 07 section 7.2): the harness's agent plays
//! the host's plugin (spec/harness.md section 6), one behaviour per launch, and reports what the host did.
//!
//! Besides what each case checks, every agent observes everything the host writes (the codec's
//! tracer: HS-3, STREAM-1, the framing and gob sender rules; and STREAM-2, STREAM-3, STREAM-6
//! from both directions); `host/wire/output-follows-sender-rules` cites what it enforces.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{Case, Runner, DEFAULT_TIMEOUT};
use crate::agent::{Behaviour, Crash, CrashWhen, Order};
use crate::host_under_test::{
    process_state, AgentLaunch, HostUnderTest, REPLY_TIMEOUT, RESTART_DELAY_MAX, STABLE_PERIOD,
};
use crate::outcome::Outcome;
use crate::transcript::{from_hex, to_hex};

/// The start timeout the harness gives hosts, unless a case needs another.
const START: Duration = Duration::from_secs(3);
/// The short start timeout of the timeout cases.
const SHORT_START: Duration = Duration::from_secs(1);
/// How long a host may take to notice what a plugin did (a crash, garbage, a close).
const NOTICE: Duration = Duration::from_secs(3);
/// RESTART_DELAY_MIN, less what clocks and scheduling can shave off a measurement.
const RESTART_DELAY_MIN: Duration = Duration::from_millis(990);
/// The time a restart case allows for a relaunch (RESTART_DELAY_MIN and a start).
const RELAUNCH: Duration = Duration::from_secs(8);
/// The configuration the harness has hosts give their plugins, as the JSON text the host must
/// serve byte for byte (RPC-18): members out of order, `<`, `>` and `&`, non-ASCII text and an
/// escape, an integer above 2^53, numbers a float would change, white space. A host that
/// decodes and encodes it again changes it.
pub(crate) const CONFIG: &str = "{\"z\": \"last, first\",  \"a\": \"<b>&amp;</b> gr\\u00fc\\u00dfe grüße\",\n \"big\": 12345678901234567891, \"n\": [1.50, 1e400, -0]}";
/// A second configuration, for the cases that activate twice.
const CONFIG_2: &str = "{\"generation\": 2, \"z\": \"<second>\"}";

/// The text `bytes` as a report shows it: lossy UTF-8, cut after 200 characters.
fn shown(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{:?}... ({} bytes)", &text[..at], bytes.len()),
        None => format!("{text:?} ({} bytes)", bytes.len()),
    }
}

/// Checks a `config` report of the agent against `expected`, byte for byte (RPC-18).
fn check_config(
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

/// The hand-written host cases.
pub static CASES: &[Case] = &[
    Case::host(
        "host/lifecycle/start-activate-deactivate-stop",
        "start, activation with a configuration, deactivation and stop, as the plugin sees them",
        &[
            "TRANS-1", "HS-7", "RPC-12", "RPC-13", "RPC-18", "GOB-3", "LIFE-1", "LIFE-17",
            "LIFE-19", "DRV-1", "DRV-2", "DRV-4", "DRV-5", "DRV-7", "DRV-8",
        ],
        |h| finish(lifecycle(h)),
    ),
    Case::host(
        "host/transport/descriptors",
        "the plugin starts with descriptors 0 to 4 only, 3 reading and 4 writing, and the host keeps no copy of the plugin's ends",
        &["TRANS-1", "TRANS-4", "TRANS-12"],
        |h| finish(descriptors(h)),
    ),
    Case::host(
        "host/transport/own-process-group",
        "the plugin leads a process group of its own, so that signals to the host's group do not reach it",
        &["TRANS-13"],
        |h| finish(own_process_group(h)),
    ),
    Case::host(
        "host/transport/arguments-and-signals",
        "the plugin starts with no argument after its name, no signal blocked and no signal ignored",
        &["TRANS-14", "TRANS-15", "TRANS-16"],
        |h| finish(arguments_and_signals(h)),
    ),
    Case::host(
        "host/transport/stdin-is-dev-null",
        "the plugin's standard input is /dev/null",
        &["TRANS-6"],
        |h| finish(stdin_null(h)),
    ),
    Case::host(
        "host/transport/stdout-is-not-protocol",
        "a fake announcement on the plugin's standard output is ignored; the real one on descriptor 4 counts",
        &["TRANS-3"],
        |h| finish(stdout_not_protocol(h)),
    ),
    Case::host(
        "host/start/timeout",
        "a plugin that never announces fails the start within the start timeout; it is killed and not relaunched",
        &["HS-4", "LIFE-4", "LIFE-5", "LIFE-19"],
        |h| finish(start_timeout(h)),
    ),
    Case::host(
        "host/handshake/data-before-announcement",
        "data and close frames on data streams before the announcement are discarded; the start succeeds",
        &["STREAM-5", "HS-7"],
        |h| finish(data_before_announcement(h)),
    ),
    Case::host(
        "host/handshake/malformed-frame-first",
        "a malformed frame before the announcement is a connection error: the start fails at once and the plugin is killed",
        &["FRAME-5", "FRAME-14", "LIFE-4"],
        |h| finish(malformed_frame_first(h)),
    ),
    Case::host(
        "host/start/late-announcement",
        "an announcement 500 ms after the launch, within a 3 s start timeout, starts the plugin",
        &["HS-4"],
        |h| finish(late_announcement(h)),
    ),
    Case::host(
        "host/start/eof-before-announcement",
        "a plugin that exits before announcing fails the start at once, not at the start timeout",
        &["HS-6", "LIFE-4", "LIFE-5"],
        |h| finish(eof_before_announcement(h)),
    ),
    Case::host(
        "host/start/no-relaunch-after-bad-announcement",
        "after a start that failed at a bad announcement, nothing launches the plugin again",
        &["LIFE-5"],
        |h| finish(no_relaunch_after_bad_announcement(h)),
    ),
    Case::host(
        "host/start/failed-plugin-is-killed",
        "a plugin that ignores the end of its connection after a bad announcement is killed and reaped before the start fails",
        &["LIFE-4", "LIFE-19"],
        |h| finish(failed_plugin_is_killed(h)),
    ),
    Case::host(
        "host/start/launch-fails",
        "a bundle whose executable does not exist fails its start with an error, and nothing launches it later",
        &["LIFE-5", "DRV-5"],
        |h| finish(launch_fails(h)),
    ),
    Case::host(
        "host/start/stop-after-failed-start",
        "a stop after a failed start succeeds, and nothing is relaunched",
        &["LIFE-20", "LIFE-5"],
        |h| finish(stop_after_failed_start(h)),
    ),
    Case::host(
        "host/restart/crash-after-activation",
        "a plugin that exits after activation is relaunched after at least 1 s and activated again with the same configuration",
        &["LIFE-6", "LIFE-8", "LIFE-11", "LIFE-19", "DRV-10", "DRV-12"],
        |h| finish(crash_and_restart(h, Some(3), &["LIFE-8", "LIFE-11", "LIFE-19", "DRV-10"])),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/restart/sigkill-after-activation",
        "a plugin killed by SIGKILL after activation is relaunched and activated again",
        &["LIFE-6", "LIFE-8", "LIFE-11"],
        |h| finish(crash_and_restart(h, None, &["LIFE-8", "LIFE-11"])),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/restart/exit-0-is-a-crash",
        "a plugin that exits with status 0 while running has crashed too, and is relaunched",
        &["LIFE-6"],
        |h| finish(crash_and_restart(h, Some(0), &[])),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/restart/one-process-at-a-time",
        "a crashed plugin that outlives its connection is gone before the host launches the next process",
        &["LIFE-6", "LIFE-7"],
        |h| finish(one_process_at_a_time(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/restart/backoff-grows",
        "the delays before the relaunches of a plugin that keeps crashing grow: 1 s, 2 s, 4 s",
        &["LIFE-8", "LIFE-9", "LIFE-12"],
        |h| finish(backoff_grows(h)),
    )
    .with_timeout(Duration::from_secs(40)),
    Case::host(
        "host/restart/backoff-capped",
        "the delays before the relaunches of a plugin that keeps crashing stop growing at the longest restart delay (2 s asked; a long case at the host's own, with --long)",
        &["LIFE-9", "DRV-6"],
        |h| finish(backoff_capped(h)),
    )
    .with_timeout(Duration::from_secs(200)),
    Case::host(
        "host/restart/backoff-resets",
        "after a plugin ran for the stable period (2 s asked; a long case at the host's own, with --long), its next crash is again followed by a relaunch after 1 s",
        &["LIFE-10", "LIFE-9", "DRV-6"],
        |h| finish(backoff_resets(h)),
    )
    .with_timeout(Duration::from_secs(200)),
    Case::host(
        "host/restart/failed-relaunch-is-retried",
        "a relaunch that never announces times out like a start, and the host relaunches again",
        &["LIFE-6", "LIFE-12", "HS-4", "LIFE-7"],
        |h| finish(failed_relaunch(h)),
    )
    .with_timeout(Duration::from_secs(40)),
    Case::host(
        "host/restart/reactivates-with-last-configuration",
        "a plugin activated twice, with two configurations, then crashed, is activated again with the second",
        &["LIFE-6", "LIFE-11", "RPC-18"],
        |h| finish(reactivates_with_last_configuration(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/restart/calls-succeed-after-relaunch",
        "after a relaunch, hook calls through the supervisor succeed again",
        &["LIFE-6", "LIFE-11", "DRV-7"],
        |h| finish(calls_after_relaunch(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/calls/in-flight-call-fails",
        "an OnActivate in flight when the plugin dies fails promptly, and is not sent to the relaunched plugin",
        &["RPC-11", "LIFE-6", "LIFE-15", "RPC-16"],
        |h| finish(in_flight_call(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/calls/fail-at-once-while-down",
        "a hook call made while the plugin waits for its relaunch fails at once",
        &["LIFE-14"],
        |h| finish(while_down(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/rpc/failed-activation-is-not-a-crash",
        "an error response to OnActivate fails the activation with its text; the plugin keeps running",
        &["RPC-16", "DRV-9"],
        |h| finish(failed_activation(h)),
    ),
    Case::host(
        "host/rpc/api-stream-closed-after-failed-activation",
        "after a failed activation, the host closes that activation's API stream",
        &["RPC-17"],
        |h| finish(api_closed_after_failed_activation(h)),
    ),
    Case::host(
        "host/rpc/unroutable-requests-answered",
        "on the API stream, requests without a dot, for another service, for an unknown LocalAPI method and with an argument of the wrong type get error responses; the stream goes on",
        &["RPC-8", "RPC-5"],
        |h| finish(unroutable_requests(h)),
    ),
    Case::host(
        "host/rpc/unmatched-response-ignored",
        "a response on the hooks stream whose Seq matches no call is discarded; the activation after it succeeds",
        &["RPC-6"],
        |h| finish(with_behaviour_activated(h, Behaviour { unmatched_response_first: true, ..Behaviour::default() }, "RPC-6")),
    ),
    Case::host(
        "host/rpc/reply-of-the-wrong-type",
        "a reply to OnActivate that is a string, not a struct, fails that activation only: the plugin keeps running and is deactivated",
        &["RPC-10", "RPC-16"],
        |h| finish(reply_of_the_wrong_type(h)),
    ),
    Case::host(
        "host/rpc/oversized-configuration",
        "a configuration too long for one gob message is answered with an error response, not cut and not sent whole",
        &["RPC-18", "GOB-16", "DRV-7"],
        |h| finish(oversized_configuration(h)),
    )
    .with_timeout(Duration::from_secs(60)),
    Case::host(
        "host/stop/deactivates-then-ends-connection",
        "a stop of an activated plugin calls OnDeactivate, then closes the pipes; the plugin exits with 0 and is reaped",
        &["LIFE-16", "LIFE-17", "LIFE-19", "TRANS-8", "DRV-8"],
        |h| finish(stop_deactivates(h)),
    ),
    Case::host(
        "host/stop/kills-after-grace",
        "a plugin that ignores the end of its connection is killed, but only after the stop grace period",
        &["LIFE-17", "LIFE-18", "LIFE-19", "DRV-6"],
        |h| finish(kills_after_grace(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/stop/deactivation-timeout",
        "a plugin that never answers OnDeactivate is stopped after the deactivation timeout; a second stop meanwhile waits for it",
        &["LIFE-16", "LIFE-17", "LIFE-20"],
        |h| finish(deactivation_timeout(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/stop/during-backoff",
        "a stop while the host waits to relaunch a crashed plugin returns at once; nothing is relaunched",
        &["LIFE-20", "LIFE-22"],
        |h| finish(stop_during_backoff(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/stop/during-restart",
        "a stop while a relaunched plugin has not announced yet ends it without OnDeactivate, at once",
        &["LIFE-6", "LIFE-17", "LIFE-20"],
        |h| finish(stop_during_restart(h)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/stop/during-start",
        "a stop while a start waits for the announcement is answered, and the start fails",
        &["LIFE-20", "LIFE-23", "DRV-3"],
        |h| finish(stop_during_start(h)),
    ),
    Case::host(
        "host/stop/twice",
        "a second stop succeeds too",
        &["LIFE-20", "DRV-11"],
        |h| finish(stop_twice(h)),
    ),
    Case::host(
        "host/crash/plugin-closes-its-output",
        "a plugin that closes descriptor 4 but keeps running has crashed: the host ends the connection and relaunches it",
        &["LIFE-6", "TRANS-7", "TRANS-8"],
        |h| finish(crash_by_order(h, Order::CloseOutput)),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/crash/plugin-closes-hooks-stream",
        "a plugin that closes its hooks stream has crashed: the host ends the connection and relaunches it",
        &["LIFE-6", "STREAM-10"],
        |h| finish(crash_by_order(h, Order::CloseStream { stream: 2 })),
    )
    .with_timeout(Duration::from_secs(30)),
    Case::host(
        "host/robustness/stream-0-after-handshake",
        "frames on stream 0 after the handshake are discarded and do not stall the host",
        &["HS-8", "STREAM-14"],
        |h| finish(stream_0_after_handshake(h)),
    ),
    Case::host(
        "host/robustness/unknown-stream-frames",
        "data and close frames for streams nobody opened are discarded; activation still works",
        &["STREAM-5"],
        |h| finish(unknown_streams(h)),
    ),
    Case::host(
        "host/robustness/max-size-frame",
        "a frame of 1 048 576 payload bytes on an unknown stream is accepted and discarded",
        &["FRAME-7", "STREAM-5"],
        |h| finish(max_size_frame(h)),
    ),
    Case::host(
        "host/robustness/flood-on-unread-stream",
        "64 MiB on a stream nobody reads leave the host's memory bounded and its plugin working",
        &["STREAM-15", "STREAM-14", "STREAM-5", "DRV-12"],
        |h| finish(flood(h)),
    )
    .with_timeout(Duration::from_secs(60)),
    Case::host(
        "host/robustness/gob-flood-on-api-stream",
        "a gob Length above 16 MiB on the API stream, then 64 MiB of data: the host closes that stream at once, discards the rest with its memory bounded, and keeps the plugin",
        &["GOB-15", "GOB-19", "GOB-18", "STREAM-9", "DRV-12"],
        |h| finish(gob_flood(h)),
    )
    .with_timeout(Duration::from_secs(60)),
    Case::host(
        "host/framing/one-byte-frames",
        "responses written one byte per frame are reassembled",
        &["FRAME-12"],
        |h| finish(with_behaviour(h, Behaviour { one_byte_frames: true, ..Behaviour::default() })),
    ),
    Case::host(
        "host/framing/non-minimal-varints",
        "frames whose header varints are not minimal are accepted",
        &["FRAME-3"],
        |h| finish(with_behaviour(h, Behaviour { nonminimal_varints: true, ..Behaviour::default() })),
    ),
    Case::host(
        "host/wire/output-follows-sender-rules",
        "in a session of start, two activations, deactivations and a stop, everything the host writes follows the sender's rules",
        // What is checked in every host case (spec/harness.md section 1.2): the agents' observer of
        // the host's output (the sender rules) and the commands every case drives the host
        // with (a reply to each, a start, an activation, a stop that succeed where they must).
        &[
            "HS-3", "STREAM-1", "STREAM-2", "STREAM-3", "STREAM-6", "STREAM-7", "STREAM-8",
            "STREAM-4", "FRAME-1", "FRAME-2", "FRAME-9", "FRAME-10", "RPC-1", "RPC-2", "RPC-4",
            "RPC-5", "GOB-1", "GOB-7", "DRV-2", "DRV-5", "DRV-7", "DRV-8", "DRV-12",
        ],
        |h| finish(session(h)),
    ),
    Case::host(
        "host/bundle/refused-without-launching",
        "bundles without plugin.json, with a manifest that is not an object, or without backend.executable are refused without launching anything",
        &["LIFE-2"],
        |h| finish(bad_bundles(h, false)),
    ),
    Case::host(
        "host/bundle/executable-stays-inside",
        "an absolute backend.executable or one with a .. component is refused",
        &["LIFE-3"],
        |h| finish(bad_bundles(h, true)),
    ),
];

/// One host case per row of the malformed-input tables: bad announcements (Table 4-1) and
/// malformed frames from the plugin (Table 2-2).
pub fn table_cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (i, (name, hex, title, _, requirement)) in BAD_ANNOUNCEMENTS.iter().enumerate() {
        cases.push(Case {
            id: leak(format!("host/handshake/{name}")),
            title: leak(format!(
                "{title} ({hex}): the start fails at once and the plugin is killed"
            )),
            requirements: leak_ids(&[requirement, "LIFE-4"]),
            timeout: DEFAULT_TIMEOUT,
            stdin_pipe: false,
            runner: Runner::HostWith(|h, i| finish(bad_announcement(h, i as usize)), i as u64),
        });
    }
    for (i, (name, hex, requirement, title)) in GARBAGE.iter().enumerate() {
        cases.push(Case {
            id: leak(format!("host/framing/{name}")),
            title: leak(format!(
                "{title} ({hex}) from the plugin ends that connection (a crash), not the host"
            )),
            requirements: leak_ids(&[requirement, "FRAME-14", "LIFE-6", "DRV-12"]),
            timeout: Duration::from_secs(30),
            stdin_pipe: false,
            runner: Runner::HostWith(|h, i| finish(garbage(h, i as usize)), i as u64),
        });
    }
    cases
}

/// One host case per server-side message of `spec/vectors/rpc-messages.json` that every
/// server handles alike ([`super::vectors::for_servers`]): the agent writes it as the first
/// bytes of the API stream of an activation, where the host serves `LocalAPI` (a request for
/// another service is answered with an error, RPC-8), and reports what comes back.
pub fn vector_cases() -> Vec<Case> {
    super::vectors::vectors()
        .iter()
        .filter(|v| super::vectors::for_servers(v))
        .map(|v| {
            let mut reqs: Vec<&'static str> = v
                .requirements
                .iter()
                .filter_map(|r| crate::requirements::lookup(r).map(|r| r.id.as_str()))
                .collect();
            let extra: &[&'static str] = if v.result == "invalid" {
                &["GOB-18"]
            } else {
                &["RPC-5", "RPC-8"]
            };
            for id in extra {
                if !reqs.contains(id) {
                    reqs.push(id);
                }
            }
            Case {
                id: leak(format!("host/rpc-vector/tc-{:02}", v.tc_id)),
                title: leak(format!(
                    "{} ({} message of the RPC vectors, on the API stream)",
                    v.comment, v.result
                )),
                requirements: leak_ids(&reqs),
                timeout: DEFAULT_TIMEOUT,
                stdin_pipe: false,
                runner: Runner::HostWith(|h, tc| finish(host_vector(h, tc)), v.tc_id),
            }
        })
        .collect()
}

/// Plays vector `tc_id` to the host's `LocalAPI` server: a valid message gets one response per
/// request, with its `Seq` and `ServiceMethod` (RPC-5), and the stream goes on; an invalid one
/// (a gob error) gets none, the host closes that stream (GOB-18), and the connection goes on.
fn host_vector(h: &mut HostUnderTest, tc_id: u64) -> Result<(), Outcome> {
    let v = super::vectors::vector(tc_id)
        .ok_or_else(|| Outcome::error(format!("no vector with tcId {tc_id}")))?;
    h.script(vec![Behaviour {
        api_vector_hex: Some(v.hex.clone()),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    let api = h.launches()[0]
        .requests()
        .first()
        .and_then(|r| r.1)
        .unwrap_or(1);
    let responses = |w: &crate::host_under_test::World| -> Vec<(String, String, String)> {
        w.launches[0]
            .events_named("api_response")
            .map(|r| {
                (
                    r["seq"].as_str().unwrap_or("").to_string(),
                    r["method"].as_str().unwrap_or("").to_string(),
                    r["error"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let closed = |w: &crate::host_under_test::World| {
        w.launches[0]
            .events_named("closed")
            .any(|c| c["stream"] == api)
    };
    let requirement: &'static str = v
        .requirements
        .first()
        .and_then(|r| crate::requirements::lookup(r))
        .map_or("RPC-5", |r| r.id.as_str());
    if v.result == "invalid" {
        let expected = format!(
            "after the malformed message of vector {} ({}; a gob error {}) on the API stream \
             {api}, the host answers nothing there, closes it, and keeps the connection",
            v.tc_id,
            v.comment,
            v.error.as_deref().unwrap_or("")
        );
        // The evidence: the close of the stream (after which nothing can be answered on it).
        if !h.wait(NOTICE, closed) {
            return Err(h.fail(
                "GOB-18",
                &expected,
                &format!(
                    "no close frame on stream {api} within {:?}",
                    h.scaled(NOTICE)
                ),
            ));
        }
        if let Some((seq, method, error)) = responses(&h.world()).first() {
            return Err(h.fail(
                requirement,
                &expected,
                &if error.is_empty() {
                    format!(
                        "a successful response (Seq {seq}, {method:?}): the host took the \
                         malformed message as a request"
                    )
                } else {
                    format!(
                        "an error response (Seq {seq}, {method:?}, {error:?}): the host answered \
                         the malformed message instead of treating it as a gob error of the \
                         stream"
                    )
                },
            ));
        }
    } else {
        let wanted: Vec<(String, String)> = v
            .calls
            .iter()
            .map(|c| (c.seq.clone(), c.service_method.clone()))
            .collect();
        let expected = format!(
            "one response to each request of vector {} ({}) on the API stream {api}, with its \
             Seq and ServiceMethod (an error response: LocalAPI has no such method)",
            v.tc_id, v.comment
        );
        h.wait(NOTICE, |w| responses(w).len() >= wanted.len() || closed(w));
        let got = responses(&h.world());
        for (seq, method) in &wanted {
            let n = got.iter().filter(|r| r.0 == *seq).count();
            if n == 0 {
                let why = if closed(&h.world()) {
                    format!(
                        "no response with Seq {seq} ({method}): the host closed the stream, taking \
                         the message for a gob error"
                    )
                } else {
                    format!(
                        "no response with Seq {seq} ({method}) within {:?}",
                        h.scaled(NOTICE)
                    )
                };
                return Err(h.fail(requirement, &expected, &why));
            }
            if n > 1 {
                return Err(h.fail("RPC-5", &expected, &format!("{n} responses with Seq {seq}")));
            }
        }
        if let Some(r) = got
            .iter()
            .find(|r| !wanted.iter().any(|w| w.0 == r.0 && w.1 == r.1))
        {
            return Err(h.fail(
                "RPC-5",
                &expected,
                &format!(
                    "a response with Seq {} and ServiceMethod {:?}, which no request had",
                    r.0, r.1
                ),
            ));
        }
        if let Some(r) = got.iter().find(|r| r.2.is_empty()) {
            return Err(h.fail(
                "RPC-8",
                &expected,
                &format!(
                    "a successful response to {:?} (Seq {}): the host's LocalAPI has no such \
                     method",
                    r.1, r.0
                ),
            ));
        }
    }
    if h.launches()[0].event("eof").is_some() || h.launches().len() > 1 {
        return Err(h.fail(
            "GOB-18",
            "what happens on the API stream ends that stream at most: the connection goes on",
            "the host ended the plugin's connection",
        ));
    }
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        "GOB-18",
        "a successful deactivation after the vector on the API stream",
    )?;
    Ok(())
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn leak_ids(ids: &[&'static str]) -> &'static [&'static str] {
    Box::leak(ids.to_vec().into_boxed_slice())
}

/// Table 4-1: name, the stream-0 payload in hex, what is wrong with it, the row, the
/// requirement it breaks.
const BAD_ANNOUNCEMENTS: &[(&str, &str, &str, &str, &str)] = &[
    ("bad-control-byte", "0104", "control byte 01", "E1", "HS-5"),
    (
        "short-announcement",
        "00",
        "a payload without a varint",
        "E2",
        "HS-5",
    ),
    ("empty-announcement", "", "an empty payload", "E3", "HS-5"),
    (
        "incomplete-varint",
        "0080",
        "an incomplete varint",
        "E4",
        "HS-5",
    ),
    (
        "overflowing-varint",
        "00ffffffffffffffffff7f",
        "a varint that overflows",
        "E5",
        "HS-5",
    ),
    (
        "trailing-byte",
        "000400",
        "a byte after the varint",
        "E6",
        "HS-5",
    ),
    (
        "hooks-stream-zero",
        "0000",
        "hooks stream id 0",
        "E7",
        "HS-9",
    ),
    (
        "odd-hooks-stream",
        "0002",
        "hooks stream id 1, odd",
        "E8",
        "HS-9",
    ),
    (
        "negative-hooks-stream",
        "0003",
        "hooks stream id -2",
        "E9",
        "HS-9",
    ),
];

/// Table 2-2: name, the bytes in hex, the requirement, what they are.
const GARBAGE: &[(&str, &str, &str, &str)] = &[
    (
        "negative-stream-id",
        "0100",
        "FRAME-5",
        "a frame with stream id -1",
    ),
    (
        "negative-length",
        "0201",
        "FRAME-6",
        "a frame with length -1",
    ),
    (
        "oversized-frame",
        "0282808010",
        "FRAME-8",
        "a header declaring 16 777 217 payload bytes",
    ),
    (
        "varint-overflow",
        "ffffffffffffffffff7f",
        "FRAME-4",
        "a stream id varint that overflows",
    ),
    (
        "length-varint-overflow",
        "02808080808080808002",
        "FRAME-4",
        "a length varint that overflows",
    ),
    (
        "most-negative-length",
        "02ffffffffffffffffff01",
        "FRAME-6",
        "a length that decodes to -2^63",
    ),
];

fn finish(result: Result<(), Outcome>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(outcome) => outcome,
    }
}

/// The results of a command that must succeed; an error reply fails `requirement`.
pub(crate) fn must(
    h: &HostUnderTest,
    result: Result<Result<Value, String>, Outcome>,
    requirement: &'static str,
    what: &str,
) -> Result<Value, Outcome> {
    match result? {
        Ok(v) => Ok(v),
        Err(e) => Err(h.fail(requirement, what, &format!("an error: {e}"))),
    }
}

/// The error of a command that must fail; success fails `requirement`.
fn must_fail(
    h: &HostUnderTest,
    result: Result<Result<Value, String>, Outcome>,
    requirement: &'static str,
    what: &str,
) -> Result<String, Outcome> {
    match result? {
        Err(e) => Ok(e),
        Ok(v) => Err(h.fail(requirement, what, &format!("success: {v}"))),
    }
}

fn start_ok(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let r = h.start("p", START);
    must(
        h,
        r,
        "DRV-5",
        "a successful start of a plugin that announces its hooks stream at once",
    )
    .map(|_| ())
}

fn activate_ok(h: &mut HostUnderTest, requirement: &'static str) -> Result<(), Outcome> {
    activate_with(h, CONFIG, requirement)
}

/// An activation with the configuration `config` that must succeed.
fn activate_with(
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
fn launch(
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

/// Waits for launch `index` to report `event`.
fn agent_saw(h: &HostUnderTest, index: usize, event: &str, within: Duration) -> Option<Value> {
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

fn lifecycle(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let first = launch(
        h,
        0,
        REPLY_TIMEOUT,
        "LIFE-1",
        "the plugin of the bundle launched",
    )?;
    activate_ok(h, "DRV-7")?;
    // The agent's reports travel on their own socket: they may follow the driver's reply.
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let requests = l.requests();
    let api = match requests.first() {
        Some((method, Some(api))) if method == "LocalHooks.OnActivate" => *api,
        _ => {
            return Err(h.fail(
                "HS-7",
                "an OnActivate request on the announced hooks stream",
                &format!("the plugin received {requests:?}"),
            ))
        }
    };
    if api <= 0 || api % 2 == 0 {
        return Err(h.fail("RPC-13", "an odd, positive API stream id", &api.to_string()));
    }
    let Some(got) = l.event("config") else {
        return Err(h.fail(
            "RPC-13",
            "an answer to the plugin's LoadPluginConfiguration during OnActivate",
            "none",
        ));
    };
    check_config(h, got, CONFIG, "RPC-18", "during the activation")?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, "DRV-7", "a successful deactivation")?;
    if !h.wait_request(0, "LocalHooks.OnDeactivate", REPLY_TIMEOUT) {
        return Err(h.fail("DRV-7", "an OnDeactivate request at the plugin", "none"));
    }
    let r = h.call_for(
        "stop",
        json!({"plugin": "p"}),
        h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT,
        "LIFE-17",
    );
    let stopped = must(h, r, "DRV-8", "a successful stop")?;
    stopped_cleanly(h, 0, &stopped)?;
    reaped(first.pid, Duration::from_secs(2))
        .map_err(|e| h.fail("LIFE-19", "the stopped plugin reaped", &e))
}

/// After a stop of launch `index`, which exits with status 0 at the end of its connection:
/// the host must have closed its pipes and let it exit, without a signal (LIFE-17), and the
/// stop reply must say so (DRV-8). The agent's own report of how it ended tells which of the
/// two is wrong.
fn stopped_cleanly(h: &HostUnderTest, index: usize, stopped: &Value) -> Result<(), Outcome> {
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
            "DRV-8",
            "a stop reply saying how the plugin ended: exit status 0, not killed",
            &format!(
                "{stopped}, although the plugin reported that it exited with status 0 after the \
                 end of its connection"
            ),
        )),
        (eof, exiting) => Err(h.fail(
            "LIFE-17",
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

/// The pipe inode and mode of descriptor `fd` in a launch's hello (`pipe:[123] r`).
fn pipe_of(l: &AgentLaunch, fd: i64) -> Option<(String, String)> {
    let (_, target) = l.fds.iter().find(|(n, _)| *n == fd)?;
    let (pipe, mode) = target.rsplit_once(' ')?;
    pipe.starts_with("pipe:")
        .then(|| (pipe.to_string(), mode.to_string()))
}

/// Every (pid, mode) of a process other than `except` that holds `pipe` open.
fn holders(pipe: &str, except: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (pid, dir) in crate::plugin_under_test::proc_entries() {
        if pid == except {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.display().to_string() == pipe) {
                let info = std::fs::read_to_string(dir.join("fdinfo").join(fd.file_name()))
                    .unwrap_or_default();
                let flags = info
                    .lines()
                    .find(|l| l.starts_with("flags:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|f| u32::from_str_radix(f, 8).ok())
                    .unwrap_or(0);
                found.push((pid, if flags & 3 == 1 { "w" } else { "r" }.to_string()));
            }
        }
    }
    found
}

fn descriptors(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour::default()]);
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, "TRANS-1", "the plugin launched")?;
    let numbers: Vec<i64> = l.fds.iter().map(|(n, _)| *n).collect();
    let extra: Vec<String> = l
        .fds
        .iter()
        .filter(|(n, _)| *n > 4)
        .map(|(n, t)| format!("{n} ({t})"))
        .collect();
    if !extra.is_empty() {
        let passed_on = l
            .fds
            .iter()
            .any(|(_, t)| t.contains(crate::host_under_test::INHERITED_MARKER));
        return Err(h.fail(
            "TRANS-4",
            "no descriptor other than 0 to 4 inherited by the plugin",
            &format!(
                "also {}{}",
                extra.join(", "),
                if passed_on {
                    format!(
                        " (the driver was started with descriptor {} open on {}, without \
                         close-on-exec: the host passed it on)",
                        crate::host_under_test::INHERITED_FD,
                        crate::host_under_test::INHERITED_MARKER
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let (p3, m3) = pipe_of(&l, 3).ok_or_else(|| {
        h.fail(
            "TRANS-1",
            "descriptor 3: the read end of a pipe",
            &format!("descriptors {numbers:?}: {:?}", l.fds),
        )
    })?;
    let (p4, m4) = pipe_of(&l, 4).ok_or_else(|| {
        h.fail(
            "TRANS-1",
            "descriptor 4: the write end of a pipe",
            &format!("descriptors {:?}", l.fds),
        )
    })?;
    if m3 != "r" || m4 != "w" || p3 == p4 {
        return Err(h.fail(
            "TRANS-1",
            "descriptor 3 the read end of one pipe, descriptor 4 the write end of another",
            &format!("3: {p3} {m3}, 4: {p4} {m4}"),
        ));
    }
    // TRANS-12: nobody but the plugin holds the plugin's ends.
    let bad: Vec<String> = holders(&p3, l.pid)
        .into_iter()
        .filter(|(_, mode)| mode == "r")
        .map(|(pid, _)| format!("process {pid} holds the read end of the host-to-plugin pipe"))
        .chain(
            holders(&p4, l.pid)
                .into_iter()
                .filter(|(_, mode)| mode == "w")
                .map(|(pid, _)| {
                    format!("process {pid} holds the write end of the plugin-to-host pipe")
                }),
        )
        .collect();
    if !bad.is_empty() {
        return Err(h.fail(
            "TRANS-12",
            "the host has closed its copies of the plugin's pipe ends",
            &bad.join("; "),
        ));
    }
    Ok(())
}

fn own_process_group(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, "TRANS-13", "the plugin launched")?;
    if l.pgid == i64::from(l.pid) {
        return Ok(());
    }
    let driver_group =
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(h.driver_pid() as i32)))
            .map(|g| g.as_raw().to_string())
            .unwrap_or_else(|_| "unknown".into());
    Err(h.fail(
        "TRANS-13",
        &format!(
            "the plugin (process {}) as the leader of a process group of its own",
            l.pid
        ),
        &format!(
            "it is in process group {} (the driver's is {driver_group})",
            l.pgid
        ),
    ))
}

/// The signals of a mask as names (bit N-1 for signal N), e.g. "SIGPIPE, SIGCHLD".
fn signal_names(mask: u64) -> String {
    (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(|n| {
            nix::sys::signal::Signal::try_from(n)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {n}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn arguments_and_signals(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, "TRANS-14", "the plugin launched")?;
    if !l.args.is_empty() {
        return Err(h.fail(
            "TRANS-14",
            "no command-line argument after the program name",
            &format!("the plugin was started with the arguments {:?}", l.args),
        ));
    }
    // SIGKILL and SIGSTOP can be neither blocked nor ignored; the kernel shows them clear.
    if let Some(blocked) = l.signals_blocked.filter(|m| *m != 0) {
        return Err(h.fail(
            "TRANS-15",
            "an empty signal mask",
            &format!(
                "the plugin started with {} blocked (SigBlk {blocked:016x})",
                signal_names(blocked)
            ),
        ));
    }
    // Signals 32 to 34, below SIGRTMIN, are the C library's own (TRANS-16): glibc's
    // posix_spawn leaves 32 and 33 ignored in every child.
    let reserved: u64 = 0b111 << 31;
    if let Some(ignored) = l.signals_ignored.map(|m| m & !reserved).filter(|m| *m != 0) {
        // A recommendation: reported as a warning.
        return Err(h.fail(
            "TRANS-16",
            "every signal at its default action",
            &format!(
                "the plugin started with {} ignored (SigIgn {ignored:016x})",
                signal_names(ignored)
            ),
        ));
    }
    if l.signals_blocked.is_none() || l.signals_ignored.is_none() {
        return Err(Outcome::Skipped(
            "the plugin's signal state is unknown (no /proc/PID/status)".into(),
        ));
    }
    Ok(())
}

fn stdin_null(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, "TRANS-6", "the plugin launched")?;
    match l.fds.iter().find(|(n, _)| *n == 0) {
        Some((_, target)) if target.starts_with("/dev/null") => Ok(()),
        other => Err(h.fail(
            "TRANS-6",
            "standard input /dev/null",
            &format!("{:?}", other.map(|(_, t)| t)),
        )),
    }
}

fn stdout_not_protocol(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // A frame on stream 0 announcing hooks stream 4, on standard output; the real announcement
    // of stream 2 follows on descriptor 4.
    h.script(vec![Behaviour {
        stdout_text: Some("\u{0}\u{6}\u{0}\u{8}plugin log line\n".into()),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, "TRANS-3")
}

fn start_timeout(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_announce: true,
        ..Behaviour::default()
    }]);
    // The host's own start timeout when its driver does not take the one asked for (DRV-4).
    let timeout = h.start_timeout(SHORT_START);
    let began = Instant::now();
    let r = h.start("p", SHORT_START);
    let took = began.elapsed();
    must_fail(h, r, "HS-4", "a failed start: the plugin never announces")?;
    let margin = h.scaled(Duration::from_secs(1));
    if took > timeout + margin {
        return Err(h.fail(
            "HS-4",
            &format!(
                "the start failing within its timeout of {timeout:?}{} (and a margin of \
                 {margin:?})",
                if h.honours("start_timeout_ms") {
                    ", which the driver passes on to the host"
                } else {
                    ", the host's own"
                }
            ),
            &format!("it failed after {took:?}"),
        ));
    }
    let l = launch(h, 0, Duration::ZERO, "HS-4", "the plugin launched")?;
    reaped(l.pid, Duration::from_secs(2)).map_err(|e| {
        h.fail(
            "LIFE-4",
            "the plugin killed and reaped before the start is reported failed",
            &e,
        )
    })?;
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let n = h.launches().len();
    if n > 1 {
        return Err(h.fail(
            "LIFE-5",
            "no relaunch after a failed start",
            &format!("{n} launches"),
        ));
    }
    Ok(())
}

/// A start of a plugin that behaves as `b` fails (`requirement`: `what` it is), as soon as the
/// plugin gives the reason and not at the start timeout; then the launch must be gone: killed
/// if it was still running, and reaped (LIFE-4), a moment given for `/proc` to show it.
fn fails_at_once_and_is_reaped(
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
            "LIFE-4",
            "the plugin killed (SIGKILL) if it still runs, and reaped, before the start is \
             reported failed",
            &format!("{e}, after the start failed"),
        )
    })
}

/// Table 4-2, H3: frames on data streams before the announcement are discarded (STREAM-5),
/// not a handshake error; the announcement that follows starts the plugin.
fn data_before_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let mut early = frame(2, b"early");
    early.extend(frame(5, b"x"));
    early.extend(frame(4, b""));
    h.script(vec![Behaviour {
        before_announce_hex: Some(to_hex(&early)),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must(
        h,
        r,
        "STREAM-5",
        &format!(
            "a successful start: frames for data streams before the announcement ({}) are \
             discarded, not a handshake error",
            to_hex(&early)
        ),
    )?;
    activate_ok(h, "HS-7")
}

/// Table 4-1, E12: a malformed frame (`01 00`, a negative stream id) before the announcement
/// is a connection error (FRAME-14): the start fails at once, and the plugin is killed and
/// reaped (LIFE-4).
fn malformed_frame_first(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let b = Behaviour {
        before_announce_hex: Some("0100".into()),
        ignore_eof: true,
        ..Behaviour::default()
    };
    let what = "the plugin's first bytes are 01 00, a frame with stream id -1 (a connection \
                error, FRAME-14)";
    fails_at_once_and_is_reaped(h, b, "FRAME-5", what)
}

fn late_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // 500 ms, or a sixth of a host's own shorter start timeout (DRV-4).
    let delay = (h.start_timeout(START) / 6).min(Duration::from_millis(500));
    h.script(vec![Behaviour {
        announce_delay_ms: delay.as_millis() as u64,
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must(
        h,
        r,
        "HS-4",
        &format!(
            "a successful start: the plugin announces after {delay:?}, within the start timeout \
             of {:?}",
            h.start_timeout(START)
        ),
    )?;
    Ok(())
}

fn eof_before_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        exit_before_announce: Some(0),
        ..Behaviour::default()
    }]);
    let began = Instant::now();
    let r = h.start("p", START);
    let took = began.elapsed();
    must_fail(
        h,
        r,
        "HS-6",
        "a failed start: the plugin exits without announcing",
    )?;
    if took >= h.start_timeout(START) {
        return Err(h.fail(
            "HS-6",
            "the start failing as soon as the plugin's output ends, before the start timeout",
            &format!("it failed after {took:?}, the start timeout"),
        ));
    }
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let n = h.launches().len();
    if n > 1 {
        return Err(h.fail(
            "LIFE-5",
            "no relaunch after a failed start",
            &format!("{n} launches"),
        ));
    }
    Ok(())
}

/// The time a case watches for a relaunch that must not come: more than the seed's 1 s sleep
/// before each relaunch, and a launch.
const NO_RELAUNCH_WATCH: Duration = Duration::from_millis(2500);

fn no_relaunch_after_bad_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        announcement_hex: Some("0104".into()),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must_fail(
        h,
        r,
        "LIFE-5",
        "a failed start: the announcement has control byte 01 (Table 4-1, E1)",
    )?;
    let watch = h.scaled(NO_RELAUNCH_WATCH);
    if h.wait(NO_RELAUNCH_WATCH, |w| w.launches.len() > 1) {
        let l = h.launches();
        let after = l[1].hello_at.saturating_duration_since(l[0].hello_at);
        return Err(h.fail(
            "LIFE-5",
            "no launch after a failed start until the user starts the plugin again",
            &format!(
                "{} launches within {watch:?}: the second {after:?} after the first",
                l.len()
            ),
        ));
    }
    Ok(())
}

fn failed_plugin_is_killed(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let b = Behaviour {
        announcement_hex: Some("0104".into()),
        ignore_eof: true,
        ..Behaviour::default()
    };
    let what = "the announcement has control byte 01 (Table 4-1, E1), and the plugin ignores the \
                end of its connection";
    fails_at_once_and_is_reaped(h, b, "LIFE-4", what)
}

fn stop_after_failed_start(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        exit_before_announce: Some(1),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must_fail(h, r, "HS-6", "a failed start")?;
    let r = h.call("stop", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, "LIFE-20", "a successful stop after a failed start")?;
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let n = h.launches().len();
    if n > 1 {
        return Err(h.fail(
            "LIFE-5",
            "no relaunch after a failed start and a stop",
            &format!("{n} launches"),
        ));
    }
    Ok(())
}

fn crashing(exit: Option<i32>, when: CrashWhen) -> Behaviour {
    Behaviour {
        crash: Some(Crash { when, exit }),
        ..Behaviour::default()
    }
}

/// Launch 0 activated and crashed (`exit`, or SIGKILL), launch 1 up: checks the delay, the
/// reaping of launch 0 and the re-activation of launch 1 with the same configuration.
/// The relaunch after a crash (LIFE-6), and those of the further checks named in `checks`
/// that the case cites: the delay (LIFE-8), the reaping (LIFE-19), the re-activation with the
/// same configuration (LIFE-11) and the events (DRV-10).
fn crash_and_restart(
    h: &mut HostUnderTest,
    exit: Option<i32>,
    checks: &[&str],
) -> Result<(), Outcome> {
    h.script(vec![
        crashing(exit, CrashWhen::AfterActivate(200)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let next = launch(
        h,
        1,
        RELAUNCH,
        "LIFE-6",
        "a relaunch of the plugin after it crashed",
    )?;
    // Everything the crashed agent reported has arrived once its socket has closed.
    h.wait_ended(0, NOTICE);
    let first = h.launches()[0].clone();
    let delay = first.delay_to(&next);
    if checks.contains(&"LIFE-8") && delay < RESTART_DELAY_MIN {
        return Err(h.fail(
            "LIFE-8",
            "at least RESTART_DELAY_MIN (1 s) between the crash and the relaunch",
            &format!(
                "{delay:?} from the crash to the start of the relaunched plugin (the machine's \
                 monotonic clock, as the two plugin processes read it)"
            ),
        ));
    }
    if checks.contains(&"LIFE-19") {
        reaped(first.pid, Duration::from_secs(2))
            .map_err(|e| h.fail("LIFE-19", "the crashed plugin reaped", &e))?;
    }
    // LIFE-11: activated again, with the same configuration.
    if checks.contains(&"LIFE-11") {
        reactivated_with(h, 1, CONFIG)?;
    }
    // DRV-10: what a driver that reports events said.
    if checks.contains(&"DRV-10")
        && h.reports_events()
        && !h.wait(REPLY_TIMEOUT, |w| {
            !w.events_named("crashed").is_empty() && !w.events_named("restarted").is_empty()
        })
    {
        return Err(h.fail(
            "DRV-10",
            "crashed and restarted events (the driver's hello says it reports events)",
            &format!(
                "{:?}",
                h.world()
                    .events
                    .iter()
                    .map(|e| e.1.clone())
                    .collect::<Vec<_>>()
            ),
        ));
    }
    Ok(())
}

/// Launch `index` was activated again after a crash (OnActivate, then its configuration),
/// with the configuration `expected`, byte for byte (LIFE-11).
fn reactivated_with(h: &HostUnderTest, index: usize, expected: &str) -> Result<(), Outcome> {
    if !h.wait(REPLY_TIMEOUT, |w| {
        w.launches[index].event("config").is_some()
    }) {
        return Err(h.fail(
            "LIFE-11",
            "the relaunched plugin activated again (OnActivate, then its configuration)",
            &format!("it received {:?}", h.launches()[index].requests()),
        ));
    }
    let got = h.launches()[index]
        .event("config")
        .cloned()
        .unwrap_or_default();
    check_config(
        h,
        &got,
        expected,
        "LIFE-11",
        "the re-activation after the crash, with the configuration of the last activation",
    )
}

/// LIFE-11 with two activations before the crash: the relaunched plugin gets the
/// configuration of the second (the last successful one), not the first.
fn reactivates_with_last_configuration(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour::default(), Behaviour::default()]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    activate_with(h, CONFIG_2, "DRV-7")?;
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    h.order(0, &Order::Exit { code: 1 })?;
    launch(
        h,
        1,
        RELAUNCH,
        "LIFE-6",
        "a relaunch of the plugin after it crashed",
    )?;
    reactivated_with(h, 1, CONFIG_2)
}

/// LIFE-7 with a plugin that outlives its connection: it closes its pipes 200 ms after its
/// activation and exits 2.5 s later (more than RESTART_DELAY_MIN). The host has to wait for it,
/// or kill it after its grace period, before the next launch.
fn one_process_at_a_time(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        Behaviour {
            linger_ms: 2500,
            ..crashing(Some(1), CrashWhen::AfterActivate(200))
        },
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let next = launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        "LIFE-6",
        "a relaunch after the plugin's connection ended",
    )?;
    if let Some((index, pid)) = next.earlier_alive.first() {
        return Err(h.fail(
            "LIFE-7",
            "no new plugin process while the crashed one still runs",
            &format!(
                "launch {} (pid {}) started while launch {index} (pid {pid}), whose connection \
                 had ended, was still running",
                next.index, next.pid
            ),
        ));
    }
    Ok(())
}

fn calls_after_relaunch(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    launch(
        h,
        1,
        RELAUNCH,
        "LIFE-6",
        "a relaunch of the plugin after it crashed",
    )?;
    // The host may still be re-activating; calls go through once it is Running.
    if !h.wait(REPLY_TIMEOUT, |w| w.launches[1].event("config").is_some()) {
        return Err(h.fail(
            "LIFE-11",
            "the relaunched plugin activated again",
            "no OnActivate",
        ));
    }
    let deadline = Instant::now() + h.scaled(REPLY_TIMEOUT);
    loop {
        match h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT)? {
            Ok(_) => break,
            Err(e) if Instant::now() >= deadline => {
                return Err(h.fail(
                    "LIFE-11",
                    "a successful OnDeactivate through the supervisor once the relaunched plugin is running",
                    &e,
                ))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    if !h.wait_request(1, "LocalHooks.OnDeactivate", REPLY_TIMEOUT) {
        return Err(h.fail(
            "DRV-7",
            "the OnDeactivate at the relaunched plugin",
            "not received",
        ));
    }
    Ok(())
}

fn backoff_grows(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // Every launch crashes 300 ms after its announcement.
    h.script(vec![crashing(Some(1), CrashWhen::AfterAnnounce(300))]);
    start_ok(h)?;
    launch(
        h,
        3,
        Duration::from_secs(25),
        "LIFE-12",
        "three relaunches of a plugin that keeps crashing",
    )?;
    for i in 0..3 {
        h.wait_ended(i, NOTICE);
    }
    let l = h.launches();
    let delays: Vec<Duration> = (1..=3).map(|i| l[i - 1].delay_to(&l[i])).collect();
    if delays.iter().any(|d| *d < RESTART_DELAY_MIN) {
        return Err(h.fail(
            "LIFE-8",
            "every relaunch at least 1 s after the crash",
            &format!("{delays:?}"),
        ));
    }
    let grows =
        delays[1] >= Duration::from_millis(1800) && delays[2] >= Duration::from_millis(3600);
    if !grows {
        return Err(h.fail(
            "LIFE-9",
            "delays of about 1 s, 2 s and 4 s after the first, second and third crash in a row",
            &format!("{delays:?}"),
        ));
    }
    Ok(())
}

/// The longest restart delay the backoff cap case asks for (`restart_delay_max_ms`).
const ASKED_RESTART_DELAY_MAX: Duration = Duration::from_secs(2);
/// The stable period the backoff reset case asks for (`stable_period_ms`).
const ASKED_STABLE_PERIOD: Duration = Duration::from_secs(2);
/// What a measured restart delay may exceed the host's own by: it runs from the end of the
/// crashed agent to the hello of the next, so it includes the host noticing the crash and
/// launching the next process.
const DELAY_MARGIN: Duration = Duration::from_millis(1500);

/// A backoff setting as a case uses it: the value the host uses, or the reason the case is
/// skipped (the setting is not honoured and the run does not allow long cases).
fn backoff_setting(
    h: &HostUnderTest,
    name: &str,
    asked: Duration,
    default: Duration,
    takes: &str,
) -> Result<Duration, Outcome> {
    let value = h.setting(name, asked, default);
    if !h.honours(name) && !h.long_allowed() {
        return Err(Outcome::Skipped(format!(
            "a long case: the driver does not honour {name}, and at the host's own value of \
             {value:?} the case takes {takes}; run it with --long"
        )));
    }
    Ok(value)
}

/// Waits for launch `index`, a relaunch after the failure that ended launch `index - 1`, at
/// most `bound` after that end; the delay between them, or a failure of `requirement`.
fn relaunch_delay(
    h: &HostUnderTest,
    index: usize,
    bound: Duration,
    requirement: &'static str,
    expected: &str,
    so_far: &[Duration],
) -> Result<Duration, Outcome> {
    // The agent crashes by itself; its end does not depend on the host.
    if !h.wait_ended(index - 1, NOTICE) {
        return Err(Outcome::error(format!(
            "launch {} of the agent did not end after its crash",
            index - 1
        )));
    }
    let ended = h.launches()[index - 1]
        .ended_at
        .expect("launch ended, as waited for");
    let deadline = (ended + bound).min(h.deadline(bound));
    if !h.wait_until(deadline, |w| w.launches.len() > index) {
        return Err(h.fail(
            requirement,
            expected,
            &format!(
                "no relaunch within {bound:?} of failure {index} (the delays before it: {so_far:?})"
            ),
        ));
    }
    Ok(h.launches()[index]
        .hello_at
        .saturating_duration_since(ended))
}

/// LIFE-9: the delays stop growing at the longest restart delay. Every launch crashes 200 ms
/// after its announcement; the delays after the failures in a row, RESTART_DELAY_MIN doubled,
/// must each stay within the longest delay (and a margin), up to two failures beyond the point
/// where doubling alone would exceed it.
fn backoff_capped(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let name = "restart_delay_max_ms";
    let max = backoff_setting(
        h,
        name,
        ASKED_RESTART_DELAY_MAX,
        RESTART_DELAY_MAX,
        "about 100 s",
    )?;
    h.script(vec![crashing(Some(1), CrashWhen::AfterAnnounce(200))]);
    let mut args = h.start_args("p", START);
    args[name] = json!(max.as_millis() as u64);
    let effective = h.start_timeout(START);
    let r = h.call_for("start", args, effective + REPLY_TIMEOUT, "HS-4");
    must(h, r, "DRV-5", "a successful start")?;
    let margin = h.scaled(DELAY_MARGIN);
    // Failure n is followed by the delay min(2^(n-1) s, max): the first failure whose uncapped
    // delay would exceed the bound, and one more, show the cap.
    let mut last = 1;
    while Duration::from_secs(1 << (last - 1)) <= max + margin {
        last += 1;
    }
    last += 1;
    let mut delays = Vec::new();
    for n in 1..=last {
        let expected = Duration::from_secs(1 << (n - 1).min(30)).min(max);
        let d = relaunch_delay(
            h,
            n,
            expected + margin,
            "LIFE-9",
            &format!(
                "the relaunch after failure {n} in a row within {expected:?} (RESTART_DELAY_MIN \
                 doubled, at most the longest restart delay of {max:?}) and a margin of \
                 {margin:?}"
            ),
            &delays,
        )?;
        delays.push(d);
    }
    if !h.honours(name) {
        return Err(h.fail(
            "DRV-6",
            "a driver that passes restart_delay_max_ms on to its host (its hello lists it in \
             honours)",
            &format!("it does not: the backoff was checked at the host's own {max:?}, {delays:?}"),
        ));
    }
    Ok(())
}

/// LIFE-10: the failures in a row go back to zero after the stable period. Launches 0 and 1
/// crash 200 ms after their announcements (delays of 1 s, then 2 s); launch 2 runs for the
/// stable period and a margin before it crashes: launch 3 must follow within 1 s and a margin
/// (a host that kept counting waits 4 s).
fn backoff_resets(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let name = "stable_period_ms";
    let stable = backoff_setting(h, name, ASKED_STABLE_PERIOD, STABLE_PERIOD, "about 70 s")?;
    let margin = h.scaled(DELAY_MARGIN);
    let runs = stable + margin;
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        crashing(Some(1), CrashWhen::AfterAnnounce(runs.as_millis() as u64)),
        Behaviour::default(),
    ]);
    let mut args = h.start_args("p", START);
    args[name] = json!(stable.as_millis() as u64);
    let effective = h.start_timeout(START);
    let r = h.call_for("start", args, effective + REPLY_TIMEOUT, "HS-4");
    must(h, r, "DRV-5", "a successful start")?;
    let mut delays = Vec::new();
    for n in 1..=2 {
        let expected = Duration::from_secs(1 << (n - 1));
        let d = relaunch_delay(
            h,
            n,
            expected + margin,
            "LIFE-9",
            &format!(
                "the relaunch after failure {n} in a row within {expected:?} (RESTART_DELAY_MIN \
                 doubled) and a margin of {margin:?}"
            ),
            &delays,
        )?;
        delays.push(d);
    }
    // Launch 2 runs for `runs`, then crashes by itself.
    if !h.wait_ended(2, runs + NOTICE) {
        return Err(Outcome::error(format!(
            "launch 2 of the agent still runs {:?} after it started",
            runs + NOTICE
        )));
    }
    relaunch_delay(
        h,
        3,
        Duration::from_secs(1) + margin,
        "LIFE-10",
        &format!(
            "after a plugin ran for {runs:?} (more than the stable period of {stable:?}), its \
             crash counts as the first in a row: the relaunch within 1 s and a margin of \
             {margin:?}"
        ),
        &delays,
    )?;
    if !h.honours(name) {
        return Err(h.fail(
            "DRV-6",
            "a driver that passes stable_period_ms on to its host (its hello lists it in honours)",
            &format!("it does not: the reset was checked at the host's own {stable:?}"),
        ));
    }
    Ok(())
}

fn failed_relaunch(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // Launch 0 crashes once running; launch 1 never announces; launch 2 is well.
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterAnnounce(200)),
        Behaviour {
            never_announce: true,
            ..Behaviour::default()
        },
        Behaviour::default(),
    ]);
    let r = h.start("p", SHORT_START);
    must(h, r, "DRV-5", "a successful start")?;
    let timeout = h.start_timeout(SHORT_START);
    let second = launch(h, 1, RELAUNCH, "LIFE-6", "a relaunch after the crash")?;
    let third = launch(
        h,
        2,
        Duration::from_secs(14) + timeout,
        "LIFE-12",
        "another relaunch after the relaunch that never announced timed out",
    )?;
    let waited = third.hello_at.saturating_duration_since(second.hello_at);
    if waited < timeout {
        return Err(h.fail(
            "HS-4",
            "the host waiting for the relaunched plugin's announcement for its start timeout",
            &format!("the next launch came {waited:?} after it"),
        ));
    }
    reaped(second.pid, Duration::from_secs(2)).map_err(|e| {
        h.fail(
            "LIFE-7",
            "the silent relaunch killed before the next launch",
            &e,
        )
    })
}

fn in_flight_call(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(3), CrashWhen::OnActivate),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    let began = Instant::now();
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        Duration::from_secs(10),
    );
    let took = began.elapsed();
    must_fail(
        h,
        r,
        "RPC-11",
        "the activation failing: the plugin died while OnActivate was in flight",
    )?;
    if took > h.scaled(NOTICE) {
        return Err(h.fail(
            "RPC-11",
            &format!(
                "the call failing promptly (within {:?}) once the plugin died",
                h.scaled(NOTICE)
            ),
            &format!("it failed after {took:?}"),
        ));
    }
    let next = launch(
        h,
        1,
        RELAUNCH,
        "LIFE-6",
        "a relaunch of the plugin that crashed",
    )?;
    let _ = next;
    h.wait_agent(1, "announced", REPLY_TIMEOUT);
    std::thread::sleep(h.scaled(Duration::from_millis(1500)));
    let requests = h.launches()[1].requests();
    if !requests.is_empty() {
        return Err(h.fail(
            "LIFE-15",
            "no hook call sent to the relaunched plugin: the failed OnActivate is not repeated, and \
             the plugin was not activated",
            &format!("it received {requests:?}"),
        ));
    }
    Ok(())
}

/// Activates a plugin that crashes 100 ms later and waits until the host has noticed and is
/// in its restart delay; `Ok(false)` when it relaunched already (the window is gone: the
/// restart cases check the delay).
fn crash_into_restart_delay(h: &mut HostUnderTest) -> Result<bool, Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour::default(),
    ]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    if !h.wait(NOTICE, |w| w.launches[0].ended_at.is_some()) {
        return Err(Outcome::error(
            "the harness's agent did not crash 100 ms after its activation, as it was told to",
        ));
    }
    // The host needs a moment to notice; then it waits at least 1 s to relaunch.
    std::thread::sleep(Duration::from_millis(300));
    Ok(h.launches().len() == 1)
}

fn while_down(h: &mut HostUnderTest) -> Result<(), Outcome> {
    if !crash_into_restart_delay(h)? {
        return Ok(());
    }
    let began = Instant::now();
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let took = began.elapsed();
    let relaunched_meanwhile = h.launches().len() > 1;
    match r? {
        Err(_) if took <= Duration::from_millis(500) => Ok(()),
        Err(e) => Err(h.fail(
            "LIFE-14",
            "a call while the plugin is down failing at once",
            &format!("it failed after {took:?}: {e}"),
        )),
        Ok(_) if relaunched_meanwhile => Ok(()),
        Ok(v) => Err(h.fail(
            "LIFE-14",
            "a call while the plugin is down failing at once",
            &format!("it succeeded: {v}"),
        )),
    }
}

/// RPC-18 with GOB-16: the activation's configuration is a JSON string of 5 MiB, whose reply
/// cannot be one gob message of at most GOB_MIN_MAX_MESSAGE (4 MiB); the host must answer the
/// plugin's `LoadPluginConfiguration` with an error response, and its API stream goes on.
fn oversized_configuration(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    // A JSON string of 5 MiB, as a JSON text.
    let big = format!("\"{}\"", "x".repeat(5 << 20));
    // The activation's outcome does not matter here: the configuration's answer does.
    let _ = h.call(
        "activate",
        json!({"plugin": "p", "config": big}),
        Duration::from_secs(30),
    );
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let Some(got) = h.launches()[0].event("config").cloned() else {
        return Err(h.fail(
            "RPC-18",
            "an answer to the plugin's LoadPluginConfiguration during OnActivate",
            "none",
        ));
    };
    let error = got["error"].as_str().unwrap_or("");
    if got["broken"] == true {
        return Err(h.fail(
            "RPC-18",
            "an error response (the configuration does not fit one gob message, GOB-16)",
            &format!("no response: the API stream broke: {error}"),
        ));
    }
    if error.is_empty() {
        let len = got["hex"].as_str().map_or(0, |x| x.len() / 2);
        return Err(h.fail(
            "RPC-18",
            "an error response (the configuration does not fit one gob message, GOB-16)",
            &format!(
                "a reply holding {len} bytes of a {} byte configuration",
                (5 << 20) + 2
            ),
        ));
    }
    let r = h.call("stop", json!({"plugin": "p"}), Duration::from_secs(20));
    must(h, r, "DRV-8", "a successful stop").map(|_| ())
}

fn failed_activation(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        fail_activate: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        REPLY_TIMEOUT,
    );
    let e = must_fail(
        h,
        r,
        "RPC-16",
        "the activation failing with the plugin's error",
    )?;
    if !e.contains("the agent fails this activation on purpose") {
        return Err(h.fail(
            "RPC-16",
            "the failure's reason carrying the plugin's error text",
            &format!("{e:?}"),
        ));
    }
    std::thread::sleep(h.scaled(Duration::from_millis(1200)));
    if h.launches().len() > 1 || h.launches()[0].ended_at.is_some() {
        return Err(h.fail(
            "RPC-16",
            "a failed activation is not a crash: the plugin keeps running, nothing is relaunched",
            &format!(
                "{} launch(es); the first ended: {}",
                h.launches().len(),
                h.launches()[0].ended_at.is_some()
            ),
        ));
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let status = must(h, r, "DRV-9", "the supervisor's status")?;
    if status["state"] != "running" {
        return Err(h.fail(
            "RPC-16",
            "the supervisor still running",
            &status.to_string(),
        ));
    }
    Ok(())
}

fn api_closed_after_failed_activation(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        fail_activate: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        REPLY_TIMEOUT,
    );
    must_fail(h, r, "RPC-16", "the activation failing")?;
    h.wait_request(0, "LocalHooks.OnActivate", REPLY_TIMEOUT);
    let api = h.launches()[0]
        .requests()
        .first()
        .and_then(|r| r.1)
        .unwrap_or(1);
    let closed = h.wait(Duration::from_secs(1), |w| {
        w.launches[0]
            .events_named("closed")
            .any(|v| v["stream"] == api)
    });
    if !closed {
        return Err(h.fail(
            "RPC-17",
            &format!("a close frame on the failed activation's API stream {api}"),
            "none within 1 s",
        ));
    }
    Ok(())
}

fn stop_deactivates(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let r = h.call_for(
        "stop",
        json!({"plugin": "p"}),
        h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT,
        "LIFE-17",
    );
    let stopped = must(h, r, "DRV-8", "a successful stop")?;
    // The agent's reports travel on their own socket: they are complete once it has ended.
    h.wait_ended(0, REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let deactivated = l
        .events
        .iter()
        .position(|(_, v)| v["event"] == "request" && v["method"] == "LocalHooks.OnDeactivate");
    let eof = l.events.iter().position(|(_, v)| v["event"] == "eof");
    match (deactivated, eof) {
        (None, _) => {
            return Err(h.fail(
                "LIFE-16",
                "OnDeactivate before the end of the connection, when stopping an activated plugin",
                "no OnDeactivate",
            ))
        }
        (Some(_), None) => {
            return Err(h.fail(
                "LIFE-17",
                "the host closing the plugin's pipes (end of file at the plugin)",
                "no end of file",
            ))
        }
        (Some(d), Some(e)) if e < d => {
            return Err(h.fail(
                "LIFE-16",
                "OnDeactivate before the end of the connection",
                "after it",
            ))
        }
        _ => {}
    }
    stopped_cleanly(h, 0, &stopped)?;
    reaped(l.pid, Duration::from_secs(2)).map_err(|e| h.fail("LIFE-19", "the plugin reaped", &e))
}

fn kills_after_grace(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        ignore_eof: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    let grace = h.stop_grace();
    let r = h.call(
        "stop",
        json!({"plugin": "p"}),
        grace + Duration::from_secs(15),
    );
    let stopped = must(h, r, "DRV-8", "a successful stop")?;
    h.wait_ended(0, REPLY_TIMEOUT);
    let l = h.launches()[0].clone();
    let Some(eof_at) = l.event_at("eof") else {
        return Err(h.fail(
            "LIFE-17",
            "the host closing the plugin's pipes first",
            "no end of file at the plugin",
        ));
    };
    let ended = l.ended_at.unwrap_or_else(Instant::now);
    let lived = ended.saturating_duration_since(eof_at);
    if lived + Duration::from_millis(150) < grace {
        return Err(h.fail(
            "LIFE-17",
            &format!("no signal before the stop grace period ({grace:?}) after the end of the connection"),
            &format!("the plugin died {lived:?} after its end of file"),
        ));
    }
    reaped(l.pid, Duration::from_secs(2))
        .map_err(|e| h.fail("LIFE-18", "the plugin killed and reaped", &e))?;
    if stopped["killed"] != true {
        return Err(h.fail(
            "DRV-8",
            "a stop reply saying the host killed the plugin",
            &stopped.to_string(),
        ));
    }
    // DRV-6, a recommendation: the case could be timed by the harness's grace period.
    if !h.honours("stop_grace_ms") {
        return Err(h.fail(
            "DRV-6",
            "a driver that passes stop_grace_ms on to its host (its hello lists it in honours)",
            &format!("it does not: the case waited for the host's own grace period of {grace:?}"),
        ));
    }
    Ok(())
}

fn deactivation_timeout(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_answer_deactivate: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let limit = h.deactivate_timeout() + h.stop_grace() + Duration::from_secs(3);
    let began = Instant::now();
    let first = h.send("stop", json!({"plugin": "p"}))?;
    // Table 6-1, L21: a second stop during the first waits for it and succeeds too.
    h.wait_request(0, "LocalHooks.OnDeactivate", REPLY_TIMEOUT);
    let second = h.send("stop", json!({"plugin": "p"}))?;
    let r = h.reply_for(first, limit + Duration::from_secs(5), "LIFE-16");
    let took = began.elapsed();
    must(
        h,
        r,
        "LIFE-16",
        "a stop that completes although OnDeactivate is never answered",
    )?;
    let r = h.reply_for(second, REPLY_TIMEOUT, "LIFE-20");
    must(
        h,
        r,
        "LIFE-20",
        "a second stop, sent while the first waits for OnDeactivate, succeeding once the plugin \
         is stopped",
    )?;
    if took > limit {
        return Err(h.fail(
            "LIFE-16",
            &format!("the stop within the deactivation timeout, the grace period and a margin ({limit:?})"),
            &format!("{took:?}"),
        ));
    }
    h.wait_ended(0, REPLY_TIMEOUT);
    if h.launches()[0].event("eof").is_none() {
        return Err(h.fail(
            "LIFE-17",
            "the connection ended after the deactivation timeout",
            "no end of file at the plugin",
        ));
    }
    Ok(())
}

fn stop_during_backoff(h: &mut HostUnderTest) -> Result<(), Outcome> {
    if !crash_into_restart_delay(h)? {
        return Ok(());
    }
    let began = Instant::now();
    let r = h.call("stop", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let took = began.elapsed();
    must(
        h,
        r,
        "LIFE-20",
        "a successful stop during the restart delay",
    )?;
    if took > Duration::from_millis(900) && h.launches().len() == 1 {
        return Err(h.fail(
            "LIFE-22",
            "the stop returning at once, cancelling the relaunch",
            &format!("it took {took:?}"),
        ));
    }
    std::thread::sleep(h.scaled(Duration::from_millis(2000)));
    let l = h.launches();
    if l.len() > 1 && l[1].ended_at.is_none() {
        return Err(h.fail(
            "LIFE-22",
            "no plugin process after the stop: the pending relaunch cancelled",
            &format!(
                "launch {} is running (pid {})",
                l.len() - 1,
                l[l.len() - 1].pid
            ),
        ));
    }
    Ok(())
}

/// Table 6-1, L17: a stop while the host waits for a relaunched plugin's announcement ends the
/// connection without deactivation (there is nothing to deactivate yet) and succeeds once the
/// process is gone, well before the relaunch's announcement was due.
fn stop_during_restart(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![
        crashing(Some(1), CrashWhen::AfterActivate(100)),
        Behaviour {
            announce_delay_ms: 8000,
            ..Behaviour::default()
        },
    ]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let next = launch(
        h,
        1,
        RELAUNCH,
        "LIFE-6",
        "a relaunch of the plugin after it crashed",
    )?;
    let limit = h.stop_grace() + REPLY_TIMEOUT;
    let began = Instant::now();
    let r = h.call_for("stop", json!({"plugin": "p"}), limit, "LIFE-20");
    let took = began.elapsed();
    must(
        h,
        r,
        "LIFE-20",
        "a successful stop while the relaunched plugin has not announced yet",
    )?;
    if took > limit {
        return Err(h.fail(
            "LIFE-20",
            &format!("the stop within the grace period and a margin ({limit:?})"),
            &format!("{took:?}"),
        ));
    }
    h.wait_ended(1, REPLY_TIMEOUT);
    let requests = h.launches()[1].requests();
    if !requests.is_empty() {
        return Err(h.fail(
            "LIFE-17",
            "a stop during the restart ends the connection without hook calls",
            &format!("the relaunched plugin received {requests:?}"),
        ));
    }
    reaped(next.pid, Duration::from_secs(2))
        .map_err(|e| h.fail("LIFE-20", "no plugin process after the stop", &e))
}

/// Table 6-1, L2: the launch itself fails (the bundle's executable does not exist): the start
/// fails with an error (DRV-5), and nothing launches the plugin later (LIFE-5).
fn launch_fails(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let bundle = h.dir().join("bundle-without-its-executable");
    std::fs::create_dir_all(&bundle).map_err(|e| Outcome::error(e.to_string()))?;
    std::fs::write(
        bundle.join("plugin.json"),
        json!({"id": "missing", "backend": {"executable": "not-there"}}).to_string(),
    )
    .map_err(|e| Outcome::error(e.to_string()))?;
    let args = json!({
        "plugin": "p",
        "bundle": bundle.display().to_string(),
        "start_timeout_ms": h.scaled(START).as_millis() as u64,
    });
    let r = h.call("start", args, START + REPLY_TIMEOUT);
    must_fail(
        h,
        r,
        "DRV-5",
        "a failed start: the bundle's executable does not exist",
    )?;
    // A host that relaunched would launch... nothing that exists either: a restart loop is
    // seen in the driver's events (started or crashed) or in its state.
    std::thread::sleep(h.scaled(NO_RELAUNCH_WATCH));
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    let state = match r? {
        Ok(v) => v["state"].as_str().unwrap_or("").to_string(),
        Err(_) => "stopped".to_string(),
    };
    let loops = {
        let w = h.world();
        w.events_named("crashed").len() + w.events_named("restarted").len()
    };
    if !matches!(state.as_str(), "stopped" | "failed") || loops > 0 {
        return Err(h.fail(
            "LIFE-5",
            "after a launch that failed, nothing pending: the supervisor Stopped",
            &format!("its state is {state:?} with {loops} crash or restart event(s)"),
        ));
    }
    Ok(())
}

fn stop_during_start(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        never_announce: true,
        ..Behaviour::default()
    }]);
    let args = h.start_args("p", Duration::from_secs(10));
    let start = h.send("start", args)?;
    if launch(h, 0, REPLY_TIMEOUT, "DRV-5", "the plugin launched").is_err() {
        return Err(h.fail("DRV-5", "the start launching the plugin", "no launch"));
    }
    let began = Instant::now();
    let r = h.call_for("stop", json!({"plugin": "p"}), REPLY_TIMEOUT, "DRV-3");
    must(h, r, "LIFE-20", "a successful stop while the start waits")?;
    let r = h.reply_for(start, REPLY_TIMEOUT, "DRV-3");
    must_fail(h, r, "LIFE-23", "the start failing because of the stop")?;
    let took = began.elapsed();
    if took > Duration::from_secs(4) {
        return Err(h.fail(
            "DRV-3",
            "the stop carried out while the start was still waiting (10 s start timeout)",
            &format!("the stop and the start were answered after {took:?}"),
        ));
    }
    let pid = h.launches()[0].pid;
    reaped(pid, Duration::from_secs(2))
        .map_err(|e| h.fail("LIFE-20", "no plugin process after the stop", &e))
}

fn stop_twice(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    for i in 0..2 {
        // A stop that never ends is the host's (LIFE-20), not its driver's.
        let r = h.call_for(
            "stop",
            json!({"plugin": "p"}),
            h.deactivate_timeout() + h.stop_grace() + REPLY_TIMEOUT,
            "LIFE-20",
        );
        must(
            h,
            r,
            "LIFE-20",
            &format!("stop number {} succeeding", i + 1),
        )?;
    }
    let r = h.call("quit", json!({}), Duration::from_secs(20));
    must(h, r, "DRV-11", "quit answered")?;
    Ok(())
}

fn crash_by_order(h: &mut HostUnderTest, order: Order) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    h.order(0, &order)?;
    if agent_saw(h, 0, "eof", NOTICE).is_none() {
        return Err(h.fail(
            "LIFE-6",
            "the host ending the connection (end of file at the plugin) once it sees the plugin's \
             connection or hooks stream end",
            &format!("no end of file within {:?}", h.scaled(NOTICE)),
        ));
    }
    launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        "LIFE-6",
        "a relaunch: the end counts as a crash",
    )?;
    Ok(())
}

fn send(h: &mut HostUnderTest, index: usize, bytes: &[u8]) -> Result<(), Outcome> {
    h.order(index, &Order::Send { hex: to_hex(bytes) })
}

fn frame(stream: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = rpcplugin_codec::frame::encode_frame(
        rpcplugin_codec::StreamId::new(stream).expect("valid"),
        payload,
        &mut out,
    );
    out
}

fn stream_0_after_handshake(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let mut bytes = frame(0, &[0x00, 0x04]);
    bytes.extend(frame(0, b"more on stream zero"));
    send(h, 0, &bytes)?;
    activate_ok(h, "HS-8")
}

fn unknown_streams(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let mut bytes = frame(4, b"junk");
    bytes.extend(frame(101, b"junk"));
    bytes.extend(frame(6, b""));
    send(h, 0, &bytes)?;
    activate_ok(h, "STREAM-5")
}

fn max_size_frame(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    h.order(
        0,
        &Order::Flood {
            stream: 4,
            bytes: 1 << 20,
        },
    )?;
    if !h.wait_agent(0, "flooded", NOTICE) {
        return Err(h.fail(
            "FRAME-7",
            "the host reading a 1 MiB frame",
            "the plugin's write did not complete",
        ));
    }
    activate_ok(h, "FRAME-7")?;
    if h.launches()[0].event("eof").is_some() {
        return Err(h.fail(
            "FRAME-7",
            "the connection kept after a 1 MiB frame",
            "the host ended it",
        ));
    }
    Ok(())
}

fn flood(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let before = h.driver_rss_kib();
    h.order(
        0,
        &Order::Flood {
            stream: 4,
            bytes: 64 << 20,
        },
    )?;
    if !h.wait_agent(0, "flooded", Duration::from_secs(30)) {
        return Err(h.fail(
            "STREAM-14",
            "the host reading 64 MiB sent on a stream nobody reads",
            "the plugin's writes did not complete within 30 s",
        ));
    }
    activate_ok(h, "STREAM-14")?;
    let after = h.driver_rss_kib();
    if let (Some(b), Some(a)) = (before, after) {
        if a > b + 32 * 1024 {
            return Err(h.fail(
                "STREAM-15",
                "the driver's resident memory growing by less than 32 MiB while 64 MiB flow on an unread stream",
                &format!("{b} KiB before, {a} KiB after"),
            ));
        }
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, "DRV-12", "the driver answering after the flood")?;
    Ok(())
}

/// What a host that ends the whole connection after a gob error on API stream `api` did.
fn connection_ended_after_gob_length(api: i64) -> String {
    format!("the host ended the plugin's connection after the gob Length on the API stream {api}")
}

/// A gob message Length just above GOB_MAX_MESSAGE_CEILING (16 MiB + 1), which every receiver
/// rejects as soon as it has read it (GOB-15, GOB-19), as a gob uint.
pub(crate) const OVER_CEILING: [u8; 5] = [0xfc, 0x01, 0x00, 0x00, 0x01];

/// GOB-15 and GOB-19 on an open stream: after a gob Length of 16 MiB + 1 on the API stream,
/// above every receiver's limit, the host closes that stream (GOB-18) before any more data
/// comes; then it discards the 64 MiB that follow (STREAM-9), its memory bounded, and the
/// plugin keeps running (a gob error is not a crash).
fn gob_flood(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    h.wait_agent(0, "config", REPLY_TIMEOUT);
    let api = h.launches()[0]
        .requests()
        .first()
        .and_then(|r| r.1)
        .unwrap_or(1);
    send(h, 0, &frame(api, &OVER_CEILING))?;
    // The evidence first: the close of the stream, before anything more is sent on it (or the
    // end of the whole connection, which a gob error must not cause).
    let closed = h.wait(NOTICE, |w| {
        let l = &w.launches[0];
        l.events_named("closed").any(|v| v["stream"] == api)
            || l.event("eof").is_some()
            || l.ended_at.is_some()
    });
    if h.launches()[0].event("eof").is_some() || h.launches()[0].ended_at.is_some() {
        return Err(h.fail(
            "GOB-18",
            "a gob error ends its stream only: the connection goes on",
            &connection_ended_after_gob_length(api),
        ));
    }
    if !closed {
        return Err(h.fail(
            "GOB-19",
            &format!(
                "the host closing the API stream {api} after a gob message Length of 16 777 217, \
                 above GOB_MAX_MESSAGE_CEILING and so above every receiver's limit (GOB-15: a \
                 gob error as soon as the Length is read)"
            ),
            &format!(
                "no close frame on stream {api} within {:?}: the host waits for the body",
                h.scaled(NOTICE)
            ),
        ));
    }
    let before = h.driver_rss_kib();
    let flood = Order::Flood {
        stream: api,
        bytes: 64 << 20,
    };
    if let Err(gone) = h.order(0, &flood) {
        // The agent ends only with its connection (nothing told it to exit), which a gob error
        // must not end.
        if h.wait_ended(0, REPLY_TIMEOUT) {
            return Err(h.fail(
                "GOB-18",
                "a gob error ends its stream only: the connection goes on",
                &connection_ended_after_gob_length(api),
            ));
        }
        return Err(gone);
    }
    // The driver's memory while the flood goes on, sampled.
    let mut peak = before.unwrap_or(0);
    let deadline = Instant::now() + h.scaled(Duration::from_secs(40));
    while !h.wait_agent(0, "flooded", Duration::from_millis(20)) {
        peak = peak.max(h.driver_rss_kib().unwrap_or(0));
        if h.launches()[0].ended_at.is_some() || h.launches()[0].event("eof").is_some() {
            return Err(h.fail(
                "GOB-18",
                "a gob error ends its stream only: the connection goes on",
                &connection_ended_after_gob_length(api),
            ));
        }
        if Instant::now() >= deadline {
            return Err(h.fail(
                "DRV-12",
                "the host reading 64 MiB sent on the API stream it closed",
                "the plugin's writes did not complete within 40 s",
            ));
        }
    }
    peak = peak.max(h.driver_rss_kib().unwrap_or(0));
    if let Some(b) = before {
        if peak > b + 32 * 1024 {
            return Err(h.fail(
                "STREAM-9",
                &format!(
                    "the host discarding the 64 MiB sent on the API stream {api} after it closed \
                     it: its driver's resident memory growing by less than 32 MiB"
                ),
                &format!("{b} KiB before, {peak} KiB at the most during the flood"),
            ));
        }
    }
    if h.launches()[0].event("eof").is_some() || h.launches().len() > 1 {
        return Err(h.fail(
            "GOB-18",
            "a gob error ends its stream only: the connection goes on",
            "the host ended the plugin's connection",
        ));
    }
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        "GOB-18",
        "a successful deactivation after the API stream's gob error",
    )?;
    Ok(())
}

/// A successful activation and deactivation of a plugin that behaves as `b`.
fn with_behaviour_activated(
    h: &mut HostUnderTest,
    b: Behaviour,
    requirement: &'static str,
) -> Result<(), Outcome> {
    h.script(vec![b]);
    start_ok(h)?;
    activate_ok(h, requirement)?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, requirement, "a successful deactivation").map(|_| ())
}

/// RPC-8 and Table 5-9, R2 to R5, at the host's `LocalAPI` server: each request it cannot route
/// gets an error response, and the stream goes on (a configuration request after them is
/// answered).
fn unroutable_requests(h: &mut HostUnderTest) -> Result<(), Outcome> {
    use rpcplugin_codec::gob::{ids, TypeRegistry, Value};
    let mut client = super::plugin::CustomClient::new(TypeRegistry::new(), &[]);
    let wrong_argument = Some((ids::INT, Value::Int(7)));
    type Request<'a> = (&'a str, Option<(i64, Value)>, &'a str);
    let requests: [Request; 5] = [
        ("NoDot", None, "R2: no dot"),
        ("NoSuchService.Method", None, "R3: an unknown service"),
        ("LocalAPI.NoSuchMethod", None, "R4: an unknown method"),
        (
            "LocalAPI.LoadPluginConfiguration",
            wrong_argument,
            "R5: an int argument, not a struct",
        ),
        ("LocalAPI.LoadPluginConfiguration", None, "the right one"),
    ];
    let mut bytes = Vec::new();
    let mut seqs = Vec::new();
    for (method, args, _) in &requests {
        let (seq, body) = client.request(method, args.clone(), Vec::new())?;
        seqs.push(seq.to_string());
        bytes.extend(body);
    }
    h.script(vec![Behaviour {
        api_vector_hex: Some(to_hex(&bytes)),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    let expected = "an error response to each unroutable request on the API stream, then a \
                    successful one to LoadPluginConfiguration";
    h.wait(NOTICE, |w| {
        w.launches[0].events_named("api_response").count() >= requests.len()
    });
    let got: Vec<(String, String)> = h.launches()[0]
        .events_named("api_response")
        .map(|r| {
            (
                r["seq"].as_str().unwrap_or("").to_string(),
                r["error"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for ((method, _, what), seq) in requests.iter().zip(&seqs) {
        let Some((_, error)) = got.iter().find(|(s, _)| s == seq) else {
            return Err(h.fail(
                "RPC-8",
                expected,
                &format!("no response to {method:?} ({what}, Seq {seq})"),
            ));
        };
        let last = *what == "the right one";
        if !last && error.is_empty() {
            return Err(h.fail(
                "RPC-8",
                expected,
                &format!("a successful response to {method:?} ({what}, Seq {seq})"),
            ));
        }
        if last && !error.is_empty() {
            return Err(h.fail(
                "RPC-8",
                expected,
                &format!(
                    "an error response ({error:?}) to the configuration request after the \
                     unroutable ones: the stream did not go on"
                ),
            ));
        }
    }
    Ok(())
}

/// RPC-10 (Table 5-9, R9) at the host's hooks client: a successful reply of another type than
/// a hook's (a string) fails that call, the activation (RPC-16); the stream and the plugin go
/// on, so a deactivation after it succeeds.
fn reply_of_the_wrong_type(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour {
        wrong_reply_type: true,
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    let r = h.call(
        "activate",
        json!({"plugin": "p", "config": CONFIG}),
        REPLY_TIMEOUT,
    );
    must_fail(
        h,
        r,
        "RPC-10",
        "the activation failing: OnActivate's reply is a string, not a struct",
    )?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        "RPC-10",
        "a successful deactivation: a reply of the wrong type fails its call only",
    )?;
    if h.launches().len() > 1 || h.launches()[0].event("eof").is_some() {
        return Err(h.fail(
            "RPC-10",
            "the plugin kept after a reply of the wrong type",
            "the host ended its connection",
        ));
    }
    Ok(())
}

fn with_behaviour(h: &mut HostUnderTest, b: Behaviour) -> Result<(), Outcome> {
    h.script(vec![b]);
    start_ok(h)?;
    activate_ok(h, "FRAME-12")?;
    let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(h, r, "FRAME-12", "a successful deactivation")?;
    Ok(())
}

fn session(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    for _ in 0..2 {
        activate_ok(h, "DRV-7")?;
        let r = h.call("deactivate", json!({"plugin": "p"}), REPLY_TIMEOUT);
        must(h, r, "DRV-7", "a successful deactivation")?;
    }
    activate_ok(h, "DRV-7")?;
    let r = h.call("stop", json!({"plugin": "p"}), Duration::from_secs(20));
    must(h, r, "DRV-8", "a successful stop")?;
    // The agents' observations are the verdict (the runner reports them).
    Ok(())
}

fn bad_announcement(h: &mut HostUnderTest, row: usize) -> Result<(), Outcome> {
    let (_, hex, what, table_row, requirement) = BAD_ANNOUNCEMENTS[row];
    let b = Behaviour {
        announcement_hex: Some(hex.to_string()),
        ..Behaviour::default()
    };
    let what = format!("the announcement has {what} (Table 4-1, {table_row})");
    fails_at_once_and_is_reaped(h, b, requirement, &what)
}

fn garbage(h: &mut HostUnderTest, row: usize) -> Result<(), Outcome> {
    let (_, hex, requirement, what) = GARBAGE[row];
    let requirement: &'static str =
        crate::requirements::lookup(requirement).map_or("FRAME-14", |r| r.id.as_str());
    start_ok(h)?;
    activate_ok(h, "DRV-7")?;
    send(h, 0, &from_hex(hex).unwrap_or_default())?;
    if agent_saw(h, 0, "eof", NOTICE).is_none() {
        return Err(h.fail(
            requirement,
            &format!("after {what} ({hex}) from the plugin, the host ends the connection (end of file at the plugin)"),
            &format!("the connection is still open after {:?}", h.scaled(NOTICE)),
        ));
    }
    let r = h.call("status", json!({"plugin": "p"}), REPLY_TIMEOUT);
    must(
        h,
        r,
        "DRV-12",
        "the driver answering after the plugin's garbage",
    )?;
    launch(
        h,
        1,
        RELAUNCH + h.stop_grace(),
        "LIFE-6",
        "a relaunch: the connection error is a crash",
    )?;
    Ok(())
}

fn bad_bundles(h: &mut HostUnderTest, inside: bool) -> Result<(), Outcome> {
    let dir = h.dir().to_path_buf();
    let agent = h.bundle().join("agent");
    let manifests: Vec<(&str, Option<String>)> = if inside {
        vec![
            (
                "absolute",
                Some(
                    json!({"id": "x", "backend": {"executable": agent.display().to_string()}})
                        .to_string(),
                ),
            ),
            (
                "dotdot",
                Some(json!({"id": "x", "backend": {"executable": "../bundle/agent"}}).to_string()),
            ),
        ]
    } else {
        vec![
            ("no-manifest", None),
            ("not-an-object", Some("[1, 2, 3]".to_string())),
            ("no-backend", Some(json!({"id": "x"}).to_string())),
            (
                "empty-executable",
                Some(json!({"id": "x", "backend": {"executable": ""}}).to_string()),
            ),
        ]
    };
    let requirement = if inside { "LIFE-3" } else { "LIFE-2" };
    for (i, (name, manifest)) in manifests.iter().enumerate() {
        let bundle = dir.join(format!("bad-{name}"));
        let _ = std::fs::create_dir_all(&bundle);
        let _ = std::fs::copy(&agent, bundle.join("agent"));
        if let Some(m) = manifest {
            let _ = std::fs::write(bundle.join("plugin.json"), m);
        }
        let plugin = format!("bad{i}");
        let args = json!({
            "plugin": plugin,
            "bundle": bundle.display().to_string(),
            "start_timeout_ms": h.scaled(SHORT_START).as_millis() as u64,
        });
        let r = h.call("start", args, SHORT_START + REPLY_TIMEOUT);
        must_fail(
            h,
            r,
            requirement,
            &format!("the start refused for the bundle {name}"),
        )?;
    }
    std::thread::sleep(Duration::from_millis(300));
    let n = h.launches().len();
    if n > 0 {
        return Err(h.fail(
            requirement,
            "nothing launched from a refused bundle",
            &format!("{n} launch(es)"),
        ));
    }
    Ok(())
}
