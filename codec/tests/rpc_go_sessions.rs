//! The real Go `net/rpc` sessions recorded in `spec/vectors/rpc-go-sessions.json` (written by
//! `interop/go/vectors-gen`, Go 1.19; `go_interop.rs` checks they are still what Go produces):
//! their bytes decode to the right calls and replies however they are split, whatever type ids
//! Go gave them (GOB-6), and where Go's ids are those of GOB-8 the same calls encode to exactly
//! Go's bytes, write by write.

/// The interop peer serves both services on one stream.
const BOTH: &[&str] = &[
    rpcplugin_codec::rpc::HOOKS_SERVICE,
    rpcplugin_codec::rpc::API_SERVICE,
];

use proptest::prelude::*;
use rpcplugin_codec::gob::Value;
use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, Request, ServerCodec};
use rpcplugin_test_support::vectors::{go_sessions, GoCall, GoSession as Session};
use rpcplugin_test_support::{split_at_cuts as split_at, unhex as hex};

fn sessions() -> &'static [Session] {
    let sessions = go_sessions();
    assert_eq!(sessions.len(), 3);
    sessions
}

/// The type definitions of one direction of a session: id and type name.
fn definitions(writes: &[String]) -> Vec<(i64, String)> {
    let mut d = rpcplugin_codec::gob::Decoder::new();
    for w in writes {
        d.push(&hex(w));
    }
    let mut out = Vec::new();
    while let Some(m) = d.next_message().unwrap() {
        if let rpcplugin_codec::gob::Message::Definition { id, ty } = m {
            let name = match ty {
                rpcplugin_codec::gob::WireType::Struct { name, .. } => name,
                other => format!("{other:?}"),
            };
            out.push((id, name));
        }
    }
    out
}

/// Whether Go gave this direction's types the ids of GOB-8 (65 `Request`, 66 `Response`, 67
/// the empty struct): then the reference encoder's bytes are Go's. Go numbers types in the
/// order its process first uses them, so a session can have them in another order.
fn follows_gob8(writes: &[String]) -> bool {
    definitions(writes).iter().all(|(id, name)| {
        matches!(
            (*id, name.as_str()),
            (65, "Request") | (66, "Response") | (67, "")
        )
    })
}

// covers: GOB-6, GOB-8
#[test]
fn one_session_has_gos_other_order_of_type_ids() {
    let s = sessions();
    assert!(follows_gob8(&s[0].client_to_server_writes_hex));
    assert!(follows_gob8(&s[0].server_to_client_writes_hex));
    // The first call carries struct{} arguments: struct{} is 66, Response 67.
    assert_eq!(
        definitions(&s[2].client_to_server_writes_hex),
        [(65, "Request".to_string()), (66, String::new())]
    );
    assert_eq!(
        definitions(&s[2].server_to_client_writes_hex),
        [(67, "Response".to_string()), (66, String::new())]
    );
    assert!(!follows_gob8(&s[2].server_to_client_writes_hex));
}

/// The typed call a Go vector describes, or the raw method and args for the unknown method.
fn expected_call(c: &GoCall) -> (String, Value) {
    let args = if let Some(n) = c.args.strip_prefix("int64 ") {
        Value::Int(n.parse().unwrap())
    } else {
        assert_eq!(c.args, "struct{}{}");
        Value::empty_struct()
    };
    (c.method.clone(), args)
}

fn decode_requests(chunks: &[&[u8]]) -> Vec<Request> {
    let mut server = ServerCodec::new();
    let mut out = Vec::new();
    for chunk in chunks {
        server.push(chunk);
        while let Some(r) = server.next_request().unwrap() {
            out.push(r);
        }
    }
    server.finish().unwrap();
    out
}

fn check_requests(session: &Session, requests: &[Request]) {
    assert_eq!(
        requests.len(),
        session.calls.len(),
        "{}",
        session.description
    );
    for (i, (r, c)) in requests.iter().zip(&session.calls).enumerate() {
        let (method, args) = expected_call(c);
        assert_eq!(r.header.service_method, method);
        assert_eq!(r.header.seq, i as u64, "Go's client numbers calls from 0");
        assert_eq!(r.args, args);
    }
}

