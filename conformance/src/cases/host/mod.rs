//! Cases against a host, through its driver (spec 07 section 7.2): the harness's agent plays
//! the host's plugin (spec/harness.md section 6), one behaviour per launch, and reports what the host did.
//!
//! Besides what each case checks, every agent observes everything the host writes (the codec's
//! tracer: HS-3, STREAM-1, the framing and gob sender rules; and STREAM-2, STREAM-3, STREAM-6
//! from both directions); `host/wire/output-follows-sender-rules` cites what it enforces.
//!
//! One file per group of case ids (`host/GROUP/...`), each case declared (`case!`) beside the
//! function that runs it; [`CASES`] lists the hand-written ones in the order they run, which
//! interleaves the groups, and [`table_cases`] and [`vector_cases`] follow them:
//!
//! - `lifecycle`: a plugin's whole life, as it sees it (spec 06);
//! - `transport`: how the plugin is launched (spec 01);
//! - `start`: starts that succeed or fail (spec 04 section 4.4, spec 06 section 6.3);
//! - `handshake`: the plugin's first bytes, and the rows of Table 4-1 (spec 04);
//! - `restart`: relaunches and their backoff (spec 06 sections 6.6 and 6.7);
//! - `calls`: hook calls when the plugin goes down (spec 06 section 6.8);
//! - `rpc`: activation failures, the host's `LocalAPI` server, its hooks client (spec 05);
//! - `stop`: stops in every state (spec 06 section 6.9);
//! - `crash`: ends of a connection that are crashes (spec 06 section 6.6);
//! - `robustness`: input the host must survive with its plugin kept (spec 02 to 05);
//! - `framing`: frames the host receives, and the rows of Table 2-2 (spec 02);
//! - `wire`: the case that cites the sender rules checked in every case;
//! - `bundle`: bundles the host must refuse (spec 06 section 6.2);
//! - `rpc_vector`: the RPC vectors on the API stream ([`vector_cases`]);
//! - `helpers`: what they share: the driver-call helpers, waiting for the agent, the
//!   configuration.

use super::Case;

mod bundle;
mod calls;
mod crash;
mod framing;
mod handshake;
mod helpers;
mod lifecycle;
mod restart;
mod robustness;
mod rpc;
mod rpc_vector;
mod start;
mod stop;
mod transport;
mod wire;

pub(crate) use helpers::{must, reaped};
pub(crate) use robustness::OVER_CEILING;
pub use rpc_vector::vector_cases;

/// The hand-written host cases.
pub static CASES: &[Case] = &[
    lifecycle::START_ACTIVATE_DEACTIVATE_STOP,
    transport::DESCRIPTORS,
    transport::OWN_PROCESS_GROUP,
    transport::ARGUMENTS_AND_SIGNALS,
    transport::STDIN_IS_DEV_NULL,
    transport::STDOUT_IS_NOT_PROTOCOL,
    start::TIMEOUT,
    handshake::DATA_BEFORE_ANNOUNCEMENT,
    handshake::MALFORMED_FRAME_FIRST,
    start::LATE_ANNOUNCEMENT,
    start::EOF_BEFORE_ANNOUNCEMENT,
    start::NO_RELAUNCH_AFTER_BAD_ANNOUNCEMENT,
    start::FAILED_PLUGIN_IS_KILLED,
    start::LAUNCH_FAILS,
    start::STOP_AFTER_FAILED_START,
    restart::CRASH_AFTER_ACTIVATION,
    restart::SIGKILL_AFTER_ACTIVATION,
    restart::EXIT_0_IS_A_CRASH,
    restart::ONE_PROCESS_AT_A_TIME,
    restart::BACKOFF_GROWS,
    restart::BACKOFF_CAPPED,
    restart::BACKOFF_RESETS,
    restart::FAILED_RELAUNCH_IS_RETRIED,
    restart::REACTIVATES_WITH_LAST_CONFIGURATION,
    restart::CALLS_SUCCEED_AFTER_RELAUNCH,
    calls::IN_FLIGHT_CALL_FAILS,
    calls::FAIL_AT_ONCE_WHILE_DOWN,
    rpc::FAILED_ACTIVATION_IS_NOT_A_CRASH,
    rpc::API_STREAM_CLOSED_AFTER_FAILED_ACTIVATION,
    rpc::UNROUTABLE_REQUESTS_ANSWERED,
    rpc::UNMATCHED_RESPONSE_IGNORED,
    rpc::REPLY_OF_THE_WRONG_TYPE,
    rpc::OVERSIZED_CONFIGURATION,
    stop::DEACTIVATES_THEN_ENDS_CONNECTION,
    stop::KILLS_AFTER_GRACE,
    stop::DEACTIVATION_TIMEOUT,
    stop::DURING_BACKOFF,
    stop::DURING_RESTART,
    stop::DURING_START,
    stop::TWICE,
    crash::PLUGIN_CLOSES_ITS_OUTPUT,
    crash::PLUGIN_CLOSES_HOOKS_STREAM,
    robustness::STREAM_0_AFTER_HANDSHAKE,
    robustness::UNKNOWN_STREAM_FRAMES,
    robustness::MAX_SIZE_FRAME,
    robustness::FLOOD_ON_UNREAD_STREAM,
    robustness::GOB_FLOOD_ON_API_STREAM,
    framing::ONE_BYTE_FRAMES,
    framing::NON_MINIMAL_VARINTS,
    wire::OUTPUT_FOLLOWS_SENDER_RULES,
    bundle::REFUSED_WITHOUT_LAUNCHING,
    bundle::EXECUTABLE_STAYS_INSIDE,
];

/// One host case per row of the malformed-input tables: bad announcements (Table 4-1) and
/// malformed frames from the plugin (Table 2-2).
pub fn table_cases() -> Vec<Case> {
    let mut cases = handshake::table_cases();
    cases.extend(framing::table_cases());
    cases
}
