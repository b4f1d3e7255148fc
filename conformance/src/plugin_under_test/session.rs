//! The session helpers the cases call: the protocol side of the harness in the host role. A
//! host-role stream table for the handshake (HS-1 within START_TIMEOUT, HS-4), API streams
//! opened and served as `LocalAPI` ([`ApiAnswer`] says how `LoadPluginConfiguration` is
//! answered: RPC-6, RPC-10), hook calls encoded, sent and awaited within [`CALL_TIMEOUT`]
//! (responses in any order, RPC-5), and failures with the plugin's standard error attached.

use std::time::{Duration, Instant};

use rpcplugin_codec::frame::StreamId;
use rpcplugin_codec::lifecycle::START_TIMEOUT;
use rpcplugin_codec::rpc::{Call, Reply, Response, ServerCodec, API_SERVICE};
use rpcplugin_codec::stream::{Event, Read, StreamError};

use super::{Input, PluginUnderTest};
use crate::outcome::{Failure, Outcome};
use rpcplugin_codec::req;

/// How long the harness waits for the answer to a hook call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The configuration the harness gives the plugin through `LoadPluginConfiguration`.
pub const CONFIGURATION: &[u8] = br#"{"conformance":true}"#;

/// How the harness answers the plugin's `LocalAPI.LoadPluginConfiguration` calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiAnswer {
    /// With [`CONFIGURATION`], or these bytes.
    Configuration(Vec<u8>),
    /// With an error response carrying this text.
    Error(String),
    /// Not at all (the call stays pending).
    Never,
    /// With [`CONFIGURATION`], after a response whose `Seq` matches no call (RPC-6).
    UnmatchedFirst,
    /// With a successful response whose reply is a string, not the []byte the call expects
    /// (RPC-10, Table 5-9 R9).
    WrongType,
}

impl PluginUnderTest {
    /// The hooks stream, once the handshake is complete.
    pub fn hooks(&self) -> Option<StreamId> {
        self.hooks
    }

    /// The `LocalAPI` calls the plugin made, by `ServiceMethod`.
    pub fn api_calls(&self) -> &[String] {
        &self.api_calls
    }

    /// How the harness answers `LoadPluginConfiguration` from now on.
    pub fn set_api_answer(&mut self, answer: ApiAnswer) {
        self.api_answer = answer;
    }

    fn flush(&mut self) -> Result<(), String> {
        if self.table.has_transmit() {
            let mut out = Vec::new();
            self.table.take_transmit(&mut out);
            self.write_raw(&out)?;
        }
        Ok(())
    }

    /// Reads one chunk into the stream table and handles what it caused: hook responses are
    /// fed to the hooks client, `LocalAPI` requests are answered. `Ok(false)` on time out.
    fn pump(&mut self, deadline: Instant) -> Result<bool, String> {
        if let Some(found) = self.new_violation() {
            return Err(found);
        }
        match self.read_raw(deadline) {
            Input::TimedOut => return Ok(false),
            Input::Eof => {
                return Err(match self.table.end_of_input() {
                    Err(e) => format!("the plugin closed its output (descriptor 4): {e}"),
                    Ok(()) => "the plugin closed its output (descriptor 4)".to_string(),
                })
            }
            Input::Error(e) => return Err(format!("reading the plugin's output failed: {e}")),
            Input::Data(bytes) => {
                if let Err(e) = self.table.receive(&bytes) {
                    // The observer's finding, when it has one, is the more precise.
                    return Err(self
                        .new_violation()
                        .unwrap_or_else(|| format!("the plugin's output is invalid: {e}")));
                }
            }
        }
        while let Some(event) = self.table.poll_event() {
            if let Event::Data { stream_id, .. }
            | Event::Finished { stream_id }
            | Event::Reset { stream_id, .. }
            | Event::Discarded { stream_id, .. } = &event
            {
                if !stream_id.is_control() && !self.streams_seen.contains(stream_id) {
                    self.streams_seen.push(*stream_id);
                }
            }
            match event {
                Event::HandshakeComplete { hooks } => self.hooks = Some(hooks),
                Event::Data { stream_id, .. } | Event::Finished { stream_id } => {
                    let bytes = self.drain_stream(stream_id);
                    if Some(stream_id) == self.hooks {
                        self.hooks_client.push(&bytes);
                        self.decode_hook_responses();
                    } else if self.apis.iter().any(|a| a.0 == stream_id) {
                        // The observer's finding, when it has one, is the more precise.
                        if let Err(e) = self.serve_api(stream_id, &bytes) {
                            return Err(self.new_violation().unwrap_or(e));
                        }
                    }
                }
                _ => {}
            }
        }
        self.flush()?;
        if let Some(found) = self.new_violation() {
            return Err(found);
        }
        Ok(true)
    }

