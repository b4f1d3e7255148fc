//! Go `net/rpc` clients and servers over a [`Stream`] (`spec/05-rpc.md`), built on the codec's
//! [`ClientCodec`] and [`ServerCodec`].
//!
//! - [`RpcClient`]: concurrent calls from any number of threads, replies matched by `Seq`
//!   (RPC-4, RPC-6); when the stream ends or its gob stream breaks, every pending call fails at
//!   once with the reason, and so does every later call (RPC-11, GOB-18).
//! - [`serve`]: a server that answers each request once (RPC-5), running handlers concurrently
//!   on a pool of worker threads (at most [`MAX_CONCURRENT_CALLS`] at once; past that, the
//!   stream is left unread) so that replies may leave in any order, answering unroutable
//!   requests with Go's error texts (RPC-8, RPC-9), and closing the stream on a gob error
//!   (GOB-18).
//!
//! Both decode on the thread that reads the connection, through the stream's sink
//! ([`Stream::set_sink`]). A caller waits in [`Stream::wait_driving`], so that its reply wakes
//! it directly when it reads the connection itself; a request runs on the reader thread that
//! decoded it when the connection's other reader thread can read meanwhile
//! ([`Stream::run_on_reader`]), else on a worker. A round trip between two processes then costs
//! one thread switch on each side, as a raw pipe ping-pong does.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use rpcplugin_codec::gob::Decoder;
use rpcplugin_codec::gob::{TypeId, Value};
use rpcplugin_codec::rpc::{Call, ClientCodec, Reply, RequestHeader, ServerCodec};

use crate::connection::{Signal, SinkEvent, Stream};

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallFailure {
    /// The server answered with an error response (RPC-10).
    #[error("{method} failed: {text}")]
    Remote {
        /// `Service.Method`.
        method: String,
        /// The response's `Error`.
        text: String,
    },
    /// The reply has another type than the call's (RPC-10).
    #[error("{method}: {text}")]
    ReplyType {
        /// `Service.Method`.
        method: String,
        /// What was wrong.
        text: String,
    },
    /// The stream ended, or its gob stream broke, before the reply (RPC-11).
    #[error("{method} failed: the RPC stream ended: {reason}")]
    Ended {
        /// `Service.Method`.
        method: String,
        /// Why the stream ended.
        reason: String,
    },
}

/// Where a call's result is put, and the signal its caller waits for.
struct CallSlot {
    result: Mutex<Option<Result<Value, CallFailure>>>,
    signal: Signal,
}

impl CallSlot {
    fn complete(&self, result: Result<Value, CallFailure>) {
        *self.result.lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        self.signal.set();
    }
}

type Pending = (String, Arc<CallSlot>);

struct ClientState {
    codec: ClientCodec<Pending>,
    ended: Option<String>,
    /// The buffer calls are encoded into, kept from one call to the next.
    out: Vec<u8>,
}

/// A net/rpc client on one stream.
pub struct RpcClient {
    stream: Stream,
    state: Arc<Mutex<ClientState>>,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("stream", &self.stream.id())
            .finish()
    }
}

fn fail_all(state: &mut ClientState, reason: String) {
    for (_, (method, slot)) in state.codec.fail_pending() {
        slot.complete(Err(CallFailure::Ended {
            method,
            reason: reason.clone(),
        }));
    }
    state.ended.get_or_insert(reason);
}

impl RpcClient {
    /// A client that calls over `stream`. Replies are decoded and handed to their callers by
    /// the thread reading the connection, as they arrive (see [`Stream::set_sink`]): often the
    /// caller itself (see [`Stream::wait_driving`]).
    pub fn new(stream: Stream) -> std::io::Result<RpcClient> {
        let state = Arc::new(Mutex::new(ClientState {
            codec: ClientCodec::with_decoder(Decoder::with_limits(stream.gob_limits())),
            ended: None,
            out: Vec::new(),
        }));
        let s = Arc::clone(&state);
        let closer = stream.clone();
        stream.set_sink(move |event| client_event(&s, &closer, event));
        Ok(RpcClient { stream, state })
    }