// covers: RPC-2, RPC-4, GOB-4, GOB-6
#[test]
fn go_requests_decode_whole_and_one_byte_at_a_time() {
    for s in sessions() {
        let bytes = s.bytes(true);
        check_requests(s, &decode_requests(&[&bytes]));
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        check_requests(s, &decode_requests(&singles));
        let writes = s.writes(true);
        let as_written: Vec<&[u8]> = writes.iter().map(Vec::as_slice).collect();
        check_requests(s, &decode_requests(&as_written));
    }
}

proptest! {
    // covers: GOB-4
    #[test]
    fn go_requests_decode_under_any_split(cuts in proptest::collection::vec(any::<usize>(), 0..20)) {
        for s in sessions() {
            let bytes = s.bytes(true);
            check_requests(s, &decode_requests(&split_at(&bytes, &cuts)));
        }
    }
}

// covers: GOB-1, GOB-3, GOB-7, GOB-8, GOB-12, GOB-13, RPC-2, RPC-4
#[test]
fn the_same_calls_encode_to_gos_bytes_write_by_write() {
    for s in sessions() {
        if !follows_gob8(&s.client_to_server_writes_hex) {
            continue;
        }
        let mut client: ClientCodec<usize> = ClientCodec::new();
        for (i, (c, want)) in s
            .calls
            .iter()
            .zip(&s.client_to_server_writes_hex)
            .enumerate()
        {
            let (method, args) = expected_call(c);
            let id = match args {
                Value::Int(_) => rpcplugin_codec::gob::ids::INT,
                _ => rpcplugin_codec::gob::rpc_ids::EMPTY_STRUCT,
            };
            let mut out = Vec::new();
            let seq = client.call(&method, (id, &args), i, &mut out).unwrap();
            assert_eq!(seq, i as u64);
            assert_eq!(out, hex(want), "{}: call {i} ({method})", s.description);
        }
    }
}

// covers: GOB-8, RPC-5, RPC-7, RPC-12
#[test]
fn the_same_replies_encode_to_gos_bytes_write_by_write() {
    for s in sessions() {
        if !follows_gob8(&s.server_to_client_writes_hex) {
            continue;
        }
        let writes = s.writes(true);
        let chunks: Vec<&[u8]> = writes.iter().map(Vec::as_slice).collect();
        let requests = decode_requests(&chunks);
        let mut server = ServerCodec::new();
        for ((r, c), want) in requests
            .iter()
            .zip(&s.calls)
            .zip(&s.server_to_client_writes_hex)
        {
            let mut out = Vec::new();
            if let Some(text) = c.result.strip_prefix("error: ") {
                server.respond(&r.header, Err(text), &mut out).unwrap();
            } else if let Some(json) = c.result.strip_prefix("ok: ") {
                let reply = Reply::Configuration(json.as_bytes().to_vec());
                server
                    .respond_typed(&r.header, Ok(&reply), &mut out)
                    .unwrap();
            } else {
                assert_eq!(c.result, "ok");
                server
                    .respond_typed(&r.header, Ok(&Reply::Empty), &mut out)
                    .unwrap();
            }
            assert_eq!(out, hex(want), "{}: reply to {}", s.description, c.method);
        }
    }
}

// covers: RPC-6, RPC-7, RPC-10, RPC-12
#[test]
fn go_replies_decode_and_match_their_calls() {
    for s in sessions() {
        let mut client: ClientCodec<usize> = ClientCodec::new();
        let mut sink = Vec::new();
        for (i, c) in s.calls.iter().enumerate() {
            let (method, args) = expected_call(c);
            let id = if matches!(args, Value::Int(_)) { 2 } else { 67 };
            client.call(&method, (id, &args), i, &mut sink).unwrap();
        }
        let bytes = s.bytes(false);
        // One byte at a time.
        let mut responses = Vec::new();
        for b in &bytes {
            client.push(std::slice::from_ref(b));
            while let Some(r) = client.next_response().unwrap() {
                responses.push(r);
            }
        }
        client.finish().unwrap();
        assert!(client.pending().is_empty());
        assert_eq!(responses.len(), s.calls.len());
        for (i, (r, c)) in responses.iter().zip(&s.calls).enumerate() {
            assert_eq!(r.call, Some(i), "matched by Seq");
            assert_eq!(r.header.service_method, c.method);
            if let Some(text) = c.result.strip_prefix("error: ") {
                assert_eq!(r.header.error, text);
                assert_eq!(
                    r.body,
                    Value::empty_struct(),
                    "an error carries an empty struct"
                );
            } else {
                assert_eq!(r.header.error, "");
                let call = Call::from_request(BOTH, &c.method, &expected_call(c).1).unwrap();
                let reply = Reply::for_call(&call, &r.body).unwrap();
                match c.result.strip_prefix("ok: ") {
                    Some(json) => assert_eq!(reply, Reply::Configuration(json.as_bytes().to_vec())),
                    None => assert_eq!(reply, Reply::Empty),
                }
            }
        }
    }
}

