//! Cases against a plugin executable: the harness plays the host.
//!
//! Besides what each case checks, the driver's observer checks everything the plugin writes
//! in every case (see [`crate::plugin_under_test`]); the case
//! `plugin/wire/output-follows-sender-rules` cites the requirements it enforces.
//!
//! One file per group of case ids (`plugin/GROUP/...`), each case declared (`case!`) beside the
//! function that runs it; [`CASES`] lists the hand-written ones in the order they run, which
//! interleaves the groups, and [`vector_cases`] follow them:
//!
//! - `handshake`: the announcement, and stream 0 after it (spec 04);
//! - `hooks`: the `LocalHooks` service: activation and deactivation (spec 05 section 5.5);
//! - `framing`: frames the plugin receives, and the malformed ones that end it (spec 02);
//! - `streams`: unknown and closed streams (spec 03);
//! - `rpc`: calls, unroutable requests, answers of the harness's `LocalAPI`, large and nested
//!   gob messages (spec 05);
//! - `robustness`: a gob Length above every limit, then a flood (spec 05 section 5.2.10);
//! - `wire`: the case that cites what the observer enforces in every case;
//! - `transport`: standard input, and the exit at the end of the connection (spec 01);
//! - `rpc_vector`: the RPC vectors on the hooks stream ([`vector_cases`]);
//! - `helpers`: what they share: activations, waiting for responses and close frames.

use super::Case;

mod framing;
mod handshake;
mod helpers;
mod hooks;
mod robustness;
mod rpc;
mod rpc_vector;
mod streams;
mod transport;
mod wire;

pub(crate) use framing::send_malformed;
pub(crate) use rpc::CustomClient;
pub use rpc_vector::vector_cases;
pub(crate) use transport::close_and_expect_exit;

/// The hand-written plugin cases, in the order they run.
pub static CASES: &[Case] = &[
    handshake::ANNOUNCE_EVEN_STREAM,
    hooks::ACTIVATE_DEACTIVATE,
    hooks::ACTIVATE_EVEN_ID_REJECTED,
    hooks::ACTIVATE_STALE_ID_REJECTED,
    hooks::REACTIVATE_CLOSES_PREVIOUS_API_STREAM,
    hooks::SERVES_AFTER_DEACTIVATE,
    framing::ONE_BYTE_WRITES,
    framing::EVERY_SPLIT_POINT,
    framing::COALESCED_FRAMES,
    framing::ONE_BYTE_FRAMES,
    framing::NON_MINIMAL_VARINTS,
    framing::MAX_SIZE_FRAME,
    framing::NEGATIVE_STREAM_ID,
    framing::NEGATIVE_LENGTH,
    framing::OVERSIZED_FRAME,
    framing::VARINT_OVERFLOW,
    framing::LENGTH_VARINT_OVERFLOW,
    framing::MOST_NEGATIVE_LENGTH,
    framing::TRUNCATED_HEADER_AT_EOF,
    framing::TRUNCATED_FRAME_AT_EOF,
    streams::UNKNOWN_STREAM_DISCARDED,
    streams::PARITY_OF_OPENED_STREAMS,
    streams::DATA_AFTER_CLOSE_DISCARDED,
    streams::FRAMES_AFTER_CLOSE_DISCARDED,
    streams::CLOSE_ANSWERED_WITH_CLOSE,
    streams::API_STREAM_CLOSED_DURING_CALL,
    handshake::CONTROL_AFTER_HANDSHAKE,
    rpc::CONCURRENT_CALLS,
    rpc::PIPELINED_CALLS,
    rpc::UNKNOWN_METHODS_ANSWERED,
    rpc::GO_ERROR_TEXTS,
    rpc::LONG_METHOD_NAME,
    rpc::WRONG_ARGUMENT_TYPE,
    rpc::UNMATCHED_API_RESPONSE_IGNORED,
    rpc::API_ERROR_RESPONSE,
    rpc::REPLY_OF_THE_WRONG_TYPE,
    rpc::LARGE_CONFIGURATION,
    rpc::LARGE_REQUEST_HEADER,
    rpc::DEEPLY_NESTED_HEADER_FIELD,
    robustness::GOB_FLOOD_ON_HOOKS_STREAM,
    wire::OUTPUT_FOLLOWS_SENDER_RULES,
    transport::STDIN_NOT_READ,
    transport::EOF_EXIT,
    transport::EOF_DURING_HOOK_CALL,
];
