//! The plugin process of a supervisor: the thread that waits for its exit and reaps it
//! (LIFE-19), the kill (LIFE-7, LIFE-18), and the threads that copy its standard output and
//! standard error (TRANS-3).

use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag};
use nix::unistd::Pid;
use rpcplugin_runtime::process::{Exit, PluginProcess};

use super::{OutputLine, OutputStream, PluginOutput};

/// How long the end of a process waits for the threads copying its output (they end when every
/// holder of the pipe has closed it; a child of the plugin may keep it open).
const OUTPUT_DRAIN_WAIT: Duration = Duration::from_secs(1);

struct Slot {
    /// `None` once abandoned.
    process: Option<PluginProcess>,
    /// Reaped: its pid may belong to another process now.
    reaped: bool,
}

/// A launched plugin process, shared by the supervisor's engine (which kills it) and the
/// thread that reaps it.
pub(super) struct Child {
    pid: u32,
    slot: Mutex<Slot>,
    /// The supervisor's record of its current process, cleared once this one is gone.
    current: Arc<AtomicU32>,
}

impl Child {
    pub(super) fn new(process: PluginProcess, current: Arc<AtomicU32>) -> Arc<Child> {
        let pid = process.pid();
        current.store(pid, Ordering::SeqCst);
        Arc::new(Child {
            pid,
            slot: Mutex::new(Slot {
                process: Some(process),
                reaped: false,
            }),
            current,
        })
    }

    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    fn lock(&self) -> MutexGuard<'_, Slot> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The supervisor no longer has this process.
    pub(super) fn gone(&self) {
        let _ = self
            .current
            .compare_exchange(self.pid, 0, Ordering::SeqCst, Ordering::SeqCst);
    }

    /// Sends `SIGKILL` unless the process was reaped (LIFE-7, LIFE-18); the reaping thread
    /// reports the exit.
    pub(super) fn kill(&self) {
        let slot = self.lock();
        if slot.process.is_some() && !slot.reaped {
            // Not reaped yet (at worst a zombie): the pid is still this process's.
            let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
        }
    }

    /// Forgets the process: it is neither killed nor reaped, ever (test equipment).
    pub(super) fn abandon(&self) {
        if let Some(process) = self.lock().process.take() {
            std::mem::forget(process);
        }
        self.gone();
    }

    /// Starts the thread that waits for the process to exit, reaps it, waits a little for the
    /// `output` threads and calls `exited` (unless the process was abandoned).
    pub(super) fn reap_in_thread(
        self: &Arc<Child>,
        output: Vec<JoinHandle<()>>,
        exited: impl FnOnce(Exit) + Send + 'static,
    ) -> std::io::Result<()> {
        let child = Arc::clone(self);
        std::thread::Builder::new()
            .name(format!("rpcplugin-reaper-{}", self.pid))
            .spawn(move || {
                // Wait for the exit without reaping, so that a kill never hits a reused pid.
                while waitid(
                    Id::Pid(Pid::from_raw(child.pid as i32)),
                    WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT,
                ) == Err(Errno::EINTR)
                {}
                let exit = {
                    let mut slot = child.lock();
                    let Some(process) = slot.process.as_mut() else {
                        return; // abandoned
                    };
                    let exit = process.wait();
                    slot.reaped = true;
                    exit
                };
                child.gone();
                let deadline = Instant::now() + OUTPUT_DRAIN_WAIT;
                for t in output {
                    while !t.is_finished() && Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    if t.is_finished() {
                        let _ = t.join();
                    }
                    // Otherwise a descendant of the plugin still holds the pipe (TRANS-11);
                    // the thread ends when it closes it.
                }
                // `wait` fails only for a child that is not ours: report it killed.
                exited(exit.unwrap_or(Exit::Signal(nix::libc::SIGKILL)));
            })
            .map(|_| ())
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.gone();
    }
}

/// Starts the thread that copies one of the plugin's output pipes.
pub(super) fn forward(
    pipe: impl Read + Send + 'static,
    pid: u32,
    stream: OutputStream,
    to: &PluginOutput,
    id: &str,
) -> Option<JoinHandle<()>> {
    let to = to.clone();
    let prefix = format!("[{id} {pid}] ");
    std::thread::Builder::new()
        .name(format!("rpcplugin-output-{pid}"))
        .spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if buf.last() == Some(&b'\n') {
                    buf.pop();
                }
                let line = String::from_utf8_lossy(&buf).into_owned();
                match &to {
                    PluginOutput::Lines(tx) => {
                        // A receiver that went away no longer wants lines; keep draining.
                        let _ = tx.send(OutputLine { pid, stream, line });
                    }
                    _ => {
                        let mut err = std::io::stderr().lock();
                        let _ = writeln!(err, "{prefix}{line}");
                    }
                }
            }
        })
        .ok()
}
