//! The agent's one thread: [`run`] (a plugin on the pipes it inherited), and the event loop
//! that serves them: timers (a delayed announcement, a crash), the control socket, reading
//! descriptor 3 through the input filter into the stream table, the handshake's announcement
//! (HS-1, with the handshake mutants), the stream table's events (STREAM-11: a close answered
//! with a close), crashes, and why the agent stopped ([`AgentEnd`]).

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rpcplugin_codec::frame::{encode_frame, StreamId};
use rpcplugin_codec::stream::{DiscardReason, Event, Read};
use rpcplugin_codec::varint;

use super::control::mono_ns;
use super::filters::Filtered;
use super::{Agent, Behaviour, Crash, CrashWhen};

/// Why the agent stopped.
#[derive(Debug)]
pub enum AgentEnd {
    /// The host closed the connection: exit with this status.
    HostClosed(i32),
    /// A connection error or a failed pipe: exit with status 1.
    Failed(String),
    /// The agent was started without the host's pipes: exit with status 2.
    NoPipes(String),
}

/// Runs the agent on the pipes inherited as descriptors 3 and 4 until the connection ends.
/// Call it first thing in `main`.
pub fn run(behaviour: Behaviour) -> AgentEnd {
    let (input, output) = match rpcplugin_runtime::process::inherited_pipes() {
        Ok(pipes) => pipes,
        Err(e) => return AgentEnd::NoPipes(e.to_string()),
    };
    if behaviour.read_stdin_first {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    }
    let mut agent = Agent::new(behaviour, File::from(input), File::from(output));
    let end = match agent.serve() {
        // TRANS-10 broken on purpose: status 0 whatever ended the connection, as the seed.
        AgentEnd::Failed(_) if agent.b.exit_0_on_error => AgentEnd::HostClosed(0),
        end => end,
    };
    if let AgentEnd::HostClosed(_) = end {
        if agent.b.ignore_eof {
            // TRANS-9 broken on purpose: keep running until killed.
            loop {
                std::thread::sleep(Duration::from_secs(60));
            }
        }
    }
    end
}

/// An action the agent takes later.
#[derive(Debug, Clone, Copy)]
pub(super) enum Timer {
    Announce,
    Crash(Option<i32>),
}

impl Agent {
    pub(super) fn crash_now(&mut self, exit: Option<i32>) -> ! {
        // No later than the host can notice the crash (LIFE-8's delay is measured from it).
        self.report(serde_json::json!({"event": "crashing", "exit": exit, "mono_ns": mono_ns()}));
        if exit.is_some() && self.b.linger_ms > 0 {
            // The connection ends now; the process a while later.
            if let (Ok(null_in), Ok(null_out)) = (
                File::open("/dev/null"),
                std::fs::OpenOptions::new().write(true).open("/dev/null"),
            ) {
                self.input = null_in;
                self.output = null_out;
            }
            self.report(serde_json::json!({"event": "lingering", "ms": self.b.linger_ms}));
            std::thread::sleep(Duration::from_millis(self.b.linger_ms));
        }
        match exit {
            Some(code) => std::process::exit(code),
            None => {
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
                std::process::exit(137)
            }
        }
    }

