//! The agent: a small plugin built on the codec alone (one thread, one event loop), which the
//! harness runs as `rpcplugin-conformance agent`. It serves `LocalHooks` as protocol 1 says,
//! unless its [`Behaviour`] tells it to break a rule: the harness's mutants are agents with one
//! misbehaviour each ([`MUTANTS`]), and the self-tests check that every mutant fails the cases
//! meant to catch it (with the requirement it breaks) while the well-behaved agent passes them
//! all.
//!
//! Its input goes through a filter before the stream table sees it (that is where the framing
//! mutants live: accepting negative lengths, having no payload limit, ignoring close frames,
//! dropping first frames, freezing on stream 0), and its output through another (non-minimal
//! varints, interleaved frames).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rpcplugin_codec::trace::{Tracer, What};

use rpcplugin_codec::frame::{encode_frame, StreamId, MAX_PAYLOAD_CEILING, MIN_MAX_PAYLOAD};
use rpcplugin_codec::gob::{rpc_ids, DecodeLimits, Decoder, Encoder, TypeRegistry};
use rpcplugin_codec::rpc::{
    check_api_stream, Call, CallError, ClientCodec, Reply, RequestHeader, ServerCodec,
    HOOKS_SERVICE, LOAD_PLUGIN_CONFIGURATION, ON_ACTIVATE, ON_DEACTIVATE,
};
use rpcplugin_codec::stream::{DiscardReason, Event, Read, Role, StreamTable};
use rpcplugin_codec::varint;
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

/// What the harness can tell a running agent to do, over its control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Order {
    /// Exit with this status.
    Exit {
        /// The status.
        code: i32,
    },
    /// Kill itself with SIGKILL.
    Kill,
    /// Write these bytes (hex) to descriptor 4.
    Send {
        /// The bytes.
        hex: String,
    },
    /// Write `bytes` bytes of data on `stream`, in frames of at most 1 MiB.
    Flood {
        /// The stream.
        stream: i64,
        /// How many bytes.
        bytes: u64,
    },
    /// Close descriptor 4 only, keeping on reading descriptor 3.
    CloseOutput,
    /// Close a stream (a zero-length frame).
    CloseStream {
        /// The stream.
        stream: i64,
    },
    /// Stop reading descriptor 3.
    StopReading,
}

/// A named misbehaviour, with the cases that must catch it.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// Its name (`--mutant NAME`).
    pub name: &'static str,
    /// What it does wrong.
    pub description: &'static str,
    /// Each of these cases must not pass against it, and must name this requirement (or one
    /// of several, separated by `|`, where the first symptom of the broken rule depends on how
    /// the bytes happen to fall).
    pub caught_by: &'static [(&'static str, &'static str)],
    /// Its behaviour.
    pub behaviour: fn() -> Behaviour,
}

macro_rules! mutant {
    ($name:literal, $desc:literal, [$(($case:literal, $req:literal)),+ $(,)?], $field:ident $(= $value:expr)?) => {
        Mutant {
            name: $name,
            description: $desc,
            caught_by: &[$(($case, $req)),+],
            behaviour: || Behaviour {
                $field: mutant!(@value $($value)?),
                ..Behaviour::default()
            },
        }
    };
    (@value) => { true };
    (@value $value:expr) => { $value };
}

