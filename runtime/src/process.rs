//! Launching a plugin process with its two pipes, and taking them over inside the plugin.
//!
//! This module implements the transport of `spec/01-transport.md` on the host side ([`launch`],
//! [`PluginProcess`]) and on the plugin side ([`inherited_pipes`]):
//!
//! ```text
//!          host process                                        plugin process
//!   Launched::writer  ======== host-to-plugin pipe =======>  fd 3 (read end)
//!   Launched::reader  <======= plugin-to-host pipe ========  fd 4 (write end)
//! ```
//!
//! - TRANS-1: the child's descriptors 3 and 4 are the read end of a fresh host-to-plugin pipe and
//!   the write end of a fresh plugin-to-host pipe.
//! - TRANS-4: every descriptor the host creates is close-on-exec (the standard library opens
//!   everything that way, [`std::io::pipe`] included); only the two ends being installed as 3
//!   and 4 in the child lose the flag, in the child, between `fork` and `exec`. The exception is
//!   a descriptor the host process itself inherited without close-on-exec from its own parent:
//!   every child inherits it in turn, and closing it between `fork` and `exec` would take
//!   `unsafe` code. [`inheritable_descriptors`] lists such descriptors and
//!   [`close_inheritable_descriptors`] closes them at host startup.
//! - TRANS-6: the child's standard input is `/dev/null`.
//! - TRANS-13: the child is the leader of a process group of its own, so that a signal sent to
//!   the host's process group (a terminal's Ctrl-C) does not reach it.
//! - TRANS-12: [`launch`] closes the host's copies of the child's two ends as soon as the child
//!   has started (or failed to start).
//!
//! A [`PluginProcess`] that is dropped before its child was reaped kills (`SIGKILL`) and reaps it,
//! so the host leaves neither zombies nor orphans behind.

use std::ffi::OsString;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;
use wait_timeout::ChildExt;

/// The descriptor on which a plugin reads what the host writes (TRANS-1).
pub const PLUGIN_READ_FD: RawFd = 3;
/// The descriptor on which a plugin writes what the host reads (TRANS-1).
pub const PLUGIN_WRITE_FD: RawFd = 4;

/// Where the child's standard output or standard error goes.
///
/// Neither carries protocol data (TRANS-3); they are logs at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The host's own standard output or standard error (what the seed does).
    #[default]
    Inherit,
    /// `/dev/null`.
    Null,
    /// A new pipe, read through [`PluginProcess::take_stdout`] or
    /// [`PluginProcess::take_stderr`]. The host has to keep reading it, or the child blocks once
    /// the pipe is full.
    Capture,
}

impl Output {
    fn stdio(self) -> Stdio {
        match self {
            Output::Inherit => Stdio::inherit(),
            Output::Null => Stdio::null(),
            Output::Capture => Stdio::piped(),
        }
    }
}

/// What to launch and how.
#[derive(Debug, Clone)]
pub struct LaunchOptions {
    /// Path of the plugin executable. It is never searched for in `PATH`; a relative path is
    /// relative to the host's current directory (not to [`LaunchOptions::cwd`]).
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<OsString>,
    /// Environment variables set in the child, on top of the host's environment.
    pub env: Vec<(OsString, OsString)>,
    /// Working directory of the child; the host's own when `None`.
    pub cwd: Option<PathBuf>,
    /// The child's standard output.
    pub stdout: Output,
    /// The child's standard error.
    pub stderr: Output,
    /// The child's standard input: `/dev/null` (TRANS-6) unless set to another [`Stdin`].
    pub stdin: Stdin,
    /// Whether the child leads a process group of its own (TRANS-13), the default. `false`
    /// leaves it in the host's group, which TRANS-13 forbids: for deliberately broken test
    /// hosts only.
    pub own_process_group: bool,
}

