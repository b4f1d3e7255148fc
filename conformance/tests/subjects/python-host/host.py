"""A host for rpcplugin wire protocol 1, in Python 3.11 with the standard library only.

Written from the specification alone (spec/ chapters 01 to 07).  Comments cite requirement ids
(TRANS-n, FRAME-n, STREAM-n, HS-n, GOB-n, RPC-n, LIFE-n) and table rows (S1.., H1.., G1.., R1..,
L1..).  Layers, bottom up:

  * varints and frames (chapter 02)            -> put_varint, parse_varint, Connection._read_loop
  * streams (chapter 03)                       -> Stream, Connection
  * handshake (chapter 04)                     -> Connection._announce
  * gob subset and net/rpc (chapter 05)        -> GobEncoder, GobDecoder, HooksClient, ApiServer
  * bundle, launch, supervisor (chapters 01, 06) -> read_bundle, PluginProcess, Supervisor

Deliberate choices (all within what the spec allows, except where README.md says otherwise):
every receive limit is the spec's minimum; a stream's bytes count as unread until the RPC layer
takes a whole gob message out of it; defined gob types are numbered per gob stream in first-use
order from 65 (GOB-8 is only a SHOULD) unless FIXED_TYPE_IDS is set.
"""

from __future__ import annotations

import json
import os
import select
import signal
import struct
import sys
import threading
import time
import fcntl

# ------------------------------------------------------------------ constants (README 2.4)

MIN_MAX_PAYLOAD = 1 << 20          # FRAME-7, FRAME-9
MIN_STREAM_BUFFER = 8 << 20        # STREAM-13 (spec 1.0.0-draft.2; 1 MiB in draft.1)
START_TIMEOUT = 3.0                # HS-4
RESTART_DELAY_MIN = 1.0            # LIFE-8
RESTART_DELAY_MAX = 30.0           # LIFE-9
STABLE_PERIOD = 60.0               # LIFE-10
DEACTIVATE_TIMEOUT = 5.0           # LIFE-16
STOP_GRACE = 6.0                   # LIFE-17
GOB_MIN_MAX_MESSAGE = 4 << 20      # GOB-15, GOB-16
GOB_MIN_MAX_DEPTH = 16             # GOB-17

# This host's own limits: every one at the spec's minimum.
PAYLOAD_LIMIT = MIN_MAX_PAYLOAD          # FRAME-8: largest payload accepted in one frame
STREAM_BUFFER_LIMIT = MIN_STREAM_BUFFER  # STREAM-13: unread bytes per data stream
GOB_MESSAGE_LIMIT = GOB_MIN_MAX_MESSAGE  # GOB-15
GOB_DEPTH_LIMIT = GOB_MIN_MAX_DEPTH      # GOB-17

# True (the brief's choice): a stream's bytes count as unread (STREAM-13) until the RPC layer takes
# a WHOLE gob message out.  With a 1 MiB buffer this resets streams that carry a well-formed message
# of more than 1 MiB, which GOB-15 forbids (section 5.2.10).  False: the bytes of the message being
# assembled count as consumed, as section 5.2.10 describes (driver option --assemble-messages).
WHOLE_MESSAGE_ACCOUNTING = True

# GOB-8 is a SHOULD.  False: number defined types per gob stream in first-use order from 65.
FIXED_TYPE_IDS = False

READ_CHUNK = 256 * 1024

# Debugging aid: when set, every byte the host writes to a plugin is appended to
# $PYHOST_CAPTURE_DIR/<plugin>-<pid>.bin (decode with `rpcplugin-conformance inspect --from host`).
CAPTURE_DIR = os.environ.get("PYHOST_CAPTURE_DIR")


def log(msg: str) -> None:
    """Diagnostics go to standard error, never to standard output (DRV-1)."""
    try:
        sys.stderr.write("[host %.3f] %s\n" % (time.monotonic(), msg))
        sys.stderr.flush()
    except Exception:
        pass


# ================================================================== chapter 02: varints, frames

class FramingError(Exception):
    """A connection error detected by the frame decoder (FRAME-4..6, FRAME-8, FRAME-13)."""


def put_varint(v: int) -> bytes:
    """FRAME-2: Go's binary.PutVarint: zigzag, then 7 bits per byte, least significant first."""
    u = ((v << 1) ^ (v >> 63)) & 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while u >= 0x80:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def parse_varint(buf, pos: int):
    """Decode a Go varint at buf[pos:].  Returns (value, next_pos), or None when the bytes end
    first.  Non-minimal encodings are accepted (FRAME-3); a tenth byte above 01 overflows (FRAME-4)."""
    u = 0
    for i in range(10):
        if pos + i >= len(buf):
            return None
        b = buf[pos + i]
        if i == 9 and b > 0x01:
            raise FramingError("varint overflows 64 bits (FRAME-4)")
        u |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            return (u >> 1) ^ -(u & 1), pos + i + 1
    raise FramingError("varint overflows 64 bits (FRAME-4)")  # not reached


# ================================================================== chapter 03: streams

OPEN, REMOTE_CLOSED, LOCAL_CLOSED, RESET, CLOSED = "open", "remote-closed", "local-closed", "reset", "closed"


class StreamFailed(Exception):
    """A read or write on a stream failed: end of the connection (STREAM-12), a reset
    (STREAM-15), or a write after a close (S11, S15, S20)."""


class HandshakeError(Exception):
    """HS-5."""


