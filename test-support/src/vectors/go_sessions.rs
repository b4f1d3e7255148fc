//! `rpc-go-sessions.json` (schema `rpc-go-sessions/v1`, `spec/vectors/README.md` section 6):
//! the real Go `net/rpc` sessions several codec tests replay (chapter 05), the part of the
//! schema the tests read.

use std::sync::OnceLock;

use serde::Deserialize;

use super::vectors_dir;
use crate::bytes::unhex;

/// `rpc-go-sessions.json`: the part of it the tests read.
#[derive(Debug, Deserialize)]
pub struct GoSessions {
    /// The recorded sessions.
    pub netrpc_sessions: Vec<GoSession>,
}

/// One recorded `net/rpc` session: both directions of one RPC stream, write by write.
#[derive(Debug, Deserialize)]
pub struct GoSession {
    /// What the session does.
    pub description: String,
    /// The calls the client made, in order.
    pub calls: Vec<GoCall>,
    /// Every write of the client, in hex.
    pub client_to_server_writes_hex: Vec<String>,
    /// Every write of the server, in hex.
    pub server_to_client_writes_hex: Vec<String>,
}

/// One call of a recorded session.
#[derive(Debug, Deserialize)]
pub struct GoCall {
    /// `Service.Method`.
    pub method: String,
    /// The argument, as Go printed it (`int64 1`, ...).
    pub args: String,
    /// What the call returned, as Go printed it (`ok`, or the error).
    pub result: String,
}

impl GoSession {
    /// One direction's writes, in order, as bytes: the client's when `client_side`.
    pub fn writes(&self, client_side: bool) -> Vec<Vec<u8>> {
        let writes = if client_side {
            &self.client_to_server_writes_hex
        } else {
            &self.server_to_client_writes_hex
        };
        writes.iter().map(|w| unhex(w)).collect()
    }

    /// One direction's bytes, every write joined: the client's when `client_side`.
    pub fn bytes(&self, client_side: bool) -> Vec<u8> {
        self.writes(client_side).concat()
    }
}

/// The sessions of `spec/vectors/rpc-go-sessions.json`, read once per test process; panics if
/// the file is missing or does not match the schema.
pub fn go_sessions() -> &'static [GoSession] {
    static SESSIONS: OnceLock<Vec<GoSession>> = OnceLock::new();
    SESSIONS.get_or_init(|| {
        let path = vectors_dir().join("rpc-go-sessions.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let file: GoSessions =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        file.netrpc_sessions
    })
}
