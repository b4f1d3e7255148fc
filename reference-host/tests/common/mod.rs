//! Shared fixtures of the reference host's tests: a launcher script that runs the reference
//! plugin (built by `rpcplugin-test-support`) or misbehaves on chosen launches, bundle
//! directories, and waiting for events and output lines. Time limits, process checks and the
//! reference binaries are the workspace's `rpcplugin-test-support`.
//!
//! Every plugin executable of the tests is a symbolic link in the bundle directory to a file
//! written once, before any test launches anything: executing a file that this (multi-threaded)
//! process has just written can fail with ETXTBSY when another thread forks meanwhile.

#![allow(dead_code)]

use std::ffi::OsString;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rpcplugin_reference_host::bundle::Bundle;
use rpcplugin_reference_host::event::LifecycleEvent;
use rpcplugin_reference_host::supervisor::{OutputLine, PluginOutput, SupervisorOptions};
use rpcplugin_test_support::bins::reference_plugin;
use rpcplugin_test_support::procs::{assert_no_process_left, kill_all_left, process_exists};

/// The launcher: counts its launches in `$RH_STATE_DIR/launches`, appends its pid to
/// `$RH_STATE_DIR/pids`, then, if the launch number (or `all`) is listed in
///
/// - `RH_EXIT_1`: exits with status 1 before the handshake;
/// - `RH_SILENT`: never announces anything (`sleep 30`);
/// - `RH_STUBBORN`: announces hooks stream 2, ignores SIGTERM, and never exits (`sleep 60`),
///   even when its pipes close; it speaks no RPC, so hook calls are never answered;
/// - `RH_HANGUP`: announces, closes both pipes, and keeps running (`sleep 60`);
/// - `RH_BAD_ANNOUNCE`: sends an announcement with control byte 0x01 (HS-5);
/// - `RH_ACTIVATE_ONLY`: announces, answers the first hook call (whatever it is) with the
///   recorded successful `OnActivate` response of `spec/05-rpc.md` section 5.6.2, then answers
///   nothing more, ignores SIGTERM and never exits (`sleep 60`);
/// - `RH_CRASH_ON_ACTIVATE`, `RH_FAIL_ACTIVATE`: runs the reference plugin with the matching
///   switch;
///
/// and otherwise runs the reference plugin. `exec` keeps the pid the launcher recorded.
const LAUNCHER: &str = r#"#!/bin/sh
dir=${RH_STATE_DIR:?}
n=$(( $(cat "$dir/launches" 2>/dev/null || echo 0) + 1 ))
echo "$$" >> "$dir/pids"
# Replace the count atomically: a reader never sees the file empty or half written.
echo "$n" > "$dir/launches.tmp" && mv "$dir/launches.tmp" "$dir/launches"
on() { case " $1 " in *" $n "*|*" all "*) return 0;; esac; return 1; }
if on "$RH_EXIT_1"; then exit 1; fi
if on "$RH_SILENT"; then exec sleep 30; fi
if on "$RH_STUBBORN"; then trap '' TERM; printf '\000\004\000\004' >&4; exec sleep 60; fi
if on "$RH_HANGUP"; then printf '\000\004\000\004' >&4; exec 3<&- 4>&-; exec sleep 60; fi
if on "$RH_BAD_ANNOUNCE"; then printf '\000\004\001\004' >&4; exec sleep 30; fi
if on "$RH_ACTIVATE_ONLY"; then
  trap '' TERM
  printf '\000\004\000\004' >&4
  dd bs=1 count=1 <&3 >/dev/null 2>&1
  printf '\004\312\001\072\377\203\003\001\001\010\122\145\163\160\157\156\163\145\001\377\204\000\001\003\001\015\123\145\162\166\151\143\145\115\145\164\150\157\144\001\014\000\001\003\123\145\161\001\006\000\001\005\105\162\162\157\162\001\014\000\000\000\032\377\204\001\025\114\157\143\141\154\110\157\157\153\163\056\117\156\101\143\164\151\166\141\164\145\000\012\377\205\003\001\002\377\206\000\000\000\003\377\206\000' >&4
  exec sleep 60
fi
if on "$RH_CRASH_ON_ACTIVATE"; then
  RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE=1
  export RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE
fi
if on "$RH_FAIL_ACTIVATE"; then
  RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE=1
  export RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE
fi
exec "$RH_PLUGIN"
"#;

/// Paths every test uses.
pub struct Fixtures {
    /// `target/debug/rpcplugin-reference-plugin`.
    pub plugin: PathBuf,
    /// The launcher script.
    pub launcher: PathBuf,
    /// This test process's scratch directory.
    pub root: PathBuf,
}