class Stream:
    """One data stream as seen by the host (Table 3-1).  Shares the connection's lock.

    Buffering choice: received bytes stay in self.buf, and count as unread (STREAM-13), until
    take_message() removes a WHOLE gob message.  The limit is exactly MIN_STREAM_BUFFER."""

    def __init__(self, conn: "Connection", sid: int):
        self.conn = conn
        self.id = sid
        self.state = OPEN
        self.buf = bytearray()
        self.error = None
        self.close_sent = False          # guarded by conn.write_lock (STREAM-8)
        self.cv = threading.Condition(conn.lock)

    # -- receiving (called by the reader thread with conn.lock held); returns True when the
    #    stream was just reset and its close frame must be sent.
    def _on_frame(self, payload: bytes) -> bool:
        if not payload:                                   # a zero-length (close) frame
            if self.state == OPEN:
                self.state = REMOTE_CLOSED                # S6, STREAM-10
            elif self.state in (LOCAL_CLOSED, RESET):
                self.state = CLOSED                       # S14, S19: forget the stream
                self.conn.streams.pop(self.id, None)
            self.cv.notify_all()                          # S10: discarded otherwise
            return False
        if self.state != OPEN:
            return False                                  # S9, S13, S18 (STREAM-9)
        unread = len(self.buf) - (0 if WHOLE_MESSAGE_ACCOUNTING else self._assembling())
        if unread + len(payload) > STREAM_BUFFER_LIMIT:
            # S5 overflow, STREAM-15: discard buffered data, fail the reader, close the stream.
            self.buf = bytearray()
            self.state = RESET
            self.error = "stream %d reset: more than %d unread bytes (STREAM-15)" % (self.id, STREAM_BUFFER_LIMIT)
            self.cv.notify_all()
            return True
        self.buf += payload
        self.cv.notify_all()
        return False

    def _assembling(self) -> int:
        """Bytes at the head of buf that belong to a gob message that is not complete yet."""
        try:
            got = _peek_gob_message(self.buf, partial=True) if self.buf else None
        except GobError:
            return 0
        if got is None or len(self.buf) >= got[0] + got[1]:
            return 0
        return len(self.buf)

    # -- reading: one whole gob message (GOB-4) at a time
    def take_message(self):
        """Block until a whole gob message is buffered and return its body.  Returns None at
        end-of-stream on a message boundary (G20); raises GobError for a malformed or truncated
        message, StreamFailed for a reset stream or the end of the connection (STREAM-12)."""
        with self.cv:
            while True:
                if self.state in (OPEN, REMOTE_CLOSED) and self.buf:
                    got = _peek_gob_message(self.buf)
                    if got is not None:
                        start, length = got
                        body = bytes(self.buf[start:start + length])
                        del self.buf[:start + length]
                        return body
                if self.state == REMOTE_CLOSED:          # S6, S17: buffered data, then EOF
                    if self.buf:
                        raise GobError("truncated", "the stream ended inside a message")
                    return None
                if self.state == RESET:
                    raise StreamFailed(self.error)
                if self.state != OPEN:
                    raise StreamFailed("stream %d closed locally" % self.id)
                if self.conn.ended:
                    raise StreamFailed("connection ended: %s" % self.conn.end_reason)
                self.cv.wait()

    def write(self, data: bytes) -> None:
        """S7: send data as frames of at most MIN_MAX_PAYLOAD bytes; empty writes send nothing."""
        if not data:
            return                                        # STREAM-7
        with self.conn.lock:
            if self.conn.ended:
                raise StreamFailed("connection ended: %s" % self.conn.end_reason)
            if self.state == REMOTE_CLOSED:
                raise StreamFailed("stream %d closed by peer" % self.id)   # S11
            if self.state == RESET:
                raise StreamFailed(self.error)                             # S20
            if self.state != OPEN:
                raise StreamFailed("stream %d closed" % self.id)           # S15
        self.conn.send_data(self, data)

    def close(self) -> None:
        """S8, S12, S16, S21: send one close frame at most, unless the connection has ended."""
        with self.conn.lock:
            send = False
            if self.state == OPEN:
                self.state = LOCAL_CLOSED
                self.buf = bytearray()                    # S8: drop buffered data
                send = True
            elif self.state == REMOTE_CLOSED:
                self.state = CLOSED                       # S12
                self.conn.streams.pop(self.id, None)
                send = True
            self.cv.notify_all()
        if send:
            self.conn.send_close(self)


class ConnectionEnded(Exception):
    pass


