//! The agent's RPC: its server of `LocalHooks` on the hooks stream (OnActivate, OnDeactivate,
//! Go's texts for unroutable requests, RPC-8, RPC-9, RPC-21; a gob error ends that stream
//! only, GOB-18), the API stream each activation connects (RPC-14, RPC-15, RPC-20), and its
//! client of the host's `LocalAPI` there ([`ApiClient`]: LoadPluginConfiguration, RPC-6,
//! RPC-10), with the hook and API mutants.

use std::io::Write as _;
use std::time::{Duration, Instant};

use rpcplugin_codec::frame::{encode_frame, StreamId};
use rpcplugin_codec::gob::{rpc_ids, Decoder, Encoder, TypeRegistry};
use rpcplugin_codec::rpc::{
    check_api_stream, Call, CallError, ClientCodec, Reply, RequestHeader, HOOKS_SERVICE,
    LOAD_PLUGIN_CONFIGURATION, ON_ACTIVATE, ON_DEACTIVATE,
};

use super::behaviour::gob_limits;
use super::event_loop::Timer;
use super::{Agent, AgentEnd, Crash, CrashWhen};

impl Agent {
    pub(super) fn on_hooks_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
        if self.hooks_broken {
            return Ok(());
        }
        self.hooks_server.push(bytes);
        loop {
            let request = match self.hooks_server.next_request() {
                Ok(Some(r)) => r,
                Ok(None) => return Ok(()),
                Err(e) => return self.hooks_gob_error(&e.to_string()),
            };
            let call = Call::from_request(
                &[HOOKS_SERVICE],
                &request.header.service_method,
                &request.args,
            );
            match call {
                Err(CallError::UnknownMethod(_) | CallError::UnknownService(_))
                    if self.b.unknown_method_ends_stream =>
                {
                    return self.hooks_gob_error("an unknown method");
                }
                Err(e) => {
                    let text = if self.b.other_error_texts {
                        format!("no such thing: {}", request.header.service_method)
                    } else {
                        e.to_string()
                    };
                    if self.b.drop_unsendable_responses
                        && request.header.service_method.len() + text.len()
                            > rpcplugin_codec::gob::MIN_MAX_MESSAGE
                    {
                        continue;
                    }
                    self.respond(&request.header, Err(&text))?;
                }
                Ok(Call::OnActivate { api_stream }) => {
                    self.report(serde_json::json!({
                        "event": "request", "method": ON_ACTIVATE, "seq": request.header.seq,
                        "api_stream": api_stream
                    }));
                    if let Some(Crash {
                        when: CrashWhen::OnActivate,
                        exit,
                    }) = self.b.crash
                    {
                        self.crash_now(exit);
                    }
                    self.on_activate(request.header, api_stream)?
                }
                Ok(Call::OnDeactivate) => {
                    self.report(serde_json::json!({
                        "event": "request", "method": ON_DEACTIVATE, "seq": request.header.seq
                    }));
                    if self.b.never_answer_deactivate {
                        continue;
                    }
                    // RPC-15: the API stream is closed, then the call answered (the mutant
                    // answers first: both leave in one write, the close right after).
                    let late = self.b.close_api_after_answer;
                    if !late {
                        self.end_api("deactivated")?;
                    }
                    self.respond(&request.header, Ok(&Reply::Empty))?;
                    if late {
                        self.end_api("deactivated")?;
                    }
                    if self.b.exit_after_deactivate {
                        let _ = self.flush();
                        std::process::exit(0);
                    }
                }
                Ok(Call::LoadPluginConfiguration) => {
                    self.respond(&request.header, Err("rpc: can't find service LocalAPI"))?
                }
            }
        }
    }

    /// Closes the API stream, if one is open, and fails the API calls pending on it.
    fn end_api(&mut self, why: &str) -> Result<(), AgentEnd> {
        if let Some(client) = &self.api {
            let _ = self.table.close(client.stream);
            self.fail_api_calls(why)?;
            self.api = None;
        }
        Ok(())
    }

    fn hooks_gob_error(&mut self, what: &str) -> Result<(), AgentEnd> {
        if self.b.gob_error_exits {
            return Err(AgentEnd::Failed(format!(
                "a gob error on the hooks stream: {what}"
            )));
        }
        // GOB-18: this stream only.
        self.hooks_broken = true;
        let _ = self.table.close(self.hooks);
        Ok(())
    }

    fn on_activate(&mut self, header: RequestHeader, id: i64) -> Result<(), AgentEnd> {
        let stream = if self.b.accept_any_api_id {
            match StreamId::new(id) {
                Some(s) if id > 0 => s,
                _ => return self.respond(&header, Err("RPC-14: not a stream id")),
            }
        } else {
            match check_api_stream(id, self.last_api) {
                Ok(s) => s,
                Err(e) => return self.respond(&header, Err(&e.to_string())),
            }
        };
        if let Some(old) = self.api.take() {
            if !self.b.keep_previous_api_stream {
                let _ = self.table.close(old.stream);
            }
            self.api = Some(old);
            self.fail_api_calls("activated again")?;
            self.api = None;
        }
        if self.table.connect(stream).is_err() {
            if self.b.accept_any_api_id {
                // As the seed: "connect" whatever was named (the stream table refuses the
                // plugin's own ids, so the call goes out as a raw frame on it), call the API on
                // it, and report success.
                let mut client = ApiClient {
                    stream,
                    decoder: ClientCodec::new(),
                    encoder: Encoder::new(TypeRegistry::net_rpc()),
                    next_seq: 0,
                    pending: Vec::new(),
                    vector: false,
                };
                let out = client
                    .call(header.clone())
                    .map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let mut frame = Vec::new();
                let _ = encode_frame(stream, &out, &mut frame);
                self.flush().map_err(AgentEnd::Failed)?;
                self.write(&frame).map_err(AgentEnd::Failed)?;
                return self.respond(&header, Ok(&Reply::Empty));
            }
            return self.respond(&header, Err("cannot connect the API stream"));
        }
        self.last_api = self.last_api.max(id);
        let mut client = ApiClient {
            stream,
            decoder: ClientCodec::with_decoder(Decoder::with_limits(gob_limits(&self.b))),
            encoder: Encoder::new(TypeRegistry::net_rpc()),
            next_seq: u64::from(self.b.api_seq_from_one),
            pending: Vec::new(),
            vector: false,
        };
        if let Some(hex) = self.b.api_vector_hex.clone() {
            // The vector's gob stream, from its first byte, then OnActivate answered at once.
            let bytes = crate::transcript::from_hex(&hex).map_err(AgentEnd::Failed)?;
            client.vector = true;
            self.table
                .write(stream, &bytes)
                .map_err(|e| AgentEnd::Failed(e.to_string()))?;
            self.api = Some(client);
            return self.respond(&header, Ok(&Reply::Empty));
        }
        let out = client
            .call(header)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.table
            .write(stream, &out)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.api = Some(client);
        Ok(())
    }

    pub(super) fn on_api_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
        let Some(client) = self.api.as_mut() else {
            return Ok(());
        };
        client.decoder.push(bytes);
        let mut answers = Vec::new();
        let mut vector_responses = Vec::new();
        let wrong_type_breaks = self.b.wrong_reply_type_ends_stream;
        let mut broken_by_type = None;
        loop {
            match client.decoder.next_response() {
                Ok(Some(r)) if client.vector => {
                    vector_responses.push(serde_json::json!({
                        "event": "api_response", "stream": client.stream.get(),
                        "seq": r.header.seq.to_string(),
                        "method": r.header.service_method,
                        "error": r.header.error,
                    }));
                    continue;
                }
                Ok(Some(r)) => {
                    // RPC-6: a response that matches no call is skipped.
                    if let Some(at) = client.pending.iter().position(|p| p.0 == r.header.seq) {
                        let (_, header) = client.pending.remove(at);
                        let config = match &r.body {
                            rpcplugin_codec::gob::Value::Bytes(b) => {
                                Some(crate::transcript::to_hex(b))
                            }
                            _ => None,
                        };
                        if config.is_none() && r.header.error.is_empty() && wrong_type_breaks {
                            // RPC-10 broken on purpose: the stream goes, as after a gob error.
                            broken_by_type = Some(client.stream);
                        }
                        answers.push((header, r.header.error, config, client.stream.get(), false));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let stream = client.stream.get();
                    answers.extend(
                        client
                            .pending
                            .drain(..)
                            .map(|(_, h)| (h, e.to_string(), None, stream, true)),
                    );
                    break;
                }
            }
        }
        for report in vector_responses {
            self.report(report);
        }
        if let Some(stream) = broken_by_type {
            let _ = self.table.close(stream);
        }
        for (header, error, config, stream, broken) in answers {
            // `broken`: no response came; the API stream's gob stream broke (its error says
            // why) instead.
            self.report(serde_json::json!({
                "event": "config", "stream": stream, "hex": config, "error": error,
                "broken": broken
            }));
            // The configuration's failure, if any, is reported above, for the case to judge
            // (RPC-18): the activation goes on as it would have, so that the case sees the
            // host's answer and not a failed activation.
            if self.b.fail_activate {
                self.respond(&header, Err("the agent fails this activation on purpose"))?;
                continue;
            }
            if let Some(Crash {
                when: CrashWhen::MidFrame,
                exit,
            }) = self.b.crash
            {
                let mut out = Vec::new();
                self.hooks_server
                    .respond_typed(&header, Ok(&Reply::Empty), &mut out)
                    .map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let mut frame = Vec::new();
                let _ = encode_frame(self.hooks, &out, &mut frame);
                let _ = self.flush();
                let _ = self.output.write_all(&frame[..frame.len() / 2]);
                self.crash_now(exit);
            }
            self.respond(&header, Ok(&Reply::Empty))?;
            if let Some(Crash {
                when: CrashWhen::AfterActivate(ms),
                exit,
            }) = self.b.crash
            {
                self.timers.push((
                    Instant::now() + Duration::from_millis(ms),
                    Timer::Crash(exit),
                ));
            }
        }
        Ok(())
    }

    /// Fails the pending OnActivate calls (their API call cannot complete).
    pub(super) fn fail_api_calls(&mut self, why: &str) -> Result<(), AgentEnd> {
        let pending = match self.api.as_mut() {
            Some(client) => std::mem::take(&mut client.pending),
            None => Vec::new(),
        };
        for (_, header) in pending {
            self.respond(
                &header,
                Err(&format!("LoadPluginConfiguration failed: {why}")),
            )?;
        }
        Ok(())
    }

    fn respond(
        &mut self,
        header: &RequestHeader,
        result: Result<&Reply, &str>,
    ) -> Result<(), AgentEnd> {
        if self.hooks_broken {
            return Ok(());
        }
        let mut header = header.clone();
        if self.b.wrong_seq {
            header.seq = header.seq.wrapping_add(1);
        }
        let mut out = Vec::new();
        let activation = header.service_method == ON_ACTIVATE && result.is_ok();
        if activation && self.b.unmatched_response_first {
            // A response whose Seq matches no call first (RPC-6 at the host).
            let mut stray = header.clone();
            stray.seq = stray.seq.wrapping_add(1_000_000);
            self.hooks_server
                .respond_typed(&stray, Ok(&Reply::Empty), &mut out)
                .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        }
        let sent = if activation && self.b.wrong_reply_type {
            // A well-formed reply of another type than a hook's (RPC-10 at the host).
            self.hooks_server.respond(
                &header,
                Ok((
                    rpcplugin_codec::gob::ids::STRING,
                    &rpcplugin_codec::gob::Value::string("a string, not a struct"),
                )),
                &mut out,
            )
        } else {
            self.hooks_server.respond_typed(&header, result, &mut out)
        };
        sent.map_err(|e| AgentEnd::Failed(e.to_string()))?;
        // The stream may be closed by now; then the answer is dropped (row S11).
        let _ = self.table.write(self.hooks, &out);
        Ok(())
    }
}

