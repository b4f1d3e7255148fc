//! The gob decoder and the net/rpc codecs on arbitrary bytes split at arbitrary points
//! (`spec/05-rpc.md`).
//!
//! Checks: no panic and no unbounded allocation on any input; the same input gives the same
//! messages and the same error however it is split; errors are final; a value that decodes
//! re-encodes (with the decoder's own type definitions), and encoding is stable through decoding.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use rpcplugin_codec::gob::{DecodeLimits, Decoder, Encoder, Message, TypeRegistry};
use rpcplugin_codec::rpc::{ClientCodec, ServerCodec};

#[derive(Debug, Arbitrary)]
struct Input {
    bytes: Vec<u8>,
    cuts: Vec<u16>,
    small_limits: bool,
}

fn split<'a>(bytes: &'a [u8], cuts: &[u16]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts
        .iter()
        .map(|c| *c as usize % (bytes.len() + 1))
        .collect();
    points.extend([0, bytes.len()]);
    points.sort_unstable();
    points.windows(2).map(|w| &bytes[w[0]..w[1]]).collect()
}

fn messages(limits: DecodeLimits, pieces: &[&[u8]]) -> (Vec<Message>, Option<String>, Decoder) {
    let mut d = Decoder::with_limits(limits);
    let mut out = Vec::new();
    for p in pieces {
        d.push(p);
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => {
                    // Errors are final.
                    assert_eq!(
                        d.next_message().map_err(|e| e.to_string()),
                        Err(e.to_string())
                    );
                    return (out, Some(e.kind().to_string()), d);
                }
            }
        }
    }
    let end = d.finish().err().map(|e| e.kind().to_string());
    (out, end, d)
}

fuzz_target!(|input: Input| {
    let limits = if input.small_limits {
        DecodeLimits {
            max_message: 4096,
            max_depth: 8,
        }
    } else {
        DecodeLimits::default()
    };
    let whole = messages(limits, &[&input.bytes]);
    let pieces = messages(limits, &split(&input.bytes, &input.cuts));
    assert_eq!(whole.0, pieces.0);
    assert_eq!(whole.1, pieces.1);

    // Re-encode every value with the types the decoder learnt.
    let mut registry = TypeRegistry::new();
    let mut defined = Vec::new();
    for m in &whole.0 {
        if let Message::Definition { id, ty } = m {
            defined.push((*id, ty.clone()));
        }
    }
    // Only sequential ids from 65 can be registered in the same order.
    let sequential = defined
        .iter()
        .enumerate()
        .all(|(i, (id, _))| *id == 65 + i as i64);
    if sequential {
        for (_, ty) in &defined {
            registry.register(ty.clone());
        }
        for m in &whole.0 {
            if let Message::Value { id, value } = m {
                // Encoding is idempotent through decoding: enc(dec(enc(v))) == enc(v).
                let mut first = Vec::new();
                if Encoder::new(registry.clone())
                    .encode(*id, value, &mut first)
                    .is_ok()
                {
                    let mut d = Decoder::new();
                    d.push(&first);
                    let (id2, value2) = d.next_value().unwrap().unwrap();
                    assert_eq!(id2, *id);
                    let mut second = Vec::new();
                    Encoder::new(registry.clone())
                        .encode(id2, &value2, &mut second)
                        .unwrap();
                    assert_eq!(first, second);
                }
            }
        }
    }

    // The RPC codecs never panic on the same bytes.
    let mut server = ServerCodec::with_decoder(Decoder::with_limits(limits));
    let mut client: ClientCodec<()> = ClientCodec::with_decoder(Decoder::with_limits(limits));
    for p in split(&input.bytes, &input.cuts) {
        server.push(p);
        client.push(p);
        while let Ok(Some(_)) = server.next_request() {}
        while let Ok(Some(_)) = client.next_response() {}
    }
    let _ = server.finish();
    let _ = client.finish();
});