/// Where the child's standard input comes from. It carries no protocol data (TRANS-5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdin {
    /// `/dev/null`, as TRANS-6 recommends.
    #[default]
    Null,
    /// A new pipe whose write end [`PluginProcess::take_stdin`] hands out: a child that reads
    /// its standard input blocks until that end is written to or closed (a conformance harness
    /// uses it to check TRANS-5).
    Pipe,
    /// The host's own standard input, which TRANS-6 advises against: a plugin that reads it
    /// takes input meant for the host. For deliberately broken test hosts only.
    Inherit,
}

impl LaunchOptions {
    /// Options that launch `program` with no arguments, the host's environment and working
    /// directory, and the host's standard output and standard error.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        LaunchOptions {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            stdout: Output::Inherit,
            stderr: Output::Inherit,
            stdin: Stdin::Null,
            own_process_group: true,
        }
    }
}

/// A launched plugin: its process and the host's ends of the two pipes.
#[derive(Debug)]
pub struct Launched {
    /// The child process.
    pub process: PluginProcess,
    /// Read end of the plugin-to-host pipe: the host reads here what the child writes to its
    /// descriptor 4. Close-on-exec.
    pub reader: OwnedFd,
    /// Write end of the host-to-plugin pipe: what the host writes here the child reads on its
    /// descriptor 3. Close-on-exec.
    pub writer: OwnedFd,
}

/// Why [`launch`] failed. Messages name the executable's path (made absolute).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// Nothing exists at the path.
    #[error("plugin executable {} not found", path.display())]
    NotFound {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The path names a directory or another non-regular file.
    #[error("plugin executable {} is not a file", path.display())]
    NotAFile {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The file has no execute permission bit at all.
    #[error("plugin executable {} is not executable (no execute permission)", path.display())]
    NotExecutable {
        /// The path that was looked at.
        path: PathBuf,
    },
    /// The path could not be examined (for example a directory on the way is not searchable).
    #[error("cannot access plugin executable {}: {source}", path.display())]
    Inaccessible {
        /// The path that was looked at.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
    /// Creating one of the two pipes failed (for example, too many open files).
    #[error("cannot create the plugin's pipes: {0}")]
    Pipe(#[source] io::Error),
    /// The operating system refused to start the executable.
    #[error("cannot start plugin executable {}: {source}", path.display())]
    Spawn {
        /// The executable.
        path: PathBuf,
        /// What the operating system said.
        source: io::Error,
    },
}

/// How a plugin process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// It exited with this status.
    Code(i32),
    /// A signal with this number terminated it.
    Signal(i32),
}

impl Exit {
    /// Whether it exited with status 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl From<ExitStatus> for Exit {
    fn from(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(sig)) => Exit::Signal(sig),
            // Only stopped or continued children have neither, and `wait` never reports those.
            (None, None) => Exit::Code(status.into_raw()),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Exit::Code(code) => write!(f, "exited with status {code}"),
            Exit::Signal(sig) => match Signal::try_from(sig) {
                Ok(name) => write!(f, "killed by signal {sig} ({})", name.as_str()),
                Err(_) => write!(f, "killed by signal {sig}"),
            },
        }
    }
}

/// A running (or finished) plugin process.
///
/// Dropping it before the child was reaped sends `SIGKILL` and waits for the child, so a host
/// never leaves a zombie or an orphan behind. To let a plugin exit on its own, close the pipes
/// and [`wait`](PluginProcess::wait) (or [`wait_timeout`](PluginProcess::wait_timeout)) first.
#[derive(Debug)]
pub struct PluginProcess {
    child: Child,
    exit: Option<Exit>,
}

impl PluginProcess {
    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How the child ended, once it has been reaped by one of the waiting methods.
    pub fn exit(&self) -> Option<Exit> {
        self.exit
    }

    fn record(&mut self, status: Option<ExitStatus>) -> Option<Exit> {
        if let Some(status) = status {
            self.exit = Some(Exit::from(status));
        }
        self.exit
    }

