//! Launching real child processes with their pipes as descriptors 3 and 4
//! (`spec/01-transport.md`), and the plugin side taking them over.
//!
//! Children are `/bin/sh -c` scripts, or this test binary itself run again with
//! `CHILD_ENV` set (see [`plugin_side_child`]). Every blocking step has a time limit, so a wrong
//! implementation fails instead of hanging.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::kill;
use nix::unistd::Pid;
use rpcplugin_runtime::process::{
    close_inheritable_descriptors, inheritable_descriptors, inherited_pipes, launch, Exit,
    InheritError, LaunchError, LaunchOptions, Output, PluginProcess,
};
use rpcplugin_test_support::bins::fresh_dir;
use rpcplugin_test_support::procs::process_exists;
use rpcplugin_test_support::within_named;
use wait_timeout::ChildExt;

/// Generous limit for anything a healthy child does (the machine is small and shared).
const LIMIT: Duration = Duration::from_secs(10);

/// Tells [`plugin_side_child`] which part to play.
const CHILD_ENV: &str = "RPCPLUGIN_PROCESS_TEST_CHILD";
const CHILD_TEST: &str = "plugin_side_child";

fn sh(script: &str) -> LaunchOptions {
    let mut opts = LaunchOptions::new("/bin/sh");
    opts.args = vec!["-c".into(), script.into()];
    opts
}

/// This test binary, run again with only [`plugin_side_child`] selected, in `mode`.
fn self_as_child(mode: &str) -> LaunchOptions {
    let mut opts = LaunchOptions::new(std::env::current_exe().unwrap());
    opts.args = child_args();
    opts.env = vec![(CHILD_ENV.into(), mode.into())];
    opts
}

fn child_args() -> Vec<OsString> {
    ["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"]
        .into_iter()
        .map(OsString::from)
        .collect()
}

/// One `read` that waits at most until `deadline` for data or end-of-file.
fn read_some<R: Read + AsFd>(r: &mut R, buf: &mut [u8], deadline: Instant, what: &str) -> usize {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut fds = [PollFd::new(r.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::try_from(left).unwrap()) {
            // wait_timeout installs a SIGCHLD handler, and poll is never restarted after one.
            Err(Errno::EINTR) => continue,
            Err(e) => panic!("poll: {e}"),
            Ok(0) => panic!("timed out reading {what}"),
            Ok(_) => {}
        }
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            result => return result.unwrap_or_else(|e| panic!("reading {what}: {e}")),
        }
    }
}

fn read_exact_within<R: Read + AsFd>(r: &mut R, n: usize, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + LIMIT;
    let mut out = vec![0; n];
    let mut got = 0;
    while got < n {
        let k = read_some(r, &mut out[got..], deadline, what);
        assert!(k > 0, "end-of-file on {what} after {got} of {n} bytes");
        got += k;
    }
    out
}

fn read_to_end_within<R: Read + AsFd>(r: &mut R, what: &str) -> Vec<u8> {
    let deadline = Instant::now() + LIMIT;
    let mut out = Vec::new();
    let mut buf = [0; 64 * 1024];
    loop {
        let k = read_some(r, &mut buf, deadline, what);
        if k == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..k]);
    }
}

fn wait_within(p: &mut PluginProcess) -> Exit {
    match p.wait_timeout(LIMIT).expect("wait") {
        Some(exit) => exit,
        None => panic!("child {} still running after {LIMIT:?}", p.pid()),
    }
}

/// What `/proc/self/fd/N` points to, in this process.
fn link_of(fd: &impl AsRawFd) -> String {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .unwrap()
        .display()
        .to_string()
}

/// Lists the child's open descriptors with `ls -l /proc/self/fd` (run through `exec`, so `ls`
/// is the launched process), minus `ls`'s own directory descriptor.
fn child_descriptors(out: &str) -> BTreeMap<i32, String> {
    let mut fds = BTreeMap::new();
    for line in out.lines() {
        let Some((left, target)) = line.split_once(" -> ") else {
            continue;
        };
        let fd: i32 = left.split_whitespace().last().unwrap().parse().unwrap();
        if target.starts_with("/proc/") && target.ends_with("/fd") {
            continue; // ls reading /proc/<its pid>/fd
        }
        fds.insert(fd, target.to_string());
    }
    fds
}

