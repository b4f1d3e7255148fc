//! The `rpcplugin-reference-host` binary end to end: `run <bundle>` with the reference plugin,
//! a crash and a restart, a stop by SIGINT or SIGTERM, and the errors that exit with status 2.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use common::{fixtures, TestBundle};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rpcplugin_test_support::procs::kill9;
use rpcplugin_test_support::within;
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(60);
const HOST: &str = env!("CARGO_BIN_EXE_rpcplugin-reference-host");

/// A running host binary: its stdout lines on a channel, its stderr collected; killed if the
/// test ends early.
struct Host {
    child: Child,
    lines: Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    seen: Vec<String>,
}

impl Host {
    fn spawn(args: &[&str], b: &TestBundle) -> Host {
        Host::spawn_with(args, b, false)
    }

    /// [`Host::spawn`]; with `own_group`, the host leads a process group of its own, as a
    /// shell's foreground job does, so that a signal can go to the whole group.
    fn spawn_with(args: &[&str], b: &TestBundle, own_group: bool) -> Host {
        let mut command = Command::new(HOST);
        if own_group {
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let mut child = command
            .args(args)
            .envs(b.env(&[]))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Host {
            child,
            lines,
            stderr: Some(stderr),
            seen: Vec::new(),
        }
    }

    /// Waits for a stdout line that contains `text`.
    fn wait_line(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!("no line with {text:?}; saw {:?}", self.seen),
            }
        }
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Sends `signal` to the host's whole process group, as a terminal does on Ctrl-C.
    fn signal_group(&self, signal: Signal) {
        nix::sys::signal::killpg(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the host to exit; returns its status, all of its stdout lines and its stderr.
    fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the host did not exit");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut lines = std::mem::take(&mut self.seen);
        lines.extend(self.lines.try_iter());
        let stderr = self.stderr.take().unwrap().join().unwrap();
        (status, lines, stderr)
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn event(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

// `run --json`: the plugin is started and activated with the configuration file (it logs the
// configuration it loaded), restarted and re-activated after a crash, and on SIGINT deactivated
// (it says goodbye) and stopped cleanly: status 0, not killed, and the host exits 0.
// covers: LIFE-1, RPC-13, RPC-18, LIFE-11, LIFE-16, LIFE-17, LIFE-19, TRANS-3
#[test]
fn run_json_activates_restarts_and_stops_on_sigint() {
    within(LIMIT, || {
        let b = TestBundle::new("binary-json");
        let config = json!({"Foo": "foo", "Bar": {"Baz": "baz"}});
        let config_file = b.dir.join("config.json");
        std::fs::write(&config_file, config.to_string()).unwrap();
        let mut host = Host::spawn(
            &[
                "run",
                b.dir.to_str().unwrap(),
                "--config",
                config_file.to_str().unwrap(),
                "--json",
            ],
            &b,
        );
        let started = event(&host.wait_line(r#""event":"started""#));
        let pid = started["pid"].as_u64().unwrap() as u32;
        assert_eq!(started["plugin"], "binary-json");
        let activated = event(&host.wait_line(r#""event":"activated""#));
        assert_eq!(activated["pid"], pid);

        kill9(pid);
        let crashed = event(&host.wait_line(r#""event":"crashed""#));
        assert_eq!(crashed["exit"], json!({"signal": "SIGKILL"}));
        assert_eq!(crashed["failures"], 1);
        assert_eq!(crashed["delay_ms"], 1000);
        assert_eq!(crashed["reason"], "the plugin process exited");
        let restarted = event(&host.wait_line(r#""event":"restarted""#));
        assert_eq!(restarted["reactivated"], true);

        host.signal(Signal::SIGINT);
        let stopped = event(&host.wait_line(r#""event":"stopped""#));
        assert_eq!(stopped["exit"], json!({"code": 0}));
        assert_eq!(stopped["killed"], false);
        let (status, lines, stderr) = host.finish();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        let names: Vec<String> = lines
            .iter()
            .map(|l| event(l)["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "started",
                "activated",
                "crashed",
                "restarted",
                "deactivated",
                "stopped"
            ]
        );
        let loaded = format!("reference plugin: activated with configuration {config}");
        assert_eq!(stderr.matches(&loaded).count(), 2, "stderr: {stderr}");
        assert!(
            stderr.contains("reference plugin: goodbye"),
            "stderr: {stderr}"
        );
        b.assert_no_process_left();
    });
}

// Ctrl-C at a terminal: SIGINT to the host's whole process group. The plugin leads a group of
// its own, so the signal reaches the host alone, which deactivates the plugin (it says goodbye)
// and stops it cleanly: status 0, not killed. A plugin in the host's group would die of the
// SIGINT first, and the stop would find it crashed.
// covers: TRANS-13, LIFE-16, LIFE-17
#[test]
fn ctrl_c_to_the_host_s_process_group_stops_the_plugin_cleanly() {
    within(LIMIT, || {
        let b = TestBundle::new("binary-ctrl-c");
        let mut host = Host::spawn_with(&["run", b.dir.to_str().unwrap(), "--json"], &b, true);
        let started = event(&host.wait_line(r#""event":"started""#));
        let pid = started["pid"].as_u64().unwrap() as i32;
        host.wait_line(r#""event":"activated""#);
        let group = nix::unistd::getpgid(Some(Pid::from_raw(pid))).unwrap();
        assert_eq!(group, Pid::from_raw(pid), "the plugin leads its own group");
        host.signal_group(Signal::SIGINT);
        let stopped = event(&host.wait_line(r#""event":"stopped""#));
        assert_eq!(stopped["exit"], json!({"code": 0}));
        assert_eq!(stopped["killed"], false);
        let (status, lines, stderr) = host.finish();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        assert!(
            lines.iter().any(|l| l.contains(r#""event":"deactivated""#)),
            "{lines:?}"
        );
        assert!(
            stderr.contains("reference plugin: goodbye"),
            "stderr: {stderr}"
        );
        b.assert_no_process_left();
    });
}

// Human-readable lines, the default configuration `{}`, and SIGTERM.
// covers: LIFE-16, LIFE-20
#[test]
fn run_prints_events_and_stops_on_sigterm() {
    within(LIMIT, || {
        let b = TestBundle::new("binary-human");
        let mut host = Host::spawn(&["run", b.dir.to_str().unwrap()], &b);
        let started = host.wait_line("started");
        assert!(
            started.starts_with("[binary-human] started (pid "),
            "{started}"
        );
        host.wait_line("[binary-human] activated (pid ");
        host.signal(Signal::SIGTERM);
        let stopped = host.wait_line("stopped");
        assert_eq!(stopped, "[binary-human] stopped (exit status 0)");
        let (status, _lines, stderr) = host.finish();
        assert_eq!(status.code(), Some(0), "stderr: {stderr}");
        assert!(
            stderr.contains("reference plugin: activated with configuration {}"),
            "stderr: {stderr}"
        );
        assert!(stderr.contains("SIGTERM"), "stderr: {stderr}");
        b.assert_no_process_left();
    });
}

// A malformed bundle and a failed start exit with status 2 and say why on stderr, leaving no
// process behind.
// covers: LIFE-2, LIFE-4, LIFE-5
#[test]
fn bad_bundles_and_failed_starts_exit_2() {
    within(LIMIT, || {
        let b = TestBundle::new("binary-errors");
        std::fs::write(
            b.dir.join("plugin.json"),
            r#"{"id": "binary-errors", "backend": {"executable": ""}}"#,
        )
        .unwrap();
        let host = Host::spawn(&["run", b.dir.to_str().unwrap()], &b);
        let (status, lines, stderr) = host.finish();
        assert_eq!(status.code(), Some(2));
        assert!(lines.is_empty(), "{lines:?}");
        assert!(
            stderr.contains("plugin.json: member `backend.executable` must not be empty"),
            "{stderr}"
        );
        assert_eq!(b.launches(), 0);

        std::fs::write(
            b.dir.join("plugin.json"),
            r#"{"id": "binary-errors", "backend": {"executable": "backend"}}"#,
        )
        .unwrap();
        let bad_config = b.dir.join("bad.json");
        std::fs::write(&bad_config, "{oops").unwrap();
        let host = Host::spawn(
            &[
                "run",
                b.dir.to_str().unwrap(),
                "--config",
                bad_config.to_str().unwrap(),
            ],
            &b,
        );
        let (status, _lines, stderr) = host.finish();
        assert_eq!(status.code(), Some(2));
        assert!(stderr.contains("bad.json: not valid JSON"), "{stderr}");
        assert_eq!(b.launches(), 0);

        let mut child = Command::new(HOST)
            .args(["run", b.dir.to_str().unwrap(), "--json"])
            .envs(b.env(&[("RH_EXIT_1", "all")]))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(20), "hung");
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("plugin binary-errors exited with status 1 before the handshake"),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let names: Vec<String> = stdout
            .lines()
            .map(|l| event(l)["event"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, ["start_failed", "stopped"]);
        assert_eq!(b.launches(), 1);
        b.assert_no_process_left();
    });
}

// `--help` teaches: what a bundle is, and an example with the reference plugin.
#[test]
fn help_has_an_example_with_the_reference_plugin() {
    fixtures();
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let out = Command::new(HOST).args(args).output().unwrap();
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(text.contains("rpcplugin-reference-plugin"), "{text}");
        assert!(text.contains("plugin.json"), "{text}");
        assert!(text.contains("Ctrl-C"), "{text}");
    }
    let out = Command::new(HOST).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