/// The plugin mutants.
pub static MUTANTS: &[Mutant] = &[
    mutant!(
        "odd-hooks-stream",
        "announces hooks stream 1, an odd id",
        [("plugin/handshake/announce-even-stream", "STREAM-2")],
        hooks_stream = Some(1)
    ),
    mutant!(
        "reads-stdin",
        "reads its standard input to the end before announcing",
        [("plugin/transport/stdin-not-read", "TRANS-5")],
        read_stdin_first
    ),
    mutant!(
        "ignores-close",
        "treats zero-length frames as empty data and keeps delivering what follows",
        [
            ("plugin/streams/data-after-close-discarded", "STREAM-9"),
            ("plugin/streams/close-answered-with-close", "STREAM-11"),
        ],
        ignore_close
    ),
    mutant!(
        "closed-stream-data-is-fatal",
        "ends the connection when a frame arrives for a stream that was closed",
        [("plugin/streams/frames-after-close-discarded", "STREAM-9")],
        closed_stream_data_is_fatal
    ),
    mutant!(
        "wrong-reply-type-ends-stream",
        "closes the API stream, as after a gob error, when a reply has the wrong type",
        [("plugin/rpc/reply-of-the-wrong-type", "RPC-10")],
        wrong_reply_type_ends_stream
    ),
    mutant!(
        "drops-first-frame",
        "drops the first data frame of every stream",
        [("plugin/hooks/activate-deactivate", "RPC-5")],
        drop_first_frame
    ),
    mutant!(
        "accepts-negative-length",
        "skips frames with a negative length, as the seed does on connected streams",
        [("plugin/framing/negative-length", "FRAME-6")],
        accept_negative_length
    ),
    mutant!(
        "no-payload-limit",
        "has no payload limit: waits for the payload of any declared length",
        [("plugin/framing/oversized-frame", "FRAME-8")],
        no_payload_limit
    ),
    mutant!(
        "hangs-on-stream-0",
        "stops reading when a frame arrives on stream 0, as the seed's unbuffered pipe does",
        [("plugin/handshake/control-after-handshake", "HS-8")],
        hang_on_stream_0
    ),
    mutant!(
        "stops-reading",
        "never reads after its announcement",
        [("plugin/framing/max-size-frame", "FRAME-7")],
        stop_reading
    ),
    mutant!(
        "nonminimal-varints",
        "writes frame headers with non-minimal varints",
        [("plugin/wire/output-follows-sender-rules", "FRAME-2")],
        nonminimal_varints
    ),
    mutant!(
        "interleaves-frames",
        "interleaves the bytes of consecutive frames",
        [(
            "plugin/wire/output-follows-sender-rules",
            "FRAME-1|STREAM-7|GOB-2|GOB-4|GOB-5|GOB-9|GOB-20|GOB-21|RPC-3"
        )],
        interleave_frames
    ),
    mutant!(
        "reorders-frames",
        "writes each data frame's second half before its first, as two frames",
        [("plugin/hooks/activate-even-id-rejected", "GOB-9")],
        reorder_frames
    ),
    mutant!(
        "opens-odd-stream",
        "sends data on stream 5, an odd id the host never opened",
        [("plugin/streams/parity-of-opened-streams", "STREAM-2")],
        odd_stream_data
    ),
    mutant!(
        "talks-first",
        "sends data on its hooks stream before the host has sent anything there",
        [("plugin/wire/output-follows-sender-rules", "STREAM-6")],
        data_before_request
    ),
    mutant!(
        "second-announcement",
        "sends a second frame on stream 0",
        [("plugin/wire/output-follows-sender-rules", "HS-2")],
        second_announcement
    ),
    mutant!(
        "wrong-seq",
        "answers every request with its Seq plus one",
        [
            ("plugin/rpc/concurrent-calls", "RPC-5"),
            ("plugin/hooks/activate-deactivate", "RPC-5"),
        ],
        wrong_seq
    ),
    mutant!(
        "accepts-any-api-id",
        "connects any API stream id OnActivate names, even its own even ids",
        [("plugin/hooks/activate-even-id-rejected", "RPC-14")],
        accept_any_api_id
    ),
    mutant!(
        "keeps-old-api-stream",
        "leaves the previous API stream open when activated again",
        [(
            "plugin/hooks/reactivate-closes-previous-api-stream",
            "RPC-20"
        )],
        keep_previous_api_stream
    ),
    mutant!(
        "closes-api-after-answer",
        "answers OnDeactivate before closing the API stream (the close follows in the same write)",
        [(
            "plugin/hooks/reactivate-closes-previous-api-stream",
            "RPC-15"
        )],
        close_api_after_answer
    ),
    mutant!(
        "api-seq-from-one",
        "numbers its API calls from 1",
        [("plugin/wire/output-follows-sender-rules", "RPC-4")],
        api_seq_from_one
    ),
    mutant!(
        "other-error-texts",
        "answers unroutable requests with its own texts, not Go's",
        [("plugin/rpc/go-error-texts", "RPC-9")],
        other_error_texts
    ),
    mutant!(
        "drops-unsendable-responses",
        "sends nothing when an error response that echoes a long method name would not fit in 4 MiB",
        [("plugin/rpc/long-method-name", "RPC-21")],
        drop_unsendable_responses
    ),
    mutant!(
        "unknown-method-ends-stream",
        "treats a request for an unknown method as a gob error of its hooks stream",
        [("plugin/rpc/unknown-methods-answered", "RPC-8")],
        unknown_method_ends_stream
    ),
    mutant!(
        "gob-error-exits",
        "exits on a gob error of its hooks stream instead of closing that stream only",
        [("plugin/rpc-vector/tc-13", "GOB-18")],
        gob_error_exits
    ),
    mutant!(
        "ignores-eof",
        "keeps running after end of file on descriptor 3",
        [("plugin/transport/eof-exit", "TRANS-9")],
        ignore_eof
    ),
    mutant!(
        "exit-1-on-eof",
        "exits with status 1 when the host closes the connection",
        [("plugin/transport/eof-exit", "TRANS-10")],
        exit_status_on_eof = 1
    ),
    mutant!(
        "exit-0-on-error",
        "exits with status 0 after a connection error too, as the seed does",
        [("plugin/framing/negative-length", "TRANS-10")],
        exit_0_on_error
    ),
    mutant!(
        "no-gob-limit",
        "believes any gob message Length and waits for the message",
        [("plugin/robustness/gob-flood-on-hooks-stream", "GOB-19")],
        no_gob_limit
    ),
    mutant!(
        "exits-after-deactivate",
        "exits after answering OnDeactivate",
        [("plugin/hooks/serves-after-deactivate", "LIFE-21")],
        exit_after_deactivate
    ),
    mutant!(
        "leaves-child",
        "starts a child process that outlives it",
        [("plugin/transport/eof-exit", "TRANS-11")],
        leave_child
    ),
];

/// The gob decoding limits of an agent that behaves as `b`.
fn gob_limits(b: &Behaviour) -> DecodeLimits {
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

/// The mutant called `name`.
pub fn mutant(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// Why the agent stopped.
#[derive(Debug)]
pub enum AgentEnd {
    /// The host closed the connection: exit with this status.
    HostClosed(i32),
    /// A connection error or a failed pipe: exit with status 1.
    Failed(String),
    /// The agent was started without the host's pipes: exit with status 2.
    NoPipes(String),
}

/// Runs the agent on the pipes inherited as descriptors 3 and 4 until the connection ends.
/// Call it first thing in `main`.
pub fn run(behaviour: Behaviour) -> AgentEnd {
    let (input, output) = match rpcplugin_runtime::process::inherited_pipes() {
        Ok(pipes) => pipes,
        Err(e) => return AgentEnd::NoPipes(e.to_string()),
    };
    if behaviour.read_stdin_first {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    }
    let mut agent = Agent::new(behaviour, File::from(input), File::from(output));
    let end = match agent.serve() {
        // TRANS-10 broken on purpose: status 0 whatever ended the connection, as the seed.
        AgentEnd::Failed(_) if agent.b.exit_0_on_error => AgentEnd::HostClosed(0),
        end => end,
    };
    if let AgentEnd::HostClosed(_) = end {
        if agent.b.ignore_eof {
            // TRANS-9 broken on purpose: keep running until killed.
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
    }
    end
}

/// The descriptors this process has open, with what each refers to (`/proc/self/fd`), the
/// directory's own descriptor left out. Empty where `/proc` is missing.
fn open_descriptors() -> Vec<(i32, String)> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            match std::fs::read_link(entry.path()) {
                Ok(target) => {
                    // The access mode, for the pipes: "r" or "w" (from fdinfo's flags).
                    let mode = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                        .ok()
                        .and_then(|t| {
                            t.lines()
                                .find(|l| l.starts_with("flags:"))
                                .and_then(|l| l.split_whitespace().nth(1))
                                .and_then(|f| u32::from_str_radix(f, 8).ok())
                        })
                        .map_or("", |flags| match flags & 3 {
                            0 => " r",
                            1 => " w",
                            _ => " rw",
                        });
                    found.push((fd, format!("{}{mode}", target.display())))
                }
                // The directory's own descriptor is gone by the time it is read.
                Err(_) => continue,
            }
        }
    }
    found.retain(|(_, target)| {
        let path = target.split(' ').next().unwrap_or("");
        !(path.starts_with("/proc/") && path.ends_with("/fd"))
    });
    found.sort();
    found
}

