//! Deliberately broken hosts, for the conformance harness's self-tests (test only).
//!
//! A [`Mutant`] makes a [`Supervisor`](crate::supervisor::Supervisor), or the
//! [driver](crate::driver) around it, break exactly one rule of `spec/01-transport.md` to
//! `spec/06-lifecycle.md`, so that the harness can show that the case meant to catch that rule
//! fails. It is chosen with [`SupervisorOptions::mutant`] and [`DriverOptions::mutant`] (or
//! `rpcplugin-reference-host driver --mutant NAME`); the default, `None`, is the conforming
//! host, and no mutant changes anything else.
//!
//! Half of the mutants change one decision of the supervisor. Three concern the bytes on the wire
//! (HS-9, HS-8 with STREAM-14, STREAM-2 with RPC-13), which the codec gets right by
//! construction; for them the supervisor puts a small frame-level relay between the plugin's
//! pipes and its connection, which misbehaves as the mutant says and passes
//! everything else through unchanged. One more (STREAM-15 with STREAM-5) uses that relay only
//! to watch the plugin's frames: the supervisor gives the connection no per-stream buffer
//! limit, and the relay connects on it every stream the plugin sends data on, which nobody
//! then reads. Two concern what the plugin process inherits (TRANS-4, TRANS-6): the
//! supervisor leaves a descriptor inheritable across the launch
//! (`LeakedDescriptor`), or asks the runtime for [`Stdin::Inherit`]. One cuts the
//! configuration the supervisor's `LoadPluginConfiguration` answers with
//! (`clip_configuration`, RPC-18). Four change the driver: which bundles it launches
//! (`lenient_bundle`, LIFE-2, LIFE-3) and which plugins it still knows when a stop comes
//! (LIFE-20). The codec is not touched, and the runtime only offers what a caller asks for.
//!
//! [`SupervisorOptions::mutant`]: crate::supervisor::SupervisorOptions::mutant
//! [`DriverOptions::mutant`]: crate::driver::DriverOptions::mutant
//! [`Stdin::Inherit`]: rpcplugin_runtime::process::Stdin::Inherit

use std::any::Any;
use std::collections::HashSet;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::lifecycle::{
    Action, CrashCause, Event, Exit, Lifecycle, Settings, StartFailure, State,
};
use rpcplugin_runtime::process::{LaunchOptions, Stdin};

use crate::supervisor::seams::{ActionContext, ConnectionSlot, Delivery, Seams, Seen, Step};
use crate::supervisor::Conforming;

use nix::fcntl::{fcntl, FcntlArg};
use rpcplugin_codec::frame::{decode_frame, StreamId, MIN_MAX_PAYLOAD};
use rpcplugin_codec::stream::Limits;
use rpcplugin_codec::varint;
use rpcplugin_runtime::connection::Stream;

use crate::bundle::{Backend, Bundle, BundleError, Manifest, ManifestError, MANIFEST_FILE};

/// One deliberately broken behaviour of the reference host (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mutant {
    /// A crashed plugin is never relaunched: the supervisor stays in Backoff until a stop
    /// (LIFE-8, LIFE-12).
    NeverRestarts,
    /// A crashed plugin is relaunched at once, with no restart delay (LIFE-8).
    RestartsWithoutDelay,
    /// A start waits for the announcement for ever (HS-4).
    IgnoresStartTimeout,
    /// A stop, and a failed start, leave the plugin process behind: not killed, not reaped
    /// (LIFE-4, LIFE-18, LIFE-19).
    LeavesOrphans,
    /// The host stops reading the connection when a frame arrives on stream 0 after the
    /// handshake, as the seed does (HS-8, STREAM-14).
    HangsOnStream0,
    /// The host accepts an announcement with a bad control byte, trailing bytes, or a hooks
    /// stream id that is zero, odd or negative (HS-9), and talks to the plugin on that id.
    AcceptsBadAnnouncement,
    /// A relaunched plugin is not activated again (LIFE-11).
    NoReactivation,
    /// A stop kills the plugin (`SIGKILL`) at once: no `OnDeactivate`, no end of the connection
    /// first (LIFE-16, LIFE-17).
    KillsWithoutDeactivate,
    /// The host opens its API streams with even ids (STREAM-2), which it passes to
    /// `OnActivate` (RPC-13).
    EvenApiStream,
    /// A stop kills the plugin as soon as it has closed the pipes, with no grace period
    /// (LIFE-17).
    NoStopGrace,
    /// The host opens the bundle's manifest without close-on-exec and holds it open while it
    /// launches the plugin, which inherits it as a descriptor above 4 (TRANS-4).
    LeaksDescriptor,
    /// The plugin's standard input is the host's own, not `/dev/null` (TRANS-6).
    InheritsStdin,
    /// A start waits for the announcement for at most [`SHORT_START_TIMEOUT`], whatever its
    /// start timeout (HS-4).
    ShortStartTimeout,
    /// The end of the plugin's output before the announcement (the plugin exited) goes
    /// unnoticed: the start fails only when the start timeout expires, as the seed's does
    /// (HS-6).
    WaitsOutEarlyExit,
    /// The driver forgets a plugin whose start failed: a stop of it is refused with "no plugin
    /// named" (LIFE-20).
    ForgetsFailedStart,
    /// The driver forgets a plugin once a stop has stopped it: a second stop is refused with
    /// "no plugin named" (LIFE-20).
    ForgetsStoppedPlugin,
    /// A stop during the restart delay returns at once, but the pending relaunch still comes:
    /// the plugin is launched once the delay has run out, after the stop (LIFE-22).
    StopLeavesRelaunch,
    /// A start that a stop cancelled is still answered as a success (LIFE-23).
    StartSurvivesStop,
    /// A bundle without `plugin.json`, or whose manifest is not an object or has no usable
    /// `backend.executable`, is launched anyway: the first executable file of its directory
    /// (LIFE-2).
    GuessesExecutable,
    /// `backend.executable` is joined to the bundle directory unchecked: an absolute path, or
    /// one with a `..` component, launches an executable outside the bundle (LIFE-3).
    EscapesBundle,
    /// The host's connection has no per-stream buffer limit (a limit of `usize::MAX` bytes,
    /// STREAM-15), and the host connects every stream the plugin sends data on, instead of
    /// discarding data for streams it has not connected (STREAM-5), and never reads them: a
    /// plugin that floods a stream nobody reads makes the host's memory grow without bound.
    UnboundedBuffering,
    /// A configuration whose JSON text does not fit one gob message (GOB-16) is cut to fit,
    /// instead of being answered with an error response: the plugin gets a truncated text
    /// that is not JSON (RPC-18).
    ClipsConfiguration,
    /// The host passes on the descriptors it inherited itself without close-on-exec, as the
    /// seed (Go's `os/exec`) does: the binary does not close them at startup (TRANS-4).
    PassesInheritedDescriptors,
    /// The plugin stays in the host's process group, as the seed's does: a Ctrl-C at the
    /// host's terminal kills it too (TRANS-13).
    SharedProcessGroup,
    /// After a start that failed at the handshake, the host launches the plugin again every
    /// second in the background, as the seed does (LIFE-5).
    RelaunchesAfterFailedStart,
    /// After a start that failed at the handshake, the host ends the connection and waits for
    /// the plugin to exit by itself, without killing it, as the seed does; the start fails at
    /// once (LIFE-4).
    WaitsForFailedPlugin,
    /// The configuration is decoded and encoded again before it is served: members sorted,
    /// numbers rewritten, an error response for what does not fit a float, as the seed's
    /// `json.Marshal` does (RPC-18).
    ReencodesConfiguration,
    /// A relaunched plugin is activated again with the configuration of the first activation,
    /// not the last (LIFE-11).
    ReactivatesWithFirstConfiguration,
    /// After a crash, the host relaunches the plugin after the restart delay without waiting
    /// for the crashed process to be gone (LIFE-7).
    RelaunchesWhileAlive,
    /// The host's gob decoders have no message limit: a Length of 64 MiB is believed and the
    /// message buffered (GOB-15, GOB-19).
    NoGobLimit,
    /// The host takes the first frame of the plugin for the announcement, whatever its stream:
    /// a data frame before the announcement fails the start (STREAM-5, Table 4-2 H3).
    StrictBeforeAnnouncement,
    /// The host's API servers ignore the plugin's type definitions other than those of Go's
    /// usual ids (65, 66, 67): a request type defined under another id is an undefined type
    /// (GOB-6).
    AssumesGobIds,
    /// A gob error on an API stream ends the whole connection, not that stream only
    /// (GOB-18): where the host would close an API stream the plugin has not closed, the
    /// connection ends instead.
    EndsConnectionOnApiGobError,
    /// A start whose launch fails goes on as a crash would: Backoff, relaunches (LIFE-5).
    LaunchFailureIsACrash,
    /// The restart delay doubles after every failure in a row without a cap: no longest
    /// delay (LIFE-9).
    UncappedBackoff,
    /// The failures in a row never go back to zero, however long the plugin ran (LIFE-10).
    BackoffNeverResets,
    /// The plugin is started with the plugin's id as an argument after its name, as hosts
    /// that name a plugin's role on its command line do (TRANS-14).
    PassesArguments,
    /// The plugin starts with `SIGCHLD` and `SIGTERM` blocked, as from a host that blocks them
    /// in its threads to take them with `signalfd` and does not unblock them for the child
    /// (TRANS-15). Done by starting the plugin through `/usr/bin/env --block-signal`.
    BlocksSignals,
    /// The plugin starts with `SIGPIPE` ignored, as from a host whose runtime ignores it and
    /// does not restore it for the child (TRANS-16). Done through `/usr/bin/env
    /// --ignore-signal`.
    IgnoresSigpipe,
}

