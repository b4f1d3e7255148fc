//! A connection: one [`StreamTable`] driven by threads over two pipe descriptors, and
//! blocking [`Stream`] handles over it (`spec/03-streams.md`, `spec/04-handshake.md`).
//!
//! Reading: one thread at a time holds the *read role*: it polls the input, feeds everything it
//! reads to the codec (FRAME-12), wakes whoever waits and delivers to the streams' sinks; it
//! never waits for a stream's reader, so one slow stream cannot stall the others (STREAM-14).
//! The role is held by one of the connection's two reader threads, or by a caller waiting in
//! [`Stream::wait_driving`] (an RPC call waiting for its reply) while no other thread reads:
//! the reply then wakes the caller itself, with one thread switch instead of two. A reader
//! thread lets go of the role when a caller waits, and to run a job a sink callback handed it
//! ([`Stream::run_on_reader`], an RPC request decoded on it); a caller lets go once it has its
//! reply. The role, once let go of, is left for the next caller for at most [`HANDOVER`]; then
//! a reader thread takes it again (at once when a thread blocks in a stream read).
//!
//! The role is one value, `ReadRole` (in `connection/read_role/`): its state (held by reader
//! thread *i*, held by a caller, free since an instant, ended) and what its wake-ups need. Each
//! row of this table is one of its methods, which returns what the calling thread must do and
//! whom it must wake; the time is a parameter where the [`HANDOVER`] timer matters. The
//! connection calls them under its lock and carries out what they return.
//!
//! | read role | event | next | what happens | `ReadRole` method |
//! |---|---|---|---|---|
//! | held by a reader thread | data read, a caller waits | free | the callers are woken; the next one takes the role | `reader_has_read` |
//! | held by a reader thread | a sink callback hands it a job, the other reader thread is not in a job | free | it runs the job, then takes the role back if still free | `job_can_be_handed`, `reader_hands_job`, `reader_job_done` |
//! | held by a caller | its reply arrives (it delivers it, or another thread sets its [`Signal`] and nudges its poll) | free | it returns; waiting callers are woken | `caller_got_reply` |
//! | free | a caller waits for a reply | held by that caller | it polls and reads | `caller_waits` (`caller_woke` after parking) |
//! | free | a thread blocks in a stream read | held by a reader thread | at once | `thread_blocks_in_read`, then `reader_idle` |
//! | free for [`HANDOVER`] | the standby reader thread's timer | held by that reader thread | | `reader_idle(now)` |
//! | any | the connection ends | none | every thread is woken; the input is closed (TRANS-8) | `connection_ended`, `input_closed` |
//!
//! Writing: the thread that queues a frame writes it itself when nothing else is being
//! written; otherwise the writer thread takes whole frames from the codec's transmit queue and
//! writes them, normally in one `write(2)` per batch (FRAME-10, FRAME-11). Writers are held
//! back while more than [`HIGH_WATER`] bytes wait to be written, so memory stays bounded.
//!
//! Ending the connection (a local [`Connection::close`], end of input, a connection error, or a
//! failed read or write: TRANS-7) wakes every thread; they let go of their descriptors, which
//! closes both pipes (TRANS-8). Stream reads then fail with an error, except on streams the
//! peer had closed, which end with end-of-stream (STREAM-12); closing a stream while another
//! thread reads it makes that read return end-of-stream, as in the seed.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::stream::{
    ConnectionEnd, Limits, Read as TableRead, Role, StreamError, StreamTable,
};
use rpcplugin_codec::{handshake::HandshakeError, stream::ConnectionError, StreamId};

use crate::fdio::{self, Wakeups};

mod read_role;
mod reading;
mod sink;
#[cfg(test)]
mod tests;
mod writing;

use read_role::{ReadRole, Wake};
pub use reading::Signal;
use reading::{drive, read_loop, DELIVERING_FOR, STASH};
pub use sink::SinkEvent;
use sink::{drain_sinks, Sink, SinkQueue};
use writing::{write_directly, write_loop};

/// Writers wait while more than this many bytes are queued and not yet written.
pub const HIGH_WATER: usize = 1 << 20;

/// The largest buffer kept for the next batch a writing thread writes itself.
const SPARE_MAX: usize = 64 * 1024;

/// The size of the reader thread's buffer.
const READ_CHUNK: usize = 64 * 1024;

