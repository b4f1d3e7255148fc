//! The tracer (`codec::trace`): Go's own sessions, framed as a seed plugin and host send them,
//! trace without a violation; every sender rule it checks is caught at the right offset with
//! the right requirement; and any split of the input gives the same notes (FRAME-12).

use proptest::prelude::*;
use rpcplugin_codec::frame::{encode_frame, StreamId};
use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::{Note, Tracer, What};
use rpcplugin_test_support::unhex;
use rpcplugin_test_support::vectors::{go_sessions as sessions, test_hex};

fn id(n: i64) -> StreamId {
    StreamId::new(n).unwrap()
}

fn frame(stream: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_frame(id(stream), payload, &mut out).unwrap();
    out
}

/// What a plugin writes in Go's sessions: the announcement, the hooks server's responses on
/// stream 2 and the API client's requests on stream 1, each Go write one frame, then a close of
/// stream 1.
fn plugin_output() -> Vec<u8> {
    let s = sessions();
    let mut out = vec![0x00, 0x04, 0x00, 0x04];
    for (resp, req) in s[0].server_to_client_writes_hex.iter().zip(
        s[1].client_to_server_writes_hex
            .iter()
            .chain(std::iter::repeat(&String::new())),
    ) {
        out.extend(frame(2, &unhex(resp)));
        if !req.is_empty() {
            out.extend(frame(1, &unhex(req)));
        }
    }
    out.extend(frame(1, &[]));
    out
}

/// What a host writes: hook requests on stream 2 and API responses on stream 1.
fn host_output() -> Vec<u8> {
    let s = sessions();
    let mut out = Vec::new();
    for w in &s[0].client_to_server_writes_hex {
        out.extend(frame(2, &unhex(w)));
    }
    for w in &s[1].server_to_client_writes_hex {
        out.extend(frame(1, &unhex(w)));
    }
    out
}

fn trace_chunks(sender: Role, chunks: &[&[u8]]) -> Vec<Note> {
    let mut t = Tracer::new(sender);
    let mut out = Vec::new();
    for c in chunks {
        t.push(c, &mut out);
    }
    t.finish(&mut out);
    out
}

fn trace(sender: Role, bytes: &[u8]) -> Vec<Note> {
    trace_chunks(sender, &[bytes])
}

fn violations(notes: &[Note]) -> Vec<(u64, &'static str)> {
    notes
        .iter()
        .filter_map(|n| match &n.what {
            What::Violation(v) => Some((n.offset, v.requirement)),
            _ => None,
        })
        .collect()
}

