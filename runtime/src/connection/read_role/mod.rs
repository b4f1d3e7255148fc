//! The read role as one value: who reads the connection's input (one of its reader threads, a
//! caller waiting for its reply, or nobody since some instant), the input itself, and whom to
//! wake when that changes (`spec/03-streams.md` STREAM-14, `spec/01-transport.md` TRANS-8).
//!
//! Each method is a row of the table in the [module documentation](super): it takes the event
//! (with the time where the [`HANDOVER`](super::HANDOVER) timer matters), moves to the next
//! state, and returns what the calling thread must do (read, park, wait, leave) and whom it must
//! wake. Nothing in here blocks, locks or reads the clock (it only keeps the parked callers'
//! thread handles, for the connection to unpark): the connection calls these methods under its
//! lock and carries out what they return, and the tests below drive every row directly.

use std::time::{Duration, Instant};

/// A standby reader thread checks every [`HANDOVER`](super::HANDOVER) whether the input is left
/// unread; after this long without a let-go, it stops checking until the next one.
pub(super) const QUIET: Duration = Duration::from_millis(100);

/// The shortest timed wait of the standby reader thread.
const MIN_WAIT: Duration = Duration::from_micros(50);

/// Who holds the read role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Holder {
    /// The connection's reader thread with this index.
    Reader(usize),
    /// The caller of [`Stream::wait_driving`](super::Stream::wait_driving) with this thread
    /// token.
    Caller(u64),
}

/// The state of the read role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// A thread holds it: it alone polls and reads the input.
    Held(Holder),
    /// Nobody has held it since `since`. The next caller that waits takes it; a reader thread
    /// takes it when a thread waits for data without reading, or once `since` is the handover
    /// time ago. (At the start `since` is the connection's creation, and a reader thread is
    /// wanted at once.)
    Free {
        /// When the last holder let go of it.
        since: Instant,
    },
    /// The input is closed (TRANS-8): nobody reads it again.
    Ended,
}

/// The threads to wake after a transition (the connection wakes them, under its lock).
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Wake {
    /// Every reader thread waiting for the role.
    pub(super) readers: bool,
    /// Every caller parked while another thread holds the role.
    pub(super) callers: bool,
    /// Whoever waits for a reader thread to exit or to start a job (the connection's drop).
    pub(super) reader_state: bool,
}

impl Wake {
    /// Nobody.
    pub(super) const NOBODY: Wake = Wake {
        readers: false,
        callers: false,
        reader_state: false,
    };
    /// Every thread that waits for the role.
    pub(super) const EVERYONE: Wake = Wake {
        readers: true,
        callers: true,
        reader_state: false,
    };
}

/// What a caller waiting for its reply does next ([`ReadRole::caller_waits`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CallerNext<I> {
    /// It holds the role: it reads this input until its reply comes.
    Read(I),
    /// Another thread reads and delivers what it waits for: it parks until woken.
    Park,
    /// The input is closed: the end reaches it through its signal.
    Ended,
}

/// What a reader thread that does not hold the role does next ([`ReadRole::reader_idle`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ReaderNext<I> {
    /// It holds the role: it reads this input.
    Read(I),
    /// It waits to be woken, or at most this long (the standby reader thread's timer).
    Wait(Option<Duration>),
    /// The connection has ended: the thread exits.
    Exit,
}

/// What the reader thread holding the role does after a read ([`ReadRole::reader_has_read`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterRead {
    /// It keeps the role and reads again.
    KeepReading,
    /// A caller waits: it let go of the role, and wakes these.
    LetGo(Wake),
    /// The connection has ended: it stops reading (and exits).
    Ended,
}

/// What a reader thread does after the job it ran ([`ReadRole::reader_job_done`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterJob {
    /// The role was still free: it took it back and reads again.
    ReadAgain,
    /// Someone holds the role, a caller is about to take it, or the connection has ended.
    Leave,
}

/// What a reader thread waited for last (see [`ReadRole::reader_idle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Waited {
    /// Nothing special: it starts, or it was woken from an untimed wait as a non-standby.
    Nothing,
    /// The standby's timer.
    Timer,
    /// The standby, after it went quiet.
    Quiet,
}