fn scratch_dir(name: &str) -> PathBuf {
    fresh_dir(std::env::temp_dir().join(format!(
        "rpcplugin-process-test-{}-{name}",
        std::process::id()
    )))
}

// covers: TRANS-1, TRANS-2
#[test]
fn ping_pong_through_descriptors_3_and_4() {
    // The seed's TestIPC and TestProcess: the child writes "ping" on 4, expects "pong" on 3.
    let mut opts =
        sh(r#"printf ping >&4; r=$(head -c 4 <&3); [ "$r" = pong ] || exit 1; printf ok >&4"#);
    opts.stderr = Output::Capture;
    let launched = launch(&opts).unwrap();
    let mut process = launched.process;
    let mut reader = File::from(launched.reader);
    let mut writer = File::from(launched.writer);

    assert_eq!(read_exact_within(&mut reader, 4, "ping"), b"ping");
    writer.write_all(b"pong").unwrap();
    assert_eq!(read_exact_within(&mut reader, 2, "ok"), b"ok");
    assert_eq!(
        read_to_end_within(&mut reader, "end of the plugin-to-host pipe"),
        b""
    );
    let exit = wait_within(&mut process);
    let stderr = read_to_end_within(&mut process.take_stderr().unwrap(), "stderr");
    assert_eq!(
        exit,
        Exit::Code(0),
        "stderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    assert!(exit.success());
    assert_eq!(process.exit(), Some(Exit::Code(0)));
}

// covers: TRANS-1, TRANS-2, TRANS-12
#[test]
fn a_megabyte_echoes_back_and_end_of_file_propagates() {
    // `cat` copies 3 to 4 until end-of-file on 3, which it sees only if the host's write end is
    // the sole writer; the host then sees end-of-file on its reader only if it holds no copy of
    // the child's write end.
    let launched = launch(&sh("exec cat <&3 >&4")).unwrap();
    let mut process = launched.process;
    let mut reader = File::from(launched.reader);
    let writer = File::from(launched.writer);
    let data: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let sent = data.clone();
    let feeder = thread::spawn(move || {
        let mut writer = writer;
        writer.write_all(&sent).unwrap();
        // dropping `writer` closes the host's end: cat reads end-of-file
    });
    let echoed = read_to_end_within(&mut reader, "echo");
    feeder.join().unwrap();
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "echoed bytes differ");
    assert_eq!(wait_within(&mut process), Exit::Code(0));
}

// covers: TRANS-1, TRANS-4
#[test]
fn the_child_inherits_only_descriptors_0_to_4() {
    // Descriptors the host holds while launching: none may reach the child.
    let extra_file = File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")).unwrap();
    let (extra_reader, extra_writer) = io::pipe().unwrap();
    // Descriptors this test process itself inherited without close-on-exec (from whatever
    // started `cargo test`) reach every child it starts; launch() cannot remove them without
    // unsafe code. They are allowed here, and ruled out by the strict test below.
    let inherited_by_host = inheritable_descriptors().unwrap();

    let mut opts = sh("exec ls -l /proc/self/fd");
    opts.stdout = Output::Capture;
    let launched = launch(&opts).unwrap();
    let mut process = launched.process;
    let out = read_to_end_within(&mut process.take_stdout().unwrap(), "ls output");
    assert_eq!(wait_within(&mut process), Exit::Code(0));
    let out = String::from_utf8(out).unwrap();
    let fds = child_descriptors(&out);

    assert_eq!(fds.get(&0).map(String::as_str), Some("/dev/null"), "{out}");
    // 3 is the pipe the host writes to, 4 the pipe the host reads from (TRANS-1).
    assert_eq!(fds.get(&3), Some(&link_of(&launched.writer)), "{out}");
    assert_eq!(fds.get(&4), Some(&link_of(&launched.reader)), "{out}");
    for extra in [
        link_of(&extra_file),
        link_of(&extra_reader),
        link_of(&extra_writer),
    ] {
        assert!(!fds.values().any(|t| *t == extra), "{extra} leaked:\n{out}");
    }
    let unexpected: Vec<_> = fds
        .keys()
        .filter(|fd| **fd > 4 && !inherited_by_host.contains(fd))
        .collect();
    assert!(
        unexpected.is_empty(),
        "descriptors {unexpected:?} leaked:\n{out}"
    );
    if !inherited_by_host.is_empty() {
        eprintln!(
            "note: this test process inherited descriptors {inherited_by_host:?} without \
             close-on-exec; its children inherit them too"
        );
    }
}

// covers: TRANS-4, TRANS-6
#[test]
fn a_host_that_closes_its_inherited_descriptors_passes_exactly_0_to_4() {
    // Run this binary as a host ("strict-host" mode) and hand it a descriptor without
    // close-on-exec as its descriptor 7, as a careless parent would.
    let (leak_reader, _leak_writer) = io::pipe().unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    // Its standard input is a pipe, not /dev/null, so that the child it launches shows whether
    // launch() replaces standard input (TRANS-6) rather than passing the host's on.
    cmd.args(child_args())
        .env(CHILD_ENV, "strict-host")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.fd_mappings(vec![FdMapping {
        parent_fd: OwnedFd::from(leak_reader),
        child_fd: 7,
    }])
    .unwrap();
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let status = child.wait_timeout(LIMIT).unwrap();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("strict host hung; stderr:\n{stderr}"));
    assert_eq!(status.code(), Some(0), "stderr:\n{stderr}");
}

