//! `rpcplugin-reference-plugin`: the reference plugin of rpcplugin wire protocol 1.
//!
//! On activation it loads its configuration through the host's API and logs it; on
//! deactivation it says goodbye; it exits when the host closes its pipes (TRANS-9, TRANS-10).
//! Log lines go to standard error only (TRANS-3). See `--help`.

use clap::Parser;
use rpcplugin_codec::gob::DecodeLimits;
use rpcplugin_codec::stream::Limits;
use rpcplugin_reference_plugin::{exit_code, serve, serve_with_limits, Api, Hooks, ServeOutcome};

/// The variable that makes activation fail.
const FAIL_ACTIVATE: &str = "RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE";
/// The variable that makes the plugin exit abruptly on activation.
const CRASH_ON_ACTIVATE: &str = "RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE";
/// The status the plugin exits with when told to crash.
const CRASH_STATUS: i32 = 3;

const LONG_ABOUT: &str = "\
The reference plugin of rpcplugin wire protocol 1.

It is not meant to be run by hand: an rpcplugin host starts it with the
host's two pipes as file descriptors 3 (the plugin reads) and 4 (the plugin
writes). To run it, put it in a plugin bundle (a directory whose plugin.json
names it) and start the reference host on that bundle:

    mkdir -p bundle && cp target/debug/rpcplugin-reference-plugin bundle/
    echo '{\"id\": \"reference\", \"backend\": {\"executable\": \"rpcplugin-reference-plugin\"}}' > bundle/plugin.json
    rpcplugin-reference-host run bundle --config config.json

The plugin announces its hooks stream, then serves the LocalHooks service.
On activation it loads its configuration through the host's LocalAPI and
logs it; on deactivation it says goodbye. It never reads standard input and
writes only log lines, to standard error. It exits when the host closes its
pipes.";

const AFTER_HELP: &str = "\
Environment (for testing hosts):
  RPCPLUGIN_REFERENCE_PLUGIN_FAIL_ACTIVATE=1
          every activation fails with an error response
  RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE=1
          the plugin exits abruptly with status 3 when activated, without answering

Exit status:
  0  the host closed the connection
  1  the connection failed (a protocol error, or the pipes failed)
  2  the plugin could not start serving (no host pipes as descriptors 3 and 4)
  3  crashed on purpose (RPCPLUGIN_REFERENCE_PLUGIN_CRASH_ON_ACTIVATE=1)";

/// The command line.
#[derive(Parser, Debug)]
#[command(version, about = "The reference plugin of rpcplugin wire protocol 1", long_about = LONG_ABOUT, after_help = AFTER_HELP)]
struct Cli {
    /// Accept exactly what the spec guarantees and nothing more: frames of 1 MiB
    /// (MIN_MAX_PAYLOAD), 8 MiB of unread data per stream (MIN_STREAM_BUFFER), gob messages of
    /// 4 MiB (GOB_MIN_MAX_MESSAGE) nested 16 levels deep (GOB_MIN_MAX_DEPTH). The conformance
    /// tests run the suite against the plugin this way too, so that no case demands more than
    /// the spec guarantees.
    #[arg(long)]
    min_limits: bool,
}

fn flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| v == "1")
}

/// The reference plugin's hooks.
struct ReferencePlugin {
    fail_activate: bool,
    crash_on_activate: bool,
}

impl Hooks for ReferencePlugin {
    fn on_activate(&self, api: Api) -> Result<(), String> {
        if self.crash_on_activate {
            eprintln!("reference plugin: crashing on purpose ({CRASH_ON_ACTIVATE}=1)");
            std::process::exit(CRASH_STATUS);
        }
        if self.fail_activate {
            let text = format!("reference plugin: activation fails on purpose ({FAIL_ACTIVATE}=1)");
            eprintln!("{text}");
            return Err(text);
        }
        match api.load_plugin_configuration_json() {
            Ok(config) => {
                eprintln!("reference plugin: activated with configuration {config}");
                Ok(())
            }
            Err(e) => {
                let text = format!("reference plugin: cannot load the configuration: {e}");
                eprintln!("{text}");
                Err(text)
            }
        }
    }

    fn on_deactivate(&self) -> Result<(), String> {
        eprintln!("reference plugin: goodbye");
        Ok(())
    }
}

fn main() {
    // Parsing the command line opens no file, so descriptors 3 and 4 are still the host's.
    let cli = Cli::parse();
    let hooks = ReferencePlugin {
        fail_activate: flag(FAIL_ACTIVATE),
        crash_on_activate: flag(CRASH_ON_ACTIVATE),
    };
    let result = if cli.min_limits {
        serve_with_limits(hooks, Limits::minimum(), DecodeLimits::minimum())
    } else {
        serve(hooks)
    };
    match &result {
        Ok(ServeOutcome::HostClosed) => {
            eprintln!("reference plugin: the host closed the connection; exiting")
        }
        Ok(other) => eprintln!("reference plugin: {other:?}; exiting"),
        Err(e) => eprintln!("reference plugin: {e}"),
    }
    // Exit now, even if a hook call is still running on another thread (TRANS-9).
    std::process::exit(exit_code(&result))
}
