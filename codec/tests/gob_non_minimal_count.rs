//! `Decoder::non_minimal_uints` counts each non-minimal uint once, however the bytes arrive
//! (GOB-4). Found by the `gob` fuzz target: a message length in a longer form than the minimal
//! one was counted again at every `next_message` call that found the message's body incomplete,
//! so the count grew with the number of reads (and counted messages that never completed).

use rpcplugin_codec::gob::Decoder;
use rpcplugin_test_support::unhex;

/// Pushes the bytes in pieces of `size`, taking every message after each push; returns the
/// number of messages and the count of non-minimal uints.
fn count(bytes: &[u8], size: usize) -> (usize, u64) {
    let mut d = Decoder::new();
    let mut messages = 0;
    for piece in bytes.chunks(size) {
        d.push(piece);
        while d.next_message().unwrap().is_some() {
            messages += 1;
        }
    }
    (messages, d.non_minimal_uints())
}

// covers: GOB-2, GOB-4
#[test]
fn a_non_minimal_message_length_counts_once_under_any_split() {
    // The int 1 (`04 00 02`) in a message whose length 3 is written `ff 03`, then the same
    // value with a minimal length.
    let bytes = unhex("ff0304000203040002");
    for size in 1..=bytes.len() {
        assert_eq!(count(&bytes, size), (2, 1), "read {size} byte(s) at a time");
    }
    // A message that never completes is not counted, whole or split.
    let cut = unhex("ff0304");
    for size in 1..=cut.len() {
        assert_eq!(count(&cut, size), (0, 0), "read {size} byte(s) at a time");
    }
}