fn error_of(services: &[&str], method: &str, args: &Value) -> (&'static str, String) {
    let e = Call::from_request(services, method, args).unwrap_err();
    (e.kind(), e.to_string())
}

// covers: RPC-8, RPC-9, RPC-12
#[test]
fn unroutable_names_get_gos_error_texts() {
    let hooks = &[rpcplugin_codec::rpc::HOOKS_SERVICE];
    let cases = [
        (
            BOTH,
            "LocalHooks.NoSuchMethod",
            "unknown_method",
            "rpc: can't find method LocalHooks.NoSuchMethod",
        ),
        (
            BOTH,
            "LocalAPI.OnActivate",
            "unknown_method",
            "rpc: can't find method LocalAPI.OnActivate",
        ),
        (
            BOTH,
            "Nope.OnActivate",
            "unknown_service",
            "rpc: can't find service Nope.OnActivate",
        ),
        // The plugin serves only LocalHooks.
        (
            hooks,
            "LocalAPI.LoadPluginConfiguration",
            "unknown_service",
            "rpc: can't find service LocalAPI.LoadPluginConfiguration",
        ),
        (
            BOTH,
            "OnActivate",
            "ill_formed_service_method",
            "rpc: service/method request ill-formed: OnActivate",
        ),
        (
            BOTH,
            "",
            "ill_formed_service_method",
            "rpc: service/method request ill-formed: ",
        ),
    ];
    for (services, method, kind, text) in cases {
        assert_eq!(
            error_of(services, method, &Value::Int(1)),
            (kind, text.to_string()),
            "{method}"
        );
    }
    assert_eq!(
        Call::from_request(hooks, "LocalHooks.OnActivate", &Value::Int(3)),
        Ok(Call::OnActivate { api_stream: 3 })
    );
}

// covers: RPC-14
#[test]
fn on_activate_must_name_a_new_host_stream() {
    use rpcplugin_codec::rpc::check_api_stream;
    assert_eq!(check_api_stream(1, 0).unwrap().get(), 1);
    assert_eq!(check_api_stream(5, 3).unwrap().get(), 5);
    for (id, last) in [(0, 0), (-1, 0), (2, 0), (3, 3), (1, 3), (i64::MIN, 0)] {
        let e = check_api_stream(id, last).unwrap_err();
        assert_eq!(e.kind(), "invalid_api_stream_id", "{id} after {last}");
    }
    assert_eq!(
        check_api_stream(2, 1).unwrap_err().to_string(),
        "RPC-14: OnActivate(2) does not name a new host stream (a positive odd id above 1)"
    );
}

// covers: RPC-8, RPC-9
#[test]
fn wrong_argument_types_get_gos_error_texts() {
    // Texts observed from Go 1.19's net/rpc server (interop/go/netrpc-peer).
    let cases = [
        (
            "LocalHooks.OnActivate",
            Value::empty_struct(),
            "gob: decoding into local type *int64, received remote type ",
        ),
        (
            "LocalHooks.OnActivate",
            Value::string("x"),
            "gob: decoding into local type *int64, received remote type string",
        ),
        (
            "LocalHooks.OnActivate",
            Value::Uint(1),
            "gob: decoding into local type *int64, received remote type uint",
        ),
        (
            "LocalAPI.LoadPluginConfiguration",
            Value::Int(1),
            "gob: type mismatch in decoder: want struct type struct {}; got non-struct",
        ),
    ];
    for (method, args, text) in cases {
        assert_eq!(
            error_of(BOTH, method, &args),
            ("argument_type_mismatch", text.to_string()),
            "{method}"
        );
    }
}
