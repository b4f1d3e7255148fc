//! The case catalog: every [`Case`] cites the requirement ids it checks.
//!
//! - [`plugin`]: cases that play the host against a plugin executable (ids `plugin/...`),
//!   including one case per server-side message of `spec/vectors/rpc-messages.json`
//!   (`plugin/rpc-vector/tc-N`);
//! - [`host`]: cases that play the plugins of a host, through the host's driver (ids
//!   `host/...`).
//!
//! Ids are stable: `--case` and `--skip` patterns, expect-fail lists and replay files name them.
//!
//! Each group of ids (`plugin/rpc/...`, `host/stop/...`) has a file of its own in [`plugin`] or
//! [`host`], where every case is declared with `case!` beside the function that runs it.

use std::sync::OnceLock;
use std::time::Duration;

use crate::host_under_test::HostUnderTest;
use crate::outcome::Outcome;
use crate::plugin_under_test::PluginUnderTest;

/// Declares a case beside the function that runs it, as a constant that the catalog of
/// [`host`] or [`plugin`] lists:
///
/// ```text
/// case!(NAME: host "host/group/name", [requirement ids], runner(arguments), modifier(value), title);
/// ```
///
/// makes `pub(super) const NAME: Case`, a [`Case::host`] (or, with `plugin`, a
/// [`Case::plugin`]) citing the requirement ids (string literals, each checked at compile
/// time by `rpcplugin_codec::req!`: an id the spec does not have does not compile), whose runner calls
/// `runner(subject, arguments)`, a function that returns `Result<(), Outcome>`; each
/// `modifier(value)` is a [`Case`] method applied to it, such as
/// `with_timeout(Duration::from_secs(30))`, and the title (a string literal) says what the case
/// checks, in a few words. A declaration stays on one line, a row of the catalog (only a list of
/// requirements too long to read on one line is broken), so that each case reads as one row and
/// the rows do not repeat each other's shape line by line.
macro_rules! case {
    (
        $name:ident: $kind:ident $id:literal, [$($requirement:literal),* $(,)?],
        $run:ident $(($($argument:expr),* $(,)?))?,
        $($modifier:ident($($value:expr),*),)*
        $title:literal $(,)?
    ) => {
        pub(super) const $name: $crate::cases::Case = $crate::cases::Case::$kind(
            $id,
            $title,
            &[$(rpcplugin_codec::req!($requirement)),*],
            |subject| $crate::cases::finish($run(subject $($(, $argument)*)?)),
        )
        $(.$modifier($($value),*))*;
    };
}

pub mod host;
pub mod plugin;
pub mod vectors;

/// How a case runs.
#[derive(Clone, Copy)]
pub enum Runner {
    /// Against a freshly launched plugin.
    Plugin(fn(&mut PluginUnderTest) -> Outcome),
    /// Against a freshly launched plugin, with a parameter (the vector's `tcId`).
    PluginWith(fn(&mut PluginUnderTest, u64) -> Outcome, u64),
    /// Against a host, through a fresh driver.
    Host(fn(&mut HostUnderTest) -> Outcome),
    /// Against a host, with a parameter (a row of a table).
    HostWith(fn(&mut HostUnderTest, u64) -> Outcome, u64),
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Runner::Plugin(_) => f.write_str("Plugin"),
            Runner::PluginWith(_, n) => write!(f, "PluginWith({n})"),
            Runner::Host(_) => f.write_str("Host"),
            Runner::HostWith(_, n) => write!(f, "HostWith({n})"),
        }
    }
}

/// Who a case tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A plugin executable; the harness plays the host.
    Plugin,
    /// A host, through its driver; the harness plays its plugins.
    Host,
}

impl Mode {
    /// `plugin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Plugin => "plugin",
            Mode::Host => "host",
        }
    }
}