impl Mutant {
    /// Every mutant, in the order `--help` lists them.
    pub const ALL: [Mutant; 39] = [
        Mutant::NeverRestarts,
        Mutant::RestartsWithoutDelay,
        Mutant::IgnoresStartTimeout,
        Mutant::LeavesOrphans,
        Mutant::HangsOnStream0,
        Mutant::AcceptsBadAnnouncement,
        Mutant::NoReactivation,
        Mutant::KillsWithoutDeactivate,
        Mutant::EvenApiStream,
        Mutant::NoStopGrace,
        Mutant::LeaksDescriptor,
        Mutant::InheritsStdin,
        Mutant::ShortStartTimeout,
        Mutant::WaitsOutEarlyExit,
        Mutant::ForgetsFailedStart,
        Mutant::ForgetsStoppedPlugin,
        Mutant::StopLeavesRelaunch,
        Mutant::StartSurvivesStop,
        Mutant::GuessesExecutable,
        Mutant::EscapesBundle,
        Mutant::UnboundedBuffering,
        Mutant::ClipsConfiguration,
        Mutant::PassesInheritedDescriptors,
        Mutant::SharedProcessGroup,
        Mutant::RelaunchesAfterFailedStart,
        Mutant::WaitsForFailedPlugin,
        Mutant::ReencodesConfiguration,
        Mutant::ReactivatesWithFirstConfiguration,
        Mutant::RelaunchesWhileAlive,
        Mutant::NoGobLimit,
        Mutant::StrictBeforeAnnouncement,
        Mutant::AssumesGobIds,
        Mutant::EndsConnectionOnApiGobError,
        Mutant::LaunchFailureIsACrash,
        Mutant::UncappedBackoff,
        Mutant::BackoffNeverResets,
        Mutant::PassesArguments,
        Mutant::BlocksSignals,
        Mutant::IgnoresSigpipe,
    ];

