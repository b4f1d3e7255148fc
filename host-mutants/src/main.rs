//! `rpcplugin-mutant-host`: the deliberately broken hosts of the conformance harness's
//! self-test (test equipment). `driver --mutant NAME` serves the host driver contract of
//! `spec/07-conformance.md` section 7.2 as the reference host's driver does, with one rule of
//! the spec broken; `list` prints every mutant; see `--help`.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use rpcplugin_host_mutants::{driver_seams, list_json, Mutant};
use rpcplugin_reference_host::driver::{self, DriverOptions};

/// Deliberately broken hosts for the conformance harness's self-test: the reference host with
/// one rule of the rpcplugin spec broken on purpose. TEST ONLY: never use them otherwise.
#[derive(Debug, Parser)]
#[command(name = "rpcplugin-mutant-host", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the host driver contract rpcplugin-host-driver/1 on standard input and output as
    /// the broken host NAME (spec/07-conformance.md, section 7.2).
    ///
    /// The contract, the options and the exit status are those of `rpcplugin-reference-host
    /// driver` (see its --help); the host breaks the requirements listed below for it. Normally
    /// started by `rpcplugin-conformance self-test`, or by hand with `rpcplugin-conformance host
    /// -- rpcplugin-mutant-host driver --mutant NAME`.
    #[command(after_long_help = driver_help())]
    Driver(DriverArgs),
    /// Print every mutant: its name, the requirements it breaks, and what it does wrong.
    ///
    /// `--format json` prints the list the conformance harness reads: an object of schema
    /// rpcplugin-host-mutants/v1 whose `mutants` each have a `name`, `breaks` (requirement ids)
    /// and a `description`.
    List {
        /// The list's format.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
}

#[derive(Debug, Args)]
struct DriverArgs {
    /// The broken host to run (`list` names them all).
    #[arg(long, value_name = "NAME", value_parser = parse_mutant)]
    mutant: Mutant,
    /// Accept exactly what the spec guarantees and nothing more, as `rpcplugin-reference-host
    /// driver --min-limits` does.
    #[arg(long)]
    min_limits: bool,
    /// Keep the spec's longest restart delay and stable period whatever `start` asks, as
    /// `rpcplugin-reference-host driver --fixed-backoff` does.
    #[arg(long)]
    fixed_backoff: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One line per mutant, in aligned columns.
    Human,
    /// One JSON object (schema rpcplugin-host-mutants/v1).
    Json,
}

fn parse_mutant(name: &str) -> Result<Mutant, String> {
    Mutant::from_name(name).ok_or_else(|| {
        format!(
            "no mutant is named {name:?}; the mutants are:\n{}",
            Mutant::table().trim_end()
        )
    })
}

fn driver_help() -> String {
    format!(
        "Mutants (TEST ONLY): each breaks the requirements listed.\n\n{}",
        Mutant::table()
    )
}

fn main() -> ExitCode {
    // Parsing the command line opens no file: the driver closes the inherited descriptors
    // first (unless the mutant is the one that passes them on).
    match Cli::parse().command {
        Command::Driver(args) => driver::main(DriverOptions {
            seams: driver_seams(args.mutant),
            min_limits: args.min_limits,
            fixed_backoff: args.fixed_backoff,
        }),
        Command::List { format } => {
            let text = match format {
                Format::Human => Mutant::table(),
                Format::Json => format!("{}\n", list_json()),
            };
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("rpcplugin-mutant-host: cannot write to standard output: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}