/// The connection's own reader threads: one reads while the other may run a job it handed
/// over ([`Stream::run_on_reader`]) and stands by to take over reading.
const READER_THREADS: usize = 2;

/// How long the input may go unread after the thread reading it let go of it (to run a job, or
/// because a caller got its reply) before a reader thread takes over. Until then, the next
/// caller of [`Stream::wait_driving`] reads itself, and its reply reaches it with one thread
/// switch instead of two.
pub const HANDOVER: Duration = Duration::from_millis(1);

/// A job handed to [`Stream::run_on_reader`].
pub type Job = Box<dyn FnOnce() + Send>;

/// `now + timeout`, or `None` ("never") when that overflows, as for `Duration::MAX`.
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Which of the connection's condition variables a thread waits on.
#[derive(Debug, Clone, Copy)]
enum Cv {
    /// [`Shared::changed`].
    Changed,
    /// [`Shared::writable`].
    Writable,
    /// [`Shared::finished`].
    Finished,
    /// [`Shared::readers`].
    Reader,
    /// [`Shared::reader_state`].
    ReaderState,
}

#[derive(Debug)]
struct Inner {
    table: StreamTable,
    /// Bytes the writer thread has taken and not yet finished writing.
    in_flight: usize,
    /// The unwritten rest of a batch a writing thread started itself; the writer thread sends
    /// it before anything else.
    carry: Vec<u8>,
    /// An empty buffer kept for the next batch a writing thread takes (at most [`SPARE_MAX`]).
    spare: Vec<u8>,
    /// The pipe frames are written to (non-blocking), shared with the writer thread; `None`
    /// once the writer thread has ended, which then closes the pipe (TRANS-8).
    output: Option<Arc<File>>,
    /// Frames discarded so far (unknown or closed streams, stream 0 after the handshake).
    discarded: u64,
    writer_done: bool,
    /// Who reads the pipe frames are read from, and that pipe, shared by whoever reads it:
    /// closed when the connection has ended and the last reading thread lets go of it (TRANS-8).
    role: ReadRole<Arc<File>>,
    /// Streams whose data goes to a callback instead of blocking reads.
    sinks: HashMap<StreamId, Arc<Sink>>,
    /// The gob decoding limits of the RPC clients and servers on this connection's streams.
    gob_limits: DecodeLimits,
    /// How many threads wait on each condition variable (indexed by [`Cv`]): a notification
    /// with no waiter is skipped, since it costs a system call.
    waiting: [usize; 5],
}

#[derive(Debug)]
struct Shared {
    inner: Mutex<Inner>,
    /// Signalled on every change that a blocked stream read or write or a flush may wait for.
    changed: Condvar,
    /// Signalled only when the writer thread has work (frames to write, or the end), so that
    /// it is not woken for every frame read: one thread switch less per message.
    writable: Condvar,
    /// Signalled only when the connection ends (for [`Connection::wait_ended`]).
    finished: Condvar,
    /// Where reader threads wait for the read role ([`Wake::readers`]).
    readers: Condvar,
    /// Signalled when a reader thread exits or starts a job (for `Drop`;
    /// [`Wake::reader_state`]).
    reader_state: Condvar,
    /// Cancels every wait in `poll` when the connection ends, and nudges the poll of a caller
    /// that reads while its reply came another way.
    wakeups: Wakeups,
    /// The token of the thread in `poll` on the input, 0 if none.
    poller: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves the table consistent enough to be closed.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn condvar(&self, cv: Cv) -> &Condvar {
        match cv {
            Cv::Changed => &self.changed,
            Cv::Writable => &self.writable,
            Cv::Finished => &self.finished,
            Cv::Reader => &self.readers,
            Cv::ReaderState => &self.reader_state,
        }
    }

