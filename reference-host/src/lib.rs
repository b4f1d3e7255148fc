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
//!   harness tests this host.
//!
//! The supervisor and the driver decide every rule of the spec themselves; test equipment can
//! change their decisions only through their seams ([`supervisor::seams`], [`driver::seams`]),
//! which the reference host leaves as they are.
//!
//! The `rpcplugin-reference-host` binary drives one supervisor from the command line
//! (`run <bundle>`), or serves the driver contract on its standard input and output
//! (`driver`).
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
pub mod supervisor;

pub use bundle::{Bundle, BundleError, Manifest, ManifestError};
pub use event::{CrashCause, LifecycleEvent};
pub use rpcplugin_codec as codec;
pub use rpcplugin_runtime as runtime;
pub use supervisor::{HookError, StartError, State, StopOutcome, Supervisor, SupervisorOptions};

/// Closes the descriptors this process inherited without close-on-exec (from a shell, a CI
/// runner, a harness), which every plugin it launches would otherwise inherit (TRANS-4); says
/// on standard error which it closed, or why it could not list them. A host calls it at
/// startup, before anything opens a file; it uses none of them. Linux only (it reads `/proc`);
/// elsewhere it does nothing.
pub fn close_inherited_descriptors() {
    #[cfg(target_os = "linux")]
    match rpcplugin_runtime::process::close_inheritable_descriptors() {
        Ok(closed) if !closed.is_empty() => eprintln!(
            "rpcplugin-reference-host: closed inherited descriptors {closed:?}, which plugins must not inherit (TRANS-4)"
        ),
        Ok(_) => {}
        Err(e) => eprintln!("rpcplugin-reference-host: cannot list inherited descriptors: {e}"),
    }
}