    /// The stream the client calls over.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Calls `method` with `args` and waits for the reply value.
    pub fn call_raw(&self, method: &str, args: (TypeId, &Value)) -> Result<Value, CallFailure> {
        let slot = Arc::new(CallSlot {
            result: Mutex::new(None),
            signal: Signal::new(&self.stream),
        });
        {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(reason) = &state.ended {
                return Err(CallFailure::Ended {
                    method: method.to_string(),
                    reason: reason.clone(),
                });
            }
            let mut bytes = std::mem::take(&mut state.out);
            bytes.clear();
            let encoded = state.codec.call(
                method,
                args,
                (method.to_string(), Arc::clone(&slot)),
                &mut bytes,
            );
            if let Err(e) = encoded {
                return Err(CallFailure::Ended {
                    method: method.to_string(),
                    reason: format!("the call could not be encoded: {e}"),
                });
            }
            // Written under the lock, so that Seq order is wire order.
            if let Err(e) = (&self.stream).write_all(&bytes) {
                fail_all(&mut state, format!("writing the call failed: {e}"));
            }
            if bytes.capacity() <= KEPT_BUFFER {
                state.out = bytes;
            }
        }
        // The reply is delivered to the slot by whichever thread reads it: this one if no
        // other thread reads the connection.
        self.stream.wait_driving(&slot.signal);
        let result = slot.result.lock().unwrap_or_else(|e| e.into_inner()).take();
        result.unwrap_or_else(|| {
            Err(CallFailure::Ended {
                method: method.to_string(),
                reason: "the client was dropped".into(),
            })
        })
    }

    /// Calls a method of protocol 1 and waits for its typed reply.
    pub fn call(&self, call: Call) -> Result<Reply, CallFailure> {
        let method = call.service_method();
        let (id, args) = call.argument();
        let body = self.call_raw(method, (id, &args))?;
        Reply::for_call(&call, &body).map_err(|text| CallFailure::ReplyType {
            method: method.to_string(),
            text,
        })
    }

    /// Why the client can no longer call, once its stream has ended or broken (RPC-11).
    pub fn ended(&self) -> Option<String> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ended
            .clone()
    }

    /// Closes the stream; pending and later calls fail.
    pub fn close(&self) {
        self.stream.close();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        fail_all(&mut state, "the client was closed".into());
    }
}

impl Drop for RpcClient {
    fn drop(&mut self) {
        self.close();
    }
}

/// Handles what arrives on a client's stream (on the thread reading the connection).
fn client_event(state: &Mutex<ClientState>, stream: &Stream, event: SinkEvent) {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let bytes = match event {
        SinkEvent::Data(bytes) => bytes,
        SinkEvent::End(end) => {
            let reason = match (end, st.codec.finish()) {
                (Err(e), _) => e.to_string(),
                (Ok(()), Err(e)) => e.to_string(),
                (Ok(()), Ok(())) => "the server closed the stream".to_string(),
            };
            fail_all(&mut st, reason);
            drop(st);
            // STREAM-11: the server is gone from this stream; close this side too.
            stream.close();
            return;
        }
    };
    if st.ended.is_some() {
        return;
    }
    st.codec.push(&bytes);
    loop {
        match st.codec.next_response() {
            Ok(Some(r)) => {
                // RPC-6: a response for no pending call is dropped.
                let Some((method, slot)) = r.call else {
                    continue;
                };
                let result = if r.header.error.is_empty() {
                    Ok(r.body)
                } else {
                    Err(CallFailure::Remote {
                        method,
                        text: r.header.error,
                    })
                };
                slot.complete(result);
            }
            Ok(None) => return,
            Err(e) => {
                // GOB-18: the stream is unusable: fail everything and close it.
                fail_all(&mut st, e.to_string());
                drop(st);
                stream.close();
                return;
            }
        }
    }
}

/// How a server loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServeEnd {
    /// The client closed the stream at a message boundary.
    Closed,
    /// The stream failed, or its gob stream broke (GOB-18); the text says why.
    Failed(String),
}

/// The handler of a server: the typed call in, the reply or an error text out.
pub type Handler = dyn Fn(Call) -> Result<Reply, String> + Send + Sync;

/// The largest encoding buffer a client or server keeps for its next message.
const KEPT_BUFFER: usize = 64 * 1024;

/// At most this many calls of one server run at once; more requests wait to be read.
pub const MAX_CONCURRENT_CALLS: usize = 64;