    /// Waits on `cv` until notified or for at most `timeout`.
    fn wait_for<'a>(
        &self,
        cv: Cv,
        mut inner: MutexGuard<'a, Inner>,
        timeout: Duration,
    ) -> MutexGuard<'a, Inner> {
        inner.waiting[cv as usize] += 1;
        let mut inner = self
            .condvar(cv)
            .wait_timeout(inner, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        inner.waiting[cv as usize] -= 1;
        inner
    }

    /// Wakes the threads a transition of the read role names.
    fn wake(&self, inner: &Inner, wake: Wake) {
        if wake.readers {
            self.notify_all(inner, Cv::Reader);
        }
        if wake.reader_state {
            self.notify_all(inner, Cv::ReaderState);
        }
        if wake.callers {
            inner
                .role
                .parked_callers()
                .for_each(|thread| thread.unpark());
        }
    }

    /// Waits on `cv` until notified or until `deadline`; `None` when the deadline has passed.
    fn wait<'a>(
        &self,
        cv: Cv,
        mut inner: MutexGuard<'a, Inner>,
        deadline: Option<Instant>,
    ) -> Option<MutexGuard<'a, Inner>> {
        let condvar = self.condvar(cv);
        inner.waiting[cv as usize] += 1;
        let mut inner = match deadline {
            None => condvar.wait(inner).unwrap_or_else(|e| e.into_inner()),
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    inner.waiting[cv as usize] -= 1;
                    return None;
                }
                condvar
                    .wait_timeout(inner, d - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0
            }
        };
        inner.waiting[cv as usize] -= 1;
        Some(inner)
    }

    /// Waits on `cv` until notified.
    fn wait_on<'a>(&self, cv: Cv, inner: MutexGuard<'a, Inner>) -> MutexGuard<'a, Inner> {
        match self.wait(cv, inner, None) {
            Some(inner) => inner,
            None => unreachable!("a wait without a deadline ends only when notified"),
        }
    }

    /// Wakes every thread waiting on `cv`, if there is one.
    fn notify_all(&self, inner: &Inner, cv: Cv) {
        if inner.waiting[cv as usize] > 0 {
            self.condvar(cv).notify_all();
        }
    }

    fn end(&self, inner: &mut Inner, why: impl FnOnce(&mut StreamTable)) {
        if inner.table.ended().is_none() {
            why(&mut inner.table);
        }
        // Every caller ends the table (a start timeout that found the handshake complete
        // closes the connection, see `Connection::wait_for_handshake`).
        debug_assert!(
            inner.table.ended().is_some(),
            "end() leaves the table ended"
        );
        let wake = inner.role.connection_ended();
        self.notify_all(inner, Cv::Changed);
        self.notify_all(inner, Cv::Writable);
        self.notify_all(inner, Cv::Finished);
        self.wake(inner, wake);
        self.wakeups.cancel();
    }

    /// After the end: drops this side's hold on the input (TRANS-8) and fails every stream.
    fn finish(&self, inner: &mut Inner) {
        inner.role.input_closed();
        self.end(inner, StreamTable::close_connection);
    }

    /// Wakes whoever may wait for a change of `inner`: the waiters on `changed`, and the
    /// writer thread if there is something for it to write.
    fn notify(&self, inner: &Inner) {
        self.notify_all(inner, Cv::Changed);
        if inner.table.has_transmit() || !inner.carry.is_empty() {
            self.notify_all(inner, Cv::Writable);
        }
    }
}

/// Why a host's wait for the handshake failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The start timeout passed (HS-4).
    #[error("HS-4: no handshake from the plugin within {0:?}")]
    Timeout(Duration),
    /// The connection ended before or instead of the handshake (HS-5, HS-6, FRAME-14).
    #[error("the plugin's connection ended before the handshake: {0}")]
    Ended(ConnectionEnd),
}

/// One end of a connection (see the module documentation).
#[derive(Debug)]
pub struct Connection {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    readers: Vec<JoinHandle<()>>,
}

