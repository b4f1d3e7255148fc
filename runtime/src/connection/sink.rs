//! Stream sinks: the callbacks that receive a stream's data instead of blocking reads
//! ([`super::Stream::set_sink`]), fed by whichever thread reads the connection.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};

use rpcplugin_codec::stream::{Read as TableRead, StreamError};

use super::{to_io, Inner};

/// What a stream's sink receives, in order (see [`Stream::set_sink`](super::Stream::set_sink)).
#[derive(Debug)]
pub enum SinkEvent {
    /// Bytes that arrived on the stream.
    Data(Vec<u8>),
    /// The stream ended: `Ok` when the peer (or this side) closed it, an error when the
    /// connection ended or the stream was reset (STREAM-12, STREAM-15). Nothing follows.
    End(io::Result<()>),
}

pub(super) type SinkFn = Box<dyn FnMut(SinkEvent) + Send>;

/// A stream's callback and the events waiting for it: events are queued in arrival order while
/// the connection's lock is held, and delivered by exactly one thread at a time without it.
pub(super) struct Sink {
    pub(super) queue: Mutex<SinkQueue>,
    pub(super) callback: Mutex<SinkFn>,
}

#[derive(Default)]
pub(super) struct SinkQueue {
    events: VecDeque<SinkEvent>,
    delivering: bool,
    pub(super) paused: bool,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sink")
    }
}

impl Sink {
    /// Delivers queued events until none is left (called by the thread that queued them).
    pub(super) fn deliver(&self) {
        loop {
            let event = {
                let mut q = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                match q.events.pop_front() {
                    Some(e) => e,
                    None => {
                        q.delivering = false;
                        return;
                    }
                }
            };
            let mut callback = self.callback.lock().unwrap_or_else(|e| e.into_inner());
            (callback)(event);
        }
    }
}

/// Moves what is readable on streams with sinks into their queues; returns the sinks this
/// thread must now deliver to (after releasing the connection's lock).
pub(super) fn drain_sinks(inner: &mut Inner) -> Vec<Arc<Sink>> {
    let mut ready = Vec::new();
    drain_sinks_into(inner, &mut ready);
    ready
}

/// [`drain_sinks`] into a vector the caller keeps (and empties) from one read to the next.
pub(super) fn drain_sinks_into(inner: &mut Inner, ready: &mut Vec<Arc<Sink>>) {
    if inner.sinks.is_empty() {
        return;
    }
    let mut finished = Vec::new();
    let Inner { sinks, table, .. } = inner;
    for (&id, sink) in sinks.iter() {
        let mut q = sink.queue.lock().unwrap_or_else(|e| e.into_inner());
        if q.paused {
            continue;
        }
        let before = q.events.len();
        loop {
            let mut buf = vec![0u8; table.readable_len(id)];
            match table.read(id, &mut buf) {
                Ok(TableRead::Data(n)) => {
                    buf.truncate(n);
                    q.events.push_back(SinkEvent::Data(buf));
                }
                Ok(TableRead::Empty) => break,
                Ok(TableRead::Eof)
                | Err(StreamError::ClosedLocally(_))
                | Err(StreamError::UnknownStream(_)) => {
                    q.events.push_back(SinkEvent::End(Ok(())));
                    finished.push(id);
                    break;
                }
                Err(e) => {
                    q.events.push_back(SinkEvent::End(Err(to_io(e))));
                    finished.push(id);
                    break;
                }
            }
        }
        if q.events.len() > before && !q.delivering {
            q.delivering = true;
            drop(q);
            ready.push(Arc::clone(sink));
        }
    }
    for id in finished {
        sinks.remove(&id);
    }
}
