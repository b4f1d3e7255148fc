//! The threads that read a connection: its reader threads ([`read_loop`]) and callers waiting
//! for a reply ([`drive`]), each reading only while it holds the read role (see the
//! [module documentation](super)); and [`Signal`], what such a caller waits for.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::Thread;
use std::time::{Duration, Instant};

use super::sink::{drain_sinks, drain_sinks_into, Sink};
use super::{Cv, Job, Shared, Stream, HANDOVER, QUIET, READ_CHUNK};
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

fn token() -> u64 {
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

/// A reader thread: takes the read role when it is wanted, or left free for [`HANDOVER`], and
/// reads while nobody else needs it; runs the jobs sink callbacks hand it; exits at the end.
pub(super) fn read_loop(shared: &Shared) {
    let mut buf = vec![0u8; READ_CHUNK];
    let mut ready = Vec::new();
    let mut inner = shared.lock();
    let mut ticker = false;
    let mut seen = inner.releases;
    let mut last_release = Instant::now();
    while inner.table.ended().is_none() {
        let due = !inner.reading
            && (inner.wanted || inner.free_since.is_none_or(|t| t.elapsed() >= HANDOVER));
        if !due {
            if ticker || !inner.ticking {
                // The standby: check on a timer, until nothing has let go of the role for QUIET.
                ticker = true;
                inner.ticking = true;
                let wait = match inner.free_since {
                    Some(t) if !inner.reading => HANDOVER.saturating_sub(t.elapsed()),
                    _ => HANDOVER,
                };
                inner = shared.wait_for(Cv::Reader, inner, wait.max(Duration::from_micros(50)));
                if inner.releases != seen {
                    seen = inner.releases;
                    last_release = Instant::now();
                } else if inner.reading
                    && last_release.elapsed() >= QUIET
                    && inner.table.ended().is_none()
                {
                    // Quiet: sleep until the next let-go, which wakes a reader thread when
                    // none checks on a timer. Not once the connection has ended: the wake-up
                    // of the timed wait above may have been the end's, the only one it sends,
                    // and a sleep here would outlast it (Connection::drop waits for this
                    // thread).
                    ticker = false;
                    inner.ticking = false;
                    inner = shared.wait_on(Cv::Reader, inner);
                    seen = inner.releases;
                    last_release = Instant::now();
                }
            } else {
                inner = shared.wait_on(Cv::Reader, inner);
            }
            continue;
        }
        let Some(input) = inner.input.clone() else {
            break;
        };
        inner.reading = true;
        inner.wanted = false;
        inner.free_since = None;
        if ticker {
            ticker = false;
            inner.ticking = false;
        }
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
                shared.release(&mut g);
                g.readers_in_job += 1;
                shared.notify_all(&g, Cv::ReaderState);
                drop(g);
                job();
                g = shared.lock();
                g.readers_in_job -= 1;
                if g.reading || !g.drivers.is_empty() || g.table.ended().is_some() {
                    inner = g;
                    break;
                }
                g.reading = true;
                g.free_since = None;
                g.wanted = false;
                drop(g);
                continue;
            }
            if g.table.ended().is_some() {
                inner = g;
                break;
            }
            if !g.drivers.is_empty() {
                // A caller waits: let it read from now on.
                shared.release(&mut g);
                inner = g;
                break;
            }
        }
    }
    if ticker {
        inner.ticking = false;
    }
    inner.readers_alive -= 1;
    shared.notify_all(&inner, Cv::ReaderState);
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
        let input = match inner.input.clone() {
            Some(input) if !inner.reading => input,
            Some(_) => {
                // Another thread reads: it delivers what this thread waits for.
                inner.drivers.push((me, std::thread::current()));
                drop(inner);
                std::thread::park();
                inner = shared.lock();
                inner.drivers.retain(|(t, _)| *t != me);
                continue;
            }
            None => {
                // The end is delivered by the thread that saw it.
                drop(inner);
                while !signal.is_set() {
                    std::thread::park_timeout(Duration::from_millis(100));
                }
                return;
            }
        };
        inner.reading = true;
        inner.free_since = None;
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
        shared.release(&mut inner);
    }
}
