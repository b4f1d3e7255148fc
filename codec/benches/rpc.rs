//! RPC codec throughput (`cargo bench -p rpcplugin-codec --bench rpc`).
//!
//! - `hooks_call`: encoding a `LocalHooks.OnActivate(3)` request (header and argument, after the
//!   first call has sent the type definitions) with [`ClientCodec`], and decoding it with
//!   [`ServerCodec`];
//! - `config_reply_64KiB`: encoding the response to `LoadPluginConfiguration` carrying a 64 KiB
//!   `[]byte`, and decoding it, next to a plain copy of the same bytes (`copy`) so that the
//!   ratio to memory bandwidth is read from one run.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use rpcplugin_codec::gob::{ids, Value};
use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, RequestHeader, ServerCodec};

fn hooks_call(c: &mut Criterion) {
    let mut g = c.benchmark_group("hooks_call");
    g.throughput(Throughput::Elements(1));
    let mut client: ClientCodec<Call> = ClientCodec::new();
    let mut warm = Vec::new();
    client
        .call_typed(Call::OnActivate { api_stream: 3 }, &mut warm)
        .unwrap();
    let mut out = Vec::with_capacity(128);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            client
                .call_typed(black_box(Call::OnActivate { api_stream: 3 }), &mut out)
                .unwrap();
            // Keep the call table small.
            client.fail_pending();
            black_box(&out);
        })
    });
    // A steady-state request: definitions already sent.
    let mut one = Vec::new();
    client
        .call_typed(Call::OnActivate { api_stream: 3 }, &mut one)
        .unwrap();
    let mut server = ServerCodec::new();
    server.push(&warm);
    server.next_request().unwrap().unwrap();
    g.bench_function("decode", |b| {
        b.iter(|| {
            server.push(black_box(&one));
            black_box(server.next_request().unwrap().unwrap());
        })
    });
    g.finish();
}

fn config_reply(c: &mut Criterion) {
    let config: Vec<u8> = (0..64 * 1024)
        .map(|i| b"{\"k\":\"abcdefgh\"}"[i % 16])
        .collect();
    let header = RequestHeader {
        service_method: "LocalAPI.LoadPluginConfiguration".into(),
        seq: 1,
    };
    let reply = Reply::Configuration(config.clone());
    let mut server = ServerCodec::new();
    let mut warm = Vec::new();
    server
        .respond_typed(&header, Ok(&reply), &mut warm)
        .unwrap();
    let mut one = Vec::new();
    server.respond_typed(&header, Ok(&reply), &mut one).unwrap();

    let mut g = c.benchmark_group("config_reply_64KiB");
    g.throughput(Throughput::Bytes(one.len() as u64));
    let mut dst = vec![0u8; one.len()];
    g.bench_function("copy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(&one));
            black_box(&mut dst);
        })
    });
    let mut out = Vec::with_capacity(one.len() + 64);
    let value = Value::Bytes(config.clone());
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            server
                .respond(&header, Ok((ids::BYTES, black_box(&value))), &mut out)
                .unwrap();
            black_box(&out);
        })
    });
    let mut client: ClientCodec<()> = ClientCodec::new();
    client.push(&warm);
    client.next_response().unwrap().unwrap();
    g.bench_function("decode", |b| {
        b.iter(|| {
            client.push(black_box(&one));
            black_box(client.next_response().unwrap().unwrap());
        })
    });
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

mod group {
    //! `criterion_group!` defines an undocumented public function; it lives here, out of reach.
    use super::*;

    criterion_group! { name = benches; config = config(); targets = hooks_call, config_reply }
}

criterion_main!(group::benches);
