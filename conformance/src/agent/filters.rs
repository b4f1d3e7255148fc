//! The agent's frame filters, where the framing mutants live. The input filter
//! ([`InputFilter`]) rewrites or drops frames before the stream table sees them (accepting
//! negative lengths, FRAME-6; no payload limit, FRAME-8; ignoring close frames, STREAM-9;
//! dropping first frames; freezing on stream 0, HS-8); the output side writes frames through
//! deliberately broken ways of framing them (non-minimal varints, FRAME-2; interleaved frames,
//! FRAME-10; reordered halves, STREAM-7; one-byte frames) and notes the streams the agent wrote
//! data on (STREAM-6 at the host).

use std::io::Write as _;

use rpcplugin_codec::frame::{encode_frame, StreamId, MAX_PAYLOAD_CEILING, MIN_MAX_PAYLOAD};
use rpcplugin_codec::varint;

use super::{Agent, Behaviour};

impl Agent {
    /// Writes bytes that need not be whole frames, as they are (the output filter and the
    /// observer of what the agent wrote are bypassed).
    pub(super) fn write_raw_frames(&mut self, bytes: &[u8]) -> Result<(), String> {
        if !self.output_open {
            return Ok(());
        }
        self.output
            .write_all(bytes)
            .map_err(|e| format!("writing descriptor 4 failed: {e}"))
    }

    pub(super) fn flush(&mut self) -> Result<(), String> {
        if !self.table.has_transmit() {
            return Ok(());
        }
        let mut out = Vec::new();
        self.table.take_transmit(&mut out);
        self.write(&out)
    }

    /// Writes frames, through the output mutations.
    pub(super) fn write(&mut self, frames: &[u8]) -> Result<(), String> {
        let bytes = if self.b.nonminimal_varints {
            reframe(frames, |id, payload, out| {
                pad(varint::zigzag(id), 3, out);
                pad(varint::zigzag(payload.len() as i64), 4, out);
                out.extend_from_slice(payload);
            })
        } else if self.b.interleave_frames {
            // Every frame cut in two halves (each a valid frame), then the headers of all of
            // them first and their payloads after: the bytes of frames interleave every time.
            let mut headers = Vec::new();
            let mut payloads = Vec::new();
            let _ = reframe(frames, |id, payload, _| {
                // (The announcement stays whole: splitting it would break HS-1 instead.)
                let cut = if id == 0 {
                    payload.len()
                } else {
                    payload.len() / 2
                };
                let (a, b) = payload.split_at(cut);
                for half in [a, b] {
                    if half.is_empty() && !payload.is_empty() {
                        continue;
                    }
                    varint::encode_to_vec(id, &mut headers);
                    varint::encode_to_vec(half.len() as i64, &mut headers);
                    payloads.extend_from_slice(half);
                }
            });
            headers.extend(payloads);
            headers
        } else if self.b.reorder_frames {
            // Each data frame's halves, in reverse order.
            split_data_frames(frames, |p| {
                let (a, b) = p.split_at(p.len() / 2);
                vec![b, a]
            })
        } else if self.b.one_byte_frames {
            split_data_frames(frames, |p| p.chunks(1).collect())
        } else {
            frames.to_vec()
        };
        let _ = reframe(frames, |id, payload, _| {
            if let Some(id) = StreamId::new(id) {
                if !payload.is_empty() && !id.is_control() {
                    self.wrote_on.insert(id);
                }
            }
        });
        if !self.output_open {
            return Ok(());
        }
        self.output
            .write_all(&bytes)
            .map_err(|e| format!("writing descriptor 4 failed: {e}"))
    }
}

/// What the input filter lets through.
pub(super) enum Filtered {
    Bytes(Vec<u8>),
    /// Stop reading for good.
    Hang,
}

/// The framing mutants, applied to the input before the stream table sees it: a frame parser
/// of its own that rewrites or drops frames.
pub(super) struct InputFilter {
    active: bool,
    ignore_close: bool,
    drop_first_frame: bool,
    accept_negative_length: bool,
    no_payload_limit: bool,
    hang_on_stream_0: bool,
    pub(super) pending: Vec<u8>,
    /// Payload bytes still to skip of a frame being swallowed.
    skipping: u64,
    seen_streams: std::collections::BTreeSet<i64>,
}

