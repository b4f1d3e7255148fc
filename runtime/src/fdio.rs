//! Cancellable blocking I/O on pipe descriptors: a read or write that waits in `poll(2)` on the
//! pipe and on a [`Waker`], so that closing a connection unblocks its reader and writer threads
//! at once (STREAM-12, TRANS-8) instead of leaving them stuck on a peer that never reads or
//! writes.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

/// A flag that `poll(2)` can wait on (a self-pipe): raising it writes one byte, unless it is
/// already raised. The connection has two: its [`Waker`], raised once and for ever to cancel
/// every wait, and its [`Nudge`], raised to interrupt one wait in [`read`] and cleared by the
/// thread it woke.
#[derive(Debug)]
pub(crate) struct SelfPipe {
    read: io::PipeReader,
    write: io::PipeWriter,
    raised: AtomicBool,
}

/// The connection's permanent cancellation of every current and future wait.
pub(crate) type Waker = SelfPipe;

/// The signal that ends the wait of the caller reading the connection when what it waits for
/// came another way.
pub(crate) type Nudge = SelfPipe;

impl SelfPipe {
    pub(crate) fn new() -> io::Result<SelfPipe> {
        let (read, write) = io::pipe()?;
        set_nonblocking(&read)?;
        set_nonblocking(&write)?;
        Ok(SelfPipe {
            read,
            write,
            raised: AtomicBool::new(false),
        })
    }

    /// Raises the flag: the current or the next wait on it ends.
    pub(crate) fn raise(&self) {
        if !self.raised.swap(true, Ordering::SeqCst) {
            // Non-blocking, and the pipe is empty while the flag is down.
            let _ = (&self.write).write(&[1]);
        }
    }

    pub(crate) fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Lowers the flag and empties the pipe (lowered first, so that a raise racing with this
    /// is kept).
    fn clear(&self) {
        self.raised.store(false, Ordering::SeqCst);
        let mut buf = [0u8; 16];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// What [`wait`] saw.
enum Ready {
    Fd,
    Woken,
    Nudged,
}

/// Waits until `fd` is ready for `events`, the waker fires, or (if given) `nudge` is nudged.
/// With a nudge, only the nudge's pipe is polled besides `fd` (one descriptor less per wait):
/// whoever raises the waker then raises the nudge too, and a raised nudge with the waker
/// raised means woken.
fn wait(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    waker: &Waker,
    nudge: Option<&Nudge>,
) -> io::Result<Ready> {
    loop {
        if waker.is_raised() {
            return Ok(Ready::Woken);
        }
        let mut fds = [
            PollFd::new(fd, events),
            PollFd::new(nudge.unwrap_or(waker).fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        if ready(1) {
            return Ok(match nudge {
                Some(n) if !waker.is_raised() => {
                    n.clear();
                    Ready::Nudged
                }
                _ => Ready::Woken,
            });
        }
        if ready(0) {
            return Ok(Ready::Fd);
        }
    }
}

/// What [`read`] got.
#[derive(Debug)]
pub(crate) enum Got {
    /// This many bytes (0: end of input).
    Bytes(usize),
    /// The waker fired first.
    Woken,
    /// The nudge fired first.
    Nudged,
}

/// Reads once from `file`, waiting for data, the waker or the nudge. Whoever raises `waker`
/// must raise `nudge` too (see [`wait`]).
pub(crate) fn read(file: &File, buf: &mut [u8], waker: &Waker, nudge: &Nudge) -> io::Result<Got> {
    let mut file = file;
    loop {
        match wait(file.as_fd(), PollFlags::POLLIN, waker, Some(nudge))? {
            Ready::Fd => {}
            Ready::Woken => return Ok(Got::Woken),
            Ready::Nudged => return Ok(Got::Nudged),
        }
        match file.read(buf) {
            Ok(n) => return Ok(Got::Bytes(n)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes as much of `data` as the non-blocking `file` takes now, without waiting; returns the
/// number of bytes written.
pub(crate) fn write_now(file: &File, data: &[u8]) -> io::Result<usize> {
    let mut file = file;
    let mut done = 0;
    while done < data.len() {
        match file.write(&data[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Puts `file` in non-blocking mode, so that [`write_all`] never blocks outside `poll`.
pub(crate) fn set_nonblocking(file: &impl AsFd) -> io::Result<()> {
    let flags = fcntl(file, FcntlArg::F_GETFL).map_err(io::Error::from)?;
    let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
    fcntl(file, FcntlArg::F_SETFL(flags)).map_err(io::Error::from)?;
    Ok(())
}

/// Writes all of `data` to the non-blocking `file`; `Ok(false)` when the waker fired first.
pub(crate) fn write_all(file: &File, mut data: &[u8], waker: &Waker) -> io::Result<bool> {
    let mut file = file;
    while !data.is_empty() {
        match file.write(data) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "the pipe accepted no bytes",
                ))
            }
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if !matches!(
                    wait(file.as_fd(), PollFlags::POLLOUT, waker, None)?,
                    Ready::Fd
                ) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
