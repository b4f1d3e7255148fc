//! Raw access to the plugin's pipes: writing any bytes to its descriptor 3 (in one write, in
//! pieces, or bounded in time from another thread, for a plugin that stops reading), and
//! reading what it writes to its descriptor 4 as chunks ([`Input`]) or as whole frames decoded
//! with the codec's frame decoder ([`RawEnd`] when none comes). Everything written and read
//! goes through the observer; a write the plugin does not take fails with LIFE-21.

use std::io::Write as _;
use std::sync::mpsc::{channel, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use rpcplugin_codec::frame::{Frame, FrameError, StreamId};
use rpcplugin_codec::stream::Event;

use super::PluginUnderTest;
use crate::outcome::Outcome;
use rpcplugin_codec::req;

/// What the reader thread saw on the plugin's output pipe.
#[derive(Debug)]
pub enum Input {
    /// Bytes, as one read returned them.
    Data(Vec<u8>),
    /// End of file: the plugin (and everything sharing its descriptor 4) closed it.
    Eof,
    /// Reading failed.
    Error(String),
    /// Nothing arrived before the deadline.
    TimedOut,
}

/// How reading raw frames ended without a frame.
#[derive(Debug)]
pub enum RawEnd {
    /// Nothing (or only part of a frame) arrived before the deadline.
    TimedOut,
    /// The plugin closed its output.
    Eof,
    /// The plugin's output is not a sequence of valid frames.
    Malformed(FrameError),
    /// Reading failed.
    Error(String),
}

impl PluginUnderTest {
    /// Writes `bytes` to the plugin's descriptor 3 as one write.
    pub fn write_raw(&mut self, bytes: &[u8]) -> Result<(), String> {
        let writer = self
            .writer
            .as_mut()
            .ok_or_else(|| "the harness already closed its pipe".to_string())?;
        let result = writer
            .write_all(bytes)
            .map_err(|e| format!("writing to the plugin's descriptor 3 failed: {e}"));
        self.observe_sent(bytes);
        result
    }

    /// Writes `bytes` to the plugin's descriptor 3 as one write; a failed write (the plugin
    /// closed descriptor 3 or exited) fails the case with LIFE-21.
    pub fn send(&mut self, bytes: &[u8]) -> Result<(), Outcome> {
        self.write_raw(bytes).map_err(|e| self.lost(e))
    }

    /// The failure for a write the plugin did not take.
    pub(super) fn lost(&mut self, what: String) -> Outcome {
        if self.writer.is_none() {
            return Outcome::error(what);
        }
        let exit = self.wait_exit(Duration::from_millis(200));
        let got = match exit {
            Some(exit) => format!("{what}; the process {exit}"),
            None => what,
        };
        self.fail(
            req!("LIFE-21"),
            "the plugin keeps reading its descriptor 3 for as long as the connection has not ended",
            &got,
        )
    }

    /// Writes `frame` to the plugin's descriptor 3.
    pub fn write_frame(&mut self, stream_id: StreamId, payload: &[u8]) -> Result<(), String> {
        let mut out = Vec::new();
        rpcplugin_codec::frame::encode_frame(stream_id, payload, &mut out)
            .map_err(|e| e.to_string())?;
        self.write_raw(&out)
    }

    /// Reads what the plugin writes next, waiting until `deadline`.
    pub fn read_raw(&mut self, deadline: Instant) -> Input {
        if self.eof {
            return Input::Eof;
        }
        let wait = deadline.saturating_duration_since(Instant::now());
        match self.rx.recv_timeout(wait) {
            Ok(Input::Eof) | Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                self.observe_eof();
                Input::Eof
            }
            Ok(Input::Data(bytes)) => {
                self.observe_received(&bytes);
                Input::Data(bytes)
            }
            Ok(input) => input,
            Err(RecvTimeoutError::Timeout) => Input::TimedOut,
        }
    }

    /// Reads and observes whatever the plugin has written already, without waiting.
    pub fn drain_ready(&mut self) {
        while let Input::Data(bytes) = self.read_raw(Instant::now()) {
            self.feed_protocol(&bytes);
        }
    }

    fn feed_protocol(&mut self, bytes: &[u8]) {
        let _ = self.table.receive(bytes);
        while let Some(event) = self.table.poll_event() {
            if let Event::HandshakeComplete { hooks } = event {
                self.hooks = Some(hooks);
            }
        }
    }

    /// The next whole frame the plugin sends, decoded with the codec's frame decoder, waiting
    /// at most `within` (scaled).
    pub fn next_frame(&mut self, within: Duration) -> Result<Frame, RawEnd> {
        let deadline = self.deadline(within);
        loop {
            if let Some(frame) = self.frames.pop_front() {
                return Ok(frame);
            }
            match self.read_raw(deadline) {
                Input::Data(bytes) => {
                    let mut out = Vec::new();
                    let pushed = self.assembler.push(&bytes, &mut out);
                    self.frames.extend(out);
                    if let Err(e) = pushed {
                        if let Some(frame) = self.frames.pop_front() {
                            return Ok(frame);
                        }
                        return Err(RawEnd::Malformed(e));
                    }
                }
                Input::Eof => {
                    if let Err(e) = self.assembler.finish() {
                        return Err(RawEnd::Malformed(e));
                    }
                    return Err(RawEnd::Eof);
                }
                Input::Error(e) => return Err(RawEnd::Error(e)),
                Input::TimedOut => return Err(RawEnd::TimedOut),
            }
        }
    }

    /// Reads the plugin's output (keeping the protocol state up to date) until it closes it,
    /// for at most `within` (scaled). True when end of file was seen.
    pub fn wait_eof(&mut self, within: Duration) -> bool {
        let deadline = self.deadline(within);
        loop {
            match self.read_raw(deadline) {
                Input::Data(bytes) => self.feed_protocol(&bytes),
                Input::Eof | Input::Error(_) => return true,
                Input::TimedOut => return false,
            }
        }
    }

    /// Whether the plugin has closed its output (as far as the harness has read).
    pub fn output_closed(&self) -> bool {
        self.eof
    }

    /// Closes the harness's end of the host-to-plugin pipe: the plugin reads end of file.
    pub fn close_input(&mut self) {
        if self.writer.take().is_some() {
            self.recorder.closed_input();
        }
    }

    /// Writes `bytes` to the plugin's descriptor 3 from another thread, waiting at most
    /// `within` (scaled) for the write to complete, so that a plugin that stops reading cannot
    /// block the harness. After a time out the pipe is left to the writing thread (it ends
    /// when the plugin is killed) and the harness writes nothing more.
    pub fn write_raw_bounded(&mut self, bytes: Vec<u8>, within: Duration) -> Result<(), String> {
        let deadline = self.deadline(within);
        let len = bytes.len();
        let mut writer = self
            .writer
            .as_ref()
            .ok_or_else(|| "the harness already closed its pipe".to_string())?
            .try_clone()
            .map_err(|e| format!("duplicating the pipe failed: {e}"))?;
        self.observe_sent(&bytes);
        let (tx, rx) = channel();
        thread::spawn(move || {
            let _ = tx.send(writer.write_all(&bytes));
        });
        let wait = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(wait) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("writing to the plugin's descriptor 3 failed: {e}")),
            Err(_) => {
                self.writer = None;
                Err(format!(
                    "the plugin did not read a {len}-byte write within {:?}",
                    self.scaled(within)
                ))
            }
        }
    }

    /// Writes `bytes` in pieces cut at `cuts` (offsets in increasing order), one write each.
    pub fn write_in_pieces(&mut self, bytes: &[u8], cuts: &[usize]) -> Result<(), Outcome> {
        let mut at = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            let cut = cut.clamp(at, bytes.len());
            if cut > at {
                self.send(&bytes[at..cut])?;
                at = cut;
            }
        }
        Ok(())
    }
}
