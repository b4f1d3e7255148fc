//! `host/handshake/...`: what the host does with a plugin's first bytes (spec 04 sections 4.2,
//! 4.4 and 4.5): frames before the announcement, a malformed frame first, and one case per row
//! of Table 4-1 (bad announcements, `table_cases`), each of which fails the start at once.
//!
//! Rows: E1 to E9, E12, H2, H3, L4, M3, M13, S3.
//! Requirements: FRAME-5, FRAME-14, STREAM-5, HS-5, HS-7, HS-9, LIFE-4.

use super::helpers::{activate_ok, fails_at_once_and_is_reaped, frame, must, START};
use crate::agent::Behaviour;
use crate::cases::{finish, generated, Case, Runner, DEFAULT_TIMEOUT};
use crate::host_under_test::HostUnderTest;
use crate::outcome::Outcome;
use crate::transcript::to_hex;
use rpcplugin_codec::req;

case!(
    DATA_BEFORE_ANNOUNCEMENT: host "host/handshake/data-before-announcement",
    ["STREAM-5", "HS-7"],
    data_before_announcement,
    "data and close frames on data streams before the announcement are discarded; the start succeeds"
);

/// Table 4-2, H3: frames on data streams before the announcement are discarded (STREAM-5),
/// not a handshake error; the announcement that follows starts the plugin.
fn data_before_announcement(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let mut early = frame(2, b"early");
    early.extend(frame(5, b"x"));
    early.extend(frame(4, b""));
    h.script(vec![Behaviour {
        before_announce_hex: Some(to_hex(&early)),
        ..Behaviour::default()
    }]);
    let r = h.start("p", START);
    must(
        h,
        r,
        req!("STREAM-5"),
        &format!(
            "a successful start: frames for data streams before the announcement ({}) are \
             discarded, not a handshake error",
            to_hex(&early)
        ),
    )?;
    activate_ok(h, req!("HS-7"))
}

case!(
    MALFORMED_FRAME_FIRST: host "host/handshake/malformed-frame-first",
    ["FRAME-5", "FRAME-14", "LIFE-4"],
    malformed_frame_first,
    "a malformed frame before the announcement is a connection error: the start fails at once and the plugin is killed"
);

/// Table 4-1, E12: a malformed frame (`01 00`, a negative stream id) before the announcement
/// is a connection error (FRAME-14): the start fails at once, and the plugin is killed and
/// reaped (LIFE-4).
fn malformed_frame_first(h: &mut HostUnderTest) -> Result<(), Outcome> {
    let b = Behaviour {
        before_announce_hex: Some("0100".into()),
        ignore_eof: true,
        ..Behaviour::default()
    };
    let what = "the plugin's first bytes are 01 00, a frame with stream id -1 (a connection \
                error, FRAME-14)";
    fails_at_once_and_is_reaped(h, b, req!("FRAME-5"), what)
}

/// Table 4-1: name, the stream-0 payload in hex, what is wrong with it, the row, the
/// requirement it breaks.
const BAD_ANNOUNCEMENTS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "bad-control-byte",
        "0104",
        "control byte 01",
        "E1",
        req!("HS-5"),
    ),
    (
        "short-announcement",
        "00",
        "a payload without a varint",
        "E2",
        req!("HS-5"),
    ),
    (
        "empty-announcement",
        "",
        "an empty payload",
        "E3",
        req!("HS-5"),
    ),
    (
        "incomplete-varint",
        "0080",
        "an incomplete varint",
        "E4",
        req!("HS-5"),
    ),
    (
        "overflowing-varint",
        "00ffffffffffffffffff7f",
        "a varint that overflows",
        "E5",
        req!("HS-5"),
    ),
    (
        "trailing-byte",
        "000400",
        "a byte after the varint",
        "E6",
        req!("HS-5"),
    ),
    (
        "hooks-stream-zero",
        "0000",
        "hooks stream id 0",
        "E7",
        req!("HS-9"),
    ),
    (
        "odd-hooks-stream",
        "0002",
        "hooks stream id 1, odd",
        "E8",
        req!("HS-9"),
    ),
    (
        "negative-hooks-stream",
        "0003",
        "hooks stream id -2",
        "E9",
        req!("HS-9"),
    ),
];

/// One case per row of Table 4-1: the start fails at once and the plugin is killed.
pub(super) fn table_cases() -> Vec<Case> {
    let rows = BAD_ANNOUNCEMENTS.iter().enumerate();
    rows.map(|(i, (name, hex, title, _, requirement))| {
        generated(
            format!("host/handshake/{name}"),
            format!("{title} ({hex}): the start fails at once and the plugin is killed"),
            vec![*requirement, req!("LIFE-4")],
            DEFAULT_TIMEOUT,
            Runner::HostWith(|h, i| finish(bad_announcement(h, i as usize)), i as u64),
        )
    })
    .collect()
}

fn bad_announcement(h: &mut HostUnderTest, row: usize) -> Result<(), Outcome> {
    let (_, hex, what, table_row, requirement) = BAD_ANNOUNCEMENTS[row];
    let b = Behaviour {
        announcement_hex: Some(hex.to_string()),
        ..Behaviour::default()
    };
    let what = format!("the announcement has {what} (Table 4-1, {table_row})");
    fails_at_once_and_is_reaped(h, b, requirement, &what)
}