// covers: TRANS-6
#[test]
fn the_childs_standard_input_is_dev_null() {
    // When this test process's own standard input is /dev/null too, this cannot tell "replaced"
    // from "passed on"; the strict-host test above can.
    let mut opts = sh("exec readlink /proc/self/fd/0");
    opts.stdout = Output::Capture;
    let launched = launch(&opts).unwrap();
    let mut process = launched.process;
    let out = read_to_end_within(&mut process.take_stdout().unwrap(), "readlink output");
    assert_eq!(wait_within(&mut process), Exit::Code(0));
    assert_eq!(String::from_utf8(out).unwrap(), "/dev/null\n");
}

// covers: TRANS-12
#[test]
fn the_host_keeps_no_copy_of_the_childs_ends() {
    let launched = launch(&sh("exit 0")).unwrap();
    let mut process = launched.process;
    // While the child may still run: the host has exactly one descriptor on each pipe, its own.
    for (mine, what) in [(&launched.reader, "reader"), (&launched.writer, "writer")] {
        let link = link_of(mine);
        let copies = fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter(|t| t.display().to_string() == link)
            .count();
        assert_eq!(
            copies, 1,
            "the host holds {copies} descriptors on the {what}'s pipe"
        );
    }
    assert_eq!(wait_within(&mut process), Exit::Code(0));
    // The child is gone: end-of-file on the reader (no writer left anywhere) and EPIPE on the
    // writer (no reader left anywhere).
    let mut reader = File::from(launched.reader);
    assert_eq!(read_to_end_within(&mut reader, "reader after exit"), b"");
    let mut writer = File::from(launched.writer);
    let err = writer.write_all(b"x").unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
}