    /// The mutant's name on the command line (`never-restarts`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Mutant::NeverRestarts => "never-restarts",
            Mutant::RestartsWithoutDelay => "restarts-without-delay",
            Mutant::IgnoresStartTimeout => "ignores-start-timeout",
            Mutant::LeavesOrphans => "leaves-orphans",
            Mutant::HangsOnStream0 => "hangs-on-stream-0",
            Mutant::AcceptsBadAnnouncement => "accepts-bad-announcement",
            Mutant::NoReactivation => "no-reactivation",
            Mutant::KillsWithoutDeactivate => "kills-without-deactivate",
            Mutant::EvenApiStream => "even-api-stream",
            Mutant::NoStopGrace => "no-stop-grace",
            Mutant::LeaksDescriptor => "leaks-descriptor",
            Mutant::InheritsStdin => "inherits-stdin",
            Mutant::ShortStartTimeout => "short-start-timeout",
            Mutant::WaitsOutEarlyExit => "waits-out-early-exit",
            Mutant::ForgetsFailedStart => "forgets-failed-start",
            Mutant::ForgetsStoppedPlugin => "forgets-stopped-plugin",
            Mutant::StopLeavesRelaunch => "stop-leaves-relaunch",
            Mutant::StartSurvivesStop => "start-survives-stop",
            Mutant::GuessesExecutable => "guesses-executable",
            Mutant::EscapesBundle => "escapes-bundle",
            Mutant::UnboundedBuffering => "unbounded-buffering",
            Mutant::ClipsConfiguration => "clips-configuration",
            Mutant::PassesInheritedDescriptors => "passes-inherited-descriptors",
            Mutant::SharedProcessGroup => "shared-process-group",
            Mutant::RelaunchesAfterFailedStart => "relaunches-after-failed-start",
            Mutant::WaitsForFailedPlugin => "waits-for-failed-plugin",
            Mutant::ReencodesConfiguration => "reencodes-configuration",
            Mutant::ReactivatesWithFirstConfiguration => "reactivates-with-first-configuration",
            Mutant::RelaunchesWhileAlive => "relaunches-while-alive",
            Mutant::NoGobLimit => "no-gob-limit",
            Mutant::StrictBeforeAnnouncement => "strict-before-announcement",
            Mutant::AssumesGobIds => "assumes-gob-ids",
            Mutant::EndsConnectionOnApiGobError => "ends-connection-on-api-gob-error",
            Mutant::LaunchFailureIsACrash => "launch-failure-is-a-crash",
            Mutant::UncappedBackoff => "uncapped-backoff",
            Mutant::BackoffNeverResets => "backoff-never-resets",
            Mutant::PassesArguments => "passes-arguments",
            Mutant::BlocksSignals => "blocks-signals",
            Mutant::IgnoresSigpipe => "ignores-sigpipe",
        }
    }

    /// The mutant named `name`, if there is one.
    pub fn from_name(name: &str) -> Option<Mutant> {
        Mutant::ALL.into_iter().find(|m| m.name() == name)
    }

    /// The requirements the mutant breaks.
    pub fn breaks(self) -> &'static [&'static str] {
        match self {
            Mutant::NeverRestarts => &["LIFE-8", "LIFE-12"],
            Mutant::RestartsWithoutDelay => &["LIFE-8"],
            Mutant::IgnoresStartTimeout => &["HS-4"],
            Mutant::LeavesOrphans => &["LIFE-4", "LIFE-18", "LIFE-19"],
            Mutant::HangsOnStream0 => &["HS-8", "STREAM-14"],
            Mutant::AcceptsBadAnnouncement => &["HS-9"],
            Mutant::NoReactivation => &["LIFE-11"],
            Mutant::KillsWithoutDeactivate => &["LIFE-16", "LIFE-17"],
            Mutant::EvenApiStream => &["STREAM-2", "RPC-13"],
            Mutant::NoStopGrace => &["LIFE-17"],
            Mutant::LeaksDescriptor => &["TRANS-4"],
            Mutant::InheritsStdin => &["TRANS-6"],
            Mutant::ShortStartTimeout => &["HS-4"],
            Mutant::WaitsOutEarlyExit => &["HS-6"],
            Mutant::ForgetsFailedStart | Mutant::ForgetsStoppedPlugin => &["LIFE-20"],
            Mutant::StopLeavesRelaunch => &["LIFE-22"],
            Mutant::StartSurvivesStop => &["LIFE-23"],
            Mutant::GuessesExecutable => &["LIFE-2"],
            Mutant::EscapesBundle => &["LIFE-3"],
            Mutant::UnboundedBuffering => &["STREAM-15", "STREAM-5"],
            Mutant::ClipsConfiguration => &["RPC-18"],
            Mutant::PassesInheritedDescriptors => &["TRANS-4"],
            Mutant::SharedProcessGroup => &["TRANS-13"],
            Mutant::RelaunchesAfterFailedStart => &["LIFE-5"],
            Mutant::WaitsForFailedPlugin => &["LIFE-4"],
            Mutant::ReencodesConfiguration => &["RPC-18"],
            Mutant::ReactivatesWithFirstConfiguration => &["LIFE-11"],
            Mutant::RelaunchesWhileAlive => &["LIFE-7"],
            Mutant::NoGobLimit => &["GOB-15", "GOB-19"],
            Mutant::StrictBeforeAnnouncement => &["STREAM-5"],
            Mutant::AssumesGobIds => &["GOB-6"],
            Mutant::EndsConnectionOnApiGobError => &["GOB-18"],
            Mutant::LaunchFailureIsACrash => &["LIFE-5"],
            Mutant::UncappedBackoff => &["LIFE-9"],
            Mutant::BackoffNeverResets => &["LIFE-10"],
            Mutant::PassesArguments => &["TRANS-14"],
            Mutant::BlocksSignals => &["TRANS-15"],
            Mutant::IgnoresSigpipe => &["TRANS-16"],
        }
    }

    /// What the mutant does wrong, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            Mutant::NeverRestarts => "a crashed plugin is never relaunched",
            Mutant::RestartsWithoutDelay => "a crashed plugin is relaunched at once, no delay",
            Mutant::IgnoresStartTimeout => "a start waits for the announcement for ever",
            Mutant::LeavesOrphans => {
                "a stop or a failed start neither kills nor reaps the plugin process"
            }
            Mutant::HangsOnStream0 => {
                "stops reading the connection at a stream-0 frame after the handshake"
            }
            Mutant::AcceptsBadAnnouncement => {
                "accepts a bad control byte, trailing bytes, or a zero, odd or negative hooks id"
            }
            Mutant::NoReactivation => "a relaunched plugin is not activated again",
            Mutant::KillsWithoutDeactivate => {
                "a stop sends SIGKILL at once: no OnDeactivate, no closing of the pipes first"
            }
            Mutant::EvenApiStream => "API streams get even ids, passed to OnActivate",
            Mutant::NoStopGrace => "a stop kills the plugin right after closing the pipes",
            Mutant::LeaksDescriptor => {
                "the plugin inherits the bundle's manifest, opened without close-on-exec"
            }
            Mutant::InheritsStdin => "the plugin's standard input is the host's, not /dev/null",
            Mutant::ShortStartTimeout => {
                "a start waits at most 250 ms for the announcement, whatever its timeout"
            }
            Mutant::WaitsOutEarlyExit => {
                "a plugin that exits before announcing fails the start only at the timeout"
            }
            Mutant::ForgetsFailedStart => {
                "forgets a plugin whose start failed: a stop of it is refused"
            }
            Mutant::ForgetsStoppedPlugin => "forgets a stopped plugin: a second stop is refused",
            Mutant::StopLeavesRelaunch => {
                "a stop during the restart delay returns, but the relaunch still comes after it"
            }
            Mutant::StartSurvivesStop => "answers a start that a stop cancelled as a success",
            Mutant::GuessesExecutable => {
                "launches a bundle with no usable manifest: its first executable file"
            }
            Mutant::EscapesBundle => {
                "launches an absolute backend.executable, or one with a .. component"
            }
            Mutant::UnboundedBuffering => {
                "connects each stream the plugin writes on and buffers it unread, without limit"
            }
            Mutant::ClipsConfiguration => {
                "cuts a configuration too long for one gob message to fit, sending broken JSON"
            }
            Mutant::PassesInheritedDescriptors => {
                "passes the descriptors it inherited itself on to the plugin, as the seed"
            }
            Mutant::SharedProcessGroup => {
                "leaves the plugin in the host's process group, as the seed: Ctrl-C kills it too"
            }
            Mutant::RelaunchesAfterFailedStart => {
                "relaunches the plugin every second after a failed start, as the seed"
            }
            Mutant::WaitsForFailedPlugin => {
                "after a failed start, waits for the plugin to exit instead of killing it"
            }
            Mutant::ReencodesConfiguration => {
                "decodes and re-encodes the configuration (sorted keys, rewritten numbers)"
            }
            Mutant::ReactivatesWithFirstConfiguration => {
                "re-activates a relaunched plugin with its first configuration, not its last"
            }
            Mutant::RelaunchesWhileAlive => {
                "relaunches after a crash while the crashed process is still running"
            }
            Mutant::NoGobLimit => "believes any gob message Length and buffers the message",
            Mutant::StrictBeforeAnnouncement => {
                "takes the plugin's first frame for the announcement, whatever its stream"
            }
            Mutant::AssumesGobIds => {
                "its API servers ignore type definitions beyond Go's usual ids 65, 66 and 67"
            }
            Mutant::EndsConnectionOnApiGobError => {
                "a gob error on an API stream ends the whole connection"
            }
            Mutant::LaunchFailureIsACrash => {
                "a start whose launch fails goes on with a backoff and relaunches, as a crash"
            }
            Mutant::UncappedBackoff => {
                "the restart delay doubles after each failure in a row, with no longest delay"
            }
            Mutant::BackoffNeverResets => {
                "the failures in a row never go back to zero, however long the plugin ran"
            }
            Mutant::PassesArguments => "starts the plugin with its id as a command-line argument",
            Mutant::BlocksSignals => "starts the plugin with SIGCHLD and SIGTERM blocked",
            Mutant::IgnoresSigpipe => "starts the plugin with SIGPIPE ignored",
        }
    }

    /// Whether the mutant needs the frame-level relay between the plugin and the connection.
    pub fn tampers_with_frames(self) -> bool {
        matches!(
            self,
            Mutant::HangsOnStream0
                | Mutant::AcceptsBadAnnouncement
                | Mutant::EvenApiStream
                | Mutant::UnboundedBuffering
                | Mutant::StrictBeforeAnnouncement
                | Mutant::AssumesGobIds
                | Mutant::EndsConnectionOnApiGobError
        )
    }

    /// The list of mutants, one per line: name, requirements, description.
    pub fn table() -> String {
        let mut out = String::new();
        for m in Mutant::ALL {
            out.push_str(&format!(
                "  {:<25} {:<25} {}\n",
                m.name(),
                m.breaks().join(", "),
                m.description()
            ));
        }
        out
    }
}

