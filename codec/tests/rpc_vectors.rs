//! The vectors of `spec/vectors/rpc-messages.json` (schema documented in
//! `spec/vectors/README.md`): gob message streams of one direction of an RPC stream, decoded
//! whole, one byte at a time and in fixed splits; valid ones must give the listed calls or
//! replies, invalid ones exactly the listed error kind.

use std::fs;

use rpcplugin_codec::gob::{DecodeLimits, Decoder, Value};
use rpcplugin_codec::rpc::{ClientCodec, RpcError, ServerCodec};
use rpcplugin_test_support::unhex;
use rpcplugin_test_support::vectors::vectors_dir;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    schema: String,
    description: String,
    requirements: Vec<String>,
    tests: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    #[serde(rename = "tcId")]
    tc_id: u32,
    comment: String,
    result: String,
    requirements: Vec<String>,
    side: String,
    #[serde(default)]
    hex: Option<String>,
    #[serde(default)]
    chunks: Option<Vec<String>>,
    #[serde(default)]
    max_message: Option<usize>,
    #[serde(default)]
    max_depth: Option<usize>,
    #[serde(default)]
    calls: Option<Vec<CallSpec>>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    flags: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSpec {
    service_method: String,
    /// The exact bytes of a name that is not valid UTF-8.
    #[serde(default)]
    service_method_hex: Option<String>,
    seq: String,
    #[serde(default)]
    args: Option<Body>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    reply: Option<Body>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default)]
    int: Option<String>,
    #[serde(default)]
    empty_struct: Option<bool>,
    #[serde(default)]
    bytes_len: Option<usize>,
}

/// What a direction decoded to: (service method, seq, error text, body) per call.
type Decoded = (Vec<(String, u64, String, Value)>, Option<RpcError>);

fn decoder(case: &Case) -> Decoder {
    let mut limits = DecodeLimits::default();
    if let Some(m) = case.max_message {
        limits.max_message = m;
    }
    if let Some(d) = case.max_depth {
        limits.max_depth = d;
    }
    Decoder::with_limits(limits)
}

/// The exact `ServiceMethod` bytes of every header in `bytes`, from the plain gob decoder.
fn raw_methods(case: &Case, bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut d = decoder(case);
    d.push(bytes);
    let mut out = Vec::new();
    while let Ok(Some(m)) = d.next_message() {
        if let rpcplugin_codec::gob::Message::Value {
            value: Value::Struct { fields, .. },
            ..
        } = m
        {
            if let Some(f) = fields.iter().find(|f| f.name == "ServiceMethod") {
                if let Value::String(b) = &f.value {
                    out.push(b.clone());
                }
            }
        }
    }
    out
}

