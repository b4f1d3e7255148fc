//! One test per row of the table in the connection module's documentation, driving the role
//! directly, with a chosen clock. The input is a name.

use super::*;
use std::thread;

const HANDOVER: Duration = super::super::HANDOVER;

fn role(t0: Instant) -> ReadRole<&'static str> {
    ReadRole::new("input", 2, HANDOVER, t0)
}

/// A role whose reader thread 0 took it at `t0` (as at the start).
fn read_by_reader_0(t0: Instant) -> ReadRole<&'static str> {
    let mut role = role(t0);
    role.reader_starts(0, t0);
    role.reader_starts(1, t0);
    assert_eq!(role.reader_idle(0, t0), ReaderNext::Read("input"));
    assert_eq!(role.state, State::Held(Holder::Reader(0)));
    role
}

/// A role that caller 7 took from reader thread 0's let-go at `t0`.
fn read_by_caller_7(t0: Instant) -> ReadRole<&'static str> {
    let mut role = read_by_reader_0(t0);
    assert_eq!(role.caller_waits(7, thread::current), CallerNext::Park);
    assert!(matches!(role.reader_has_read(0, t0), AfterRead::LetGo(_)));
    role.caller_woke(7);
    assert_eq!(
        role.caller_waits(7, thread::current),
        CallerNext::Read("input")
    );
    role
}

// | held by a reader thread | data read, a caller waits | free | the callers are woken; the
// next one takes the role |
#[test]
fn row_a_reader_thread_that_read_lets_go_when_a_caller_waits() {
    let t0 = Instant::now();
    let mut role = read_by_reader_0(t0);
    // Nobody waits: it keeps reading.
    assert_eq!(role.reader_has_read(0, t0), AfterRead::KeepReading);
    assert_eq!(role.caller_waits(7, thread::current), CallerNext::Park);
    assert_eq!(role.caller_waits(8, thread::current), CallerNext::Park);
    let t1 = t0 + Duration::from_millis(5);
    // The standby's timer runs meanwhile: no reader thread to wake.
    assert!(matches!(role.reader_idle(1, t0), ReaderNext::Wait(Some(_))));
    assert_eq!(
        role.reader_has_read(0, t1),
        AfterRead::LetGo(Wake {
            callers: true,
            ..Wake::NOBODY
        })
    );
    assert_eq!(role.state, State::Free { since: t1 });
    assert_eq!(role.parked_callers().count(), 2);
    // The first caller woken takes it; the other parks again.
    role.caller_woke(8);
    assert_eq!(
        role.caller_waits(8, thread::current),
        CallerNext::Read("input")
    );
    assert_eq!(role.state, State::Held(Holder::Caller(8)));
    role.caller_woke(7);
    assert_eq!(role.caller_waits(7, thread::current), CallerNext::Park);
}

// | held by a reader thread | a sink callback hands it a job, the other reader thread is
// not in a job | free | it runs the job, then takes the role back if still free |
#[test]
fn row_a_reader_thread_handed_a_job_lets_go_and_takes_the_role_back_if_still_free() {
    let t0 = Instant::now();
    let mut role = read_by_reader_0(t0);
    assert!(role.job_can_be_handed());
    assert_eq!(role.readers_outside_jobs(), 2);
    // No standby on a timer yet: a reader thread is woken to start it.
    assert_eq!(
        role.reader_hands_job(0, t0),
        Wake {
            readers: true,
            reader_state: true,
            ..Wake::NOBODY
        }
    );
    assert_eq!(role.state, State::Free { since: t0 });
    assert_eq!(role.readers_outside_jobs(), 1);
    // The other reader thread may not be handed a job while this one runs one.
    assert!(!role.job_can_be_handed());
    // Still free after the job: taken back.
    assert_eq!(role.reader_job_done(0), AfterJob::ReadAgain);
    assert_eq!(role.state, State::Held(Holder::Reader(0)));
    assert!(role.job_can_be_handed());

    // Taken by the other reader thread meanwhile: left to it.
    let _ = role.reader_hands_job(0, t0);
    let t1 = t0 + HANDOVER;
    assert_eq!(role.reader_idle(1, t1), ReaderNext::Read("input"));
    assert_eq!(role.reader_job_done(0), AfterJob::Leave);
    assert_eq!(role.state, State::Held(Holder::Reader(1)));

    // A caller woken by the let-go is about to take it: left to the caller.
    let mut role = read_by_reader_0(t0);
    assert_eq!(role.caller_waits(7, thread::current), CallerNext::Park);
    let wake = role.reader_hands_job(0, t0);
    assert!(wake.callers);
    assert_eq!(role.reader_job_done(0), AfterJob::Leave);
    role.caller_woke(7);
    assert_eq!(
        role.caller_waits(7, thread::current),
        CallerNext::Read("input")
    );
}