impl fmt::Display for Mutant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// [`Mutant::ReencodesConfiguration`]: the configuration as the seed's `LocalAPI` serves it,
/// decoded into a generic value and encoded again (members sorted by key, numbers as the
/// decoder kept them); an error text where the text does not decode (a number out of range).
pub(crate) fn reencode_configuration(config: &[u8]) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| e.to_string())?;
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// Launches `executable` in the background `times` times, the first after `first` and then every
/// second, and lets each launch run (with its pipes open) for a minute before it kills it:
/// the launches a supervisor no longer knows of. [`Mutant::RelaunchesAfterFailedStart`] (as
/// the seed's goroutine after a failed start: three, a second apart) and
/// [`Mutant::StopLeavesRelaunch`] (one, when the cancelled restart delay runs out).
pub(crate) fn launch_in_background(executable: std::path::PathBuf, first: Duration, times: u32) {
    std::thread::spawn(move || {
        let mut launched = Vec::new();
        for n in 0..times {
            std::thread::sleep(if n == 0 {
                first
            } else {
                Duration::from_secs(1)
            });
            let mut opts = rpcplugin_runtime::process::LaunchOptions::new(&executable);
            opts.stdout = rpcplugin_runtime::process::Output::Null;
            opts.stderr = rpcplugin_runtime::process::Output::Null;
            if let Ok(l) = rpcplugin_runtime::process::launch(&opts) {
                launched.push(l);
            }
        }
        std::thread::sleep(Duration::from_secs(60));
        drop(launched);
    });
}

/// [`Mutant::NoGobLimit`]: gob decoding limits without a message limit.
pub(crate) fn no_gob_limit() -> rpcplugin_codec::gob::DecodeLimits {
    rpcplugin_codec::gob::DecodeLimits {
        max_message: usize::MAX,
        ..rpcplugin_codec::gob::DecodeLimits::default()
    }
}

/// [`Mutant::ShortStartTimeout`]: the longest a start waits for the announcement.
pub const SHORT_START_TIMEOUT: Duration = Duration::from_millis(250);

/// [`Mutant::LeaksDescriptor`]: a descriptor of the bundle's manifest without close-on-exec,
/// so that a plugin launched while it is open inherits it (TRANS-4 broken). It is numbered
/// above 4, where the plugin's pipe ends do not replace it. Closed when dropped.
pub(crate) struct LeakedDescriptor(RawFd);

impl LeakedDescriptor {
    /// Opens `<dir>/plugin.json` for the leak; `None` if that fails.
    pub(crate) fn open(dir: &Path) -> Option<LeakedDescriptor> {
        let file = File::open(dir.join(MANIFEST_FILE)).ok()?;
        // F_DUPFD, unlike F_DUPFD_CLOEXEC, leaves close-on-exec cleared on the copy.
        let fd = fcntl(&file, FcntlArg::F_DUPFD(5)).ok()?;
        Some(LeakedDescriptor(fd))
    }
}

impl Drop for LeakedDescriptor {
    fn drop(&mut self) {
        let _ = nix::unistd::close(self.0);
    }
}