/// Serves `services` on `stream` until the client closes it. Requests are decoded by the
/// thread reading the connection as they arrive (see [`Stream::set_sink`]) and each call runs
/// on that reader thread or on a worker thread, never holding up the next request, so replies
/// may leave in any order; the returned thread ends, with how the
/// serving ended, once the stream has ended and every running call has answered.
pub fn serve(
    stream: Stream,
    services: &'static [&'static str],
    handler: Arc<Handler>,
) -> std::io::Result<JoinHandle<ServeEnd>> {
    let server = Arc::new(Server {
        wire: Mutex::new(ServerWire {
            codec: ServerCodec::with_decoder(Decoder::with_limits(stream.gob_limits())),
            out: Vec::new(),
        }),
        pool: Arc::new(Pool::default()),
        state: Mutex::new(ServerState::default()),
        changed: Condvar::new(),
        services,
        handler,
        stream: stream.clone(),
    });
    let waiter = Arc::clone(&server);
    let thread = std::thread::Builder::new()
        .name(format!("rpcplugin-rpc-server-{}", stream.id()))
        .spawn(move || waiter.wait_end())?;
    let s = Arc::clone(&server);
    stream.set_sink(move |event| s.on_event(event));
    Ok(thread)
}

/// A server's codec, and the buffer responses are encoded into (kept from one to the next).
struct ServerWire {
    codec: ServerCodec,
    out: Vec<u8>,
}

struct Server {
    wire: Mutex<ServerWire>,
    pool: Arc<Pool>,
    state: Mutex<ServerState>,
    changed: Condvar,
    services: &'static [&'static str],
    handler: Arc<Handler>,
    stream: Stream,
}

#[derive(Default)]
struct ServerState {
    running: usize,
    /// Requests decoded while MAX_CONCURRENT_CALLS calls ran; they start as calls end.
    backlog: VecDeque<rpcplugin_codec::rpc::Request>,
    paused: bool,
    end: Option<ServeEnd>,
}

