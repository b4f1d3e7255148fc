//! Running one schedule against a subject ([`run_schedule`]): the plugin or host runner of its
//! mode, a panic of the harness caught as an error, and the exchange recorded as a replay file.
//! Also what both runners share: their result ([`Raw`]), the deadline, and [`frame`].

use std::time::Duration;

use rpcplugin_codec::frame::encode_frame;
use rpcplugin_codec::frame::StreamId;

use crate::host_under_test::DriverCommand;
use crate::outcome::Outcome;
use crate::plugin_under_test::PluginCommand;
use crate::transcript::{CaseInfo, HarnessInfo, ReplayFile, REPLAY_SCHEMA};

use super::host::run_host;
use super::plugin::run_plugin;
use super::schedule::Schedule;

/// What running one schedule produced.
#[derive(Debug)]
pub struct Ran {
    /// Pass, or the failure with the requirement broken.
    pub outcome: Outcome,
    /// The exchange, as a replay file holds it.
    pub replay: ReplayFile,
}

/// The subject of a fuzz run.
#[derive(Debug, Clone)]
pub enum Subject {
    /// A plugin executable.
    Plugin(PluginCommand),
    /// A host, through its driver.
    Host(DriverCommand),
}

impl Subject {
    pub(super) fn mode(&self) -> &'static str {
        match self {
            Subject::Plugin(_) => "plugin",
            Subject::Host(_) => "host",
        }
    }

    pub(super) fn display(&self) -> Vec<String> {
        match self {
            Subject::Plugin(p) => p.display(),
            Subject::Host(h) => h.display(),
        }
    }
}

/// The deadline of one schedule's run (scaled): generous, for the slowest schedules.
pub(super) const SCHEDULE_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `schedule` against `subject` once.
pub fn run_schedule(subject: &Subject, schedule: &Schedule, seed: u64, scale: f64) -> Ran {
    let run = std::panic::AssertUnwindSafe(|| match (subject, schedule) {
        (Subject::Plugin(command), Schedule::Plugin(s)) => run_plugin(command, s, seed, scale),
        (Subject::Host(command), Schedule::Host(s)) => run_host(command, s, scale),
        _ => (
            Outcome::error("a schedule of the other mode"),
            Vec::new(),
            None,
            String::new(),
        ),
    });
    let (outcome, exchange, exit, stderr) = std::panic::catch_unwind(run).unwrap_or_else(|p| {
        let what = crate::runner::panic_text(p.as_ref());
        (
            Outcome::error(format!(
                "the harness itself failed while running a schedule (please report it): {what}"
            )),
            Vec::new(),
            None,
            String::new(),
        )
    });
    let replay = ReplayFile {
        schema: REPLAY_SCHEMA.to_string(),
        harness: HarnessInfo::current(),
        mode: subject.mode().to_string(),
        case: CaseInfo {
            id: format!("fuzz/{}", subject.mode()),
            title: format!(
                "a random schedule of {} step(s) (seed {seed})",
                schedule.len()
            ),
            requirements: Vec::new(),
        },
        seed,
        timeout_scale: scale,
        subject: subject.display(),
        verdict: outcome.verdict().as_str().to_string(),
        reason: outcome.reason(),
        message: outcome.message(),
        exchange,
        exit,
        stderr,
        schedule: Some(serde_json::to_value(schedule).expect("a schedule serializes")),
    };
    Ran { outcome, replay }
}

/// What a subject's runner returns: the outcome, the exchange, the exit, standard error.
pub(super) type Raw = (
    Outcome,
    Vec<crate::transcript::Entry>,
    Option<crate::transcript::ExitRecord>,
    String,
);

/// Appends a frame of `payload` on `stream` to `out`.
pub(super) fn frame(out: &mut Vec<u8>, stream: i64, payload: &[u8]) -> Result<(), Outcome> {
    let id = StreamId::new(stream).ok_or_else(|| Outcome::error("a negative stream id"))?;
    encode_frame(id, payload, out)
        .map_err(|e| Outcome::error(format!("encoding a frame failed: {e}")))
}
