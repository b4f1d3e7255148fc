//! # rpcplugin-reference-host
//!
//! The host side of the rpcplugin wire protocol, built on [`rpcplugin_runtime`]:
//!
//! - [`bundle`]: plugin bundles, a directory with a `plugin.json` manifest naming the
//!   executable (`spec/06-lifecycle.md`, LIFE-1 to LIFE-3);
//! - [`supervisor`]: one plugin's life cycle: start with a start timeout (HS-4) that leaves
//!   nothing behind when it fails (LIFE-4, LIFE-5), activation in the order of RPC-13, crash
//!   detection and restart with a bounded backoff and re-activation (LIFE-6 to LIFE-13), calls
//!   that fail at once while the plugin is down (LIFE-14), and a stop that deactivates, closes
//!   the pipes, waits a grace period and only then kills (LIFE-16 to LIFE-20);
//! - [`event`]: the life-cycle events a supervisor reports (section 6.11);
//! - [`driver`]: the host driver contract `rpcplugin-host-driver/1` of
//!   `spec/07-conformance.md` section 7.2 (DRV-1 to DRV-12), through which the conformance
//!   harness tests this host;
//! - [`mutant`]: deliberately broken hosts, each breaking one rule, for the harness's
//!   self-tests (test only; never the default).
//!
//! The `rpcplugin-reference-host` binary drives one supervisor from the command line
//! (`run <bundle>`), or serves the driver contract on its standard input and output
//! (`driver [--mutant NAME]`).
//!
//! ```no_run
//! use rpcplugin_reference_host::bundle::Bundle;
//! use rpcplugin_reference_host::supervisor::{Supervisor, SupervisorOptions};
//!
//! let bundle = Bundle::load("plugins/hello")?;
//! let supervisor = Supervisor::new(bundle, SupervisorOptions::default());
//! let events = supervisor.events();
//! supervisor.start()?;
//! supervisor.activate(&serde_json::json!({"greeting": "hello"}))?;
//! // ... the plugin runs; a crash is followed by a restart and a re-activation ...
//! supervisor.stop();
//! for event in events.try_iter() {
//!     println!("{event}");
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bundle;
pub mod driver;
pub mod event;
pub mod mutant;
pub mod supervisor;

pub use bundle::{Bundle, BundleError, Manifest, ManifestError};
pub use event::{CrashCause, LifecycleEvent};
pub use mutant::Mutant;
pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
pub use supervisor::{HookError, StartError, State, StopOutcome, Supervisor, SupervisorOptions};