/// One of the connection's reader threads, as the role sees it.
#[derive(Debug, Clone, Copy)]
struct ReaderThread {
    alive: bool,
    in_job: bool,
    /// The number of let-gos when this thread last saw it change, and when that was (the
    /// standby's quiet check).
    seen: u64,
    last_let_go: Instant,
    waited: Waited,
}

/// What the test observer of a role sees (see [`ReadRole::observe`]).
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seen {
    /// The role moved to this state, at this time when the transition had one.
    State(State, Option<Instant>),
    /// The caller with this token parked while another thread held the role.
    Parked(u64),
    /// The connection ended (the input may still be open).
    Ending,
}

/// The read role of one connection, over its input `I` (see the module documentation).
#[derive(Debug)]
pub(super) struct ReadRole<I> {
    state: State,
    /// The input while it is open: `None` exactly when `state` is [`State::Ended`]. Whoever
    /// takes the role gets a clone, so the pipe closes when the last reading thread lets go
    /// (TRANS-8).
    input: Option<I>,
    /// How long the role stays free for the next caller before a reader thread takes it.
    handover: Duration,
    /// The connection has ended: reader threads exit; the thread reading closes the input.
    ending: bool,
    /// A thread waits for data without reading itself (a blocking stream read, the handshake):
    /// a reader thread takes the free role at once rather than after the handover time.
    wanted: bool,
    /// Callers parked while another thread holds the role: their tokens and threads.
    callers: Vec<(u64, std::thread::Thread)>,
    /// Let-gos of the role so far.
    let_gos: u64,
    /// The reader thread waiting on a timer (the standby), if any: at most one does.
    standby: Option<usize>,
    readers: Vec<ReaderThread>,
    #[cfg(test)]
    observer: Option<std::sync::mpsc::Sender<Seen>>,
}

impl<I: Clone> ReadRole<I> {
    /// A free role over `input` at `now`, `readers` reader threads, a reader thread wanted at
    /// once, and a free role left to callers for `handover`.
    pub(super) fn new(input: I, readers: usize, handover: Duration, now: Instant) -> Self {
        ReadRole {
            state: State::Free { since: now },
            input: Some(input),
            handover,
            ending: false,
            wanted: true,
            callers: Vec::new(),
            let_gos: 0,
            standby: None,
            readers: vec![
                ReaderThread {
                    alive: true,
                    in_job: false,
                    seen: 0,
                    last_let_go: now,
                    waited: Waited::Nothing,
                };
                readers
            ],
            #[cfg(test)]
            observer: None,
        }
    }

    /// Sends every transition from now on to `observer`, the current state first.
    #[cfg(test)]
    pub(super) fn observe(&mut self, observer: std::sync::mpsc::Sender<Seen>) {
        let _ = observer.send(Seen::State(self.state, None));
        self.observer = Some(observer);
    }

    /// Sets the handover time (tests: a long one leaves a free role to callers only).
    #[cfg(test)]
    pub(super) fn set_handover(&mut self, handover: Duration) {
        self.handover = handover;
    }

    /// The reader thread that is running a job, if one is.
    #[cfg(test)]
    pub(super) fn reader_in_job(&self) -> Option<usize> {
        self.readers.iter().position(|r| r.in_job)
    }

    #[cfg(test)]
    fn seen(&self, seen: Seen) {
        if let Some(observer) = &self.observer {
            let _ = observer.send(seen);
        }
    }

    fn set(&mut self, state: State, _now: Option<Instant>) {
        self.state = state;
        #[cfg(test)]
        self.seen(Seen::State(state, _now));
    }

    /// The threads of the callers parked while another thread holds the role.
    pub(super) fn parked_callers(&self) -> impl Iterator<Item = &std::thread::Thread> {
        self.callers.iter().map(|(_, thread)| thread)
    }

    /// Reader threads alive and not running a job (the connection's drop waits for none to be
    /// left: a job may never return).
    pub(super) fn readers_outside_jobs(&self) -> usize {
        self.readers.iter().filter(|r| r.alive && !r.in_job).count()
    }

