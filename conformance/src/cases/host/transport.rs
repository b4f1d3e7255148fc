//! `host/transport/...`: how the host launches its plugin (spec 01: sections 1.2 to 1.4 and
//! 1.7): descriptors 0 to 4 and nothing else, no copy of the plugin's pipe ends kept, a process
//! group of its own, no argument, default signal state, standard input /dev/null, and standard
//! output that is not the protocol.
//!
//! Requirements: TRANS-1, TRANS-3, TRANS-4, TRANS-6, TRANS-12, TRANS-13, TRANS-14, TRANS-15,
//! TRANS-16.

use super::helpers::{activate_ok, launch, start_ok};
use crate::agent::Behaviour;
use crate::host_under_test::{AgentLaunch, HostUnderTest, REPLY_TIMEOUT};
use crate::outcome::Outcome;
use rpcplugin_codec::req;

case!(
    DESCRIPTORS: host "host/transport/descriptors",
    ["TRANS-1", "TRANS-4", "TRANS-12"],
    descriptors,
    "the plugin starts with descriptors 0 to 4 only, 3 reading and 4 writing, and the host keeps no copy of the plugin's ends"
);

fn descriptors(h: &mut HostUnderTest) -> Result<(), Outcome> {
    h.script(vec![Behaviour::default()]);
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, req!("TRANS-1"), "the plugin launched")?;
    let numbers: Vec<i64> = l.fds.iter().map(|(n, _)| *n).collect();
    let extra: Vec<String> = l
        .fds
        .iter()
        .filter(|(n, _)| *n > 4)
        .map(|(n, t)| format!("{n} ({t})"))
        .collect();
    if !extra.is_empty() {
        let passed_on = l
            .fds
            .iter()
            .any(|(_, t)| t.contains(crate::host_under_test::INHERITED_MARKER));
        return Err(h.fail(
            req!("TRANS-4"),
            "no descriptor other than 0 to 4 inherited by the plugin",
            &format!(
                "also {}{}",
                extra.join(", "),
                if passed_on {
                    format!(
                        " (the driver was started with descriptor {} open on {}, without \
                         close-on-exec: the host passed it on)",
                        crate::host_under_test::INHERITED_FD,
                        crate::host_under_test::INHERITED_MARKER
                    )
                } else {
                    String::new()
                }
            ),
        ));
    }
    let pipe = |fd, expected, got: String| {
        pipe_of(&l, fd).ok_or_else(|| h.fail(req!("TRANS-1"), expected, &got))
    };
    let got = format!("descriptors {numbers:?}: {:?}", l.fds);
    let (p3, m3) = pipe(3, "descriptor 3: the read end of a pipe", got)?;
    let got = format!("descriptors {:?}", l.fds);
    let (p4, m4) = pipe(4, "descriptor 4: the write end of a pipe", got)?;
    if m3 != "r" || m4 != "w" || p3 == p4 {
        return Err(h.fail(
            req!("TRANS-1"),
            "descriptor 3 the read end of one pipe, descriptor 4 the write end of another",
            &format!("3: {p3} {m3}, 4: {p4} {m4}"),
        ));
    }
    // TRANS-12: nobody but the plugin holds the plugin's ends.
    let bad: Vec<String> = holders(&p3, l.pid)
        .into_iter()
        .filter(|(_, mode)| mode == "r")
        .map(|(pid, _)| format!("process {pid} holds the read end of the host-to-plugin pipe"))
        .chain(
            holders(&p4, l.pid)
                .into_iter()
                .filter(|(_, mode)| mode == "w")
                .map(|(pid, _)| {
                    format!("process {pid} holds the write end of the plugin-to-host pipe")
                }),
        )
        .collect();
    if !bad.is_empty() {
        return Err(h.fail(
            req!("TRANS-12"),
            "the host has closed its copies of the plugin's pipe ends",
            &bad.join("; "),
        ));
    }
    Ok(())
}

/// The pipe inode and mode of descriptor `fd` in a launch's hello (`pipe:[123] r`).
fn pipe_of(l: &AgentLaunch, fd: i64) -> Option<(String, String)> {
    let (_, target) = l.fds.iter().find(|(n, _)| *n == fd)?;
    let (pipe, mode) = target.rsplit_once(' ')?;
    pipe.starts_with("pipe:")
        .then(|| (pipe.to_string(), mode.to_string()))
}

