#!/usr/bin/env python3
"""Writes corpus seeds for every fuzz target from the spec's test vectors (spec/vectors/*.json).

    python3 fuzz/seed_corpus.py            # from the repository root, or from fuzz/
    python3 fuzz/seed_corpus.py --check    # also fail unless every target got seeds

Seeds go to fuzz/corpus/<target>/vector-<file>-<tcId> (fuzz/corpus is git-ignored), each laid
out as the target reads its input (its `Arbitrary` layout, see the `Arb` class):

- varint:        the bytes of every varint vector;
- handshake:     the announcement payload of every handshake vector;
- frame_decoder: the bytes of every frames and streams vector: the vector's max_payload as the
                 limit (else the default), its chunks as the split sizes (else one chunk), then
                 the bytes;
- stream_table:  operations on a StreamTable: every frames and streams vector received by a
                 plugin (chunk by chunk, then the end of input); every handshake frame received
                 by a host; and both Go net/rpc sessions write by write, from the host's side
                 (announcement received, calls written, replies received and read) and from
                 the plugin's (announce, calls received and read, replies written);
- gob:           every rpc-messages vector and both directions of every Go session, with the
                 vector's chunks (or Go's writes) as the cut points;
- rpc:           the same bytes as a raw base read by the vector's side, and each direction of
                 each Go session as the structured base, unedited, cut at Go's writes.

Seeds longer than libFuzzer's default -max_len of 4096 bytes are cut to 4096 (a cut frame or gob
message is a truncation seed), so that they do not raise -max_len for the whole run; for
stream_table, whose layout keeps lengths at the end, the received bytes are cut instead.
"""

import json
import pathlib
import sys

FUZZ = pathlib.Path(__file__).resolve().parent
VECTORS = FUZZ.parent / "spec" / "vectors"
MAX_LEN = 4096
MIN_MAX_PAYLOAD = 1 << 20


def load(name):
    return json.loads((VECTORS / f"{name}.json").read_text())


def tests(name):
    return load(name)["tests"]


COUNTS = {}


def write(target, name, tc_id, data):
    assert target != "stream_table" or len(data) <= MAX_LEN, "cutting would break the layout"
    out = FUZZ / "corpus" / target
    out.mkdir(parents=True, exist_ok=True)
    (out / f"vector-{name}-{tc_id}").write_bytes(data[:MAX_LEN])
    COUNTS[target] = COUNTS.get(target, 0) + 1


