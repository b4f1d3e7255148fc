//! The plugin mutants: [`MUTANTS`], agents with one misbehaviour each (a [`Behaviour`] with one
//! switch set), each with the cases that must catch it and the requirement they must name;
//! the self-tests check that every case listed fails against its mutant.

use super::Behaviour;

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
            caught_by: &[$(($case, rpcplugin_codec::req!($req))),+],
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

/// The mutant called `name`.
pub fn mutant(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}