/// Builds the reference plugin and writes the launcher, once per test process. Call it first
/// in every test that launches anything.
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let plugin = reference_plugin();

        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Scratch directories of earlier test processes that are gone.
        if let Ok(entries) = std::fs::read_dir(&tmp) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("reference-host-") {
                    if pid.parse().is_ok_and(|pid: u32| !process_exists(pid)) {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let root = tmp.join(format!("reference-host-{}", std::process::id()));
        std::fs::create_dir_all(&root).unwrap();
        let launcher = root.join("launcher.sh");
        {
            let mut f = std::fs::File::create(&launcher).unwrap();
            f.write_all(LAUNCHER.as_bytes()).unwrap();
            f.sync_all().unwrap();
        }
        std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755)).unwrap();
        Fixtures {
            plugin,
            launcher,
            root,
        }
    })
}

/// A bundle directory whose executable is the launcher; removed when dropped.
pub struct TestBundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The loaded bundle.
    pub bundle: Bundle,
}

impl TestBundle {
    /// A fresh bundle named `name` (also the plugin's id).
    pub fn new(name: &str) -> TestBundle {
        let fx = fixtures();
        let dir = fx.root.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(&fx.launcher, dir.join("backend")).unwrap();
        std::fs::write(
            dir.join("plugin.json"),
            format!(r#"{{"id": "{name}", "backend": {{"executable": "backend"}}}}"#),
        )
        .unwrap();
        let bundle = Bundle::load(&dir).unwrap();
        TestBundle { dir, bundle }
    }

    /// The launcher's environment for this bundle, plus `vars`.
    pub fn env(&self, vars: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        let mut env = vec![
            (OsString::from("RH_STATE_DIR"), self.dir.clone().into()),
            (
                OsString::from("RH_PLUGIN"),
                fixtures().plugin.clone().into(),
            ),
        ];
        env.extend(vars.iter().map(|(k, v)| (k.into(), v.into())));
        env
    }

    /// Supervisor options for this bundle: the launcher's environment with `vars`, the
    /// plugin's output as lines on the returned receiver, the defaults otherwise.
    pub fn options(&self, vars: &[(&str, &str)]) -> (SupervisorOptions, Receiver<OutputLine>) {
        let (tx, rx) = channel();
        let options = SupervisorOptions {
            env: self.env(vars),
            stdout: PluginOutput::Lines(tx.clone()),
            stderr: PluginOutput::Lines(tx),
            ..SupervisorOptions::default()
        };
        (options, rx)
    }

    /// How many times the launcher ran.
    pub fn launches(&self) -> u32 {
        std::fs::read_to_string(self.dir.join("launches"))
            .map(|s| s.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// The pids of every launch, in order.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.dir.join("pids"))
            .map(|s| s.lines().map(|l| l.trim().parse().unwrap()).collect())
            .unwrap_or_default()
    }

    /// Waits until the launcher has run `n` times.
    pub fn wait_launches(&self, n: u32, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.launches() < n {
            assert!(
                Instant::now() < deadline,
                "the plugin was launched {} times, not {n}, within {limit:?}",
                self.launches()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts that no process this bundle launched is still there, not even as a zombie
    /// (LIFE-19).
    pub fn assert_no_process_left(&self) {
        assert_no_process_left(self.pids());
    }
}

impl Drop for TestBundle {
    fn drop(&mut self) {
        // Never leave a process behind, even when the test failed half-way.
        kill_all_left(self.pids());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Receives events until one matches `pred` (returned), failing after `limit`.
pub fn wait_event(
    events: &Receiver<LifecycleEvent>,
    limit: Duration,
    pred: impl Fn(&LifecycleEvent) -> bool,
) -> LifecycleEvent {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(e) if pred(&e) => return e,
            Ok(e) => seen.push(e),
            Err(_) => panic!("no matching event within {limit:?}; saw {seen:?}"),
        }
    }
}

/// The names of the events received so far.
pub fn names(events: &Receiver<LifecycleEvent>) -> Vec<&'static str> {
    events.try_iter().map(|e| e.name()).collect()
}

/// Receives plugin output lines until one contains `text` (returned), failing after `limit`.
pub fn wait_line(lines: &Receiver<OutputLine>, limit: Duration, text: &str) -> OutputLine {
    let deadline = Instant::now() + limit;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(l) if l.line.contains(text) => return l,
            Ok(l) => seen.push(l.line),
            Err(_) => panic!("no output line with {text:?} within {limit:?}; saw {seen:?}"),
        }
    }
}
