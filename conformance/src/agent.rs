//! The agent: a small plugin built on the codec alone (one thread, one event loop), which the
//! harness runs as `rpcplugin-conformance agent`. It serves `LocalHooks` as protocol 1 says,
//! unless its [`Behaviour`] tells it to break a rule: the harness's mutants are agents with one
//! misbehaviour each ([`MUTANTS`]), and the self-tests check that every mutant fails the cases
//! meant to catch it (with the requirement it breaks) while the well-behaved agent passes them
//! all.
//!
//! Its input goes through a filter before the stream table sees it (that is where the framing
//! mutants live: accepting negative lengths, having no payload limit, ignoring close frames,
//! dropping first frames, freezing on stream 0), and its output through another (non-minimal
//! varints, interleaved frames).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::time::Duration;

use rpcplugin_codec::frame::{encode_frame, StreamId, MAX_PAYLOAD_CEILING, MIN_MAX_PAYLOAD};
use rpcplugin_codec::gob::{rpc_ids, Encoder, TypeRegistry};
use rpcplugin_codec::rpc::{
    check_api_stream, Call, CallError, ClientCodec, Reply, RequestHeader, ServerCodec,
    HOOKS_SERVICE, LOAD_PLUGIN_CONFIGURATION,
};
use rpcplugin_codec::stream::{Event, Read, Role, StreamTable};
use rpcplugin_codec::varint;
use serde::{Deserialize, Serialize};

/// How an agent behaves; the default is a conforming plugin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Behaviour {
    /// Announce this hooks stream id instead of 2 (an odd one breaks STREAM-2).
    pub hooks_stream: Option<i64>,
    /// Read standard input to its end before announcing (breaks TRANS-5).
    pub read_stdin_first: bool,
    /// Treat zero-length frames on data streams as empty data (breaks STREAM-9, STREAM-10).
    pub ignore_close: bool,
    /// Drop the first data frame of every stream (breaks FRAME-12 and RPC-5 in practice).
    pub drop_first_frame: bool,
    /// Skip frames with a negative length instead of ending the connection (breaks FRAME-6).
    pub accept_negative_length: bool,
    /// Accept any payload length, waiting for the payload (breaks FRAME-8).
    pub no_payload_limit: bool,
    /// Stop reading for good when a frame arrives on stream 0 (breaks HS-8, STREAM-14).
    pub hang_on_stream_0: bool,
    /// Never read after the announcement (breaks FRAME-7 and everything after).
    pub stop_reading: bool,
    /// Write frame headers with non-minimal varints (breaks FRAME-2).
    pub nonminimal_varints: bool,
    /// Interleave the bytes of consecutive frames (breaks FRAME-10, FRAME-1).
    pub interleave_frames: bool,
    /// Send data on odd stream 5, which the host never opened, after the handshake (breaks
    /// STREAM-2).
    pub odd_stream_data: bool,
    /// Send data on the hooks stream right after the announcement (breaks STREAM-6).
    pub data_before_request: bool,
    /// Send a second announcement after the first (breaks HS-2).
    pub second_announcement: bool,
    /// Answer every request with its Seq plus one (breaks RPC-5).
    pub wrong_seq: bool,
    /// Connect any OnActivate id, even the plugin's own or an old one (breaks RPC-14).
    pub accept_any_api_id: bool,
    /// Leave the previous API stream open on a new activation (breaks RPC-14).
    pub keep_previous_api_stream: bool,
    /// Number the API client's calls from 1 (breaks RPC-4).
    pub api_seq_from_one: bool,
    /// Answer unroutable requests with texts other than Go's (breaks RPC-9).
    pub other_error_texts: bool,
    /// Treat a request for an unknown method as a gob error of the hooks stream (breaks RPC-8).
    pub unknown_method_ends_stream: bool,
    /// Exit with status 1 on a gob error of the hooks stream (breaks GOB-18).
    pub gob_error_exits: bool,
    /// Keep running after end of file on descriptor 3 (breaks TRANS-9).
    pub ignore_eof: bool,
    /// Exit with this status when the host closes the connection (non-zero breaks TRANS-10).
    pub exit_status_on_eof: i32,
    /// Exit after answering OnDeactivate (breaks LIFE-21).
    pub exit_after_deactivate: bool,
    /// Start a child process that outlives the agent (breaks TRANS-11).
    pub leave_child: bool,
}