    pub(super) fn serve(&mut self) -> AgentEnd {
        if let Some(text) = &self.b.stdout_text {
            let mut out = std::io::stdout();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
        if let Some(code) = self.b.exit_before_announce {
            self.crash_now(Some(code));
        }
        if !self.b.never_announce {
            if self.b.announce_delay_ms > 0 {
                let at = Instant::now() + Duration::from_millis(self.b.announce_delay_ms);
                self.timers.push((at, Timer::Announce));
            } else if let Err(e) = self.announce() {
                return AgentEnd::Failed(e);
            }
        }
        if self.b.leave_child {
            self.child = std::process::Command::new("sleep")
                .arg("30")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .ok();
        }
        if self.b.stop_reading {
            self.reading = false;
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // Timers due.
            let now = Instant::now();
            if let Some(i) = self.timers.iter().position(|(at, _)| *at <= now) {
                let (_, timer) = self.timers.remove(i);
                match timer {
                    Timer::Announce => {
                        if let Err(e) = self.announce() {
                            return AgentEnd::Failed(e);
                        }
                    }
                    Timer::Crash(exit) => self.crash_now(exit),
                }
                continue;
            }
            let wait = self
                .timers
                .iter()
                .map(|(at, _)| at.saturating_duration_since(now))
                .min();
            let (input_ready, control_ready) = {
                let mut fds = Vec::new();
                let input_at = self.reading.then(|| {
                    fds.push(PollFd::new(self.input.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let control_at = self.control.as_ref().map(|c| {
                    fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
                    fds.len() - 1
                });
                let timeout = match wait {
                    Some(d) => PollTimeout::try_from(d.max(Duration::from_millis(1)))
                        .unwrap_or(PollTimeout::MAX),
                    None => PollTimeout::NONE,
                };
                match poll(&mut fds, timeout) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return AgentEnd::Failed(format!("poll failed: {e}")),
                }
                let ready = |i: Option<usize>| {
                    i.is_some_and(|i| fds[i].revents().is_some_and(|r| !r.is_empty()))
                };
                (ready(input_at), ready(control_at))
            };
            if control_ready {
                if let Err(end) = self.read_control() {
                    return end;
                }
            }
            if !input_ready {
                continue;
            }
            let n = match self.input.read(&mut buf) {
                Ok(0) => {
                    self.report(serde_json::json!({"event": "eof"}));
                    // What the filter held back is the table's to judge (a truncated frame).
                    let rest = std::mem::take(&mut self.filter.pending);
                    if let Err(e) = self.table.receive(&rest) {
                        return AgentEnd::Failed(e.to_string());
                    }
                    return match self.table.end_of_input() {
                        Ok(()) => AgentEnd::HostClosed(self.b.exit_status_on_eof),
                        Err(e) => AgentEnd::Failed(e.to_string()),
                    };
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return AgentEnd::Failed(format!("reading descriptor 3 failed: {e}")),
            };
            self.observe_host(&buf[..n]);
            let filtered = match self.filter.push(&buf[..n]) {
                Filtered::Bytes(bytes) => bytes,
                Filtered::Hang => {
                    self.reading = false;
                    continue;
                }
            };
            if let Err(e) = self.table.receive(&filtered) {
                self.report(
                    serde_json::json!({"event": "connection_error", "text": e.to_string()}),
                );
                return AgentEnd::Failed(e.to_string());
            }
            if let Err(end) = self.handle_events() {
                return end;
            }
            if let Err(e) = self.flush() {
                return AgentEnd::Failed(e);
            }
        }
    }

    fn announce(&mut self) -> Result<(), String> {
        let mut out = Vec::new();
        if let Some(hex) = &self.b.before_announce_hex {
            out.extend(crate::transcript::from_hex(hex)?);
        }
        if let Some(hex) = self.b.announcement_hex.clone() {
            // A stream-0 payload of the harness's choosing (HS-5 at the host); the hooks
            // stream is registered as usual.
            self.hooks = self.table.open().map_err(|e| e.to_string())?;
            let payload = crate::transcript::from_hex(&hex)?;
            encode_frame(StreamId::CONTROL, &payload, &mut out).map_err(|e| e.to_string())?;
            self.report(serde_json::json!({"event": "announced", "hex": hex}));
            return self.write_raw_frames(&out);
        }
        match self.b.hooks_stream {
            None => {
                self.hooks = self.table.announce().map_err(|e| e.to_string())?;
                let mut announcement = Vec::new();
                self.table.take_transmit(&mut announcement);
                out.extend(announcement);
            }
            Some(id) => {
                // Announce an id of the agent's choosing; register it where the table allows.
                let mut payload = vec![0x00];
                varint::encode_to_vec(id, &mut payload);
                encode_frame(StreamId::CONTROL, &payload, &mut out).map_err(|e| e.to_string())?;
                if let Some(sid) = StreamId::new(id) {
                    self.hooks = sid;
                }
            }
        }
        if self.b.data_before_request {
            encode_frame(self.hooks, b"hello", &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.second_announcement {
            encode_frame(StreamId::CONTROL, &[0x00, 0x04], &mut out).map_err(|e| e.to_string())?;
        }
        if self.b.odd_stream_data {
            encode_frame(StreamId::new(5).expect("positive"), b"hi", &mut out)
                .map_err(|e| e.to_string())?;
        }
        let hooks = self.hooks.get();
        self.report(serde_json::json!({"event": "announced", "hooks": hooks}));
        if self.b.before_announce_hex.is_some() {
            // What comes before may not be valid frames: written as it is.
            self.schedule_crash_after_announce();
            return self.write_raw_frames(&out);
        }
        self.schedule_crash_after_announce();
        self.write(&out)
    }

    fn schedule_crash_after_announce(&mut self) {
        if let Some(Crash {
            when: CrashWhen::AfterAnnounce(ms),
            exit,
        }) = self.b.crash
        {
            self.timers.push((
                Instant::now() + Duration::from_millis(ms),
                Timer::Crash(exit),
            ));
        }
    }

    fn drain(&mut self, id: StreamId) -> Vec<u8> {
        let mut all = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        while let Ok(Read::Data(n)) = self.table.read(id, &mut buf) {
            all.extend_from_slice(&buf[..n]);
        }
        all
    }

    fn handle_events(&mut self) -> Result<(), AgentEnd> {
        while let Some(event) = self.table.poll_event() {
            match event {
                Event::Data { stream_id, .. } if stream_id == self.hooks => {
                    let bytes = self.drain(stream_id);
                    self.on_hooks_bytes(&bytes)?;
                }
                Event::Data { stream_id, .. }
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) =>
                {
                    let bytes = self.drain(stream_id);
                    self.on_api_bytes(&bytes)?;
                }
                Event::Finished { stream_id } | Event::Reset { stream_id, .. } => {
                    let _ = self.drain(stream_id);
                    self.report(serde_json::json!({"event": "closed", "stream": stream_id.get()}));
                    // STREAM-11: close this side too.
                    let _ = self.table.close(stream_id);
                    if self.api.as_ref().is_some_and(|a| a.stream == stream_id) {
                        self.fail_api_calls("the API stream ended")?;
                    }
                    if stream_id == self.hooks {
                        self.hooks_broken = true;
                    }
                }
                Event::Discarded {
                    stream_id,
                    reason: DiscardReason::ClosedLocally | DiscardReason::ClosedByPeer,
                    ..
                } if self.b.closed_stream_data_is_fatal => {
                    return Err(AgentEnd::Failed(format!(
                        "data on stream {stream_id}, which was closed"
                    )));
                }
                _ => {}
            }
        }
        Ok(())
    }
}
