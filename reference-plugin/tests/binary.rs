//! The `rpcplugin-reference-plugin` binary as a host sees it: launched without the host's pipes,
//! and launched by `rpcplugin_runtime::process::launch` with them as descriptors 3 and 4 (the
//! seed's `TestMain` and the plugin of its `TestSupervisor_PluginCrash`).

use std::fs::File;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use rpcplugin_reference_plugin::codec::rpc::{Call, Reply, API_SERVICE};
use rpcplugin_reference_plugin::codec::stream::{ConnectionEnd, Limits, Role};
use rpcplugin_reference_plugin::runtime::connection::Connection;
use rpcplugin_reference_plugin::runtime::process::{
    launch, Exit, LaunchOptions, Launched, Output, PluginProcess,
};
use rpcplugin_reference_plugin::runtime::rpc::{serve, CallFailure, RpcClient, ServeEnd};
use rpcplugin_reference_plugin::EXIT_BOUND;
use rpcplugin_test_support::within;

const PLUGIN: &str = env!("CARGO_BIN_EXE_rpcplugin-reference-plugin");
const LIMIT: Duration = Duration::from_secs(10);
const CONFIG: &[u8] = br#"{"Foo":"foo","Bar":{"Baz":"baz"}}"#;

/// Runs the binary through `sh` with the descriptor redirections `redirs` (so that whatever the
/// test process holds as descriptors 3 and 4 is not inherited) and returns (status, stdout,
/// stderr).
fn run_plain(redirs: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec \"$0\" \"$@\" {redirs}"))
        .arg(PLUGIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (status, out, err) = within(LIMIT, move || {
        let err = thread::spawn(move || {
            let mut s = String::new();
            stderr.read_to_string(&mut s).unwrap();
            s
        });
        let mut out = String::new();
        stdout.read_to_string(&mut out).unwrap();
        (child.wait().unwrap(), out, err.join().unwrap())
    });
    (status.code(), out, err)
}

// Started by hand (no descriptors 3 and 4, or the wrong ones), the plugin says what it is and
// exits with status 2 without touching anything else; --help explains how it is started.
// covers: TRANS-2
#[test]
fn without_the_host_pipes_it_explains_itself_and_exits_with_2() {
    let (code, out, err) = run_plain("3<&- 4>&-", &[]);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(out.is_empty(), "nothing on stdout: {out}");
    assert!(
        err.contains("this program is an rpcplugin plugin: start it from an rpcplugin host"),
        "{err}"
    );
    assert!(err.contains("file descriptor 3 is not open"), "{err}");

    let (code, _, err) = run_plain("3</dev/null 4>&-", &[]);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(err.contains("file descriptor 4 is not open"), "{err}");

    let (code, _, err) = run_plain("3>/dev/null 4>/dev/null", &[]);
    assert_eq!(code, Some(2), "stderr: {err}");
    assert!(
        err.contains("file descriptor 3 is open write-only but must be readable"),
        "{err}"
    );

    let (code, help, _) = run_plain("3<&- 4>&-", &["--help"]);
    assert_eq!(code, Some(0));
    for needle in [
        "file descriptors 3",
        "rpcplugin-reference-host run",
        "RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE=1",
        "RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE=1",
    ] {
        assert!(help.contains(needle), "--help lacks {needle:?}:\n{help}");
    }
}

/// A launched reference plugin, its host-side connection and its captured output.
struct Running {
    process: PluginProcess,
    conn: Arc<Connection>,
    hooks: Arc<RpcClient>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

fn capture(r: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = channel();
    thread::spawn(move || {
        let mut r = r;
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        let _ = tx.send(s);
    });
    rx
}

fn launch_plugin(env: &[(&str, &str)]) -> Launched {
    let mut opts = LaunchOptions::new(PLUGIN);
    opts.stdout = Output::Capture;
    opts.stderr = Output::Capture;
    opts.env = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    launch(&opts).expect("the plugin starts")
}

impl Running {
    fn start(env: &[(&str, &str)]) -> Running {
        let Launched {
            mut process,
            reader,
            writer,
        } = launch_plugin(env);
        let stdout = capture(process.take_stdout().unwrap());
        let stderr = capture(process.take_stderr().unwrap());
        let conn = Connection::new(Role::Host, reader, writer, Limits::default()).unwrap();
        let hooks = conn
            .wait_for_handshake(LIMIT)
            .expect("the plugin announces its hooks stream");
        assert_eq!(hooks.id().get(), 2);
        Running {
            process,
            conn: Arc::new(conn),
            hooks: Arc::new(RpcClient::new(hooks).unwrap()),
            stdout,
            stderr,
        }
    }

