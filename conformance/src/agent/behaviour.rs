//! What an agent does: [`Behaviour`], one switch per misbehaviour (each names the requirement
//! it breaks) and, for host cases, how one launch behaves towards the host (spec/harness.md
//! section 6), with its [`Crash`] point; and the gob decoding limits a behaviour implies
//! (GOB-15, GOB-19).

use rpcplugin_codec::gob::DecodeLimits;
use serde::{Deserialize, Serialize};

/// How an agent behaves; the default is a conforming plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Announce this hooks stream id instead of 2 (an odd one breaks STREAM-2).
    pub hooks_stream: Option<i64>,
    /// Read standard input to its end before announcing (breaks TRANS-5).
    pub read_stdin_first: bool,
    /// Treat zero-length frames on data streams as empty data (breaks STREAM-9, STREAM-10).
    pub ignore_close: bool,
    /// End the connection when a frame arrives for a stream that was closed (breaks STREAM-9:
    /// such frames are discarded).
    pub closed_stream_data_is_fatal: bool,
    /// Close the API stream, as after a gob error, when a reply has another type than the
    /// call's (breaks RPC-10: only that call fails).
    pub wrong_reply_type_ends_stream: bool,
    /// Drop the first data frame of every stream (breaks FRAME-12 and RPC-5 in practice).
    pub drop_first_frame: bool,
    /// Skip frames with a negative length instead of ending the connection (breaks FRAME-6).
    pub accept_negative_length: bool,
    /// Accept any payload length, waiting for the payload (breaks FRAME-8).
    pub no_payload_limit: bool,
    /// Stop reading for good when a frame arrives on stream 0 (breaks HS-8, STREAM-14).
    pub hang_on_stream_0: bool,
    /// Never read after the announcement (breaks FRAME-7 and everything after).
    pub stop_reading: bool,
    /// Write frame headers with non-minimal varints (breaks FRAME-2).
    pub nonminimal_varints: bool,
    /// Interleave the bytes of consecutive frames (breaks FRAME-10, FRAME-1).
    pub interleave_frames: bool,
    /// Write each data frame as two frames, its second half first: the stream's bytes arrive
    /// out of order (breaks STREAM-7, the order of a stream's data).
    pub reorder_frames: bool,
    /// Send data on odd stream 5, which the host never opened, after the handshake (breaks
    /// STREAM-2).
    pub odd_stream_data: bool,
    /// Send data on the hooks stream right after the announcement (breaks STREAM-6).
    pub data_before_request: bool,
    /// Send a second announcement after the first (breaks HS-2).
    pub second_announcement: bool,
    /// Answer every request with its Seq plus one (breaks RPC-5).
    pub wrong_seq: bool,
    /// Connect any OnActivate id, even the plugin's own or an old one (breaks RPC-14).
    pub accept_any_api_id: bool,
    /// Leave the previous API stream open on a new activation (breaks RPC-20).
    pub keep_previous_api_stream: bool,
    /// Number the API client's calls from 1 (breaks RPC-4).
    pub api_seq_from_one: bool,
    /// Answer unroutable requests with texts other than Go's (breaks RPC-9).
    pub other_error_texts: bool,
    /// Treat a request for an unknown method as a gob error of the hooks stream (breaks RPC-8).
    pub unknown_method_ends_stream: bool,
    /// Send no response at all when the error response, with the name echoed and repeated in
    /// Go's text, would not fit in GOB_MIN_MAX_MESSAGE (breaks RPC-21).
    pub drop_unsendable_responses: bool,
    /// Exit with status 1 on a gob error of the hooks stream (breaks GOB-18).
    pub gob_error_exits: bool,
    /// Keep running after end of file on descriptor 3 (breaks TRANS-9).
    pub ignore_eof: bool,
    /// Exit with this status when the host closes the connection (non-zero breaks TRANS-10).
    pub exit_status_on_eof: i32,
    /// Exit with status 0 after a connection error too, as the seed does (breaks TRANS-10).
    pub exit_0_on_error: bool,
    /// No gob message limit: believe any Length and buffer the message (breaks GOB-15,
    /// GOB-19).
    pub no_gob_limit: bool,
    /// Exit after answering OnDeactivate (breaks LIFE-21).
    pub exit_after_deactivate: bool,
    /// Answer OnDeactivate first and close the API stream right after, in the same write
    /// (breaks RPC-15's order).
    pub close_api_after_answer: bool,
    /// Start a child process that outlives the agent (breaks TRANS-11).
    pub leave_child: bool,
    /// Accept exactly what the spec guarantees and nothing more: gob messages of
    /// GOB_MIN_MAX_MESSAGE nested GOB_MIN_MAX_DEPTH deep (the stream table's limits are the
    /// minimums already). Conforming: it shows that no case demands more.
    pub min_limits: bool,

    // --- For host cases: how this launch behaves towards the host (spec/harness.md section 6) ---
    /// Never announce the hooks stream (the host's start timeout, HS-4).
    pub never_announce: bool,
    /// Announce only after this many milliseconds.
    pub announce_delay_ms: u64,
    /// Send this stream-0 payload (hex) as the announcement instead of the right one (HS-5).
    pub announcement_hex: Option<String>,
    /// Write these bytes (hex) before the announcement: frames on data streams (discarded by
    /// the host, H3) or a malformed frame (a connection error before the handshake, E12).
    pub before_announce_hex: Option<String>,
    /// Exit with this status before announcing (HS-6).
    pub exit_before_announce: Option<i32>,
    /// Write this text to standard output before announcing (TRANS-3).
    pub stdout_text: Option<String>,
    /// Crash: at a point of the protocol, by exiting or by SIGKILL.
    pub crash: Option<Crash>,
    /// When crashing by exiting: close both pipes first and keep running this many
    /// milliseconds before the exit (a process that outlives its connection, LIFE-7).
    pub linger_ms: u64,
    /// Never answer OnDeactivate (the host's deactivation timeout, LIFE-16).
    pub never_answer_deactivate: bool,
    /// Write the responses to hook calls one byte per frame (FRAME-12 at the host).
    pub one_byte_frames: bool,
    /// Answer OnActivate with an error after loading the configuration (RPC-16 at the host).
    pub fail_activate: bool,
    /// Before the answer to OnActivate, send a response whose Seq matches no call (RPC-6 at
    /// the host, Table 5-9 R7).
    pub unmatched_response_first: bool,
    /// Answer OnActivate successfully with a reply that is a string, not a struct (RPC-10 at
    /// the host, Table 5-9 R9).
    pub wrong_reply_type: bool,
    /// On each activation, write these bytes (hex) as the first bytes of the API stream, in
    /// place of the LoadPluginConfiguration call, answer OnActivate at once, and report every
    /// response the host sends on that stream (`api_response`): a test vector of
    /// `spec/vectors/rpc-messages.json` played to the host's LocalAPI server.
    pub api_vector_hex: Option<String>,
}

/// When and how an agent crashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Crash {
    /// When.
    pub when: CrashWhen,
    /// The exit status; `None` for SIGKILL.
    #[serde(default)]
    pub exit: Option<i32>,
}

/// The protocol point of a [`Crash`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CrashWhen {
    /// This many milliseconds after the announcement.
    AfterAnnounce(u64),
    /// When an OnActivate request arrives, before answering it (a call in flight).
    OnActivate,
    /// This many milliseconds after answering OnActivate successfully.
    AfterActivate(u64),
    /// In the middle of the response to OnActivate: half of its frame is written.
    MidFrame,
}

/// The gob decoding limits of an agent that behaves as `b`.
pub(super) fn gob_limits(b: &Behaviour) -> DecodeLimits {
    if b.no_gob_limit {
        DecodeLimits {
            max_message: usize::MAX,
            ..DecodeLimits::default()
        }
    } else if b.min_limits {
        DecodeLimits::minimum()
    } else {
        DecodeLimits::default()
    }
}
