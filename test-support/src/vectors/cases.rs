//! The test cases of the files with a `tests` list whose schema is `*/v1`: `varint.json`,
//! `frames.json`, `streams.json` and `handshake.json` (`spec/vectors/README.md` sections 2 to
//! 5). Each struct has the common fields of [`Case`] and its file's own, and rejects any other.
//!
//! Values are as the files write them (hex strings, 64-bit integers as decimal strings):
//! checking and converting them is the reader's business, since a test asserts what a tool
//! reports.

use serde::Deserialize;

use super::{Case, Expect};

vector_case!(
    /// A test of `varint.json` (schema `varint/v1`): one Go signed varint (FRAME-2 to FRAME-4).
    VarintCase {
        /// The input: for `valid` and `acceptable` tests exactly one varint.
        hex: String,
        /// The signed value it decodes to (`valid`, `acceptable`), a decimal string.
        value: Option<String>,
        /// The `n` Go's `binary.Varint` returned (with `source` `go:Varint`), a decimal string.
        go_varint_n: Option<String>,
        /// The value Go's `binary.Varint` returned (with `go_varint_n`), a decimal string.
        go_varint_value: Option<String>,
    }
);

/// A generated payload: the bytes of `repeat_hex` repeated `count` times.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generator {
    /// The unit, in hex; never empty.
    pub repeat_hex: String,
    /// How many times the unit is repeated; at least 1.
    pub count: usize,
}

vector_case!(
    /// A test of `frames.json` (schema `frames/v1`): one frame, or a prefix of one (FRAME-1 to
    /// FRAME-13).
    FrameCase {
        /// The input bytes; either this, or `header_hex` and `payload`.
        hex: Option<String>,
        /// The first bytes of the input (the frame header), with `payload`.
        header_hex: Option<String>,
        /// The bytes that follow `header_hex`, with it.
        payload: Option<Generator>,
        /// The frame's stream id (`valid`, `acceptable`), a decimal string.
        stream_id: Option<String>,
        /// The frame's payload, for `valid` and `acceptable` tests that use `hex`.
        payload_hex: Option<String>,
        /// The receiver's payload limit; default 1048576.
        max_payload: Option<usize>,
    }
);

/// An expected frame of `streams.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedFrame {
    /// The frame's stream id, a decimal string.
    pub stream_id: String,
    /// The frame's payload, in hex (possibly empty).
    pub payload_hex: String,
}

vector_case!(
    /// A test of `streams.json` (schema `streams/v1`): one direction of a connection, a
    /// sequence of frames (FRAME-12 to FRAME-14).
    StreamCase {
        /// The input bytes; exactly one of this and `chunks`.
        hex: Option<String>,
        /// The input as a sequence of reads (possibly empty ones), in hex.
        chunks: Option<Vec<String>>,
        /// The frames the input decodes to; for `invalid` tests, those before the error.
        frames: Vec<ExpectedFrame>,
        /// The receiver's payload limit; default 1048576.
        max_payload: Option<usize>,
    }
);

vector_case!(
    /// A test of `handshake.json` (schema `handshake/v1`): the plugin's announcement on stream
    /// 0 (HS-1, HS-5, HS-7, HS-8, HS-9).
    HandshakeCase {
        /// The payload of the stream-0 frame.
        payload_hex: String,
        /// The whole frame carrying it, with minimal header varints.
        frame_hex: String,
        /// The announced hooks stream id, a decimal string: the id the host connects, or, with
        /// `invalid_hooks_stream_id`, the one it rejects.
        hooks_stream_id: Option<String>,
    }
);
