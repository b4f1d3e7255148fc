#!/usr/bin/env python3
"""Writes corpus seeds for the fuzz targets from the spec's test vectors (spec/vectors/*.json).

    python3 fuzz/seed_corpus.py            # from the repository root, or from fuzz/

Seeds go to fuzz/corpus/<target>/vector-<file>-<tcId> (fuzz/corpus is git-ignored):

- varint:        the bytes of every varint vector;
- handshake:     the announcement payload of every handshake vector;
- frame_decoder: the bytes of every frames and streams vector, laid out as the target's
                 Arbitrary input: the vector's max_payload as the limit (else the default), its
                 chunks as the split points (else one chunk), then the bytes.

stream_table takes a structured sequence of operations, for which raw wire bytes make poor
seeds: let it grow its own corpus.
"""

import json
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "spec" / "vectors"


def tests(name):
    return json.loads((VECTORS / f"{name}.json").read_text())["tests"]


def write(target, name, tc_id, data):
    out = FUZZ / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vector-{name}-{tc_id}").write_bytes(data)


MIN_MAX_PAYLOAD = 1 << 20


def wire_bytes(t):
    """The vector's input bytes, and its split points when it gives chunks."""
    if "chunks" in t:
        chunks = [bytes.fromhex(c) for c in t["chunks"]]
        return b"".join(chunks), [len(c) for c in chunks[:-1]]
    if "hex" in t:
        return bytes.fromhex(t["hex"]), []
    payload = t["payload"]
    body = bytes.fromhex(payload["repeat_hex"]) * payload["count"]
    # Keep seeds small (libFuzzer's default -max_len is 4096): a long payload is cut, which
    # makes the seed a truncated frame.
    return (bytes.fromhex(t["header_hex"]) + body)[:4096], []


def frame_decoder_input(t):
    """frame_decoder's Arbitrary input: the limit (u32, little-endian; even selects the default
    limit, odd n selects MIN_MAX_PAYLOAD + (n >> 1)), the split sizes (Vec<u16>: a byte 01
    before each element, a byte 00 after the last), then the data (the rest)."""
    data, splits = wire_bytes(t)
    limit = 0
    if t.get("max_payload"):
        limit = ((t["max_payload"] - MIN_MAX_PAYLOAD) << 1) | 1
    out = limit.to_bytes(4, "little")
    for n in splits:
        out += b"\x01" + n.to_bytes(2, "little")
    return out + b"\x00" + data


def main():
    counts = {}
    for t in tests("varint"):
        write("varint", "varint", t["tcId"], bytes.fromhex(t["hex"]))
        counts["varint"] = counts.get("varint", 0) + 1
    for t in tests("handshake"):
        if "payload_hex" in t:
            write("handshake", "handshake", t["tcId"], bytes.fromhex(t["payload_hex"]))
            counts["handshake"] = counts.get("handshake", 0) + 1
    for name in ("frames", "streams"):
        for t in tests(name):
            write("frame_decoder", name, t["tcId"], frame_decoder_input(t))
            counts["frame_decoder"] = counts.get("frame_decoder", 0) + 1
    for target, n in sorted(counts.items()):
        print(f"{target}: {n} seeds in {FUZZ / 'corpus' / target}")


if __name__ == "__main__":
    main()
