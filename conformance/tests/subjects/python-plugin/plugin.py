#!/usr/bin/env python3
"""A plugin for rpcplugin wire protocol 1, written in Python 3.11 (standard library only).

Written from the normative specification (spec/ chapters 01 to 06) alone, as an independent
subject for the conformance harness.  Requirement ids of the specification are cited in the
comments next to the code that implements them.

Layers (one section of this file each):
  transport + frames  (chapter 01, 02)  Connection: reads fd 3, writes fd 4, Go varints
  streams             (chapter 03)      Stream: states, buffers, close frames, reset
  handshake           (chapter 04)      announce(): register stream 2, send 00 04 00 04
  gob                 (chapter 05.2/3)  GobDecoder (type tables learnt from the peer), encoder
  net/rpc             (chapter 05.4/5)  HooksServer on the hooks stream, ApiClient on API streams

Options (after the executable):
  --limits=min     (default) every receive limit at the specification's minimum:
                   frame payload 1 MiB, unread data per stream 1 MiB, gob message 4 MiB, depth 16
  --limits=large   16 MiB frames, 16 MiB stream buffers, 16 MiB gob messages, depth 64
  --concurrent     every hook call runs in a thread of its own and is answered when it finishes,
                   after a random 0-20 ms delay (responses come out of order).  Default: calls
                   run one after the other in a worker thread and are answered in request order;
                   the connection and the hooks stream keep being read meanwhile.
"""

import argparse
import os
import queue
import random
import struct
import sys
import threading

# ---------------------------------------------------------------------------------------------
# Constants (README section 2.4)
# ---------------------------------------------------------------------------------------------

MIN_MAX_PAYLOAD = 1 << 20          # FRAME-7, FRAME-9
MAX_PAYLOAD_CEILING = 16 << 20     # FRAME-8
MIN_STREAM_BUFFER = 8 << 20        # STREAM-13 (spec 1.0.0-draft.2; 1 MiB in draft.1)
GOB_MIN_MAX_MESSAGE = 4 << 20      # GOB-15, GOB-16
GOB_MIN_MAX_DEPTH = 16             # GOB-17

IN_FD, OUT_FD = 3, 4               # TRANS-1, TRANS-2
HOOKS_STREAM_ID = 2                # HS-1, STREAM-2: the plugin's first stream


class Limits:
    def __init__(self, large):
        self.frame_payload = MAX_PAYLOAD_CEILING if large else MIN_MAX_PAYLOAD
        self.stream_buffer = 16 << 20 if large else MIN_STREAM_BUFFER
        self.gob_message = 16 << 20 if large else GOB_MIN_MAX_MESSAGE
        self.gob_depth = 64 if large else GOB_MIN_MAX_DEPTH


def log(msg):
    """Logs go to standard error only; fd 1 and 2 never carry protocol data (TRANS-3)."""
    try:
        sys.stderr.write("python-plugin[%d]: %s\n" % (os.getpid(), msg))
        sys.stderr.flush()
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# Go varints (chapter 02, section 2.3)
# ---------------------------------------------------------------------------------------------

def put_varint(v):
    """FRAME-2: zigzag-map, then minimal base-128 groups, least significant first."""
    u = (v << 1) ^ (v >> 63) if v < 0 else v << 1
    u &= (1 << 64) - 1
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


class ConnectionError_(Exception):
    """A connection error (section 2.8): the connection ends, exit status non-zero."""


class CleanEnd(Exception):
    """End-of-file at a frame boundary (TRANS-7)."""


# ---------------------------------------------------------------------------------------------
# Transport and frames (chapters 01 and 02)
# ---------------------------------------------------------------------------------------------

