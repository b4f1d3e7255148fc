//! A response or call that cannot be encoded leaves the codec as it was: the type definitions
//! it would have carried are sent with the next message (GOB-16, GOB-11); an error response
//! too long to send is shortened instead (RPC-21).

use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, RequestHeader, ServerCodec};

// covers: GOB-16
#[test]
fn a_first_reply_too_large_to_send_leaves_the_response_type_to_the_error_reply() {
    let mut client: ClientCodec<Call> = ClientCodec::new();
    let mut request = Vec::new();
    client
        .call_typed(Call::LoadPluginConfiguration, &mut request)
        .unwrap();
    let mut server = ServerCodec::new();
    server.push(&request);
    let header: RequestHeader = server.next_request().unwrap().unwrap().header;
    // More than GOB_MIN_MAX_MESSAGE: cannot be sent.
    let huge = Reply::Configuration(vec![b'x'; 5 << 20]);
    let mut out = Vec::new();
    assert!(server.respond_typed(&header, Ok(&huge), &mut out).is_err());
    assert!(
        out.is_empty(),
        "nothing of the failed reply is left to send"
    );
    server
        .respond_typed(&header, Err("the reply cannot be sent"), &mut out)
        .unwrap();
    client.push(&out);
    let response = client
        .next_response()
        .expect("the error reply decodes: it carries the Response type")
        .expect("a whole response");
    assert_eq!(response.header.error, "the reply cannot be sent");
}

/// The error response to a request of `method`, as a client with the minimum limits decodes it.
fn error_response_to(method: &str) -> (Vec<u8>, rpcplugin_codec::rpc::ResponseHeader) {
    use rpcplugin_codec::gob::{DecodeLimits, Decoder};
    let mut server = ServerCodec::new();
    let header = RequestHeader {
        service_method: method.to_string(),
        seq: 7,
    };
    let text = format!("rpc: can't find method {method}");
    let mut out = Vec::new();
    server.respond(&header, Err(&text), &mut out).unwrap();
    let mut client: ClientCodec<()> =
        ClientCodec::with_decoder(Decoder::with_limits(DecodeLimits::minimum()));
    client.push(&out);
    let response = client
        .next_response()
        .expect("every message within GOB_MIN_MAX_MESSAGE")
        .expect("a whole response");
    assert_eq!(response.header.seq, 7, "the request's Seq");
    assert!(!response.header.error.is_empty(), "an error response");
    (out, response.header)
}

// covers: RPC-21, RPC-5, RPC-9
#[test]
fn an_error_response_too_long_to_send_is_shortened_not_dropped() {
    // Short: Go's text, echoing the name, as RPC-9 has it.
    let (_, header) = error_response_to("LocalHooks.NoSuchMethod");
    assert_eq!(header.service_method, "LocalHooks.NoSuchMethod");
    assert_eq!(
        header.error,
        "rpc: can't find method LocalHooks.NoSuchMethod"
    );

    // 3 MiB: the echo fits, the text repeating it does not: the text is cut.
    let method = format!("LocalHooks.{}", "é".repeat(3 << 19));
    let (out, header) = error_response_to(&method);
    assert_eq!(header.service_method, method, "the echo still fits");
    assert!(header.error.len() <= rpcplugin_codec::rpc::MAX_SHORTENED_ERROR);
    assert!(method.starts_with(&header.error["rpc: can't find method ".len()..]));
    assert!(out.len() < (4 << 20));

    // 5 MiB: the name alone does not fit: the ServiceMethod is left empty.
    let method = format!("LocalHooks.{}", "x".repeat(5 << 20));
    let (_, header) = error_response_to(&method);
    assert_eq!(header.service_method, "");
    assert!(header
        .error
        .starts_with("rpc: can't find method LocalHooks.xxx"));
    assert!(header.error.len() <= rpcplugin_codec::rpc::MAX_SHORTENED_ERROR);
}