    /// Reaps the child if it has ended, without blocking; `None` while it runs.
    pub fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        let status = self.child.try_wait()?;
        Ok(self.record(status))
    }

    /// Waits at most `d` for the child to end; `None` if it is still running then.
    pub fn wait_timeout(&mut self, d: Duration) -> io::Result<Option<Exit>> {
        if self.exit.is_some() {
            return Ok(self.exit);
        }
        let status = self.child.wait_timeout(d)?;
        Ok(self.record(status))
    }

    /// Waits for the child to end, however long that takes.
    pub fn wait(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let status = self.child.wait()?;
        self.exit = Some(Exit::from(status));
        Ok(Exit::from(status))
    }

    /// Asks the child to end by sending it `SIGTERM`, unless it was already reaped. Does not
    /// wait; follow with [`wait_timeout`](PluginProcess::wait_timeout) and
    /// [`kill`](PluginProcess::kill) if it does not go away.
    pub fn terminate(&mut self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        // The child is not reaped yet (at worst a zombie), so its pid cannot have been reused.
        signal::kill(pid_of(&self.child), Signal::SIGTERM).map_err(io::Error::from)
    }

    /// Kills the child with `SIGKILL` unless it was already reaped, then reaps it. Returns how it
    /// ended: `Exit::Signal(9)`, unless it had ended on its own before the signal.
    pub fn kill(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        self.child.kill()?;
        self.wait()
    }

    /// The write end of the child's standard input, when launched with [`Stdin::Pipe`] (once).
    pub fn take_stdin(&mut self) -> Option<std::process::ChildStdin> {
        self.child.stdin.take()
    }

    /// The child's standard output, when launched with [`Output::Capture`] (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// The child's standard error, when launched with [`Output::Capture`] (once).
    pub fn take_stderr(&mut self) -> Option<ChildStderr> {
        self.child.stderr.take()
    }
}

impl Drop for PluginProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            // Errors cannot be reported from drop; `kill` fails only if the child is gone.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn pid_of(child: &Child) -> Pid {
    // Process ids fit in pid_t; std gets the id from a pid_t in the first place.
    Pid::from_raw(child.id() as i32)
}

