//! The seams of each mutant: what it changes in the reference host's supervisor
//! ([`Seams`], chapters 01 to 06) and driver ([`DriverSeams`]). Every mutant changes one
//! decision, at one seam or a few, as its documentation on [`Mutant`] says; every other
//! decision is the reference host's own.

use std::any::Any;
use std::fs::File;
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};
use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::lifecycle::{
    Action, CrashCause, Event, Exit, Lifecycle, Settings, StartFailure, State,
};
use rpcplugin_codec::stream::Limits;
use rpcplugin_reference_host::bundle::{Bundle, BundleError, MANIFEST_FILE};
use rpcplugin_reference_host::driver::DriverSeams;
use rpcplugin_reference_host::supervisor::seams::{
    ActionContext, ConnectionSlot, Delivery, Seams, Seen, Step,
};
use rpcplugin_runtime::process::{LaunchOptions, Stdin};

use crate::relay::{interpose, Gate, EVEN_OFFSET};
use crate::Mutant;

/// [`Mutant::ShortStartTimeout`]: the longest a start waits for the announcement.
pub const SHORT_START_TIMEOUT: Duration = Duration::from_millis(250);

/// Far enough in the future to be never, near enough for `Instant` arithmetic.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// The seams of a driver that is the broken host `mutant`: the supervisors it creates get
/// [`supervisor_seams`], and the driver mutants change the driver itself.
pub fn driver_seams(mutant: Mutant) -> Arc<dyn DriverSeams> {
    Arc::new(MutantDriver(mutant))
}

/// The driver seams of a mutant (see [`driver_seams`]).
#[derive(Debug, Clone, Copy)]
struct MutantDriver(Mutant);

impl DriverSeams for MutantDriver {
    fn supervisor_seams(&self) -> Arc<dyn Seams> {
        supervisor_seams(self.0)
    }

    fn host_suffix(&self) -> Option<String> {
        Some(format!(
            "(mutant {} of rpcplugin-mutant-host, broken on purpose: {})",
            self.0,
            self.0.breaks().join(", ")
        ))
    }

    fn refused_bundle(&self, dir: &Path, error: &BundleError) -> Option<Bundle> {
        // Broken on purpose (GuessesExecutable, EscapesBundle): some refused bundles are
        // launched anyway (LIFE-2, LIFE-3).
        crate::bundle::lenient_bundle(self.0, dir, error)
    }

    fn forgets_failed_start(&self) -> bool {
        // Broken on purpose: a stop after the failed start finds no plugin (LIFE-20).
        self.0 == Mutant::ForgetsFailedStart
    }

    fn forgets_stopped_plugin(&self) -> bool {
        // Broken on purpose: a second stop finds no plugin (LIFE-20).
        self.0 == Mutant::ForgetsStoppedPlugin
    }

    fn closes_inherited_descriptors(&self) -> bool {
        // Broken on purpose, as the seed (Go's os/exec): what the host inherited reaches the
        // plugin (TRANS-4).
        self.0 != Mutant::PassesInheritedDescriptors
    }
}

/// The seams of a supervisor that breaks the rule of `mutant` (fresh ones for each
/// supervisor: some hold state): what each mutant changes in the supervisor, at the seams of
/// [`rpcplugin_reference_host::supervisor::seams`]. A mutant of the driver alone changes
/// nothing here.
pub fn supervisor_seams(mutant: Mutant) -> Arc<dyn Seams> {
    Arc::new(MutantSeams {
        mutant,
        relaunch_at: Mutex::new(None),
        handshake_failed: Mutex::new(false),
        gate: Mutex::new(None),
        forgot: Mutex::new(false),
    })
}

#[derive(Debug)]
struct MutantSeams {
    mutant: Mutant,
    /// [`Mutant::StopLeavesRelaunch`]: when the pending relaunch is due.
    relaunch_at: Mutex<Option<Instant>>,
    /// [`Mutant::WaitsForFailedPlugin`], [`Mutant::RelaunchesAfterFailedStart`]: the start's
    /// handshake failed.
    handshake_failed: Mutex<bool>,
    /// [`Mutant::LeavesOrphans`]: the gate of the current process's relay, which lets the
    /// plugin see the end of its connection only once the supervisor has forgotten it.
    gate: Mutex<Option<Arc<Gate>>>,
    /// [`Mutant::LeavesOrphans`]: the process was forgotten by the last steps returned; the
    /// supervisor has carried them out by the next call of [`Seams::action`], which opens the
    /// gate.
    forgot: Mutex<bool>,
}

impl MutantSeams {
    /// Opens the current process's gate, if there is one.
    fn open_gate(&self) {
        if let Some(gate) = locked(&self.gate).as_ref() {
            gate.open();
        }
    }
}