// | held by a caller | its reply arrives | free | it returns; waiting callers are woken |
#[test]
fn row_a_caller_that_got_its_reply_lets_go_and_the_waiting_callers_are_woken() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    // The reader threads wait: 1 as the standby on its timer, 0 to be woken.
    assert!(matches!(role.reader_idle(1, t0), ReaderNext::Wait(Some(_))));
    assert_eq!(role.reader_idle(0, t0), ReaderNext::Wait(None));
    let t1 = t0 + Duration::from_micros(300);
    assert_eq!(role.caller_got_reply(7, t1), Wake::NOBODY);
    assert_eq!(role.state, State::Free { since: t1 });

    let mut role = read_by_caller_7(t0);
    assert_eq!(role.caller_waits(9, thread::current), CallerNext::Park);
    let wake = role.caller_got_reply(7, t1);
    assert!(wake.callers, "{wake:?}");
    assert!(wake.readers, "no standby on a timer yet: {wake:?}");
    role.caller_woke(9);
    assert_eq!(
        role.caller_waits(9, thread::current),
        CallerNext::Read("input")
    );
    assert_eq!(role.state, State::Held(Holder::Caller(9)));
}

// | free | a caller waits for a reply | held by that caller | it polls and reads |
#[test]
fn row_a_caller_takes_the_free_role() {
    let t0 = Instant::now();
    // Within the handover time and long after it: a caller that comes before the standby
    // looks is first.
    for late in [Duration::ZERO, 10 * HANDOVER] {
        let mut role = read_by_reader_0(t0);
        let _ = role.reader_hands_job(0, t0);
        assert_eq!(
            role.caller_waits(7, thread::current),
            CallerNext::Read("input")
        );
        assert_eq!(role.state, State::Held(Holder::Caller(7)));
        // Nobody else takes it now.
        assert_eq!(role.caller_waits(8, thread::current), CallerNext::Park);
        assert_eq!(
            role.reader_idle(1, t0 + late),
            ReaderNext::Wait(Some(HANDOVER))
        );
        assert_eq!(role.reader_job_done(0), AfterJob::Leave);
    }
}

// | free | a thread blocks in a stream read | held by a reader thread | at once |
#[test]
fn row_a_thread_blocking_in_a_read_has_a_reader_thread_take_the_free_role_at_once() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    // Held: the holder reads for it.
    assert_eq!(role.thread_blocks_in_read(), Wake::NOBODY);
    assert!(matches!(role.reader_idle(1, t0), ReaderNext::Wait(Some(_))));
    let _ = role.caller_got_reply(7, t0);
    // Free for less than the handover time, and wanted: the reader threads are woken.
    assert_eq!(
        role.thread_blocks_in_read(),
        Wake {
            readers: true,
            ..Wake::NOBODY
        }
    );
    // Wanted already, and the standby checks on its timer: nobody more to wake.
    assert_eq!(role.thread_blocks_in_read(), Wake::NOBODY);
    assert_eq!(role.reader_idle(0, t0), ReaderNext::Read("input"));
    assert_eq!(role.state, State::Held(Holder::Reader(0)));
    // Taken: no longer wanted.
    let _ = role.reader_hands_job(0, t0);
    assert!(matches!(role.reader_idle(1, t0), ReaderNext::Wait(Some(_))));
}

