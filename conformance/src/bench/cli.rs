//! The command line of `rpcplugin-conformance bench` ([`BenchArgs`], clap), and running it
//! ([`BenchArgs::run`]). The binary's own options (`--format`, `--progress`,
//! `--timeout-scale`) apply too; the binary prints the report.

use std::ffi::OsString;
use std::path::PathBuf;

use super::results::BenchReport;
use super::{
    bench_host, bench_plugin, BenchError, Common, HostBenchOptions, PluginBenchOptions, Progress,
};
use crate::host_under_test::DriverCommand;
use crate::plugin_under_test::PluginCommand;

/// The largest payload: the gob message every implementation accepts (GOB_MIN_MAX_MESSAGE,
/// 4 MiB) less room for the response's header.
pub const MAX_PAYLOAD: usize = rpcplugin_runtime::codec::gob::MIN_MAX_MESSAGE - 4096;

/// Examples and notes after `bench --help`.
pub const EXAMPLES: &str = "\
Examples:
  rpcplugin-conformance bench plugin target/debug/rpcplugin-reference-plugin
  rpcplugin-conformance bench plugin ./my-plugin --verbose
                              ./my-plugin, started with --verbose
  rpcplugin-conformance bench --rounds 41 --payload 4KiB,256KiB plugin ./my-plugin
  rpcplugin-conformance --format json bench plugin ./my-plugin > mine.json
  rpcplugin-conformance bench host -- target/debug/rpcplugin-reference-host driver

Every figure is measured next to its floor (the same operation without the protocol) in
alternating rounds, so that both see the same noise: compare ratios between machines and
runs rather than times. Bench the reference plugin and yours in the same way, on the same
machine, and both as release builds (`cargo build --release`): a debug build, of the subject
or of this harness, is several times slower.

Exit status: 0 figures printed, 2 the subject could not be benched (not found, not a plugin
or not a driver, a failed call, no progress for 10 s).";

/// Benchmarks a plugin or a host: start time, hook round trips, pipelined calls, one-stream
/// throughput and memory for a plugin; what the driver contract allows for a host (start,
/// activation, hook call, stop and restart through the driver).
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct BenchArgs {
    /// What to bench.
    #[command(subcommand)]
    pub subject: BenchSubject,
    /// Rounds per figure; each round measures the subject and its floor back to back, and
    /// ratios are medians over the rounds (odd: a true middle).
    #[arg(long, default_value_t = 21, value_parser = positive, global = true)]
    pub rounds: usize,
    /// Round trips per round: hook calls and as many floor ping-pongs (a host: `deactivate` and
    /// `status` commands). A round of a plugin's pipelined figure makes this many calls times
    /// its depth.
    #[arg(long, default_value_t = 200, value_parser = positive, global = true)]
    pub batch: usize,
    /// Round trips of each kind before the rounds, unmeasured: caches, lazy set-up and CPU
    /// frequency settle.
    #[arg(
        long = "warm-up",
        value_name = "N",
        default_value_t = 200,
        global = true
    )]
    pub warm_up: usize,
    /// Launches for the start time, each next to a floor launch (after one unmeasured of each).
    #[arg(long, default_value_t = 10, value_parser = positive, global = true)]
    pub starts: usize,
}

/// The subject.
#[derive(Debug, clap::Subcommand)]
pub enum BenchSubject {
    /// Bench a plugin executable; the harness plays a plain host. Floors: a child that answers
    /// without any protocol through descriptors 3 and 4 (this harness, re-executed).
    Plugin {
        /// Calls in flight in the pipelined figure: the harness writes the next request as each
        /// response arrives.
        #[arg(long, default_value_t = 16, value_parser = positive)]
        depth: usize,
        /// Payload sizes of the throughput figures (repeatable or comma-separated): bytes, or
        /// with KiB or MiB (K and M alike); from 2 bytes to 4 MiB less 4 KiB. The payload is the
        /// configuration the plugin loads when activated.
        #[arg(
            long = "payload",
            value_name = "SIZE",
            value_delimiter = ',',
            value_parser = parse_size,
            default_values = ["1KiB", "64KiB", "1MiB"]
        )]
        payloads: Vec<usize>,
        /// The plugin executable.
        executable: PathBuf,
        /// Arguments passed to it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Bench a host through its driver (spec 07 section 7.2), the driver and its arguments after
    /// `--`; the host's plugin is the harness's agent. Floors: the same agent hosted by the
    /// harness itself, and the driver's own `status` round trip.
    Host {
        /// Crashes for the restart time; each waits for the host's restart delay (at least
        /// 1 s, LIFE-8).
        #[arg(long, default_value_t = 3, value_parser = positive)]
        restarts: usize,
        /// The driver executable and its arguments.
        #[arg(last = true, required = true, value_name = "DRIVER")]
        driver: Vec<OsString>,
    },
}

/// A positive count.
fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{text:?} is not a positive whole number")),
    }
}

/// A payload size: `4096`, `4K`, `4KiB`, `1M`, `1MiB`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let t = text.trim();
    let at = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(at);
    let n: usize = number
        .parse()
        .map_err(|_| format!("{text:?} is not a size (examples: 512, 64KiB, 1MiB)"))?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" | "KB" => 1024,
        "M" | "MiB" | "MB" => 1 << 20,
        other => {
            return Err(format!(
                "unknown unit {other:?} in {text:?} (use KiB or MiB)"
            ))
        }
    };
    let size = n
        .checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    if !(2..=MAX_PAYLOAD).contains(&size) {
        return Err(format!(
            "{text:?}: a payload is a JSON string of 2 to {MAX_PAYLOAD} bytes (the gob message \
             every plugin accepts, 4 MiB, less room for the reply's header)"
        ));
    }
    Ok(size)
}

impl BenchArgs {
    /// Runs the bench, with progress on standard error if `progress`.
    pub fn run(&self, timeout_scale: f64, progress: bool) -> Result<BenchReport, BenchError> {
        let harness = std::env::current_exe()
            .map_err(|e| BenchError(format!("cannot find the harness binary itself: {e}")))?;
        let common = Common {
            harness,
            rounds: self.rounds,
            batch: self.batch,
            warm_up: self.warm_up,
            starts: self.starts,
            timeout_scale,
        };
        let progress = Progress::new(progress);
        match &self.subject {
            BenchSubject::Plugin {
                depth,
                payloads,
                executable,
                args,
            } => bench_plugin(
                &PluginBenchOptions {
                    plugin: PluginCommand {
                        program: executable.clone(),
                        args: args.clone(),
                    },
                    common,
                    depth: *depth,
                    payloads: payloads.clone(),
                },
                &progress,
            ),
            BenchSubject::Host { restarts, driver } => {
                let (program, rest) = driver
                    .split_first()
                    .ok_or_else(|| BenchError("no driver given after --".into()))?;
                bench_host(
                    &HostBenchOptions {
                        driver: DriverCommand {
                            program: PathBuf::from(program),
                            args: rest.to_vec(),
                        },
                        common,
                        restarts: *restarts,
                    },
                    &progress,
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_bytes_or_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64KiB"), Ok(64 * 1024));
        assert_eq!(parse_size("4K"), Ok(4096));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert!(parse_size("1").is_err());
        assert!(parse_size("4MiB").unwrap_err().contains("4 MiB"));
        assert!(parse_size("3GiB").unwrap_err().contains("unknown unit"));
        assert!(parse_size("lots").is_err());
    }
}
