//! The plugin process: how it is launched ([`PluginCommand`], [`Launch`]: standard error
//! captured, standard output discarded, a standard input pipe for TRANS-5 if asked, every
//! process it starts marked with [`TOKEN_VAR`]), the reader thread that turns its descriptor 4
//! into chunks on a channel, the case's deadline and timeout scale, its exit, and finding and
//! killing what it left behind (TRANS-11).

use std::collections::{BTreeSet, VecDeque};
use std::ffi::OsString;
use std::fs::File;
use std::io::Read as _;
use std::path::PathBuf;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rpcplugin_codec::frame::FrameAssembler;
use rpcplugin_codec::rpc::ClientCodec;
use rpcplugin_codec::stream::{Role, StreamTable};
use rpcplugin_codec::trace::Tracer;
use rpcplugin_runtime::process::{launch, Exit, LaunchError, LaunchOptions, Output, Stdin};

use super::{ApiAnswer, Input, PluginUnderTest, CONFIGURATION};
use crate::transcript::Recorder;

/// How much of the plugin's standard error is kept.
const STDERR_KEEP: usize = 64 * 1024;
/// The environment variable that marks the plugin and every process it starts, so that the
/// harness can find what the plugin left behind (TRANS-11).
pub const TOKEN_VAR: &str = "RPCPLUGIN_CONFORMANCE_TOKEN";

/// The plugin executable and its arguments.
#[derive(Debug, Clone)]
pub struct PluginCommand {
    /// Path of the executable.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
}

impl PluginCommand {
    /// The program and its arguments as text, for reports.
    pub fn display(&self) -> Vec<String> {
        let mut v = vec![self.program.display().to_string()];
        v.extend(self.args.iter().map(|a| a.to_string_lossy().into_owned()));
        v
    }
}

/// How a case wants the plugin launched.
#[derive(Debug, Clone, Copy)]
pub struct Launch {
    /// Multiplies every wait the case asks for.
    pub scale: f64,
    /// The case's own deadline, from the launch (already scaled).
    pub case_timeout: Duration,
    /// Give the plugin a standard input pipe that the harness holds open and never writes,
    /// instead of `/dev/null` (TRANS-5).
    pub stdin_pipe: bool,
    /// The run's seed, for cases that choose splits or orders at random.
    pub seed: u64,
}