/// One conformance case.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// A stable id, such as `plugin/handshake/announce-even-stream`.
    pub id: &'static str,
    /// What the case checks, in a few words.
    pub title: &'static str,
    /// The ids of the requirements of `spec/requirements.json` that it checks.
    pub requirements: &'static [&'static str],
    /// How long the case may take at most (before `--timeout-scale`).
    pub timeout: Duration,
    /// Whether the plugin gets a standard input pipe that the harness holds open instead of
    /// `/dev/null` (TRANS-5).
    pub stdin_pipe: bool,
    /// What runs it.
    pub runner: Runner,
}

/// The time a case may take unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

impl Case {
    /// A plugin case with the default timeout.
    pub const fn plugin(
        id: &'static str,
        title: &'static str,
        requirements: &'static [&'static str],
        run: fn(&mut PluginUnderTest) -> Outcome,
    ) -> Case {
        Case {
            id,
            title,
            requirements,
            timeout: DEFAULT_TIMEOUT,
            stdin_pipe: false,
            runner: Runner::Plugin(run),
        }
    }

    /// A host case with the default timeout.
    pub const fn host(
        id: &'static str,
        title: &'static str,
        requirements: &'static [&'static str],
        run: fn(&mut HostUnderTest) -> Outcome,
    ) -> Case {
        Case {
            id,
            title,
            requirements,
            timeout: DEFAULT_TIMEOUT,
            stdin_pipe: false,
            runner: Runner::Host(run),
        }
    }

    /// The same case with a standard input pipe held open (TRANS-5).
    pub const fn with_stdin_pipe(mut self) -> Case {
        self.stdin_pipe = true;
        self
    }

    /// The same case with another timeout.
    pub const fn with_timeout(mut self, timeout: Duration) -> Case {
        self.timeout = timeout;
        self
    }

    /// Who the case tests.
    pub fn mode(&self) -> Mode {
        match self.runner {
            Runner::Plugin(_) | Runner::PluginWith(..) => Mode::Plugin,
            Runner::Host(_) | Runner::HostWith(..) => Mode::Host,
        }
    }
}

/// What a case function's result means for its case: `Ok` passes.
fn finish(result: Result<(), Outcome>) -> Outcome {
    match result {
        Ok(()) => Outcome::Pass,
        Err(outcome) => outcome,
    }
}

/// A case made from a row of a table or from a vector when the catalog is first built: its
/// texts are leaked, as the catalog lives as long as the process.
fn generated(
    id: String,
    title: String,
    requirements: Vec<&'static str>,
    timeout: Duration,
    runner: Runner,
) -> Case {
    Case {
        id: Box::leak(id.into_boxed_str()),
        title: Box::leak(title.into_boxed_str()),
        requirements: Box::leak(requirements.into_boxed_slice()),
        timeout,
        stdin_pipe: false,
        runner,
    }
}

/// Every case, in the order they run.
pub fn catalog() -> &'static [Case] {
    static ALL: OnceLock<Vec<Case>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut all = plugin::CASES.to_vec();
        all.extend(plugin::vector_cases());
        all.extend(host::CASES.iter().copied());
        all.extend(host::table_cases());
        all.extend(host::vector_cases());
        all
    })
}

/// The case with id `id`.
pub fn find(id: &str) -> Option<&'static Case> {
    catalog().iter().find(|c| c.id == id)
}

/// The case whose requirements are those the harness's observer enforces in every case of
/// `mode` (spec/harness.md section 1.2): `plugin/wire/output-follows-sender-rules` or
/// `host/wire/output-follows-sender-rules`.
pub fn observer_case(mode: Mode) -> &'static Case {
    let id = match mode {
        Mode::Plugin => "plugin/wire/output-follows-sender-rules",
        Mode::Host => "host/wire/output-follows-sender-rules",
    };
    find(id).expect("the catalog has both wire cases")
}

/// Whether `case` may fail with requirement `id`: one it cites, or one the observer enforces
/// in every case of its mode.
pub fn may_fail_with(case: &Case, id: &str) -> bool {
    case.requirements.contains(&id) || observer_case(case.mode()).requirements.contains(&id)
}
