//! [`PluginUnderTest`]: the harness in the host role against one plugin process.
//!
//! The driver is single-threaded from the case's point of view: a reader thread turns what the
//! plugin writes to its descriptor 4 into byte chunks on a channel, and every wait of the driver
//! is a `recv_timeout` bounded by both the wait's own limit and the case's deadline. Cases get
//! raw access (write any bytes to the plugin's descriptor 3, read bytes or whole frames) and
//! protocol access (a host-role [`StreamTable`] for the handshake, and the RPC codecs for hook
//! calls, with `LocalAPI` served on the API stream meanwhile). Dropping the driver kills and
//! reaps the plugin process.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fs::File;
use std::io::{Read as _, Write as _};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rpcplugin_codec::frame::{Frame, FrameAssembler, FrameError, StreamId};
use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, Response, ServerCodec, API_SERVICE};
use rpcplugin_codec::stream::{Event, Read, Role, StreamTable};
use rpcplugin_runtime::process::{launch, Exit, LaunchError, LaunchOptions, Output, PluginProcess};

use crate::outcome::{Failure, Outcome};

/// START_TIMEOUT: how long the host waits for the announcement.
pub const START_TIMEOUT: Duration = Duration::from_secs(3);
/// EXIT_BOUND: how long a plugin takes at most to exit after its connection has ended.
pub const EXIT_BOUND: Duration = Duration::from_secs(5);
/// How long the harness waits for the answer to a hook call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The configuration the harness gives the plugin through `LoadPluginConfiguration`.
pub const CONFIGURATION: &[u8] = br#"{"conformance":true}"#;
/// How much of the plugin's standard error is kept.
const STDERR_KEEP: usize = 64 * 1024;

/// The plugin executable and its arguments.
#[derive(Debug, Clone)]
pub struct PluginCommand {
    /// Path of the executable.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
}

