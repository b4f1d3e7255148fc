//! The threads that read a connection: its reader threads ([`read_loop`]) and callers waiting
//! for a reply ([`drive`]), each reading only while it holds the read role (see the
//! [module documentation](super)); and [`Signal`], what such a caller waits for.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::read_role::{AfterJob, AfterRead, CallerNext, ReaderNext};
use super::sink::{drain_sinks, drain_sinks_into, Sink};
use super::{Cv, Job, Shared, Stream, READ_CHUNK};
use crate::fdio::{self, Got};

thread_local! {
    /// A number unique to this thread, for [`Signal`] and [`Shared::poller`].
    static TOKEN: u64 = {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    };
    /// The connection whose reader thread this is, while it delivers to sinks (0 otherwise).
    pub(super) static DELIVERING_FOR: Cell<usize> = const { Cell::new(0) };
    /// The job a sink callback handed to this reader thread, to run once delivering is done.
    pub(super) static STASH: RefCell<Option<Job>> = const { RefCell::new(None) };
    /// A caller's read buffer, kept for the thread's next call.
    static DRIVER_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// This thread's token.
pub(super) fn token() -> u64 {
    TOKEN.with(|t| *t)
}

/// Reads once from `input` (the caller holds the read role, not the lock) and feeds what it got
/// to the table; puts in `ready` the sinks the caller must deliver to.
fn read_once(shared: &Shared, input: &File, buf: &mut [u8], ready: &mut Vec<Arc<Sink>>) {
    let got = fdio::read(input, buf, &shared.wakeups);
    shared.poller.store(0, Ordering::SeqCst);
    let mut inner = shared.lock();
    match got {
        Ok(Got::Woken | Got::Nudged) => {}
        Ok(Got::Bytes(0)) => {
            let _ = inner.table.end_of_input();
        }
        Ok(Got::Bytes(n)) => {
            // FRAME-14: an error ends the table, and reading stops.
            let _ = inner.table.receive(&buf[..n]);
            while let Some(event) = inner.table.poll_event() {
                if let rpcplugin_codec::stream::Event::Discarded { .. } = event {
                    inner.discarded += 1;
                }
            }
            shared.notify(&inner);
        }
        Err(e) => {
            inner
                .table
                .transport_failed(format!("reading the pipe failed: {e}"));
        }
    }
    if inner.table.ended().is_some() {
        shared.finish(&mut inner);
    }
    drain_sinks_into(&mut inner, ready);
}

/// Delivers to `ready` as the reader thread of `shared`, and returns the job a sink callback
/// handed over, if any.
fn deliver_as_reader(shared: &Shared, ready: &[Arc<Sink>]) -> Option<Job> {
    if ready.is_empty() {
        return None;
    }
    DELIVERING_FOR.with(|d| d.set(shared as *const Shared as usize));
    ready.iter().for_each(|s| s.deliver());
    DELIVERING_FOR.with(|d| d.set(0));
    STASH.with(|s| s.borrow_mut().take())
}

/// Reader thread `me`: takes the read role when it is wanted, or left free for
/// [`HANDOVER`](super::HANDOVER), and reads while nobody else needs it; runs the jobs sink
/// callbacks hand it; exits at the end. What it does next is the read role's to say (see
/// [`ReadRole`](super::ReadRole)).
pub(super) fn read_loop(shared: &Shared, me: usize) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut ready = Vec::new();
    let mut inner = shared.lock();
    inner.role.reader_starts(me, Instant::now());
    loop {
        let input = match inner.role.reader_idle(me, Instant::now()) {
            ReaderNext::Read(input) => input,
            ReaderNext::Wait(Some(timeout)) => {
                inner = shared.wait_for(Cv::Reader, inner, timeout);
                continue;
            }
            ReaderNext::Wait(None) => {
                inner = shared.wait_on(Cv::Reader, inner);
                continue;
            }
            ReaderNext::Exit => break,
        };
        drop(inner);
        loop {
            shared.poller.store(token(), Ordering::SeqCst);
            read_once(shared, &input, &mut buf, &mut ready);
            let job = deliver_as_reader(shared, &ready);
            // Before locking: the last hold on a finished sink may drop streams, which lock.
            ready.clear();
            let mut g = shared.lock();
            if let Some(job) = job {
                // Run the job here, and let the other reader thread, or a caller, read
                // meanwhile; take the role back after it if nobody has.
                let wake = g.role.reader_hands_job(me, Instant::now());
                shared.wake(&g, wake);
                drop(g);
                job();
                g = shared.lock();
                match g.role.reader_job_done(me) {
                    AfterJob::ReadAgain => {
                        drop(g);
                        continue;
                    }
                    AfterJob::Leave => {
                        inner = g;
                        break;
                    }
                }
            }
            match g.role.reader_has_read(me, Instant::now()) {
                AfterRead::KeepReading => {}
                AfterRead::Ended => {
                    inner = g;
                    break;
                }
                AfterRead::LetGo(wake) => {
                    // A caller waits: let it read from now on.
                    shared.wake(&g, wake);
                    inner = g;
                    break;
                }
            }
        }
    }
    let wake = inner.role.reader_exits(me);
    shared.wake(&inner, wake);
    shared.finish(&mut inner);
    let ready = drain_sinks(&mut inner);
    drop(inner);
    ready.iter().for_each(|s| s.deliver());
}