/// The plugin's client of the host's `LocalAPI` on one API stream.
pub(super) struct ApiClient {
    pub(super) stream: StreamId,
    /// Decodes responses (its own call table stays empty: `pending` matches them).
    decoder: ClientCodec<()>,
    encoder: Encoder,
    next_seq: u64,
    /// The OnActivate request each pending call belongs to, by the call's Seq.
    pending: Vec<(u64, RequestHeader)>,
    /// A vector was written instead of a call: every response is reported as it comes.
    vector: bool,
}

impl ApiClient {
    /// A `LoadPluginConfiguration` call for the activation `header` asked for.
    fn call(
        &mut self,
        header: RequestHeader,
    ) -> Result<Vec<u8>, rpcplugin_codec::gob::GobEncodeError> {
        let seq = self.next_seq;
        self.next_seq += 1;
        let request = RequestHeader {
            service_method: LOAD_PLUGIN_CONFIGURATION.to_string(),
            seq,
        };
        let (ty, value) = Call::LoadPluginConfiguration.argument();
        let mut out = Vec::new();
        self.encoder
            .encode(rpc_ids::REQUEST, &request.to_value(), &mut out)?;
        self.encoder.encode(ty, &value, &mut out)?;
        self.pending.push((seq, header));
        Ok(out)
    }
}
