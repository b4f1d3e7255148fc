//! A response or call that cannot be encoded leaves the codec as it was: the type definitions
//! it would have carried are sent with the next message (GOB-16, GOB-11).

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