/// A named misbehaviour, with the cases that must catch it.
#[derive(Debug, Clone, Copy)]
pub struct Mutant {
    /// Its name (`--mutant NAME`).
    pub name: &'static str,
    /// What it does wrong.
    pub description: &'static str,
    /// Each of these cases must not pass against it, and must name this requirement (or one
    /// of several, separated by `|`, where the first symptom of the broken rule depends on how
    /// the bytes happen to fall).
    pub caught_by: &'static [(&'static str, &'static str)],
    /// Its behaviour.
    pub behaviour: fn() -> Behaviour,
}

macro_rules! mutant {
    ($name:literal, $desc:literal, [$(($case:literal, $req:literal)),+ $(,)?], $field:ident $(= $value:expr)?) => {
        Mutant {
            name: $name,
            description: $desc,
            caught_by: &[$(($case, $req)),+],
            behaviour: || Behaviour {
                $field: mutant!(@value $($value)?),
                ..Behaviour::default()
            },
        }
    };
    (@value) => { true };
    (@value $value:expr) => { $value };
}

/// The plugin mutants.
pub static MUTANTS: &[Mutant] = &[
    mutant!(
        "odd-hooks-stream",
        "announces hooks stream 1, an odd id",
        [("plugin/handshake/announce-even-stream", "STREAM-2")],
        hooks_stream = Some(1)
    ),
    mutant!(
        "reads-stdin",
        "reads its standard input to the end before announcing",
        [("plugin/transport/stdin-not-read", "HS-1")],
        read_stdin_first
    ),
    mutant!(
        "ignores-close",
        "treats zero-length frames as empty data and keeps delivering what follows",
        [
            ("plugin/streams/data-after-close-discarded", "STREAM-9"),
            ("plugin/streams/close-answered-with-close", "STREAM-11"),
        ],
        ignore_close
    ),
    mutant!(
        "drops-first-frame",
        "drops the first data frame of every stream",
        [("plugin/hooks/activate-deactivate", "RPC-5")],
        drop_first_frame
    ),
    mutant!(
        "accepts-negative-length",
        "skips frames with a negative length, as the seed does on connected streams",
        [("plugin/framing/negative-length", "FRAME-6")],
        accept_negative_length
    ),
    mutant!(
        "no-payload-limit",
        "has no payload limit: waits for the payload of any declared length",
        [("plugin/framing/oversized-frame", "FRAME-8")],
        no_payload_limit
    ),
    mutant!(
        "hangs-on-stream-0",
        "stops reading when a frame arrives on stream 0, as the seed's unbuffered pipe does",
        [("plugin/handshake/control-after-handshake", "HS-8")],
        hang_on_stream_0
    ),
    mutant!(
        "stops-reading",
        "never reads after its announcement",
        [("plugin/framing/max-size-frame", "FRAME-7")],
        stop_reading
    ),
    mutant!(
        "nonminimal-varints",
        "writes frame headers with non-minimal varints",
        [("plugin/wire/output-follows-sender-rules", "FRAME-2")],
        nonminimal_varints
    ),
    mutant!(
        "interleaves-frames",
        "interleaves the bytes of consecutive frames",
        [(
            "plugin/wire/output-follows-sender-rules",
            "FRAME-1|STREAM-7|GOB-2|GOB-4|GOB-5|GOB-9|GOB-14|RPC-3"
        )],
        interleave_frames
    ),
    mutant!(
        "opens-odd-stream",
        "sends data on stream 5, an odd id the host never opened",
        [("plugin/streams/parity-of-opened-streams", "STREAM-2")],
        odd_stream_data
    ),
    mutant!(
        "talks-first",
        "sends data on its hooks stream before the host has sent anything there",
        [("plugin/wire/output-follows-sender-rules", "STREAM-6")],
        data_before_request
    ),
    mutant!(
        "second-announcement",
        "sends a second frame on stream 0",
        [("plugin/wire/output-follows-sender-rules", "HS-2")],
        second_announcement
    ),
    mutant!(
        "wrong-seq",
        "answers every request with its Seq plus one",
        [
            ("plugin/rpc/concurrent-calls", "RPC-5"),
            ("plugin/hooks/activate-deactivate", "RPC-5"),
        ],
        wrong_seq
    ),
    mutant!(
        "accepts-any-api-id",
        "connects any API stream id OnActivate names, even its own even ids",
        [("plugin/hooks/activate-even-id-rejected", "RPC-14")],
        accept_any_api_id
    ),
    mutant!(
        "keeps-old-api-stream",
        "leaves the previous API stream open when activated again",
        [(
            "plugin/hooks/reactivate-closes-previous-api-stream",
            "RPC-14"
        )],
        keep_previous_api_stream
    ),
    mutant!(
        "api-seq-from-one",
        "numbers its API calls from 1",
        [("plugin/wire/output-follows-sender-rules", "RPC-4")],
        api_seq_from_one
    ),
    mutant!(
        "other-error-texts",
        "answers unroutable requests with its own texts, not Go's",
        [("plugin/rpc/go-error-texts", "RPC-9")],
        other_error_texts
    ),
    mutant!(
        "unknown-method-ends-stream",
        "treats a request for an unknown method as a gob error of its hooks stream",
        [("plugin/rpc/unknown-methods-answered", "RPC-8")],
        unknown_method_ends_stream
    ),
    mutant!(
        "gob-error-exits",
        "exits on a gob error of its hooks stream instead of closing that stream only",
        [("plugin/rpc-vector/tc-13", "GOB-18")],
        gob_error_exits
    ),
    mutant!(
        "ignores-eof",
        "keeps running after end of file on descriptor 3",
        [("plugin/transport/eof-exit", "TRANS-9")],
        ignore_eof
    ),
    mutant!(
        "exit-1-on-eof",
        "exits with status 1 when the host closes the connection",
        [("plugin/transport/eof-exit", "TRANS-10")],
        exit_status_on_eof = 1
    ),
    mutant!(
        "exits-after-deactivate",
        "exits after answering OnDeactivate",
        [("plugin/hooks/serves-after-deactivate", "LIFE-21")],
        exit_after_deactivate
    ),
    mutant!(
        "leaves-child",
        "starts a child process that outlives it",
        [("plugin/transport/eof-exit", "TRANS-11")],
        leave_child
    ),
];

