//! The messages of `spec/vectors/rpc-messages.json`, as the cases that play them to a subject
//! read them: `plugin/rpc-vector/tc-N` sends a server-side message to a plugin's hooks stream,
//! `host/rpc-vector/tc-N` to a host's API stream (through the agent).

use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct VectorFile {
    tests: Vec<Vector>,
}

/// One message (a whole gob stream from its first byte) and what a receiver makes of it.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    /// Its number.
    #[serde(rename = "tcId")]
    pub tc_id: u64,
    /// What it is, in a few words.
    pub comment: String,
    /// `valid`, `acceptable` or `invalid`.
    pub result: String,
    /// The requirements it checks.
    pub requirements: Vec<String>,
    /// `server` (requests, to a server) or `client` (responses, to a client).
    pub side: String,
    /// The bytes.
    pub hex: String,
    /// The calls a valid message holds.
    #[serde(default)]
    pub calls: Vec<VectorCall>,
    /// The gob error of an invalid message.
    #[serde(default)]
    pub error: Option<String>,
    /// The receiver's message limit the verdict assumes, when it depends on it.
    #[serde(default)]
    pub max_message: Option<u64>,
    /// The receiver's nesting limit the verdict assumes, when it depends on it.
    #[serde(default)]
    pub max_depth: Option<u64>,
}

/// A call of a valid message.
#[derive(Debug, Clone, Deserialize)]
pub struct VectorCall {
    /// `Service.Method`.
    pub service_method: String,
    /// Its `Seq`, in decimal.
    pub seq: String,
    /// Its argument, as the vector shows it.
    #[serde(default)]
    pub args: Option<serde_json::Value>,
}

/// Every message of the file.
pub fn vectors() -> &'static [Vector] {
    static V: std::sync::OnceLock<Vec<Vector>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let file: VectorFile =
            serde_json::from_str(include_str!("../../../spec/vectors/rpc-messages.json"))
                .expect("spec/vectors/rpc-messages.json is valid");
        file.tests
    })
}

/// The vector with `tc_id`.
pub fn vector(tc_id: u64) -> Option<&'static Vector> {
    vectors().iter().find(|v| v.tc_id == tc_id)
}

/// Whether every server handles `v` the same way, whatever its limits: sent to a server, not
/// depending on the receiver's message or depth limit beyond what the spec fixes
/// (message_too_large is included when the Length is above GOB_MAX_MESSAGE_CEILING, which no
/// receiver accepts, GOB-19), not showing only at the end of the stream (truncated,
/// missing_body), and either invalid or holding calls to answer.
pub fn for_servers(v: &Vector) -> bool {
    v.side == "server"
        && v.max_message.is_none()
        && v.max_depth.is_none()
        && !matches!(
            v.error.as_deref(),
            Some("too_deep" | "truncated" | "missing_body")
        )
        && (v.result == "invalid" || !v.calls.is_empty())
}