impl Drop for MutantSeams {
    fn drop(&mut self) {
        self.open_gate();
    }
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
            let gate = (self.mutant == Mutant::LeavesOrphans).then(|| Arc::new(Gate::default()));
            // A new process: the last one is gone (LIFE-7), and its relay may let go.
            if let Some(old) = std::mem::replace(&mut *locked(&self.gate), gate.clone()) {
                old.open();
            }
            interpose(self.mutant, reader, writer, slot, gate)
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
        if self.mutant == Mutant::EvenApiStream {
            id + EVEN_OFFSET
        } else {
            id
        }
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
        if std::mem::take(&mut *locked(&self.forgot)) {
            // The process was forgotten: its relay may pass the end of the connection on.
            self.open_gate();
        }
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
            // killed nor reaped (LIFE-4, LIFE-18, LIFE-19). Forgotten before the end of the
            // connection: a plugin that exits at the end of its input would otherwise be reaped
            // if its reaping thread ran before the forgetting.
            (Mutant::LeavesOrphans, Action::EndConnection)
                if matches!(state, State::Starting | State::Stopping) =>
            {
                *locked(&self.forgot) = true;
                vec![
                    Step::Forget {
                        reap: false,
                        exit: killed,
                    },
                    Step::Act(action),
                ]
            }
            // The host ends the connection of a process it keeps: the plugin may see it.
            (Mutant::LeavesOrphans, Action::EndConnection) => {
                self.open_gate();
                vec![Step::Act(action)]
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

/// [`Mutant::ReencodesConfiguration`]: the configuration as the seed's `LocalAPI` serves it,
/// decoded into a generic value and encoded again (members sorted by key, numbers as the
/// decoder kept them); an error text where the text does not decode (a number out of range).
fn reencode_configuration(config: &[u8]) -> Result<Vec<u8>, String> {
    let value: serde_json::Value = serde_json::from_slice(config).map_err(|e| e.to_string())?;
    serde_json::to_vec(&value).map_err(|e| e.to_string())
}

/// [`Mutant::ClipsConfiguration`]: `config` cut, if it is longer, to a length whose reply fits
/// one gob message (GOB-16), whatever that does to the JSON text.
fn clip_configuration(mut config: Vec<u8>) -> Vec<u8> {
    // Room for the response header and the reply's own framing.
    config.truncate(rpcplugin_codec::gob::MIN_MAX_MESSAGE - 1024);
    config
}

/// Launches `executable` in the background `times` times, the first after `first` and then every
/// second, and lets each launch run (with its pipes open) for a minute before it kills it:
/// the launches a supervisor no longer knows of. [`Mutant::RelaunchesAfterFailedStart`] (as
/// the seed's goroutine after a failed start: three, a second apart) and
/// [`Mutant::StopLeavesRelaunch`] (one, when the cancelled restart delay runs out).
fn launch_in_background(executable: PathBuf, first: Duration, times: u32) {
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
fn no_gob_limit() -> DecodeLimits {
    DecodeLimits {
        max_message: usize::MAX,
        ..DecodeLimits::default()
    }
}

/// [`Mutant::LeaksDescriptor`]: a descriptor of the bundle's manifest without close-on-exec,
/// so that a plugin launched while it is open inherits it (TRANS-4 broken). It is numbered
/// above 4, where the plugin's pipe ends do not replace it. Closed when dropped.
struct LeakedDescriptor(RawFd);

impl LeakedDescriptor {
    /// Opens `<dir>/plugin.json` for the leak; `None` if that fails.
    fn open(dir: &Path) -> Option<LeakedDescriptor> {
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

/// [`Mutant::UnboundedBuffering`]: the host's limits, with no per-stream buffer limit to speak
/// of (the codec accepts any limit from [`MIN_STREAM_BUFFER`] up).
///
/// [`MIN_STREAM_BUFFER`]: rpcplugin_codec::stream::MIN_STREAM_BUFFER
fn unbounded_limits() -> Limits {
    Limits {
        stream_buffer: usize::MAX,
        ..Limits::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_are_broken_as_the_mutants_say() {
        let big = vec![b'x'; rpcplugin_codec::gob::MIN_MAX_MESSAGE];
        assert!(clip_configuration(big).len() < rpcplugin_codec::gob::MIN_MAX_MESSAGE);
        assert_eq!(clip_configuration(b"{}".to_vec()), b"{}");
        assert_eq!(
            reencode_configuration(br#"{"b": 1.0,  "a": [true]}"#).unwrap(),
            br#"{"a":[true],"b":1.0}"#
        );
        assert!(reencode_configuration(b"1e400").is_err());
    }

    #[test]
    fn only_the_driver_mutants_change_the_driver() {
        for m in Mutant::ALL {
            let d = driver_seams(m);
            assert!(d.host_suffix().unwrap().contains(m.name()));
            assert_eq!(d.forgets_failed_start(), m == Mutant::ForgetsFailedStart);
            assert_eq!(
                d.forgets_stopped_plugin(),
                m == Mutant::ForgetsStoppedPlugin
            );
            assert_eq!(
                d.closes_inherited_descriptors(),
                m != Mutant::PassesInheritedDescriptors
            );
        }
    }
}