class Connection:
    def __init__(self, limits):
        self.limits = limits
        self.wlock = threading.Lock()      # FRAME-10: one whole frame at a time
        self.ended = False
        self.end_lock = threading.Lock()
        self.inbuf = b""
        self.inpos = 0
        self.streams = None                # StreamTable, set by the plugin

    # --- sending -----------------------------------------------------------------------------

    def write_frame(self, sid, payload):
        """Send one frame: header and payload in a single os.write (FRAME-11), continued on a
        short write before any other frame starts (FRAME-10)."""
        assert len(payload) <= MIN_MAX_PAYLOAD              # FRAME-9
        data = memoryview(put_varint(sid) + put_varint(len(payload)) + payload)
        with self.wlock:
            if self.ended:
                raise StreamError("connection ended")       # STREAM-12: writes fail
            try:
                while data:
                    n = os.write(OUT_FD, data)
                    data = data[n:]
            except OSError as e:
                # TRANS-7: a failed write ends the connection; the host closed its pipe.
                threading.Thread(target=self.end, args=(0, "write failed: %s" % e),
                                 daemon=True).start()
                raise StreamError("connection ended: %s" % e)

    # --- receiving ---------------------------------------------------------------------------

    def _fill(self):
        try:
            data = os.read(IN_FD, 1 << 20)
        except OSError as e:
            raise ConnectionError_("read failed: %s" % e)
        self.inbuf = self.inbuf[self.inpos:] + data
        self.inpos = 0
        return bool(data)

    def _byte(self):
        if self.inpos >= len(self.inbuf) and not self._fill():
            return None
        b = self.inbuf[self.inpos]
        self.inpos += 1
        return b

    def _exact(self, n):
        parts = []
        while n > 0:
            if self.inpos >= len(self.inbuf) and not self._fill():
                raise ConnectionError_("end-of-file inside a payload")     # FRAME-13
            chunk = self.inbuf[self.inpos:self.inpos + n]
            self.inpos += len(chunk)
            n -= len(chunk)
            parts.append(chunk)
        return b"".join(parts)

    def _varint(self, first_of_frame):
        """Go's ReadVarint: accepts non-minimal encodings (FRAME-3), overflow after the tenth
        byte is a connection error (FRAME-4), end-of-file inside is one too (FRAME-13)."""
        u = 0
        for i in range(10):
            b = self._byte()
            if b is None:
                if i == 0 and first_of_frame:
                    raise CleanEnd()                                    # TRANS-7
                raise ConnectionError_("end-of-file inside a frame header")  # FRAME-13
            if i == 9 and b > 1:
                raise ConnectionError_("varint overflows 64 bits")     # FRAME-4
            u |= (b & 0x7F) << (7 * i)
            if b < 0x80:
                break
        return (u >> 1) ^ -(u & 1)

    def run(self):
        """The frame reader; runs on the main thread until the connection ends (section 2.7).
        It never waits for any stream's reader (STREAM-14)."""
        try:
            while True:
                sid = self._varint(True)
                if sid < 0:
                    raise ConnectionError_("negative stream id %d" % sid)      # FRAME-5
                length = self._varint(False)
                if length < 0:
                    raise ConnectionError_("negative length %d" % length)      # FRAME-6
                if length > self.limits.frame_payload:
                    # FRAME-8: as soon as the length is read, before any payload.
                    raise ConnectionError_("frame length %d above limit" % length)
                payload = self._exact(length)
                self.streams.deliver(sid, payload)
        except CleanEnd:
            self.end(0, "host closed its pipe")                        # TRANS-7, TRANS-10
        except ConnectionError_ as e:
            self.end(1, "connection error: %s" % e)                    # FRAME-14, TRANS-10

    def end(self, status, why):
        """End the connection: close both pipe ends (TRANS-8) and exit at once, whatever hook
        is still running (TRANS-9).  Status 0 after the host closed its pipe, 1 after a
        connection error (TRANS-10).  The plugin starts no child process (TRANS-11)."""
        with self.end_lock:
            log("connection ended (%s); exiting with status %d" % (why, status))
            got = self.wlock.acquire(timeout=0.5)
            self.ended = True
            for fd in (OUT_FD, IN_FD):
                try:
                    os.close(fd)
                except OSError:
                    pass
            if got:
                self.wlock.release()
            os._exit(status)


# ---------------------------------------------------------------------------------------------
# Streams (chapter 03)
# ---------------------------------------------------------------------------------------------

OPEN, REMOTE_CLOSED, LOCAL_CLOSED, RESET = "Open", "RemoteClosed", "LocalClosed", "Reset"


class StreamError(Exception):
    """A stream that can no longer be read or written (reset, closed, connection ended)."""


class GobError(Exception):
    """A gob error (Table 5-7) or envelope error (Table 5-9): an error of one RPC stream."""

    def __init__(self, kind, detail=""):
        super().__init__("%s%s" % (kind, ": " + detail if detail else ""))
        self.kind = kind