/// Every (pid, mode) of a process other than `except` that holds `pipe` open.
fn holders(pipe: &str, except: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (pid, dir) in crate::plugin_under_test::proc_entries() {
        if pid == except {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(dir.join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if std::fs::read_link(fd.path()).is_ok_and(|t| t.display().to_string() == pipe) {
                let info = std::fs::read_to_string(dir.join("fdinfo").join(fd.file_name()))
                    .unwrap_or_default();
                let flags = info
                    .lines()
                    .find(|l| l.starts_with("flags:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|f| u32::from_str_radix(f, 8).ok())
                    .unwrap_or(0);
                found.push((pid, if flags & 3 == 1 { "w" } else { "r" }.to_string()));
            }
        }
    }
    found
}

case!(
    OWN_PROCESS_GROUP: host "host/transport/own-process-group",
    ["TRANS-13"],
    own_process_group,
    "the plugin leads a process group of its own, so that signals to the host's group do not reach it"
);

fn own_process_group(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, req!("TRANS-13"), "the plugin launched")?;
    if l.pgid == i64::from(l.pid) {
        return Ok(());
    }
    let driver_group =
        nix::unistd::getpgid(Some(nix::unistd::Pid::from_raw(h.driver_pid() as i32)))
            .map(|g| g.as_raw().to_string())
            .unwrap_or_else(|_| "unknown".into());
    Err(h.fail(
        req!("TRANS-13"),
        &format!(
            "the plugin (process {}) as the leader of a process group of its own",
            l.pid
        ),
        &format!(
            "it is in process group {} (the driver's is {driver_group})",
            l.pgid
        ),
    ))
}

case!(
    ARGUMENTS_AND_SIGNALS: host "host/transport/arguments-and-signals",
    ["TRANS-14", "TRANS-15", "TRANS-16"],
    arguments_and_signals,
    "the plugin starts with no argument after its name, no signal blocked and no signal ignored"
);

fn arguments_and_signals(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, req!("TRANS-14"), "the plugin launched")?;
    if !l.args.is_empty() {
        return Err(h.fail(
            req!("TRANS-14"),
            "no command-line argument after the program name",
            &format!("the plugin was started with the arguments {:?}", l.args),
        ));
    }
    // SIGKILL and SIGSTOP can be neither blocked nor ignored; the kernel shows them clear.
    if let Some(blocked) = l.signals_blocked.filter(|m| *m != 0) {
        return Err(h.fail(
            req!("TRANS-15"),
            "an empty signal mask",
            &format!(
                "the plugin started with {} blocked (SigBlk {blocked:016x})",
                signal_names(blocked)
            ),
        ));
    }
    // Signals 32 to 34, below SIGRTMIN, are the C library's own (TRANS-16): glibc's
    // posix_spawn leaves 32 and 33 ignored in every child.
    let reserved: u64 = 0b111 << 31;
    if let Some(ignored) = l.signals_ignored.map(|m| m & !reserved).filter(|m| *m != 0) {
        // A recommendation: reported as a warning.
        return Err(h.fail(
            req!("TRANS-16"),
            "every signal at its default action",
            &format!(
                "the plugin started with {} ignored (SigIgn {ignored:016x})",
                signal_names(ignored)
            ),
        ));
    }
    if l.signals_blocked.is_none() || l.signals_ignored.is_none() {
        return Err(Outcome::Skipped(
            "the plugin's signal state is unknown (no /proc/PID/status)".into(),
        ));
    }
    Ok(())
}

/// The signals of a mask as names (bit N-1 for signal N), e.g. "SIGPIPE, SIGCHLD".
fn signal_names(mask: u64) -> String {
    (1..=64)
        .filter(|n| mask & (1u64 << (n - 1)) != 0)
        .map(|n| {
            nix::sys::signal::Signal::try_from(n)
                .map(|s| s.as_str().to_string())
                .unwrap_or_else(|_| format!("signal {n}"))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

case!(
    STDIN_IS_DEV_NULL: host "host/transport/stdin-is-dev-null",
    ["TRANS-6"],
    stdin_null,
    "the plugin's standard input is /dev/null"
);

fn stdin_null(h: &mut HostUnderTest) -> Result<(), Outcome> {
    start_ok(h)?;
    let l = launch(h, 0, REPLY_TIMEOUT, req!("TRANS-6"), "the plugin launched")?;
    match l.fds.iter().find(|(n, _)| *n == 0) {
        Some((_, target)) if target.starts_with("/dev/null") => Ok(()),
        other => Err(h.fail(
            req!("TRANS-6"),
            "standard input /dev/null",
            &format!("{:?}", other.map(|(_, t)| t)),
        )),
    }
}

case!(
    STDOUT_IS_NOT_PROTOCOL: host "host/transport/stdout-is-not-protocol",
    ["TRANS-3"],
    stdout_not_protocol,
    "a fake announcement on the plugin's standard output is ignored; the real one on descriptor 4 counts"
);

fn stdout_not_protocol(h: &mut HostUnderTest) -> Result<(), Outcome> {
    // A frame on stream 0 announcing hooks stream 4, on standard output; the real announcement
    // of stream 2 follows on descriptor 4.
    h.script(vec![Behaviour {
        stdout_text: Some("\u{0}\u{6}\u{0}\u{8}plugin log line\n".into()),
        ..Behaviour::default()
    }]);
    start_ok(h)?;
    activate_ok(h, req!("TRANS-3"))
}
