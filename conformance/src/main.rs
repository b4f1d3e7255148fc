//! `rpcplugin-conformance`: tests a plugin executable against rpcplugin wire protocol 1.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use rpcplugin_conformance::cases::catalog;
use rpcplugin_conformance::driver::PluginCommand;
use rpcplugin_conformance::runner::{run, selected, RunOptions};

const EXAMPLES: &str = "\
Examples:
  rpcplugin-conformance                          run the suite against the reference plugin
                                                 next to this binary
  rpcplugin-conformance plugin ./my-plugin       test ./my-plugin
  rpcplugin-conformance plugin ./my-plugin -- --verbose
                                                 test ./my-plugin started with --verbose
  rpcplugin-conformance --case handshake --format json plugin ./my-plugin
  rpcplugin-conformance list                     print every case id

Exit status: 0 conformant, 1 not conformant (a case failed or timed out, including a plugin
that never announces), 2 harness or setup error (the plugin is missing, not executable, or
exited before the handshake).";

/// Tests a plugin executable against rpcplugin wire protocol 1: the harness plays the host,
/// runs a catalog of cases and reports which requirements of the specification the plugin meets.
#[derive(Debug, Parser)]
#[command(name = "rpcplugin-conformance", version, after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run only the cases whose id contains PATTERN (repeatable).
    #[arg(long = "case", value_name = "PATTERN", global = true)]
    cases: Vec<String>,
    /// Skip the cases whose id contains PATTERN (repeatable).
    #[arg(long, value_name = "PATTERN", global = true)]
    skip: Vec<String>,
    /// How many cases run at once, each with its own plugin process.
    #[arg(long, default_value_t = 1, global = true)]
    jobs: usize,
    /// Multiplies every timeout (for slow machines).
    #[arg(long, default_value_t = 1.0, global = true)]
    timeout_scale: f64,
    /// The report's format.
    #[arg(long, value_enum, default_value_t = Format::Human, global = true)]
    format: Format,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Test a plugin executable.
    Plugin {
        /// The plugin executable.
        executable: PathBuf,
        /// Arguments passed to it.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Print every case: id, requirements and title.
    List,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Human,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command {
        Some(Command::List) => {
            for case in catalog().iter().filter(|c| selected(c, &cli.cases)) {
                println!(
                    "{}\t{}\t{}",
                    case.id,
                    case.requirements.join(","),
                    case.title
                );
            }
            return ExitCode::SUCCESS;
        }
        Some(Command::Plugin { executable, args }) => PluginCommand {
            program: executable,
            args,
        },
        None => match reference_plugin() {
            Ok(program) => PluginCommand {
                program,
                args: Vec::new(),
            },
            Err(message) => {
                eprintln!("rpcplugin-conformance: {message}");
                return ExitCode::from(2);
            }
        },
    };
    if !(cli.timeout_scale.is_finite() && cli.timeout_scale > 0.0) {
        eprintln!("rpcplugin-conformance: --timeout-scale must be a positive number");
        return ExitCode::from(2);
    }
    if let Err(message) = preflight(&command) {
        eprintln!("rpcplugin-conformance: {message}");
        return ExitCode::from(2);
    }
    let report = run(&RunOptions {
        command,
        cases: cli.cases,
        skip: cli.skip,
        jobs: cli.jobs.max(1),
        timeout_scale: cli.timeout_scale,
    });
    match cli.format {
        Format::Human => print!("{}", report.human()),
        Format::Json => println!("{}", report.json()),
    }
    ExitCode::from(report.exit_code() as u8)
}

/// The reference plugin next to this binary.
fn reference_plugin() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this program's own path: {e}"))?;
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let path = dir.join("rpcplugin-reference-plugin");
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "no plugin given and the reference plugin is not at {} (build it with `cargo build -p rpcplugin-reference-plugin`, or run `rpcplugin-conformance plugin <executable>`)",
            path.display()
        ))
    }
}

/// Says plainly when the plugin cannot be launched at all.
fn preflight(command: &PluginCommand) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let path = &command.program;
    let meta = std::fs::metadata(path)
        .map_err(|e| format!("plugin executable {} not found: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!(
            "plugin executable {} is not a file",
            path.display()
        ));
    }
    if meta.permissions().mode() & 0o111 == 0 {
        return Err(format!(
            "plugin executable {} is not executable",
            path.display()
        ));
    }
    Ok(())
}