class Connection:
    """The host's side of the two pipes (chapter 01) with the frame reader (chapter 02), the
    stream table (chapter 03) and the handshake (chapter 04).

    Threads: one reader thread owns rfd; writers serialise whole frames under write_lock
    (FRAME-10).  Both pipe ends are non-blocking and every wait also watches a wake-up pipe, so
    that end() can interrupt a reader or a writer blocked on a plugin that stopped reading."""

    def __init__(self, rfd: int, wfd: int, name: str, on_change):
        self.rfd, self.wfd = rfd, wfd
        self.name = name
        self.on_change = on_change               # on_change(conn), no lock held: after handshake and end
        self.lock = threading.Lock()
        self.write_lock = threading.Lock()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1                         # STREAM-2: odd ids 1, 3, 5, ...
        self.ended = False
        self.end_reason = None
        self.end_done = threading.Event()
        self.handshake = "pending"               # pending | ok  (Table 4-2)
        self.hooks_stream: Stream | None = None
        self.capture = open(os.path.join(CAPTURE_DIR, name + ".bin"), "ab") if CAPTURE_DIR else None
        self.wake_r, self.wake_w = os.pipe()
        for fd in (rfd, wfd, self.wake_r, self.wake_w):
            os.set_blocking(fd, False)
        self.reader = threading.Thread(target=self._read_loop, name="reader-" + name, daemon=True)
        self.reader.start()

    # ---------------------------------------------------------------- receiving (chapter 02)
    def _read_loop(self) -> None:
        buf = bytearray()
        reason = None
        poller = select.poll()
        poller.register(self.rfd, select.POLLIN)
        poller.register(self.wake_r, select.POLLIN)
        try:
            while True:
                used = self._parse(buf)
                if used:
                    del buf[:used]
                if self.ended:
                    break
                ready = [fd for fd, _ in poller.poll()]
                if self.wake_r in ready:
                    break                         # end() was called by someone else
                try:
                    data = os.read(self.rfd, READ_CHUNK)
                except BlockingIOError:
                    continue
                except OSError as e:
                    reason = "read failed: %s" % e
                    break
                if not data:
                    # FRAME-13: EOF inside a frame is a connection error; at a boundary it is
                    # the clean end (TRANS-7).
                    reason = ("connection error: end-of-file inside a frame (FRAME-13)" if buf
                              else "end-of-file on the plugin's output")
                    break
                buf += data
        except FramingError as e:
            reason = "connection error: %s" % e   # FRAME-14
        except HandshakeError as e:
            reason = "handshake error: %s" % e    # HS-5
        except Exception as e:                    # never let a bug leave the connection open
            reason = "internal error in the reader: %r" % e
        self.end(reason or "ended by the host")
        for fd in (self.rfd, self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def _parse(self, buf) -> int:
        """Deliver every whole frame at the start of buf; return the number of bytes used.
        FRAME-12: the result does not depend on how the bytes were split into reads."""
        pos = 0
        while not self.ended:
            r = parse_varint(buf, pos)
            if r is None:
                return pos
            sid, p = r
            if sid < 0:
                raise FramingError("negative stream id %d (FRAME-5)" % sid)
            r = parse_varint(buf, p)
            if r is None:
                return pos
            length, p = r
            if length < 0:
                raise FramingError("negative payload length %d (FRAME-6)" % length)
            if length > PAYLOAD_LIMIT:            # FRAME-8: before waiting for the payload
                raise FramingError("payload length %d above the limit %d (FRAME-8)" % (length, PAYLOAD_LIMIT))
            if len(buf) - p < length:
                return pos
            payload = bytes(buf[p:p + length])
            pos = p + length
            self._deliver(sid, payload)
        return pos

    def _deliver(self, sid: int, payload: bytes) -> None:
        if sid == 0:
            if self.handshake == "pending":
                self._announce(payload)           # the first stream-0 frame (HS-5)
            return                                # HS-8: later stream-0 frames are discarded
        reset = None
        with self.lock:
            st = self.streams.get(sid)
            if st is not None and st._on_frame(payload):
                reset = st
        # st is None: STREAM-5 (also H3 before the announcement): discard.
        if reset is not None:
            self.send_close(reset)                # STREAM-15: close the reset stream

    def _announce(self, payload: bytes) -> None:
        """HS-5 / Table 4-1: judge the announcement by this frame alone; HS-7: connect."""
        if len(payload) < 2:
            raise HandshakeError("announcement payload shorter than two bytes (%s)" % payload.hex())
        if payload[0] != 0x00:
            raise HandshakeError("control byte %02x is not 00" % payload[0])
        try:
            r = parse_varint(payload, 1)
        except FramingError:
            raise HandshakeError("the hooks stream id varint overflows")
        if r is None:
            raise HandshakeError("the hooks stream id varint is incomplete")
        hid, end = r
        if end != len(payload):
            raise HandshakeError("%d byte(s) after the hooks stream id" % (len(payload) - end))
        if hid <= 0 or hid % 2 != 0:
            raise HandshakeError("hooks stream id %d is not a positive even number" % hid)  # HS-9
        with self.lock:
            st = Stream(self, hid)                # HS-7: connect the hooks stream
            self.streams[hid] = st
            self.hooks_stream = st
            self.handshake = "ok"
        self.on_change(self)

    # ---------------------------------------------------------------- sending
    def open_stream(self) -> Stream:
        """S1, STREAM-2..4: allocate the next odd id and register it before it is published."""
        with self.lock:
            if self.ended:
                raise StreamFailed("connection ended: %s" % self.end_reason)
            sid = self.next_id
            self.next_id += 2
            st = Stream(self, sid)
            self.streams[sid] = st
            return st

    def _write_all(self, data: bytes) -> None:
        """Write one whole frame (FRAME-10, FRAME-11: one write call unless the pipe is full)."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(self.wfd, view)
                if self.capture:
                    self.capture.write(view[:n])
                    self.capture.flush()
                view = view[n:]
            except BlockingIOError:
                p = select.poll()
                p.register(self.wfd, select.POLLOUT)
                p.register(self.wake_r, select.POLLIN)
                if any(fd == self.wake_r for fd, _ in p.poll()):
                    raise ConnectionEnded()

    def send_data(self, st: Stream, data: bytes) -> None:
        failure = None
        with self.write_lock:
            if self.ended:
                raise StreamFailed("connection ended: %s" % self.end_reason)
            for off in range(0, len(data), MIN_MAX_PAYLOAD):     # FRAME-9
                if st.close_sent:
                    raise StreamFailed("stream %d closed" % st.id)  # STREAM-8: no data after close
                chunk = data[off:off + MIN_MAX_PAYLOAD]
                try:
                    self._write_all(put_varint(st.id) + put_varint(len(chunk)) + chunk)
                except ConnectionEnded:
                    raise StreamFailed("connection ended: %s" % self.end_reason)
                except OSError as e:
                    failure = e
                    break
        if failure is not None:
            self.end("write failed: %s" % failure)               # TRANS-7
            raise StreamFailed("write failed: %s" % failure)

    def send_close(self, st: Stream) -> None:
        """STREAM-8: one zero-length frame, unless the connection has already ended."""
        failure = None
        with self.write_lock:
            if self.ended or st.close_sent:
                return
            st.close_sent = True
            try:
                self._write_all(put_varint(st.id) + b"\x00")
            except ConnectionEnded:
                return
            except OSError as e:
                failure = e
        if failure is not None:
            self.end("write failed: %s" % failure)

    # ---------------------------------------------------------------- end of the connection
    def end(self, reason: str) -> None:
        """TRANS-8: close both pipe ends (the reader thread closes its own).  Idempotent."""
        with self.lock:
            if self.ended:
                first = False
            else:
                first = True
                self.ended = True
                if self.handshake == "pending" and reason.startswith("end-of-file"):
                    reason = "end-of-file before the announcement (HS-6)"
                self.end_reason = reason
                for st in self.streams.values():
                    st.cv.notify_all()           # STREAM-12: readers fail, writers fail
        if not first:
            self.end_done.wait()
            return
        try:
            os.write(self.wake_w, b"x")          # interrupt the reader and any blocked writer
        except OSError:
            pass
        with self.write_lock:
            try:
                os.close(self.wfd)
            except OSError:
                pass
        self.end_done.set()
        self.on_change(self)


# ================================================================== chapter 05: gob

class GobError(Exception):
    """A gob error (Table 5-7) or header_type_mismatch (RPC-3); an error of one RPC stream."""

    def __init__(self, kind: str, detail: str = ""):
        super().__init__("%s: %s" % (kind, detail) if detail else kind)
        self.kind = kind


def enc_uint(u: int) -> bytes:
    """GOB-1: minimal gob uint."""
    if u < 0x80:
        return bytes([u])
    b = u.to_bytes((u.bit_length() + 7) // 8, "big")
    return bytes([256 - len(b)]) + b


def enc_int(i: int) -> bytes:
    """GOB-3."""
    return enc_uint(i << 1 if i >= 0 else ((~i) << 1) | 1)


def enc_bytes(b: bytes) -> bytes:
    return enc_uint(len(b)) + b


def enc_message(body: bytes) -> bytes:
    return enc_uint(len(body)) + body     # GOB-4


def _peek_gob_message(buf, partial=False):
    """Look at the start of a stream buffer: (body_start, length) when a whole message is there,
    None when more bytes are needed.  GOB-2, GOB-4 and GOB-15 are checked as soon as the Length
    has been read, without waiting for the body."""
    b = buf[0]
    if b < 0x80:
        n, start = b, 1
    elif b < 0xF8:
        raise GobError("uint_overflow", "message length byte %02x" % b)      # GOB-2, G4
    else:
        cnt = 256 - b
        if len(buf) < 1 + cnt:
            return None
        n, start = int.from_bytes(buf[1:1 + cnt], "big"), 1 + cnt
    if n == 0:
        raise GobError("empty_message")                                     # GOB-4, G3
    if n > GOB_MESSAGE_LIMIT:
        raise GobError("message_too_large", "length %d above %d" % (n, GOB_MESSAGE_LIMIT))  # GOB-15
    if len(buf) < start + n and not partial:
        return None
    return start, n


# -- type descriptors.  Field and element types are "refs": an int type id (resolved through
#    the gob stream's table when a value uses it, GOB-9) or a descriptor (wireType's layout).

class TStruct:
    def __init__(self, name, fields):
        self.name, self.fields = name, fields      # fields: [(name, ref)]


class TSlice:
    def __init__(self, elem):
        self.elem = elem


class TArray:
    def __init__(self, elem, length):
        self.elem, self.length = elem, length


class TMap:
    def __init__(self, key, elem):
        self.key, self.elem = key, elem


class TOpaque:                                     # GobEncoder, BinaryMarshaler, TextMarshaler
    pass


BASIC = {1: "bool", 2: "int", 3: "uint", 4: "float", 5: "bytes", 6: "string", 7: "complex"}

# Section 5.2.7: the fixed layout of wireType and its parts.
_COMMON = TStruct("CommonType", [("Name", 6), ("Id", 2)])
_FIELD = TStruct("fieldType", [("Name", 6), ("Id", 2)])
_GOBENC = TStruct("gobEncoderType", [("CommonType", _COMMON)])
WIRE_TYPE = TStruct("wireType", [
    ("ArrayT", TStruct("arrayType", [("CommonType", _COMMON), ("Elem", 2), ("Len", 2)])),
    ("SliceT", TStruct("sliceType", [("CommonType", _COMMON), ("Elem", 2)])),
    ("StructT", TStruct("structType", [("CommonType", _COMMON), ("Field", TSlice(_FIELD))])),
    ("MapT", TStruct("mapType", [("CommonType", _COMMON), ("Key", 2), ("Elem", 2)])),
    ("GobEncoderT", _GOBENC), ("BinaryMarshalerT", _GOBENC), ("TextMarshalerT", _GOBENC),
])


class GobDecoder:
    """The receiving side of one gob stream: its type table (GOB-6) and the value decoder."""

    def __init__(self):
        self.types: dict[int, object] = {}

    # -- primitive readers over self.b[self.p:self.end]
    def _uint(self) -> int:
        if self.p >= self.end:
            raise GobError("past_end", "uint")
        b = self.b[self.p]
        if b < 0x80:
            self.p += 1
            return b
        if b < 0xF8:
            raise GobError("uint_overflow", "first byte %02x" % b)          # GOB-2
        cnt = 256 - b
        if self.p + 1 + cnt > self.end:
            raise GobError("past_end", "uint of %d bytes" % cnt)
        v = int.from_bytes(self.b[self.p + 1:self.p + 1 + cnt], "big")      # non-minimal: fine
        self.p += 1 + cnt
        return v

    def _int(self) -> int:
        u = self._uint()
        return u >> 1 if u & 1 == 0 else -((u + 1) >> 1)                    # GOB-3

    def _raw(self, n: int) -> bytes:
        if n > self.end - self.p:
            raise GobError("past_end", "%d bytes" % n)                       # GOB-20
        v = self.b[self.p:self.p + n]
        self.p += n
        return v

    def _count(self) -> int:
        n = self._uint()
        if n > self.end - self.p:       # every element takes at least one byte
            raise GobError("past_end", "count %d" % n)
        return n

    def _resolve(self, ref):
        if not isinstance(ref, int):
            return ref
        if ref in BASIC:
            return BASIC[ref]
        if ref == 8:
            raise GobError("unsupported_type", "interface")                  # GOB-9, G13
        t = self.types.get(ref)
        if t is None:
            raise GobError("undefined_type", "type id %d" % ref)             # GOB-9, G6
        return t

    def _value(self, ref, depth: int):
        t = self._resolve(ref)
        if isinstance(t, str):
            if t == "bool":
                return self._uint() != 0
            if t == "int":
                return self._int()
            if t == "uint":
                return self._uint()
            if t == "float":
                return struct.unpack("<d", self._uint().to_bytes(8, "big"))[0]
            if t == "complex":
                re_ = struct.unpack("<d", self._uint().to_bytes(8, "big"))[0]
                return complex(re_, struct.unpack("<d", self._uint().to_bytes(8, "big"))[0])
            return self._raw(self._uint())                                   # bytes, string
        if isinstance(t, TOpaque):
            return self._raw(self._uint())
        if depth > GOB_DEPTH_LIMIT:                                         # GOB-17
            raise GobError("too_deep", "composite value at depth %d" % depth)
        if isinstance(t, TStruct):                                          # GOB-11
            vals, num = {}, -1
            while True:
                delta = self._uint()
                if delta == 0:
                    return vals
                num += delta
                if num >= len(t.fields):
                    raise GobError("field_out_of_range", "field %d of %s" % (num, t.name or "struct"))
                fname, fref = t.fields[num]
                vals[fname] = self._value(fref, depth + 1)
        if isinstance(t, TSlice):
            return [self._value(t.elem, depth + 1) for _ in range(self._count())]
        if isinstance(t, TArray):
            n = self._count()
            if n != t.length:
                raise GobError("array_length_mismatch", "%d != %d" % (n, t.length))
            return [self._value(t.elem, depth + 1) for _ in range(n)]
        if isinstance(t, TMap):
            return [(self._value(t.key, depth + 1), self._value(t.elem, depth + 1))
                    for _ in range(self._count())]
        raise GobError("unsupported_type", repr(t))

    @staticmethod
    def _definition(w: dict):
        """GOB-10: exactly one kind; struct field names non-empty and unique; array Len >= 0."""
        if len(w) != 1:
            raise GobError("bad_definition", "wireType with %d kinds" % len(w))
        kind, v = next(iter(w.items()))
        name = v.get("CommonType", {}).get("Name", b"").decode("utf-8", "replace")
        if kind == "StructT":
            fields, seen = [], set()
            for f in v.get("Field", []):
                fname = f.get("Name", b"").decode("utf-8", "replace")
                if not fname or fname in seen:
                    raise GobError("bad_definition", "struct field name %r" % fname)
                seen.add(fname)
                fields.append((fname, f.get("Id", 0)))
            return TStruct(name, fields)
        if kind == "SliceT":
            return TSlice(v.get("Elem", 0))
        if kind == "ArrayT":
            if v.get("Len", 0) < 0:
                raise GobError("bad_definition", "negative array length")
            return TArray(v.get("Elem", 0), v.get("Len", 0))
        if kind == "MapT":
            return TMap(v.get("Key", 0), v.get("Elem", 0))
        return TOpaque()

    def decode(self, body: bytes):
        """One message body.  A definition updates the table and returns None; a value message
        returns (type_id, descriptor, value)."""
        self.b, self.p, self.end = body, 0, len(body)
        tid = self._int()
        if tid < 0:
            tid = -tid
            if tid < 64 or tid in self.types:                               # GOB-6, G7
                raise GobError("duplicate_type", "definition of type id %d" % tid)
            desc = self._definition(self._value(WIRE_TYPE, 1))
            if self.p != self.end:
                raise GobError("trailing_bytes", "after a definition")      # GOB-5
            self.types[tid] = desc
            return None
        desc = self._resolve(tid)
        if not isinstance(desc, TStruct):
            d = self._uint()
            if d != 0:
                raise GobError("nonzero_singleton", "delta %d" % d)         # GOB-13
        value = self._value(tid, 1)
        if self.p != self.end:
            raise GobError("trailing_bytes", "after a value")               # GOB-5, G14
        return tid, desc, value

    def next_value(self, stream: Stream):
        """Read messages until a value message; None at the clean end of the stream."""
        while True:
            body = stream.take_message()
            if body is None:
                return None
            v = self.decode(body)
            if v is not None:
                return v


def rpc_header(v):
    """RPC-3: any struct type; ServiceMethod, Seq and Error by name; other fields skipped."""
    tid, desc, value = v
    if not isinstance(desc, TStruct):
        raise GobError("header_type_mismatch", "the header is not a struct")
    want = {"ServiceMethod": 6, "Seq": 3, "Error": 6}
    for fname, ref in desc.fields:
        if fname in want and ref != want[fname]:
            raise GobError("header_type_mismatch", "field %s has type %r" % (fname, ref))
    return (value.get("ServiceMethod", b"").decode("utf-8", "replace"), value.get("Seq", 0),
            value.get("Error", b"").decode("utf-8", "replace"))


class GobEncoder:
    """The sending side of one gob stream.  Only three types are ever defined (Request,
    Response, the empty struct), each once per gob stream before its first use (GOB-7)."""

    FIXED = {"Request": 65, "Response": 66, "": 67}                         # GOB-8
    FIELDS = {"Request": [("ServiceMethod", 6), ("Seq", 3)],
              "Response": [("ServiceMethod", 6), ("Seq", 3), ("Error", 6)], "": []}

    def __init__(self):
        self.ids: dict[str, int] = {}
        self.next_id = 65

    def _type(self, name: str, out: list) -> int:
        tid = self.ids.get(name)
        if tid is None:
            if FIXED_TYPE_IDS:
                tid = self.FIXED[name]
            else:
                tid, self.next_id = self.next_id, self.next_id + 1
            self.ids[name] = tid
            out.append(enc_message(self._definition(name, tid)))
        return tid

    def _definition(self, name: str, tid: int) -> bytes:
        # wireType{StructT: structType{CommonType{Name, Id}, Field: [...]}} (section 5.2.7);
        # zero fields omitted, struct-kind fields always sent (GOB-12).
        common = (b"\x01" + enc_bytes(name.encode()) + b"\x01" if name else b"\x02") + enc_int(tid) + b"\x00"
        st = b"\x01" + common
        fields = self.FIELDS[name]
        if fields:
            st += b"\x01" + enc_uint(len(fields)) + b"".join(
                b"\x01" + enc_bytes(f.encode()) + b"\x01" + enc_int(t) + b"\x00" for f, t in fields)
        return enc_int(-tid) + b"\x03" + st + b"\x00" + b"\x00"

    @staticmethod
    def _struct(fields) -> bytes:
        """A struct value from [(field number, encoded value or None)] (GOB-11, GOB-12)."""
        out, last = b"", -1
        for num, enc in fields:
            if enc is not None:
                out += enc_uint(num - last) + enc
                last = num
        return out + b"\x00"

    def _body(self, kind: str, value, out: list) -> None:
        if kind == "int":
            out.append(enc_message(enc_int(2) + b"\x00" + enc_int(value)))        # GOB-13
        elif kind == "bytes":
            out.append(enc_message(enc_int(5) + b"\x00" + enc_bytes(value)))
        else:
            tid = self._type("", out)
            out.append(enc_message(enc_int(tid) + b"\x00"))

    def request(self, method: str, seq: int, kind: str, value=None) -> bytes:
        out: list = []
        tid = self._type("Request", out)
        out.append(enc_message(enc_int(tid) + self._struct([
            (0, enc_bytes(method.encode()) if method else None),
            (1, enc_uint(seq) if seq else None)])))
        self._body(kind, value, out)
        return b"".join(out)

    def response(self, method: str, seq: int, error: str, kind: str, value=None) -> bytes:
        out: list = []
        tid = self._type("Response", out)
        out.append(enc_message(enc_int(tid) + self._struct([
            (0, enc_bytes(method.encode()) if method else None),
            (1, enc_uint(seq) if seq else None),
            (2, enc_bytes(error.encode()) if error else None)])))
        self._body("empty" if error else kind, value, out)                        # RPC-7
        return b"".join(out)


# ================================================================== chapter 05: net/rpc

class CallFailed(Exception):
    pass


class Pending:
    def __init__(self, method: str):
        self.method = method
        self.done = threading.Event()
        self.error: str | None = None

    def finish(self, error: str | None) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


class HooksClient:
    """The host's net/rpc client on the hooks stream (RPC-1, RPC-4..6, RPC-10, RPC-11)."""

    def __init__(self, stream: Stream, on_end, notify):
        self.stream = stream
        self.on_end, self.notify = on_end, notify
        self.enc, self.dec = GobEncoder(), GobDecoder()
        self.send_lock = threading.Lock()          # one request at a time on the wire (RPC-2)
        self.lock = threading.Lock()
        self.seq = 0
        self.pending: dict[int, Pending] = {}
        self.dead: str | None = None
        threading.Thread(target=self._read_loop, name="hooks-%d" % stream.id, daemon=True).start()

    def start_call(self, method: str, kind: str, value=None) -> Pending:
        with self.send_lock:
            with self.lock:
                if self.dead:
                    raise CallFailed(self.dead)      # RPC-11: later calls fail at once
                seq = self.seq                       # RPC-4: 0, 1, 2, ... in sending order
                self.seq += 1
                p = Pending(method)
                self.pending[seq] = p
            try:
                self.stream.write(self.enc.request(method, seq, kind, value))
            except StreamFailed as e:
                with self.lock:
                    self.pending.pop(seq, None)
                p.finish("sending %s failed: %s" % (method, e))
        return p

    def _read_loop(self) -> None:
        try:
            while True:
                hdr = self.dec.next_value(self.stream)
                if hdr is None:
                    reason = "the hooks stream ended (closed by the plugin)"
                    break
                _, seq, err = rpc_header(hdr)
                body = self.dec.next_value(self.stream)
                if body is None:                     # R11
                    reason = "the hooks stream ended between a response header and its body"
                    break
                with self.lock:
                    p = self.pending.pop(seq, None)
                if p is None:
                    continue                         # RPC-6, R7: no pending call; discard
                if err:
                    p.finish(err)                    # RPC-10, R8
                elif not isinstance(body[1], TStruct):
                    p.finish("reply type mismatch: %s returned type id %d, not a struct" % (p.method, body[0]))  # R9
                else:
                    p.finish(None)
                self.notify()
        except GobError as e:
            reason = "gob error on the hooks stream: %s" % e          # GOB-18
        except StreamFailed as e:
            reason = "the hooks stream failed: %s" % e
        except Exception as e:
            reason = "internal error on the hooks stream: %r" % e
        with self.lock:
            self.dead = reason
            pend = list(self.pending.values())
            self.pending.clear()
        for p in pend:
            p.finish(reason)                         # RPC-11
        self.stream.close()                          # GOB-18, STREAM-11
        self.notify()
        self.on_end(reason)


class ApiServer:
    """The host's net/rpc server for LocalAPI on one API stream (RPC-8, RPC-9, RPC-12, RPC-18)."""

    def __init__(self, stream: Stream, config_json: bytes):
        self.stream = stream
        self.config_json = config_json
        self.enc, self.dec = GobEncoder(), GobDecoder()
        threading.Thread(target=self._serve, name="api-%d" % stream.id, daemon=True).start()

    def _answer(self, method: str, arg) -> tuple[str, bytes | None]:
        if "." not in method:
            err = "rpc: service/method request ill-formed: " + method          # RPC-9
        else:
            service, name = method.rsplit(".", 1)
            if service != "LocalAPI":
                err = "rpc: can't find service " + method
            elif name != "LoadPluginConfiguration":
                err = "rpc: can't find method " + method
            elif not isinstance(arg[1], TStruct):                                  # R5
                err = "rpc: argument type mismatch: LoadPluginConfiguration takes a struct, got type id %d" % arg[0]
            else:
                # RPC-18; GOB-16: a reply that needs a message above the limit is an error
                body_len = 2 + len(enc_uint(len(self.config_json))) + len(self.config_json)
                if body_len > GOB_MIN_MAX_MESSAGE:
                    return ("the configuration (%d bytes) does not fit in one gob message" % len(self.config_json), None)
                return "", self.config_json
        return err, None

    def _serve(self) -> None:
        try:
            while True:
                hdr = self.dec.next_value(self.stream)
                if hdr is None:
                    break                            # the plugin closed the stream (RPC-15)
                method, seq, _ = rpc_header(hdr)
                arg = self.dec.next_value(self.stream)   # RPC-8: always read the argument first
                if arg is None:
                    break                            # R11: nothing to answer
                err, reply = self._answer(method, arg)
                self.stream.write(self.enc.response(method, seq, err, "bytes", reply))   # RPC-5
        except GobError as e:
            log("API stream %d: gob error: %s" % (self.stream.id, e))              # GOB-18
        except StreamFailed:
            pass
        except Exception as e:
            log("API stream %d: internal error: %r" % (self.stream.id, e))
        self.stream.close()                          # STREAM-11, GOB-18


# ================================================================== chapter 06: bundle

class BundleError(Exception):
    pass


def read_bundle(bundle_dir: str) -> str:
    """LIFE-1..3: the executable named by plugin.json's backend.executable."""
    path = os.path.join(bundle_dir, "plugin.json")
    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise BundleError("no manifest available: %s" % e)
    try:
        manifest = json.loads(text)
    except ValueError as e:
        raise BundleError("plugin.json is not valid JSON: %s" % e)
    if not isinstance(manifest, dict):
        raise BundleError("plugin.json is not a JSON object")
    backend = manifest.get("backend")
    if not isinstance(backend, dict):
        raise BundleError("no backend executable specified (no backend object)")
    exe = backend.get("executable")
    if not isinstance(exe, str) or not exe:
        raise BundleError("no backend executable specified")
    if os.path.isabs(exe) or ".." in exe.replace("\\", "/").split("/"):
        raise BundleError("backend.executable %r leaves the bundle directory (LIFE-3)" % exe)
    return os.path.join(bundle_dir, exe)


# ================================================================== chapter 01: launching

def close_inherited_descriptors() -> None:
    """TRANS-4: set close-on-exec on every descriptor above 2 that this process inherited.
    Python opens all of its own descriptors with close-on-exec already."""
    try:
        fds = [int(x) for x in os.listdir("/proc/self/fd")]
    except OSError:
        fds = range(3, 1024)
    for fd in fds:
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:
                pass


def describe_exit(status) -> dict | None:
    if status is None:
        return None
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            return {"signal": signal.Signals(sig).name}
        except ValueError:
            return {"signal": "SIG%d" % sig}
    return {"code": os.WEXITSTATUS(status)}


class PluginProcess:
    """One launched plugin process: fds 3/4 are pipes to us, 0 is /dev/null (TRANS-1, TRANS-6).
    A waiter thread reaps it as soon as it exits (LIFE-19)."""

    def __init__(self, path: str, on_exit):
        h2p_r, h2p_w = os.pipe()          # close-on-exec (Python's default)
        p2h_r, p2h_w = os.pipe()
        # Move the child's ends to descriptors >= 5 so that dup2 onto 3 and 4 always makes a
        # new descriptor, whose close-on-exec flag is clear (TRANS-1, TRANS-4).
        child_r = fcntl.fcntl(h2p_r, fcntl.F_DUPFD_CLOEXEC, 5)
        child_w = fcntl.fcntl(p2h_w, fcntl.F_DUPFD_CLOEXEC, 5)
        os.close(h2p_r)
        os.close(p2h_w)
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),   # TRANS-6
            (os.POSIX_SPAWN_DUP2, 2, 1),      # plugin stdout -> our stderr: never protocol (TRANS-3, DRV-1)
            (os.POSIX_SPAWN_DUP2, child_r, 3),
            (os.POSIX_SPAWN_DUP2, child_w, 4),
        ]
        try:
            # TRANS-13 (draft.2): the plugin leads a process group of its own (setpgroup=0).
            # TRANS-14..16 (draft.3): argv = [path], an empty signal mask, every standard signal
            # at its default action (also those this process inherited as ignored: SIGHUP under
            # nohup, SIGINT and SIGQUIT in a background job).
            defaults = [s for s in range(1, 32) if s not in (signal.SIGKILL, signal.SIGSTOP)]
            self.pid = os.posix_spawn(path, [path], dict(os.environ), file_actions=actions,
                                      setsigdef=defaults, setsigmask=(), setpgroup=0)
        except BaseException:
            os.close(h2p_w)
            os.close(p2h_r)
            raise
        finally:
            os.close(child_r)                 # TRANS-12
            os.close(child_w)
        self.wfd, self.rfd = h2p_w, p2h_r
        self.on_exit = on_exit
        self.lock = threading.Lock()
        self.cv = threading.Condition(self.lock)
        self.status = None
        self.exited = False
        self.killed = False
        threading.Thread(target=self._wait, name="wait-%d" % self.pid, daemon=True).start()

    def _wait(self) -> None:
        # Wait without reaping, then reap under the lock, so that kill() never signals a
        # recycled pid.
        while True:
            try:
                os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
        with self.lock:
            try:
                _, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                status = None
            self.status = status
            self.exited = True
            self.cv.notify_all()
        self.on_exit()

    def kill(self) -> None:
        """LIFE-4, LIFE-18: SIGKILL if still running."""
        with self.lock:
            if not self.exited:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                    self.killed = True
                except ProcessLookupError:
                    pass

    def wait(self, timeout: float | None) -> bool:
        with self.cv:
            return self.cv.wait_for(lambda: self.exited, timeout)

    def exit_info(self):
        with self.lock:
            return describe_exit(self.status) if self.exited else None


