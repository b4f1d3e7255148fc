//! Time limits: a test whose code under test hangs fails with a message instead of hanging.

use std::sync::mpsc::{channel, RecvTimeoutError};
use std::thread;
use std::time::Duration;

/// Runs `f` on a thread of its own and returns its result; fails the test (panics) if `f` does
/// not finish within `limit`. A panic of `f` is passed on as it is.
pub fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    within_named(limit, "the operation", f)
}

/// [`within`], naming the operation (`what`) in the failure message.
///
/// On a timeout the thread is left running: it cannot be stopped, and the test fails anyway.
pub fn within_named<T: Send + 'static>(
    limit: Duration,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = channel();
    let handle = thread::spawn(move || {
        let result = f();
        let _ = tx.send(());
        result
    });
    match rx.recv_timeout(limit) {
        // Disconnected: `f` panicked; the join hands its panic on.
        Ok(()) | Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(v) => v,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(RecvTimeoutError::Timeout) => panic!("{what} did not finish within {limit:?}"),
    }
}
