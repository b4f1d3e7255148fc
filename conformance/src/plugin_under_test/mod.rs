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
//!
//! One concern per file:
//!
//! - `process`: launching the plugin ([`PluginCommand`], [`Launch`]), the reader thread, the
//!   case's deadline, the process's exit and what it left behind ([`processes_with`]);
//! - `raw_io`: raw writes to descriptor 3 and raw reads ([`Input`]) or frames ([`RawEnd`]) from
//!   descriptor 4;
//! - `observer`: the decoding of both directions and the checks listed above;
//! - `session`: the protocol side the cases call (handshake, hook calls, `LocalAPI` served as
//!   [`ApiAnswer`] says).
//!
//! This file holds the driver's state ([`PluginUnderTest`]), which each of them extends.

mod observer;
mod process;
mod raw_io;
mod session;

use std::collections::{BTreeSet, VecDeque};
use std::fs::File;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rpcplugin_codec::frame::{Frame, FrameAssembler, StreamId};
use rpcplugin_codec::rpc::{Call, ClientCodec, Response, ServerCodec};
use rpcplugin_codec::stream::StreamTable;
use rpcplugin_codec::trace::{Note, Tracer, Violation};
use rpcplugin_runtime::process::PluginProcess;

use crate::transcript::Recorder;

pub(crate) use process::proc_entries;
pub use process::{processes_with, Launch, PluginCommand, TOKEN_VAR};
pub use raw_io::{Input, RawEnd};
/// START_TIMEOUT (how long the host waits for the announcement, HS-4) and EXIT_BOUND (how long
/// a plugin takes at most to exit after its connection has ended, TRANS-9).
pub use rpcplugin_codec::lifecycle::{EXIT_BOUND, START_TIMEOUT};
pub use session::{ApiAnswer, CALL_TIMEOUT, CONFIGURATION};

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

impl std::fmt::Debug for PluginUnderTest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginUnderTest")
            .field("pid", &self.process.pid())
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
    }
}