impl Connection {
    /// Starts a connection for `role` that reads frames from `input` and writes frames to
    /// `output` (on the host, the plugin's descriptor 4 and 3 ends; on the plugin, descriptors
    /// 3 and 4).
    pub fn new(
        role: Role,
        input: OwnedFd,
        output: OwnedFd,
        limits: Limits,
    ) -> io::Result<Connection> {
        let output = File::from(output);
        fdio::set_nonblocking(&output)?;
        let output = Arc::new(output);
        let table = StreamTable::with_limits(role, limits)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                table,
                in_flight: 0,
                carry: Vec::new(),
                spare: Vec::new(),
                output: Some(Arc::clone(&output)),
                discarded: 0,
                writer_done: false,
                role: ReadRole::new(
                    Arc::new(File::from(input)),
                    READER_THREADS,
                    HANDOVER,
                    Instant::now(),
                ),
                sinks: HashMap::new(),
                gob_limits: DecodeLimits::default(),
                waiting: [0; 5],
            }),
            changed: Condvar::new(),
            writable: Condvar::new(),
            finished: Condvar::new(),
            readers: Condvar::new(),
            reader_state: Condvar::new(),
            wakeups: Wakeups::new()?,
            poller: AtomicU64::new(0),
        });
        let w = Arc::clone(&shared);
        let writer = std::thread::Builder::new()
            .name(format!("rpcplugin-{role}-writer"))
            .spawn(move || write_loop(&w, output))?;
        let mut connection = Connection {
            shared,
            writer: Some(writer),
            readers: Vec::new(),
        };
        for i in 0..READER_THREADS {
            let r = Arc::clone(&connection.shared);
            match std::thread::Builder::new()
                .name(format!("rpcplugin-{role}-reader"))
                .spawn(move || read_loop(&r, i))
            {
                Ok(reader) => connection.readers.push(reader),
                Err(e) => {
                    let shared = &connection.shared;
                    let mut inner = shared.lock();
                    for never in i..READER_THREADS {
                        let wake = inner.role.reader_exits(never);
                        shared.wake(&inner, wake);
                    }
                    drop(inner);
                    // Dropping the connection closes it and ends the started threads.
                    return Err(e);
                }
            }
        }
        Ok(connection)
    }

    /// The plugin's side of the handshake: opens the hooks stream and sends the announcement
    /// (HS-1).
    pub fn announce(&self) -> Result<Stream, StreamError> {
        let mut inner = self.shared.lock();
        let id = inner.table.announce()?;
        self.shared.notify(&inner);
        drop(inner);
        Ok(Stream::new(&self.shared, id))
    }

    /// The host's side of the handshake: waits for the announcement for at most `timeout` and
    /// returns the connected hooks stream (HS-4, HS-7). On failure the connection is ended.
    pub fn wait_for_handshake(&self, timeout: Duration) -> Result<Stream, StartError> {
        let deadline = deadline(timeout);
        let mut inner = self.shared.lock();
        loop {
            let wake = inner.role.thread_blocks_in_read();
            self.shared.wake(&inner, wake);
            if let Some(hooks) = inner.table.handshake().and_then(|h| h.hooks()) {
                if inner.table.ended().is_none() || inner.table.state(hooks).is_some() {
                    drop(inner);
                    return Ok(Stream::new(&self.shared, hooks));
                }
            }
            if let Some(end) = inner.table.ended() {
                let end = end.clone();
                self.shared.end(&mut inner, |_| {});
                return Err(StartError::Ended(end));
            }
            match self.shared.wait(Cv::Changed, inner, deadline) {
                Some(guard) => inner = guard,
                None => {
                    let mut inner = self.shared.lock();
                    let _ = inner.table.on_start_timeout();
                    // A handshake that completed at this very moment does not end the table
                    // itself: the connection is ended all the same, as documented.
                    self.shared.end(&mut inner, StreamTable::close_connection);
                    return Err(StartError::Timeout(timeout));
                }
            }
        }
    }

    /// Opens a stream with this side's next id (STREAM-2). By STREAM-6, do not write on it
    /// before the peer has shown it connected the stream.
    pub fn open_stream(&self) -> Result<Stream, StreamError> {
        let id = self.shared.lock().table.open()?;
        Ok(Stream::new(&self.shared, id))
    }

    /// Connects a stream the peer opened and announced.
    pub fn connect_stream(&self, id: StreamId) -> Result<Stream, StreamError> {
        self.shared.lock().table.connect(id)?;
        Ok(Stream::new(&self.shared, id))
    }

    /// Sets the gob decoding limits (GOB-15, GOB-17) of the RPC clients and servers created
    /// on this connection's streams from now on ([`crate::rpc`]); the default is
    /// [`DecodeLimits::default`]. The limits are not checked against the spec's bounds (see
    /// [`DecodeLimits::validate`]), so that a deliberately broken test host can go beyond them.
    pub fn set_gob_limits(&self, limits: DecodeLimits) {
        self.shared.lock().gob_limits = limits;
    }

    /// How the connection ended, if it has.
    pub fn ended(&self) -> Option<ConnectionEnd> {
        self.shared.lock().table.ended().cloned()
    }

    /// Frames discarded so far (for unknown or closed streams, or on stream 0).
    pub fn discarded_frames(&self) -> u64 {
        self.shared.lock().discarded
    }

    /// Waits up to `timeout` for the connection to end; returns how it ended, if it did.
    pub fn wait_ended(&self, timeout: Duration) -> Option<ConnectionEnd> {
        let deadline = deadline(timeout);
        let mut inner = self.shared.lock();
        loop {
            if let Some(end) = inner.table.ended() {
                return Some(end.clone());
            }
            inner = self.shared.wait(Cv::Finished, inner, deadline)?;
        }
    }

    /// Waits up to `timeout` until every queued frame has been written; returns whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = deadline(timeout);
        let mut inner = self.shared.lock();
        loop {
            if !inner.table.has_transmit() && inner.in_flight == 0 && inner.carry.is_empty() {
                return true;
            }
            if inner.writer_done {
                return false;
            }
            match self.shared.wait(Cv::Changed, inner, deadline) {
                Some(guard) => inner = guard,
                None => return false,
            }
        }
    }

    /// Ends the connection now: queued frames are dropped, every stream fails (STREAM-12), and
    /// both pipes are closed (TRANS-8). Safe to call more than once.
    pub fn close(&self) {
        let mut inner = self.shared.lock();
        self.shared.end(&mut inner, StreamTable::close_connection);
    }

    /// Writes what is queued (waiting up to `timeout`), then closes.
    pub fn close_gracefully(&self, timeout: Duration) {
        self.flush(timeout);
        self.close();
    }
}

