//! `plugin/wire/output-follows-sender-rules`: the case that cites what the observer enforces in
//! every plugin case (spec/harness.md section 1.2; [`crate::plugin_under_test`]): the
//! announcement and the sender rules of frames, streams, gob and RPC (spec 02 to 05), here in
//! a plain session.
//!
//! Requirements: FRAME-1, FRAME-2, FRAME-9, FRAME-10, STREAM-1, STREAM-2, STREAM-5 to
//! STREAM-8, HS-1, HS-2, RPC-1 to RPC-5, RPC-7, RPC-14, GOB-1, GOB-2, GOB-4 to GOB-7, GOB-9 to
//! GOB-11, GOB-13, GOB-16, GOB-17, GOB-20, GOB-21, LIFE-21.

use rpcplugin_codec::rpc::Call;

use super::helpers::{activate, await_all, deactivate};
use crate::outcome::Outcome;
use crate::plugin_under_test::{PluginUnderTest, CALL_TIMEOUT, EXIT_BOUND};
use rpcplugin_codec::req;

// What the observer enforces in every plugin case (spec/harness.md section 1.2): the
// announcement, the sender rules of frames, streams, gob and RPC (a malformed gob
// message is named by the receiver's rule it trips), an answer to every request, and a
// plugin that keeps reading while its connection lasts.
case!(OUTPUT_FOLLOWS_SENDER_RULES: plugin "plugin/wire/output-follows-sender-rules",
    ["HS-1", "HS-2", "FRAME-1", "FRAME-2", "FRAME-9", "FRAME-10", "STREAM-1", "STREAM-2",
    "STREAM-5", "STREAM-6", "STREAM-7", "STREAM-8", "RPC-1", "RPC-2", "RPC-3", "RPC-4", "RPC-5",
    "RPC-7", "RPC-14", "GOB-1", "GOB-2", "GOB-4", "GOB-5", "GOB-6", "GOB-7", "GOB-9", "GOB-10",
    "GOB-11", "GOB-13", "GOB-16", "GOB-17", "GOB-20", "GOB-21", "LIFE-21"],
    output_follows_sender_rules,
    "in a session of handshake, activation, API call, reactivation and deactivation, everything the plugin writes follows the sender's rules");

fn output_follows_sender_rules(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    activate(p, req!("RPC-5"))?;
    activate(p, req!("RPC-5"))?;
    deactivate(p)?;
    let mut pending = Vec::new();
    for _ in 0..20 {
        let seq = p.send_call(Call::OnDeactivate)?;
        pending.push((seq, Call::OnDeactivate));
    }
    await_all(p, pending, "a response to each OnDeactivate", CALL_TIMEOUT)?;
    p.close_input();
    p.wait_eof(EXIT_BOUND);
    // The observer's findings are the verdict (the runner reports them).
    Ok(())
}