class Stream:
    def __init__(self, table, sid):
        self.table = table
        self.sid = sid
        self.state = OPEN
        self.buf = bytearray()                  # unread data (STREAM-13)
        self.cond = threading.Condition(table.lock)
        self.send_lock = threading.Lock()       # RPC-2: one request/response at a time

    # --- writing (row S7, STREAM-7) ------------------------------------------------------------

    def write(self, data):
        """Write data as frames of at most MIN_MAX_PAYLOAD bytes (FRAME-9); an empty write sends
        nothing (STREAM-7).  The caller holds send_lock."""
        with self.table.lock:
            if self.state != OPEN:                               # rows S11, S15, S20
                raise StreamError("stream %d is %s" % (self.sid, self.state))
        for i in range(0, len(data), MIN_MAX_PAYLOAD):
            self.table.conn.write_frame(self.sid, data[i:i + MIN_MAX_PAYLOAD])

    def close(self):
        """Local close (rows S8, S12, S16, S21): one zero-length frame (STREAM-8), never two."""
        with self.send_lock:
            with self.table.lock:
                if self.state == OPEN:
                    self.state = LOCAL_CLOSED                   # S8: drop the buffered data
                    del self.buf[:]
                elif self.state == REMOTE_CLOSED:
                    self.table.forget(self)                     # S12: both closed
                    # Closed: a later close sends nothing either (found by the harness's
                    # plugin/streams/frames-after-close-discarded: a second close frame).
                    self.state = LOCAL_CLOSED
                else:
                    return                                      # S16, S21: nothing to send
                self.cond.notify_all()
            try:
                self.table.conn.write_frame(self.sid, b"")
            except StreamError:
                pass                                            # the connection has ended

    # --- reading whole gob messages -------------------------------------------------------------

    def take_message(self, max_len):
        """Wait for a whole gob message (GOB-4) and take it out of the buffer.  Data stays
        counted as unread (STREAM-13) until the whole message has been taken out.
        Returns the body, or None at the end of the stream at a message boundary."""
        with self.table.lock:
            while True:
                if self.state in (RESET, LOCAL_CLOSED):
                    raise StreamError("stream %d is %s" % (self.sid, self.state))
                if self.table.conn.ended:
                    raise StreamError("connection ended")        # STREAM-12
                hdr = gob_message_header(self.buf, max_len)      # GOB-2, GOB-4, GOB-15
                if hdr is not None:
                    start, length = hdr
                    if len(self.buf) >= start + length:
                        body = bytes(self.buf[start:start + length])
                        del self.buf[:start + length]
                        return body
                if self.state == REMOTE_CLOSED:                  # STREAM-10: data, then EOF
                    if not self.buf:
                        return None
                    raise GobError("truncated", "stream ended inside a message")  # GOB-4
                self.cond.wait()


class StreamTable:
    """The stream table of chapter 03 (Tables 3-1 and 3-2)."""

    def __init__(self, conn, limits):
        self.conn = conn
        self.limits = limits
        self.lock = threading.Lock()
        self.streams = {}

    def register(self, sid):
        """Local open (S1) or local connect (S2)."""
        with self.lock:
            s = Stream(self, sid)
            self.streams[sid] = s
            return s

    def forget(self, s):
        """Closed: frames that arrive later are discarded like unknown ones (lock held)."""
        if self.streams.get(s.sid) is s:
            del self.streams[s.sid]

    def deliver(self, sid, payload):
        """Called by the frame reader for every frame."""
        if sid == 0:
            return                                   # HS-8: stream-0 frames are discarded
        reset = None
        with self.lock:
            s = self.streams.get(sid)
            if s is None:
                return                               # STREAM-5, rows S3, S4
            if s.state == OPEN:
                if not payload:                      # S6: the reader gets data, then EOF
                    s.state = REMOTE_CLOSED
                elif len(s.buf) + len(payload) > self.limits.stream_buffer:
                    # STREAM-15, row S5 on overflow: discard the buffered data, make the reader
                    # fail, close the stream, discard its later data (S18).
                    s.state = RESET
                    del s.buf[:]
                    reset = s
                else:
                    s.buf += payload                 # S5
                s.cond.notify_all()
            elif s.state in (LOCAL_CLOSED, RESET):
                if not payload:
                    self.forget(s)                   # S14, S19
                # data: discarded (S13, S18)
            # REMOTE_CLOSED: discarded (S9, S10, STREAM-9)
        if reset is not None:
            log("stream %d: unread data over %d bytes, resetting it (STREAM-15)"
                % (sid, self.limits.stream_buffer))
            with reset.send_lock:
                try:
                    self.conn.write_frame(sid, b"")  # STREAM-8
                except StreamError:
                    pass


# ---------------------------------------------------------------------------------------------
# Gob: integers, readers, type descriptors (chapter 05, section 5.2)
# ---------------------------------------------------------------------------------------------