/// What the reader thread saw on the plugin's output pipe.
#[derive(Debug)]
pub enum Input {
    /// Bytes, as one read returned them.
    Data(Vec<u8>),
    /// End of file: the plugin (and everything sharing its descriptor 4) closed it.
    Eof,
    /// Reading failed.
    Error(String),
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// How reading raw frames ended without a frame.
#[derive(Debug)]
pub enum RawEnd {
    /// Nothing (or only part of a frame) arrived before the deadline.
    TimedOut,
    /// The plugin closed its output.
    Eof,
    /// The plugin's output is not a sequence of valid frames.
    Malformed(FrameError),
    /// Reading failed.
    Error(String),
}

/// A plugin process driven by the harness in the host role.
pub struct PluginUnderTest {
    process: PluginProcess,
    writer: Option<File>,
    rx: Receiver<Input>,
    eof: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    scale: f64,
    case_deadline: Instant,
    // Raw access.
    assembler: FrameAssembler,
    frames: VecDeque<Frame>,
    // Protocol access.
    table: StreamTable,
    hooks: Option<StreamId>,
    hooks_client: ClientCodec<Call>,
    api: Option<(StreamId, ServerCodec)>,
    api_calls: Vec<String>,
    // Every data stream id the plugin sent a frame on, in order of first appearance.
    streams_seen: Vec<StreamId>,
    // Streams the harness opened (host parity).
    streams_opened: Vec<StreamId>,
}

impl std::fmt::Debug for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUnderTest")
            .field("pid", &self.process.pid())
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl PluginUnderTest {
    /// Launches the plugin with its standard error captured. Every wait of the driver ends at
    /// the latest `case_timeout` from now; `scale` multiplies the waits the cases ask for.
    pub fn launch(
        command: &PluginCommand,
        scale: f64,
        case_timeout: Duration,
    ) -> Result<PluginUnderTest, LaunchError> {
        let mut opts = LaunchOptions::new(&command.program);
        opts.args = command.args.clone();
        opts.stdout = Output::Null;
        opts.stderr = Output::Capture;
        let mut launched = launch(&opts)?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = launched.process.take_stderr() {
            let keep = Arc::clone(&stderr);
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut kept = keep.lock().unwrap_or_else(|e| e.into_inner());
                    let room = STDERR_KEEP.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
            });
        }
        let (tx, rx) = channel();
        let mut reader = File::from(launched.reader);
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Input::Eof);
                        break;
                    }
                    Ok(n) => {
                        if tx.send(Input::Data(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Input::Error(e.to_string()));
                        break;
                    }
                }
            }
        });
        Ok(PluginUnderTest {
            process: launched.process,
            writer: Some(File::from(launched.writer)),
            rx,
            eof: false,
            stderr,
            scale,
            case_deadline: Instant::now() + case_timeout,
            assembler: FrameAssembler::new(),
            frames: VecDeque::new(),
            table: StreamTable::new(Role::Host),
            hooks: None,
            hooks_client: ClientCodec::new(),
            api: None,
            api_calls: Vec::new(),
            streams_seen: Vec::new(),
            streams_opened: Vec::new(),
        })
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// What the plugin wrote to its standard error so far (the first 64 KiB).
    pub fn stderr(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }

    /// Whether the case's deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.case_deadline
    }

    /// `within`, scaled, from now, but no later than the case's deadline.
    pub fn deadline(&self, within: Duration) -> Instant {
        (Instant::now() + within.mul_f64(self.scale)).min(self.case_deadline)
    }

    /// `d` multiplied by the timeout scale.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }

    // ----- raw access -----

    /// Writes `bytes` to the plugin's descriptor 3 as one write.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| "the harness already closed its pipe".to_string())?;
        writer
            .write_all(bytes)
            .map_err(|e| format!("writing to the plugin's descriptor 3 failed: {e}"))
    }

    /// Writes `frame` to the plugin's descriptor 3.
    pub fn write_frame(&mut self, stream_id: StreamId, payload: &[u8]) -> Result<(), String> {
        let mut out = Vec::new();
        rpcplugin_codec::frame::encode_frame(stream_id, payload, &mut out)
            .map_err(|e| e.to_string())?;
        self.write_raw(&out)
    }

    /// Reads what the plugin writes next, waiting until `deadline`.
    pub fn read_raw(&mut self, deadline: Instant) -> Input {
        if self.eof {
            return Input::Eof;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(Input::Eof) => {
                self.eof = true;
                Input::Eof
            }
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => Input::TimedOut,
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Input::Eof
            }
        }
    }

    /// The next whole frame the plugin sends, decoded with the codec's frame decoder, waiting
    /// at most `within` (scaled).
    pub fn next_frame(&mut self, within: Duration) -> Result<Frame, RawEnd> {
        let deadline = self.deadline(within);
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(frame);
            }
            match self.read_raw(deadline) {
                Input::Data(bytes) => {
                    let mut out = Vec::new();
                    let pushed = self.assembler.push(&bytes, &mut out);
                    self.frames.extend(out);
                    if let Err(e) = pushed {
                        if let Some(frame) = self.frames.pop_front() {
                            return Ok(frame);
                        }
                        return Err(RawEnd::Malformed(e));
                    }
                }
                Input::Eof => {
                    if let Err(e) = self.assembler.finish() {
                        return Err(RawEnd::Malformed(e));
                    }
                    return Err(RawEnd::Eof);
                }
                Input::Error(e) => return Err(RawEnd::Error(e)),
                Input::TimedOut => return Err(RawEnd::TimedOut),
            }
        }
    }

    /// Reads and discards the plugin's output until it closes it, for at most `within`
    /// (scaled). True when end of file was seen.
    pub fn wait_eof(&mut self, within: Duration) -> bool {
        let deadline = self.deadline(within);
        loop {
            match self.read_raw(deadline) {
                Input::Data(_) => {}
                Input::Eof | Input::Error(_) => return true,
                Input::TimedOut => return false,
            }
        }
    }

    /// Closes the harness's end of the host-to-plugin pipe: the plugin reads end of file.
    pub fn close_input(&mut self) {
        self.writer = None;
    }

    /// Waits at most `within` (scaled) for the plugin process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<Exit> {
        let wait = self
            .deadline(within)
            .saturating_duration_since(Instant::now());
        self.process.wait_timeout(wait).ok().flatten()
    }

    /// The process's exit, if it has exited.
    pub fn try_exit(&mut self) -> Option<Exit> {
        self.process.try_wait().ok().flatten()
    }

    // ----- protocol access -----

    /// The hooks stream, once the handshake is complete.
    pub fn hooks(&self) -> Option<StreamId> {
        self.hooks
    }

    /// The `LocalAPI` calls the plugin made, by `ServiceMethod`.
    pub fn api_calls(&self) -> &[String] {
        &self.api_calls
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
                    return Err(format!("the plugin's output is invalid: {e}"));
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
                    } else if self.api.as_ref().map(|a| a.0) == Some(stream_id) {
                        self.serve_api(&bytes)?;
                    }
                }
                _ => {}
            }
        }
        self.flush()?;
        Ok(true)
    }

    fn drain_stream(&mut self, id: StreamId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Read::Data(n)) = self.table.read(id, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    fn serve_api(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some((id, server)) = self.api.as_mut() else {
            return Ok(());
        };
        let id = *id;
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
                Ok(Call::LoadPluginConfiguration) => {
                    Ok(Reply::Configuration(CONFIGURATION.to_vec()))
                }
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
            self.table
                .write(id, &out)
                .map_err(|e| format!("writing on the API stream failed: {e}"))?;
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
                        "HS-1",
                        "an announcement on stream 0 within START_TIMEOUT (3 s)",
                        "nothing valid arrived in time",
                    ));
                }
                Err(got) => return Err(self.handshake_end(got)),
            }
        }
    }

    fn handshake_end(&mut self, got: String) -> Outcome {
        let exit = self.wait_exit(Duration::from_millis(500));
        let mut failure = Failure::new(
            "HS-1",
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
        Outcome::Fail(failure)
    }

    /// Opens a stream of the host's parity and serves `LocalAPI` on it.
    pub fn open_api_stream(&mut self) -> Result<StreamId, Outcome> {
        let id = self
            .table
            .open()
            .map_err(|e| Outcome::error(format!("opening an API stream failed: {e}")))?;
        self.api = Some((id, ServerCodec::new()));
        self.streams_opened.push(id);
        Ok(id)
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

    /// Sends `call` on the hooks stream without waiting for its answer; returns its `Seq`.
    pub fn send_call(&mut self, call: Call) -> Result<u64, Outcome> {
        let hooks = self
            .hooks
            .ok_or_else(|| Outcome::error("no handshake before a hook call"))?;
        let what = call.to_string();
        let mut out = Vec::new();
        let seq = self
            .hooks_client
            .call_typed(call, &mut out)
            .map_err(|e| Outcome::error(format!("encoding {what} failed: {e}")))?;
        self.table
            .write(hooks, &out)
            .map_err(|e| Outcome::error(format!("writing {what} failed: {e}")))?;
        self.flush().map_err(Outcome::error)?;
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
            match self.hooks_client.next_response() {
                Ok(Some(response)) => return Ok(Some(response)),
                Ok(None) => {}
                Err(e) => return Err(format!("an invalid response: {e}")),
            }
            if !self.pump(deadline)? {
                return Ok(None);
            }
        }
    }

    /// Writes `bytes` to the plugin's descriptor 3 from another thread, waiting at most
    /// `within` (scaled) for the write to complete, so that a plugin that stops reading cannot
    /// block the harness. After a time out the pipe is left to the writing thread (it ends
    /// when the plugin is killed) and the harness writes nothing more.
    pub fn write_raw_bounded(&mut self, bytes: Vec<u8>, within: Duration) -> Result<(), String> {
        let deadline = self.deadline(within);
        let len = bytes.len();
        let mut writer = self
            .writer
            .as_ref()
            .ok_or_else(|| "the harness already closed its pipe".to_string())?
            .try_clone()
            .map_err(|e| format!("duplicating the pipe failed: {e}"))?;
        let (tx, rx) = channel();
        thread::spawn(move || {
            let _ = tx.send(writer.write_all(&bytes));
        });
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing to the plugin's descriptor 3 failed: {e}")),
            Err(_) => {
                self.writer = None;
                Err(format!(
                    "the plugin did not read a {len}-byte write within {:?}",
                    self.scaled(within)
                ))
            }
        }
    }

    /// Calls a hook and waits at most CALL_TIMEOUT (scaled) for its answer, serving `LocalAPI`
    /// meanwhile. `Ok(Ok(reply))` for a successful response, `Ok(Err(text))` for an error
    /// response; no answer fails with `requirement`.
    pub fn call(
        &mut self,
        call: Call,
        requirement: &'static str,
    ) -> Result<Result<Reply, String>, Outcome> {
        let hooks = self
            .hooks
            .ok_or_else(|| Outcome::error("no handshake before a hook call"))?;
        let what = call.to_string();
        let mut out = Vec::new();
        let seq = self
            .hooks_client
            .call_typed(call.clone(), &mut out)
            .map_err(|e| Outcome::error(format!("encoding {what} failed: {e}")))?;
        self.table
            .write(hooks, &out)
            .map_err(|e| Outcome::error(format!("writing {what} failed: {e}")))?;
        self.flush().map_err(Outcome::error)?;
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
            match self.hooks_client.next_response() {
                Ok(Some(response)) if response.header.seq == seq => {
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
                Ok(Some(_)) => continue,
                Ok(None) => {}
                Err(e) => {
                    return Err(self.fail(
                        requirement,
                        &expected,
                        &format!("an invalid response: {e}"),
                    ))
                }
            }
            match self.pump(deadline) {
                Ok(true) => {}
                Ok(false) => return Err(self.fail(requirement, &expected, "no response in time")),
                Err(got) => return Err(self.fail(requirement, &expected, &got)),
            }
        }
    }

    /// Sends `call` on the hooks stream one byte per write (each byte its own frame).
    pub fn call_fragmented(&mut self, call: Call) -> Result<u64, Outcome> {
        let hooks = self
            .hooks
            .ok_or_else(|| Outcome::error("no handshake before a hook call"))?;
        let mut body = Vec::new();
        let seq = self
            .hooks_client
            .call_typed(call, &mut body)
            .map_err(|e| Outcome::error(format!("encoding failed: {e}")))?;
        let mut frame = Vec::new();
        rpcplugin_codec::frame::encode_frame(hooks, &body, &mut frame)
            .map_err(|e| Outcome::error(e.to_string()))?;
        for byte in frame {
            self.write_raw(&[byte]).map_err(Outcome::error)?;
        }
        Ok(seq)
    }

    /// A failure of `requirement`, with the plugin's standard error attached.
    pub fn fail(&self, requirement: &'static str, expected: &str, got: &str) -> Outcome {
        let mut failure = Failure::new(requirement, expected, got);
        failure.stderr = self.stderr();
        Outcome::Fail(failure)
    }
}

impl Drop for PluginUnderTest {
    fn drop(&mut self) {
        self.writer = None;
        // PluginProcess kills and reaps a child that has not been reaped.
        if self.process.exit().is_none() {
            let _ = self.process.kill();
        }
    }
}