// covers: RPC-1, RPC-4, HS-1
#[test]
fn gos_sessions_framed_as_a_plugin_sends_them_trace_clean() {
    let notes = trace(Role::Plugin, &plugin_output());
    assert_eq!(violations(&notes), [], "{notes:#?}");
    assert!(matches!(notes[1].what, What::Announcement { hooks } if hooks == id(2)));
    let responses: Vec<(u64, String, String)> = notes
        .iter()
        .filter_map(|n| match &n.what {
            What::Response {
                stream_id,
                seq,
                service_method,
                error,
                ..
            } if *stream_id == id(2) => Some((*seq, service_method.clone(), error.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(responses.len(), 4, "{responses:?}");
    assert_eq!(responses[0].1, "LocalHooks.OnActivate");
    assert!(
        responses.iter().any(|r| !r.2.is_empty()),
        "an error response"
    );
    let requests: Vec<String> = notes
        .iter()
        .filter(|n| matches!(n.what, What::Request { .. }))
        .map(|n| n.what.to_string())
        .collect();
    assert_eq!(
        requests,
        [
            "request on stream 1: Seq 0 LocalAPI.LoadPluginConfiguration(struct{})",
            "request on stream 1: Seq 1 LocalAPI.LoadPluginConfiguration(struct{})"
        ]
    );
    assert!(notes
        .iter()
        .any(|n| n.what == What::Close { stream_id: id(1) }));
    assert_eq!(notes.last().unwrap().what, What::End);
}

#[test]
fn gos_sessions_framed_as_a_host_sends_them_trace_clean() {
    let notes = trace(Role::Host, &host_output());
    assert_eq!(violations(&notes), [], "{notes:#?}");
    let shown: Vec<String> = notes
        .iter()
        .filter(|n| matches!(n.what, What::Request { .. } | What::Response { .. }))
        .map(|n| n.what.to_string())
        .collect();
    assert!(
        shown.contains(&"request on stream 2: Seq 0 LocalHooks.OnActivate(1)".to_string()),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|s| s.starts_with(
            "response on stream 1: Seq 0 LocalAPI.LoadPluginConfiguration -> \"{\\\"z\\\""
        )),
        "{shown:#?}"
    );
}

// covers: FRAME-12
proptest! {
    #[test]
    fn any_split_gives_the_same_notes(cuts in proptest::collection::vec(any::<usize>(), 0..24)) {
        let bytes = plugin_output();
        let whole = trace(Role::Plugin, &bytes);
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.extend([0, bytes.len()]);
        points.sort_unstable();
        let chunks: Vec<&[u8]> = points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect();
        prop_assert_eq!(trace_chunks(Role::Plugin, &chunks), whole);
    }
}

fn announce() -> Vec<u8> {
    vec![0x00, 0x04, 0x00, 0x04]
}

fn with_announcement(rest: &[u8]) -> Vec<u8> {
    let mut v = announce();
    v.extend_from_slice(rest);
    v
}

// covers: FRAME-2
#[test]
fn a_non_minimal_header_breaks_frame_2() {
    // F7 of chapter 02: "hi" on stream 2 with non-minimal varints.
    let notes = trace(
        Role::Plugin,
        &with_announcement(&[0x84, 0x00, 0x84, 0x80, 0x00, 0x68, 0x69]),
    );
    assert!(violations(&notes).contains(&(4, "FRAME-2")), "{notes:#?}");
}

// covers: FRAME-9
#[test]
fn a_payload_over_one_mib_breaks_frame_9() {
    // The encoder refuses such a frame (FRAME-9), so the header is written by hand.
    let mut bytes = announce();
    rpcplugin_codec::varint::encode_to_vec(5, &mut bytes);
    rpcplugin_codec::varint::encode_to_vec((1 << 20) + 1, &mut bytes);
    bytes.extend(vec![0u8; (1 << 20) + 1]);
    // The violation is seen as soon as the header is whole, however the bytes arrive.
    let mut t = Tracer::new(Role::Plugin);
    let mut out = Vec::new();
    t.push(&bytes[..12], &mut out);
    assert_eq!(violations(&out), [(4, "FRAME-9")]);
    t.push(&bytes[12..], &mut out);
    // Once, not again when the payload is complete (the zeros also break GOB-4 on stream 5).
    let frame_9 = violations(&out).iter().filter(|v| v.1 == "FRAME-9").count();
    assert_eq!(frame_9, 1, "{out:#?}");
    assert!(out
        .iter()
        .any(|n| matches!(n.what, What::Frame { len, .. } if len == (1 << 20) + 1)));
}

// covers: FRAME-1
#[test]
fn malformed_and_truncated_output_breaks_frame_1() {
    for bad in [
        &[0x01, 0x00][..],
        &[0x02, 0x01],
        &[0x04, 0x0a, 0x68],
        &[0x04],
    ] {
        let notes = trace(Role::Plugin, &with_announcement(bad));
        assert_eq!(
            violations(&notes),
            [(4, "FRAME-1")],
            "{bad:02x?}: {notes:#?}"
        );
        assert!(!notes.iter().any(|n| n.what == What::End));
    }
}

// covers: HS-1, HS-2, HS-3, STREAM-1, STREAM-2
#[test]
fn stream_zero_rules() {
    let v = |sender, bytes: &[u8]| {
        trace(sender, bytes)
            .into_iter()
            .filter_map(|n| match n.what {
                What::Violation(v) => Some(v.requirement),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(v(Role::Plugin, &[0x04, 0x00]), ["HS-1"]);
    assert_eq!(v(Role::Plugin, &[0x00, 0x04, 0x00, 0x02]), ["STREAM-2"]);
    assert_eq!(v(Role::Plugin, &[0x00, 0x04, 0x01, 0x04]), ["HS-1"]);
    assert_eq!(
        v(Role::Plugin, &with_announcement(&[0x00, 0x04, 0x00, 0x04])),
        ["HS-2"]
    );
    assert_eq!(
        v(Role::Plugin, &with_announcement(&[0x00, 0x00])),
        ["STREAM-1"]
    );
    assert_eq!(v(Role::Host, &[0x00, 0x02, 0x00]), ["HS-3"]);
}

// covers: STREAM-7, STREAM-8
#[test]
fn nothing_after_a_close() {
    let notes = trace(
        Role::Plugin,
        &with_announcement(&[0x06, 0x00, 0x06, 0x02, 0x78, 0x06, 0x00]),
    );
    assert_eq!(
        violations(&notes),
        [(6, "STREAM-8"), (9, "STREAM-7")],
        "{notes:#?}"
    );
}

// covers: RPC-4
#[test]
fn a_client_that_skips_a_seq_breaks_rpc_4() {
    let s = sessions();
    // The plugin's first API request, then the same request again: Seq 0 twice.
    let first = unhex(&s[1].client_to_server_writes_hex[0]);
    let mut bytes = announce();
    bytes.extend(frame(1, &first));
    // Go's first write carries the type definitions; the second write is the bare request.
    let second = unhex(&s[1].client_to_server_writes_hex[1]);
    bytes.extend(frame(1, &second));
    bytes.extend(frame(1, &second));
    let notes = trace(Role::Plugin, &bytes);
    assert_eq!(
        violations(&notes).iter().map(|v| v.1).collect::<Vec<_>>(),
        ["RPC-4"],
        "{notes:#?}"
    );
}

// covers: GOB-4, GOB-18
#[test]
fn garbage_on_an_rpc_stream_is_reported_once_with_the_gob_requirement() {
    let mut bytes = announce();
    bytes.extend(frame(2, &[0x00, 0x01, 0x02]));
    bytes.extend(frame(2, b"more garbage"));
    let notes = trace(Role::Plugin, &bytes);
    let found = violations(&notes);
    assert_eq!(found.len(), 1, "{notes:#?}");
    assert!(found[0].1.starts_with("GOB-"), "{found:?}");
    // A message cut short by the end of the output is a violation too.
    let s = sessions();
    let half = unhex(&s[0].server_to_client_writes_hex[0]);
    let mut bytes = announce();
    bytes.extend(frame(2, &half[..half.len() / 2]));
    let notes = trace(Role::Plugin, &bytes);
    assert_eq!(violations(&notes).len(), 1, "{notes:#?}");
}

// A request with Seq 2^64 - 1 (rpc-messages.json, tcId 1) is traced, not a panic.
#[test]
fn the_largest_seq_does_not_overflow() {
    let bytes = test_hex("rpc-messages", 1);
    let mut framed = Vec::new();
    rpcplugin_codec::frame::encode_data(id(2), &bytes, 1 << 20, &mut framed);
    let notes = trace(Role::Host, &framed);
    assert!(notes
        .iter()
        .any(|n| matches!(n.what, What::Request { seq, .. } if seq == u64::MAX)));
}

// covers: GOB-1
#[test]
fn a_non_minimal_gob_uint_breaks_gob_1() {
    // rpc-messages.json tcId 8: Seq 5 written as ff 05; a receiver accepts it (GOB-2), but a
    // sender that writes it breaks GOB-1.
    let mut framed = Vec::new();
    rpcplugin_codec::frame::encode_data(id(2), &test_hex("rpc-messages", 8), 1 << 20, &mut framed);
    let notes = trace(Role::Host, &framed);
    assert_eq!(
        violations(&notes).iter().map(|v| v.1).collect::<Vec<_>>(),
        ["RPC-4", "GOB-1"]
    );
    // Go's own bytes are minimal.
    assert_eq!(violations(&trace(Role::Host, &host_output())), []);
}