    /// Whether a reader thread delivering to a sink may be handed a job: the connection goes on
    /// and another reader thread is free to read meanwhile.
    pub(super) fn job_can_be_handed(&self) -> bool {
        !self.ending && self.readers_outside_jobs() >= 2
    }

    /// The holder lets go of the role at `now`: a parked caller takes it at once; otherwise a
    /// reader thread takes it after the handover time unless a caller does first.
    fn let_go(&mut self, now: Instant) -> Wake {
        if self.state != State::Ended {
            self.set(State::Free { since: now }, Some(now));
        }
        self.let_gos += 1;
        Wake {
            callers: !self.callers.is_empty(),
            // The standby's timer runs; otherwise a reader thread must start it.
            readers: self.state != State::Ended && self.standby.is_none(),
            reader_state: false,
        }
    }

    /// Row "held by a reader thread | data read, a caller waits": reader thread `reader`, which
    /// holds the role, has read and delivered at `now`. It lets go if a caller waits.
    pub(super) fn reader_has_read(&mut self, reader: usize, now: Instant) -> AfterRead {
        debug_assert!(
            matches!(
                self.state,
                State::Held(Holder::Reader(r)) if r == reader
            ) || self.state == State::Ended
        );
        if self.ending {
            return AfterRead::Ended;
        }
        if self.callers.is_empty() {
            return AfterRead::KeepReading;
        }
        AfterRead::LetGo(self.let_go(now))
    }

    /// Row "held by a reader thread | a sink callback hands it a job": reader thread `reader`
    /// lets go of the role at `now` to run the job (see [`ReadRole::job_can_be_handed`]).
    pub(super) fn reader_hands_job(&mut self, reader: usize, now: Instant) -> Wake {
        debug_assert!(!self.readers[reader].in_job);
        let mut wake = self.let_go(now);
        self.readers[reader].in_job = true;
        wake.reader_state = true;
        wake
    }

    /// The end of that row: reader thread `reader` has run its job; it takes the role back if
    /// it is still free and no caller is about to take it.
    pub(super) fn reader_job_done(&mut self, reader: usize) -> AfterJob {
        self.readers[reader].in_job = false;
        if self.ending || !self.callers.is_empty() {
            return AfterJob::Leave;
        }
        match self.state {
            State::Free { .. } => {
                self.set(State::Held(Holder::Reader(reader)), None);
                self.wanted = false;
                AfterJob::ReadAgain
            }
            State::Held(_) | State::Ended => AfterJob::Leave,
        }
    }

    /// Row "held by a caller | its reply arrives": caller `caller`, which holds the role, got
    /// its reply (or saw the end) and lets go at `now`; parked callers are woken.
    pub(super) fn caller_got_reply(&mut self, caller: u64, now: Instant) -> Wake {
        debug_assert!(
            matches!(
                self.state,
                State::Held(Holder::Caller(c)) if c == caller
            ) || self.state == State::Ended
        );
        self.let_go(now)
    }

    /// Row "free | a caller waits for a reply": caller `caller` (whose thread `thread` gives)
    /// takes the free role and reads; while another thread holds it, it parks, and is woken
    /// when the role is let go of, when the connection ends, or by its reply.
    pub(super) fn caller_waits(
        &mut self,
        caller: u64,
        thread: impl FnOnce() -> std::thread::Thread,
    ) -> CallerNext<I> {
        match (self.state, &self.input) {
            (State::Free { .. }, Some(input)) => {
                let input = input.clone();
                self.set(State::Held(Holder::Caller(caller)), None);
                CallerNext::Read(input)
            }
            (State::Held(_), Some(_)) => {
                self.callers.push((caller, thread()));
                #[cfg(test)]
                self.seen(Seen::Parked(caller));
                CallerNext::Park
            }
            _ => CallerNext::Ended,
        }
    }

    /// A parked caller woke up: it is no longer parked (it then waits again, or returns).
    pub(super) fn caller_woke(&mut self, caller: u64) {
        self.callers.retain(|(c, _)| *c != caller);
    }