/// [`Mutant::GuessesExecutable`] and [`Mutant::EscapesBundle`]: the bundle that the broken
/// host launches from `dir` although [`Bundle::load`] refused it with `error`, if it launches
/// one. Its id is the directory's name.
pub(crate) fn lenient_bundle(mutant: Mutant, dir: &Path, error: &BundleError) -> Option<Bundle> {
    let escaping = match error.manifest_error() {
        Some(
            ManifestError::AbsoluteExecutable { path } | ManifestError::EscapingExecutable { path },
        ) => Some(path.clone()),
        _ => None,
    };
    let executable = match (mutant, error, escaping) {
        (Mutant::EscapesBundle, _, Some(path)) => path,
        (Mutant::GuessesExecutable, BundleError::NoManifest { .. }, _)
        | (Mutant::GuessesExecutable, BundleError::Manifest { .. }, None) => first_executable(dir)?,
        _ => return None,
    };
    let id = dir.file_name().map_or_else(
        || "plugin".to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Some(Bundle::new(
        dir,
        Manifest {
            id,
            backend: Backend { executable },
        },
    ))
}

/// The name of the first regular file with an execute permission bit in `dir`, by name.
fn first_executable(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| {
            std::fs::metadata(e.path())
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names.into_iter().next()
}

/// [`Mutant::EvenApiStream`]: the plugin sees the host's stream `n` (odd) as `n + EVEN_OFFSET`
/// (even), far above the plugin's own even ids.
pub(crate) const EVEN_OFFSET: i64 = 1_000_001;

/// [`Mutant::AcceptsBadAnnouncement`]: the even id under which the host sees a hooks stream
/// announced with a zero, odd or negative id.
const SUBSTITUTE_HOOKS: i64 = 1 << 40;

/// The id the plugin sees for the host's API stream `id` (the `OnActivate` argument).
pub(crate) fn api_id_for_plugin(mutant: Option<Mutant>, id: i64) -> i64 {
    if mutant == Some(Mutant::EvenApiStream) {
        id + EVEN_OFFSET
    } else {
        id
    }
}

/// [`Mutant::UnboundedBuffering`]: the host's limits, with no per-stream buffer limit to speak
/// of (the codec accepts any limit from [`MIN_STREAM_BUFFER`] up).
///
/// [`MIN_STREAM_BUFFER`]: rpcplugin_codec::stream::MIN_STREAM_BUFFER
pub(crate) fn unbounded_limits() -> Limits {
    Limits {
        stream_buffer: usize::MAX,
        ..Limits::default()
    }
}

/// The host's connection, for the relay of [`Mutant::UnboundedBuffering`] to connect streams
/// on: set by the supervisor once the connection exists.
/// How stream ids differ between the two sides of the relay.
#[derive(Debug, Default)]
struct IdMap {
    /// (id on the plugin's side, id on the host's side) of an accepted bad announcement.
    hooks: Option<(i64, i64)>,
    /// The streams the plugin has closed ([`Mutant::EndsConnectionOnApiGobError`]).
    closed_by_plugin: HashSet<i64>,
}

/// Puts a frame-level relay for `mutant` between the plugin's pipe ends (`reader`, `writer`,
/// from the launch) and the host's connection: returns the ends the connection is to use.
/// Closing either side's ends closes the other's, as with direct pipes (TRANS-8). `conn` is
/// where the supervisor puts the connection once it has one ([`Mutant::UnboundedBuffering`]
/// connects streams on it).
pub(crate) fn interpose(
    mutant: Mutant,
    reader: OwnedFd,
    writer: OwnedFd,
    conn: ConnectionSlot,
) -> io::Result<(OwnedFd, OwnedFd)> {
    let (host_reader, up) = io::pipe()?;
    let (down, host_writer) = io::pipe()?;
    let map = Arc::new(Mutex::new(IdMap::default()));
    // Dropped by the host-to-plugin relay when the host has closed its pipe: a hanging
    // plugin-to-host relay then lets go too.
    let (host_gone, host_gone_rx) = channel::<()>();
    let m = Arc::clone(&map);
    std::thread::Builder::new()
        .name("rpcplugin-mutant-up".into())
        .spawn(move || {
            let (mut from, mut to) = (File::from(reader), up);
            if relay_up(mutant, &mut from, &mut to, &m, &conn) {
                // Both ends stay open, unread, until the host has closed its pipe.
                let _ = host_gone_rx.recv();
            }
        })?;
    std::thread::Builder::new()
        .name("rpcplugin-mutant-down".into())
        .spawn(move || {
            relay_down(mutant, down, File::from(writer), &map);
            drop(host_gone);
        })?;
    Ok((OwnedFd::from(host_reader), OwnedFd::from(host_writer)))
}

fn lock(map: &Mutex<IdMap>) -> std::sync::MutexGuard<'_, IdMap> {
    map.lock().unwrap_or_else(|e| e.into_inner())
}

/// Appends a frame with any stream id, negative ones included.
fn put_frame(out: &mut Vec<u8>, id: i64, payload: &[u8]) {
    varint::encode_to_vec(id, out);
    varint::encode_to_vec(payload.len() as i64, out);
    out.extend_from_slice(payload);
}

/// Plugin to host. Returns true when it stopped reading on purpose ([`Mutant::HangsOnStream0`]),
/// holding both ends until the caller lets go.
fn relay_up(
    mutant: Mutant,
    from: &mut File,
    to: &mut impl Write,
    map: &Mutex<IdMap>,
    conn: &ConnectionSlot,
) -> bool {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut announced = false;
    // Mutant::UnboundedBuffering: the streams it connected (held, never read, until the
    // plugin's output ends), and the hooks stream, which the handshake connects.
    let mut unread = UnreadStreams::default();
    // After bytes the relay cannot frame, everything is passed on as it is: the host's own
    // decoder reports the connection error.
    let mut raw = false;
    // Mutant::AssumesGobIds: the gob messages of each API stream, as they assemble.
    let mut gob_filter: std::collections::HashMap<i64, GobFilter> = Default::default();
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => {
                let _ = to.write_all(&pending);
                return false;
            }
            Ok(n) => n,
        };
        if raw {
            if to.write_all(&buf[..n]).is_err() {
                return false;
            }
            continue;
        }
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        let mut hang = false;
        loop {
            match decode_frame(&pending[used..], MIN_MAX_PAYLOAD) {
                Ok(Some((frame, len))) => {
                    let id = frame.stream_id.get();
                    let payload = frame.payload;
                    used += len;
                    if id != 0 && !announced && mutant == Mutant::StrictBeforeAnnouncement {
                        // Broken on purpose: this frame is "the announcement" (a payload of
                        // one byte 01: a bad control byte), so the start fails (STREAM-5, H3).
                        announced = true;
                        put_frame(&mut out, 0, &[0x01]);
                        continue;
                    }
                    if id == 0 && !announced {
                        announced = true;
                        let payload = match mutant {
                            Mutant::AcceptsBadAnnouncement => fix_announcement(payload, map),
                            _ => payload.to_vec(),
                        };
                        unread.hooks = announced_hooks(&payload);
                        put_frame(&mut out, 0, &payload);
                        continue;
                    }
                    if id == 0 && mutant == Mutant::HangsOnStream0 {
                        hang = true;
                        break;
                    }
                    let id = match mutant {
                        Mutant::AcceptsBadAnnouncement => match lock(map).hooks {
                            Some((plugin, host)) if plugin == id => host,
                            _ => id,
                        },
                        Mutant::EvenApiStream if id > EVEN_OFFSET && id % 2 == 0 => {
                            id - EVEN_OFFSET
                        }
                        _ => id,
                    };
                    if mutant == Mutant::UnboundedBuffering && announced && !payload.is_empty() {
                        // Before the frame reaches the host: the connection buffers it.
                        unread.connect(id, conn);
                    }
                    if payload.is_empty() {
                        lock(map).closed_by_plugin.insert(id);
                    }
                    if mutant == Mutant::AssumesGobIds && id % 2 == 1 && !payload.is_empty() {
                        // An API stream (the host's odd ids): its definitions of other ids
                        // than Go's usual ones are dropped on the way (GOB-6 broken).
                        let kept = gob_filter.entry(id).or_default().push(payload);
                        if !kept.is_empty() {
                            put_frame(&mut out, id, &kept);
                        }
                        continue;
                    }
                    put_frame(&mut out, id, payload);
                }
                Ok(None) => break,
                Err(_) => {
                    out.extend_from_slice(&pending[used..]);
                    used = pending.len();
                    raw = true;
                    break;
                }
            }
        }
        pending.drain(..used);
        if to.write_all(&out).is_err() {
            return false;
        }
        if hang {
            // Stop reading: nothing more reaches the host, not even end-of-file.
            return true;
        }
    }
}

