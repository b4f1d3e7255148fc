//! Frame codec throughput (`cargo bench -p rpcplugin-codec --bench frames`).
//!
//! Every group measures the codec next to a plain copy of the same bytes (`copy`), so the ratio
//! of codec to memory bandwidth is read from one run:
//!
//! - `decode_16B`: 4096 frames with a 16-byte payload, decoded with [`frame::decode_frame`] in a
//!   loop and with a [`FrameDecoder`] fed the whole buffer (frames/s; target at least 50 M
//!   frames/s);
//! - `decode_64KiB`: 16 frames with a 65536-byte payload, decoded the same two ways, and through
//!   the full receive path, [`StreamTable::receive`] then [`StreamTable::read`] draining into a
//!   buffer (bytes/s; target: decoding at least half as fast as copying);
//! - `encode_16B` and `encode_64KiB`: the same frames written with [`frame::encode_frame`] into a
//!   reused buffer.
//!
//! The `decode_frame` and `frame_decoder` variants are zero-copy: they only look at each payload
//! (its length and first byte), so their bytes/s mostly measure header parsing. The `_copy`
//! variants also copy every payload into a preallocated buffer, as a consumer that keeps the
//! data does: those are the figures to hold against `copy`.
//!
//! The default run is short (1 s warm-up, 2 s and 20 samples per benchmark, about a minute in
//! all); `--quick`, `--measurement-time` and `--sample-size` work as usual.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use rpcplugin_codec::frame::{self, Chunk, FrameDecoder, MIN_MAX_PAYLOAD};
use rpcplugin_codec::stream::{Read, Role, StreamTable};
use rpcplugin_codec::StreamId;

/// The data stream the frames travel on: odd, so a plugin-role table can connect it.
const STREAM: i64 = 1;

/// `count` frames on [`STREAM`], each with a `payload`-byte payload.
fn frames(count: usize, payload: usize) -> (Vec<u8>, Vec<u8>) {
    let id = StreamId::new(STREAM).unwrap();
    let body: Vec<u8> = (0..payload).map(|i| (i * 7 + 3) as u8).collect();
    let mut wire = Vec::new();
    for _ in 0..count {
        frame::encode_frame(id, &body, &mut wire).unwrap();
    }
    (wire, body)
}

/// The baseline: copying the same bytes into a preallocated buffer.
fn bench_copy(g: &mut BenchmarkGroup<'_, WallTime>, wire: &[u8]) {
    let mut dst = vec![0u8; wire.len()];
    g.bench_function("copy", |b| {
        b.iter(|| {
            dst.copy_from_slice(black_box(wire));
            black_box(&mut dst);
        })
    });
}

/// Decodes every frame of `wire` with `decode_frame`, handing each payload to `sink`; returns
/// the frame count.
#[inline]
fn decode_all(wire: &[u8], mut sink: impl FnMut(&[u8])) -> usize {
    let mut rest = wire;
    let mut count = 0;
    while let Some((f, used)) = frame::decode_frame(rest, MIN_MAX_PAYLOAD).unwrap() {
        sink(f.payload);
        count += 1;
        rest = &rest[used..];
    }
    debug_assert!(rest.is_empty());
    count
}

/// Feeds the whole of `wire` to a fresh [`FrameDecoder`], handing each payload piece to `sink`;
/// returns the number of frames completed.
#[inline]
fn decode_incremental(wire: &[u8], mut sink: impl FnMut(&[u8])) -> usize {
    let mut decoder = FrameDecoder::new();
    let mut input = wire;
    let mut count = 0;
    while let Some(chunk) = decoder.decode(&mut input).unwrap() {
        match chunk {
            Chunk::Header(h) => count += usize::from(h.len == 0),
            Chunk::Payload { data, last, .. } => {
                sink(data);
                count += usize::from(last);
            }
        }
    }
    decoder.finish().unwrap();
    count
}

