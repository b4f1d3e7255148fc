//! # rpcplugin-host-mutants
//!
//! Deliberately broken hosts, for the conformance harness's self-test: test equipment, never
//! published, never a part of the reference host.
//!
//! A [`Mutant`] makes the reference host (`rpcplugin-reference-host`) break exactly one rule of
//! `spec/01-transport.md` to `spec/06-lifecycle.md`, so that the harness can show that the case
//! meant to catch that rule fails. It does so only through the reference host's seams: the
//! [supervisor seams](rpcplugin_reference_host::supervisor::seams) and the
//! [driver seams](rpcplugin_reference_host::driver::seams); the codec is not touched, and the
//! runtime only offers what a caller asks for. The `rpcplugin-mutant-host` binary serves the
//! driver contract as one mutant (`driver --mutant NAME`), and prints this crate's list of
//! mutants (`list [--format json]`): the one list of host mutants, which the harness reads.
//!
//! Half of the mutants change one decision of the supervisor ([`seams`]). Several concern the
//! bytes on the wire (HS-9, HS-8 with STREAM-14, STREAM-2 with RPC-13, STREAM-5, GOB-6,
//! GOB-18), which the codec gets right by construction; for them the supervisor's connection
//! reads and writes through a small frame-level relay ([`relay`]) between the plugin's pipes and
//! the connection, which misbehaves as the mutant says and passes everything else through
//! unchanged. One more (STREAM-15 with STREAM-5) uses that relay only to watch the plugin's
//! frames: the connection gets no per-stream buffer limit, and the relay connects on it every
//! stream the plugin sends data on, which nobody then reads. Two concern what the plugin
//! process inherits (TRANS-4, TRANS-6): a descriptor left inheritable across the launch, or the
//! host's own standard input. One (LIFE-4, LIFE-18, LIFE-19) forgets the process after a failed
//! start or at a stop, neither killing nor reaping it; it uses the relay only to hold the
//! plugin's pipe ends until the supervisor has forgotten the process ([`relay::Gate`]), so that
//! no plugin exits, and is reaped, first. Five change the driver: which bundles it launches
//! ([`bundle`], LIFE-2, LIFE-3), which plugins it still knows when a stop comes (LIFE-20), and
//! whether it closes the descriptors it inherited (TRANS-4).
//!
//! - this file: [`Mutant`], every mutant's name, the requirements it breaks and what it does
//!   wrong, and [`list_json`], the list as the binary prints it;
//! - [`seams`]: the seams of each mutant, [`seams::supervisor_seams`] and
//!   [`seams::driver_seams`];
//! - [`relay`]: the frame-level relay;
//! - [`bundle`]: the bundles the broken drivers launch although the reference host refuses
//!   them.

#![warn(missing_docs)]

use rpcplugin_codec::req;
use std::fmt;

pub mod bundle;
pub mod relay;
pub mod seams;

pub use seams::{driver_seams, supervisor_seams};