    fn call(&self, call: Call) -> Result<Reply, CallFailure> {
        let hooks = Arc::clone(&self.hooks);
        within(LIMIT, move || hooks.call(call))
    }

    /// Opens an API stream serving `LocalAPI` with `CONFIG` (RPC-13) and activates the plugin
    /// with it.
    fn activate(
        &self,
    ) -> (
        rpcplugin_reference_plugin::runtime::Stream,
        thread::JoinHandle<ServeEnd>,
        Result<Reply, CallFailure>,
    ) {
        let api = self.conn.open_stream().unwrap();
        let server = serve(
            api.clone(),
            &[API_SERVICE],
            Arc::new(|call| match call {
                Call::LoadPluginConfiguration => Ok(Reply::Configuration(CONFIG.to_vec())),
                other => Err(format!("unexpected {other}")),
            }),
        )
        .unwrap();
        let id = api.id().get();
        let result = self.call(Call::OnActivate { api_stream: id });
        (api, server, result)
    }

    /// Closes the connection as a host does (TRANS-8) and waits at most EXIT_BOUND for the
    /// plugin to exit; returns its exit, how long it took, its stdout and its stderr.
    fn close(self) -> (Option<Exit>, Duration, String, String) {
        let Running {
            mut process,
            conn,
            hooks,
            stdout,
            stderr,
        } = self;
        drop(hooks);
        let start = Instant::now();
        conn.close();
        let exit = process.wait_timeout(EXIT_BOUND).unwrap();
        let took = start.elapsed();
        if exit.is_none() {
            let _ = process.kill();
        }
        let out = stdout.recv_timeout(LIMIT).expect("stdout ends");
        let err = stderr.recv_timeout(LIMIT).expect("stderr ends");
        (exit, took, out, err)
    }
}

/// Voluntary thread switches of process `pid` so far (Linux; `None` without /proc).
fn voluntary_switches(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let status = std::fs::read_to_string(task.ok()?.path().join("status")).ok()?;
        sum += status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))?
            .trim()
            .parse::<u64>()
            .ok()?;
    }
    Some(sum)
}

/// Whether process `pid` has any child process (Linux; `None` without /proc).
fn has_children(pid: u32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut any = false;
    for task in tasks {
        let path = task.ok()?.path().join("children");
        any |= !std::fs::read_to_string(path).ok()?.trim().is_empty();
    }
    Some(any)
}

// The seed's TestMain with the reference plugin: handshake, activation (the plugin loads its
// configuration through the API and logs it), deactivation (goodbye, and the API stream is
// closed); then the host closes its pipes and the plugin exits with status 0 within EXIT_BOUND,
// having written its log to stderr only and started no process.
// covers: TRANS-2, TRANS-3, TRANS-7, TRANS-9, TRANS-10, TRANS-11, HS-1, RPC-12, RPC-20, RPC-15
#[test]
fn a_host_activates_and_deactivates_it_and_it_exits_0_when_the_host_closes() {
    let plugin = Running::start(&[]);
    let (api, server, result) = plugin.activate();
    assert_eq!(result, Ok(Reply::Empty));
    assert!(!has_children(plugin.process.pid()).unwrap_or(false));
    assert_eq!(plugin.call(Call::OnDeactivate), Ok(Reply::Empty));
    assert_eq!(
        within(LIMIT, move || server.join().unwrap()),
        ServeEnd::Closed,
        "the plugin closed the API stream on OnDeactivate"
    );
    drop(api);
    let (exit, took, out, err) = plugin.close();
    assert_eq!(exit, Some(Exit::Code(0)), "took {took:?}; stderr: {err}");
    assert!(took < EXIT_BOUND);
    assert!(out.is_empty(), "nothing on stdout: {out}");
    let lines: Vec<&str> = err.lines().collect();
    const ACTIVATED: &str = "reference plugin: activated with configuration ";
    let at = lines
        .iter()
        .position(|l| l.starts_with(ACTIVATED))
        .unwrap_or_else(|| panic!("no activation line: {err}"));
    let logged: serde_json::Value = serde_json::from_str(&lines[at][ACTIVATED.len()..]).unwrap();
    assert_eq!(
        logged,
        serde_json::from_slice::<serde_json::Value>(CONFIG).unwrap()
    );
    assert_eq!(
        lines.get(at + 1),
        Some(&"reference plugin: goodbye"),
        "{err}"
    );
}