impl Drop for Connection {
    /// Closes the connection and waits for its threads, except reader threads running a job
    /// (which may never return: they end after it).
    fn drop(&mut self) {
        self.close();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let me = std::thread::current().id();
        let mut inner = self.shared.lock();
        while inner.role.readers_outside_jobs() > 0
            && !self.readers.iter().any(|r| r.thread().id() == me)
        {
            inner = self.shared.wait_on(Cv::ReaderState, inner);
        }
        drop(inner);
        for reader in self.readers.drain(..) {
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}

#[derive(Debug)]
struct StreamInner {
    shared: Arc<Shared>,
    id: StreamId,
}

impl Drop for StreamInner {
    fn drop(&mut self) {
        let mut inner = self.shared.lock();
        let _ = inner.table.close(self.id);
        self.shared.notify(&inner);
    }
}

/// A blocking handle on one stream. Clones share the stream; it is closed (STREAM-8) by
/// [`Stream::close`] or when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct Stream {
    inner: Arc<StreamInner>,
}

fn to_io(e: StreamError) -> io::Error {
    let kind = match &e {
        StreamError::ConnectionEnded(ConnectionEnd::Error(ConnectionError::Handshake(
            HandshakeError::Timeout,
        ))) => io::ErrorKind::TimedOut,
        StreamError::ConnectionEnded(_) => io::ErrorKind::ConnectionAborted,
        StreamError::ClosedByPeer(_) => io::ErrorKind::BrokenPipe,
        StreamError::ClosedLocally(_) => io::ErrorKind::NotConnected,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Stream {
    fn new(shared: &Arc<Shared>, id: StreamId) -> Stream {
        Stream {
            inner: Arc::new(StreamInner {
                shared: Arc::clone(shared),
                id,
            }),
        }
    }

    /// The stream's id.
    pub fn id(&self) -> StreamId {
        self.inner.id
    }

    /// The gob decoding limits of its connection (see [`Connection::set_gob_limits`]).
    pub fn gob_limits(&self) -> DecodeLimits {
        self.inner.shared.lock().gob_limits
    }

    /// Hands the stream's incoming data to `callback` instead of blocking reads: the
    /// connection's reader thread calls it, in order, as data arrives, and once with
    /// [`SinkEvent::End`]. Do not read the stream once it has a sink. The callback must not
    /// block for long: it holds up every stream of the connection (STREAM-14).
    pub fn set_sink(&self, callback: impl FnMut(SinkEvent) + Send + 'static) {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        inner.sinks.insert(
            self.inner.id,
            Arc::new(Sink {
                queue: Mutex::new(SinkQueue::default()),
                callback: Mutex::new(Box::new(callback)),
            }),
        );
        let ready = drain_sinks(&mut inner);
        drop(inner);
        ready.iter().for_each(|s| s.deliver());
    }

    /// Stops or resumes handing data to the stream's sink. While paused, data stays in the
    /// stream's buffer, whose limit then applies (STREAM-13).
    pub fn pause_sink(&self, paused: bool) {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        if let Some(sink) = inner.sinks.get(&self.inner.id) {
            sink.queue.lock().unwrap_or_else(|e| e.into_inner()).paused = paused;
        }
        if paused {
            return;
        }
        let ready = drain_sinks(&mut inner);
        drop(inner);
        ready.iter().for_each(|s| s.deliver());
    }

    /// Waits until `signal` is set. While no other thread reads the connection, this thread
    /// reads it and delivers what arrives (to every stream's sink, including callbacks that
    /// set `signal`), so that an awaited reply wakes this thread directly rather than through
    /// the connection's reader thread. Returns when the signal is set.
    pub fn wait_driving(&self, signal: &Signal) {
        drive(&self.inner.shared, signal);
    }

    /// Runs `job` on the connection's reader thread that is delivering to this stream's sink
    /// right now, once it has delivered, while its other reader thread reads. Returns the job
    /// when that is not possible (not called from a sink callback on a reader thread, a job
    /// already handed over, or no other reader thread free): run it elsewhere then. It saves
    /// the thread switch of handing the job to a worker. A job that runs long delays reading
    /// by at most [`HANDOVER`] (STREAM-14).
    pub fn run_on_reader(&self, job: Job) -> Result<(), Job> {
        let shared = &self.inner.shared;
        let here = DELIVERING_FOR.with(|d| d.get()) == Arc::as_ptr(shared) as usize;
        if !here || STASH.with(|s| s.borrow().is_some()) {
            return Err(job);
        }
        if !shared.lock().role.job_can_be_handed() {
            return Err(job);
        }
        STASH.with(|s| *s.borrow_mut() = Some(job));
        Ok(())
    }

    /// Closes the stream: sends its close frame (STREAM-8); a read blocked on it in another
    /// thread returns end-of-stream.
    pub fn close(&self) {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        let _ = inner.table.close(self.inner.id);
        shared.notify(&inner);
        let ready = drain_sinks(&mut inner);
        drop(inner);
        ready.iter().for_each(|s| s.deliver());
    }

    fn read_impl(&self, buf: &mut [u8]) -> io::Result<usize> {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        loop {
            match inner.table.read(self.inner.id, buf) {
                Ok(TableRead::Data(n)) => return Ok(n),
                Ok(TableRead::Eof) => return Ok(0),
                Ok(TableRead::Empty) => {}
                // Closed by this side (perhaps while this read waited): end-of-stream, as in
                // the seed; unknown after both sides closed: the same.
                Err(StreamError::ClosedLocally(_) | StreamError::UnknownStream(_))
                    if inner.table.ended().is_none() =>
                {
                    return Ok(0)
                }
                Err(e) => return Err(to_io(e)),
            }
            let wake = inner.role.thread_blocks_in_read();
            shared.wake(&inner, wake);
            inner = shared.wait_on(Cv::Changed, inner);
        }
    }

    fn write_impl(&self, data: &[u8]) -> io::Result<usize> {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        for piece in data.chunks(HIGH_WATER / 4) {
            loop {
                let queued =
                    inner.table.pending_transmit().len() + inner.in_flight + inner.carry.len();
                if queued <= HIGH_WATER || inner.table.ended().is_some() {
                    break;
                }
                inner = shared.wait_on(Cv::Changed, inner);
            }
            inner.table.write(self.inner.id, piece).map_err(to_io)?;
            write_directly(shared, &mut inner);
        }
        Ok(data.len())
    }
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_impl(buf)
    }
}

impl Write for &Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_impl(data)
    }

    /// Waits until every frame queued on the connection has been written.
    fn flush(&mut self) -> io::Result<()> {
        let shared = &self.inner.shared;
        let mut inner = shared.lock();
        loop {
            if !inner.table.has_transmit() && inner.in_flight == 0 && inner.carry.is_empty() {
                return Ok(());
            }
            if let Some(end) = inner.table.ended() {
                return Err(to_io(StreamError::ConnectionEnded(end.clone())));
            }
            inner = shared.wait_on(Cv::Changed, inner);
        }
    }
}

impl Write for Stream {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_impl(data)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}