def gob_message_header(buf, max_len):
    """Parse a message Length at the start of buf: (header size, length), or None if the
    Length is not complete yet.  GOB-2 (uint_overflow), GOB-4 (empty_message), GOB-15
    (message_too_large, as soon as the Length is known)."""
    if not buf:
        return None
    b = buf[0]
    if b < 0x80:
        n, length = 1, b
    elif b < 0xF8:
        raise GobError("uint_overflow", "message length")
    else:
        n = 1 + (256 - b)
        if len(buf) < n:
            return None
        length = int.from_bytes(buf[1:n], "big")
    if length == 0:
        raise GobError("empty_message")
    if length > max_len:
        raise GobError("message_too_large", "%d bytes" % length)
    return n, length


class GobReader:
    """Reads the values of one message body; running past its end is past_end (GOB-20)."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def remaining(self):
        return len(self.data) - self.pos

    def uint(self):
        """GOB-2: accept non-minimal forms; a first byte 80..f7 is uint_overflow."""
        if self.pos >= len(self.data):
            raise GobError("past_end")
        b = self.data[self.pos]
        self.pos += 1
        if b < 0x80:
            return b
        if b < 0xF8:
            raise GobError("uint_overflow")
        n = 256 - b
        if self.pos + n > len(self.data):
            raise GobError("past_end")
        v = int.from_bytes(self.data[self.pos:self.pos + n], "big")
        self.pos += n
        return v

    def int(self):
        u = self.uint()                                          # GOB-3
        return (u >> 1) if not u & 1 else ~(u >> 1)

    def take(self, n):
        if n > self.remaining():
            raise GobError("past_end")
        v = self.data[self.pos:self.pos + n]
        self.pos += n
        return v


# Kinds of types.  Ids 1 to 7 are the predefined basic types (Table 5-3).
BOOL, INT, UINT, FLOAT, BYTES, STRING, COMPLEX = range(1, 8)
STRUCT, SLICE, ARRAY, MAP, OPAQUE = "struct", "slice", "array", "map", "opaque"
COMPOSITE = (STRUCT, SLICE, ARRAY, MAP)                         # GOB-17 counts these


class GobType:
    """A type: kind, and for composite kinds the ids (or GobType objects, for the fixed layout of
    wireType) of fields, elements and keys, resolved only when a value uses them (GOB-9)."""

    def __init__(self, kind, name=b"", fields=(), elem=None, key=None, length=0):
        self.kind, self.name, self.fields = kind, name, list(fields)
        self.elem, self.key, self.length = elem, key, length


BASIC = {i: GobType(i) for i in range(1, 8)}

# The fixed layout of gob's own types (section 5.2.7); never sent on the wire.
_COMMON = GobType(STRUCT, b"CommonType", [(b"Name", STRING), (b"Id", INT)])
_FIELD = GobType(STRUCT, b"fieldType", [(b"Name", STRING), (b"Id", INT)])
_GOBENC = GobType(STRUCT, b"gobEncoderType", [(b"CommonType", _COMMON)])
WIRE_TYPE = GobType(STRUCT, b"wireType", [
    (b"ArrayT", GobType(STRUCT, b"arrayType",
                        [(b"CommonType", _COMMON), (b"Elem", INT), (b"Len", INT)])),
    (b"SliceT", GobType(STRUCT, b"sliceType", [(b"CommonType", _COMMON), (b"Elem", INT)])),
    (b"StructT", GobType(STRUCT, b"structType",
                         [(b"CommonType", _COMMON), (b"Field", GobType(SLICE, elem=_FIELD))])),
    (b"MapT", GobType(STRUCT, b"mapType",
                      [(b"CommonType", _COMMON), (b"Key", INT), (b"Elem", INT)])),
    (b"GobEncoderT", _GOBENC),
    (b"BinaryMarshalerT", _GOBENC),
    (b"TextMarshalerT", _GOBENC),
])


class GobDecoder:
    """The receiving side of one gob stream: its own table of defined types (section 5.2.6)."""

    def __init__(self, max_depth):
        self.types = {}
        self.max_depth = max_depth

    def resolve(self, ref):
        """GOB-9: a used id must be predefined (1..7) or defined earlier on this gob stream;
        the interface type (8) is unsupported_type."""
        if isinstance(ref, GobType):
            return ref
        if 1 <= ref <= 7:
            return BASIC[ref]
        if ref == 8:
            raise GobError("unsupported_type", "interface")
        t = self.types.get(ref)
        if t is None:
            raise GobError("undefined_type", "type id %d" % ref)
        return t

    def message(self, body):
        """Decode one message body (GOB-5).  Returns None for a definition, otherwise
        (type, value) of the value message."""
        r = GobReader(body)
        tid = r.int()
        if tid < 0:
            tid = -tid
            if tid < 64 or tid in self.types:       # GOB-6: checked before the wireType
                raise GobError("duplicate_type", "type id %d" % tid)
            wire = self.value(r, WIRE_TYPE, 1)
            if r.remaining():
                raise GobError("trailing_bytes")     # GOB-5
            self.types[tid] = self.definition(wire)  # GOB-6: the id is the message's
            return None
        t = self.resolve(tid)
        if t.kind != STRUCT and r.uint() != 0:       # GOB-13
            raise GobError("nonzero_singleton")
        v = self.value(r, t, 1)
        if r.remaining():
            raise GobError("trailing_bytes")         # GOB-5
        return t, v

    @staticmethod
    def definition(wire):
        """Turn a decoded wireType into a GobType (section 5.2.7, GOB-10)."""
        if len(wire) != 1:
            raise GobError("bad_definition", "%d kinds in a wireType" % len(wire))
        (kind, v), = wire.items()
        name = v.get(0, {}).get(0, b"")
        if kind == 0:                                                        # ArrayT
            if v.get(2, 0) < 0:
                raise GobError("bad_definition", "negative array length")
            return GobType(ARRAY, name, elem=v.get(1, 0), length=v.get(2, 0))
        if kind == 1:                                                        # SliceT
            return GobType(SLICE, name, elem=v.get(1, 0))
        if kind == 2:                                                        # StructT
            fields, seen = [], set()
            for f in v.get(1, []):
                fname = f.get(0, b"")
                if not fname or fname in seen:
                    raise GobError("bad_definition", "empty or repeated field name")
                seen.add(fname)
                fields.append((fname, f.get(1, 0)))
            return GobType(STRUCT, name, fields)
        if kind == 3:                                                        # MapT
            return GobType(MAP, name, key=v.get(1, 0), elem=v.get(2, 0))
        return GobType(OPAQUE, name)                  # GobEncoderT, BinaryMarshalerT, Text...

    def value(self, r, t, depth):
        """Decode one value of type t at nesting depth `depth` (GOB-11, GOB-14, GOB-17, GOB-20, GOB-21).
        Structs decode to {field number: value}, so that unknown fields are simply kept."""
        k = t.kind
        if k in COMPOSITE and depth > self.max_depth:
            raise GobError("too_deep", "depth %d" % depth)          # GOB-17
        if k == BOOL:
            return r.uint() != 0
        if k == INT:
            return r.int()
        if k == UINT:
            return r.uint()
        if k == FLOAT:
            return struct.unpack(">d", (r.uint() & (2**64 - 1)).to_bytes(8, "little"))[0]
        if k == COMPLEX:
            re_ = self.value(r, BASIC[FLOAT], depth)
            return complex(re_, self.value(r, BASIC[FLOAT], depth))
        if k in (BYTES, STRING, OPAQUE):
            return bytes(r.take(r.uint()))          # no character encoding check (G19)
        if k == STRUCT:                              # GOB-11
            out, field = {}, -1
            while True:
                delta = r.uint()
                if delta == 0:
                    return out
                field += delta
                if field >= len(t.fields):
                    raise GobError("field_out_of_range", "field %d of %d" % (field, len(t.fields)))
                out[field] = self.value(r, self.resolve(t.fields[field][1]), depth + 1)
        n = r.uint()
        if k == ARRAY and n != t.length:
            raise GobError("array_length_mismatch", "%d != %d" % (n, t.length))
        if n > r.remaining():                        # every element takes at least one byte
            raise GobError("past_end")
        if k in (SLICE, ARRAY):
            et = self.resolve(t.elem) if n else None
            return [self.value(r, et, depth + 1) for _ in range(n)]
        kt = self.resolve(t.key) if n else None      # MAP
        et = self.resolve(t.elem) if n else None
        return [(self.value(r, kt, depth + 1), self.value(r, et, depth + 1)) for _ in range(n)]


def read_value(stream, decoder, limits):
    """Read messages until a value message; definitions in between are recorded.  None at the
    end of the stream (at a message boundary)."""
    while True:
        body = stream.take_message(limits.gob_message)
        if body is None:
            return None
        got = decoder.message(body)
        if got is not None:
            return got


def header_fields(t, v, want):
    """RPC-3: a header of any struct type, fields taken by name, others skipped, absent ones
    empty; a non-struct header or a mistyped field is header_type_mismatch."""
    if t.kind != STRUCT:
        raise GobError("header_type_mismatch", "header is not a struct")
    out = {name: (b"" if tid == STRING else 0) for name, tid in want.items()}
    for i, (name, ref) in enumerate(t.fields):
        if name in want:
            if ref != want[name]:
                raise GobError("header_type_mismatch", "field %s" % name.decode("latin-1"))
            if i in v:
                out[name] = v[i]
    return out


# ---------------------------------------------------------------------------------------------
# Gob encoder (GOB-1, GOB-3, GOB-8, GOB-12, GOB-13)
# ---------------------------------------------------------------------------------------------

def enc_uint(v):
    """GOB-1: minimal form."""
    if v < 0x80:
        return bytes([v])
    b = v.to_bytes((v.bit_length() + 7) // 8, "big")
    return bytes([256 - len(b)]) + b


def enc_int(i):
    return enc_uint(2 * i if i >= 0 else -2 * i - 1)           # GOB-3


def enc_bytes(b):
    return enc_uint(len(b)) + b


def enc_struct(fields):
    """fields: [(field number, encoded value or None)].  None (a zero value) is omitted
    (GOB-12); deltas from the previous field number; the terminator 00 (GOB-11)."""
    out, prev = bytearray(), -1
    for num, val in fields:
        if val is not None:
            out += enc_uint(num - prev) + val
            prev = num
    out.append(0)
    return bytes(out)


def enc_message(body):
    assert len(body) <= GOB_MIN_MAX_MESSAGE                      # GOB-16
    return enc_uint(len(body)) + body


def enc_struct_definition(tid, name, fields):
    """A definition message of a struct type; its CommonType carries its own id (GOB-8)."""
    common = enc_struct([(0, enc_bytes(name) if name else None), (1, enc_int(tid))])
    flist = None
    if fields:
        flist = enc_uint(len(fields)) + b"".join(
            enc_struct([(0, enc_bytes(n)), (1, enc_int(ft))]) for n, ft in fields)
    struct_type = enc_struct([(0, common), (1, flist)])         # a struct field is always sent
    return enc_message(enc_int(-tid) + enc_struct([(2, struct_type)]))


# GOB-8: the only types a protocol-1 sender defines, with these ids (Table 5-4).
REQUEST_ID, RESPONSE_ID, EMPTY_ID = 65, 66, 67
DEFINITIONS = {
    REQUEST_ID: enc_struct_definition(REQUEST_ID, b"Request",
                                      [(b"ServiceMethod", STRING), (b"Seq", UINT)]),
    RESPONSE_ID: enc_struct_definition(RESPONSE_ID, b"Response",
                                       [(b"ServiceMethod", STRING), (b"Seq", UINT),
                                        (b"Error", STRING)]),
    EMPTY_ID: enc_struct_definition(EMPTY_ID, b"", []),
}


class GobEncoder:
    """The sending side of one gob stream: remembers which types it has defined (GOB-7)."""

    def __init__(self):
        self.defined = set()

    def define(self, tid):
        if tid in self.defined:
            return b""
        self.defined.add(tid)
        return DEFINITIONS[tid]

    def value(self, tid, struct_body):
        return self.define(tid) + enc_message(enc_int(tid) + struct_body)

    def request(self, method, seq):
        """RPC-2: Request header then the argument, an empty struct (section 5.6.4)."""
        hdr = enc_struct([(0, enc_bytes(method) if method else None),
                          (1, enc_uint(seq) if seq else None)])
        return self.value(REQUEST_ID, hdr) + self.value(EMPTY_ID, b"\x00")

    def response(self, method, seq, error):
        """RPC-2, RPC-7: Response header then an empty struct body (the reply of every hook
        and the body of every error response)."""
        hdr = enc_struct([(0, enc_bytes(method) if method else None),
                          (1, enc_uint(seq) if seq else None),
                          (2, enc_bytes(error) if error else None)])
        return self.value(RESPONSE_ID, hdr) + self.value(EMPTY_ID, b"\x00")


# ---------------------------------------------------------------------------------------------
# net/rpc client for LocalAPI on the API stream (sections 5.4, 5.5)
# ---------------------------------------------------------------------------------------------

REQUEST_FIELDS = {b"ServiceMethod": STRING, b"Seq": UINT, b"Error": STRING}


class RpcError(Exception):
    pass


class Call:
    def __init__(self):
        self.done = threading.Event()
        self.reply = None
        self.error = None


class ApiClient:
    def __init__(self, plugin, stream):
        self.plugin = plugin
        self.stream = stream
        self.encoder = GobEncoder()
        self.decoder = GobDecoder(plugin.limits.gob_depth)   # a new gob stream (5.1.1)
        self.lock = threading.Lock()
        self.pending = {}
        self.next_seq = 0
        self.dead = None
        threading.Thread(target=self.read_loop, daemon=True,
                         name="api-%d" % stream.sid).start()

    def call(self, method):
        """A call whose reply is a []byte (Table 5-11: type 5 only)."""
        c = Call()
        with self.lock:
            if self.dead:                                   # RPC-11: later calls fail at once
                raise RpcError("API stream ended: %s" % self.dead)
            seq = self.next_seq                             # RPC-4: 0, 1, 2, ...
            self.next_seq += 1
            self.pending[seq] = c
        try:
            with self.stream.send_lock:
                self.stream.write(self.encoder.request(method, seq))
        except StreamError as e:
            with self.lock:
                self.pending.pop(seq, None)
            raise RpcError("cannot send request: %s" % e)
        c.done.wait()
        if c.error is not None:
            raise RpcError(c.error)
        return c.reply

    def fail_all(self, why):
        with self.lock:
            if self.dead is None:
                self.dead = why
            calls, self.pending = self.pending, {}
        for c in calls.values():
            c.error = "API stream ended: %s" % why
            c.done.set()

    def read_loop(self):
        limits = self.plugin.limits
        why = "closed by the host"
        try:
            while True:
                got = read_value(self.stream, self.decoder, limits)
                if got is None:
                    break                                   # the host closed the stream
                hdr = header_fields(got[0], got[1], REQUEST_FIELDS)
                body = read_value(self.stream, self.decoder, limits)
                if body is None:
                    why = "stream ended before a response body"       # R11
                    break
                with self.lock:
                    c = self.pending.pop(hdr[b"Seq"], None)
                if c is None:
                    log("API: ignoring a response with unknown Seq %d" % hdr[b"Seq"])  # RPC-6
                    continue
                if hdr[b"Error"]:                           # RPC-10: fail with the text
                    c.error = hdr[b"Error"].decode("utf-8", "replace")
                elif body[0].kind != BYTES:                 # RPC-10, R9: only this call fails
                    c.error = "reply type mismatch: LoadPluginConfiguration returns []byte"
                else:
                    c.reply = body[1]
                c.done.set()
        except GobError as e:
            why = "gob error: %s" % e                       # GOB-18
            log("API stream %d: %s" % (self.stream.sid, why))
        except StreamError as e:
            why = str(e)
        self.fail_all(why)                                  # RPC-11
        self.stream.close()                                 # GOB-18, STREAM-11

    def close(self):
        """Close the API stream (RPC-20, RPC-15); pending calls fail (RPC-11)."""
        self.stream.close()
        self.fail_all("closed by the plugin")


# ---------------------------------------------------------------------------------------------
# net/rpc server for LocalHooks on the hooks stream (sections 5.4, 5.5)
# ---------------------------------------------------------------------------------------------

class HooksServer:
    def __init__(self, plugin, stream):
        self.plugin = plugin
        self.stream = stream
        self.encoder = GobEncoder()
        self.decoder = GobDecoder(plugin.limits.gob_depth)
        self.failed = False
        self.queue = queue.Queue()
        if not plugin.concurrent:
            threading.Thread(target=self.worker, daemon=True, name="hooks-worker").start()

    def run(self):
        limits = self.plugin.limits
        try:
            while True:
                got = read_value(self.stream, self.decoder, limits)
                if got is None:
                    break
                hdr = header_fields(got[0], got[1], REQUEST_FIELDS)   # RPC-3
                body = read_value(self.stream, self.decoder, limits)  # RPC-8: always read it
                if body is None:
                    break                             # R11: nothing to answer
                call = (hdr[b"ServiceMethod"], hdr[b"Seq"], body[0], body[1])
                if self.plugin.concurrent:
                    threading.Thread(target=self.serve, args=call, daemon=True).start()
                else:
                    self.queue.put(call)
            log("hooks stream ended by the host")
        except GobError as e:
            # GOB-18: stop reading, discard results of calls being served, close the stream.
            log("hooks stream: gob error %s; closing the stream" % e)
            self.failed = True
        except StreamError as e:
            log("hooks stream: %s" % e)
        self.stream.close()                           # STREAM-11 / GOB-18
        # LIFE-21: the process keeps running until the connection ends.

    def worker(self):
        """Default mode: calls run one at a time and are answered in request order."""
        while True:
            self.serve(*self.queue.get())

    def serve(self, method, seq, arg_type, arg):
        error = self.dispatch(method, arg_type, arg)
        if self.plugin.concurrent:
            threading.Event().wait(random.uniform(0, 0.020))   # let responses overtake
        self.respond(method, seq, error)

    def dispatch(self, method, arg_type, arg):
        """RPC-8, RPC-9: Go's texts for calls that cannot be made; RPC-12: the methods."""
        dot = method.rfind(b".")
        if dot < 0:
            return b"rpc: service/method request ill-formed: " + method
        service, name = method[:dot], method[dot + 1:]
        if service != b"LocalHooks":
            return b"rpc: can't find service " + method
        if name == b"OnActivate":
            if arg_type.kind != INT:                 # Table 5-11: type 2 only
                return b"rpc: argument type mismatch: OnActivate takes an int"
            return self.plugin.on_activate(arg)
        if name == b"OnDeactivate":
            if arg_type.kind != STRUCT:              # Table 5-11: any struct type
                return b"rpc: argument type mismatch: OnDeactivate takes an empty struct"
            return self.plugin.on_deactivate()
        return b"rpc: can't find method " + method

    def respond(self, method, seq, error):
        """RPC-5: exactly one response with the request's ServiceMethod and Seq; RPC-7."""
        if self.failed:
            return                                    # GOB-18: results are discarded
        if error is not None and not error:
            error = b"hook failed"                    # RPC-7: never an empty Error
        if len(method) > GOB_MIN_MAX_MESSAGE - 64:
            method = b""                              # RPC-21: the echo alone does not fit
        if len(method) + len(error or b"") > GOB_MIN_MAX_MESSAGE - 64:
            error = error and b"rpc: request rejected"    # GOB-16, RPC-21: stay within 4 MiB
        try:
            with self.stream.send_lock:
                self.stream.write(self.encoder.response(method, seq, error))
        except StreamError as e:
            log("cannot answer %r (Seq %d): %s" % (method, seq, e))