# ================================================================== chapter 06: supervisor

class NotRunning(Exception):
    pass


class Run:
    """One plugin process with its connection and hooks client."""

    def __init__(self):
        self.proc: PluginProcess | None = None
        self.conn: Connection | None = None
        self.hooks: HooksClient | None = None
        self.api: tuple | None = None           # (stream, server) of the current activation
        self.failure: str | None = None         # what the host observed first (LIFE-6)
        self.failure_at: float | None = None
        self.launched_at = 0.0
        self.running_since: float | None = None


_STOPPED = "stopped"     # sentinel outcome: a stop was requested


class Supervisor:
    """Table 6-1.  One lifecycle thread per start owns the plugin processes from the start to
    the end (stop or failed start); user calls and stop() interact with it through self.cv."""

    def __init__(self, name: str, bundle: str, start_timeout: float, stop_grace: float,
                 deactivate_timeout: float, emit, restart_delay_max: float = RESTART_DELAY_MAX,
                 stable_period: float = STABLE_PERIOD):
        self.name, self.bundle = name, bundle
        self.start_timeout, self.stop_grace = start_timeout, stop_grace
        self.deactivate_timeout = deactivate_timeout
        self.restart_delay_max, self.stable_period = restart_delay_max, stable_period
        self.emit = emit
        self.cv = threading.Condition()
        self.state = "stopped"
        self.exe: str | None = None
        self.run: Run | None = None
        self.activated = False
        self.config_json = b"null"              # of the last successful activation (LIFE-11)
        self.failures = 0
        self.stop_requested = False
        self.stop_result = (None, False)
        self.lifecycle_alive = False
        self._start_outcome = None

    # ---------------------------------------------------------------- notifications
    def _notify(self) -> None:
        with self.cv:
            self.cv.notify_all()

    def _observe(self, run: Run, reason: str) -> None:
        """LIFE-6: the exit of the process, the end of the connection, the end of the hooks
        stream; the first one observed is the crash's reason."""
        with self.cv:
            if run.failure is None:
                run.failure = reason
                run.failure_at = time.monotonic()
            self.cv.notify_all()

    # ---------------------------------------------------------------- public interface
    def start(self) -> int:
        """L1..L5.  Returns the pid, or raises CallFailed with the reason of the failed start."""
        with self.cv:
            if self.lifecycle_alive or self.state not in ("stopped", "failed"):
                raise CallFailed("plugin %s is already %s" % (self.name, self.state))
            try:
                self.exe = read_bundle(self.bundle)              # LIFE-2: refuse, launch nothing
            except BundleError as e:
                self.emit("start_failed", reason=str(e))
                raise CallFailed(str(e))
            self.state = "starting"
            self.failures = 0                                    # L1
            self.activated = False
            self.stop_requested = False
            self.stop_result = (None, False)
            self.lifecycle_alive = True
            self._start_outcome = None
            threading.Thread(target=self._lifecycle, name="life-" + self.name, daemon=True).start()
            self.cv.wait_for(lambda: self._start_outcome is not None)
            ok, value = self._start_outcome
        if not ok:
            raise CallFailed(value)
        return value

    def stop(self):
        """L5, L9, L12, L17, L21, L22 / LIFE-20, LIFE-22, LIFE-23.  Returns (exit, killed)."""
        with self.cv:
            if not self.lifecycle_alive:                         # L22
                self.state = "stopped"
                result = (None, False)
                self.emit("stopped", exit=None, killed=False)
                return result
            if not self.stop_requested:
                self.stop_requested = True
                self.cv.notify_all()
                if self.state == "restarting" and self.run and self.run.conn:
                    conn = self.run.conn                         # L17: interrupt a re-activation
                else:
                    conn = None
            else:
                conn = None                                      # L21: wait for the first stop
        if conn is not None:
            conn.end("stopped by the host during a restart")
        with self.cv:
            self.cv.wait_for(lambda: not self.lifecycle_alive)
            return self.stop_result

    def status(self):
        with self.cv:
            pid = None
            if self.run and self.run.proc and not self.run.proc.exited:
                pid = self.run.proc.pid
            return self.state, pid

    def activate(self, config) -> None:
        """L6 / DRV-7; L23 / LIFE-14 when not Running."""
        # RPC-18 (draft.2): a JSON text is served byte for byte; a value is encoded once.
        if isinstance(config, (bytes, bytearray)):
            config_json = bytes(config)
        else:
            config_json = json.dumps(config, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        with self.cv:
            run = self._running_run()
            self.activated = False       # the last OnActivate made has not succeeded (yet)
        err = self._activate_on(run, config_json, lambda p: p.done.wait())
        if err is not None:
            raise CallFailed(err)
        with self.cv:
            if self.run is run and self.state == "running":
                self.activated = True
                self.config_json = config_json

    def deactivate(self) -> None:
        with self.cv:
            run = self._running_run()
            self.activated = False       # any OnDeactivate call makes it not activated
        try:
            p = run.hooks.start_call("LocalHooks.OnDeactivate", "empty")
        except CallFailed as e:
            raise CallFailed(str(e))
        p.done.wait()
        self._close_api(run)             # RPC-17
        if p.error is not None:
            raise CallFailed(p.error)    # RPC-16

    # ---------------------------------------------------------------- helpers
    def _running_run(self) -> Run:
        if self.state != "running" or self.run is None or self.run.hooks is None:
            raise NotRunning("plugin %s is not running (it is %s)" % (self.name, self.state))  # LIFE-14
        return self.run

    def _close_api(self, run: Run) -> None:
        api, run.api = run.api, None
        if api is not None:
            api[0].close()

    def _activate_on(self, run: Run, config_json: bytes, wait):
        """RPC-13: open and register a new API stream, serve LocalAPI on it, then call
        OnActivate with its id.  Returns None on success or the failure's text (RPC-16)."""
        try:
            stream = run.conn.open_stream()
        except StreamFailed as e:
            return "activation failed: %s" % e
        server = ApiServer(stream, config_json)
        old, run.api = run.api, (stream, server)
        if old is not None:
            old[0].close()                       # RPC-17: close the previous activation's stream
        try:
            p = run.hooks.start_call("LocalHooks.OnActivate", "int", stream.id)
        except CallFailed as e:
            p = Pending("LocalHooks.OnActivate")
            p.finish(str(e))
        wait(p)
        if not p.done.is_set():
            return "OnActivate interrupted: %s" % (run.failure or "stop requested")
        if p.error is not None:
            if run.api is not None and run.api[0] is stream:
                self._close_api(run)             # RPC-17: close a failed activation's stream
            return p.error
        return None

    def _launch(self, run: Run) -> str | None:
        run.launched_at = time.monotonic()       # HS-4: the timer starts with the launch
        try:
            run.proc = PluginProcess(self.exe, lambda: self._observe(run, "the plugin process exited"))
        except OSError as e:
            return "launch failed: %s" % e
        run.conn = Connection(run.proc.rfd, run.proc.wfd, "%s-%d" % (self.name, run.proc.pid),
                              lambda conn: self._conn_changed(run, conn))
        log("%s: launched pid %d" % (self.name, run.proc.pid))
        return None

    def _conn_changed(self, run: Run, conn: Connection) -> None:
        if conn.ended:
            self._observe(run, "the connection ended: %s" % conn.end_reason)
        else:
            self._notify()

    def _await_handshake(self, run: Run):
        """H1..H5: wait for the announcement at most the start timeout since the launch."""
        deadline = run.launched_at + self.start_timeout
        with self.cv:
            while True:
                if self.stop_requested:
                    return _STOPPED
                if run.conn.handshake == "ok":
                    break                   # a crash right after it is handled as L7
                if run.failure is not None:
                    return run.failure
                left = deadline - time.monotonic()
                if left <= 0:
                    return "timed out waiting for plugin (start timeout %d ms, HS-4)" % round(self.start_timeout * 1000)
                self.cv.wait(left)
        run.hooks = HooksClient(run.conn.hooks_stream, lambda r: self._observe(run, r), self._notify)
        return None

    def _wait_call(self, run: Run, p: Pending, timeout: float | None = None) -> None:
        """Wait for a call made by the lifecycle thread, but not past a crash, a stop or timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.cv:
            while not p.done.is_set() and run.failure is None and not self.stop_requested:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                self.cv.wait(left)

    def _end_and_reap(self, run: Run, reason: str, grace: float) -> None:
        """TRANS-8, then LIFE-7/LIFE-17: grace period without a signal, LIFE-18: SIGKILL,
        LIFE-19: reaped."""
        if run.conn is not None:
            run.conn.end(reason)
        if run.proc is not None:
            if grace > 0:
                run.proc.wait(grace)
            run.proc.kill()
            run.proc.wait(None)

    def _set_start_outcome(self, ok: bool, value) -> None:
        with self.cv:
            if self._start_outcome is None:
                self._start_outcome = (ok, value)
                self.cv.notify_all()

    # ---------------------------------------------------------------- the lifecycle thread
    def _lifecycle(self) -> None:
        restarting = False
        try:
            while True:
                run = Run()
                with self.cv:
                    self.run = run
                err = self._launch(run)
                if err is None:
                    err = self._await_handshake(run)
                    if err is None and restarting and self.activated:
                        err = self._reactivate(run)                 # L14, L15 (LIFE-11)
                if err is None:
                    with self.cv:
                        if self.stop_requested:
                            err = _STOPPED
                if err == _STOPPED:                                 # L5, L17
                    if not restarting:
                        self.emit("start_failed", reason="stopped")
                        self._set_start_outcome(False, "stopped")
                    self._stop(run, deactivate=False)
                    return
                if err is not None:
                    if not restarting:                              # L2, L4
                        self._end_and_reap(run, err, 0)             # LIFE-4: kill at once, reap
                        ex = run.proc.exit_info() if run.proc else None
                        if ex is not None and run.failure == "the plugin process exited":
                            err = "the plugin exited before announcing (%s)" % _exit_text(ex)
                        elif ex is not None:
                            err = "%s; the plugin ended with %s" % (err, _exit_text(ex))
                        with self.cv:
                            self.state = "stopped"                  # LIFE-5: nothing scheduled
                            self.run = None
                            stop = self.stop_requested
                        self.emit("start_failed", reason=err)
                        self._set_start_outcome(False, err)
                        if stop:
                            self._finish_stop(None, False)          # a stop that raced the failure
                        return
                    if not self._backoff(run, err):                 # L16 (LIFE-12)
                        return
                    continue
                # ---- Running (L3, L13, L15)
                with self.cv:
                    self.state = "running"
                    run.running_since = time.monotonic()
                    reactivated = restarting and self.activated
                pid = run.proc.pid
                if restarting:
                    self.emit("restarted", pid=pid, reactivated=reactivated)
                else:
                    self.emit("started", pid=pid)
                    self._set_start_outcome(True, pid)
                with self.cv:
                    while run.failure is None and not self.stop_requested:
                        self.cv.wait()
                    stop = self.stop_requested
                    reason = run.failure
                if stop:                                            # L9
                    self._stop(run, deactivate=self.activated)
                    return
                restarting = True
                if not self._backoff(run, reason):                  # L7
                    return
        except Exception as e:                                      # keep the driver alive (DRV-12)
            log("%s: internal error in the lifecycle: %r" % (self.name, e))
            try:
                if self.run is not None:
                    self._end_and_reap(self.run, "internal error", 0)
            except Exception:
                pass
            self._set_start_outcome(False, "internal error: %r" % e)
            with self.cv:
                self.state = "stopped"
        finally:
            with self.cv:
                self.lifecycle_alive = False
                self.cv.notify_all()

    def _reactivate(self, run: Run):
        """LIFE-11: activate the new process with the configuration of the last successful
        activation.  Interrupted by a crash (L16) or a stop (L17)."""
        with self.cv:
            config_json = self.config_json
            self.state = "restarting"
        err = self._activate_on(run, config_json, lambda p: self._wait_call(run, p))
        with self.cv:
            if self.stop_requested:
                return _STOPPED
        if err is None:
            return None
        return "the re-activation failed: %s" % (run.failure or err)

    def _backoff(self, run: Run, reason: str) -> bool:
        """L7 / L16: end the connection, make sure the process is gone (LIFE-7), report the
        crash, wait for the restart delay (LIFE-8, LIFE-9).  Returns False after a stop (L12, LIFE-22)."""
        detected = run.failure_at or time.monotonic()
        with self.cv:
            self.state = "backoff"
        self._end_and_reap(run, reason, self.stop_grace)
        exit_info = run.proc.exit_info() if run.proc else None
        with self.cv:
            if run.running_since is not None and detected - run.running_since >= self.stable_period:
                self.failures = 0                                   # LIFE-10
            self.failures += 1
            failures = self.failures
            delay = min(RESTART_DELAY_MIN * 2 ** (failures - 1), self.restart_delay_max)  # LIFE-9
            stop_now = self.stop_requested
        self.emit("crashed", pid=run.proc.pid if run.proc else None, exit=exit_info,
                  reason=reason, failures=failures, delay_ms=int(delay * 1000))
        if stop_now:
            # The stop came while the crashed process was still there: it waited for it.
            self._finish_stop(exit_info, bool(run.proc and run.proc.killed))
            return False
        with self.cv:
            self.run = None
            deadline = detected + delay                            # counted from detection
            while not self.stop_requested:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cv.wait(left)
            if self.stop_requested:
                stop_now = True
            else:
                self.state = "restarting"                          # L10
        if stop_now:
            self._finish_stop(None, False)                         # L12: no process to stop
            return False
        return True

    def _stop(self, run: Run, deactivate: bool) -> None:
        """Section 6.9: OnDeactivate (LIFE-16), end the connection and grace (LIFE-17), SIGKILL
        (LIFE-18), reap (LIFE-19)."""
        with self.cv:
            self.state = "stopping"
        if deactivate and run.hooks is not None and run.failure is None:
            holder = {}

            def call():
                try:
                    holder["p"] = run.hooks.start_call("LocalHooks.OnDeactivate", "empty")
                except CallFailed:
                    pass
                self._notify()
            threading.Thread(target=call, daemon=True).start()
            deadline = time.monotonic() + self.deactivate_timeout
            with self.cv:
                while True:
                    p = holder.get("p")
                    if p is not None and p.done.is_set():
                        break
                    if run.proc.exited or run.conn.ended:       # L20, end of the connection
                        break
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break                                  # DEACTIVATE_TIMEOUT (L18)
                    self.cv.wait(min(left, 0.05) if p is None else left)
                self.activated = False
        self._end_and_reap(run, "stopped by the host", self.stop_grace)
        self._finish_stop(run.proc.exit_info() if run.proc else None,
                          bool(run.proc and run.proc.killed))

    def _finish_stop(self, exit_info, killed: bool) -> None:
        with self.cv:
            self.state = "stopped"
            self.run = None
            self.stop_result = (exit_info, killed)
        self.emit("stopped", exit=exit_info, killed=killed)


def _exit_text(ex: dict) -> str:
    return ("exit status %d" % ex["code"]) if "code" in ex else ("signal %s" % ex["signal"])