/// Checks that `path` names a regular file with at least one execute permission bit.
fn check_executable(path: &Path) -> Result<(), LaunchError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(LaunchError::NotFound {
                path: path.to_path_buf(),
            })
        }
        Err(source) => {
            return Err(LaunchError::Inaccessible {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if !meta.is_file() {
        return Err(LaunchError::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(LaunchError::NotExecutable {
            path: path.to_path_buf(),
        });
    }
    Ok(())
}

/// Starts the plugin executable with two fresh pipes as its descriptors 3 and 4.
///
/// The child gets: standard input, standard output and standard error as `opts` says
/// (standard input `/dev/null` by default, TRANS-6); the read end of the host-to-plugin pipe
/// as descriptor 3 and the write end of the plugin-to-host pipe as descriptor 4 (TRANS-1);
/// nothing else (TRANS-4), apart from descriptors this process itself inherited without
/// close-on-exec (see [`inheritable_descriptors`]). The child leads a new process group
/// (TRANS-13). Before returning, the host's copies of
/// those two ends are closed (TRANS-12), so [`Launched::reader`] reads end-of-file once the
/// child (and whatever it shared descriptor 4 with) has closed its end.
///
/// The path is checked first, so the common mistakes get a precise error:
/// [`LaunchError::NotFound`], [`LaunchError::NotAFile`], [`LaunchError::NotExecutable`].
pub fn launch(opts: &LaunchOptions) -> Result<Launched, LaunchError> {
    let path = std::path::absolute(&opts.program).map_err(|source| LaunchError::Inaccessible {
        path: opts.program.clone(),
        source,
    })?;
    check_executable(&path)?;

    // Both pipes are created close-on-exec (pipe2 with O_CLOEXEC).
    let (host_reader, child_writer) = io::pipe().map_err(LaunchError::Pipe)?;
    let (child_reader, host_writer) = io::pipe().map_err(LaunchError::Pipe)?;

    let mut command = Command::new(&path);
    command
        .args(&opts.args)
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(match opts.stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Pipe => Stdio::piped(),
            Stdin::Inherit => Stdio::inherit(),
        })
        .stdout(opts.stdout.stdio())
        .stderr(opts.stderr.stdio());
    if let Some(cwd) = &opts.cwd {
        command.current_dir(cwd);
    }
    // TRANS-13: a process group of its own (setpgid(0, 0) in the child).
    if opts.own_process_group {
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    // TRANS-15, TRANS-16: std empties the signal mask and restores SIGPIPE in the child; the
    // signals this process inherited as ignored (SIGHUP under nohup, SIGINT and SIGQUIT in a
    // background job) go back to their default action too.
    default_signals_in_child(&mut command);
    // command-fds installs the two ends as 3 and 4 in the child after fork, clearing
    // close-on-exec only there; the Command owns the ends until it is dropped.
    command
        .fd_mappings(vec![
            FdMapping {
                parent_fd: OwnedFd::from(child_reader),
                child_fd: PLUGIN_READ_FD,
            },
            FdMapping {
                parent_fd: OwnedFd::from(child_writer),
                child_fd: PLUGIN_WRITE_FD,
            },
        ])
        .expect("descriptors 3 and 4 are distinct");
    let spawned = command.spawn();
    // TRANS-12: dropping the Command closes the host's copies of the child's ends, whether or
    // not the child started.
    drop(command);
    let child = spawned.map_err(|source| LaunchError::Spawn { path, source })?;

    Ok(Launched {
        process: PluginProcess { child, exit: None },
        reader: OwnedFd::from(host_reader),
        writer: OwnedFd::from(host_writer),
    })
}

/// Makes the child of `command` start with every standard signal at its default action
/// (TRANS-16): a signal ignored here would stay ignored across `exec`.
#[allow(unsafe_code)]
fn default_signals_in_child(command: &mut Command) {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe functions may be called: it calls signal(2) (sigaction) and nothing
    // else, allocates nothing (Signal::iterator walks a static array) and takes no lock.
    // Setting SIG_DFL installs no handler, which is what makes signal() itself unsafe.
    unsafe {
        std::os::unix::process::CommandExt::pre_exec(command, || {
            for s in Signal::iterator() {
                if !matches!(s, Signal::SIGKILL | Signal::SIGSTOP) {
                    let _ = signal(s, SigHandler::SigDfl);
                }
            }
            Ok(())
        });
    }
}

/// Why [`inherited_pipes`] failed. Messages name the descriptor and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InheritError {
    /// The descriptor is not open: the program was not started by an rpcplugin host.
    #[error("file descriptor {fd} is not open: {hint}", hint = HINT)]
    NotOpen {
        /// 3 or 4.
        fd: RawFd,
    },
    /// The descriptor is open, but not for the direction the plugin uses it in.
    #[error("file descriptor {fd} is open {actual} but must be {expected}: {hint}", hint = HINT)]
    WrongMode {
        /// 3 or 4.
        fd: RawFd,
        /// "readable" (descriptor 3) or "writable" (descriptor 4).
        expected: &'static str,
        /// How it is open: "read-only", "write-only" or "read-write".
        actual: &'static str,
    },
    /// The descriptor has close-on-exec set, which an inherited descriptor cannot have: something
    /// in this process opened it, and it is not ours to take.
    #[error(
        "file descriptor {fd} was opened by this process (it is close-on-exec), not inherited \
         from an rpcplugin host; call inherited_pipes before opening any file"
    )]
    NotInherited {
        /// 3 or 4.
        fd: RawFd,
    },
    /// An earlier call already took the pipes (descriptors 3 and 4 are closed, or reused).
    #[error("the inherited pipes (file descriptors 3 and 4) were already taken")]
    AlreadyTaken,
    /// Inspecting or reopening the descriptor failed.
    #[error("cannot take over file descriptor {fd}: {source}")]
    Io {
        /// 3 or 4.
        fd: RawFd,
        /// What the operating system said.
        source: io::Error,
    },
}

