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

/// A one-shot, permanent cancellation signal that `poll(2)` can wait on (a self-pipe).
#[derive(Debug)]
pub(crate) struct Waker {
    read: io::PipeReader,
    write: io::PipeWriter,
    woken: AtomicBool,
}

impl Waker {
    pub(crate) fn new() -> io::Result<Waker> {
        let (read, write) = io::pipe()?;
        Ok(Waker {
            read,
            write,
            woken: AtomicBool::new(false),
        })
    }

    /// Cancels every current and future wait on this waker.
    pub(crate) fn wake(&self) {
        if !self.woken.swap(true, Ordering::SeqCst) {
            // One byte into an empty pipe cannot block or fail short of a closed reader, which
            // this struct owns.
            let _ = (&self.write).write(&[1]);
        }
    }

    pub(crate) fn is_woken(&self) -> bool {
        self.woken.load(Ordering::SeqCst)
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.read.as_fd()
    }
}

/// Waits until `fd` is ready for `events` or the waker fires; returns `false` on the latter.
fn wait(fd: BorrowedFd<'_>, events: PollFlags, waker: &Waker) -> io::Result<bool> {
    loop {
        if waker.is_woken() {
            return Ok(false);
        }
        let mut fds = [
            PollFd::new(fd, events),
            PollFd::new(waker.fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(false);
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return Ok(true);
        }
    }
}

/// Reads once from `file`, waiting for data; `Ok(None)` when the waker fired first.
pub(crate) fn read(file: &mut File, buf: &mut [u8], waker: &Waker) -> io::Result<Option<usize>> {
    loop {
        if !wait(file.as_fd(), PollFlags::POLLIN, waker)? {
            return Ok(None);
        }
        match file.read(buf) {
            Ok(n) => return Ok(Some(n)),
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
pub(crate) fn set_nonblocking(file: &File) -> io::Result<()> {
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
                if !wait(file.as_fd(), PollFlags::POLLOUT, waker)? {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
