//! [`PluginUnderTest`]: the harness in the host role against one plugin process.
//!
//! The driver is single-threaded from the case's point of view: a reader thread turns what the
//! plugin writes to its descriptor 4 into byte chunks on a channel, and every wait of the driver
//! is a `recv_timeout` bounded by both the wait's own limit and the case's deadline. Cases get
//! raw access (write any bytes to the plugin's descriptor 3, read bytes or whole frames) and
//! protocol access (a host-role [`StreamTable`] for the handshake, and the RPC codecs for hook
//! calls, with `LocalAPI` served on the API stream meanwhile). Dropping the driver kills and
//! reaps the plugin process.
//!
//! Everything that crosses the pipes is recorded ([`Recorder`]) for the replay file of a failing
//! case, and everything the plugin writes goes through a [`Tracer`] (the codec's sender-rule
//! observer) and the driver's own two-direction checks, whatever the case does: a violation
//! found there fails the case even if its own check passed ([`PluginUnderTest::violations`]):
//!
//! - the sender rules of the tracer (FRAME-1, FRAME-2, FRAME-9, HS-1, HS-2, STREAM-1, STREAM-7,
//!   STREAM-8, RPC-1, RPC-4, RPC-7 and the gob rules);
//! - STREAM-2: data on an odd stream the harness never opened;
//! - STREAM-5: data on an odd stream the harness wrote to without ever announcing it (the plugin
//!   answered frames it had to discard);
//! - STREAM-6: data on a stream the plugin opened before the harness wrote to it.

use std::collections::{BTreeSet, VecDeque};
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
use rpcplugin_codec::stream::{Event, Read, Role, StreamError, StreamTable};
use rpcplugin_codec::trace::{Note, Tracer, Violation, What};
use rpcplugin_runtime::process::{
    launch, Exit, LaunchError, LaunchOptions, Output, PluginProcess, Stdin,
};

use crate::outcome::{Failure, Outcome};
use crate::transcript::Recorder;

/// START_TIMEOUT (how long the host waits for the announcement, HS-4) and EXIT_BOUND (how long
/// a plugin takes at most to exit after its connection has ended, TRANS-9).
pub use rpcplugin_codec::lifecycle::{EXIT_BOUND, START_TIMEOUT};
/// How long the harness waits for the answer to a hook call.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The configuration the harness gives the plugin through `LoadPluginConfiguration`.
pub const CONFIGURATION: &[u8] = br#"{"conformance":true}"#;
/// How much of the plugin's standard error is kept.
const STDERR_KEEP: usize = 64 * 1024;
/// The environment variable that marks the plugin and every process it starts, so that the
/// harness can find what the plugin left behind (TRANS-11).
pub const TOKEN_VAR: &str = "RPCPLUGIN_CONFORMANCE_TOKEN";

/// The plugin executable and its arguments.
#[derive(Debug, Clone)]
pub struct PluginCommand {
    /// Path of the executable.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
}

impl PluginCommand {
    /// The program and its arguments as text, for reports.
    pub fn display(&self) -> Vec<String> {
        let mut v = vec![self.program.display().to_string()];
        v.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        v
    }
}