const HINT: &str = "this program is a plugin and must be started by an rpcplugin host with its \
                    pipes as descriptors 3 and 4";

static TAKEN: Mutex<bool> = Mutex::new(false);

/// Plugin side: takes over the pipes the host passed as descriptors 3 and 4 and returns
/// `(reader, writer)`: the plugin reads protocol bytes from `reader` (descriptor 3) and writes
/// them to `writer` (descriptor 4) (TRANS-2).
///
/// Descriptor 3 must be open and readable, descriptor 4 open and writable; neither may have
/// close-on-exec set (a descriptor inherited across `exec` cannot have it, so one that has it
/// belongs to this process). Call this first thing in `main`, before the program opens any
/// file: if the host passed nothing, the numbers 3 and 4 would go to whatever is opened next.
///
/// The returned descriptors are close-on-exec, so processes the plugin starts do not inherit the
/// connection; descriptors 3 and 4 themselves are closed. A second call fails with
/// [`InheritError::AlreadyTaken`].
///
/// How (without `unsafe`): the standard library offers no safe way to own a descriptor by
/// number. On Linux the descriptors are checked through `/proc/self/fdinfo/N` (open, access
/// mode, close-on-exec flag), reopened through `/proc/self/fd/N` (which, for a pipe, yields a
/// new close-on-exec descriptor on the same pipe, in the same direction), and the originals are
/// then closed with `nix::unistd::close`. Other systems use `/dev/fd/N` and skip the mode checks.
/// A descriptor that cannot be reopened this way (a socket, for instance) is reported as
/// [`InheritError::Io`].
pub fn inherited_pipes() -> Result<(OwnedFd, OwnedFd), InheritError> {
    let mut taken = TAKEN.lock().unwrap_or_else(|e| e.into_inner());
    if *taken {
        return Err(InheritError::AlreadyTaken);
    }
    check_inherited(PLUGIN_READ_FD, true)?;
    check_inherited(PLUGIN_WRITE_FD, false)?;
    let reader = reopen(PLUGIN_READ_FD, true)?;
    let writer = reopen(PLUGIN_WRITE_FD, false)?;
    for fd in [PLUGIN_READ_FD, PLUGIN_WRITE_FD] {
        nix::unistd::close(fd).map_err(|e| InheritError::Io {
            fd,
            source: io::Error::from(e),
        })?;
    }
    *taken = true;
    Ok((OwnedFd::from(reader), OwnedFd::from(writer)))
}

#[cfg(target_os = "linux")]
const FD_DIR: &str = "/proc/self/fd";
#[cfg(not(target_os = "linux"))]
const FD_DIR: &str = "/dev/fd";

fn reopen(fd: RawFd, read: bool) -> Result<File, InheritError> {
    let path = format!("{FD_DIR}/{fd}");
    // std opens with O_CLOEXEC.
    let result = if read {
        OpenOptions::new().read(true).open(&path)
    } else {
        OpenOptions::new().write(true).open(&path)
    };
    result.map_err(|source| match source.raw_os_error() {
        Some(code) if code == nix::libc::ENOENT || code == nix::libc::EBADF => {
            InheritError::NotOpen { fd }
        }
        _ => InheritError::Io { fd, source },
    })
}

/// The flags of `fd` as `/proc/self/fdinfo` shows them (access mode, status flags, and
/// `O_CLOEXEC` when close-on-exec is set); `None` if `fd` is not open.
#[cfg(target_os = "linux")]
fn fdinfo_flags(fd: RawFd) -> io::Result<Option<nix::fcntl::OFlag>> {
    let text = match fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Tell "not open" from "no /proc".
            fs::metadata("/proc/self/fdinfo")?;
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    text.lines()
        .find_map(|line| line.strip_prefix("flags:"))
        .and_then(|v| i32::from_str_radix(v.trim(), 8).ok())
        .map(|bits| Some(nix::fcntl::OFlag::from_bits_retain(bits)))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no flags in /proc/self/fdinfo/{fd}"),
            )
        })
}