    fn decode_hook_responses(&mut self) {
        while self.hooks_error.is_none() {
            match self.hooks_client.next_response() {
                Ok(Some(response)) => self.unclaimed.push_back(response),
                Ok(None) => break,
                Err(e) => self.hooks_error = Some(format!("an invalid response: {e}")),
            }
        }
    }

    /// Whether a response with `seq` has arrived and not been claimed yet.
    pub fn has_hook_response(&self, seq: u64) -> bool {
        self.unclaimed.iter().any(|r| r.header.seq == seq)
    }

    fn drain_stream(&mut self, id: StreamId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Read::Data(n)) = self.table.read(id, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    fn serve_api(&mut self, id: StreamId, bytes: &[u8]) -> Result<(), String> {
        let Some((_, server)) = self.apis.iter_mut().find(|a| a.0 == id) else {
            return Ok(());
        };
        server.push(bytes);
        let mut out = Vec::new();
        loop {
            let request = match server.next_request() {
                Ok(Some(r)) => r,
                Ok(None) => break,
                Err(e) => return Err(format!("the plugin sent an invalid LocalAPI request: {e}")),
            };
            self.api_calls.push(request.header.service_method.clone());
            let result = match Call::from_request(
                &[API_SERVICE],
                &request.header.service_method,
                &request.args,
            ) {
                Ok(Call::LoadPluginConfiguration) => match &self.api_answer {
                    ApiAnswer::WrongType => {
                        server
                            .respond(
                                &request.header,
                                Ok((
                                    rpcplugin_codec::gob::ids::STRING,
                                    &rpcplugin_codec::gob::Value::string(
                                        "a string, not the []byte of a configuration",
                                    ),
                                )),
                                &mut out,
                            )
                            .map_err(|e| format!("encoding a LocalAPI response failed: {e}"))?;
                        continue;
                    }
                    ApiAnswer::Configuration(bytes) => Ok(Reply::Configuration(bytes.clone())),
                    ApiAnswer::Error(text) => Err(text.clone()),
                    ApiAnswer::Never => continue,
                    ApiAnswer::UnmatchedFirst => {
                        let mut stray = request.header.clone();
                        stray.seq += 1_000_000;
                        server
                            .respond_typed(
                                &stray,
                                Ok(&Reply::Configuration(b"{}".to_vec())),
                                &mut out,
                            )
                            .map_err(|e| format!("encoding a LocalAPI response failed: {e}"))?;
                        Ok(Reply::Configuration(CONFIGURATION.to_vec()))
                    }
                },
                Ok(other) => Err(format!("rpc: can't find method {other}")),
                Err(e) => Err(e.to_string()),
            };
            let sent = match &result {
                Ok(reply) => server.respond_typed(&request.header, Ok(reply), &mut out),
                Err(text) => server.respond_typed(&request.header, Err(text), &mut out),
            };
            sent.map_err(|e| format!("encoding a LocalAPI response failed: {e}"))?;
        }
        if !out.is_empty() {
            match self.table.write(id, &out) {
                // The plugin closed the stream meanwhile (a new activation, say): the answer
                // would be discarded anyway.
                Ok(()) | Err(StreamError::ClosedByPeer(_)) => {}
                Err(e) => return Err(format!("writing on the API stream failed: {e}")),
            }
        }
        Ok(())
    }

    /// Does the host's side of the handshake: waits at most START_TIMEOUT (scaled) for a valid
    /// announcement. Fails with HS-1; a plugin that exits before announcing is a setup failure.
    pub fn handshake(&mut self) -> Result<StreamId, Outcome> {
        let deadline = self.deadline(START_TIMEOUT);
        loop {
            if let Some(hooks) = self.hooks {
                return Ok(hooks);
            }
            match self.pump(deadline) {
                Ok(true) => {}
                Ok(false) => {
                    let _ = self.table.on_start_timeout();
                    return Err(self.fail(
                        req!("HS-1"),
                        "an announcement on stream 0 within START_TIMEOUT (3 s)",
                        "nothing valid arrived in time",
                    ));
                }
                Err(got) => return Err(self.handshake_end(got)),
            }
        }
    }

    fn handshake_end(&mut self, got: String) -> Outcome {
        // Only a plugin whose output ended may have crashed: wait a little for its exit.
        let exit = if self.eof {
            self.wait_exit(Duration::from_millis(500))
        } else {
            self.try_exit()
        };
        let mut failure = Failure::new(
            req!("HS-1"),
            "an announcement on stream 0 as the plugin's first frame",
            match exit {
                Some(exit) => format!("{got}; the process {exit}"),
                None => got,
            },
        );
        if let Some(exit) = exit {
            failure.setup = Some(format!(
                "the plugin crashed before the handshake: it {exit} without announcing its hooks stream"
            ));
        }
        failure.stderr = self.stderr();
        Outcome::fail(failure)
    }

    /// Opens a stream of the host's parity and serves `LocalAPI` on it.
    pub fn open_api_stream(&mut self) -> Result<StreamId, Outcome> {
        let id = self
            .table
            .open()
            .map_err(|e| Outcome::error(format!("opening an API stream failed: {e}")))?;
        self.apis.push((id, ServerCodec::new()));
        self.streams_opened.push(id);
        Ok(id)
    }

    /// Opens API streams (serving `LocalAPI` on each) until stream `id` is open: the harness
    /// can then name any of them in `OnActivate`.
    pub fn open_api_streams_up_to(&mut self, id: i64) -> Result<(), Outcome> {
        while self.streams_opened.last().map_or(0, |s| s.get()) < id {
            self.open_api_stream()?;
        }
        Ok(())
    }

    /// Closes a stream the harness has registered (sends its zero-length frame, STREAM-8).
    pub fn close_stream(&mut self, id: StreamId) -> Result<(), Outcome> {
        self.table
            .close(id)
            .map_err(|e| Outcome::error(format!("closing stream {id} failed: {e}")))?;
        self.flush().map_err(|e| self.lost(e))
    }

    /// The state of a stream in the harness's table, as the plugin's frames left it.
    pub fn stream_state(&self, id: StreamId) -> Option<rpcplugin_codec::stream::StreamState> {
        self.table.state(id)
    }

    /// Every data stream id the plugin sent a frame on (seen through the protocol access), in
    /// order of first appearance.
    pub fn streams_seen(&self) -> &[StreamId] {
        &self.streams_seen
    }

    /// The data streams the harness opened (and announced to the plugin).
    pub fn streams_opened(&self) -> &[StreamId] {
        &self.streams_opened
    }

    /// Encodes `call` as the next request of the hooks client without sending it; returns its
    /// `Seq` and its bytes (the stream's payload).
    pub fn encode_call(&mut self, call: Call) -> Result<(u64, Vec<u8>), Outcome> {
        let what = call.to_string();
        let mut out = Vec::new();
        let seq = self
            .hooks_client
            .call_typed(call, &mut out)
            .map_err(|e| Outcome::error(format!("encoding {what} failed: {e}")))?;
        Ok((seq, out))
    }

    fn hooks_stream(&self) -> Result<StreamId, Outcome> {
        self.hooks
            .ok_or_else(|| Outcome::error("no handshake before a hook call"))
    }

    /// Queues `call` on the hooks stream without writing it; returns its `Seq`. The bytes wait
    /// for [`PluginUnderTest::take_queued`] (or the next write of the protocol side).
    pub fn queue_call(&mut self, call: Call) -> Result<u64, Outcome> {
        let hooks = self.hooks_stream()?;
        let what = call.to_string();
        let (seq, out) = self.encode_call(call)?;
        self.table
            .write(hooks, &out)
            .map_err(|e| Outcome::error(format!("writing {what} failed: {e}")))?;
        Ok(seq)
    }

    /// Takes the frames the protocol side has queued, for the caller to write as it likes.
    pub fn take_queued(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        self.table.take_transmit(&mut out);
        out
    }

    /// Sends `call` on the hooks stream without waiting for its answer; returns its `Seq`.
    pub fn send_call(&mut self, call: Call) -> Result<u64, Outcome> {
        let hooks = self.hooks_stream()?;
        let what = call.to_string();
        let (seq, out) = self.encode_call(call)?;
        self.table
            .write(hooks, &out)
            .map_err(|e| Outcome::error(format!("writing {what} failed: {e}")))?;
        self.flush().map_err(|e| self.lost(e))?;
        Ok(seq)
    }

    /// The next response on the hooks stream, whatever its `Seq`, serving `LocalAPI`
    /// meanwhile. `Ok(None)` when none arrived before `deadline`; `Err` describes an invalid
    /// response or the end of the plugin's output.
    pub fn next_hook_response(
        &mut self,
        deadline: Instant,
    ) -> Result<Option<Response<Call>>, String> {
        loop {
            if let Some(r) = self.unclaimed.pop_front() {
                return Ok(Some(r));
            }
            if let Some(e) = &self.hooks_error {
                return Err(e.clone());
            }
            if !self.pump(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Reads the plugin's output (serving `LocalAPI`, keeping hook responses for later) until
    /// `done` holds or `within` (scaled) has passed; whether `done` held. `Err` when the
    /// plugin's output ends or is invalid.
    pub fn wait_until(
        &mut self,
        within: Duration,
        mut done: impl FnMut(&PluginUnderTest) -> bool,
    ) -> Result<bool, String> {
        let deadline = self.deadline(within);
        loop {
            if done(self) {
                return Ok(true);
            }
            if !self.pump(deadline)? {
                return Ok(done(self));
            }
        }
    }

    /// The hook responses that have arrived and were not claimed yet, without waiting.
    pub fn take_hook_responses(&mut self) -> Result<Vec<Response<Call>>, String> {
        let got: Vec<Response<Call>> = self.unclaimed.drain(..).collect();
        match (&self.hooks_error, got.is_empty()) {
            (Some(e), true) => Err(e.clone()),
            _ => Ok(got),
        }
    }

    /// Keeps reading (serving `LocalAPI`, collecting hook responses) until `deadline`; returns
    /// the hook responses that arrived, or how the plugin's output ended.
    pub fn listen(&mut self, deadline: Instant) -> Result<Vec<Response<Call>>, String> {
        let mut got = Vec::new();
        while let Some(response) = self.next_hook_response(deadline)? {
            got.push(response);
        }
        Ok(got)
    }

    /// Calls a hook and waits at most CALL_TIMEOUT (scaled) for its answer, serving `LocalAPI`
    /// meanwhile. `Ok(Ok(reply))` for a successful response, `Ok(Err(text))` for an error
    /// response; no answer fails with `requirement`.
    pub fn call(
        &mut self,
        call: Call,
        requirement: &'static str,
    ) -> Result<Result<Reply, String>, Outcome> {
        let seq = self.send_call(call.clone())?;
        self.await_response(seq, &call, requirement)
    }

    /// Waits for the response with `seq` to `call`.
    pub fn await_response(
        &mut self,
        seq: u64,
        call: &Call,
        requirement: &'static str,
    ) -> Result<Result<Reply, String>, Outcome> {
        let expected = format!("a response to {call} within {CALL_TIMEOUT:?}");
        let deadline = self.deadline(CALL_TIMEOUT);
        loop {
            if let Some(at) = self.unclaimed.iter().position(|r| r.header.seq == seq) {
                let response = self.unclaimed.remove(at).expect("found");
                if !response.header.error.is_empty() {
                    return Ok(Err(response.header.error));
                }
                return match Reply::for_call(call, &response.body) {
                    Ok(reply) => Ok(Ok(reply)),
                    Err(e) => Err(self.fail(
                        requirement,
                        &expected,
                        &format!("a reply of the wrong type: {e}"),
                    )),
                };
            }
            if let Some(e) = self.hooks_error.clone() {
                return Err(self.fail(requirement, &expected, &e));
            }
            match self.pump(deadline) {
                Ok(true) => {}
                Ok(false) => return Err(self.fail(requirement, &expected, "no response in time")),
                Err(got) => return Err(self.fail(requirement, &expected, &got)),
            }
        }
    }

    /// Encodes `call` as the next request of the hooks client, framed as one frame on the
    /// hooks stream, without sending it; returns its `Seq` and the frame's bytes.
    pub fn frame_call(&mut self, call: Call) -> Result<(u64, Vec<u8>), Outcome> {
        let hooks = self.hooks_stream()?;
        let (seq, body) = self.encode_call(call)?;
        let mut frame = Vec::new();
        rpcplugin_codec::frame::encode_frame(hooks, &body, &mut frame)
            .map_err(|e| Outcome::error(e.to_string()))?;
        Ok((seq, frame))
    }

    /// A failure of `requirement`, with the plugin's standard error attached.
    pub fn fail(&self, requirement: &'static str, expected: &str, got: &str) -> Outcome {
        let mut failure = Failure::new(requirement, expected, got);
        failure.stderr = self.stderr();
        Outcome::fail(failure)
    }
}