/// How a case wants the plugin launched.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    /// Multiplies every wait the case asks for.
    pub scale: f64,
    /// The case's own deadline, from the launch (already scaled).
    pub case_timeout: Duration,
    /// Give the plugin a standard input pipe that the harness holds open and never writes,
    /// instead of `/dev/null` (TRANS-5).
    pub stdin_pipe: bool,
    /// The run's seed, for cases that choose splits or orders at random.
    pub seed: u64,
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
    /// The write end of the plugin's standard input, held open (never written).
    stdin: Option<std::process::ChildStdin>,
    rx: Receiver<Input>,
    eof: bool,
    stderr: Arc<Mutex<Vec<u8>>>,
    scale: f64,
    case_deadline: Instant,
    token: String,
    rng: u64,
    recorder: Recorder,
    // Observation of both directions.
    plugin_trace: Tracer,
    host_trace: Tracer,
    notes: Vec<Note>,
    violations: Vec<(u64, Violation)>,
    /// Data streams the harness wrote data on.
    host_wrote: BTreeSet<StreamId>,
    /// Requests the harness sent, by stream and Seq, and whether the plugin answered them.
    host_requests: std::collections::BTreeMap<(StreamId, u64), bool>,
    /// The ids the harness named in `OnActivate` requests that a plugin must refuse (not a
    /// positive odd id greater than every one named before, RPC-14), other than streams the
    /// harness opened itself: a plugin that sends data on one has connected it, and the rule
    /// it broke is RPC-14, whatever its frames look like.
    refused_ids: BTreeSet<i64>,
    /// Earlier API streams named again in an `OnActivate`: data on one after the plugin closed
    /// it means that the plugin connected it again (RPC-14).
    stale_ids: BTreeSet<i64>,
    /// The greatest valid API stream id named in an `OnActivate` so far.
    last_api_id: i64,
    /// The refused ids the plugin has been found using.
    used_refused: BTreeSet<i64>,
    /// How many violations had been reported to the case when it last waited: a new one makes
    /// the case's waits fail at once.
    violations_reported: usize,
    // Raw access.
    assembler: FrameAssembler,
    frames: VecDeque<Frame>,
    // Protocol access.
    table: StreamTable,
    hooks: Option<StreamId>,
    hooks_client: ClientCodec<Call>,
    /// Hook responses read but not claimed yet (they may come in any order, RPC-5).
    unclaimed: VecDeque<Response<Call>>,
    /// Why the hooks stream's responses stopped decoding, if they did.
    hooks_error: Option<String>,
    /// The API streams the harness opened, each served as `LocalAPI`.
    apis: Vec<(StreamId, ServerCodec)>,
    api_calls: Vec<String>,
    /// How the harness answers `LoadPluginConfiguration`.
    api_answer: ApiAnswer,
    // Every data stream id the plugin sent a frame on, in order of first appearance.
    streams_seen: Vec<StreamId>,
    // Streams the harness opened (host parity).
    streams_opened: Vec<StreamId>,
}

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

impl std::fmt::Debug for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUnderTest")
            .field("pid", &self.process.pid())
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}

