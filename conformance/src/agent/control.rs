//! The agent of a host case and its control socket to the harness: [`run_controlled`] reports
//! what the host let the process inherit (TRANS-1, TRANS-4, TRANS-6, TRANS-14, TRANS-15,
//! TRANS-16), takes its [`Behaviour`] from the harness, and carries out its [`Order`]s while it
//! serves; the agent's reports (`report`), timed with [`mono_ns`]; and its observer of what
//! the host writes (the tracer's sender rules, and STREAM-2, STREAM-3 and STREAM-6 from both
//! directions), whose findings are reported as violations.

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use rpcplugin_codec::frame::{encode_frame, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::rpc::ON_ACTIVATE;
use rpcplugin_codec::trace::What;
use serde::{Deserialize, Serialize};

use super::{Agent, AgentEnd, Behaviour};
use rpcplugin_codec::req;

/// What the harness can tell a running agent to do, over its control socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "snake_case", deny_unknown_fields)]
pub enum Order {
    /// Exit with this status.
    Exit {
        /// The status.
        code: i32,
    },
    /// Kill itself with SIGKILL.
    Kill,
    /// Write these bytes (hex) to descriptor 4.
    Send {
        /// The bytes.
        hex: String,
    },
    /// Write `bytes` bytes of data on `stream`, in frames of at most 1 MiB.
    Flood {
        /// The stream.
        stream: i64,
        /// How many bytes.
        bytes: u64,
    },
    /// Close descriptor 4 only, keeping on reading descriptor 3.
    CloseOutput,
    /// Close a stream (a zero-length frame).
    CloseStream {
        /// The stream.
        stream: i64,
    },
    /// Stop reading descriptor 3.
    StopReading,
}

/// The descriptors this process has open, with what each refers to (`/proc/self/fd`), the
/// directory's own descriptor left out. Empty where `/proc` is missing.
fn open_descriptors() -> Vec<(i32, String)> {
    let mut found = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        for entry in dir.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            match std::fs::read_link(entry.path()) {
                Ok(target) => {
                    // The access mode, for the pipes: "r" or "w" (from fdinfo's flags).
                    let mode = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
                        .ok()
                        .and_then(|t| {
                            t.lines()
                                .find(|l| l.starts_with("flags:"))
                                .and_then(|l| l.split_whitespace().nth(1))
                                .and_then(|f| u32::from_str_radix(f, 8).ok())
                        })
                        .map_or("", |flags| match flags & 3 {
                            0 => " r",
                            1 => " w",
                            _ => " rw",
                        });
                    found.push((fd, format!("{}{mode}", target.display())))
                }
                // The directory's own descriptor is gone by the time it is read.
                Err(_) => continue,
            }
        }
    }
    found.retain(|(_, target)| {
        let path = target.split(' ').next().unwrap_or("");
        !(path.starts_with("/proc/") && path.ends_with("/fd"))
    });
    found.sort();
    found
}

/// The machine's monotonic clock in nanoseconds (`CLOCK_MONOTONIC`), which every process on the
/// machine reads alike: the agent's reports carry it, so that the harness can time a host's
/// reactions from when things happened rather than from when it heard of them.
pub fn mono_ns() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC).ok()?;
    u64::try_from(t.tv_sec())
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(u64::try_from(t.tv_nsec()).ok()?)
}

/// The variable in which the agent's script passes on the `SigBlk` line of its
/// `/proc/PID/status` (the signal mask the host started it with, TRANS-15).
pub const SIGBLK_VAR: &str = "RPCPLUGIN_AGENT_SIGBLK";
/// Likewise for `SigIgn`, the signals it started with ignored (TRANS-16).
pub const SIGIGN_VAR: &str = "RPCPLUGIN_AGENT_SIGIGN";

/// The agent's first message to the harness in a host case, written by the agent and read by
/// the harness ([`crate::host_under_test`]): who it is and what the host let it inherit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentHello {
    /// [`AgentHello::EVENT`].
    pub event: String,
    /// The agent's process id.
    pub pid: u32,
    /// Its parent's (the host's, or what the host started it through).
    pub ppid: i32,
    /// Its process group (TRANS-13).
    pub pgid: i32,
    /// The monotonic clock at its start, in nanoseconds (LIFE-8's delays are measured to it).
    pub mono_ns: Option<u64>,
    /// The arguments after its name (TRANS-14).
    pub args: Vec<String>,
    /// The signal mask it started with, in hex as `/proc` shows it (TRANS-15).
    pub sig_blocked: Option<String>,
    /// The signals it started with ignored, likewise (TRANS-16).
    pub sig_ignored: Option<String>,
    /// Its open descriptors before it opened any (TRANS-1, TRANS-4, TRANS-6).
    pub fds: Vec<InheritedFd>,
}