impl PluginUnderTest {
    /// Launches the plugin with its standard error captured and its standard output
    /// discarded. Every wait of the driver ends at the latest `launch.case_timeout` from now.
    pub fn launch(
        command: &PluginCommand,
        launch_spec: &Launch,
    ) -> Result<PluginUnderTest, LaunchError> {
        let recorder = Recorder::new();
        let token = format!(
            "{}-{}-{}",
            std::process::id(),
            recorder.start().elapsed().as_nanos(),
            next_launch()
        );
        let mut opts = LaunchOptions::new(&command.program);
        opts.args = command.args.clone();
        opts.stdout = Output::Null;
        opts.stderr = Output::Capture;
        opts.env = vec![(TOKEN_VAR.into(), token.clone().into())];
        opts.stdin = if launch_spec.stdin_pipe {
            Stdin::Pipe
        } else {
            Stdin::Null
        };
        let mut launched = launch(&opts)?;
        let stderr = match launched.process.take_stderr() {
            Some(pipe) => crate::transcript::keep_output(pipe, STDERR_KEEP),
            None => Arc::new(Mutex::new(Vec::new())),
        };
        let (tx, rx) = channel();
        let mut reader = File::from(launched.reader);
        let record = recorder.clone();
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        record.eof();
                        let _ = tx.send(Input::Eof);
                        break;
                    }
                    Ok(n) => {
                        record.received(&buf[..n]);
                        if tx.send(Input::Data(buf[..n].to_vec())).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Input::Error(e.to_string()));
                        break;
                    }
                }
            }
        });
        let stdin = launched.process.take_stdin();
        Ok(PluginUnderTest {
            process: launched.process,
            writer: Some(File::from(launched.writer)),
            stdin,
            rx,
            eof: false,
            stderr,
            scale: launch_spec.scale,
            case_deadline: Instant::now() + launch_spec.case_timeout,
            token,
            rng: launch_spec.seed ^ 0x9e37_79b9_7f4a_7c15,
            recorder,
            plugin_trace: Tracer::new(Role::Plugin),
            host_trace: Tracer::new(Role::Host),
            notes: Vec::new(),
            violations: Vec::new(),
            host_wrote: BTreeSet::new(),
            host_requests: Default::default(),
            refused_ids: BTreeSet::new(),
            stale_ids: BTreeSet::new(),
            last_api_id: 0,
            used_refused: BTreeSet::new(),
            violations_reported: 0,
            assembler: FrameAssembler::new(),
            frames: VecDeque::new(),
            table: StreamTable::new(Role::Host),
            hooks: None,
            hooks_client: ClientCodec::new(),
            unclaimed: VecDeque::new(),
            hooks_error: None,
            apis: Vec::new(),
            api_calls: Vec::new(),
            api_answer: ApiAnswer::Configuration(CONFIGURATION.to_vec()),
            streams_seen: Vec::new(),
            streams_opened: Vec::new(),
        })
    }

    /// The plugin's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The recorder of this exchange.
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// What the plugin wrote to its standard error so far (the first 64 KiB).
    pub fn stderr(&self) -> String {
        let kept = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&kept).into_owned()
    }

    /// Whether the case's deadline has passed.
    pub fn expired(&self) -> bool {
        Instant::now() >= self.case_deadline
    }

    /// `within`, scaled, from now, but no later than the case's deadline.
    pub fn deadline(&self, within: Duration) -> Instant {
        (Instant::now() + within.mul_f64(self.scale)).min(self.case_deadline)
    }

    /// `d` multiplied by the timeout scale.
    pub fn scaled(&self, d: Duration) -> Duration {
        d.mul_f64(self.scale)
    }

    /// A pseudo-random number from the run's seed (xorshift64*): the same seed gives the same
    /// sequence.
    pub fn random(&mut self) -> u64 {
        let mut x = self.rng.max(1);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Waits at most `within` (scaled) for the plugin process to exit.
    pub fn wait_exit(&mut self, within: Duration) -> Option<Exit> {
        let wait = self
            .deadline(within)
            .saturating_duration_since(Instant::now());
        let exit = self.process.wait_timeout(wait).ok().flatten();
        if let Some(exit) = exit {
            self.recorder.exit(exit);
        }
        exit
    }

    /// The process's exit, if it has exited.
    pub fn try_exit(&mut self) -> Option<Exit> {
        let exit = self.process.try_wait().ok().flatten();
        if let Some(exit) = exit {
            self.recorder.exit(exit);
        }
        exit
    }

    /// Processes still running that carry this launch's token in their environment: the
    /// plugin's descendants (and the plugin itself while it runs). Linux only: elsewhere the
    /// list is empty.
    pub fn marked_processes(&self) -> Vec<(u32, String)> {
        processes_with(&format!("{TOKEN_VAR}={}", self.token))
    }

    /// Kills every process [`PluginUnderTest::marked_processes`] finds.
    pub fn kill_marked(&self) {
        for (pid, _) in self.marked_processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }

    /// Kills the plugin (if it still runs) and whatever it left behind, and reaps it.
    pub fn shut_down(&mut self) {
        self.writer = None;
        self.stdin = None;
        if self.try_exit().is_none() {
            let _ = self.process.kill();
        }
        self.kill_marked();
    }
}

impl Drop for PluginUnderTest {
    fn drop(&mut self) {
        self.shut_down();
    }
}

/// Processes still running whose environment holds the entry `needle` (`NAME=value`), with
/// their command lines. Linux only: elsewhere the list is empty.
pub fn processes_with(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for (pid, dir) in proc_entries() {
        let Ok(environ) = std::fs::read(dir.join("environ")) else {
            continue;
        };
        if environ.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
            // A zombie has an empty environ, so everything found here is alive.
            let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            found.push((pid, cmdline.trim().to_string()));
        }
    }
    found
}

/// Every process in `/proc`: its pid and its directory (none where there is no `/proc`).
pub(crate) fn proc_entries() -> impl Iterator<Item = (u32, std::path::PathBuf)> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            Some((pid, entry.path()))
        })
}

/// A counter that makes every launch's token unique within this process.
fn next_launch() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}
