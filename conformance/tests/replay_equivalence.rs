//! `replay` compares a plugin's output with its recording modulo what the spec lets vary
//! (spec/harness.md section 4): responses on one stream in another order (RPC-5) and other framing
//! are the same exchange; another response, or a request out of order, is not.

use rpcplugin_codec::frame::{encode_frame, StreamId};
use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, ServerCodec};
use rpcplugin_codec::stream::Role;
use rpcplugin_codec::trace::Tracer;
use rpcplugin_conformance::replay::Exchange;

/// The plugin's output: its announcement, then responses to OnDeactivate requests with Seq
/// 0, 1 and 2 in the order `order`, the error text `error` for Seq 2, each response in a frame
/// of its own or all in one frame.
fn output(order: &[u64], error: &str, one_frame: bool) -> Vec<u8> {
    let mut client: ClientCodec<Call> = ClientCodec::new();
    let mut requests = Vec::new();
    for _ in 0..3 {
        client
            .call_typed(Call::OnDeactivate, &mut requests)
            .unwrap();
    }
    let mut server = ServerCodec::new();
    server.push(&requests);
    let mut headers = Vec::new();
    while let Some(r) = server.next_request().unwrap() {
        headers.push(r.header);
    }
    let hooks = StreamId::new(2).unwrap();
    let mut out = vec![0x00, 0x04, 0x00, 0x04];
    let mut payload = Vec::new();
    for seq in order {
        let mut body = Vec::new();
        let header = &headers[*seq as usize];
        let result = if *seq == 2 && !error.is_empty() {
            Err(error)
        } else {
            Ok(&Reply::Empty)
        };
        server.respond_typed(header, result, &mut body).unwrap();
        if one_frame {
            payload.extend(body);
        } else {
            encode_frame(hooks, &body, &mut out).unwrap();
        }
    }
    if one_frame {
        encode_frame(hooks, &payload, &mut out).unwrap();
    }
    out
}

fn exchange(bytes: &[u8]) -> Exchange {
    let mut notes = Vec::new();
    Tracer::new(Role::Plugin).push(bytes, &mut notes);
    Exchange::from_notes(&notes)
}

#[test]
fn responses_in_another_order_and_framing_are_the_same_exchange() {
    let recorded = output(&[0, 1, 2], "", false);
    let now = output(&[2, 0, 1], "", true);
    assert_ne!(recorded, now, "the bytes differ");
    let (a, b) = (exchange(&recorded), exchange(&now));
    assert_eq!(a.difference(&b), None, "{a:?}\n{b:?}");
    assert_eq!(a.responses.get(&2).map(Vec::len), Some(3));
}

#[test]
fn another_response_is_another_exchange() {
    let recorded = output(&[0, 1, 2], "", false);
    let now = output(&[0, 1, 2], "the hook failed", false);
    let difference = exchange(&recorded).difference(&exchange(&now));
    assert!(
        difference
            .as_deref()
            .is_some_and(|d| d.contains("responses on stream 2")),
        "{difference:?}"
    );
    let missing = output(&[0, 1], "", false);
    assert!(exchange(&recorded)
        .difference(&exchange(&missing))
        .is_some());
}