// covers: none (host-side process management, not a spec requirement)
#[test]
fn bad_paths_give_precise_errors() {
    let dir = scratch_dir("bad-paths");

    let missing = dir.join("missing");
    match launch(&LaunchOptions::new(&missing)) {
        Err(e @ LaunchError::NotFound { .. }) => {
            assert!(matches!(&e, LaunchError::NotFound { path } if *path == missing));
            assert_eq!(
                e.to_string(),
                format!("plugin executable {} not found", missing.display())
            );
        }
        other => panic!("{other:?}"),
    }

    match launch(&LaunchOptions::new(&dir)) {
        Err(e @ LaunchError::NotAFile { .. }) => {
            assert!(matches!(&e, LaunchError::NotAFile { path } if *path == dir));
            assert_eq!(
                e.to_string(),
                format!("plugin executable {} is not a file", dir.display())
            );
        }
        other => panic!("{other:?}"),
    }

    let plain = dir.join("plain");
    fs::write(&plain, "#!/bin/sh\nexit 0\n").unwrap();
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o644)).unwrap();
    match launch(&LaunchOptions::new(&plain)) {
        Err(e @ LaunchError::NotExecutable { .. }) => {
            assert!(matches!(&e, LaunchError::NotExecutable { path } if *path == plain));
            assert!(
                e.to_string().starts_with(&format!(
                    "plugin executable {} is not executable",
                    plain.display()
                )),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }

    // The same file with an execute bit runs.
    fs::set_permissions(&plain, fs::Permissions::from_mode(0o755)).unwrap();
    let mut process = launch(&LaunchOptions::new(&plain)).unwrap().process;
    assert_eq!(wait_within(&mut process), Exit::Code(0));

    // A failure after the checks, inside spawn: a working directory that does not exist.
    let mut opts = sh("exit 0");
    opts.cwd = Some(dir.join("no-such-dir"));
    match launch(&opts) {
        Err(e @ LaunchError::Spawn { .. }) => {
            assert!(
                e.to_string()
                    .starts_with("cannot start plugin executable /bin/sh: "),
                "{e}"
            );
        }
        other => panic!("{other:?}"),
    }

    fs::remove_dir_all(&dir).unwrap();
}

// covers: none (host-side process management, not a spec requirement)
#[test]
fn options_reach_the_child_and_output_can_be_captured() {
    let dir = scratch_dir("options");
    let mut opts = sh(r#"printf '%s|%s|%s|' "$0" "$1" "$RPCPLUGIN_TEST_VAR"; pwd; echo oops >&2"#);
    opts.args.extend(["zero".into(), "one".into()]);
    opts.env = vec![("RPCPLUGIN_TEST_VAR".into(), "value".into())];
    opts.cwd = Some(dir.clone());
    opts.stdout = Output::Capture;
    opts.stderr = Output::Capture;
    let launched = launch(&opts).unwrap();
    let mut process = launched.process;
    let out = read_to_end_within(&mut process.take_stdout().unwrap(), "stdout");
    let err = read_to_end_within(&mut process.take_stderr().unwrap(), "stderr");
    assert!(process.take_stdout().is_none());
    assert_eq!(wait_within(&mut process), Exit::Code(0));
    let dir = fs::canonicalize(&dir).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        format!("zero|one|value|{}\n", dir.display())
    );
    assert_eq!(err, b"oops\n");
    // Nothing on the protocol pipe.
    let mut reader = File::from(launched.reader);
    assert_eq!(read_to_end_within(&mut reader, "protocol pipe"), b"");

    let mut opts = sh("echo hidden; echo hidden >&2");
    opts.stdout = Output::Null;
    opts.stderr = Output::Null;
    let mut process = launch(&opts).unwrap().process;
    assert!(process.take_stdout().is_none() && process.take_stderr().is_none());
    assert_eq!(wait_within(&mut process), Exit::Code(0));
    fs::remove_dir_all(&dir).unwrap();
}

// covers: none (host-side process management, not a spec requirement)
#[test]
fn exit_statuses_are_reported() {
    let mut process = launch(&sh("exit 3")).unwrap().process;
    let exit = wait_within(&mut process);
    assert_eq!(exit, Exit::Code(3));
    assert!(!exit.success());
    assert_eq!(exit.to_string(), "exited with status 3");
    assert_eq!(process.exit(), Some(Exit::Code(3)));
    // Reaped: every waiting method repeats the status.
    assert_eq!(process.try_wait().unwrap(), Some(Exit::Code(3)));
    assert_eq!(process.wait().unwrap(), Exit::Code(3));
    assert_eq!(process.kill().unwrap(), Exit::Code(3));
    process.terminate().unwrap();

    assert_eq!(Exit::Signal(9).to_string(), "killed by signal 9 (SIGKILL)");
    assert_eq!(
        Exit::Signal(15).to_string(),
        "killed by signal 15 (SIGTERM)"
    );
    assert!(Exit::Code(0).success() && !Exit::Signal(9).success());
}

// covers: none (host-side process management, not a spec requirement)
#[test]
fn kill_and_terminate_report_the_signal() {
    let mut process = launch(&sh("exec sleep 30")).unwrap().process;
    assert_eq!(process.try_wait().unwrap(), None);
    assert_eq!(
        process.wait_timeout(Duration::from_millis(200)).unwrap(),
        None
    );
    assert_eq!(process.exit(), None);
    let exit = within_named(LIMIT, "kill", move || process.kill().unwrap());
    assert_eq!(exit, Exit::Signal(9));
    assert_eq!(exit.to_string(), "killed by signal 9 (SIGKILL)");

    let mut process = launch(&sh("exec sleep 30")).unwrap().process;
    process.terminate().unwrap();
    assert_eq!(wait_within(&mut process), Exit::Signal(15));
}

// covers: none (host-side process management, not a spec requirement)
#[test]
fn dropping_a_running_process_kills_and_reaps_it() {
    let launched = launch(&sh("exec sleep 30")).unwrap();
    let pid = Pid::from_raw(launched.process.pid() as i32);
    assert_eq!(kill(pid, None), Ok(()));
    let started = Instant::now();
    within_named(LIMIT, "drop", move || drop(launched));
    assert!(started.elapsed() < LIMIT);
    // Reaped, not a zombie: the pid is gone.
    assert_eq!(kill(pid, None), Err(Errno::ESRCH));
    assert!(!process_exists(pid.as_raw() as u32));
}

// covers: TRANS-2
#[test]
fn a_plugin_takes_over_its_inherited_pipes() {
    let mut opts = self_as_child("echo");
    opts.stdout = Output::Null;
    opts.stderr = Output::Capture;
    let launched = launch(&opts).unwrap();
    let mut process = launched.process;
    let mut reader = File::from(launched.reader);
    let mut writer = File::from(launched.writer);
    writer.write_all(b"ping").unwrap();
    drop(writer);
    let reply = read_to_end_within(&mut reader, "the plugin's reply");
    let exit = wait_within(&mut process);
    let stderr = read_to_end_within(&mut process.take_stderr().unwrap(), "stderr");
    let stderr = String::from_utf8_lossy(&stderr);
    assert_eq!(exit, Exit::Code(0), "stderr:\n{stderr}");
    assert_eq!(reply, b"echo:ping", "stderr:\n{stderr}");
}

/// Runs this binary in `mode` with plain `std::process::Command` (no pipes unless `mappings`
/// gives some) and returns its exit code and standard error.
fn run_self(mode: &str, mappings: Vec<FdMapping>) -> (Option<i32>, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(child_args())
        .env(CHILD_ENV, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd.fd_mappings(mappings).unwrap();
    let mut child = cmd.spawn().unwrap();
    drop(cmd);
    let status = child.wait_timeout(LIMIT).unwrap();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = status.unwrap_or_else(|| panic!("child hung; stderr:\n{stderr}"));
    (status.code(), stderr)
}

// covers: TRANS-1, TRANS-2
#[test]
fn a_program_without_the_pipes_says_so() {
    let leaked = inheritable_descriptors().unwrap();
    if leaked.contains(&3) || leaked.contains(&4) {
        eprintln!("skipped: this process passes its own descriptors {leaked:?} to its children");
        return;
    }
    let (code, stderr) = run_self("take", Vec::new());
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains(
            "file descriptor 3 is not open: this program is a plugin and must be started by an \
             rpcplugin host with its pipes as descriptors 3 and 4"
        ),
        "stderr:\n{stderr}"
    );

    // Descriptor 3 open the wrong way round.
    let (r, w) = io::pipe().unwrap();
    let (r2, w2) = io::pipe().unwrap();
    let (code, stderr) = run_self(
        "take",
        vec![
            FdMapping {
                parent_fd: w.into(),
                child_fd: 3,
            },
            FdMapping {
                parent_fd: w2.into(),
                child_fd: 4,
            },
        ],
    );
    drop((r, r2));
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("file descriptor 3 is open write-only but must be readable"),
        "stderr:\n{stderr}"
    );

    // Descriptors 3 and 4 that the program opened itself are not taken (or closed).
    let (code, stderr) = run_self("preopened", Vec::new());
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("file descriptor 3 was opened by this process (it is close-on-exec)"),
        "stderr:\n{stderr}"
    );

    // Descriptor 3 fine, descriptor 4 missing.
    let (r, w) = io::pipe().unwrap();
    let (code, stderr) = run_self(
        "take",
        vec![FdMapping {
            parent_fd: r.into(),
            child_fd: 3,
        }],
    );
    drop(w);
    assert_eq!(code, Some(2), "stderr:\n{stderr}");
    assert!(
        stderr.contains("file descriptor 4 is not open"),
        "stderr:\n{stderr}"
    );
}