    /// Row "free | a thread blocks in a stream read": a thread waits for data without reading
    /// itself, so a reader thread must take the free role at once.
    pub(super) fn thread_blocks_in_read(&mut self) -> Wake {
        if !matches!(self.state, State::Free { .. }) {
            return Wake::NOBODY;
        }
        let readers = if !self.wanted {
            self.wanted = true;
            true
        } else {
            // Wanted already: the reader threads were woken for it, and the standby, if any,
            // checks on its timer.
            self.standby.is_none()
        };
        Wake {
            readers,
            ..Wake::NOBODY
        }
    }

    /// Reader thread `reader` starts at `now`.
    pub(super) fn reader_starts(&mut self, reader: usize, now: Instant) {
        let r = &mut self.readers[reader];
        r.seen = self.let_gos;
        r.last_let_go = now;
    }

    /// Row "free for HANDOVER | the standby reader thread's timer", and every other look of a
    /// reader thread that does not hold the role (when it starts, after each wait, after a
    /// job): at `now`, it takes the role if it is wanted or free for the handover time, and
    /// otherwise waits. One reader thread (the standby) waits on a timer, until nothing has let
    /// go of the role for [`QUIET`]; the others wait to be woken.
    pub(super) fn reader_idle(&mut self, reader: usize, now: Instant) -> ReaderNext<I> {
        // Checked before anything else, so that no thread waits once the end's wake-up has come
        // (the wake-up may have ended the timed wait that precedes a quiet wait).
        if self.ending {
            return ReaderNext::Exit;
        }
        let r = &mut self.readers[reader];
        match std::mem::replace(&mut r.waited, Waited::Nothing) {
            Waited::Timer => {
                if self.let_gos != r.seen {
                    r.seen = self.let_gos;
                    r.last_let_go = now;
                } else if matches!(self.state, State::Held(_))
                    && now.saturating_duration_since(r.last_let_go) >= QUIET
                {
                    // Quiet: wait until the next let-go, which wakes a reader thread when none
                    // is the standby.
                    r.waited = Waited::Quiet;
                    self.standby = None;
                    return ReaderNext::Wait(None);
                }
            }
            Waited::Quiet => {
                r.seen = self.let_gos;
                r.last_let_go = now;
            }
            Waited::Nothing => {}
        }
        let due = match self.state {
            State::Free { since } => {
                self.wanted || now.saturating_duration_since(since) >= self.handover
            }
            State::Held(_) | State::Ended => false,
        };
        if due {
            let Some(input) = self.input.clone() else {
                return ReaderNext::Exit;
            };
            self.set(State::Held(Holder::Reader(reader)), Some(now));
            self.wanted = false;
            if self.standby == Some(reader) {
                self.standby = None;
            }
            return ReaderNext::Read(input);
        }
        if self.standby.is_none() || self.standby == Some(reader) {
            self.standby = Some(reader);
            let wait = match self.state {
                State::Free { since } => self
                    .handover
                    .saturating_sub(now.saturating_duration_since(since)),
                State::Held(_) | State::Ended => self.handover,
            };
            self.readers[reader].waited = Waited::Timer;
            return ReaderNext::Wait(Some(wait.max(MIN_WAIT)));
        }
        ReaderNext::Wait(None)
    }

    /// Reader thread `reader` exits (or was never started).
    pub(super) fn reader_exits(&mut self, reader: usize) -> Wake {
        self.readers[reader].alive = false;
        if self.standby == Some(reader) {
            self.standby = None;
        }
        Wake {
            reader_state: true,
            ..Wake::NOBODY
        }
    }

    /// Row "any | the connection ends": reader threads exit from now on, and every thread that
    /// waits for the role is woken.
    pub(super) fn connection_ended(&mut self) -> Wake {
        if !self.ending {
            self.ending = true;
            #[cfg(test)]
            self.seen(Seen::Ending);
        }
        Wake::EVERYONE
    }

    /// The end of that row: the connection lets go of its input; the thread reading, if any,
    /// holds the last clone (TRANS-8). Nobody takes the role again.
    pub(super) fn input_closed(&mut self) {
        self.input = None;
        if self.state != State::Ended {
            self.set(State::Ended, None);
        }
    }
}

#[cfg(test)]
mod tests;