/// The machine's monotonic clock in nanoseconds (`CLOCK_MONOTONIC`), which every process on the
/// machine reads alike: the agent's reports carry it, so that the harness can time a host's
/// reactions from when things happened rather than from when it heard of them.
pub fn mono_ns() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    u64::try_from(t.tv_sec())
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(t.tv_nsec()).ok()?)
}

/// The variable in which the agent's script passes on the `SigBlk` line of its
/// `/proc/PID/status` (the signal mask the host started it with, TRANS-15).
pub const SIGBLK_VAR: &str = "RPCPLUGIN_AGENT_SIGBLK";
/// Likewise for `SigIgn`, the signals it started with ignored (TRANS-16).
pub const SIGIGN_VAR: &str = "RPCPLUGIN_AGENT_SIGIGN";

/// Runs the agent of a host case: reports to the harness on the Unix socket `socket`, takes
/// its behaviour from the harness's answer, and carries out its orders while it serves.
/// `host_args` are the arguments the host started the plugin with, after its name (TRANS-14).
pub fn run_controlled(socket: &std::path::Path, host_args: &[String]) -> AgentEnd {
    // As early as can be: no earlier than the launch (LIFE-8's delay is measured to it).
    let started = mono_ns();
    // Before anything is opened: what the host let this process inherit (TRANS-1, TRANS-4,
    // TRANS-6).
    let fds = open_descriptors();
    let (input, output) = match rpcplugin_runtime::process::inherited_pipes() {
        Ok(pipes) => pipes,
        Err(e) => return AgentEnd::NoPipes(e.to_string()),
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            return AgentEnd::Failed(format!(
                "cannot reach the harness at {}: {e}",
                socket.display()
            ))
        }
    };
    let hello = serde_json::json!({
        "event": "hello",
        "pid": std::process::id(),
        "ppid": nix::unistd::getppid().as_raw(),
        "pgid": nix::unistd::getpgrp().as_raw(),
        "mono_ns": started,
        "args": host_args,
        "sig_blocked": std::env::var(SIGBLK_VAR).ok().filter(|m| !m.is_empty()),
        "sig_ignored": std::env::var(SIGIGN_VAR).ok().filter(|m| !m.is_empty()),
        "fds": fds.iter().map(|(fd, target)| serde_json::json!({"fd": fd, "target": target})).collect::<Vec<_>>(),
    });
    if stream.write_all(format!("{hello}\n").as_bytes()).is_err() {
        return AgentEnd::Failed("the harness closed its socket".into());
    }
    // The behaviour: one line.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => return AgentEnd::Failed("the harness sent no behaviour".into()),
        }
    }
    let behaviour: Behaviour = match serde_json::from_slice(&line) {
        Ok(b) => b,
        Err(e) => return AgentEnd::Failed(format!("the harness's behaviour is invalid: {e}")),
    };
    let mut agent = Agent::new(behaviour, File::from(input), File::from(output));
    agent.control = Some(Control {
        stream,
        pending: Vec::new(),
    });
    let end = agent.serve();
    let (code, why) = match &end {
        AgentEnd::HostClosed(code) => (*code, "the host closed the connection".to_string()),
        AgentEnd::Failed(e) => (1, e.clone()),
        AgentEnd::NoPipes(e) => (2, e.clone()),
    };
    if matches!(end, AgentEnd::HostClosed(_)) && agent.b.ignore_eof {
        agent.report(serde_json::json!({"event": "ignoring_eof"}));
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    agent.report(serde_json::json!({
        "event": "exiting", "code": code, "why": why, "mono_ns": mono_ns()
    }));
    end
}

struct Agent {
    b: Behaviour,
    input: File,
    output: File,
    table: StreamTable,
    hooks: StreamId,
    hooks_server: ServerCodec,
    hooks_broken: bool,
    /// The current activation's API stream and its client.
    api: Option<ApiClient>,
    /// Every API stream id connected so far (RPC-14).
    last_api: i64,
    filter: InputFilter,
    child: Option<std::process::Child>,
    /// The harness's control socket, for host cases.
    control: Option<Control>,
    /// The observer of the host's output.
    host_trace: Tracer,
    /// Data streams the agent has written data on (STREAM-6 at the host).
    wrote_on: BTreeSet<StreamId>,
    /// The API stream ids the host named, in order (STREAM-3, RPC-13 at the host).
    api_ids: Vec<i64>,
    /// What is due when.
    timers: Vec<(Instant, Timer)>,
    reading: bool,
    output_open: bool,
}

/// An action the agent takes later.
#[derive(Debug, Clone, Copy)]
enum Timer {
    Announce,
    Crash(Option<i32>),
}

/// The connection to the harness of a host case.
struct Control {
    stream: UnixStream,
    pending: Vec<u8>,
}

impl Agent {
    fn new(b: Behaviour, input: File, output: File) -> Agent {
        let hooks_limits = gob_limits(&b);
        Agent {
            filter: InputFilter::new(&b),
            b,
            input,
            output,
            table: StreamTable::new(Role::Plugin),
            hooks: StreamId::new(2).expect("positive"),
            hooks_server: ServerCodec::with_decoder(Decoder::with_limits(hooks_limits)),
            hooks_broken: false,
            api: None,
            last_api: 0,
            child: None,
            control: None,
            host_trace: Tracer::new(Role::Host),
            wrote_on: BTreeSet::new(),
            api_ids: Vec::new(),
            timers: Vec::new(),
            reading: true,
            output_open: true,
        }
    }

    /// Reports an event to the harness (host cases); nothing without a control socket.
    fn report(&mut self, value: serde_json::Value) {
        if let Some(c) = &mut self.control {
            let mut line = value.to_string();
            line.push('\n');
            let _ = c.stream.write_all(line.as_bytes());
        }
    }