class Arb:
    """Builds bytes in the layout `arbitrary` 1.x reads (checked against 1.5).

    Integers are little-endian and read from the front; a bool is one byte (bit 0); an enum
    variant is a u32 whose value v selects variant (v * count) >> 32; Option is a bool then the
    value; a Vec that is not the last field is, per element, a byte 01 then the element, and a
    byte 00 at the end; the last field of the top-level struct takes the rest of the input.
    A `&[u8]` that is not the last field takes its length from the *end* of the input (1 byte
    while at most 256 bytes remain, 2 bytes up to 65537, then 4), so lengths are collected here
    and written at the end, the first one read last, when `bytes()` lays everything out.
    """

    def __init__(self):
        self.items = []  # ("front", bytes) or ("len", n)

    def raw(self, b):
        self.items.append(("front", bytes(b)))
        return self

    def u8(self, v):
        return self.raw([v & 0xFF])

    def u16(self, v):
        return self.raw(v.to_bytes(2, "little"))

    def u32(self, v):
        return self.raw(v.to_bytes(4, "little"))

    def u64(self, v):
        return self.raw(v.to_bytes(8, "little"))

    def boolean(self, v):
        return self.u8(1 if v else 0)

    def variant(self, index, count):
        v = -(-(index << 32) // count)  # the smallest u32 that selects `index`
        assert (v * count) >> 32 == index and v < 1 << 32
        return self.u32(v)

    def vec(self, elements, write_element):
        for e in elements:
            self.u8(1)
            write_element(self, e)
        return self.u8(0)

    def slice(self, b):
        """A `&[u8]` field that is not the last one."""
        self.items.append(("len", len(b)))
        return self.raw(b)

    def rest(self, b):
        """The last field: the rest of the input."""
        return self.raw(b)

    @staticmethod
    def width(remaining):
        if remaining <= 1:
            return remaining
        if remaining <= 0xFF + 1:
            return 1
        if remaining <= 0xFFFF + 2:
            return 2
        return 4

    def bytes(self):
        front = b"".join(b for kind, b in self.items if kind == "front")
        lens = [n for kind, n in self.items if kind == "len"]
        widths = [1] * len(lens)
        while True:
            total = len(front) + sum(widths)
            used_front = used_back = 0
            remaining, new = [], []
            for kind, x in self.items:
                if kind == "front":
                    used_front += len(x)
                else:
                    left = total - used_front - used_back
                    remaining.append(left)
                    new.append(self.width(left))
                    used_back += new[-1]
            if new == widths:
                break
            widths = new
        groups = []
        for n, w, left in zip(lens, widths, remaining):
            if left <= 1:
                assert n == 0, "a length where no byte is left for it"
                groups.append(b"\x00" * w)
                continue
            delta = left - w  # the range is 0..=delta
            assert n <= delta
            read = sum(1 for i in range(w) if delta >> (8 * i))  # bytes int_in_range reads
            groups.append(n.to_bytes(read, "big") + b"\x00" * (w - read))
        return front + b"".join(reversed(groups))


def wire_bytes(t):
    """A frames or streams vector's input bytes, and its chunk sizes when it gives chunks."""
    if "chunks" in t:
        chunks = [bytes.fromhex(c) for c in t["chunks"]]
        return b"".join(chunks), [len(c) for c in chunks[:-1]]
    if "hex" in t:
        return bytes.fromhex(t["hex"]), []
    payload = t["payload"]
    body = bytes.fromhex(payload["repeat_hex"]) * payload["count"]
    return (bytes.fromhex(t["header_hex"]) + body)[:MAX_LEN], []


def frame_decoder_input(t):
    """frame_decoder's input: the limit (u32; even selects the default limit, odd n selects
    MIN_MAX_PAYLOAD + (n >> 1)), the split sizes (Vec<u16>), then the data (the rest)."""
    data, splits = wire_bytes(t)
    limit = 0
    if t.get("max_payload"):
        limit = ((t["max_payload"] - MIN_MAX_PAYLOAD) << 1) | 1
    a = Arb().u32(limit)
    a.vec(splits, Arb.u16)
    return a.rest(data).bytes()


# stream_table: the variants of `Op` and `Id`, in declaration order.
OPS = [
    "Receive",
    "ReceiveFrame",
    "ReceiveHeader",
    "ReceiveAnnouncement",
    "Open",
    "Announce",
    "Connect",
    "Write",
    "Read",
    "Close",
    "EndOfInput",
    "CloseConnection",
    "OnStartTimeout",
    "TakeTransmit",
]


def small_id(a, v):
    a.variant(0, 2)  # Id::Small(u8)
    a.u8(v)


def op(a, o):
    name, args = o[0], o[1:]
    a.variant(OPS.index(name), len(OPS))
    if name == "Receive":
        a.slice(args[0])
    elif name in ("ReceiveFrame", "Write"):
        small_id(a, args[0])
        a.slice(args[1])
    elif name in ("ReceiveAnnouncement", "Connect", "Close"):
        small_id(a, args[0])
    elif name == "Read":
        small_id(a, args[0])
        a.u16(args[1])
    else:
        assert not args, o


def stream_table_input(host, ops):
    """stream_table's input: host (bool), limits (Option: None), then the operations (the
    last field: a byte 01 before each, nothing needed after the last)."""
    a = Arb().boolean(host).boolean(False)
    for o in ops:
        a.u8(1)
        op(a, o)
    return a.bytes()


def go_sessions():
    """Each Go session: its calls' client-to-server and server-to-client writes."""
    for i, s in enumerate(load("rpc-go-sessions")["netrpc_sessions"]):
        c2s = [bytes.fromhex(h) for h in s["client_to_server_writes_hex"]]
        s2c = [bytes.fromhex(h) for h in s["server_to_client_writes_hex"]]
        yield i, s, c2s, s2c


def stream_table_sessions():
    for i, s, c2s, s2c in go_sessions():
        # The hooks session runs on the hooks stream 2; the API one on stream 1, which the host
        # opens (on the plugin's side it connects it).
        sid = 2 if s["service"] == "LocalHooks" else 1
        host = [("ReceiveAnnouncement", 2), ("TakeTransmit",)]
        if sid == 1:
            host.append(("Open",))
        plugin = [("Announce",), ("TakeTransmit",)]
        if sid == 1:
            plugin.append(("Connect", 1))
        for req, rep in zip(c2s, s2c):
            if sid == 2:  # the host calls the plugin's hooks
                host += [("Write", sid, req), ("TakeTransmit",)]
                host += [("ReceiveFrame", sid, rep), ("Read", sid, 0xFFFF)]
                plugin += [("ReceiveFrame", sid, req), ("Read", sid, 0xFFFF)]
                plugin += [("Write", sid, rep), ("TakeTransmit",)]
            else:  # the plugin calls the host's API
                plugin += [("Write", sid, req), ("TakeTransmit",)]
                plugin += [("ReceiveFrame", sid, rep), ("Read", sid, 0xFFFF)]
                host += [("ReceiveFrame", sid, req), ("Read", sid, 0xFFFF)]
                host += [("Write", sid, rep), ("TakeTransmit",)]
        end = [("Close", sid), ("TakeTransmit",), ("EndOfInput",)]
        write("stream_table", "go-session-host", i + 1, stream_table_input(True, host + end))
        write("stream_table", "go-session-plugin", i + 1, stream_table_input(False, plugin + end))


def cut_points(chunks):
    """The absolute cut points between chunks (the gob and rpc targets' `cuts`)."""
    points, at = [], 0
    for c in chunks[:-1]:
        at += len(c)
        points.append(at)
    return points


def rpc_vectors():
    """Each rpc-messages vector: (tcId, side is the server, chunks)."""
    for t in tests("rpc-messages"):
        chunks = [bytes.fromhex(c) for c in t["chunks"]] if "chunks" in t else [bytes.fromhex(t["hex"])]
        yield t["tcId"], t["side"] == "server", chunks


def gob_input(chunks):
    """gob's input: the limits byte (0x3f: 4096-byte messages, depth 15), the cut points
    (Vec<u16>), then the stream (the rest)."""
    a = Arb().u8(0x3F)
    a.vec([p for p in cut_points(chunks) if p < 1 << 16], Arb.u16)
    return a.rest(b"".join(chunks)).bytes()


def rpc_input(base, chunks):
    """rpc's input: the base (Raw { to_server } or Go { session index, to_server }), the limits
    (None), the cut points, no calls, no edits, then the tail (a raw base's bytes)."""
    a = Arb()
    if base[0] == "raw":
        a.variant(0, 2).boolean(base[1])
        tail = b"".join(chunks)
    else:
        a.variant(1, 2).u8(base[1]).boolean(base[2])
        tail = b""
    a.boolean(False)
    a.vec([p for p in cut_points(chunks) if p < 1 << 16], Arb.u16)
    a.vec([], None).vec([], None)
    return a.rest(tail).bytes()


def main():
    for t in tests("varint"):
        write("varint", "varint", t["tcId"], bytes.fromhex(t["hex"]))
    for t in tests("handshake"):
        if "payload_hex" in t:
            write("handshake", "handshake", t["tcId"], bytes.fromhex(t["payload_hex"]))
        if "frame_hex" in t:
            ops = [("Receive", bytes.fromhex(t["frame_hex"])), ("TakeTransmit",), ("EndOfInput",)]
            write("stream_table", "handshake", t["tcId"], stream_table_input(True, ops))
    for name in ("frames", "streams"):
        for t in tests(name):
            write("frame_decoder", name, t["tcId"], frame_decoder_input(t))
            data, splits = wire_bytes(t)
            # Lengths sit at the end of this layout: cut the data, not the seed.
            data = data[: MAX_LEN - 64]
            chunks, at = [], 0
            for n in splits:
                chunks.append(data[at : at + n])
                at += n
            chunks.append(data[at:])
            ops = [("Receive", c) for c in chunks] + [("EndOfInput",), ("TakeTransmit",)]
            write("stream_table", name, t["tcId"], stream_table_input(False, ops))
    stream_table_sessions()
    for tc, to_server, chunks in rpc_vectors():
        write("gob", "rpc-messages", tc, gob_input(chunks))
        write("rpc", "rpc-messages", tc, rpc_input(("raw", to_server), chunks))
    for i, s, c2s, s2c in go_sessions():
        for to_server, writes in ((True, c2s), (False, s2c)):
            side = "to-server" if to_server else "to-client"
            write("gob", f"rpc-go-sessions-{side}", i + 1, gob_input(writes))
            write("rpc", f"rpc-go-sessions-{side}", i + 1, rpc_input(("go", i, to_server), writes))
            write("rpc", f"rpc-go-sessions-raw-{side}", i + 1, rpc_input(("raw", to_server), writes))

    for target, n in sorted(COUNTS.items()):
        print(f"{target}: {n} seeds in {FUZZ / 'corpus' / target}")
    if "--check" in sys.argv[1:]:
        targets = ["frame_decoder", "gob", "handshake", "rpc", "stream_table", "varint"]
        missing = [t for t in targets if not COUNTS.get(t)]
        if missing:
            sys.exit(f"no seeds for {', '.join(missing)}")


if __name__ == "__main__":
    main()
