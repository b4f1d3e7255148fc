//! The floor: the same operations without the protocol, through a child's descriptors 3 and 4.
//!
//! The floor child is this harness binary started again as `rpcplugin-conformance bench-floor
//! --ack-every N`, which its `main` hands to [`run_if_floor`] before anything else (not even
//! the command line is parsed, so it is no subcommand of `--help`): it takes its pipes as a plugin does
//! (`inherited_pipes`, TRANS-1), reads descriptor 3, and writes one byte to descriptor 4 for
//! every N bytes it has read, until end of file. With N = 1 that is a ping-pong; with N = a
//! payload's size, a one-way transfer with a one-byte answer.
//!
//! Why this binary and not `sh -c 'exec cat <&3 >&4'` (what `reference-plugin/benches` use) or
//! one of the agent's mutants:
//!
//! - it is there wherever the harness is: no `/bin/sh` or `cat`, whose buffering and start-up
//!   differ between systems (GNU, busybox, BSD), so the floor means the same everywhere;
//! - it is launched exactly as the plugin is (`rpcplugin_runtime::process::launch`: same pipes,
//!   own process group, standard input `/dev/null`), and it is a Rust program that takes its
//!   pipes the way a plugin built on this runtime does, so its start time and its resident
//!   memory are a fair floor for a plugin's too;
//! - it speaks no protocol at all, which a floor must not: the agent and its mutants are plugins
//!   (the mutants break rules on purpose), so none of them is a floor.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use rpcplugin_runtime::process::{launch, LaunchOptions, Output, PluginProcess};

use super::BenchError;
use crate::plugin_under_test::EXIT_BOUND;

/// The hidden subcommand that runs the floor child.
pub const FLOOR_SUBCOMMAND: &str = "bench-floor";

/// The floor child's `main`: when this process was started as `<harness> bench-floor
/// --ack-every N`, serves as the floor child and returns its exit status (0 at end of file,
/// 2 when it cannot); otherwise `None`, at once. The harness's `main` calls it first, before
/// parsing its command line, so that the floor child does no more than it must.
pub fn run_if_floor() -> Option<std::process::ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() != Some(std::ffi::OsStr::new(FLOOR_SUBCOMMAND)) {
        return None;
    }
    let ack_every = match (args.next(), args.next(), args.next()) {
        (Some(flag), Some(n), None) if flag == "--ack-every" => {
            n.to_str().and_then(|n| n.parse::<u64>().ok())
        }
        (None, None, None) => Some(1),
        _ => None,
    };
    let result = match ack_every {
        Some(n) => serve_floor(n),
        None => Err(format!("usage: {FLOOR_SUBCOMMAND} [--ack-every N]")),
    };
    Some(match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rpcplugin-conformance {FLOOR_SUBCOMMAND}: {e}");
            std::process::ExitCode::from(2)
        }
    })
}

/// The floor child's side: copies descriptor 3 into one byte on descriptor 4 per `ack_every`
/// bytes read, until end of file on descriptor 3 (or a write fails).
pub fn serve_floor(ack_every: u64) -> Result<(), String> {
    let (input, output) = rpcplugin_runtime::process::inherited_pipes().map_err(|e| {
        format!("{FLOOR_SUBCOMMAND} is the bench's floor child: start it with pipes as descriptors 3 and 4 ({e})")
    })?;
    let ack_every = ack_every.max(1);
    let mut input = File::from(input);
    let mut output = File::from(output);
    let mut buf = vec![0u8; 64 * 1024];
    let acks = vec![b'x'; 64 * 1024];
    let mut unanswered = 0u64;
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("reading descriptor 3: {e}")),
        };
        unanswered += n;
        let mut due = unanswered / ack_every;
        unanswered %= ack_every;
        while due > 0 {
            let now = due.min(acks.len() as u64) as usize;
            if let Err(e) = output.write_all(&acks[..now]) {
                return Err(format!("writing descriptor 4: {e}"));
            }
            due -= now as u64;
        }
    }
}

/// A running floor child, from the host's side.
#[derive(Debug)]
pub struct FloorChild {
    process: PluginProcess,
    to: Option<File>,
    from: File,
    ack_every: usize,
    answer: Vec<u8>,
}

impl FloorChild {
    /// Starts `harness bench-floor --ack-every N`.
    pub fn launch(harness: &Path, ack_every: usize) -> Result<FloorChild, BenchError> {
        let mut opts = LaunchOptions::new(harness);
        opts.args = vec![
            FLOOR_SUBCOMMAND.into(),
            "--ack-every".into(),
            ack_every.max(1).to_string().into(),
        ];
        opts.stdout = Output::Null;
        opts.stderr = Output::Inherit;
        let launched = launch(&opts).map_err(|e| {
            BenchError(format!(
                "cannot start the floor child (this harness, {}): {e}",
                harness.display()
            ))
        })?;
        Ok(FloorChild {
            process: launched.process,
            to: Some(File::from(launched.writer)),
            from: File::from(launched.reader),
            ack_every: ack_every.max(1),
            answer: Vec::new(),
        })
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Writes `bytes` and reads the child's answer to them (one byte per `ack_every`).
    pub fn exchange(&mut self, bytes: &[u8]) -> Result<(), BenchError> {
        let gone = |e: std::io::Error| BenchError(format!("the floor child failed: {e}"));
        let to = self
            .to
            .as_mut()
            .ok_or_else(|| BenchError("the floor child is closed".into()))?;
        to.write_all(bytes).map_err(gone)?;
        let due = bytes.len() / self.ack_every;
        self.answer.resize(due, 0);
        self.from.read_exact(&mut self.answer).map_err(gone)
    }

    /// Closes its pipe, lets it exit, and reaps it (killing it after [`EXIT_BOUND`] times
    /// `scale`).
    pub fn close(mut self, scale: f64) {
        self.to = None;
        if !matches!(
            self.process.wait_timeout(EXIT_BOUND.mul_f64(scale)),
            Ok(Some(_))
        ) {
            let _ = self.process.kill();
        }
    }
}

/// The resident memory of a process, from `/proc/PID/status` (Linux).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now, KiB.
    pub rss_kib: u64,
    /// `VmHWM`: the most ever resident, KiB.
    pub hwm_kib: u64,
    /// `RssAnon`: resident and anonymous (heap, stacks), KiB: what the program allocated, not
    /// the pages of its executable and libraries.
    pub anon_kib: u64,
}

/// The memory of process `pid`, where `/proc` tells it.
pub fn memory(pid: u32) -> Option<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
        anon_kib: field("RssAnon:")?,
    })
}
