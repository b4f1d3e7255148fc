//! `plugin/transport/...`: the plugin's pipes and process (spec 01 sections 1.4 to 1.6): a
//! standard input it must not wait for, and its exit at the end of the connection, also while
//! a hook call waits for the host.
//!
//! Rows: M9, S17.
//! Requirements: TRANS-5, TRANS-7 to TRANS-11.

use super::helpers::activate_with_api_answer;
use super::hooks::activate_deactivate;
use crate::outcome::Outcome;
use crate::plugin_under_test::{ApiAnswer, PluginUnderTest, EXIT_BOUND};
use rpcplugin_codec::req;

case!(
    STDIN_NOT_READ: plugin "plugin/transport/stdin-not-read",
    ["TRANS-5"],
    stdin_not_read,
    with_stdin_pipe(),
    "with a standard input that never delivers anything, the plugin announces and serves its hooks"
);

/// TRANS-5: with a standard input that stays open and silent, the plugin announces and serves
/// its hooks. What goes wrong here is TRANS-5's: a plugin that waits for its standard input
/// before announcing never announces, and one that waits for it in a hook never answers.
fn stdin_not_read(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    match activate_deactivate(p) {
        Err(Outcome::Fail(mut f)) if f.setup.is_none() => {
            f.got = format!(
                "{} ({} failed; its standard input was a pipe the harness held open and never \
                 wrote)",
                f.got,
                f.requirement.unwrap_or("")
            );
            f.requirement = Some(req!("TRANS-5"));
            Err(Outcome::Fail(f))
        }
        other => other,
    }
}

case!(
    EOF_EXIT: plugin "plugin/transport/eof-exit",
    ["TRANS-7", "TRANS-8", "TRANS-9", "TRANS-10", "TRANS-11"],
    eof_exit,
    "when the host closes its pipe the plugin closes its output and exits within EXIT_BOUND with status 0, leaving no process behind"
);

fn eof_exit(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.handshake()?;
    close_and_expect_exit(p)
}

/// Closes the host's pipe: the plugin must close its output (TRANS-8) and exit within
/// EXIT_BOUND (TRANS-9) with status 0 (TRANS-10), leaving no process behind (TRANS-11).
pub(crate) fn close_and_expect_exit(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    p.close_input();
    let closed = p.wait_eof(EXIT_BOUND);
    let exit = p.wait_exit(EXIT_BOUND);
    let leftovers: Vec<String> = p
        .marked_processes()
        .into_iter()
        .filter(|(pid, _)| *pid != p.pid())
        .map(|(pid, cmd)| format!("{pid} ({cmd})"))
        .collect();
    match exit {
        None => {
            return Err(p.fail(
                req!("TRANS-9"),
                "the plugin exits within EXIT_BOUND (5 s) after the host closed its pipe",
                "it is still running",
            ))
        }
        Some(_) if !closed => {
            return Err(p.fail(
                req!("TRANS-8"),
                "the plugin closes its output when its connection ends",
                "the output is still open although the process exited (another process holds \
                 descriptor 4)",
            ))
        }
        Some(_) if !leftovers.is_empty() => {
            return Err(p.fail(
                req!("TRANS-11"),
                "no process started by the plugin is still running after it exits",
                &format!("still running: {}", leftovers.join(", ")),
            ))
        }
        Some(exit) if !exit.success() => {
            return Err(p.fail(
                req!("TRANS-10"),
                "exit status 0 after the host closed its pipe",
                &format!("the process {exit}"),
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

case!(
    EOF_DURING_HOOK_CALL: plugin "plugin/transport/eof-during-hook-call",
    ["TRANS-9"],
    eof_during_hook_call,
    "the plugin exits within EXIT_BOUND after the host closed its pipe, even while a hook call waits for the host"
);

fn eof_during_hook_call(p: &mut PluginUnderTest) -> Result<(), Outcome> {
    activate_with_api_answer(p, ApiAnswer::Never)?;
    p.close_input();
    match p.wait_exit(EXIT_BOUND) {
        None => Err(p.fail(
            req!("TRANS-9"),
            "the plugin exits within EXIT_BOUND (5 s) after the host closed its pipe, although \
             its OnActivate hook still waits for LoadPluginConfiguration",
            "it is still running",
        )),
        Some(_) => Ok(()),
    }
}