/// A one-time event a thread waits for with [`Stream::wait_driving`] and another thread sets
/// (for example, the arrival of an RPC reply).
#[derive(Debug)]
pub struct Signal {
    shared: Arc<Shared>,
    set: AtomicBool,
    thread: Thread,
    token: u64,
}

impl Signal {
    /// A signal for the calling thread to wait on, on `stream`'s connection.
    pub fn new(stream: &Stream) -> Signal {
        Signal {
            shared: Arc::clone(&stream.inner.shared),
            set: AtomicBool::new(false),
            thread: std::thread::current(),
            token: token(),
        }
    }

    /// Sets the signal and wakes its thread, whether it sleeps or reads the connection.
    pub fn set(&self) {
        self.set.store(true, Ordering::SeqCst);
        if self.shared.poller.load(Ordering::SeqCst) == self.token {
            self.shared.wakeups.nudge();
        }
        self.thread.unpark();
    }

    /// Whether the signal is set.
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }
}

/// Waits for `signal`, reading the connection on this thread while nobody else does.
pub(super) fn drive(shared: &Shared, signal: &Signal) {
    let me = signal.token;
    let mut inner = shared.lock();
    loop {
        if signal.is_set() {
            return;
        }
        let input = match inner.role.caller_waits(me, std::thread::current) {
            CallerNext::Read(input) => input,
            CallerNext::Park => {
                // Another thread reads: it delivers what this thread waits for.
                drop(inner);
                std::thread::park();
                inner = shared.lock();
                inner.role.caller_woke(me);
                continue;
            }
            CallerNext::Ended => {
                // The end is delivered by the thread that saw it.
                drop(inner);
                while !signal.is_set() {
                    std::thread::park_timeout(Duration::from_millis(100));
                }
                return;
            }
        };
        drop(inner);
        DRIVER_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.resize(READ_CHUNK, 0);
            let mut ready = Vec::new();
            loop {
                shared.poller.store(me, Ordering::SeqCst);
                if signal.is_set() {
                    shared.poller.store(0, Ordering::SeqCst);
                    break;
                }
                read_once(shared, &input, &mut buf, &mut ready);
                ready.iter().for_each(|s| s.deliver());
                ready.clear();
                if signal.is_set() || shared.lock().table.ended().is_some() {
                    break;
                }
            }
        });
        drop(input);
        inner = shared.lock();
        let wake = inner.role.caller_got_reply(me, Instant::now());
        shared.wake(&inner, wake);
    }
}
