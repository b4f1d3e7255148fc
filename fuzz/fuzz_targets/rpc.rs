//! The net/rpc layer (`spec/05-rpc.md`): [`ServerCodec`], [`ClientCodec`] with its
//! [`CallTable`], and the typed [`Call`] and [`Reply`], on streams built around the real Go
//! sessions of `spec/vectors/rpc-go-sessions.json`.
//!
//! The stream is a base (the gob messages of one direction of a Go session, or nothing) with
//! structural edits at message boundaries: well-formed type definitions of any kind, id and
//! CommonType id (GOB-6, GOB-10), the definitions our encoder sends for the envelope types,
//! whole request or response envelopes encoded with Go's ids, and raw bytes; then a raw tail.
//! A model predicts the gob messages from the edits: definitions are transparent, a definition
//! of an id below 64 or already defined is `duplicate_type`, a value of an undefined id is
//! `undefined_type`, a message above the limit is `message_too_large`, a value nested past the
//! limit is `too_deep`; nothing is predicted after raw bytes. Checks:
//!
//! - at start-up, once: the Go sessions decode to exactly the calls and results the JSON lists,
//!   whole and one byte at a time, whatever ids Go gave their types, and where those are GOB-8's
//!   ids the same calls and results encode to exactly Go's bytes;
//! - a plain gob `Decoder` gives the predicted messages (all of them and the predicted error or
//!   a clean end when the stream has no raw bytes; the predicted prefix otherwise), so the
//!   unmutated Go messages are always accepted, under any split and around any insertion;
//! - the envelope (RPC-2, RPC-3): `ServerCodec::next_request` / `ClientCodec::next_response`
//!   under the input's split give exactly the header and body pairs of the plain decoder's
//!   values, `header_type_mismatch` at the first header that is not one, the gob error, or
//!   `missing_body` at the end after a lone header; and an error is final (GOB-18): later
//!   `next_*` and `finish` calls repeat it;
//! - the client's call table (RPC-6, RPC-11): a response carries the call pending under its
//!   `Seq`, or none, which it takes out of the table; `fail_pending` hands back the rest in `Seq`
//!   order; `CallTable` itself against a map model on the requests' `Seq`s;
//! - re-encoding: a decoded request or response whose body the net/rpc type ids can carry
//!   encodes (through `Encoder` or `ServerCodec::respond`) to bytes that decode to the same
//!   header and body; an error response's body becomes `struct{}{}` (RPC-7);
//! - typed calls (RPC-8, RPC-9, RPC-12): `Call::from_request` gives the call, or the error kind
//!   and Go's text, that the service method and argument imply; a typed call encodes
//!   (`call_typed`) to a request that decodes to the same call; `Reply::for_call` accepts
//!   exactly a `[]byte` for `LoadPluginConfiguration` and a struct for the hooks, and a typed
//!   reply (`respond_typed`) decodes back to itself.
//!
//! Input layout (`Arbitrary`): the base (`u32` variant, 00000000 raw or 00000080 Go, then its
//! fields: `to_server` for raw; the session's index, a `u8`, and `to_server` for Go), the limits (`Option<u8>`), the cut points (`Vec<u16>`), the calls a raw-based client
//! has pending, the edits, then the tail (the rest). `fuzz/seed_corpus.py` writes seeds.

#![no_main]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::gob::{
    self, ids, rpc_ids, DecodeLimits, Decoder, EncoderKind, FieldDef, GobError, Message, TypeId,
    TypeRegistry, Value, WireType,
};
use rpcplugin_codec::rpc::{
    Call, CallError, CallTable, ClientCodec, Reply, RequestHeader, ResponseHeader, RpcError,
    ServerCodec, API_SERVICE, HOOKS_SERVICE, LOAD_PLUGIN_CONFIGURATION, ON_ACTIVATE, ON_DEACTIVATE,
};
use rpcplugin_codec_fuzz::{depth, normalize, same_messages, same_value, split};
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// The Go sessions.

#[derive(Deserialize)]
struct GoFile {
    netrpc_sessions: Vec<GoSessionJson>,
}

#[derive(Deserialize)]
struct GoSessionJson {
    service: String,
    calls: Vec<GoCallJson>,
    client_to_server_writes_hex: Vec<String>,
    server_to_client_writes_hex: Vec<String>,
}

#[derive(Deserialize)]
struct GoCallJson {
    method: String,
    args: String,
    result: String,
}

struct GoCall {
    method: String,
    args: (TypeId, Value),
    /// The typed call, or the error kind the server answers with.
    typed: Result<Call, &'static str>,
    /// `Ok(None)`: an empty struct; `Ok(Some(json))`: a `[]byte`; `Err(text)`: an error.
    result: Result<Option<Vec<u8>>, String>,
}

/// One direction of a session: its bytes and its gob messages, each with its own bytes.
struct Direction {
    messages: Vec<(Vec<u8>, Message)>,
}

struct GoSession {
    services: &'static [&'static str],
    /// Whether Go gave the types the ids of GOB-8 (65 Request, 66 Response, 67 struct{}) in
    /// both directions; Go numbers them in the order its process first uses them, so one
    /// session has another order (GOB-6).
    gob8: bool,
    calls: Vec<GoCall>,
    to_server: Direction,
    to_client: Direction,
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Cuts a gob stream into its messages, as bytes.
fn message_bytes(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (len, n) = gob::read_uint(rest).unwrap();
        let end = n + len as usize;
        out.push(rest[..end].to_vec());
        rest = &rest[end..];
    }
    out
}