fn is_cloexec(fd: &OwnedFd) -> bool {
    FdFlag::from_bits_retain(fcntl(fd, FcntlArg::F_GETFD).unwrap()).contains(FdFlag::FD_CLOEXEC)
}

/// The child side of the tests above; does nothing unless `CHILD_ENV` is set.
///
/// - `echo`: takes the pipes, checks them, answers `echo:` + whatever it reads until end-of-file;
/// - `take`: takes the pipes; on failure prints the error and exits with status 2;
/// - `preopened`: the same after opening descriptors 3 and 4 itself;
/// - `strict-host`: closes what it inherited, launches `ls -l /proc/self/fd` and requires
///   exactly descriptors 0 to 4 in it, with /dev/null as 0.
// covers: TRANS-2, TRANS-4, TRANS-6
#[test]
fn plugin_side_child() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    match mode.to_str().unwrap() {
        "echo" => {
            let (reader, writer) = inherited_pipes().unwrap_or_else(|e| {
                eprintln!("{e}");
                std::process::exit(2)
            });
            // The originals are closed, the new descriptors are close-on-exec.
            assert!(fs::read_link("/proc/self/fd/3").is_err());
            assert!(fs::read_link("/proc/self/fd/4").is_err());
            assert!(is_cloexec(&reader) && is_cloexec(&writer));
            assert!(matches!(inherited_pipes(), Err(InheritError::AlreadyTaken)));
            let mut reader = File::from(reader);
            let mut writer = File::from(writer);
            let mut input = Vec::new();
            reader.read_to_end(&mut input).unwrap();
            writer.write_all(b"echo:").unwrap();
            writer.write_all(&input).unwrap();
            std::process::exit(0);
        }
        "preopened" => {
            // Descriptors 3 and 4 opened by this process itself (close-on-exec), not inherited.
            let first = File::open("/dev/null").unwrap();
            let second = File::open("/dev/null").unwrap();
            assert_eq!((first.as_raw_fd(), second.as_raw_fd()), (3, 4));
            match inherited_pipes() {
                Ok(_) => std::process::exit(0),
                Err(e) => {
                    eprintln!("{e}");
                    // Left alone: still open.
                    assert!(fs::read_link("/proc/self/fd/3").is_ok());
                    std::process::exit(2)
                }
            }
        }
        "take" => match inherited_pipes() {
            Ok(_) => std::process::exit(0),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2)
            }
        },
        "strict-host" => {
            let closed = close_inheritable_descriptors().unwrap();
            eprintln!("strict host: closed {closed:?}");
            assert!(closed.contains(&7), "the parent passed descriptor 7");
            let mut opts = sh("exec ls -l /proc/self/fd");
            opts.stdout = Output::Capture;
            let launched = launch(&opts).unwrap();
            let mut process = launched.process;
            let out = read_to_end_within(&mut process.take_stdout().unwrap(), "ls output");
            assert_eq!(wait_within(&mut process), Exit::Code(0));
            let out = String::from_utf8(out).unwrap();
            assert!(
                link_of(&io::stdin()).starts_with("pipe:"),
                "the strict host's own stdin is a pipe"
            );
            let fds = child_descriptors(&out);
            assert_eq!(
                fds.keys().copied().collect::<Vec<_>>(),
                [0, 1, 2, 3, 4],
                "{out}"
            );
            assert_eq!(fds[&0], "/dev/null", "{out}");
            std::process::exit(0);
        }
        other => panic!("unknown child mode {other}"),
    }
}