// covers: RPC-20, TRANS-10
#[test]
fn fail_activate_makes_activation_fail_with_a_message() {
    let plugin = Running::start(&[("RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE", "1")]);
    let (_api, _server, result) = plugin.activate();
    match result {
        Err(CallFailure::Remote { text, .. }) => assert_eq!(
            text,
            "reference plugin: activation fails on purpose \
             (RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE=1)"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(plugin.call(Call::OnDeactivate), Ok(Reply::Empty));
    let (exit, _, _, err) = plugin.close();
    assert_eq!(exit, Some(Exit::Code(0)), "stderr: {err}");
}

// The plugin of the seed's TestSupervisor_PluginCrash: it exits abruptly on activation; the
// host's call fails and its connection ends.
// covers: RPC-11, TRANS-7
#[test]
fn crash_on_activate_exits_with_3_without_answering() {
    let mut plugin = Running::start(&[("RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE", "1")]);
    let (_api, _server, result) = plugin.activate();
    assert!(
        matches!(result, Err(CallFailure::Ended { .. })),
        "{result:?}"
    );
    assert_eq!(
        plugin.conn.wait_ended(LIMIT),
        Some(ConnectionEnd::PeerClosed)
    );
    assert_eq!(
        plugin.process.wait_timeout(LIMIT).unwrap(),
        Some(Exit::Code(3))
    );
    let (_, _, _, err) = plugin.close();
    assert!(err.contains("crashing on purpose"), "{err}");
}

// A malformed frame from the host is a connection error: the plugin exits with a non-zero
// status (1) and says why on stderr.
// covers: HS-1, FRAME-14, TRANS-9, TRANS-10
#[test]
fn a_connection_error_makes_it_exit_with_1() {
    let Launched {
        mut process,
        reader,
        writer,
    } = launch_plugin(&[]);
    let stderr = capture(process.take_stderr().unwrap());
    let mut reader = File::from(reader);
    let mut writer = File::from(writer);
    let (announcement, reader) = within(LIMIT, move || {
        let mut buf = [0u8; 4];
        reader.read_exact(&mut buf).unwrap();
        (buf, reader)
    });
    assert_eq!(announcement, [0x00, 0x04, 0x00, 0x04]);
    writer.write_all(&[0x01, 0x00]).unwrap();
    let exit = process.wait_timeout(EXIT_BOUND).unwrap();
    if exit.is_none() {
        let _ = process.kill();
    }
    assert_eq!(exit, Some(Exit::Code(1)));
    drop((reader, writer));
    let err = stderr.recv_timeout(LIMIT).unwrap();
    assert!(err.contains("the connection to the host failed"), "{err}");
}

// Between calls the plugin's threads sleep: after a burst of calls and a quiet moment, the
// plugin makes almost no thread switches. (The reader thread that stands by while another runs
// a call checks on a 1 ms timer only while calls come; a standby that kept checking would make
// about a thousand a second.)
#[test]
fn an_idle_plugin_sleeps() {
    let plugin = Running::start(&[]);
    let (api, server, result) = plugin.activate();
    assert_eq!(result, Ok(Reply::Empty));
    for _ in 0..100 {
        assert_eq!(plugin.call(Call::OnDeactivate), Ok(Reply::Empty));
    }
    thread::sleep(Duration::from_millis(500));
    let pid = plugin.process.pid();
    if let Some(before) = voluntary_switches(pid) {
        thread::sleep(Duration::from_secs(1));
        let after = voluntary_switches(pid).expect("the plugin still runs");
        assert!(
            after - before < 50,
            "{} thread switches in 1 s of idleness",
            after - before
        );
    }
    drop(api);
    let (exit, _, _, err) = plugin.close();
    assert_eq!(exit, Some(Exit::Code(0)), "stderr: {err}");
    let _ = within(LIMIT, move || server.join());
}