fn direction(writes: &[String]) -> Direction {
    let bytes: Vec<u8> = writes.iter().flat_map(|h| hex(h)).collect();
    let mut decoder = Decoder::new();
    let messages = message_bytes(&bytes)
        .into_iter()
        .map(|m| {
            decoder.push(&m);
            let message = decoder.next_message().unwrap().unwrap();
            assert_eq!(decoder.buffered(), 0);
            (m, message)
        })
        .collect();
    Direction { messages }
}

fn concat(d: &Direction) -> Vec<u8> {
    d.messages.iter().flat_map(|(b, _)| b.clone()).collect()
}

fn go() -> &'static [GoSession] {
    static GO: OnceLock<Vec<GoSession>> = OnceLock::new();
    GO.get_or_init(|| {
        let file: GoFile =
            serde_json::from_str(include_str!("../../spec/vectors/rpc-go-sessions.json")).unwrap();
        let sessions: Vec<GoSession> = file.netrpc_sessions.iter().map(load).collect();
        for s in &sessions {
            check_go_session(s);
        }
        assert!(sessions.iter().any(|s| s.gob8) && sessions.iter().any(|s| !s.gob8));
        sessions
    })
}

fn load(s: &GoSessionJson) -> GoSession {
    let services: &'static [&'static str] = match s.service.as_str() {
        "LocalHooks" => &[HOOKS_SERVICE],
        "LocalAPI" => &[API_SERVICE],
        other => panic!("unknown service {other}"),
    };
    let calls = s
        .calls
        .iter()
        .map(|c| {
            let args = match c.args.strip_prefix("int64 ") {
                Some(n) => (ids::INT, Value::Int(n.parse().unwrap())),
                None => {
                    assert_eq!(c.args, "struct{}{}");
                    (rpc_ids::EMPTY_STRUCT, Value::empty_struct())
                }
            };
            let typed = match (c.method.as_str(), &args.1) {
                (ON_ACTIVATE, Value::Int(i)) => Ok(Call::OnActivate { api_stream: *i }),
                (ON_DEACTIVATE, _) => Ok(Call::OnDeactivate),
                (LOAD_PLUGIN_CONFIGURATION, _) => Ok(Call::LoadPluginConfiguration),
                _ => Err("unknown_method"),
            };
            let result = if c.result == "ok" {
                Ok(None)
            } else if let Some(json) = c.result.strip_prefix("ok: ") {
                Ok(Some(json.as_bytes().to_vec()))
            } else {
                Err(c.result.strip_prefix("error: ").unwrap().to_string())
            };
            GoCall {
                method: c.method.clone(),
                args,
                typed,
                result,
            }
        })
        .collect();
    let to_server = direction(&s.client_to_server_writes_hex);
    let to_client = direction(&s.server_to_client_writes_hex);
    let net_rpc = TypeRegistry::net_rpc();
    let gob8 = to_server
        .messages
        .iter()
        .chain(&to_client.messages)
        .all(|(_, m)| match m {
            Message::Definition { id, ty } => net_rpc.get(*id) == Some(ty),
            Message::Value { .. } => true,
        });
    GoSession {
        services,
        gob8,
        calls,
        to_server,
        to_client,
    }
}

/// The Go sessions are the ground truth: they decode to the listed calls and results, and the
/// same calls and results encode to Go's bytes.
fn check_go_session(s: &GoSession) {
    let to_server = concat(&s.to_server);
    let to_client = concat(&s.to_client);
    for pieces in [vec![&to_server[..]], to_server.chunks(1).collect()] {
        let mut server = ServerCodec::new();
        let mut requests = Vec::new();
        for p in pieces {
            server.push(p);
            while let Some(r) = server.next_request().unwrap() {
                requests.push(r);
            }
        }
        server.finish().unwrap();
        assert_eq!(requests.len(), s.calls.len());
        for (i, (r, c)) in requests.iter().zip(&s.calls).enumerate() {
            assert_eq!(r.header.service_method, c.method);
            assert_eq!(r.header.seq, i as u64);
            if s.gob8 || matches!(c.args.1, Value::Int(_)) {
                assert_eq!(r.args_type, c.args.0);
            }
            assert_eq!(r.args, c.args.1);
            let typed = Call::from_request(s.services, &c.method, &r.args);
            assert_eq!(
                typed.as_ref().map_err(CallError::kind),
                c.typed.as_ref().map_err(|e| *e)
            );
        }
    }
    let mut client: ClientCodec<usize> = ClientCodec::new();
    let mut wire = Vec::new();
    for (i, c) in s.calls.iter().enumerate() {
        let seq = client.call(&c.method, (c.args.0, &c.args.1), i, &mut wire);
        assert_eq!(seq, Ok(i as u64));
    }
    // The reference encoder uses GOB-8's ids: Go's bytes exactly where Go did too.
    if s.gob8 {
        assert_eq!(wire, to_server, "the Go calls do not encode to Go's bytes");
    }
    let mut server = ServerCodec::new();
    let mut wire = Vec::new();
    for (i, c) in s.calls.iter().enumerate() {
        let request = RequestHeader {
            service_method: c.method.clone(),
            seq: i as u64,
        };
        let reply = match &c.result {
            Ok(None) => Ok(Reply::Empty),
            Ok(Some(json)) => Ok(Reply::Configuration(json.clone())),
            Err(text) => Err(text.as_str()),
        };
        server
            .respond_typed(&request, reply.as_ref().map_err(|e| *e), &mut wire)
            .unwrap();
    }
    if s.gob8 {
        assert_eq!(
            wire, to_client,
            "the Go replies do not encode to Go's bytes"
        );
    }
    for pieces in [vec![&to_client[..]], to_client.chunks(1).collect()] {
        let mut client: ClientCodec<usize> = ClientCodec::new();
        for (i, c) in s.calls.iter().enumerate() {
            client
                .call(&c.method, (c.args.0, &c.args.1), i, &mut Vec::new())
                .unwrap();
        }
        let mut n = 0;
        for p in pieces {
            client.push(p);
            while let Some(r) = client.next_response().unwrap() {
                let c = &s.calls[n];
                assert_eq!(r.call, Some(n));
                assert_eq!(r.header.service_method, c.method);
                assert_eq!(r.header.seq, n as u64);
                match &c.result {
                    Ok(None) => assert_eq!(r.body, Value::empty_struct()),
                    Ok(Some(json)) => assert_eq!(r.body, Value::Bytes(json.clone())),
                    Err(text) => {
                        assert_eq!(&r.header.error, text);
                        assert_eq!(r.body, Value::empty_struct());
                    }
                }
                if let (Ok(call), Ok(result)) = (&c.typed, &c.result) {
                    let want = match result {
                        None => Reply::Empty,
                        Some(json) => Reply::Configuration(json.clone()),
                    };
                    assert_eq!(Reply::for_call(call, &r.body), Ok(want));
                }
                n += 1;
            }
        }
        client.finish().unwrap();
        assert_eq!(n, s.calls.len());
        assert!(client.pending().is_empty());
    }
}