/// [`Mutant::AssumesGobIds`]: the gob messages of one API stream, as they assemble; the
/// definitions of other ids than 65, 66 and 67 are dropped, everything else is passed on.
#[derive(Default)]
struct GobFilter {
    pending: Vec<u8>,
    /// After bytes that are not gob messages, everything is passed on as it is.
    raw: bool,
}

impl GobFilter {
    /// Takes a frame's payload; returns what to pass on.
    fn push(&mut self, payload: &[u8]) -> Vec<u8> {
        if self.raw {
            return payload.to_vec();
        }
        self.pending.extend_from_slice(payload);
        let mut kept = Vec::new();
        while let Some((len, at)) = gob_uint(&self.pending) {
            let Some(end) = usize::try_from(len).ok().and_then(|l| at.checked_add(l)) else {
                self.raw = true;
                kept.append(&mut self.pending);
                break;
            };
            if end > self.pending.len() {
                break;
            }
            let body = &self.pending[at..end];
            // A definition starts with a negative type id: a gob int, zigzag on a gob uint.
            let defines = gob_uint(body)
                .map(|(u, _)| if u & 1 == 1 { Some((u >> 1) + 1) } else { None })
                .and_then(|d| d);
            let usual = matches!(defines, None | Some(65..=67));
            if usual {
                kept.extend_from_slice(&self.pending[..end]);
            }
            self.pending.drain(..end);
        }
        kept
    }
}

/// A gob uint at the start of `bytes`: its value and its length; `None` if incomplete or
/// malformed.
fn gob_uint(bytes: &[u8]) -> Option<(u64, usize)> {
    let first = *bytes.first()?;
    if first < 0x80 {
        return Some((u64::from(first), 1));
    }
    let n = usize::from(first.wrapping_neg());
    if n > 8 || bytes.len() < 1 + n {
        return None;
    }
    let value = bytes[1..=n]
        .iter()
        .fold(0u64, |v, b| (v << 8) | u64::from(*b));
    Some((value, 1 + n))
}

/// [`Mutant::UnboundedBuffering`]: the streams the broken host connected and never reads.
#[derive(Default)]
struct UnreadStreams {
    /// The announced hooks stream, which the handshake connects (and the host reads).
    hooks: Option<i64>,
    /// The stream ids already seen (connected, or not connectable).
    seen: HashSet<i64>,
    /// The streams connected: holding them keeps them open, their data buffered.
    held: Vec<Stream>,
}

impl UnreadStreams {
    /// Connects the plugin's stream `id` on the host's connection, unless it is the hooks
    /// stream or was seen before. Before the connection exists, the frame is discarded.
    fn connect(&mut self, id: i64, conn: &ConnectionSlot) {
        if id <= 0 || id % 2 != 0 || Some(id) == self.hooks || self.seen.contains(&id) {
            return;
        }
        let Some(conn) = conn.get().and_then(Weak::upgrade) else {
            return;
        };
        self.seen.insert(id);
        if let Some(stream) = StreamId::new(id).and_then(|id| conn.connect_stream(id).ok()) {
            self.held.push(stream);
        }
    }
}

/// The hooks stream id an announcement's payload names, if it names one.
fn announced_hooks(payload: &[u8]) -> Option<i64> {
    let (_, rest) = payload.split_first()?;
    varint::decode(rest).ok().map(|(id, _)| id)
}

/// [`Mutant::AcceptsBadAnnouncement`]: the announcement the host is shown instead of a bad
/// one, recording the id mapping it needs. Payloads whose varint cannot be read at all are
/// passed on unchanged (the host rejects them).
fn fix_announcement(payload: &[u8], map: &Mutex<IdMap>) -> Vec<u8> {
    let Some((_, rest)) = payload.split_first() else {
        return payload.to_vec();
    };
    let Ok((id, _)) = varint::decode(rest) else {
        return payload.to_vec();
    };
    let host_id = if id > 0 && id % 2 == 0 {
        id
    } else {
        lock(map).hooks = Some((id, SUBSTITUTE_HOOKS));
        SUBSTITUTE_HOOKS
    };
    let mut fixed = vec![0u8];
    varint::encode_to_vec(host_id, &mut fixed);
    fixed
}

/// Host to plugin: the host is conforming, so its frames always decode.
fn relay_down(mutant: Mutant, mut from: impl Read, mut to: File, map: &Mutex<IdMap>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        let mut out = Vec::new();
        let mut used = 0;
        while let Ok(Some((frame, len))) = decode_frame(&pending[used..], MIN_MAX_PAYLOAD) {
            used += len;
            let id = frame.stream_id.get();
            if mutant == Mutant::EndsConnectionOnApiGobError
                && id % 2 == 1
                && frame.payload.is_empty()
                && !lock(map).closed_by_plugin.contains(&id)
            {
                // Broken on purpose: the host closing an API stream the plugin had not closed
                // (a gob error of that stream, GOB-18) ends the whole connection instead.
                let _ = to.write_all(&out);
                return;
            }
            let id = match mutant {
                Mutant::AcceptsBadAnnouncement => match lock(map).hooks {
                    Some((plugin, host)) if host == id => plugin,
                    _ => id,
                },
                Mutant::EvenApiStream if id % 2 == 1 => id + EVEN_OFFSET,
                _ => id,
            };
            put_frame(&mut out, id, frame.payload);
        }
        pending.drain(..used);
        if to.write_all(&out).is_err() {
            return;
        }
    }
}