impl AgentHello {
    /// The value of [`AgentHello::event`].
    pub const EVENT: &'static str = "hello";
}

/// A descriptor the agent found open at its start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InheritedFd {
    /// Its number.
    pub fd: i32,
    /// What `/proc/self/fd/N` links to.
    pub target: String,
}

/// Runs the agent of a host case: reports to the harness on the Unix socket `socket`, takes
/// its behaviour from the harness's answer, and carries out its orders while it serves.
/// `host_args` are the arguments the host started the plugin with, after its name (TRANS-14).
pub fn run_controlled(socket: &std::path::Path, host_args: &[String]) -> AgentEnd {
    // As early as can be: no earlier than the launch (LIFE-8's delay is measured to it).
    let started = mono_ns();
    // Before anything is opened: what the host let this process inherit (TRANS-1, TRANS-4,
    // TRANS-6).
    let fds = open_descriptors();
    let (input, output) = match rpcplugin_runtime::process::inherited_pipes() {
        Ok(pipes) => pipes,
        Err(e) => return AgentEnd::NoPipes(e.to_string()),
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e) => {
            return AgentEnd::Failed(format!(
                "cannot reach the harness at {}: {e}",
                socket.display()
            ))
        }
    };
    let hello = AgentHello {
        event: AgentHello::EVENT.into(),
        pid: std::process::id(),
        ppid: nix::unistd::getppid().as_raw(),
        pgid: nix::unistd::getpgrp().as_raw(),
        mono_ns: started,
        args: host_args.to_vec(),
        sig_blocked: std::env::var(SIGBLK_VAR).ok().filter(|m| !m.is_empty()),
        sig_ignored: std::env::var(SIGIGN_VAR).ok().filter(|m| !m.is_empty()),
        fds: fds
            .into_iter()
            .map(|(fd, target)| InheritedFd { fd, target })
            .collect(),
    };
    let hello = serde_json::to_string(&hello).expect("a hello serializes");
    if stream.write_all(format!("{hello}\n").as_bytes()).is_err() {
        return AgentEnd::Failed("the harness closed its socket".into());
    }
    // The behaviour: one line.
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => break,
            Ok(1) => line.push(byte[0]),
            _ => return AgentEnd::Failed("the harness sent no behaviour".into()),
        }
    }
    let behaviour: Behaviour = match serde_json::from_slice(&line) {
        Ok(b) => b,
        Err(e) => return AgentEnd::Failed(format!("the harness's behaviour is invalid: {e}")),
    };
    let mut agent = Agent::new(behaviour, File::from(input), File::from(output));
    agent.control = Some(Control {
        stream,
        pending: Vec::new(),
    });
    let end = agent.serve();
    let (code, why) = match &end {
        AgentEnd::HostClosed(code) => (*code, "the host closed the connection".to_string()),
        AgentEnd::Failed(e) => (1, e.clone()),
        AgentEnd::NoPipes(e) => (2, e.clone()),
    };
    if matches!(end, AgentEnd::HostClosed(_)) && agent.b.ignore_eof {
        agent.report(serde_json::json!({"event": "ignoring_eof"}));
        loop {
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    agent.report(serde_json::json!({
        "event": "exiting", "code": code, "why": why, "mono_ns": mono_ns()
    }));
    end
}

/// The connection to the harness of a host case.
pub(super) struct Control {
    pub(super) stream: UnixStream,
    pending: Vec<u8>,
}

impl Agent {
    /// Reports an event to the harness (host cases); nothing without a control socket.
    pub(super) fn report(&mut self, value: serde_json::Value) {
        if let Some(c) = &mut self.control {
            let mut line = value.to_string();
            line.push('\n');
            let _ = c.stream.write_all(line.as_bytes());
        }
    }

    /// Watches what the host writes: the tracer's sender rules, and STREAM-2, STREAM-6 and
    /// STREAM-3 from both directions.
    pub(super) fn observe_host(&mut self, bytes: &[u8]) {
        if self.control.is_none() {
            return;
        }
        let mut notes = Vec::new();
        self.host_trace.push(bytes, &mut notes);
        for n in notes {
            let found = match &n.what {
                What::Violation(v) => Some((v.requirement, v.text.clone())),
                What::Frame { stream_id, len, .. }
                    if *len > 0 && !stream_id.is_control() && stream_id.is_plugin_allocated() =>
                {
                    (*stream_id != self.hooks).then(|| {
                        (
                            req!("STREAM-2"),
                            format!(
                                "the host sent data on stream {stream_id}, an even id, which only \
                                 the plugin allocates, and the plugin never opened it"
                            ),
                        )
                    })
                }
                What::Frame { stream_id, len, .. }
                    if *len > 0
                        && !stream_id.is_control()
                        && !self.wrote_on.contains(stream_id) =>
                {
                    Some((
                        req!("STREAM-6"),
                        format!(
                            "the host sent data on stream {stream_id}, which it opened, before \
                             the plugin had sent anything on it"
                        ),
                    ))
                }
                What::Request {
                    stream_id,
                    service_method,
                    args,
                    ..
                } if *stream_id == self.hooks && service_method == ON_ACTIVATE => {
                    let id: i64 = args.parse().unwrap_or(0);
                    let found = if self.api_ids.contains(&id) {
                        Some((
                            req!("STREAM-3"),
                            format!("the host named API stream {id} a second time"),
                        ))
                    } else if id <= 0 || id % 2 == 0 {
                        Some((
                            req!("STREAM-2"),
                            format!("the host's API stream {id} is not a positive odd id"),
                        ))
                    } else {
                        None
                    };
                    self.api_ids.push(id);
                    found
                }
                _ => None,
            };
            if let Some((requirement, text)) = found {
                self.report(serde_json::json!({
                    "event": "violation", "requirement": requirement, "text": text, "offset": n.offset
                }));
            }
        }
    }

    pub(super) fn read_control(&mut self) -> Result<(), AgentEnd> {
        let mut buf = [0u8; 4096];
        let n = match self.control.as_mut().map(|c| c.stream.read(&mut buf)) {
            Some(Ok(n)) => n,
            _ => 0,
        };
        if n == 0 {
            // The harness is gone: nothing more to report to.
            self.control = None;
            return Ok(());
        }
        let c = self.control.as_mut().expect("checked");
        c.pending.extend_from_slice(&buf[..n]);
        let mut orders = Vec::new();
        while let Some(at) = c.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = c.pending.drain(..=at).collect();
            if let Ok(order) = serde_json::from_slice::<Order>(&line) {
                orders.push(order);
            }
        }
        for order in orders {
            self.obey(order)?;
        }
        Ok(())
    }

    fn obey(&mut self, order: Order) -> Result<(), AgentEnd> {
        match order {
            Order::Exit { code } => self.crash_now(Some(code)),
            Order::Kill => self.crash_now(None),
            Order::Send { hex } => {
                let bytes = crate::transcript::from_hex(&hex).unwrap_or_default();
                let _ = self.output.write_all(&bytes);
            }
            Order::Flood { stream, bytes } => {
                let id = StreamId::new(stream).unwrap_or(StreamId::CONTROL);
                let chunk = vec![0x5a; MIN_MAX_PAYLOAD];
                let mut left = bytes;
                let mut frame = Vec::with_capacity(MIN_MAX_PAYLOAD + 20);
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    frame.clear();
                    let _ = encode_frame(id, &chunk[..n], &mut frame);
                    if self.output.write_all(&frame).is_err() {
                        break;
                    }
                    left -= n as u64;
                }
                self.report(serde_json::json!({"event": "flooded", "stream": stream, "bytes": bytes - left}));
            }
            Order::CloseOutput => {
                // Replace descriptor 4's file by nothing: dup /dev/null over it is not needed,
                // dropping our only handle closes it.
                let null = File::open("/dev/null").map_err(|e| AgentEnd::Failed(e.to_string()))?;
                let old = std::mem::replace(&mut self.output, null);
                drop(old);
                self.output_open = false;
            }
            Order::CloseStream { stream } => {
                if let Some(id) = StreamId::new(stream) {
                    let _ = self.table.close(id);
                }
            }
            Order::StopReading => self.reading = false,
        }
        self.flush().map_err(AgentEnd::Failed)
    }
}
