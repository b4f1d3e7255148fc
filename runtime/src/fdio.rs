//! Cancellable blocking I/O on pipe descriptors: a read or write that waits in `poll(2)` on the
//! pipe and on a connection's [`Wakeups`], so that closing a connection unblocks its reader and writer threads
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
/// already raised.
#[derive(Debug)]
struct SelfPipe {
    read: io::PipeReader,
    write: io::PipeWriter,
    raised: AtomicBool,
}

/// A connection's two self-pipes: the *waker*, raised once and for ever to cancel every
/// current and future wait, and the *nudge*, raised to interrupt the one wait in [`read`] and
/// lowered by the thread it woke. Cancelling raises both, so that [`read`] polls the nudge
/// alone besides its pipe (one descriptor less per wait).
#[derive(Debug)]
pub(crate) struct Wakeups {
    waker: SelfPipe,
    nudge: SelfPipe,
}

impl Wakeups {
    pub(crate) fn new() -> io::Result<Wakeups> {
        Ok(Wakeups {
            waker: SelfPipe::new()?,
            nudge: SelfPipe::new()?,
        })
    }

    /// Ends every current and future wait.
    pub(crate) fn cancel(&self) {
        self.waker.raise();
        self.nudge.raise();
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.waker.is_raised()
    }

    /// Ends the current or the next wait in [`read`].
    pub(crate) fn nudge(&self) {
        self.nudge.raise();
    }
}

impl SelfPipe {
    fn new() -> io::Result<SelfPipe> {
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
    fn raise(&self) {
        if !self.raised.swap(true, Ordering::SeqCst) {
            // Non-blocking; the pipe holds at most two bytes (see clear).
            let _ = (&self.write).write(&[1]);
        }
    }

    fn is_raised(&self) -> bool {
        self.raised.load(Ordering::SeqCst)
    }

    /// Lowers the flag and empties the pipe (lowered first, so that a raise racing with this
    /// is kept). A raise between the two writes its byte before the pipe is emptied, which
    /// would leave the flag up with the pipe empty, and every later raise would then write
    /// nothing; so the byte is written again when the flag is found up afterwards (at worst
    /// the pipe holds two bytes, which the next clear empties).
    fn clear(&self) {
        self.raised.store(false, Ordering::SeqCst);
        let mut buf = [0u8; 16];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
        if self.raised.load(Ordering::SeqCst) {
            let _ = (&self.write).write(&[1]);
        }
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

/// Waits until `fd` is ready for `events` or the wait is cancelled, or (if `nudged`) nudged:
/// then only the nudge's pipe is polled besides `fd`, since cancelling raises it too.
fn wait(
    fd: BorrowedFd<'_>,
    events: PollFlags,
    wakeups: &Wakeups,
    nudged: bool,
) -> io::Result<Ready> {
    let (waker, nudge) = (&wakeups.waker, &wakeups.nudge);
    loop {
        if waker.is_raised() {
            return Ok(Ready::Woken);
        }
        let mut fds = [
            PollFd::new(fd, events),
            PollFd::new(if nudged { nudge } else { waker }.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
        let ready = |i: usize| fds[i].revents().is_some_and(|r| !r.is_empty());
        if ready(1) {
            if nudged && !waker.is_raised() {
                nudge.clear();
                return Ok(Ready::Nudged);
            }
            return Ok(Ready::Woken);
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

/// Reads once from `file`, waiting for data, a cancel or a nudge.
pub(crate) fn read(file: &File, buf: &mut [u8], wakeups: &Wakeups) -> io::Result<Got> {
    let mut file = file;
    loop {
        match wait(file.as_fd(), PollFlags::POLLIN, wakeups, true)? {
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

/// Writes all of `data` to the non-blocking `file`; `Ok(false)` when cancelled first.
pub(crate) fn write_all(file: &File, mut data: &[u8], wakeups: &Wakeups) -> io::Result<bool> {
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
                    wait(file.as_fd(), PollFlags::POLLOUT, wakeups, false)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// Whether the pipe has a byte to read, without taking it.
    fn readable(p: &SelfPipe) -> bool {
        let mut fds = [nix::poll::PollFd::new(p.fd(), nix::poll::PollFlags::POLLIN)];
        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0
    }

    // A raise that races with a clear is never lost to the waits: whenever the flag is up
    // afterwards, the pipe has a byte, so that a thread polling the pipe wakes. The race is
    // narrow (a raise between the clear's store and its read): a thread started for each
    // attempt lands there now and then (about once in 5 000 attempts on a 2-core machine).
    #[test]
    fn a_raise_racing_a_clear_leaves_the_pipe_readable() {
        for attempt in 0..30_000 {
            let pipe = Arc::new(SelfPipe::new().unwrap());
            pipe.raise(); // the nudge that woke the waiter
            let racer = Arc::clone(&pipe);
            let raiser = std::thread::spawn(move || racer.raise()); // a second nudge
            pipe.clear(); // the woken waiter lowers the flag
            raiser.join().unwrap();
            assert!(
                !pipe.is_raised() || readable(&pipe),
                "attempt {attempt}: the flag is up with nothing to read, so no later raise \
                 would wake a wait"
            );
        }
    }
}