    fn crash_now(&mut self, exit: Option<i32>) -> ! {
        // No later than the host can notice the crash (LIFE-8's delay is measured from it).
        self.report(serde_json::json!({"event": "crashing", "exit": exit, "mono_ns": mono_ns()}));
        if exit.is_some() && self.b.linger_ms > 0 {
            // The connection ends now; the process a while later.
            if let (Ok(null_in), Ok(null_out)) = (
                File::open("/dev/null"),
                std::fs::OpenOptions::new().write(true).open("/dev/null"),
            ) {
                self.input = null_in;
                self.output = null_out;
            }
            self.report(serde_json::json!({"event": "lingering", "ms": self.b.linger_ms}));
            std::thread::sleep(Duration::from_millis(self.b.linger_ms));
        }
        match exit {
            Some(code) => std::process::exit(code),
            None => {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                std::process::exit(137)
            }
        }
    }

    /// Watches what the host writes: the tracer's sender rules, and STREAM-2, STREAM-6 and
    /// STREAM-3 from both directions.
    fn observe_host(&mut self, bytes: &[u8]) {
        if self.control.is_none() {
            return;
        }
        let mut notes = Vec::new();
        self.host_trace.push(bytes, &mut notes);
        for n in notes {
            let found = match &n.what {
                What::Violation(v) => Some((v.requirement, v.text.clone())),
                What::Frame { stream_id, len, .. }
                    if *len > 0 && !stream_id.is_control() && stream_id.is_plugin_allocated() =>
                {
                    (*stream_id != self.hooks).then(|| {
                        (
                            "STREAM-2",
                            format!(
                                "the host sent data on stream {stream_id}, an even id, which only \
                                 the plugin allocates, and the plugin never opened it"
                            ),
                        )
                    })
                }
                What::Frame { stream_id, len, .. }
                    if *len > 0
                        && !stream_id.is_control()
                        && !self.wrote_on.contains(stream_id) =>
                {
                    Some((
                        "STREAM-6",
                        format!(
                            "the host sent data on stream {stream_id}, which it opened, before \
                             the plugin had sent anything on it"
                        ),
                    ))
                }
                What::Request {
                    stream_id,
                    service_method,
                    args,
                    ..
                } if *stream_id == self.hooks && service_method == ON_ACTIVATE => {
                    let id: i64 = args.parse().unwrap_or(0);
                    let found = if self.api_ids.contains(&id) {
                        Some((
                            "STREAM-3",
                            format!("the host named API stream {id} a second time"),
                        ))
                    } else if id <= 0 || id % 2 == 0 {
                        Some((
                            "STREAM-2",
                            format!("the host's API stream {id} is not a positive odd id"),
                        ))
                    } else {
                        None
                    };
                    self.api_ids.push(id);
                    found
                }
                _ => None,
            };
            if let Some((requirement, text)) = found {
                self.report(serde_json::json!({
                    "event": "violation", "requirement": requirement, "text": text, "offset": n.offset
                }));
            }
        }
    }