impl Server {
    fn state(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wire(&self) -> MutexGuard<'_, ServerWire> {
        self.wire.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn finish(&self, end: ServeEnd) {
        // GOB-18: after a gob error, close the stream; the results of running calls are
        // dropped with it. STREAM-11: after the client's close, nothing can be sent any more
        // (row S11), so close this side too.
        self.stream.close();
        let mut st = self.state();
        st.end.get_or_insert(end);
        self.changed.notify_all();
    }

    /// What arrives on the stream (on the thread reading the connection).
    fn on_event(self: &Arc<Self>, event: SinkEvent) {
        let bytes = match event {
            SinkEvent::Data(bytes) => bytes,
            SinkEvent::End(Err(e)) => return self.finish(ServeEnd::Failed(e.to_string())),
            SinkEvent::End(Ok(())) => {
                let end = match self.wire().codec.finish() {
                    Ok(()) => ServeEnd::Closed,
                    Err(e) => ServeEnd::Failed(e.to_string()),
                };
                return self.finish(end);
            }
        };
        if self.state().end.is_some() {
            return;
        }
        self.wire().codec.push(&bytes);
        loop {
            // Not holding the codec's lock while a call starts: it may run here at once.
            let next = self.wire().codec.next_request();
            match next {
                Ok(Some(request)) => self.start_call(request),
                Ok(None) => return,
                Err(e) => return self.finish(ServeEnd::Failed(e.to_string())),
            }
        }
    }

    /// Runs one call on a worker; past MAX_CONCURRENT_CALLS running calls, the request waits in
    /// the backlog and the stream's data is left unread until calls end.
    fn start_call(self: &Arc<Self>, request: rpcplugin_codec::rpc::Request) {
        let mut st = self.state();
        if st.running >= MAX_CONCURRENT_CALLS {
            st.backlog.push_back(request);
            if !st.paused {
                st.paused = true;
                drop(st);
                self.stream.pause_sink(true);
            }
            return;
        }
        st.running += 1;
        drop(st);
        self.run(request);
    }

    fn run(self: &Arc<Self>, request: rpcplugin_codec::rpc::Request) {
        let server = Arc::clone(self);
        let job: Job = Box::new(move || {
            let header = request.header;
            let result =
                match Call::from_request(server.services, &header.service_method, &request.args) {
                    // RPC-8, RPC-9: answered, and the stream goes on.
                    Err(e) => Err(e.to_string()),
                    // RPC-5: a handler that panics is still answered.
                    Ok(call) => {
                        let handler = Arc::clone(&server.handler);
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(call)))
                            .unwrap_or_else(|panic| {
                                let what = panic
                                    .downcast_ref::<&str>()
                                    .map(|s| s.to_string())
                                    .or_else(|| panic.downcast_ref::<String>().cloned())
                                    .unwrap_or_else(|| "a panic".into());
                                Err(format!(
                                    "the handler of {} panicked: {what}",
                                    header.service_method
                                ))
                            })
                    }
                };
            respond(&server.wire, &server.stream, &header, result);
            server.call_ended();
        });
        // On the reader thread that decoded the request if it can (one thread switch less),
        // else on a worker.
        if let Err(job) = self.stream.run_on_reader(job) {
            self.pool.submit(job);
        }
    }

    /// A call has answered: start the next one from the backlog, or let the stream flow again.
    fn call_ended(self: &Arc<Self>) {
        let mut st = self.state();
        if let Some(next) = st.backlog.pop_front() {
            drop(st);
            return self.run(next);
        }
        st.running -= 1;
        // Only wait_end waits, for the last call to end: no wake-up for the others.
        if st.running == 0 && st.end.is_some() {
            self.changed.notify_all();
        }
        if st.paused {
            st.paused = false;
            drop(st);
            self.stream.pause_sink(false);
        }
    }

    /// Waits until the stream has ended and every running call has answered.
    fn wait_end(&self) -> ServeEnd {
        let mut st = self.state();
        loop {
            if st.running == 0 {
                if let Some(end) = st.end.clone() {
                    drop(st);
                    self.pool.close();
                    return end;
                }
            }
            st = self.changed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

fn respond(
    end: &Mutex<ServerWire>,
    stream: &Stream,
    header: &RequestHeader,
    result: Result<Reply, String>,
) {
    let mut end = end.lock().unwrap_or_else(|e| e.into_inner());
    let ServerWire { codec, out } = &mut *end;
    let mut bytes = std::mem::take(out);
    bytes.clear();
    let sent = match &result {
        Ok(reply) => codec.respond_typed(header, Ok(reply), &mut bytes),
        Err(text) => codec.respond_typed(header, Err(text.as_str()), &mut bytes),
    };
    if let Err(e) = sent {
        // GOB-16: a reply too large to send becomes an error response.
        bytes.clear();
        let text = format!("the reply cannot be sent: {e}");
        if codec
            .respond_typed(header, Err(text.as_str()), &mut bytes)
            .is_err()
        {
            return;
        }
    }
    let _ = (&*stream).write_all(&bytes);
    if bytes.capacity() <= KEPT_BUFFER {
        *out = bytes;
    }
}

use crate::connection::Job;

/// The threads that run a server's calls: started on demand, kept while the server runs, so
/// that a call costs a wake-up rather than a thread start.
#[derive(Default)]
struct Pool {
    state: Mutex<PoolState>,
    ready: Condvar,
}

#[derive(Default)]
struct PoolState {
    jobs: VecDeque<Job>,
    idle: usize,
    closed: bool,
}

impl Pool {
    /// Runs `job` on an idle worker, a new one, or (if no thread can start) right here, so that
    /// every request is answered (RPC-5).
    fn submit(self: &Arc<Self>, job: Job) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.jobs.push_back(job);
        if st.idle > 0 {
            self.ready.notify_one();
            return;
        }
        drop(st);
        let pool = Arc::clone(self);
        let started = std::thread::Builder::new()
            .name("rpcplugin-rpc-call".into())
            .spawn(move || pool.work());
        if started.is_err() {
            let job = self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .jobs
                .pop_back();
            if let Some(job) = job {
                job();
            }
        }
    }

    fn work(self: Arc<Self>) {
        loop {
            let job = {
                let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    if let Some(j) = st.jobs.pop_front() {
                        break j;
                    }
                    if st.closed {
                        return;
                    }
                    st.idle += 1;
                    st = self.ready.wait(st).unwrap_or_else(|e| e.into_inner());
                    st.idle -= 1;
                }
            };
            job();
        }
    }

    fn close(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.closed = true;
        self.ready.notify_all();
    }
}
