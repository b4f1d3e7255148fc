//! An error of an RPC stream ends it (GOB-18, Table 5-9 R1): after `header_type_mismatch` the
//! codecs must not go on reading values as if nothing happened. Found by the `rpc` fuzz target:
//! a header that was not a struct failed once, then the next call read the following values as
//! a fresh header and body, and `finish` reported a clean end.

use rpcplugin_codec::rpc::{ClientCodec, RpcError, ServerCodec};
use rpcplugin_test_support::unhex;

/// A value message of type int (1) where a header belongs: `03 04 00 02`.
const INT_HEADER: &str = "03040002";

/// Go's first hooks call: the Request definition, `LocalHooks.OnActivate` Seq 0, the argument 3.
const GO_FIRST_CALL: &str = "2fff81030101075265717565737401ff82000102010d536572766963654d6574686f64010c00010353657101060000001aff8201154c6f63616c486f6f6b732e4f6e41637469766174650003040006";

/// Go's first hooks reply: the Response definition, Seq 0, the struct{} definition and value.
const GO_FIRST_REPLY: &str = "3aff8303010108526573706f6e736501ff84000103010d536572766963654d6574686f64010c00010353657101060001054572726f72010c0000001aff8401154c6f63616c486f6f6b732e4f6e4163746976617465000aff85030102ff8600000003ff8600";

// covers: GOB-18, RPC-3
#[test]
fn a_server_stops_at_a_header_that_is_not_a_struct() {
    let mut server = ServerCodec::new();
    server.push(&unhex(INT_HEADER));
    server.push(&unhex(GO_FIRST_CALL));
    let e = server.next_request().unwrap_err();
    assert!(matches!(e, RpcError::BadHeader { .. }), "{e:?}");
    assert_eq!(e.kind(), "header_type_mismatch");
    // Not the Go call after it, read as if the stream were fine.
    assert_eq!(server.next_request(), Err(e.clone()));
    server.push(&unhex(GO_FIRST_CALL));
    assert_eq!(server.next_request(), Err(e.clone()));
    assert_eq!(server.finish(), Err(e.clone()));
    assert_eq!(server.finish(), Err(e));
}

// covers: GOB-18, RPC-3, RPC-11
#[test]
fn a_client_stops_at_a_header_that_is_not_a_struct() {
    let mut client: ClientCodec<&str> = ClientCodec::new();
    let args = rpcplugin_codec::gob::Value::Int(3);
    client
        .call(
            "LocalHooks.OnActivate",
            (rpcplugin_codec::gob::ids::INT, &args),
            "first",
            &mut Vec::new(),
        )
        .unwrap();
    client.push(&unhex(INT_HEADER));
    client.push(&unhex(GO_FIRST_REPLY));
    let e = client.next_response().unwrap_err();
    assert!(matches!(e, RpcError::BadHeader { .. }), "{e:?}");
    // The reply after the bad header does not complete the call: it is failed with the rest.
    assert!(matches!(client.next_response(), Err(ref again) if *again == e));
    assert_eq!(client.finish(), Err(e));
    assert_eq!(client.fail_pending(), vec![(0, "first")]);
}