fn decode(case: &Case, pieces: &[&[u8]]) -> Decoded {
    let mut out = Vec::new();
    if case.side == "server" {
        let mut s = ServerCodec::with_decoder(decoder(case));
        for p in pieces {
            s.push(p);
            loop {
                match s.next_request() {
                    Ok(Some(r)) => {
                        out.push((r.header.service_method, r.header.seq, String::new(), r.args))
                    }
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, s.finish().err())
    } else {
        let mut c: ClientCodec<()> = ClientCodec::with_decoder(decoder(case));
        for p in pieces {
            c.push(p);
            loop {
                match c.next_response() {
                    Ok(Some(r)) => out.push((
                        r.header.service_method,
                        r.header.seq,
                        r.header.error,
                        r.body,
                    )),
                    Ok(None) => break,
                    Err(e) => return (out, Some(e)),
                }
            }
        }
        (out, c.finish().err())
    }
}

fn expected_body(b: &Body) -> Box<dyn Fn(&Value) -> bool> {
    if let Some(i) = &b.int {
        let i: i64 = i.parse().unwrap();
        return Box::new(move |v| *v == Value::Int(i));
    }
    if let Some(n) = b.bytes_len {
        return Box::new(move |v| matches!(v, Value::Bytes(b) if b.len() == n));
    }
    assert_eq!(b.empty_struct, Some(true));
    Box::new(|v| matches!(v, Value::Struct { fields, .. } if fields.is_empty()))
}

// covers: GOB-2, GOB-4, GOB-5, GOB-6, GOB-9, GOB-10, GOB-11, GOB-13, GOB-14, GOB-15, GOB-17, GOB-20, GOB-21, RPC-2, RPC-3, RPC-5, RPC-6
#[test]
fn rpc_message_vectors() {
    let path = vectors_dir().join("rpc-messages.json");
    let file: File = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(file.schema, "rpc-messages/v2");
    assert!(!file.description.is_empty() && !file.requirements.is_empty());
    for (i, case) in file.tests.iter().enumerate() {
        let name = format!("tcId {} ({})", case.tc_id, case.comment);
        assert_eq!(case.tc_id as usize, i + 1, "tcIds run 1, 2, 3...");
        assert!(!case.requirements.is_empty(), "{name}");
        assert!(["server", "client"].contains(&case.side.as_str()), "{name}");
        let chunks: Vec<Vec<u8>> = match (&case.hex, &case.chunks) {
            (Some(h), None) => vec![unhex(h)],
            (None, Some(c)) => c.iter().map(|h| unhex(h)).collect(),
            _ => panic!("{name}: exactly one of hex and chunks"),
        };
        let bytes: Vec<u8> = chunks.concat();
        let whole = decode(case, &[&bytes]);
        // Every split gives the same result.
        let mut splits: Vec<Vec<&[u8]>> = vec![
            chunks.iter().map(Vec::as_slice).collect(),
            bytes.chunks(7).collect(),
        ];
        if bytes.len() <= 4096 {
            splits.push(bytes.chunks(1).collect());
        }
        for pieces in &splits {
            let got = decode(case, pieces);
            assert_eq!(got.0.len(), whole.0.len(), "{name}: split");
            assert_eq!(got.1, whole.1, "{name}: split");
        }
        match case.result.as_str() {
            "valid" | "acceptable" => {
                assert!(whole.1.is_none(), "{name}: unexpected error {:?}", whole.1);
                let calls = case.calls.as_ref().expect("valid vectors list calls");
                assert_eq!(whole.0.len(), calls.len(), "{name}");
                let raw = raw_methods(case, &bytes);
                for (i, ((method, seq, error, body), spec)) in whole.0.iter().zip(calls).enumerate()
                {
                    assert_eq!(method, &spec.service_method, "{name}");
                    match &spec.service_method_hex {
                        Some(h) => {
                            assert_eq!(unhex(h), raw[i], "{name}: the name's bytes");
                            assert!(
                                std::str::from_utf8(&raw[i]).is_err(),
                                "{name}: service_method_hex only for a name that is not UTF-8"
                            );
                        }
                        None => assert_eq!(
                            raw[i],
                            spec.service_method.as_bytes(),
                            "{name}: a name that is not UTF-8 needs service_method_hex"
                        ),
                    }
                    assert_eq!(seq.to_string(), spec.seq, "{name}");
                    assert_eq!(error, spec.error.as_deref().unwrap_or(""), "{name}");
                    let b = spec
                        .args
                        .as_ref()
                        .or(spec.reply.as_ref())
                        .expect("args or reply");
                    assert!(expected_body(b)(body), "{name}: body {body}");
                }
                if case.result == "acceptable" {
                    assert!(
                        case.flags.as_ref().is_some_and(|f| !f.is_empty()),
                        "{name}: acceptable needs flags"
                    );
                }
            }
            "invalid" => {
                let want = case
                    .error
                    .as_deref()
                    .expect("invalid vectors name an error");
                let got = whole
                    .1
                    .as_ref()
                    .unwrap_or_else(|| panic!("{name}: no error"));
                assert_eq!(got.kind(), want, "{name}: {got}");
            }
            other => panic!("{name}: unknown result {other}"),
        }
    }
}
