//! Which cases send the input that each numbered row of the specification's tables describes,
//! for each role that must handle it, and why no case sends the rows that none can.
//!
//! The spec numbers the rows of its tables so that tests can cite them: the malformed-input
//! table M1 to M14 and the frame examples F1 to F7 and X1 to X9 (chapter 02), the stream
//! states S1 to S21 (chapter 03), the handshake errors E1 to E12 and states H1 to H7, P1 and
//! P2 (chapter 04), the malformed gob input G1 to G20 and the RPC errors R1 to R11 (chapter
//! 05), and the supervisor states L1 to L23 (chapter 06). [`ROWS`] says, row by row and role by
//! role, which cases of that role send the row's input, or why none can (the verdict would
//! depend on a limit the spec leaves to the receiver, nothing outside the subject tells the
//! row's behaviour apart, ...), or that the row is a local action of the endpoint and no input
//! at all. `tests/coverage.rs` checks the table against the chapters both ways: every row of
//! the chapters has an entry, every entry names a row that exists and cases that exist in the
//! role it names.

use crate::cases::Mode;

/// How one row is exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// These cases send the row's input to a subject of the entry's role.
    Cases(&'static [&'static str]),
    /// No case can send it to a subject of the entry's role, for this reason.
    Unreached(&'static str),
    /// The row is a local action of the endpoint, not input a peer sends: there is nothing to
    /// send, for this reason.
    NotInput(&'static str),
}

/// One row, for one role (`None`: a local action of either role).
#[derive(Debug, Clone, Copy)]
pub struct RowReach {
    /// The row's number, such as `M3` or `L21`.
    pub row: &'static str,
    /// The role that receives the row's input.
    pub mode: Option<Mode>,
    /// How the row is exercised.
    pub reach: Reach,
}

const P: Option<Mode> = Some(Mode::Plugin);
const H: Option<Mode> = Some(Mode::Host);

const fn by(row: &'static str, mode: Option<Mode>, cases: &'static [&'static str]) -> RowReach {
    RowReach {
        row,
        mode,
        reach: Reach::Cases(cases),
    }
}

const fn none(row: &'static str, mode: Option<Mode>, why: &'static str) -> RowReach {
    RowReach {
        row,
        mode,
        reach: Reach::Unreached(why),
    }
}

const fn local(row: &'static str) -> RowReach {
    RowReach {
        row,
        mode: None,
        reach: Reach::NotInput(LOCAL),
    }
}

const LOCAL: &str = "a local action of the endpoint (opening, connecting, writing, closing), \
    not input a peer sends: the codec's state-table tests drive it (codec/tests/state_tables.rs), \
    and the observer checks what it puts on the wire in every case";
const FRAME_LIMIT: &str = "the verdict depends on the receiver's own frame limit, which lies \
    between 1 MiB and 16 MiB (FRAME-8): a receiver with a larger limit accepts the frame; M6 and \
    X7 are the input every receiver rejects";
const HOST_TRUNCATION: &str = "for a host, a plugin's output that ends inside a frame and one \
    that ends at a frame boundary both end the connection of a Running plugin (a crash, LIFE-6) \
    or fail its start (HS-6): nothing the host does tells the two apart from outside";
const READ_STREAMS: &str = "every stream a protocol-1 endpoint registers is an RPC stream it \
    keeps reading (RPC-19), whose unread data stays within one message and one frame (section \
    3.7), so no input can fill a stream's buffer without first breaking the gob limit, which \
    is G2's case (GOB-15, GOB-19)";
const STREAM_END: &str = "the end of a stream inside a message, or between a request's header \
    and its body, shows only as the end of that stream: the receiver closes its side as it does \
    after a clean end, and nothing tells the two apart from outside; the codec's tests decode \
    the difference (vectors tc 9, 10, 31 and 32)";
const DEPTH: &str = "nothing bounds a receiver's depth limit from above (GOB-17): a receiver \
    may accept any nesting, so no input is rejected by every receiver; \
    plugin/rpc/deeply-nested-header-field sends the 16 levels every receiver accepts";
const HOST_REMOTE_CLOSED: &str = "a plugin closes an API stream only when it is deactivated or \
    activated again, and the host closes its side at once (STREAM-11, RPC-17): data after the \
    plugin's close finds the stream RemoteClosed or already forgotten at the host depending on \
    timing, so no case can aim at this row; data on a stream the host closed (S13) is \
    host/robustness/gob-flood-on-api-stream's";
const GIVE_UP: &str = "giving up is a MAY (LIFE-13) whose limit the driver contract cannot \
    set: a host that never gives up conforms, so no case can demand it";

/// Every row, per role.
pub static ROWS: &[RowReach] = &[
    // Chapter 02, Table 2-2: malformed and unusual input.
    by(
        "M1",
        P,
        &[
            "plugin/framing/varint-overflow",
            "plugin/framing/length-varint-overflow",
        ],
    ),
    by(
        "M1",
        H,
        &[
            "host/framing/varint-overflow",
            "host/framing/length-varint-overflow",
        ],
    ),
    by("M2", P, &["plugin/framing/non-minimal-varints"]),
    by("M2", H, &["host/framing/non-minimal-varints"]),
    by("M3", P, &["plugin/framing/negative-stream-id"]),
    by(
        "M3",
        H,
        &[
            "host/framing/negative-stream-id",
            "host/handshake/malformed-frame-first",
        ],
    ),
    by(
        "M4",
        P,
        &[
            "plugin/framing/negative-length",
            "plugin/framing/most-negative-length",
        ],
    ),
    by(
        "M4",
        H,
        &[
            "host/framing/negative-length",
            "host/framing/most-negative-length",
        ],
    ),
    none("M5", P, FRAME_LIMIT),
    none("M5", H, FRAME_LIMIT),
    by("M6", P, &["plugin/framing/oversized-frame"]),
    by("M6", H, &["host/framing/oversized-frame"]),
    by("M7", P, &["plugin/framing/truncated-header-at-eof"]),
    none("M7", H, HOST_TRUNCATION),
    by("M8", P, &["plugin/framing/truncated-frame-at-eof"]),
    none("M8", H, HOST_TRUNCATION),
    by("M9", P, &["plugin/transport/eof-exit"]),
    by("M9", H, &["host/crash/plugin-closes-its-output"]),
    by(
        "M10",
        P,
        &[
            "plugin/streams/unknown-stream-discarded",
            "plugin/framing/max-size-frame",
        ],
    ),
    by(
        "M10",
        H,
        &[
            "host/robustness/unknown-stream-frames",
            "host/robustness/flood-on-unread-stream",
        ],
    ),
    by(
        "M11",
        P,
        &[
            "plugin/streams/data-after-close-discarded",
            "plugin/streams/frames-after-close-discarded",
        ],
    ),
    by("M11", H, &["host/robustness/gob-flood-on-api-stream"]),
    none("M12", P, READ_STREAMS),
    none("M12", H, READ_STREAMS),
    by(
        "M13",
        H,
        &[
            "host/handshake/bad-control-byte",
            "host/handshake/odd-hooks-stream",
        ],
    ),
    by("M14", P, &["plugin/handshake/control-after-handshake"]),
    by("M14", H, &["host/robustness/stream-0-after-handshake"]),
    // Chapter 02, section 2.9: valid frames.
    by("F1", P, &["plugin/hooks/activate-deactivate"]),
    by("F1", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by(
        "F2",
        P,
        &[
            "plugin/streams/close-answered-with-close",
            "plugin/streams/api-stream-closed-during-call",
        ],
    ),
    by("F2", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by("F3", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by("F4", P, &["plugin/rpc/large-configuration"]),
    by("F4", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by("F5", P, &["plugin/streams/unknown-stream-discarded"]),
    by("F5", H, &["host/robustness/unknown-stream-frames"]),
    by("F6", P, &["plugin/framing/max-size-frame"]),
    by("F6", H, &["host/robustness/max-size-frame"]),
    by("F7", P, &["plugin/framing/non-minimal-varints"]),
    by("F7", H, &["host/framing/non-minimal-varints"]),
    // Chapter 02, section 2.9: invalid input.
    by("X1", P, &["plugin/framing/negative-stream-id"]),
    by("X1", H, &["host/framing/negative-stream-id"]),
    by("X2", P, &["plugin/framing/negative-length"]),
    by("X2", H, &["host/framing/negative-length"]),
    by("X3", P, &["plugin/framing/varint-overflow"]),
    by("X3", H, &["host/framing/varint-overflow"]),
    by("X4", P, &["plugin/framing/length-varint-overflow"]),
    by("X4", H, &["host/framing/length-varint-overflow"]),
    by("X5", P, &["plugin/framing/most-negative-length"]),
    by("X5", H, &["host/framing/most-negative-length"]),
    none("X6", P, FRAME_LIMIT),
    none("X6", H, FRAME_LIMIT),
    by("X7", P, &["plugin/framing/oversized-frame"]),
    by("X7", H, &["host/framing/oversized-frame"]),
    by("X8", P, &["plugin/framing/truncated-frame-at-eof"]),
    none("X8", H, HOST_TRUNCATION),
    by("X9", P, &["plugin/framing/truncated-header-at-eof"]),
    none("X9", H, HOST_TRUNCATION),
    // Chapter 03, Tables 3-1 and 3-2: the stream states, from the receiving side.
    local("S1"),
    local("S2"),
    by("S3", P, &["plugin/streams/unknown-stream-discarded"]),
    by(
        "S3",
        H,
        &[
            "host/robustness/unknown-stream-frames",
            "host/handshake/data-before-announcement",
        ],
    ),
    by("S4", P, &["plugin/streams/unknown-stream-discarded"]),
    by("S4", H, &["host/robustness/unknown-stream-frames"]),
    by(
        "S5",
        P,
        &[
            "plugin/hooks/activate-deactivate",
            "plugin/rpc/large-request-header",
        ],
    ),
    by("S5", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by(
        "S6",
        P,
        &[
            "plugin/streams/close-answered-with-close",
            "plugin/streams/frames-after-close-discarded",
        ],
    ),
    by(
        "S6",
        H,
        &[
            "host/crash/plugin-closes-hooks-stream",
            "host/lifecycle/start-activate-deactivate-stop",
        ],
    ),
    local("S7"),
    local("S8"),
    by(
        "S9",
        P,
        &[
            "plugin/streams/frames-after-close-discarded",
            "plugin/streams/data-after-close-discarded",
        ],
    ),
    none("S9", H, HOST_REMOTE_CLOSED),
    by("S10", P, &["plugin/streams/frames-after-close-discarded"]),
    none("S10", H, HOST_REMOTE_CLOSED),
    local("S11"),
    local("S12"),
    by("S13", P, &["plugin/streams/frames-after-close-discarded"]),
    by("S13", H, &["host/robustness/gob-flood-on-api-stream"]),
    by("S14", P, &["plugin/streams/frames-after-close-discarded"]),
    by(
        "S14",
        H,
        &[
            "host/robustness/gob-flood-on-api-stream",
            "host/rpc-vector/tc-13",
        ],
    ),
    local("S15"),
    local("S16"),
    by(
        "S17",
        P,
        &[
            "plugin/transport/eof-exit",
            "plugin/transport/eof-during-hook-call",
        ],
    ),
    by(
        "S17",
        H,
        &[
            "host/crash/plugin-closes-its-output",
            "host/restart/crash-after-activation",
        ],
    ),
    none("S18", P, READ_STREAMS),
    none("S18", H, READ_STREAMS),
    none("S19", P, READ_STREAMS),
    none("S19", H, READ_STREAMS),
    local("S20"),
    local("S21"),
    // Chapter 04, Table 4-1: handshake errors.
    by("E1", H, &["host/handshake/bad-control-byte"]),
    by("E2", H, &["host/handshake/short-announcement"]),
    by("E3", H, &["host/handshake/empty-announcement"]),
    by("E4", H, &["host/handshake/incomplete-varint"]),
    by("E5", H, &["host/handshake/overflowing-varint"]),
    by("E6", H, &["host/handshake/trailing-byte"]),
    by("E7", H, &["host/handshake/hooks-stream-zero"]),
    by("E8", H, &["host/handshake/odd-hooks-stream"]),
    by("E9", H, &["host/handshake/negative-hooks-stream"]),
    by("E10", H, &["host/start/timeout"]),
    by("E11", H, &["host/start/eof-before-announcement"]),
    by("E12", H, &["host/handshake/malformed-frame-first"]),
    // Chapter 04, Tables 4-2 and 4-3: handshake states.
    by("H1", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by(
        "H2",
        H,
        &[
            "host/handshake/bad-control-byte",
            "host/handshake/trailing-byte",
        ],
    ),
    by("H3", H, &["host/handshake/data-before-announcement"]),
    by("H4", H, &["host/start/timeout"]),
    by("H5", H, &["host/start/eof-before-announcement"]),
    by("H6", H, &["host/robustness/stream-0-after-handshake"]),
    by("H7", H, &["host/crash/plugin-closes-its-output"]),
    RowReach {
        row: "P1",
        mode: None,
        reach: Reach::NotInput(
            "the plugin's own start, not input: plugin/handshake/announce-even-stream checks \
             what it sends",
        ),
    },
    by("P2", P, &["plugin/handshake/control-after-handshake"]),
    // Chapter 05, Table 5-7: malformed and unusual gob input (on the plugin's hooks stream
    // and the host's API stream, where each is a server).
    none("G1", P, STREAM_END),
    none("G1", H, STREAM_END),
    by(
        "G2",
        P,
        &[
            "plugin/robustness/gob-flood-on-hooks-stream",
            "plugin/rpc-vector/tc-11",
        ],
    ),
    by(
        "G2",
        H,
        &[
            "host/robustness/gob-flood-on-api-stream",
            "host/rpc-vector/tc-11",
        ],
    ),
    by("G3", P, &["plugin/rpc-vector/tc-13"]),
    by("G3", H, &["host/rpc-vector/tc-13"]),
    by(
        "G4",
        P,
        &["plugin/rpc-vector/tc-14", "plugin/rpc-vector/tc-15"],
    ),
    by("G4", H, &["host/rpc-vector/tc-14", "host/rpc-vector/tc-15"]),
    by(
        "G5",
        P,
        &["plugin/rpc-vector/tc-24", "plugin/rpc-vector/tc-41"],
    ),
    by("G5", H, &["host/rpc-vector/tc-24", "host/rpc-vector/tc-41"]),
    by(
        "G6",
        P,
        &["plugin/rpc-vector/tc-16", "plugin/rpc-vector/tc-17"],
    ),
    by("G6", H, &["host/rpc-vector/tc-16", "host/rpc-vector/tc-17"]),
    by(
        "G7",
        P,
        &["plugin/rpc-vector/tc-18", "plugin/rpc-vector/tc-19"],
    ),
    by("G7", H, &["host/rpc-vector/tc-18", "host/rpc-vector/tc-19"]),
    by(
        "G8",
        P,
        &[
            "plugin/rpc-vector/tc-20",
            "plugin/rpc-vector/tc-21",
            "plugin/rpc-vector/tc-37",
            "plugin/rpc-vector/tc-38",
            "plugin/rpc-vector/tc-39",
        ],
    ),
    by(
        "G8",
        H,
        &[
            "host/rpc-vector/tc-20",
            "host/rpc-vector/tc-21",
            "host/rpc-vector/tc-37",
            "host/rpc-vector/tc-38",
            "host/rpc-vector/tc-39",
        ],
    ),
    by(
        "G9",
        P,
        &["plugin/rpc-vector/tc-22", "plugin/rpc-vector/tc-40"],
    ),
    by("G9", H, &["host/rpc-vector/tc-22", "host/rpc-vector/tc-40"]),
    by("G10", P, &["plugin/rpc-vector/tc-23"]),
    by("G10", H, &["host/rpc-vector/tc-23"]),
    by("G11", P, &["plugin/rpc-vector/tc-25"]),
    by("G11", H, &["host/rpc-vector/tc-25"]),
    none("G12", P, DEPTH),
    none("G12", H, DEPTH),
    by("G13", P, &["plugin/rpc-vector/tc-27"]),
    by("G13", H, &["host/rpc-vector/tc-27"]),
    by("G14", P, &["plugin/rpc-vector/tc-28"]),
    by("G14", H, &["host/rpc-vector/tc-28"]),
    by("G15", P, &["plugin/rpc-vector/tc-08"]),
    by("G15", H, &["host/rpc-vector/tc-08"]),
    by("G16", P, &["plugin/rpc-vector/tc-33"]),
    by("G16", H, &["host/rpc-vector/tc-33"]),
    by("G17", P, &["plugin/rpc-vector/tc-34"]),
    by("G17", H, &["host/rpc-vector/tc-34"]),
    by("G18", P, &["plugin/rpc-vector/tc-35"]),
    by("G18", H, &["host/rpc-vector/tc-35"]),
    by("G19", P, &["plugin/rpc-vector/tc-36"]),
    by("G19", H, &["host/rpc-vector/tc-36"]),
    by("G20", P, &["plugin/streams/close-answered-with-close"]),
    by("G20", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    // Chapter 05, Table 5-9: RPC errors (servers: the plugin on its hooks stream, the host on
    // its API streams; clients: the host on the hooks stream, the plugin on its API stream).
    by(
        "R1",
        P,
        &["plugin/rpc-vector/tc-29", "plugin/rpc-vector/tc-30"],
    ),
    by("R1", H, &["host/rpc-vector/tc-29", "host/rpc-vector/tc-30"]),
    by("R2", P, &["plugin/rpc/unknown-methods-answered"]),
    by("R2", H, &["host/rpc/unroutable-requests-answered"]),
    by("R3", P, &["plugin/rpc/unknown-methods-answered"]),
    by(
        "R3",
        H,
        &[
            "host/rpc/unroutable-requests-answered",
            "host/rpc-vector/tc-01",
        ],
    ),
    by("R4", P, &["plugin/rpc/unknown-methods-answered"]),
    by("R4", H, &["host/rpc/unroutable-requests-answered"]),
    by("R5", P, &["plugin/rpc/wrong-argument-type"]),
    by("R5", H, &["host/rpc/unroutable-requests-answered"]),
    by(
        "R6",
        P,
        &[
            "plugin/hooks/activate-even-id-rejected",
            "plugin/hooks/activate-stale-id-rejected",
        ],
    ),
    by("R7", P, &["plugin/rpc/unmatched-api-response-ignored"]),
    by("R7", H, &["host/rpc/unmatched-response-ignored"]),
    by("R8", P, &["plugin/rpc/api-error-response"]),
    by("R8", H, &["host/rpc/failed-activation-is-not-a-crash"]),
    by("R9", P, &["plugin/rpc/reply-of-the-wrong-type"]),
    by("R9", H, &["host/rpc/reply-of-the-wrong-type"]),
    by("R10", P, &["plugin/streams/api-stream-closed-during-call"]),
    by("R10", H, &["host/calls/in-flight-call-fails"]),
    none("R11", P, STREAM_END),
    none("R11", H, STREAM_END),
    by("R12", P, &["plugin/rpc/long-method-name"]),
    none(
        "R12",
        H,
        "the agent's API client calls only LoadPluginConfiguration; a host's LocalAPI server \
         meets a several-MiB name only from a plugin that breaks the method names of section \
         5.5, and the codec test an_error_response_too_long_to_send_is_shortened_not_dropped \
         covers the reference host's server",
    ),
    // Chapter 06, Table 6-1: the supervisor (the host's, driven through its driver).
    by("L1", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by("L2", H, &["host/start/launch-fails"]),
    by("L3", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by(
        "L4",
        H,
        &[
            "host/start/timeout",
            "host/start/eof-before-announcement",
            "host/handshake/bad-control-byte",
            "host/handshake/malformed-frame-first",
        ],
    ),
    by("L5", H, &["host/stop/during-start"]),
    by("L6", H, &["host/lifecycle/start-activate-deactivate-stop"]),
    by(
        "L7",
        H,
        &[
            "host/restart/crash-after-activation",
            "host/crash/plugin-closes-its-output",
            "host/crash/plugin-closes-hooks-stream",
        ],
    ),
    by("L8", H, &["host/restart/backoff-resets"]),
    by("L9", H, &["host/stop/deactivates-then-ends-connection"]),
    by("L10", H, &["host/restart/crash-after-activation"]),
    none("L11", H, GIVE_UP),
    by("L12", H, &["host/stop/during-backoff"]),
    by("L13", H, &["host/calls/in-flight-call-fails"]),
    by("L14", H, &["host/restart/crash-after-activation"]),
    by(
        "L15",
        H,
        &[
            "host/restart/crash-after-activation",
            "host/restart/calls-succeed-after-relaunch",
        ],
    ),
    by(
        "L16",
        H,
        &[
            "host/restart/failed-relaunch-is-retried",
            "host/restart/backoff-grows",
        ],
    ),
    by("L17", H, &["host/stop/during-restart"]),
    by(
        "L18",
        H,
        &[
            "host/stop/deactivates-then-ends-connection",
            "host/stop/deactivation-timeout",
        ],
    ),
    by("L19", H, &["host/stop/kills-after-grace"]),
    by("L20", H, &["host/stop/deactivates-then-ends-connection"]),
    by("L21", H, &["host/stop/deactivation-timeout"]),
    by(
        "L22",
        H,
        &["host/stop/twice", "host/start/stop-after-failed-start"],
    ),
    by("L23", H, &["host/calls/fail-at-once-while-down"]),
];