/// The two frame decoders over `wire`, zero-copy (each payload is only looked at: its length
/// and first byte go into a checksum) and copying every payload into a preallocated buffer, as
/// a consumer that keeps the data does.
fn decode_decoders(
    g: &mut BenchmarkGroup<'_, WallTime>,
    wire: &[u8],
    count: usize,
    payload: usize,
) {
    let mut out = Vec::with_capacity(count * payload);
    assert_eq!(decode_all(wire, |p| out.extend_from_slice(p)), count);
    assert_eq!(out.len(), count * payload);
    out.clear();
    assert_eq!(
        decode_incremental(wire, |p| out.extend_from_slice(p)),
        count
    );
    assert_eq!(out.len(), count * payload);

    g.bench_function("decode_frame", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            let n = decode_all(black_box(wire), |p| {
                sum = sum.wrapping_add(p.len() + usize::from(p[0]))
            });
            (n, sum)
        })
    });
    g.bench_function("frame_decoder", |b| {
        b.iter(|| {
            let mut sum = 0usize;
            let n = decode_incremental(black_box(wire), |p| {
                sum = sum.wrapping_add(p.len() + usize::from(p[0]))
            });
            (n, sum)
        })
    });
    g.bench_function("decode_frame_copy", |b| {
        b.iter(|| {
            out.clear();
            let n = decode_all(black_box(wire), |p| out.extend_from_slice(p));
            black_box(&out);
            n
        })
    });
    g.bench_function("frame_decoder_copy", |b| {
        b.iter(|| {
            out.clear();
            let n = decode_incremental(black_box(wire), |p| out.extend_from_slice(p));
            black_box(&out);
            n
        })
    });
}

fn decode_small(c: &mut Criterion) {
    const COUNT: usize = 4096;
    let (wire, _) = frames(COUNT, 16);
    let mut g = c.benchmark_group("decode_16B");
    g.throughput(Throughput::Elements(COUNT as u64));
    bench_copy(&mut g, &wire);
    decode_decoders(&mut g, &wire, COUNT, 16);
    g.finish();
}

fn decode_large(c: &mut Criterion) {
    const COUNT: usize = 16;
    const PAYLOAD: usize = 64 * 1024;
    let (wire, _) = frames(COUNT, PAYLOAD);
    let mut g = c.benchmark_group("decode_64KiB");
    g.throughput(Throughput::Bytes(wire.len() as u64));
    bench_copy(&mut g, &wire);
    decode_decoders(&mut g, &wire, COUNT, PAYLOAD);

    // The full receive path: a plugin-role table with the host's stream 1 connected, fed the
    // whole buffer, then drained into a buffer by reads of 64 KiB (a typical read size) or of
    // the whole 1 MiB at once. The table is reused, so its receive buffer keeps its allocation
    // as a long-lived connection's would.
    for (name, read_size) in [
        ("stream_table_read_64KiB", PAYLOAD),
        ("stream_table_read_all", COUNT * PAYLOAD),
    ] {
        let id = StreamId::new(STREAM).unwrap();
        let mut table = StreamTable::new(Role::Plugin);
        table.connect(id).unwrap();
        let mut out = vec![0u8; read_size];
        let mut receive_and_read = |wire: &[u8]| -> usize {
            table.receive(wire).unwrap();
            while table.poll_event().is_some() {}
            let mut total = 0;
            while let Read::Data(n) = table.read(id, &mut out).unwrap() {
                total += n;
            }
            black_box(&out);
            total
        };
        assert_eq!(receive_and_read(&wire), COUNT * PAYLOAD);
        g.bench_function(name, |b| b.iter(|| receive_and_read(black_box(&wire))));
    }
    g.finish();
}

fn encode(c: &mut Criterion, name: &str, count: usize, payload: usize, per_frame: bool) {
    let (wire, body) = frames(count, payload);
    let id = StreamId::new(STREAM).unwrap();
    let mut g = c.benchmark_group(name);
    g.throughput(if per_frame {
        Throughput::Elements(count as u64)
    } else {
        Throughput::Bytes(wire.len() as u64)
    });
    bench_copy(&mut g, &wire);
    let mut out = Vec::with_capacity(wire.len());
    for _ in 0..count {
        frame::encode_frame(id, &body, &mut out).unwrap();
    }
    assert_eq!(out, wire);
    g.bench_function("encode_frame", |b| {
        b.iter(|| {
            out.clear();
            let body = black_box(&body[..]);
            for _ in 0..count {
                frame::encode_frame(id, body, &mut out).unwrap();
            }
            black_box(&out);
        })
    });
    g.finish();
}

fn encode_small(c: &mut Criterion) {
    encode(c, "encode_16B", 4096, 16, true);
}

fn encode_large(c: &mut Criterion) {
    encode(c, "encode_64KiB", 16, 64 * 1024, false);
}

/// Short defaults, so the whole run takes about a minute; command-line options such as
/// `--measurement-time` and `--sample-size` still override them.
fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

mod group {
    //! `criterion_group!` defines an undocumented public function; it lives here, out of reach.
    use super::*;

    criterion_group! {
        name = benches;
        config = config();
        targets = decode_small, decode_large, encode_small, encode_large
    }
}

criterion_main!(group::benches);