impl PluginUnderTest {
    /// Launches the plugin with its standard error captured and its standard output
    /// discarded. Every wait of the driver ends at the latest `launch.case_timeout` from now.
    pub fn launch(
        command: &PluginCommand,
        launch_spec: &Launch,
    ) -> Result<PluginUnderTest, LaunchError> {
        let recorder = Recorder::new();
        let token = format!(
            "{}-{}-{}",
            std::process::id(),
            recorder.start().elapsed().as_nanos(),
            next_launch()
        );
        let mut opts = LaunchOptions::new(&command.program);
        opts.args = command.args.clone();
        opts.stdout = Output::Null;
        opts.stderr = Output::Capture;
        opts.env = vec![(TOKEN_VAR.into(), token.clone().into())];
        opts.stdin = if launch_spec.stdin_pipe {
            Stdin::Pipe
        } else {
            Stdin::Null
        };
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
        let record = recorder.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        record.eof();
                        let _ = tx.send(Input::Eof);
                        break;
                    }
                    Ok(n) => {
                        record.received(&buf[..n]);
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
        let stdin = launched.process.take_stdin();
        Ok(PluginUnderTest {
            process: launched.process,
            writer: Some(File::from(launched.writer)),
            stdin,
            rx,
            eof: false,
            stderr,
            scale: launch_spec.scale,
            case_deadline: Instant::now() + launch_spec.case_timeout,
            token,
            rng: launch_spec.seed ^ 0x9e37_79b9_7f4a_7c15,
            recorder,
            plugin_trace: Tracer::new(Role::Plugin),
            host_trace: Tracer::new(Role::Host),
            notes: Vec::new(),
            violations: Vec::new(),
            host_wrote: BTreeSet::new(),
            host_requests: Default::default(),
            refused_ids: BTreeSet::new(),
            stale_ids: BTreeSet::new(),
            last_api_id: 0,
            used_refused: BTreeSet::new(),
            violations_reported: 0,
            assembler: FrameAssembler::new(),
            frames: VecDeque::new(),
            table: StreamTable::new(Role::Host),
            hooks: None,
            hooks_client: ClientCodec::new(),
            unclaimed: VecDeque::new(),
            hooks_error: None,
            apis: Vec::new(),
            api_calls: Vec::new(),
            api_answer: ApiAnswer::Configuration(CONFIGURATION.to_vec()),
            streams_seen: Vec::new(),
            streams_opened: Vec::new(),
        })
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The recorder of this exchange.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
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

    /// A pseudo-random number from the run's seed (xorshift64*): the same seed gives the same
    /// sequence.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// The rule violations seen so far in what the plugin sent, with the offset in its output.
    pub fn violations(&self) -> &[(u64, Violation)] {
        &self.violations
    }

    /// Everything the tracer found in the plugin's output so far.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    // ----- observation -----

    fn observe_sent(&mut self, bytes: &[u8]) {
        self.recorder.sent(bytes);
        let mut notes = Vec::new();
        self.host_trace.push(bytes, &mut notes);
        for n in notes {
            match n.what {
                What::Frame { stream_id, len, .. } if len > 0 && !stream_id.is_control() => {
                    self.host_wrote.insert(stream_id);
                }
                What::Request {
                    stream_id,
                    seq,
                    service_method,
                    args,
                } => {
                    self.host_requests.entry((stream_id, seq)).or_insert(false);
                    if service_method == rpcplugin_codec::rpc::ON_ACTIVATE {
                        if let Ok(id) = args.parse::<i64>() {
                            if id > 0 && id % 2 == 1 && id > self.last_api_id {
                                self.last_api_id = id;
                            } else if !self.streams_opened.iter().any(|s| s.get() == id) {
                                // A stream the harness opened itself (an earlier API stream)
                                // may still carry the plugin's calls: only the others count,
                                // and an earlier one once the plugin has closed it.
                                self.refused_ids.insert(id);
                            } else {
                                self.stale_ids.insert(id);
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn observe_received(&mut self, bytes: &[u8]) {
        let mut notes = Vec::new();
        self.plugin_trace.push(bytes, &mut notes);
        self.check(notes);
    }

    fn observe_eof(&mut self) {
        let mut notes = Vec::new();
        self.plugin_trace.finish(&mut notes);
        self.check(notes);
    }

    /// The RPC-14 violation for a frame on `id`, when `id` is one the harness named in an
    /// `OnActivate` that the plugin had to refuse (reported once per id).
    fn refused_id_used(&mut self, id: i64) -> Option<Violation> {
        if !self.used_refused.insert(id) {
            return None;
        }
        Some(Violation {
            requirement: "RPC-14",
            text: format!(
                "the plugin sent a frame on stream {id}, the id the harness named in \
                 OnActivate({id}): it connected an id the host cannot have allocated (not a new \
                 positive odd id) instead of answering that call with an error"
            ),
        })
    }

    fn check(&mut self, notes: Vec<Note>) {
        // Once the harness has broken a rule on purpose (garbage, data after a close), what it
        // sent is no longer a reliable reference for the two-direction checks.
        let reference = self.host_trace.violations() == 0 && !self.host_trace.failed();
        for (i, n) in notes.iter().enumerate() {
            let closed_by_plugin = |id: StreamId| {
                self.notes
                    .iter()
                    .chain(&notes[..i])
                    .any(|m| m.what == What::Close { stream_id: id })
            };
            match &n.what {
                // A frame on an id the plugin had to refuse: RPC-14 is what it broke, and comes
                // before what the tracer makes of the frame.
                What::Frame { stream_id, len, .. }
                    if *len > 0
                        && (self.refused_ids.contains(&stream_id.get())
                            || (self.stale_ids.contains(&stream_id.get())
                                && closed_by_plugin(*stream_id))) =>
                {
                    if let Some(v) = self.refused_id_used(stream_id.get()) {
                        self.violations.push((n.offset, v));
                    }
                }
                // A negative stream id cannot even be framed: the same, if the harness named one.
                What::Violation(v)
                    if v.requirement.starts_with("FRAME-")
                        && self.refused_ids.iter().any(|id| *id < 0) =>
                {
                    let negative = *self.refused_ids.iter().find(|id| **id < 0).expect("found");
                    if let Some(found) = self.refused_id_used(negative) {
                        self.violations.push((n.offset, found));
                    }
                    self.violations.push((n.offset, v.clone()));
                }
                What::Violation(v) => self.violations.push((n.offset, v.clone())),
                What::Response { stream_id, seq, .. } if reference => {
                    let text = match self.host_requests.get_mut(&(*stream_id, *seq)) {
                        None => Some(format!(
                            "a response with Seq {seq} on stream {stream_id}, where the harness \
                             sent no request with that Seq"
                        )),
                        Some(true) => Some(format!(
                            "a second response with Seq {seq} on stream {stream_id}"
                        )),
                        Some(answered) => {
                            *answered = true;
                            None
                        }
                    };
                    if let Some(text) = text {
                        self.violations.push((
                            n.offset,
                            Violation {
                                requirement: "RPC-5",
                                text,
                            },
                        ));
                    }
                }
                What::Frame { stream_id, len, .. }
                    if reference && *len > 0 && !stream_id.is_control() =>
                {
                    let id = *stream_id;
                    let found = if id.is_plugin_allocated() {
                        (!self.host_wrote.contains(&id)).then(|| Violation {
                            requirement: "STREAM-6",
                            text: format!(
                                "the plugin sent data on stream {id}, which it opened, before the \
                                 harness had sent anything on it (the harness cannot have \
                                 connected it yet)"
                            ),
                        })
                    } else if self.streams_opened.contains(&id) {
                        None
                    } else if self.host_wrote.contains(&id) {
                        Some(Violation {
                            requirement: "STREAM-5",
                            text: format!(
                                "the plugin sent data on stream {id}, which the harness wrote \
                                 to but never opened or announced: it should have discarded \
                                 those frames, not connected the stream"
                            ),
                        })
                    } else {
                        Some(Violation {
                            requirement: "STREAM-2",
                            text: format!(
                                "the plugin sent data on stream {id}, an odd id that only the \
                                 host allocates, and the harness never opened it"
                            ),
                        })
                    };
                    if let Some(v) = found {
                        // Once per stream is enough.
                        if !self
                            .violations
                            .iter()
                            .any(|(_, old)| old.requirement == v.requirement && old.text == v.text)
                        {
                            self.violations.push((n.offset, v));
                        }
                    }
                }
                _ => {}
            }
        }
        self.notes.extend(notes);
    }

    // ----- raw access -----

    /// Writes `bytes` to the plugin's descriptor 3 as one write.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| "the harness already closed its pipe".to_string())?;
        let result = writer
            .write_all(bytes)
            .map_err(|e| format!("writing to the plugin's descriptor 3 failed: {e}"));
        self.observe_sent(bytes);
        result
    }

    /// Writes `bytes` to the plugin's descriptor 3 as one write; a failed write (the plugin
    /// closed descriptor 3 or exited) fails the case with LIFE-21.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        self.write_raw(bytes).map_err(|e| self.lost(e))
    }

    /// The failure for a write the plugin did not take.
    fn lost(&mut self, what: String) -> Outcome {
        if self.writer.is_none() {
            return Outcome::error(what);
        }
        let exit = self.wait_exit(Duration::from_millis(200));
        let got = match exit {
            Some(exit) => format!("{what}; the process {exit}"),
            None => what,
        };
        self.fail(
            "LIFE-21",
            "the plugin keeps reading its descriptor 3 for as long as the connection has not ended",
            &got,
        )
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
            Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                self.observe_eof();
                Input::Eof
            }
            Ok(Input::Data(bytes)) => {
                self.observe_received(&bytes);
                Input::Data(bytes)
            }
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => Input::TimedOut,
        }
    }

    /// Reads and observes whatever the plugin has written already, without waiting.
    pub fn drain_ready(&mut self) {
        while let Input::Data(bytes) = self.read_raw(Instant::now()) {
            self.feed_protocol(&bytes);
        }
    }

    fn feed_protocol(&mut self, bytes: &[u8]) {
        let _ = self.table.receive(bytes);
        while let Some(event) = self.table.poll_event() {
            if let Event::HandshakeComplete { hooks } = event {
                self.hooks = Some(hooks);
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

    /// Reads the plugin's output (keeping the protocol state up to date) until it closes it,
    /// for at most `within` (scaled). True when end of file was seen.
    pub fn wait_eof(&mut self, within: Duration) -> bool {
        let deadline = self.deadline(within);
        loop {
            match self.read_raw(deadline) {
                Input::Data(bytes) => self.feed_protocol(&bytes),
                Input::Eof | Input::Error(_) => return true,
                Input::TimedOut => return false,
            }
        }
    }

    /// Whether the plugin has closed its output (as far as the harness has read).
    pub fn output_closed(&self) -> bool {
        self.eof
    }

    /// Closes the harness's end of the host-to-plugin pipe: the plugin reads end of file.
    pub fn close_input(&mut self) {
        if self.writer.take().is_some() {
            self.recorder.closed_input();
        }
    }

    /// Waits at most `within` (scaled) for the plugin process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<Exit> {
        let wait = self
            .deadline(within)
            .saturating_duration_since(Instant::now());
        let exit = self.process.wait_timeout(wait).ok().flatten();
        if let Some(exit) = exit {
            self.recorder.exit(exit);
        }
        exit
    }

    /// The process's exit, if it has exited.
    pub fn try_exit(&mut self) -> Option<Exit> {
        let exit = self.process.try_wait().ok().flatten();
        if let Some(exit) = exit {
            self.recorder.exit(exit);
        }
        exit
    }

    /// Processes still running that carry this launch's token in their environment: the
    /// plugin's descendants (and the plugin itself while it runs). Linux only: elsewhere the
    /// list is empty.
    pub fn marked_processes(&self) -> Vec<(u32, String)> {
        processes_with(&format!("{TOKEN_VAR}={}", self.token))
    }

    /// Kills every process [`PluginUnderTest::marked_processes`] finds.
    pub fn kill_marked(&self) {
        for (pid, _) in self.marked_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
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

    /// A violation the observer found since the case last waited: the case stops waiting.
    fn new_violation(&mut self) -> Option<String> {
        let (offset, v) = self.violations.get(self.violations_reported)?;
        let found = format!(
            "the harness's observer found a violation of {} at byte {offset} of the plugin's \
             output: {}",
            v.requirement, v.text
        );
        self.violations_reported = self.violations.len();
        Some(found)
    }

    /// Whether a case's wait ended because the observer found a violation.
    pub fn stopped_by_observer(&self) -> bool {
        self.violations_reported > 0
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
        // Only a plugin whose output ended may have crashed: wait a little for its exit.
        let exit = if self.eof {
            self.wait_exit(Duration::from_millis(500))
        } else {
            self.try_exit()
        };
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
        self.observe_sent(&bytes);
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

    /// Writes `bytes` in pieces cut at `cuts` (offsets in increasing order), one write each.
    pub fn write_in_pieces(&mut self, bytes: &[u8], cuts: &[usize]) -> Result<(), Outcome> {
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            if cut > at {
                self.send(&bytes[at..cut])?;
                at = cut;
            }
        }
        Ok(())
    }

    /// A failure of `requirement`, with the plugin's standard error attached.
    pub fn fail(&self, requirement: &'static str, expected: &str, got: &str) -> Outcome {
        let mut failure = Failure::new(requirement, expected, got);
        failure.stderr = self.stderr();
        Outcome::fail(failure)
    }

    /// Kills the plugin (if it still runs) and whatever it left behind, and reaps it.
    pub fn shut_down(&mut self) {
        self.writer = None;
        self.stdin = None;
        if self.try_exit().is_none() {
            let _ = self.process.kill();
        }
        self.kill_marked();
    }
}

impl Drop for PluginUnderTest {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Processes still running whose environment holds the entry `needle` (`NAME=value`), with
/// their command lines. Linux only: elsewhere the list is empty.
pub fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (pid, dir) in proc_entries() {
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            // A zombie has an empty environ, so everything found here is alive.
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline.trim().to_string()));
        }
    }
    found
}

/// Every process in `/proc`: its pid and its directory (none where there is no `/proc`).
pub(crate) fn proc_entries() -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// A counter that makes every launch's token unique within this process.
fn next_launch() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