// | free for HANDOVER | the standby reader thread's timer | held by that reader thread | |
#[test]
fn row_the_standby_takes_a_role_left_free_for_the_handover_time() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    assert_eq!(role.reader_idle(1, t0), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(role.reader_idle(0, t0), ReaderNext::Wait(None));
    let t1 = t0 + Duration::from_millis(10);
    assert_eq!(role.caller_got_reply(7, t1), Wake::NOBODY);
    // The standby's timer fires early, then later: it waits for the rest of the time.
    let quarter = HANDOVER / 4;
    assert_eq!(
        role.reader_idle(1, t1 + quarter),
        ReaderNext::Wait(Some(HANDOVER - quarter))
    );
    assert_eq!(
        role.reader_idle(1, t1 + HANDOVER - Duration::from_micros(1)),
        ReaderNext::Wait(Some(MIN_WAIT)),
        "the shortest wait"
    );
    assert_eq!(
        role.reader_idle(1, t1 + HANDOVER),
        ReaderNext::Read("input")
    );
    assert_eq!(role.state, State::Held(Holder::Reader(1)));
    // The other reader thread becomes the standby.
    assert_eq!(
        role.reader_idle(0, t1 + HANDOVER),
        ReaderNext::Wait(Some(HANDOVER))
    );
    // A caller that comes after the handover time but before the standby looks is first.
    let mut role = read_by_caller_7(t0);
    let _ = role.caller_got_reply(7, t1);
    assert_eq!(
        role.caller_waits(8, thread::current),
        CallerNext::Read("input")
    );
    assert!(matches!(
        role.reader_idle(1, t1 + 2 * HANDOVER),
        ReaderNext::Wait(Some(_))
    ));
}

// | any | the connection ends | none | every thread is woken; the input is closed |
#[test]
fn row_the_end_wakes_every_thread_and_the_input_closes() {
    let t0 = Instant::now();
    for holder in ["reader", "caller", "free"] {
        let mut role = match holder {
            "caller" => read_by_caller_7(t0),
            _ => read_by_reader_0(t0),
        };
        if holder == "free" {
            let _ = role.reader_hands_job(0, t0);
        }
        assert_eq!(
            role.caller_waits(9, thread::current),
            match holder {
                "free" => CallerNext::Read("input"),
                _ => CallerNext::Park,
            }
        );
        assert_eq!(role.connection_ended(), Wake::EVERYONE, "{holder}");
        assert!(!role.job_can_be_handed());
        // Reader threads exit, the standby too, whatever they waited for.
        for (reader, late) in [(1, Duration::ZERO), (1, QUIET), (0, 10 * QUIET)] {
            assert_eq!(role.reader_idle(reader, t0 + late), ReaderNext::Exit);
        }
        if holder == "reader" {
            assert_eq!(role.reader_has_read(0, t0), AfterRead::Ended);
        }
        assert_eq!(role.reader_job_done(0), AfterJob::Leave);
        // The thread that sees the end closes the input: nobody takes the role again.
        role.input_closed();
        assert_eq!(role.state, State::Ended);
        assert_eq!(role.caller_waits(10, thread::current), CallerNext::Ended);
        let _ = role.caller_got_reply(9, t0);
        assert_eq!(role.state, State::Ended);
        assert_eq!(role.thread_blocks_in_read(), Wake::NOBODY);
    }
}

// Until the connection has ended, a caller takes a free role even after the end's wake-up
// was sent: it then reads, sees the end, and closes the input itself (the reader threads
// may all be busy).
#[test]
fn the_input_stays_readable_until_the_thread_reading_sees_the_end() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    let _ = role.caller_got_reply(7, t0);
    let _ = role.connection_ended();
    assert_eq!(
        role.caller_waits(8, thread::current),
        CallerNext::Read("input")
    );
}