/// [`Mutant::ClipsConfiguration`]: `config` cut, if it is longer, to a length whose reply fits
/// one gob message (GOB-16), whatever that does to the JSON text.
pub(crate) fn clip_configuration(mut config: Vec<u8>) -> Vec<u8> {
    // Room for the response header and the reply's own framing.
    config.truncate(rpcplugin_codec::gob::MIN_MAX_MESSAGE - 1024);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for m in Mutant::ALL {
            assert_eq!(Mutant::from_name(m.name()), Some(m));
            assert!(!m.breaks().is_empty());
        }
        assert_eq!(Mutant::from_name("nope"), None);
        let names: std::collections::HashSet<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Mutant::ALL.len());
    }

    #[test]
    fn bad_announcements_are_fixed_and_mapped() {
        let map = Mutex::new(IdMap::default());
        // Control byte 0x01, hooks stream 2: only the byte changes.
        assert_eq!(fix_announcement(&[1, 4], &map), vec![0, 4]);
        assert!(lock(&map).hooks.is_none());
        // Hooks stream 1 (odd): shown as the substitute, mapped back.
        let fixed = fix_announcement(&[0, 2], &map);
        let mut want = vec![0];
        varint::encode_to_vec(SUBSTITUTE_HOOKS, &mut want);
        assert_eq!(fixed, want);
        assert_eq!(lock(&map).hooks, Some((1, SUBSTITUTE_HOOKS)));
        // Trailing bytes are dropped.
        assert_eq!(fix_announcement(&[0, 4, 9], &map), vec![0, 4]);
        // No varint at all: unchanged.
        assert_eq!(fix_announcement(&[0], &map), vec![0]);
        assert_eq!(fix_announcement(&[0, 0x80], &map), vec![0, 0x80]);
    }

    #[test]
    fn the_announced_hooks_stream_is_read() {
        assert_eq!(announced_hooks(&[0, 4]), Some(2));
        assert_eq!(announced_hooks(&[0]), None);
        assert_eq!(announced_hooks(&[]), None);
    }
}

/// Far enough in the future to be never, near enough for `Instant` arithmetic.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The seams of a supervisor that breaks the rule of `mutant` (the conforming supervisor's for
/// `None`): what each mutant changes in the supervisor, at the seams of
/// [`crate::supervisor::seams`].
pub fn seams(mutant: Option<Mutant>) -> Arc<dyn Seams> {
    match mutant {
        None => Arc::new(Conforming),
        Some(mutant) => Arc::new(MutantSeams {
            mutant,
            relaunch_at: Mutex::new(None),
            handshake_failed: Mutex::new(false),
        }),
    }
}