// ---------------------------------------------------------------------------------------------
// The input.

#[derive(Debug, Arbitrary)]
enum Base {
    /// No base: only the edits and the tail. `to_server`: the stream a server reads.
    Raw { to_server: bool },
    /// One direction of a Go session (`session`: its index, modulo the number of sessions).
    Go { session: u8, to_server: bool },
}

/// A type reference: 1 to 8 (the predefined ids and interface) or 64 to 191.
fn type_ref(x: u8) -> TypeId {
    if x < 128 {
        1 + TypeId::from(x % 8)
    } else {
        64 + TypeId::from(x - 128)
    }
}

#[derive(Debug, Arbitrary)]
enum Ty<'a> {
    Struct {
        name: &'a [u8],
        fields: Vec<(&'a [u8], u8)>,
    },
    Slice {
        name: &'a [u8],
        elem: u8,
    },
    Array {
        name: &'a [u8],
        elem: u8,
        len: u8,
    },
    Map {
        name: &'a [u8],
        key: u8,
        elem: u8,
    },
    Encoder {
        name: &'a [u8],
        kind: u8,
    },
}

#[derive(Debug, Arbitrary)]
enum Method<'a> {
    OnActivate,
    OnDeactivate,
    LoadPluginConfiguration,
    Other(&'a [u8]),
}

#[derive(Debug, Arbitrary)]
enum Body<'a> {
    Int(i64),
    Uint(u64),
    Bool(bool),
    Empty,
    Bytes(&'a [u8]),
    String(&'a [u8]),
}

#[derive(Debug, Arbitrary)]
enum What<'a> {
    /// A well-formed definition of id `60 + id` whose CommonType says `common_id`.
    Definition { id: u8, common_id: i16, ty: Ty<'a> },
    /// The definitions the codec's encoder sends for this side's header type and `struct{}`.
    NetRpcDefinitions,
    /// A request (to a server) or a response (to a client), with Go's type ids.
    Envelope {
        method: Method<'a>,
        seq: u64,
        error: &'a [u8],
        body: Body<'a>,
    },
    /// Raw bytes: nothing after them is predicted.
    Raw(&'a [u8]),
}

#[derive(Debug, Arbitrary)]
struct Insert<'a> {
    /// The message boundary of the base to insert at (modulo the number of boundaries).
    at: u8,
    what: What<'a>,
}

#[derive(Debug, Arbitrary)]
enum CallChoice {
    OnActivate(i64),
    OnDeactivate,
    LoadPluginConfiguration,
}

impl CallChoice {
    fn call(&self) -> Call {
        match self {
            CallChoice::OnActivate(i) => Call::OnActivate { api_stream: *i },
            CallChoice::OnDeactivate => Call::OnDeactivate,
            CallChoice::LoadPluginConfiguration => Call::LoadPluginConfiguration,
        }
    }
}

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    base: Base,
    /// `Some(x)`: a message limit of `16 + x` bytes and a depth limit of `x % 4` levels;
    /// `None`: the default limits.
    limits: Option<u8>,
    /// Where to cut the stream into reads.
    cuts: Vec<u16>,
    /// The calls a client reading a raw-based stream has made first.
    calls: Vec<CallChoice>,
    edits: Vec<Insert<'a>>,
    tail: &'a [u8],
}

// ---------------------------------------------------------------------------------------------
// Building the stream and predicting its messages.

/// What a piece of the stream is, for the model.
enum Model {
    Definition {
        id: TypeId,
        ty: WireType,
    },
    /// A value encoded with the net/rpc meaning of its type id.
    Value {
        id: TypeId,
        value: Value,
    },
    Raw,
}

struct Piece {
    bytes: Vec<u8>,
    model: Model,
}

fn field_number(out: &mut Vec<u8>, last: &mut i64, n: i64) {
    gob::put_uint((n - *last) as u64, out);
    *last = n;
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    gob::put_uint(b.len() as u64, out);
    out.extend_from_slice(b);
}