// The standby checks on its timer while anything lets go of the role; after QUIET without
// a let-go it waits to be woken, and the next let-go wakes a reader thread.
#[test]
fn the_standby_stops_checking_when_quiet_and_a_let_go_wakes_a_reader_thread() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    let mut now = t0;
    assert_eq!(role.reader_idle(1, now), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(role.reader_idle(0, now), ReaderNext::Wait(None));
    while now < t0 + QUIET {
        now += HANDOVER;
        assert_eq!(role.reader_idle(1, now), ReaderNext::Wait(Some(HANDOVER)));
    }
    now += HANDOVER;
    assert_eq!(role.reader_idle(1, now), ReaderNext::Wait(None), "quiet");
    assert_eq!(role.standby, None);
    assert_eq!(
        role.caller_got_reply(7, now),
        Wake {
            readers: true,
            ..Wake::NOBODY
        }
    );
    // Woken: the first to look becomes the standby again.
    assert_eq!(role.reader_idle(0, now), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(role.reader_idle(1, now), ReaderNext::Wait(None));
    assert_eq!(
        role.reader_idle(0, now + HANDOVER),
        ReaderNext::Read("input")
    );
}

// A let-go seen by the standby restarts its quiet period.
#[test]
fn a_let_go_restarts_the_quiet_period() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    assert_eq!(role.reader_idle(1, t0), ReaderNext::Wait(Some(HANDOVER)));
    let t1 = t0 + QUIET / 2;
    let _ = role.caller_got_reply(7, t1);
    assert_eq!(
        role.caller_waits(8, thread::current),
        CallerNext::Read("input")
    );
    assert_eq!(role.reader_idle(1, t1), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(
        role.reader_idle(1, t0 + QUIET + HANDOVER),
        ReaderNext::Wait(Some(HANDOVER)),
        "not quiet: the last let-go was seen at {:?}",
        t1 - t0
    );
    assert_eq!(
        role.reader_idle(1, t1 + QUIET),
        ReaderNext::Wait(None),
        "quiet"
    );
}

// The hang fixed in 5dd0b3a: the end's wake-up can end the standby's timed wait just as
// its quiet period runs out; the standby must then exit, not wait to be woken again.
#[test]
fn a_standby_whose_timer_ends_with_the_end_exits_rather_than_going_quiet() {
    let t0 = Instant::now();
    let mut role = read_by_caller_7(t0);
    assert_eq!(role.reader_idle(1, t0), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(role.reader_idle(0, t0), ReaderNext::Wait(None));
    let _ = role.connection_ended();
    assert_eq!(role.reader_idle(1, t0 + QUIET), ReaderNext::Exit);
    assert_eq!(role.reader_idle(0, t0 + QUIET), ReaderNext::Exit);
    // Gone quiet just before: woken by the end, it exits too.
    let mut role = read_by_caller_7(t0);
    assert_eq!(role.reader_idle(1, t0), ReaderNext::Wait(Some(HANDOVER)));
    let t1 = t0 + HANDOVER; // it sees the let-go to caller 7
    assert_eq!(role.reader_idle(1, t1), ReaderNext::Wait(Some(HANDOVER)));
    assert_eq!(role.reader_idle(1, t1 + QUIET), ReaderNext::Wait(None));
    assert_eq!(role.connection_ended(), Wake::EVERYONE);
    assert_eq!(role.reader_idle(1, t1 + QUIET), ReaderNext::Exit);
}

// The connection's drop waits for reader threads that are neither gone nor in a job.
#[test]
fn reader_threads_outside_jobs_are_counted_until_they_exit() {
    let t0 = Instant::now();
    let mut role = read_by_reader_0(t0);
    let _ = role.reader_hands_job(0, t0);
    assert_eq!(role.readers_outside_jobs(), 1);
    let _ = role.connection_ended();
    assert_eq!(role.reader_idle(1, t0), ReaderNext::Exit);
    assert_eq!(
        role.reader_exits(1),
        Wake {
            reader_state: true,
            ..Wake::NOBODY
        }
    );
    assert_eq!(role.readers_outside_jobs(), 0, "the drop waits no more");
    assert_eq!(role.reader_job_done(0), AfterJob::Leave);
    assert_eq!(role.readers_outside_jobs(), 1);
    let _ = role.reader_exits(0);
    assert_eq!(role.readers_outside_jobs(), 0);
}