    fn read_control(&mut self) -> Result<(), AgentEnd> {
        let mut buf = [0u8; 4096];
        let n = match self.control.as_mut().map(|c| c.stream.read(&mut buf)) {
            Some(Ok(n)) => n,
            _ => 0,
        };
        if n == 0 {
            // The harness is gone: nothing more to report to.
            self.control = None;
            return Ok(());
        }
        let c = self.control.as_mut().expect("checked");
        c.pending.extend_from_slice(&buf[..n]);
        let mut orders = Vec::new();
        while let Some(at) = c.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = c.pending.drain(..=at).collect();
            if let Ok(order) = serde_json::from_slice::<Order>(&line) {
                orders.push(order);
            }
        }
        for order in orders {
            self.obey(order)?;
        }
        Ok(())
    }

    fn obey(&mut self, order: Order) -> Result<(), AgentEnd> {
        match order {
            Order::Exit { code } => self.crash_now(Some(code)),
            Order::Kill => self.crash_now(None),
            Order::Send { hex } => {
                let bytes = crate::transcript::from_hex(&hex).unwrap_or_default();
                let _ = self.output.write_all(&bytes);
            }
            Order::Flood { stream, bytes } => {
                let id = StreamId::new(stream).unwrap_or(StreamId::CONTROL);
                let chunk = vec![0x5a; MIN_MAX_PAYLOAD];
                let mut left = bytes;
                let mut frame = Vec::with_capacity(MIN_MAX_PAYLOAD + 20);
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    frame.clear();
                    let _ = encode_frame(id, &chunk[..n], &mut frame);
                    if self.output.write_all(&frame).is_err() {
                        break;
                    }
                    left -= n as u64;
                }
                self.report(serde_json::json!({"event": "flooded", "stream": stream, "bytes": bytes - left}));
            }
            Order::CloseOutput => {
                // Replace descriptor 4's file by nothing: dup /dev/null over it is not needed,
                // dropping our only handle closes it.
                let null = File::open("/dev/null").map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let old = std::mem::replace(&mut self.output, null);
                drop(old);
                self.output_open = false;
            }
            Order::CloseStream { stream } => {
                if let Some(id) = StreamId::new(stream) {
                    let _ = self.table.close(id);
                }
            }
            Order::StopReading => self.reading = false,
        }
        self.flush().map_err(AgentEnd::Failed)
    }

    fn serve(&mut self) -> AgentEnd {
        if let Some(text) = &self.b.stdout_text {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        if let Some(code) = self.b.exit_before_announce {
            self.crash_now(Some(code));
        }
        if !self.b.never_announce {
            if self.b.announce_delay_ms > 0 {
                let at = Instant::now() + Duration::from_millis(self.b.announce_delay_ms);
                self.timers.push((at, Timer::Announce));
            } else if let Err(e) = self.announce() {
                return AgentEnd::Failed(e);
            }
        }
        if self.b.leave_child {
            self.child = std::process::Command::new("sleep")
                .arg("30")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok();
        }
        if self.b.stop_reading {
            self.reading = false;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Timers due.
            let now = Instant::now();
            if let Some(i) = self.timers.iter().position(|(at, _)| *at <= now) {
                let (_, timer) = self.timers.remove(i);
                match timer {
                    Timer::Announce => {
                        if let Err(e) = self.announce() {
                            return AgentEnd::Failed(e);
                        }
                    }
                    Timer::Crash(exit) => self.crash_now(exit),
                }
                continue;
            }
            let wait = self
                .timers
                .iter()
                .map(|(at, _)| at.saturating_duration_since(now))
                .min();
            let (input_ready, control_ready) = {
                let mut fds = Vec::new();
                let input_at = self.reading.then(|| {
                    fds.push(PollFd::new(self.input.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let control_at = self.control.as_ref().map(|c| {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let timeout = match wait {
                    Some(d) => PollTimeout::try_from(d.max(Duration::from_millis(1)))
                        .unwrap_or(PollTimeout::MAX),
                    None => PollTimeout::NONE,
                };
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return AgentEnd::Failed(format!("poll failed: {e}")),
                }
                let ready = |i: Option<usize>| {
                    i.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()))
                };
                (ready(input_at), ready(control_at))
            };
            if control_ready {
                if let Err(end) = self.read_control() {
                    return end;
                }
            }
            if !input_ready {
                continue;
            }
            let n = match self.input.read(&mut buf) {
                Ok(0) => {
                    self.report(serde_json::json!({"event": "eof"}));
                    // What the filter held back is the table's to judge (a truncated frame).
                    let rest = std::mem::take(&mut self.filter.pending);
                    if let Err(e) = self.table.receive(&rest) {
                        return AgentEnd::Failed(e.to_string());
                    }
                    return match self.table.end_of_input() {
                        Ok(()) => AgentEnd::HostClosed(self.b.exit_status_on_eof),
                        Err(e) => AgentEnd::Failed(e.to_string()),
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return AgentEnd::Failed(format!("reading descriptor 3 failed: {e}")),
            };
            self.observe_host(&buf[..n]);
            let filtered = match self.filter.push(&buf[..n]) {
                Filtered::Bytes(bytes) => bytes,
                Filtered::Hang => {
                    self.reading = false;
                    continue;
                }
            };
            if let Err(e) = self.table.receive(&filtered) {
                self.report(
                    serde_json::json!({"event": "connection_error", "text": e.to_string()}),
                );
                return AgentEnd::Failed(e.to_string());
            }
            if let Err(end) = self.handle_events() {
                return end;
            }
            if let Err(e) = self.flush() {
                return AgentEnd::Failed(e);
            }
        }
    }

    fn announce(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        if let Some(hex) = &self.b.before_announce_hex {
            out.extend(crate::transcript::from_hex(hex)?);
        }
        if let Some(hex) = self.b.announcement_hex.clone() {
            // A stream-0 payload of the harness's choosing (HS-5 at the host); the hooks
            // stream is registered as usual.
            self.hooks = self.table.open().map_err(|e| e.to_string())?;
            let payload = crate::transcript::from_hex(&hex)?;
            encode_frame(StreamId::CONTROL, &payload, &mut out).map_err(|e| e.to_string())?;
            self.report(serde_json::json!({"event": "announced", "hex": hex}));
            return self.write_raw_frames(&out);
        }
        match self.b.hooks_stream {
            None => {
                self.hooks = self.table.announce().map_err(|e| e.to_string())?;
                let mut announcement = Vec::new();
                self.table.take_transmit(&mut announcement);
                out.extend(announcement);
            }
            Some(id) => {
                // Announce an id of the agent's choosing; register it where the table allows.
                let mut payload = vec![0x00];
                varint::encode_to_vec(id, &mut payload);
                encode_frame(StreamId::CONTROL, &payload, &mut out).map_err(|e| e.to_string())?;
                if let Some(sid) = StreamId::new(id) {
                    self.hooks = sid;
                }
            }
        }
        if self.b.data_before_request {
            encode_frame(self.hooks, b"hello", &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.second_announcement {
            encode_frame(StreamId::CONTROL, &[0x00, 0x04], &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.odd_stream_data {
            encode_frame(StreamId::new(5).expect("positive"), b"hi", &mut out)
                .map_err(|e| e.to_string())?;
        }
        let hooks = self.hooks.get();
        self.report(serde_json::json!({"event": "announced", "hooks": hooks}));
        if self.b.before_announce_hex.is_some() {
            // What comes before may not be valid frames: written as it is.
            self.schedule_crash_after_announce();
            return self.write_raw_frames(&out);
        }
        self.schedule_crash_after_announce();
        self.write(&out)
    }

    fn schedule_crash_after_announce(&mut self) {
        if let Some(Crash {
            when: CrashWhen::AfterAnnounce(ms),
            exit,
        }) = self.b.crash
        {
            self.timers.push((
                Instant::now() + Duration::from_millis(ms),
                Timer::Crash(exit),
            ));
        }
    }

    /// Writes bytes that need not be whole frames, as they are (the output filter and the
    /// observer of what the agent wrote are bypassed).
    fn write_raw_frames(&mut self, bytes: &[u8]) -> Result<(), String> {
        if !self.output_open {
            return Ok(());
        }
        self.output
            .write_all(bytes)
            .map_err(|e| format!("writing descriptor 4 failed: {e}"))
    }

    fn flush(&mut self) -> Result<(), String> {
        if !self.table.has_transmit() {
            return Ok(());
        }
        let mut out = Vec::new();
        self.table.take_transmit(&mut out);
        self.write(&out)
    }

    /// Writes frames, through the output mutations.
    fn write(&mut self, frames: &[u8]) -> Result<(), String> {
        let bytes = if self.b.nonminimal_varints {
            reframe(frames, |id, payload, out| {
                pad(varint::zigzag(id), 3, out);
                pad(varint::zigzag(payload.len() as i64), 4, out);
                out.extend_from_slice(payload);
            })
        } else if self.b.interleave_frames {
            // Every frame cut in two halves (each a valid frame), then the headers of all of
            // them first and their payloads after: the bytes of frames interleave every time.
            let mut headers = Vec::new();
            let mut payloads = Vec::new();
            let _ = reframe(frames, |id, payload, _| {
                // (The announcement stays whole: splitting it would break HS-1 instead.)
                let cut = if id == 0 {
                    payload.len()
                } else {
                    payload.len() / 2
                };
                let (a, b) = payload.split_at(cut);
                for half in [a, b] {
                    if half.is_empty() && !payload.is_empty() {
                        continue;
                    }
                    varint::encode_to_vec(id, &mut headers);
                    varint::encode_to_vec(half.len() as i64, &mut headers);
                    payloads.extend_from_slice(half);
                }
            });
            headers.extend(payloads);
            headers
        } else if self.b.reorder_frames {
            // Each data frame's halves, in reverse order.
            split_data_frames(frames, |p| {
                let (a, b) = p.split_at(p.len() / 2);
                vec![b, a]
            })
        } else if self.b.one_byte_frames {
            split_data_frames(frames, |p| p.chunks(1).collect())
        } else {
            frames.to_vec()
        };
        let _ = reframe(frames, |id, payload, _| {
            if let Some(id) = StreamId::new(id) {
                if !payload.is_empty() && !id.is_control() {
                    self.wrote_on.insert(id);
                }
            }
        });
        if !self.output_open {
            return Ok(());
        }
        self.output
            .write_all(&bytes)
            .map_err(|e| format!("writing descriptor 4 failed: {e}"))
    }

    fn drain(&mut self, id: StreamId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Read::Data(n)) = self.table.read(id, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    fn handle_events(&mut self) -> Result<(), AgentEnd> {
        while let Some(event) = self.table.poll_event() {
            match event {
                Event::Data { stream_id, .. } if stream_id == self.hooks => {
                    let bytes = self.drain(stream_id);
                    self.on_hooks_bytes(&bytes)?;
                }
                Event::Data { stream_id, .. }
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) =>
                {
                    let bytes = self.drain(stream_id);
                    self.on_api_bytes(&bytes)?;
                }
                Event::Finished { stream_id } | Event::Reset { stream_id, .. } => {
                    let _ = self.drain(stream_id);
                    self.report(serde_json::json!({"event": "closed", "stream": stream_id.get()}));
                    // STREAM-11: close this side too.
                    let _ = self.table.close(stream_id);
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) {
                        self.fail_api_calls("the API stream ended")?;
                    }
                    if stream_id == self.hooks {
                        self.hooks_broken = true;
                    }
                }
                Event::Discarded {
                    stream_id,
                    reason: DiscardReason::ClosedLocally | DiscardReason::ClosedByPeer,
                    ..
                } if self.b.closed_stream_data_is_fatal => {
                    return Err(AgentEnd::Failed(format!(
                        "data on stream {stream_id}, which was closed"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_hooks_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
        if self.hooks_broken {
            return Ok(());
        }
        self.hooks_server.push(bytes);
        loop {
            let request = match self.hooks_server.next_request() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return self.hooks_gob_error(&e.to_string()),
            };
            let call = Call::from_request(
                &[HOOKS_SERVICE],
                &request.header.service_method,
                &request.args,
            );
            match call {
                Err(CallError::UnknownMethod(_) | CallError::UnknownService(_))
                    if self.b.unknown_method_ends_stream =>
                {
                    return self.hooks_gob_error("an unknown method");
                }
                Err(e) => {
                    let text = if self.b.other_error_texts {
                        format!("no such thing: {}", request.header.service_method)
                    } else {
                        e.to_string()
                    };
                    if self.b.drop_unsendable_responses
                        && request.header.service_method.len() + text.len()
                            > rpcplugin_codec::gob::MIN_MAX_MESSAGE
                    {
                        continue;
                    }
                    self.respond(&request.header, Err(&text))?;
                }
                Ok(Call::OnActivate { api_stream }) => {
                    self.report(serde_json::json!({
                        "event": "request", "method": ON_ACTIVATE, "seq": request.header.seq,
                        "api_stream": api_stream
                    }));
                    if let Some(Crash {
                        when: CrashWhen::OnActivate,
                        exit,
                    }) = self.b.crash
                    {
                        self.crash_now(exit);
                    }
                    self.on_activate(request.header, api_stream)?
                }
                Ok(Call::OnDeactivate) => {
                    self.report(serde_json::json!({
                        "event": "request", "method": ON_DEACTIVATE, "seq": request.header.seq
                    }));
                    if self.b.never_answer_deactivate {
                        continue;
                    }
                    // RPC-15: the API stream is closed, then the call answered (the mutant
                    // answers first: both leave in one write, the close right after).
                    let late = self.b.close_api_after_answer;
                    if !late {
                        self.end_api("deactivated")?;
                    }
                    self.respond(&request.header, Ok(&Reply::Empty))?;
                    if late {
                        self.end_api("deactivated")?;
                    }
                    if self.b.exit_after_deactivate {
                        let _ = self.flush();
                        std::process::exit(0);
                    }
                }
                Ok(Call::LoadPluginConfiguration) => {
                    self.respond(&request.header, Err("rpc: can't find service LocalAPI"))?
                }
            }
        }
    }

    /// Closes the API stream, if one is open, and fails the API calls pending on it.
    fn end_api(&mut self, why: &str) -> Result<(), AgentEnd> {
        if let Some(client) = &self.api {
            let _ = self.table.close(client.stream);
            self.fail_api_calls(why)?;
            self.api = None;
        }
        Ok(())
    }

    fn hooks_gob_error(&mut self, what: &str) -> Result<(), AgentEnd> {
        if self.b.gob_error_exits {
            return Err(AgentEnd::Failed(format!(
                "a gob error on the hooks stream: {what}"
            )));
        }
        // GOB-18: this stream only.
        self.hooks_broken = true;
        let _ = self.table.close(self.hooks);
        Ok(())
    }

    fn on_activate(&mut self, header: RequestHeader, id: i64) -> Result<(), AgentEnd> {
        let stream = if self.b.accept_any_api_id {
            match StreamId::new(id) {
                Some(s) if id > 0 => s,
                _ => return self.respond(&header, Err("RPC-14: not a stream id")),
            }
        } else {
            match check_api_stream(id, self.last_api) {
                Ok(s) => s,
                Err(e) => return self.respond(&header, Err(&e.to_string())),
            }
        };
        if let Some(old) = self.api.take() {
            if !self.b.keep_previous_api_stream {
                let _ = self.table.close(old.stream);
            }
            self.api = Some(old);
            self.fail_api_calls("activated again")?;
            self.api = None;
        }
        if self.table.connect(stream).is_err() {
            if self.b.accept_any_api_id {
                // As the seed: "connect" whatever was named (the stream table refuses the
                // plugin's own ids, so the call goes out as a raw frame on it), call the API on
                // it, and report success.
                let mut client = ApiClient {
                    stream,
                    decoder: ClientCodec::new(),
                    encoder: Encoder::new(TypeRegistry::net_rpc()),
                    next_seq: 0,
                    pending: Vec::new(),
                    vector: false,
                };
                let out = client
                    .call(header.clone())
                    .map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let mut frame = Vec::new();
                let _ = encode_frame(stream, &out, &mut frame);
                self.flush().map_err(AgentEnd::Failed)?;
                self.write(&frame).map_err(AgentEnd::Failed)?;
                return self.respond(&header, Ok(&Reply::Empty));
            }
            return self.respond(&header, Err("cannot connect the API stream"));
        }
        self.last_api = self.last_api.max(id);
        let mut client = ApiClient {
            stream,
            decoder: ClientCodec::with_decoder(Decoder::with_limits(gob_limits(&self.b))),
            encoder: Encoder::new(TypeRegistry::net_rpc()),
            next_seq: u64::from(self.b.api_seq_from_one),
            pending: Vec::new(),
            vector: false,
        };
        if let Some(hex) = self.b.api_vector_hex.clone() {
            // The vector's gob stream, from its first byte, then OnActivate answered at once.
            let bytes = crate::transcript::from_hex(&hex).map_err(AgentEnd::Failed)?;
            client.vector = true;
            self.table
                .write(stream, &bytes)
                .map_err(|e| AgentEnd::Failed(e.to_string()))?;
            self.api = Some(client);
            return self.respond(&header, Ok(&Reply::Empty));
        }
        let out = client
            .call(header)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.table
            .write(stream, &out)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.api = Some(client);
        Ok(())
    }

    fn on_api_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
        let Some(client) = self.api.as_mut() else {
            return Ok(());
        };
        client.decoder.push(bytes);
        let mut answers = Vec::new();
        let mut vector_responses = Vec::new();
        let wrong_type_breaks = self.b.wrong_reply_type_ends_stream;
        let mut broken_by_type = None;
        loop {
            match client.decoder.next_response() {
                Ok(Some(r)) if client.vector => {
                    vector_responses.push(serde_json::json!({
                        "event": "api_response", "stream": client.stream.get(),
                        "seq": r.header.seq.to_string(),
                        "method": r.header.service_method,
                        "error": r.header.error,
                    }));
                    continue;
                }
                Ok(Some(r)) => {
                    // RPC-6: a response that matches no call is skipped.
                    if let Some(at) = client.pending.iter().position(|p| p.0 == r.header.seq) {
                        let (_, header) = client.pending.remove(at);
                        let config = match &r.body {
                            rpcplugin_codec::gob::Value::Bytes(b) => {
                                Some(crate::transcript::to_hex(b))
                            }
                            _ => None,
                        };
                        if config.is_none() && r.header.error.is_empty() && wrong_type_breaks {
                            // RPC-10 broken on purpose: the stream goes, as after a gob error.
                            broken_by_type = Some(client.stream);
                        }
                        answers.push((header, r.header.error, config, client.stream.get(), false));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let stream = client.stream.get();
                    answers.extend(
                        client
                            .pending
                            .drain(..)
                            .map(|(_, h)| (h, e.to_string(), None, stream, true)),
                    );
                    break;
                }
            }
        }
        for report in vector_responses {
            self.report(report);
        }
        if let Some(stream) = broken_by_type {
            let _ = self.table.close(stream);
        }
        for (header, error, config, stream, broken) in answers {
            // `broken`: no response came; the API stream's gob stream broke (its error says
            // why) instead.
            self.report(serde_json::json!({
                "event": "config", "stream": stream, "hex": config, "error": error,
                "broken": broken
            }));
            // The configuration's failure, if any, is reported above, for the case to judge
            // (RPC-18): the activation goes on as it would have, so that the case sees the
            // host's answer and not a failed activation.
            if self.b.fail_activate {
                self.respond(&header, Err("the agent fails this activation on purpose"))?;
                continue;
            }
            if let Some(Crash {
                when: CrashWhen::MidFrame,
                exit,
            }) = self.b.crash
            {
                let mut out = Vec::new();
                self.hooks_server
                    .respond_typed(&header, Ok(&Reply::Empty), &mut out)
                    .map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let mut frame = Vec::new();
                let _ = encode_frame(self.hooks, &out, &mut frame);
                let _ = self.flush();
                let _ = self.output.write_all(&frame[..frame.len() / 2]);
                self.crash_now(exit);
            }
            self.respond(&header, Ok(&Reply::Empty))?;
            if let Some(Crash {
                when: CrashWhen::AfterActivate(ms),
                exit,
            }) = self.b.crash
            {
                self.timers.push((
                    Instant::now() + Duration::from_millis(ms),
                    Timer::Crash(exit),
                ));
            }
        }
        Ok(())
    }

    /// Fails the pending OnActivate calls (their API call cannot complete).
    fn fail_api_calls(&mut self, why: &str) -> Result<(), AgentEnd> {
        let pending = match self.api.as_mut() {
            Some(client) => std::mem::take(&mut client.pending),
            None => Vec::new(),
        };
        for (_, header) in pending {
            self.respond(
                &header,
                Err(&format!("LoadPluginConfiguration failed: {why}")),
            )?;
        }
        Ok(())
    }

    fn respond(
        &mut self,
        header: &RequestHeader,
        result: Result<&Reply, &str>,
    ) -> Result<(), AgentEnd> {
        if self.hooks_broken {
            return Ok(());
        }
        let mut header = header.clone();
        if self.b.wrong_seq {
            header.seq = header.seq.wrapping_add(1);
        }
        let mut out = Vec::new();
        let activation = header.service_method == ON_ACTIVATE && result.is_ok();
        if activation && self.b.unmatched_response_first {
            // A response whose Seq matches no call first (RPC-6 at the host).
            let mut stray = header.clone();
            stray.seq = stray.seq.wrapping_add(1_000_000);
            self.hooks_server
                .respond_typed(&stray, Ok(&Reply::Empty), &mut out)
                .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        }
        let sent = if activation && self.b.wrong_reply_type {
            // A well-formed reply of another type than a hook's (RPC-10 at the host).
            self.hooks_server.respond(
                &header,
                Ok((
                    rpcplugin_codec::gob::ids::STRING,
                    &rpcplugin_codec::gob::Value::string("a string, not a struct"),
                )),
                &mut out,
            )
        } else {
            self.hooks_server.respond_typed(&header, result, &mut out)
        };
        sent.map_err(|e| AgentEnd::Failed(e.to_string()))?;
        // The stream may be closed by now; then the answer is dropped (row S11).
        let _ = self.table.write(self.hooks, &out);
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The leftover child is left running on purpose (TRANS-11 broken).
        if let Some(child) = self.child.take() {
            std::mem::forget(child);
        }
    }
}

/// The plugin's client of the host's `LocalAPI` on one API stream.
struct ApiClient {
    stream: StreamId,
    /// Decodes responses (its own call table stays empty: `pending` matches them).
    decoder: ClientCodec<()>,
    encoder: Encoder,
    next_seq: u64,
    /// The OnActivate request each pending call belongs to, by the call's Seq.
    pending: Vec<(u64, RequestHeader)>,
    /// A vector was written instead of a call: every response is reported as it comes.
    vector: bool,
}

impl ApiClient {
    /// A `LoadPluginConfiguration` call for the activation `header` asked for.
    fn call(
        &mut self,
        header: RequestHeader,
    ) -> Result<Vec<u8>, rpcplugin_codec::gob::GobEncodeError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = RequestHeader {
            service_method: LOAD_PLUGIN_CONFIGURATION.to_string(),
            seq,
        };
        let (ty, value) = Call::LoadPluginConfiguration.argument();
        let mut out = Vec::new();
        self.encoder
            .encode(rpc_ids::REQUEST, &request.to_value(), &mut out)?;
        self.encoder.encode(ty, &value, &mut out)?;
        self.pending.push((seq, header));
        Ok(out)
    }
}

/// What the input filter lets through.
enum Filtered {
    Bytes(Vec<u8>),
    /// Stop reading for good.
    Hang,
}

/// The framing mutants, applied to the input before the stream table sees it: a frame parser
/// of its own that rewrites or drops frames.
struct InputFilter {
    active: bool,
    ignore_close: bool,
    drop_first_frame: bool,
    accept_negative_length: bool,
    no_payload_limit: bool,
    hang_on_stream_0: bool,
    pending: Vec<u8>,
    /// Payload bytes still to skip of a frame being swallowed.
    skipping: u64,
    seen_streams: std::collections::BTreeSet<i64>,
}

impl InputFilter {
    fn new(b: &Behaviour) -> InputFilter {
        InputFilter {
            active: b.ignore_close
                || b.drop_first_frame
                || b.accept_negative_length
                || b.no_payload_limit
                || b.hang_on_stream_0,
            ignore_close: b.ignore_close,
            drop_first_frame: b.drop_first_frame,
            accept_negative_length: b.accept_negative_length,
            no_payload_limit: b.no_payload_limit,
            hang_on_stream_0: b.hang_on_stream_0,
            pending: Vec::new(),
            skipping: 0,
            seen_streams: Default::default(),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Filtered {
        if !self.active {
            return Filtered::Bytes(bytes.to_vec());
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            if self.skipping > 0 {
                let n = (self.skipping as usize).min(self.pending.len() - at);
                self.skipping -= n as u64;
                at += n;
                if self.skipping > 0 {
                    break;
                }
                continue;
            }
            let rest = &self.pending[at..];
            let Ok((sid, n)) = varint::decode(rest) else {
                // Incomplete, or malformed: the table decides (pass what is left on).
                if varint::decode(rest).is_err() && rest.len() >= varint::MAX_LEN {
                    out.extend_from_slice(rest);
                    at = self.pending.len();
                }
                break;
            };
            let Ok((len, m)) = varint::decode(&rest[n..]) else {
                if rest.len() - n >= varint::MAX_LEN {
                    out.extend_from_slice(rest);
                    at = self.pending.len();
                }
                break;
            };
            let header = n + m;
            if len < 0 && self.accept_negative_length {
                at += header;
                continue;
            }
            if len < 0 || sid < 0 {
                out.extend_from_slice(&rest[..header]);
                at += header;
                continue;
            }
            if len as u64 > MAX_PAYLOAD_CEILING as u64 || len as usize > MIN_MAX_PAYLOAD {
                if self.no_payload_limit {
                    self.skipping = len as u64;
                    at += header;
                    continue;
                }
                out.extend_from_slice(&rest[..header]);
                at += header;
                continue;
            }
            let len = len as usize;
            if rest.len() < header + len {
                break;
            }
            let frame = &rest[..header + len];
            at += header + len;
            if sid == 0 && self.hang_on_stream_0 {
                return Filtered::Hang;
            }
            if sid == 0 {
                out.extend_from_slice(frame);
                continue;
            }
            if len == 0 && self.ignore_close {
                continue;
            }
            if self.drop_first_frame && len > 0 && self.seen_streams.insert(sid) {
                continue;
            }
            out.extend_from_slice(frame);
        }
        self.pending.drain(..at);
        Filtered::Bytes(out)
    }
}

/// Re-frames whole frames in `frames` through `each(stream id, payload, out)`.
fn reframe(frames: &[u8], mut each: impl FnMut(i64, &[u8], &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frames.len() {
        let Ok(Some((frame, n))) =
            rpcplugin_codec::frame::decode_frame(&frames[at..], MIN_MAX_PAYLOAD)
        else {
            out.extend_from_slice(&frames[at..]);
            break;
        };
        each(frame.stream_id.get(), frame.payload, &mut out);
        at += n;
    }
    out
}

/// `frames` with each data frame of two bytes or more (not on stream 0) written as one frame
/// per piece `split` cuts its payload into, in the order it returns them.
fn split_data_frames(frames: &[u8], split: impl Fn(&[u8]) -> Vec<&[u8]>) -> Vec<u8> {
    reframe(frames, |id, payload, out| {
        let sid = StreamId::new(id).unwrap_or(StreamId::CONTROL);
        if payload.len() < 2 || id == 0 {
            let _ = encode_frame(sid, payload, out);
            return;
        }
        for piece in split(payload) {
            let _ = encode_frame(sid, piece, out);
        }
    })
}

/// `u` as a base-128 varint of exactly `len` bytes.
fn pad(mut u: u64, len: usize, out: &mut Vec<u8>) {
    for i in 0..len {
        let group = (u & 0x7f) as u8;
        u >>= 7;
        out.push(if i + 1 == len { group } else { group | 0x80 });
    }
}