/// A definition message written from `spec/05-rpc.md`, independently of the codec's encoder,
/// and the type the decoder must record.
fn definition(id: TypeId, common_id: i64, ty: &Ty<'_>) -> Piece {
    let (name, kind) = match ty {
        Ty::Array { name, .. } => (name, 0),
        Ty::Slice { name, .. } => (name, 1),
        Ty::Struct { name, .. } => (name, 2),
        Ty::Map { name, .. } => (name, 3),
        Ty::Encoder { name, kind } => (name, 4 + i64::from(kind % 3)),
    };
    let type_name = String::from_utf8_lossy(name).into_owned();
    let mut body = Vec::new();
    gob::put_int(-id, &mut body);
    let mut last = -1;
    field_number(&mut body, &mut last, kind);
    let mut inner = -1;
    // CommonType { Name, Id }: zero fields omitted.
    field_number(&mut body, &mut inner, 0);
    let mut common = -1;
    if !name.is_empty() {
        field_number(&mut body, &mut common, 0);
        put_bytes(&mut body, name);
    }
    if common_id != 0 {
        field_number(&mut body, &mut common, 1);
        gob::put_int(common_id, &mut body);
    }
    body.push(0);
    let wire_type = match ty {
        Ty::Array { elem, len, .. } => {
            field_number(&mut body, &mut inner, 1);
            gob::put_int(type_ref(*elem), &mut body);
            if *len != 0 {
                field_number(&mut body, &mut inner, 2);
                gob::put_int(i64::from(*len), &mut body);
            }
            WireType::Array {
                name: type_name,
                elem: type_ref(*elem),
                len: i64::from(*len),
            }
        }
        Ty::Slice { elem, .. } => {
            field_number(&mut body, &mut inner, 1);
            gob::put_int(type_ref(*elem), &mut body);
            WireType::Slice {
                name: type_name,
                elem: type_ref(*elem),
            }
        }
        Ty::Struct { fields, .. } => {
            // Field names must be non-empty and distinct (GOB-10): make them so.
            let mut seen = HashSet::new();
            let mut defs = Vec::new();
            for (i, (raw, t)) in fields.iter().enumerate() {
                let mut fname = String::from_utf8_lossy(raw).into_owned();
                let mut raw = raw.to_vec();
                if fname.is_empty() || seen.contains(&fname) {
                    fname = format!("F{i}");
                    while seen.contains(&fname) {
                        fname.push('_');
                    }
                    raw = fname.clone().into_bytes();
                }
                seen.insert(fname.clone());
                defs.push((raw, FieldDef::new(&fname, type_ref(*t))));
            }
            if !defs.is_empty() {
                field_number(&mut body, &mut inner, 1);
                gob::put_uint(defs.len() as u64, &mut body);
                for (raw, f) in &defs {
                    let mut fl = -1;
                    field_number(&mut body, &mut fl, 0);
                    put_bytes(&mut body, raw);
                    field_number(&mut body, &mut fl, 1);
                    gob::put_int(f.id, &mut body);
                    body.push(0);
                }
            }
            WireType::Struct {
                name: type_name,
                fields: defs.into_iter().map(|(_, f)| f).collect(),
            }
        }
        Ty::Map { key, elem, .. } => {
            field_number(&mut body, &mut inner, 1);
            gob::put_int(type_ref(*key), &mut body);
            field_number(&mut body, &mut inner, 2);
            gob::put_int(type_ref(*elem), &mut body);
            WireType::Map {
                name: type_name,
                key: type_ref(*key),
                elem: type_ref(*elem),
            }
        }
        Ty::Encoder { kind, .. } => WireType::Encoder {
            name: type_name,
            kind: [EncoderKind::Gob, EncoderKind::Binary, EncoderKind::Text][usize::from(kind % 3)],
        },
    };
    body.push(0); // the end of the kind's struct
    body.push(0); // the end of the wireType
    let mut bytes = Vec::new();
    put_bytes(&mut bytes, &body);
    Piece {
        bytes,
        model: Model::Definition { id, ty: wire_type },
    }
}

/// The messages the codec's encoder (with Go's net/rpc ids) writes for `value` of type `id`:
/// its definitions first when `with_definitions`, then the value.
fn encoded(id: TypeId, value: &Value, with_definitions: bool) -> Vec<Piece> {
    let mut wire = Vec::new();
    gob::Encoder::new(TypeRegistry::net_rpc())
        .encode(id, value, &mut wire)
        .unwrap();
    let registry = TypeRegistry::net_rpc();
    let mut out = Vec::new();
    for bytes in message_bytes(&wire) {
        let (len, n) = gob::read_uint(&bytes).unwrap();
        assert_eq!(n + len as usize, bytes.len());
        let (type_id, _) = gob::read_int(&bytes[n..]).unwrap();
        if type_id < 0 {
            if with_definitions {
                let ty = registry.get(-type_id).unwrap().clone();
                out.push(Piece {
                    bytes,
                    model: Model::Definition { id: -type_id, ty },
                });
            }
        } else {
            assert_eq!(type_id, id);
            out.push(Piece {
                bytes,
                model: Model::Value {
                    id,
                    value: normalize(value),
                },
            });
        }
    }
    out
}

fn method_name(m: &Method<'_>) -> Vec<u8> {
    match m {
        Method::OnActivate => ON_ACTIVATE.as_bytes().to_vec(),
        Method::OnDeactivate => ON_DEACTIVATE.as_bytes().to_vec(),
        Method::LoadPluginConfiguration => LOAD_PLUGIN_CONFIGURATION.as_bytes().to_vec(),
        Method::Other(b) => b.to_vec(),
    }
}

fn body_value(b: &Body<'_>) -> (TypeId, Value) {
    match b {
        Body::Int(i) => (ids::INT, Value::Int(*i)),
        Body::Uint(u) => (ids::UINT, Value::Uint(*u)),
        Body::Bool(v) => (ids::BOOL, Value::Bool(*v)),
        Body::Empty => (rpc_ids::EMPTY_STRUCT, Value::empty_struct()),
        Body::Bytes(b) => (ids::BYTES, Value::Bytes(b.to_vec())),
        Body::String(s) => (ids::STRING, Value::String(s.to_vec())),
    }
}