/// Checks through `/proc/self/fdinfo` that `fd` is open, not close-on-exec, and open in the
/// direction the plugin uses it.
#[cfg(target_os = "linux")]
fn check_inherited(fd: RawFd, read: bool) -> Result<(), InheritError> {
    use nix::fcntl::OFlag;

    let flags = match fdinfo_flags(fd) {
        Ok(Some(flags)) => flags,
        Ok(None) => return Err(InheritError::NotOpen { fd }),
        Err(source) => return Err(InheritError::Io { fd, source }),
    };
    if flags.contains(OFlag::O_CLOEXEC) {
        return Err(InheritError::NotInherited { fd });
    }
    let mode = flags & OFlag::O_ACCMODE;
    let actual = if mode == OFlag::O_RDONLY {
        "read-only"
    } else if mode == OFlag::O_WRONLY {
        "write-only"
    } else {
        "read-write"
    };
    let ok = if read {
        mode != OFlag::O_WRONLY
    } else {
        mode != OFlag::O_RDONLY
    };
    if ok {
        Ok(())
    } else {
        Err(InheritError::WrongMode {
            fd,
            expected: if read { "readable" } else { "writable" },
            actual,
        })
    }
}

/// The descriptors of this process, other than 0, 1 and 2, that are open without close-on-exec,
/// in increasing order. Every child this process starts, plugins included, inherits them.
///
/// [`launch`] cannot keep these out of a plugin (TRANS-4) without `unsafe` code between `fork`
/// and `exec`. A Rust program never creates such descriptors itself (the standard library opens
/// everything close-on-exec); they come from the process's own parent (a shell, a build tool's
/// jobserver, a supervisor). A host can log them, or remove them with
/// [`close_inheritable_descriptors`] at startup. Linux only (reads `/proc/self/fdinfo`).
#[cfg(target_os = "linux")]
pub fn inheritable_descriptors() -> io::Result<Vec<RawFd>> {
    // Collect the numbers first: the directory's own descriptor (close-on-exec) is closed
    // before the flags are read.
    let mut fds: Vec<RawFd> = fs::read_dir("/proc/self/fd")?
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > 2)
        .collect();
    fds.sort_unstable();
    let mut inheritable = Vec::new();
    for fd in fds {
        if let Some(flags) = fdinfo_flags(fd)? {
            if !flags.contains(nix::fcntl::OFlag::O_CLOEXEC) {
                inheritable.push(fd);
            }
        }
    }
    Ok(inheritable)
}

/// Closes the descriptors [`inheritable_descriptors`] lists and returns their numbers, so that
/// no plugin this process launches can inherit them (TRANS-4).
///
/// Call it first thing in a host's `main`, before anything opens files or starts threads: it
/// closes descriptors the process inherited and does not know about, and nothing in the
/// process may own them. A process that is itself a plugin calls [`inherited_pipes`] first
/// (which replaces descriptors 3 and 4 with close-on-exec ones). Linux only.
#[cfg(target_os = "linux")]
pub fn close_inheritable_descriptors() -> io::Result<Vec<RawFd>> {
    let fds = inheritable_descriptors()?;
    for &fd in &fds {
        nix::unistd::close(fd).map_err(io::Error::from)?;
    }
    Ok(fds)
}

/// Without `/proc/self/fdinfo`, only checks that `fd` is open; reopening it in the wrong
/// direction fails on systems whose `/dev/fd` duplicates descriptors.
#[cfg(not(target_os = "linux"))]
fn check_inherited(fd: RawFd, _read: bool) -> Result<(), InheritError> {
    match fs::metadata(format!("{FD_DIR}/{fd}")) {
        Ok(_) => Ok(()),
        Err(source) => match source.raw_os_error() {
            Some(code) if code == nix::libc::ENOENT || code == nix::libc::EBADF => {
                Err(InheritError::NotOpen { fd })
            }
            _ => Err(InheritError::Io { fd, source }),
        },
    }
}