impl InputFilter {
    pub(super) fn new(b: &Behaviour) -> InputFilter {
        InputFilter {
            active: b.ignore_close
                || b.drop_first_frame
                || b.accept_negative_length
                || b.no_payload_limit
                || b.hang_on_stream_0,
            ignore_close: b.ignore_close,
            drop_first_frame: b.drop_first_frame,
            accept_negative_length: b.accept_negative_length,
            no_payload_limit: b.no_payload_limit,
            hang_on_stream_0: b.hang_on_stream_0,
            pending: Vec::new(),
            skipping: 0,
            seen_streams: Default::default(),
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) -> Filtered {
        if !self.active {
            return Filtered::Bytes(bytes.to_vec());
        }
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            if self.skipping > 0 {
                let n = (self.skipping as usize).min(self.pending.len() - at);
                self.skipping -= n as u64;
                at += n;
                if self.skipping > 0 {
                    break;
                }
                continue;
            }
            let rest = &self.pending[at..];
            let Ok((sid, n)) = varint::decode(rest) else {
                // Incomplete, or malformed: the table decides (pass what is left on).
                if varint::decode(rest).is_err() && rest.len() >= varint::MAX_LEN {
                    out.extend_from_slice(rest);
                    at = self.pending.len();
                }
                break;
            };
            let Ok((len, m)) = varint::decode(&rest[n..]) else {
                if rest.len() - n >= varint::MAX_LEN {
                    out.extend_from_slice(rest);
                    at = self.pending.len();
                }
                break;
            };
            let header = n + m;
            if len < 0 && self.accept_negative_length {
                at += header;
                continue;
            }
            if len < 0 || sid < 0 {
                out.extend_from_slice(&rest[..header]);
                at += header;
                continue;
            }
            if len as u64 > MAX_PAYLOAD_CEILING as u64 || len as usize > MIN_MAX_PAYLOAD {
                if self.no_payload_limit {
                    self.skipping = len as u64;
                    at += header;
                    continue;
                }
                out.extend_from_slice(&rest[..header]);
                at += header;
                continue;
            }
            let len = len as usize;
            if rest.len() < header + len {
                break;
            }
            let frame = &rest[..header + len];
            at += header + len;
            if sid == 0 && self.hang_on_stream_0 {
                return Filtered::Hang;
            }
            if sid == 0 {
                out.extend_from_slice(frame);
                continue;
            }
            if len == 0 && self.ignore_close {
                continue;
            }
            if self.drop_first_frame && len > 0 && self.seen_streams.insert(sid) {
                continue;
            }
            out.extend_from_slice(frame);
        }
        self.pending.drain(..at);
        Filtered::Bytes(out)
    }
}

/// Re-frames whole frames in `frames` through `each(stream id, payload, out)`.
fn reframe(frames: &[u8], mut each: impl FnMut(i64, &[u8], &mut Vec<u8>)) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < frames.len() {
        let Ok(Some((frame, n))) =
            rpcplugin_codec::frame::decode_frame(&frames[at..], MIN_MAX_PAYLOAD)
        else {
            out.extend_from_slice(&frames[at..]);
            break;
        };
        each(frame.stream_id.get(), frame.payload, &mut out);
        at += n;
    }
    out
}

/// `frames` with each data frame of two bytes or more (not on stream 0) written as one frame
/// per piece `split` cuts its payload into, in the order it returns them.
fn split_data_frames(frames: &[u8], split: impl Fn(&[u8]) -> Vec<&[u8]>) -> Vec<u8> {
    reframe(frames, |id, payload, out| {
        let sid = StreamId::new(id).unwrap_or(StreamId::CONTROL);
        if payload.len() < 2 || id == 0 {
            let _ = encode_frame(sid, payload, out);
            return;
        }
        for piece in split(payload) {
            let _ = encode_frame(sid, piece, out);
        }
    })
}

/// `u` as a base-128 varint of exactly `len` bytes.
fn pad(mut u: u64, len: usize, out: &mut Vec<u8>) {
    for i in 0..len {
        let group = (u & 0x7f) as u8;
        u >>= 7;
        out.push(if i + 1 == len { group } else { group | 0x80 });
    }
}