fn field(name: &str, value: Value) -> gob::Field {
    gob::Field {
        name: name.into(),
        value,
    }
}

fn envelope(
    to_server: bool,
    method: &Method<'_>,
    seq: u64,
    error: &[u8],
    body: &Body<'_>,
) -> Vec<Piece> {
    let method = Value::String(method_name(method));
    let (header_id, header) = if to_server {
        (
            rpc_ids::REQUEST,
            Value::Struct {
                name: "Request".into(),
                fields: vec![
                    field("ServiceMethod", method),
                    field("Seq", Value::Uint(seq)),
                ],
            },
        )
    } else {
        (
            rpc_ids::RESPONSE,
            Value::Struct {
                name: "Response".into(),
                fields: vec![
                    field("ServiceMethod", method),
                    field("Seq", Value::Uint(seq)),
                    field("Error", Value::String(error.to_vec())),
                ],
            },
        )
    };
    let (id, value) = body_value(body);
    let mut out = encoded(header_id, &header, false);
    out.extend(encoded(id, &value, false));
    out
}

/// The definitions the codec's encoder sends for this side's header type and `struct{}`.
fn net_rpc_definitions(to_server: bool) -> Vec<Piece> {
    let header = if to_server {
        rpc_ids::REQUEST
    } else {
        rpc_ids::RESPONSE
    };
    let mut out = Vec::new();
    for id in [header, rpc_ids::EMPTY_STRUCT] {
        let zero = Value::Struct {
            name: String::new(),
            fields: Vec::new(),
        };
        out.extend(
            encoded(id, &zero, true)
                .into_iter()
                .filter(|p| matches!(p.model, Model::Definition { .. })),
        );
    }
    out
}

/// The messages a decoder must give for the pieces, and its error; `complete` is false when
/// raw bytes make the rest unpredictable.
struct Prediction {
    messages: Vec<Message>,
    error: Option<GobError>,
    complete: bool,
}

fn predict(pieces: &[Piece], limits: DecodeLimits) -> Prediction {
    let net_rpc = TypeRegistry::net_rpc();
    let mut defined: HashMap<TypeId, WireType> = HashMap::new();
    let mut messages = Vec::new();
    let stop = |messages, error| Prediction {
        messages,
        error: Some(error),
        complete: true,
    };
    for p in pieces {
        let len = match p.model {
            Model::Raw => 0,
            _ => gob::read_uint(&p.bytes).unwrap().0,
        };
        if len > limits.max_message as u64 {
            return stop(
                messages,
                GobError::MessageTooLarge {
                    len,
                    max: limits.max_message,
                },
            );
        }
        match &p.model {
            Model::Raw => {
                return Prediction {
                    messages,
                    error: None,
                    complete: false,
                }
            }
            Model::Definition { id, ty } => {
                if *id < ids::FIRST_USER || defined.contains_key(id) {
                    return stop(messages, GobError::DuplicateType { id: *id });
                }
                defined.insert(*id, ty.clone());
                messages.push(Message::Definition {
                    id: *id,
                    ty: ty.clone(),
                });
            }
            Model::Value { id, value } => {
                if *id > ids::INTERFACE {
                    match defined.get(id) {
                        None => return stop(messages, GobError::UndefinedType { id: *id }),
                        // Another type under this id: the value means something else.
                        Some(t) if Some(t) != net_rpc.get(*id) => {
                            return Prediction {
                                messages,
                                error: None,
                                complete: false,
                            }
                        }
                        Some(_) => {}
                    }
                }
                if depth(value) > limits.max_depth {
                    return stop(
                        messages,
                        GobError::TooDeep {
                            max: limits.max_depth,
                        },
                    );
                }
                messages.push(Message::Value {
                    id: *id,
                    value: value.clone(),
                });
            }
        }
    }
    Prediction {
        messages,
        error: None,
        complete: true,
    }
}