# ---------------------------------------------------------------------------------------------
# The plugin: handshake, activation, hooks (chapters 04, 05.5, 06.10)
# ---------------------------------------------------------------------------------------------

class Plugin:
    def __init__(self, limits, concurrent):
        self.limits = limits
        self.concurrent = concurrent
        self.conn = Connection(limits)
        self.table = StreamTable(self.conn, limits)
        self.conn.streams = self.table
        self.act_lock = threading.Lock()
        self.max_api_id = 0
        self.api = None

    def start(self):
        # HS-1, STREAM-4: open (register) hooks stream 2 before announcing it; the announcement
        # is the first frame, and the only one ever sent on stream 0 (HS-2).
        hooks = self.table.register(HOOKS_STREAM_ID)
        try:
            self.conn.write_frame(0, b"\x00" + put_varint(HOOKS_STREAM_ID))
        except StreamError:
            self.conn.end(0, "cannot announce")
        threading.Thread(target=HooksServer(self, hooks).run, daemon=True,
                         name="hooks-server").start()
        self.conn.run()                              # never returns

    def on_activate(self, api_id):
        """RPC-14: reject ids the host cannot have allocated; RPC-20: close the previous API
        stream, connect the new one, run the hook, answer."""
        with self.act_lock:
            if api_id <= 0 or api_id % 2 == 0 or api_id <= self.max_api_id:
                return b"invalid API stream id %d" % api_id
            self.max_api_id = api_id
            if self.api is not None:
                self.api.close()
            client = self.api = ApiClient(self, self.table.register(api_id))
        return self.hook_on_activate(client)

    def on_deactivate(self):
        """RPC-15: run the hook, then close the API stream, then answer."""
        error = self.hook_on_deactivate()
        with self.act_lock:
            if self.api is not None:
                self.api.close()
                self.api = None
        return error

    # --- the plugin's own hooks ----------------------------------------------------------------

    def hook_on_activate(self, client):
        """Loads the configuration once; succeeds whatever the outcome (section 5.5.5)."""
        try:
            config = client.call(b"LocalAPI.LoadPluginConfiguration")
            log("LoadPluginConfiguration: %d bytes: %s" % (
                len(config), config[:200].decode("utf-8", "replace")))
        except RpcError as e:
            log("LoadPluginConfiguration failed: %s" % e)
        return None

    def hook_on_deactivate(self):
        log("OnDeactivate")
        return None


def main():
    p = argparse.ArgumentParser(description="rpcplugin wire protocol 1 plugin (Python)")
    p.add_argument("--limits", choices=("min", "large"), default="min")
    p.add_argument("--concurrent", action="store_true")
    args = p.parse_args()
    # TRANS-5: standard input is never read.  Python ignores SIGPIPE, so a write to a closed
    # pipe fails with EPIPE (section 1.5).
    log("starting (limits=%s, %s)" % (args.limits, "concurrent" if args.concurrent else "ordered"))
    Plugin(Limits(args.limits == "large"), args.concurrent).start()


if __name__ == "__main__":
    main()