#[derive(Debug)]
struct MutantSeams {
    mutant: Mutant,
    /// [`Mutant::StopLeavesRelaunch`]: when the pending relaunch is due.
    relaunch_at: Mutex<Option<Instant>>,
    /// [`Mutant::WaitsForFailedPlugin`], [`Mutant::RelaunchesAfterFailedStart`]: the start's
    /// handshake failed.
    handshake_failed: Mutex<bool>,
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Seams for MutantSeams {
    fn settings(&self, settings: &mut Settings) {
        match self.mutant {
            // Broken on purpose: no start timeout (HS-4), or a short one.
            Mutant::IgnoresStartTimeout => settings.start_timeout = FOREVER,
            Mutant::ShortStartTimeout => {
                settings.start_timeout = settings.start_timeout.min(SHORT_START_TIMEOUT)
            }
            // Broken on purpose: no longest delay (LIFE-9); the failures in a row never reset
            // (LIFE-10); the relaunch never comes (LIFE-8, LIFE-12).
            Mutant::UncappedBackoff => settings.restart_delay_max = FOREVER,
            Mutant::BackoffNeverResets => settings.stable_period = FOREVER,
            Mutant::NeverRestarts => {
                settings.restart_delay = FOREVER;
                settings.restart_delay_max = FOREVER;
            }
            _ => {}
        }
    }

    fn launch(&self, options: &mut LaunchOptions, bundle: &Bundle) -> Option<Box<dyn Any>> {
        match self.mutant {
            // Broken on purpose: an argument (TRANS-14).
            Mutant::PassesArguments => options.args = vec![bundle.id().into()],
            // Broken on purpose: the plugin started through env(1) with signals blocked
            // (TRANS-15) or ignored (TRANS-16).
            Mutant::BlocksSignals | Mutant::IgnoresSigpipe => {
                let signals: &[&str] = if self.mutant == Mutant::BlocksSignals {
                    &["--block-signal=CHLD", "--block-signal=TERM"]
                } else {
                    &["--ignore-signal=PIPE"]
                };
                let mut args: Vec<std::ffi::OsString> = signals.iter().map(|s| s.into()).collect();
                args.push("--".into());
                args.push(std::mem::take(&mut options.program).into_os_string());
                options.args = args;
                options.program = PathBuf::from("/usr/bin/env");
            }
            // Broken on purpose: the host's own standard input (TRANS-6).
            Mutant::InheritsStdin => options.stdin = Stdin::Inherit,
            // Broken on purpose: the host's process group (TRANS-13).
            Mutant::SharedProcessGroup => options.own_process_group = false,
            // Broken on purpose: a descriptor without close-on-exec, open across the launch
            // (TRANS-4).
            Mutant::LeaksDescriptor => {
                return LeakedDescriptor::open(bundle.dir()).map(|d| Box::new(d) as Box<dyn Any>)
            }
            _ => {}
        }
        None
    }

    fn connection(
        &self,
        reader: OwnedFd,
        writer: OwnedFd,
        limits: &mut Limits,
        gob_limits: &mut DecodeLimits,
        slot: ConnectionSlot,
    ) -> io::Result<(OwnedFd, OwnedFd)> {
        match self.mutant {
            Mutant::UnboundedBuffering => *limits = unbounded_limits(),
            Mutant::NoGobLimit => *gob_limits = no_gob_limit(),
            _ => {}
        }
        if self.mutant.tampers_with_frames() {
            interpose(self.mutant, reader, writer, slot)
        } else {
            Ok((reader, writer))
        }
    }

    fn configuration(&self, config: Vec<u8>) -> Result<Vec<u8>, String> {
        match self.mutant {
            Mutant::ClipsConfiguration => Ok(clip_configuration(config)),
            Mutant::ReencodesConfiguration => reencode_configuration(&config),
            _ => Ok(config),
        }
    }

    fn api_stream_id(&self, id: i64) -> i64 {
        api_id_for_plugin(Some(self.mutant), id)
    }

    fn observe(
        &self,
        seen: &Seen<'_>,
        machine: &mut Lifecycle,
        now: Instant,
        default: Delivery,
    ) -> Delivery {
        let starting = machine.state() == State::Starting;
        match (self.mutant, seen) {
            // Broken on purpose: a failed start abandons the process at once, whether or not
            // it is exiting (LIFE-4).
            (Mutant::LeavesOrphans, Seen::HandshakeFailed { .. }) if starting => Delivery::Now,
            // Broken on purpose, as the seed (Table 4-1, E11): the end of the plugin's output
            // before the announcement goes unnoticed until the start timeout (HS-6).
            (
                Mutant::WaitsOutEarlyExit,
                Seen::HandshakeFailed {
                    output_ended: true, ..
                }
                | Seen::Exited(_),
            ) if starting => {
                Delivery::Later(machine.poll_timeout().unwrap_or(now) + Duration::from_millis(10))
            }
            (
                Mutant::WaitsForFailedPlugin | Mutant::RelaunchesAfterFailedStart,
                Seen::HandshakeFailed { .. },
            ) if starting => {
                *locked(&self.handshake_failed) = true;
                Delivery::Now
            }
            // Broken on purpose: the relaunched plugin is left unactivated (LIFE-11).
            (Mutant::NoReactivation, Seen::Announced)
                if matches!(machine.state(), State::Restarting { .. }) =>
            {
                machine.activation_failed();
                Delivery::Now
            }
            // Broken on purpose: an activation that follows another keeps the first one's
            // configuration for the re-activation (LIFE-11).
            (Mutant::ReactivatesWithFirstConfiguration, Seen::Activated(true))
                if machine.activation().is_some() =>
            {
                Delivery::Drop
            }
            _ => default,
        }
    }

    fn wake(&self, due: Instant, machine: &Lifecycle) -> Instant {
        match machine.state() {
            // Broken on purpose: the relaunch comes as soon as the old process is gone, with
            // no restart delay (LIFE-8).
            State::Backoff { .. }
                if self.mutant == Mutant::RestartsWithoutDelay && !machine.has_process() =>
            {
                Instant::now()
            }
            _ => due,
        }
    }

    fn action(&self, action: Action, cx: &ActionContext<'_>) -> Vec<Step> {
        let state = cx.machine.state();
        let killed = Exit::Signal(nix::libc::SIGKILL);
        // How the mutant's own kills and abandons are reported: the machine did not ask for
        // them.
        let stopped = |exit: Option<Exit>| match self.mutant {
            Mutant::LeavesOrphans => (None, false),
            Mutant::KillsWithoutDeactivate | Mutant::NoStopGrace => (exit, exit == Some(killed)),
            _ => (exit, false),
        };
        match (self.mutant, &action) {
            (
                Mutant::LeavesOrphans | Mutant::KillsWithoutDeactivate | Mutant::NoStopGrace,
                Action::StopDone { exit, .. } | Action::Report(Event::Stopped { exit, .. }),
            ) => {
                let (exit, killed) = stopped(*exit);
                vec![Step::Act(match action {
                    Action::StopDone { .. } => Action::StopDone { exit, killed },
                    _ => Action::Report(Event::Stopped { exit, killed }),
                })]
            }
            // Broken on purpose: the relaunch comes with no restart delay (LIFE-8).
            (
                Mutant::RestartsWithoutDelay,
                Action::Report(Event::Crashed {
                    cause,
                    exit,
                    failures,
                    delay: Some(_),
                }),
            ) => vec![Step::Act(Action::Report(Event::Crashed {
                cause: cause.clone(),
                exit: *exit,
                failures: *failures,
                delay: Some(Duration::ZERO),
            }))],
            // Broken on purpose: the cancelled start is answered as a success (LIFE-23).
            (Mutant::StartSurvivesStop, Action::StartDone(Err(StartFailure::Stopped))) => {
                vec![Step::Act(Action::StartDone(Ok(())))]
            }
            // Broken on purpose: a stop does not cancel the pending relaunch (LIFE-22).
            (Mutant::StopLeavesRelaunch, Action::Report(Event::Crashed { delay, .. })) => {
                *locked(&self.relaunch_at) = delay.map(|d| cx.now + d);
                vec![Step::Act(action)]
            }
            (Mutant::StopLeavesRelaunch, Action::Launch) => {
                *locked(&self.relaunch_at) = None;
                vec![Step::Act(action)]
            }
            (Mutant::StopLeavesRelaunch, Action::StopDone { .. }) => {
                if let Some(at) = locked(&self.relaunch_at).take() {
                    launch_in_background(
                        cx.bundle.executable_path(),
                        at.saturating_duration_since(Instant::now()),
                        1,
                    );
                }
                vec![Step::Act(action)]
            }
            // Broken on purpose, as the seed after a rejected announcement: the process is
            // left to exit by itself, reaped whenever it does (LIFE-4); and for
            // RelaunchesAfterFailedStart, launched again every second in the background
            // (LIFE-5).
            (Mutant::WaitsForFailedPlugin | Mutant::RelaunchesAfterFailedStart, Action::Kill)
                if state == State::Starting
                    && std::mem::take(&mut *locked(&self.handshake_failed)) =>
            {
                if self.mutant == Mutant::RelaunchesAfterFailedStart {
                    launch_in_background(cx.bundle.executable_path(), Duration::from_secs(1), 3);
                }
                vec![Step::Forget {
                    reap: true,
                    exit: killed,
                }]
            }
            // Broken on purpose: after a failed start or at a stop, the process is neither
            // killed nor reaped (LIFE-4, LIFE-18, LIFE-19).
            (Mutant::LeavesOrphans, Action::EndConnection)
                if matches!(state, State::Starting | State::Stopping) =>
            {
                vec![
                    Step::Act(action),
                    Step::Forget {
                        reap: false,
                        exit: killed,
                    },
                ]
            }
            // Broken on purpose: a stop kills at once, without OnDeactivate and before the
            // end of the connection (LIFE-16, LIFE-17).
            (Mutant::KillsWithoutDeactivate, Action::Deactivate) => vec![Step::Act(Action::Kill)],
            (Mutant::KillsWithoutDeactivate, Action::EndConnection)
                if cx.before == State::Running && state == State::Stopping =>
            {
                vec![Step::Act(Action::Kill), Step::Act(action)]
            }
            // Broken on purpose: no grace period after the end of the connection (LIFE-17).
            (Mutant::NoStopGrace, Action::EndConnection) if state == State::Stopping => {
                vec![Step::Act(action), Step::Act(Action::Kill)]
            }
            // Broken on purpose: the relaunch does not wait for the crashed process (LIFE-7).
            (Mutant::RelaunchesWhileAlive, Action::EndConnection)
                if matches!(state, State::Backoff { .. }) =>
            {
                vec![
                    Step::Act(action),
                    Step::Forget {
                        reap: true,
                        exit: killed,
                    },
                ]
            }
            // Broken on purpose: the failed launch goes on as a crash, with a restart delay
            // (LIFE-5).
            (
                Mutant::LaunchFailureIsACrash,
                Action::Report(Event::StartFailed(failure @ StartFailure::Launch(_))),
            ) => {
                let crashed = Event::Crashed {
                    cause: CrashCause::RestartFailed(failure.clone()),
                    exit: None,
                    failures: 1,
                    delay: Some(cx.machine.settings().restart_delay(1)),
                };
                vec![Step::Act(action), Step::Act(Action::Report(crashed))]
            }
            _ => vec![Step::Act(action)],
        }
    }
}
