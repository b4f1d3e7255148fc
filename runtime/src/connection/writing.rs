//! Writing: a thread that queues a frame writes it itself when nothing else is being written,
//! otherwise the connection's writer thread writes whole frames in batches (FRAME-10,
//! FRAME-11); a failed write ends the connection (TRANS-7).

use std::fs::File;
use std::io;
use std::sync::Arc;

use rpcplugin_codec::stream::StreamTable;

use super::{Cv, Inner, Shared, SPARE_MAX};
use crate::fdio;

/// Ends the table after a failed write: `EPIPE` means the peer closed the connection, anything
/// else is a transport failure (TRANS-7).
fn write_failed(table: &mut StreamTable, e: &io::Error) {
    if e.kind() == io::ErrorKind::BrokenPipe {
        table.peer_gone();
    } else {
        table.transport_failed(format!("writing the pipe failed: {e}"));
    }
}

pub(super) fn write_loop(shared: &Shared, output: Arc<File>) {
    let mut batch = Vec::new();
    loop {
        {
            let mut inner = shared.lock();
            inner.in_flight = 0;
            shared.notify_all(&inner, Cv::Changed);
            while inner.carry.is_empty()
                && !inner.table.has_transmit()
                && inner.table.ended().is_none()
            {
                inner = shared.wait_on(Cv::Writable, inner);
            }
            if !inner.carry.is_empty() {
                batch.clear();
                std::mem::swap(&mut batch, &mut inner.carry);
            } else if inner.table.has_transmit() {
                inner.table.take_transmit(&mut batch);
            } else {
                break;
            }
            inner.in_flight = batch.len();
            shared.notify_all(&inner, Cv::Changed);
        }
        match fdio::write_all(&output, &batch, &shared.wakeups) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let mut inner = shared.lock();
                shared.end(&mut inner, |t| write_failed(t, &e));
                break;
            }
        }
    }
    let mut inner = shared.lock();
    inner.in_flight = 0;
    inner.writer_done = true;
    // The last reference: dropping both closes the pipe.
    inner.output = None;
    shared.end(&mut inner, |t| t.close_connection());
}

/// Writes what is queued from the calling thread when the writer thread is idle, saving a
/// thread switch per message; what the pipe does not take now goes to the writer thread.
pub(super) fn write_directly(shared: &Shared, inner: &mut Inner) {
    if inner.in_flight != 0
        || !inner.carry.is_empty()
        || !inner.table.has_transmit()
        || shared.wakeups.is_cancelled()
    {
        shared.notify(inner);
        return;
    }
    let Some(output) = inner.output.clone() else {
        return;
    };
    // The spare buffer becomes the table's transmit queue, so neither is allocated anew for
    // each frame.
    let mut batch = std::mem::take(&mut inner.spare);
    inner.table.take_transmit(&mut batch);
    match fdio::write_now(&output, &batch) {
        Ok(n) if n == batch.len() => {}
        Ok(n) => {
            inner.carry = batch.split_off(n);
            shared.notify(inner);
        }
        Err(e) => shared.end(inner, |t| write_failed(t, &e)),
    }
    if batch.capacity() <= SPARE_MAX {
        batch.clear();
        inner.spare = batch;
    }
}