/// The plain gob decoder's messages and error (including the end of the stream).
fn plain(limits: DecodeLimits, stream: &[u8]) -> (Vec<Message>, Option<GobError>) {
    let mut d = Decoder::with_limits(limits);
    d.push(stream);
    let mut messages = Vec::new();
    loop {
        match d.next_message() {
            Ok(Some(m)) => messages.push(m),
            Ok(None) => return (messages, d.finish().err()),
            Err(e) => return (messages, Some(e)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The envelope.

trait Header: Sized + PartialEq + std::fmt::Debug {
    fn parse(v: &Value) -> Result<Self, RpcError>;
    fn seq(&self) -> u64;
}

impl Header for RequestHeader {
    fn parse(v: &Value) -> Result<Self, RpcError> {
        RequestHeader::from_value(v)
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

impl Header for ResponseHeader {
    fn parse(v: &Value) -> Result<Self, RpcError> {
        ResponseHeader::from_value(v)
    }
    fn seq(&self) -> u64 {
        self.seq
    }
}

/// Header and body pairs of the plain decoder's values, and the error the envelope reader must
/// end with.
fn envelopes<H: Header>(
    messages: &[Message],
    error: &Option<GobError>,
) -> (Vec<(H, TypeId, Value)>, Option<RpcError>) {
    let values: Vec<(TypeId, &Value)> = messages
        .iter()
        .filter_map(|m| match m {
            Message::Value { id, value } => Some((*id, value)),
            Message::Definition { .. } => None,
        })
        .collect();
    let mut out = Vec::new();
    let mut pending = None;
    for (id, value) in values {
        match pending.take() {
            None => match H::parse(value) {
                Ok(h) => pending = Some(h),
                Err(e) => return (out, Some(e)),
            },
            Some(h) => out.push((h, id, value.clone())),
        }
    }
    let end = match (error, pending) {
        (Some(e), _) => Some(RpcError::Gob(e.clone())),
        (None, Some(h)) => Some(RpcError::MissingBody { seq: h.seq() }),
        (None, None) => None,
    };
    (out, end)
}

/// Pushes `pieces` and collects what `next` gives until the first error, checking that the
/// error is final; then the end of the stream.
fn drive<C, T>(
    codec: &mut C,
    pieces: &[&[u8]],
    push: impl Fn(&mut C, &[u8]),
    next: impl Fn(&mut C) -> Result<Option<T>, RpcError>,
    finish: impl Fn(&mut C) -> Result<(), RpcError>,
) -> (Vec<T>, Option<RpcError>) {
    let mut out = Vec::new();
    for p in pieces {
        push(codec, p);
        loop {
            match next(codec) {
                Ok(Some(x)) => out.push(x),
                Ok(None) => break,
                Err(e) => {
                    assert!(
                        next(codec).err() == Some(e.clone()),
                        "an error that is not final: {e:?}"
                    );
                    push(codec, b"\x03\x04\x00\x02");
                    assert!(
                        next(codec).err() == Some(e.clone()),
                        "an error that is not final: {e:?}"
                    );
                    assert_eq!(finish(codec), Err(e.clone()), "finish after {e:?}");
                    return (out, Some(e));
                }
            }
        }
    }
    let end = finish(codec).err();
    if let Some(e) = &end {
        assert_eq!(finish(codec).as_ref(), Err(e));
    }
    (out, end)
}

/// The type id the net/rpc encoder may send a value as.
fn net_rpc_type(v: &Value) -> Option<TypeId> {
    Some(match v {
        Value::Bool(_) => ids::BOOL,
        Value::Int(_) => ids::INT,
        Value::Uint(_) => ids::UINT,
        Value::Float(_) => ids::FLOAT,
        Value::Complex(..) => ids::COMPLEX,
        Value::Bytes(_) => ids::BYTES,
        Value::String(_) => ids::STRING,
        // A struct of one of the net/rpc types, by name (the encoder checks its fields).
        Value::Struct { name, .. } => match name.as_str() {
            "Request" => rpc_ids::REQUEST,
            "Response" => rpc_ids::RESPONSE,
            "" => rpc_ids::EMPTY_STRUCT,
            _ => return None,
        },
        _ => return None,
    })
}

// ---------------------------------------------------------------------------------------------
// Typed calls.

/// What `Call::from_request` must give, from the spec's Table 5-9.
fn expected_call(services: &[&str], method: &str, args: &Value) -> Result<Call, &'static str> {
    let Some((service, name)) = method.rsplit_once('.') else {
        return Err("ill_formed_service_method");
    };
    if !services.contains(&service) {
        return Err("unknown_service");
    }
    let is_struct = matches!(args, Value::Struct { .. });
    match (service, name, args) {
        (HOOKS_SERVICE, "OnActivate", Value::Int(i)) => Ok(Call::OnActivate { api_stream: *i }),
        (HOOKS_SERVICE, "OnDeactivate", _) if is_struct => Ok(Call::OnDeactivate),
        (API_SERVICE, "LoadPluginConfiguration", _) if is_struct => {
            Ok(Call::LoadPluginConfiguration)
        }
        (HOOKS_SERVICE, "OnActivate" | "OnDeactivate", _)
        | (API_SERVICE, "LoadPluginConfiguration", _) => Err("argument_type_mismatch"),
        _ => Err("unknown_method"),
    }
}

fn check_typed_call(services: &[&str], method: &str, args: &Value) {
    let got = Call::from_request(services, method, args);
    let want = expected_call(services, method, args);
    assert_eq!(
        got.as_ref().map_err(CallError::kind),
        want.as_ref().map_err(|e| *e),
        "{method:?} {args:?}"
    );
    match &got {
        Ok(call) => {
            assert_eq!(call.service_method(), method);
            // A typed call encodes to a request that decodes to the same call.
            let mut client: ClientCodec<Call> = ClientCodec::new();
            let mut wire = Vec::new();
            assert_eq!(client.call_typed(call.clone(), &mut wire), Ok(0));
            let mut server = ServerCodec::new();
            server.push(&wire);
            let r = server.next_request().unwrap().unwrap();
            server.finish().unwrap();
            assert_eq!(r.header.service_method, method);
            assert_eq!(
                Call::from_request(services, method, &r.args).as_ref(),
                Ok(call)
            );
            assert_eq!(client.pending().len(), 1);
        }
        // Go's texts (RPC-9).
        Err(e @ CallError::IllFormed(_)) => {
            assert_eq!(
                e.to_string(),
                format!("rpc: service/method request ill-formed: {method}")
            )
        }
        Err(e @ CallError::UnknownService(_)) => {
            assert_eq!(e.to_string(), format!("rpc: can't find service {method}"))
        }
        Err(e @ CallError::UnknownMethod(_)) => {
            assert_eq!(e.to_string(), format!("rpc: can't find method {method}"))
        }
        Err(_) => {}
    }
}

fn check_typed_reply(call: &Call, body: &Value) {
    let got = Reply::for_call(call, body);
    let want = match (call, body) {
        (Call::LoadPluginConfiguration, Value::Bytes(b)) => Some(Reply::Configuration(b.clone())),
        (Call::LoadPluginConfiguration, _) => None,
        (_, Value::Struct { .. }) => Some(Reply::Empty),
        _ => None,
    };
    assert_eq!(got.as_ref().ok(), want.as_ref(), "{call:?} {body:?}");
    if let Ok(reply) = got {
        // A typed reply encodes to a response that decodes to the same reply.
        let header = RequestHeader {
            service_method: call.service_method().into(),
            seq: 7,
        };
        let mut wire = Vec::new();
        ServerCodec::new()
            .respond_typed(&header, Ok(&reply), &mut wire)
            .unwrap();
        let mut client: ClientCodec<()> = ClientCodec::new();
        client.push(&wire);
        let r = client.next_response().unwrap().unwrap();
        assert_eq!(r.header.error, "");
        assert_eq!(Reply::for_call(call, &r.body), Ok(reply));
    }
}

// ---------------------------------------------------------------------------------------------
// The two sides.

fn server_side(
    services: &[&str],
    stream: &[u8],
    pieces: &[&[u8]],
    limits: DecodeLimits,
    messages: &[Message],
    error: &Option<GobError>,
    go_calls: Option<&[GoCall]>,
) {
    let (want, want_end) = envelopes::<RequestHeader>(messages, error);
    let mut server = ServerCodec::with_decoder(Decoder::with_limits(limits));
    let (got, end) = drive(
        &mut server,
        pieces,
        ServerCodec::push,
        ServerCodec::next_request,
        ServerCodec::finish,
    );
    assert_eq!(end, want_end, "{} bytes", stream.len());
    assert_eq!(got.len(), want.len());
    for (r, (h, id, v)) in got.iter().zip(&want) {
        assert_eq!(&r.header, h);
        assert_eq!(r.args_type, *id);
        assert!(same_value(&r.args, v));
    }
    if let Some(calls) = go_calls {
        // The unmutated Go session.
        assert_eq!(end, None);
        assert_eq!(got.len(), calls.len());
        for (i, (r, c)) in got.iter().zip(calls).enumerate() {
            assert_eq!(
                (r.header.service_method.as_str(), r.header.seq),
                (c.method.as_str(), i as u64)
            );
        }
    }

    let mut table = CallTable::new();
    let mut model = BTreeMap::new();
    for (i, r) in got.iter().enumerate() {
        let seq = r.header.seq;
        let fresh = !model.contains_key(&seq);
        assert_eq!(table.insert(seq, i), fresh);
        model.entry(seq).or_insert(i);
        assert_eq!(table.len(), model.len());
        check_typed_call(services, &r.header.service_method, &r.args);

        // A request re-encodes to bytes that decode to the same request.
        if let Some(id) = net_rpc_type(&r.args) {
            let header = Value::Struct {
                name: "Request".into(),
                fields: vec![
                    field("ServiceMethod", Value::string(&r.header.service_method)),
                    field("Seq", Value::Uint(seq)),
                ],
            };
            let mut enc = gob::Encoder::new(TypeRegistry::net_rpc());
            let mut wire = Vec::new();
            enc.encode(rpc_ids::REQUEST, &header, &mut wire).unwrap();
            if enc.encode(id, &r.args, &mut wire).is_err() {
                // A struct with fields the net/rpc type of its name does not have.
                assert!(matches!(r.args, Value::Struct { .. }));
                continue;
            }
            let mut again = ServerCodec::new();
            again.push(&wire);
            let r2 = again.next_request().unwrap().unwrap();
            again.finish().unwrap();
            assert_eq!(r2.header, r.header);
            assert_eq!(r2.args_type, id);
            assert!(
                same_value(&r2.args, &normalize(&r.args)),
                "{:?} -> {:?}",
                r.args,
                r2.args
            );
        }
    }
    if let Some(r) = got.first() {
        assert_eq!(table.complete(r.header.seq), model.remove(&r.header.seq));
        assert_eq!(table.complete(r.header.seq), None);
    }
    assert_eq!(table.is_empty(), model.is_empty());
    assert_eq!(table.drain(), model.into_iter().collect::<Vec<_>>());
    assert!(table.is_empty());
}

#[allow(clippy::too_many_arguments)]
fn client_side(
    calls: Vec<(String, (TypeId, Value), Option<Call>)>,
    pieces: &[&[u8]],
    limits: DecodeLimits,
    messages: &[Message],
    error: &Option<GobError>,
    unmutated_go: bool,
) {
    let (want, want_end) = envelopes::<ResponseHeader>(messages, error);
    let mut client: ClientCodec<Option<Call>> =
        ClientCodec::with_decoder(Decoder::with_limits(limits));
    let mut pending = BTreeMap::new();
    for (i, (method, (id, args), typed)) in calls.into_iter().enumerate() {
        let seq = client.call(&method, (id, &args), typed.clone(), &mut Vec::new());
        assert_eq!(seq, Ok(i as u64), "RPC-4");
        pending.insert(i as u64, typed);
    }
    let (got, end) = drive(
        &mut client,
        pieces,
        ClientCodec::push,
        ClientCodec::next_response,
        ClientCodec::finish,
    );
    assert_eq!(end, want_end);
    assert_eq!(got.len(), want.len());
    for (r, (h, _, body)) in got.iter().zip(&want) {
        assert_eq!(&r.header, h);
        assert!(same_value(&r.body, body));
        // RPC-6: matched by Seq alone, taken out of the table.
        assert_eq!(r.call, pending.remove(&h.seq), "Seq {}", h.seq);
    }
    assert_eq!(client.pending().len(), pending.len());
    assert_eq!(
        client.fail_pending(),
        pending.into_iter().collect::<Vec<_>>()
    );
    assert!(client.pending().is_empty());
    if unmutated_go {
        assert_eq!(end, None);
        assert!(got.iter().all(|r| r.call.is_some()));
    }

    for r in &got {
        if let Some(Some(call)) = &r.call {
            check_typed_reply(call, &r.body);
        }
        // A response re-encodes to bytes that decode to the same response.
        let request = RequestHeader {
            service_method: r.header.service_method.clone(),
            seq: r.header.seq,
        };
        let mut wire = Vec::new();
        let body = if r.header.error.is_empty() {
            let Some(id) = net_rpc_type(&r.body) else {
                continue;
            };
            if ServerCodec::new()
                .respond(&request, Ok((id, &r.body)), &mut wire)
                .is_err()
            {
                // A struct with fields the net/rpc type of its name does not have.
                assert!(matches!(r.body, Value::Struct { .. }));
                continue;
            }
            normalize(&r.body)
        } else {
            ServerCodec::new()
                .respond(&request, Err(r.header.error.as_str()), &mut wire)
                .unwrap();
            Value::empty_struct()
        };
        let mut again: ClientCodec<()> = ClientCodec::new();
        again.push(&wire);
        let r2 = again.next_response().unwrap().unwrap();
        again.finish().unwrap();
        assert_eq!(r2.header, r.header);
        assert_eq!(r2.call, None);
        assert!(same_value(&r2.body, &body), "{body:?} -> {:?}", r2.body);
    }
}

fuzz_target!(|input: Input<'_>| {
    let go = go();
    let (to_server, session) = match input.base {
        Base::Raw { to_server } => (to_server, None),
        Base::Go { session, to_server } => (to_server, Some(&go[usize::from(session) % go.len()])),
    };
    let limits = match input.limits {
        None => DecodeLimits::default(),
        Some(x) => DecodeLimits {
            max_message: 16 + usize::from(x),
            max_depth: usize::from(x % 4),
        },
    };
    let base: &[(Vec<u8>, Message)] = match session {
        None => &[],
        Some(s) if to_server => &s.to_server.messages,
        Some(s) => &s.to_client.messages,
    };

    // The stream: the base's messages with the edits at their boundaries, then the tail.
    let mut edits: Vec<(usize, &What<'_>)> = input
        .edits
        .iter()
        .map(|e| (usize::from(e.at) % (base.len() + 1), &e.what))
        .collect();
    edits.sort_by_key(|(at, _)| *at);
    let mut edits = edits.into_iter().peekable();
    let mut pieces = Vec::new();
    for i in 0..=base.len() {
        while let Some((_, what)) = edits.next_if(|(at, _)| *at == i) {
            match what {
                What::Definition { id, common_id, ty } => pieces.push(definition(
                    60 + TypeId::from(*id),
                    i64::from(*common_id),
                    ty,
                )),
                What::NetRpcDefinitions => pieces.extend(net_rpc_definitions(to_server)),
                What::Envelope {
                    method,
                    seq,
                    error,
                    body,
                } => pieces.extend(envelope(to_server, method, *seq, error, body)),
                What::Raw(bytes) => pieces.push(Piece {
                    bytes: bytes.to_vec(),
                    model: Model::Raw,
                }),
            }
        }
        if let Some((bytes, m)) = base.get(i) {
            let model = match m {
                Message::Definition { id, ty } => Model::Definition {
                    id: *id,
                    ty: ty.clone(),
                },
                Message::Value { id, value } => Model::Value {
                    id: *id,
                    value: value.clone(),
                },
            };
            pieces.push(Piece {
                bytes: bytes.clone(),
                model,
            });
        }
    }
    if !input.tail.is_empty() {
        pieces.push(Piece {
            bytes: input.tail.to_vec(),
            model: Model::Raw,
        });
    }
    let pieces: Vec<Piece> = pieces.into_iter().filter(|p| !p.bytes.is_empty()).collect();
    let stream: Vec<u8> = pieces.iter().flat_map(|p| p.bytes.clone()).collect();
    let unmutated = session.is_some()
        && input.edits.is_empty()
        && input.tail.is_empty()
        && limits == DecodeLimits::default();

    // The plain decoder gives the predicted messages.
    let prediction = predict(&pieces, limits);
    let (messages, error) = plain(limits, &stream);
    if prediction.complete {
        assert!(
            same_messages(&messages, &prediction.messages),
            "messages differ from the prediction:\n{messages:?}\n{:?}",
            prediction.messages
        );
        assert_eq!(error, prediction.error);
    } else {
        let n = prediction.messages.len();
        assert!(
            messages.len() >= n,
            "{} of {n} predicted messages",
            messages.len()
        );
        assert!(same_messages(&messages[..n], &prediction.messages));
    }

    let reads = split(&stream, &input.cuts);
    if to_server {
        let services: &[&str] = match session {
            Some(s) => s.services,
            None => &[HOOKS_SERVICE, API_SERVICE],
        };
        let go_calls = session.filter(|_| unmutated).map(|s| &s.calls[..]);
        server_side(
            services, &stream, &reads, limits, &messages, &error, go_calls,
        );
    } else {
        let calls = match session {
            Some(s) => s
                .calls
                .iter()
                .map(|c| (c.method.clone(), c.args.clone(), c.typed.clone().ok()))
                .collect(),
            None => input
                .calls
                .iter()
                .map(|c| {
                    let call = c.call();
                    let (id, args) = call.argument();
                    (call.service_method().to_string(), (id, args), Some(call))
                })
                .collect(),
        };
        client_side(calls, &reads, limits, &messages, &error, unmutated);
    }
});