/// The mutant called `name`.
pub fn mutant(name: &str) -> Option<&'static Mutant> {
    MUTANTS.iter().find(|m| m.name == name)
}

/// Why the agent stopped.
#[derive(Debug)]
pub enum AgentEnd {
    /// The host closed the connection: exit with this status.
    HostClosed(i32),
    /// A connection error or a failed pipe: exit with status 1.
    Failed(String),
    /// The agent was started without the host's pipes: exit with status 2.
    NoPipes(String),
}

/// Runs the agent on the pipes inherited as descriptors 3 and 4 until the connection ends.
/// Call it first thing in `main`.
pub fn run(behaviour: Behaviour) -> AgentEnd {
    let (input, output) = match rpcplugin_runtime::process::inherited_pipes() {
        Ok(pipes) => pipes,
        Err(e) => return AgentEnd::NoPipes(e.to_string()),
    };
    if behaviour.read_stdin_first {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    }
    let mut agent = Agent::new(behaviour, File::from(input), File::from(output));
    let end = agent.serve();
    if let AgentEnd::HostClosed(_) = end {
        if agent.b.ignore_eof {
            // TRANS-9 broken on purpose: keep running until killed.
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
    }
    end
}

struct Agent {
    b: Behaviour,
    input: File,
    output: File,
    table: StreamTable,
    hooks: StreamId,
    hooks_server: ServerCodec,
    hooks_broken: bool,
    /// The current activation's API stream and its client.
    api: Option<ApiClient>,
    /// Every API stream id connected so far (RPC-14).
    last_api: i64,
    filter: InputFilter,
    child: Option<std::process::Child>,
}

impl Agent {
    fn new(b: Behaviour, input: File, output: File) -> Agent {
        Agent {
            filter: InputFilter::new(&b),
            b,
            input,
            output,
            table: StreamTable::new(Role::Plugin),
            hooks: StreamId::new(2).expect("positive"),
            hooks_server: ServerCodec::new(),
            hooks_broken: false,
            api: None,
            last_api: 0,
            child: None,
        }
    }

    fn serve(&mut self) -> AgentEnd {
        if let Err(e) = self.announce() {
            return AgentEnd::Failed(e);
        }
        if self.b.leave_child {
            self.child = std::process::Command::new("sleep")
                .arg("30")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok();
        }
        if self.b.stop_reading {
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match self.input.read(&mut buf) {
                Ok(0) => {
                    // What the filter held back is the table's to judge (a truncated frame).
                    let rest = std::mem::take(&mut self.filter.pending);
                    if let Err(e) = self.table.receive(&rest) {
                        return AgentEnd::Failed(e.to_string());
                    }
                    return match self.table.end_of_input() {
                        Ok(()) => AgentEnd::HostClosed(self.b.exit_status_on_eof),
                        Err(e) => AgentEnd::Failed(e.to_string()),
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return AgentEnd::Failed(format!("reading descriptor 3 failed: {e}")),
            };
            let filtered = match self.filter.push(&buf[..n]) {
                Filtered::Bytes(bytes) => bytes,
                Filtered::Hang => loop {
                    std::thread::sleep(Duration::from_secs(60));
                },
            };
            if let Err(e) = self.table.receive(&filtered) {
                return AgentEnd::Failed(e.to_string());
            }
            if let Err(end) = self.handle_events() {
                return end;
            }
            if let Err(e) = self.flush() {
                return AgentEnd::Failed(e);
            }
        }
    }

    fn announce(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        match self.b.hooks_stream {
            None => {
                self.hooks = self.table.announce().map_err(|e| e.to_string())?;
                self.table.take_transmit(&mut out);
            }
            Some(id) => {
                // Announce an id of the agent's choosing; register it where the table allows.
                let mut payload = vec![0x00];
                varint::encode_to_vec(id, &mut payload);
                encode_frame(StreamId::CONTROL, &payload, &mut out).map_err(|e| e.to_string())?;
                if let Some(sid) = StreamId::new(id) {
                    self.hooks = sid;
                }
            }
        }
        if self.b.data_before_request {
            encode_frame(self.hooks, b"hello", &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.second_announcement {
            encode_frame(StreamId::CONTROL, &[0x00, 0x04], &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.odd_stream_data {
            encode_frame(StreamId::new(5).expect("positive"), b"hi", &mut out)
                .map_err(|e| e.to_string())?;
        }
        self.write(&out)
    }

    fn flush(&mut self) -> Result<(), String> {
        if !self.table.has_transmit() {
            return Ok(());
        }
        let mut out = Vec::new();
        self.table.take_transmit(&mut out);
        self.write(&out)
    }

    /// Writes frames, through the output mutations.
    fn write(&mut self, frames: &[u8]) -> Result<(), String> {
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
        } else {
            frames.to_vec()
        };
        self.output
            .write_all(&bytes)
            .map_err(|e| format!("writing descriptor 4 failed: {e}"))
    }

    fn drain(&mut self, id: StreamId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Read::Data(n)) = self.table.read(id, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    fn handle_events(&mut self) -> Result<(), AgentEnd> {
        while let Some(event) = self.table.poll_event() {
            match event {
                Event::Data { stream_id, .. } if stream_id == self.hooks => {
                    let bytes = self.drain(stream_id);
                    self.on_hooks_bytes(&bytes)?;
                }
                Event::Data { stream_id, .. }
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) =>
                {
                    let bytes = self.drain(stream_id);
                    self.on_api_bytes(&bytes)?;
                }
                Event::Finished { stream_id } | Event::Reset { stream_id, .. } => {
                    let _ = self.drain(stream_id);
                    // STREAM-11: close this side too.
                    let _ = self.table.close(stream_id);
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) {
                        self.fail_api_calls("the API stream ended")?;
                    }
                    if stream_id == self.hooks {
                        self.hooks_broken = true;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn on_hooks_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
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
                    self.respond(&request.header, Err(&text))?;
                }
                Ok(Call::OnActivate { api_stream }) => {
                    self.on_activate(request.header, api_stream)?
                }
                Ok(Call::OnDeactivate) => {
                    if let Some(client) = &self.api {
                        let _ = self.table.close(client.stream);
                        self.fail_api_calls("deactivated")?;
                        self.api = None;
                    }
                    self.respond(&request.header, Ok(&Reply::Empty))?;
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
                // As the seed: "connect" whatever was named, and report success.
                return self.respond(&header, Ok(&Reply::Empty));
            }
            return self.respond(&header, Err("cannot connect the API stream"));
        }
        self.last_api = self.last_api.max(id);
        let mut client = ApiClient {
            stream,
            decoder: ClientCodec::new(),
            encoder: Encoder::new(TypeRegistry::net_rpc()),
            next_seq: u64::from(self.b.api_seq_from_one),
            pending: Vec::new(),
        };
        let out = client
            .call(header)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.table
            .write(stream, &out)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        self.api = Some(client);
        Ok(())
    }

    fn on_api_bytes(&mut self, bytes: &[u8]) -> Result<(), AgentEnd> {
        let Some(client) = self.api.as_mut() else {
            return Ok(());
        };
        client.decoder.push(bytes);
        let mut answers = Vec::new();
        loop {
            match client.decoder.next_response() {
                Ok(Some(r)) => {
                    // RPC-6: a response that matches no call is skipped.
                    if let Some(at) = client.pending.iter().position(|p| p.0 == r.header.seq) {
                        let (_, header) = client.pending.remove(at);
                        answers.push((header, r.header.error));
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    answers.extend(client.pending.drain(..).map(|(_, h)| (h, e.to_string())));
                    break;
                }
            }
        }
        for (header, error) in answers {
            if error.is_empty() {
                self.respond(&header, Ok(&Reply::Empty))?;
            } else {
                self.respond(
                    &header,
                    Err(&format!("LoadPluginConfiguration failed: {error}")),
                )?;
            }
        }
        Ok(())
    }

    /// Fails the pending OnActivate calls (their API call cannot complete).
    fn fail_api_calls(&mut self, why: &str) -> Result<(), AgentEnd> {
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
        self.hooks_server
            .respond_typed(&header, result, &mut out)
            .map_err(|e| AgentEnd::Failed(e.to_string()))?;
        // The stream may be closed by now; then the answer is dropped (row S11).
        let _ = self.table.write(self.hooks, &out);
        Ok(())
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The leftover child is left running on purpose (TRANS-11 broken).
        if let Some(child) = self.child.take() {
            std::mem::forget(child);
        }
    }
}

/// The plugin's client of the host's `LocalAPI` on one API stream.
struct ApiClient {
    stream: StreamId,
    /// Decodes responses (its own call table stays empty: `pending` matches them).
    decoder: ClientCodec<()>,
    encoder: Encoder,
    next_seq: u64,
    /// The OnActivate request each pending call belongs to, by the call's Seq.
    pending: Vec<(u64, RequestHeader)>,
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

/// What the input filter lets through.
enum Filtered {
    Bytes(Vec<u8>),
    /// Stop reading for good.
    Hang,
}

/// The framing mutants, applied to the input before the stream table sees it: a frame parser
/// of its own that rewrites or drops frames.
struct InputFilter {
    active: bool,
    ignore_close: bool,
    drop_first_frame: bool,
    accept_negative_length: bool,
    no_payload_limit: bool,
    hang_on_stream_0: bool,
    pending: Vec<u8>,
    /// Payload bytes still to skip of a frame being swallowed.
    skipping: u64,
    seen_streams: std::collections::BTreeSet<i64>,
}

impl InputFilter {
    fn new(b: &Behaviour) -> InputFilter {
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

    fn push(&mut self, bytes: &[u8]) -> Filtered {
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

/// `u` as a base-128 varint of exactly `len` bytes.
fn pad(mut u: u64, len: usize, out: &mut Vec<u8>) {
    for i in 0..len {
        let group = (u & 0x7f) as u8;
        u >>= 7;
        out.push(if i + 1 == len { group } else { group | 0x80 });
    }
}
