//! Processes the tests start: whether one is still there (LIFE-19: not even as a zombie), that
//! none is left behind, killing what is left after a failed test, and a finished process's
//! output as text. Linux only: it reads `/proc`.

use std::process::Output;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The state letter of process `pid` (`R`, `S`, `Z`, ...), from `/proc/PID/stat`, or `None`
/// when there is no such process (reaped, or never was).
pub fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Whether process `pid` is still there, a zombie included (`/proc/PID` exists).
pub fn process_exists(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Asserts that none of `pids` is still there, not even as a zombie; the failure names the
/// first one left and its `/proc/PID/stat`.
pub fn assert_no_process_left(pids: impl IntoIterator<Item = u32>) {
    for pid in pids {
        assert!(
            !process_exists(pid),
            "plugin process {pid} is still there: {}",
            std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default()
        );
    }
}

/// Sends `SIGKILL` to `pid` (a crash, as far as its parent can tell); panics if that fails.
pub fn kill9(pid: u32) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
}

/// Sends `SIGKILL` to each of `pids` that is still there, ignoring errors: for `Drop`
/// implementations, so that a test that fails half-way leaves no process behind.
pub fn kill_all_left(pids: impl IntoIterator<Item = u32>) {
    for pid in pids {
        if process_exists(pid) {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
    }
}

/// A finished process's standard output followed by its standard error, as (lossy) text.
pub fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