/// One deliberately broken behaviour of the reference host (see the crate documentation).
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
    /// A start waits for the announcement for at most [`seams::SHORT_START_TIMEOUT`],
    /// whatever its start timeout (HS-4).
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
    /// A start whose launch fails is also reported as a crash, with a restart delay, as by a
    /// host that treats every failed launch alike (LIFE-5).
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
            Mutant::NeverRestarts => &[req!("LIFE-8"), req!("LIFE-12")],
            Mutant::RestartsWithoutDelay => &[req!("LIFE-8")],
            Mutant::IgnoresStartTimeout => &[req!("HS-4")],
            Mutant::LeavesOrphans => &[req!("LIFE-4"), req!("LIFE-18"), req!("LIFE-19")],
            Mutant::HangsOnStream0 => &[req!("HS-8"), req!("STREAM-14")],
            Mutant::AcceptsBadAnnouncement => &[req!("HS-9")],
            Mutant::NoReactivation => &[req!("LIFE-11")],
            Mutant::KillsWithoutDeactivate => &[req!("LIFE-16"), req!("LIFE-17")],
            Mutant::EvenApiStream => &[req!("STREAM-2"), req!("RPC-13")],
            Mutant::NoStopGrace => &[req!("LIFE-17")],
            Mutant::LeaksDescriptor => &[req!("TRANS-4")],
            Mutant::InheritsStdin => &[req!("TRANS-6")],
            Mutant::ShortStartTimeout => &[req!("HS-4")],
            Mutant::WaitsOutEarlyExit => &[req!("HS-6")],
            Mutant::ForgetsFailedStart | Mutant::ForgetsStoppedPlugin => &[req!("LIFE-20")],
            Mutant::StopLeavesRelaunch => &[req!("LIFE-22")],
            Mutant::StartSurvivesStop => &[req!("LIFE-23")],
            Mutant::GuessesExecutable => &[req!("LIFE-2")],
            Mutant::EscapesBundle => &[req!("LIFE-3")],
            Mutant::UnboundedBuffering => &[req!("STREAM-15"), req!("STREAM-5")],
            Mutant::ClipsConfiguration => &[req!("RPC-18")],
            Mutant::PassesInheritedDescriptors => &[req!("TRANS-4")],
            Mutant::SharedProcessGroup => &[req!("TRANS-13")],
            Mutant::RelaunchesAfterFailedStart => &[req!("LIFE-5")],
            Mutant::WaitsForFailedPlugin => &[req!("LIFE-4")],
            Mutant::ReencodesConfiguration => &[req!("RPC-18")],
            Mutant::ReactivatesWithFirstConfiguration => &[req!("LIFE-11")],
            Mutant::RelaunchesWhileAlive => &[req!("LIFE-7")],
            Mutant::NoGobLimit => &[req!("GOB-15"), req!("GOB-19")],
            Mutant::StrictBeforeAnnouncement => &[req!("STREAM-5")],
            Mutant::AssumesGobIds => &[req!("GOB-6")],
            Mutant::EndsConnectionOnApiGobError => &[req!("GOB-18")],
            Mutant::LaunchFailureIsACrash => &[req!("LIFE-5")],
            Mutant::UncappedBackoff => &[req!("LIFE-9")],
            Mutant::BackoffNeverResets => &[req!("LIFE-10")],
            Mutant::PassesArguments => &[req!("TRANS-14")],
            Mutant::BlocksSignals => &[req!("TRANS-15")],
            Mutant::IgnoresSigpipe => &[req!("TRANS-16")],
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
                "a start whose launch fails is reported as a crash, with a restart delay"
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

    /// Whether the mutant needs the frame-level relay between the plugin and the connection
    /// ([`Mutant::LeavesOrphans`] only for the end of the connection, see
    /// [`relay::Gate`]).
    pub fn tampers_with_frames(self) -> bool {
        matches!(
            self,
            Mutant::LeavesOrphans
                | Mutant::HangsOnStream0
                | Mutant::AcceptsBadAnnouncement
                | Mutant::EvenApiStream
                | Mutant::UnboundedBuffering
                | Mutant::StrictBeforeAnnouncement
                | Mutant::AssumesGobIds
                | Mutant::EndsConnectionOnApiGobError
        )
    }

    /// The list of mutants for a terminal, one per line, indented by two spaces: name,
    /// requirements, description, in aligned columns.
    pub fn table() -> String {
        let name_width = Mutant::ALL
            .iter()
            .map(|m| m.name().len())
            .max()
            .unwrap_or(0);
        let breaks_width = Mutant::ALL
            .iter()
            .map(|m| m.breaks().join(", ").len())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for m in Mutant::ALL {
            out.push_str(&format!(
                "  {:<name_width$}  {:<breaks_width$}  {}\n",
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

/// The list of mutants as `rpcplugin-mutant-host list --format json` prints it: an object of
/// schema [`LIST_SCHEMA`] whose `mutants` are, in the order of [`Mutant::ALL`], objects with the
/// mutant's `name`, the requirements it `breaks` and its `description`, in this order.
pub fn list_json() -> String {
    #[derive(serde::Serialize)]
    struct Listed {
        name: &'static str,
        breaks: &'static [&'static str],
        description: &'static str,
    }
    #[derive(serde::Serialize)]
    struct List {
        schema: &'static str,
        mutants: Vec<Listed>,
    }
    let list = List {
        schema: LIST_SCHEMA,
        mutants: Mutant::ALL
            .iter()
            .map(|m| Listed {
                name: m.name(),
                breaks: m.breaks(),
                description: m.description(),
            })
            .collect(),
    };
    serde_json::to_string_pretty(&list).expect("the list serializes")
}

/// The `schema` of [`list_json`].
pub const LIST_SCHEMA: &str = "rpcplugin-host-mutants/v1";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for m in Mutant::ALL {
            assert_eq!(Mutant::from_name(m.name()), Some(m));
            assert!(!m.breaks().is_empty());
            assert!(!m.description().is_empty());
        }
        assert_eq!(Mutant::from_name("nope"), None);
        let names: std::collections::HashSet<_> = Mutant::ALL.iter().map(|m| m.name()).collect();
        assert_eq!(names.len(), Mutant::ALL.len());
    }

    #[test]
    fn the_json_list_is_every_mutant_in_order() {
        let text = list_json();
        assert!(text.contains(r#""name": "never-restarts""#), "{text}");
        let list: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(list["schema"], LIST_SCHEMA);
        let mutants = list["mutants"].as_array().unwrap();
        assert_eq!(mutants.len(), Mutant::ALL.len());
        for (m, v) in Mutant::ALL.iter().zip(mutants) {
            assert_eq!(v["name"], m.name());
            assert_eq!(v["breaks"], serde_json::json!(m.breaks()));
            assert_eq!(v["description"], m.description());
        }
    }
}
