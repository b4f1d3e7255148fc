//! The test vectors of `spec/vectors/` (documented in `spec/vectors/README.md`): where they
//! are, and their schema, written once for every program that reads them (the codec's vector
//! tests and its `decode-vectors` example among them).
//!
//! - [`vectors_dir`], and [`test_hex`], one test's input bytes by file and tcId;
//! - [`VectorFile`], [`Expect`] and [`Case`]: the envelope every file with a `tests` list
//!   shares, a test's `result`, and the fields every test has (README sections 1.1 to 1.3);
//! - [`cases`]: the test cases of `varint.json`, `frames.json`, `streams.json` and
//!   `handshake.json` (README sections 2 to 5, schemas `*/v1`: FRAME-1 to FRAME-14, HS-1 to
//!   HS-9), each with `deny_unknown_fields`, so that a field the README does not describe, or
//!   a missing required one, is an error;
//! - [`go_sessions`](mod@go_sessions): `rpc-go-sessions.json`, the real Go `net/rpc` sessions
//!   several codec tests replay (README section 6, chapter 05).
//!
//! The schema of `rpc-messages.json` is not here: the conformance library reads that file
//! itself (`conformance/src/cases/vectors.rs`), and a library may not depend on this crate;
//! among the tests only `codec/tests/rpc_vectors.rs` deserializes it.

use serde::Deserialize;

use crate::bins::spec_dir;
use crate::bytes::unhex;

/// The directory `spec/vectors/`.
pub fn vectors_dir() -> std::path::PathBuf {
    spec_dir().join("vectors")
}

/// The input bytes (`hex`) of the test with `tcId` `tc_id` in `spec/vectors/<stem>.json`,
/// whatever the file's schema; panics if the file cannot be read or has no such test with a
/// `hex` string.
pub fn test_hex(stem: &str, tc_id: u64) -> Vec<u8> {
    let path = vectors_dir().join(format!("{stem}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let hex = file["tests"]
        .as_array()
        .and_then(|tests| tests.iter().find(|t| t["tcId"] == tc_id))
        .and_then(|t| t["hex"].as_str())
        .unwrap_or_else(|| panic!("{}: no tcId {tc_id} with a hex string", path.display()));
    unhex(hex)
}

/// The envelope of every vector file that has a `tests` list (README section 1.1): the
/// schema, what the file tests, the requirements it exercises and its test cases. No other
/// field is allowed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorFile<T> {
    /// `<file stem>/v<version>`, for example `frames/v1`.
    pub schema: String,
    /// What the file tests, in one paragraph.
    pub description: String,
    /// Every requirement id the file as a whole exercises.
    pub requirements: Vec<String>,
    /// The test cases, in tcId order.
    pub tests: Vec<T>,
}

/// A test's `result` (README section 1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// Decoding gives the expected value and encoding gives exactly these bytes.
    Valid,
    /// Decoding gives the expected value, but an encoder never produces these bytes.
    Acceptable,
    /// Decoding fails with the listed error kind.
    Invalid,
}

impl Expect {
    /// The name the files use: `valid`, `acceptable` or `invalid`.
    pub fn name(self) -> &'static str {
        match self {
            Expect::Valid => "valid",
            Expect::Acceptable => "acceptable",
            Expect::Invalid => "invalid",
        }
    }
}

/// The fields every test case has (README section 1.2), whatever its file.
pub trait Case {
    /// `tcId`: the test's number, 1 for the first test of its file.
    fn tc_id(&self) -> u32;
    /// What the test shows, in words.
    fn comment(&self) -> &str;
    /// The test's `result`.
    fn result(&self) -> Expect;
    /// The requirement ids the test exercises.
    fn requirements(&self) -> &[String];
    /// The test's flags (empty when the file gives none).
    fn flags(&self) -> &[String];
    /// Where the bytes come from (`go:PutVarint`, `go:Varint`, `go:net/rpc`), when not from the
    /// specification.
    fn source(&self) -> Option<&str>;
    /// The error kind an `invalid` test's decoding reports.
    fn error(&self) -> Option<&str>;

    /// Whether the test has `flag`.
    fn has_flag(&self, flag: &str) -> bool {
        self.flags().iter().any(|f| f == flag)
    }
}

/// Declares a test-case struct: the fields of README section 1.2 plus the file-specific ones,
/// with `deny_unknown_fields`, and its [`Case`] accessors.
macro_rules! vector_case {
    ($(#[$doc:meta])* $name:ident { $($(#[$m:meta])* $field:ident : $ty:ty,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// `tcId`: the test's number, 1 for the first test of its file.
            #[serde(rename = "tcId")]
            pub tc_id: u32,
            /// What the test shows, in words.
            pub comment: String,
            /// The test's `result`.
            pub result: Expect,
            /// The requirement ids the test exercises.
            pub requirements: Vec<String>,
            /// The test's flags (empty when absent).
            #[serde(default)]
            pub flags: Vec<String>,
            /// Where the bytes come from, when not from the specification.
            pub source: Option<String>,
            /// The error kind, for `invalid` tests.
            pub error: Option<String>,
            $($(#[$m])* pub $field: $ty,)*
        }

        impl Case for $name {
            fn tc_id(&self) -> u32 {
                self.tc_id
            }
            fn comment(&self) -> &str {
                &self.comment
            }
            fn result(&self) -> Expect {
                self.result
            }
            fn requirements(&self) -> &[String] {
                &self.requirements
            }
            fn flags(&self) -> &[String] {
                &self.flags
            }
            fn source(&self) -> Option<&str> {
                self.source.as_deref()
            }
            fn error(&self) -> Option<&str> {
                self.error.as_deref()
            }
        }
    };
}

pub mod cases;
pub mod go_sessions;

pub use cases::{ExpectedFrame, FrameCase, Generator, HandshakeCase, StreamCase, VarintCase};
pub use go_sessions::{go_sessions, GoCall, GoSession, GoSessions};
