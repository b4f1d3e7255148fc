//! The seams of the driver: the points at which test equipment may change what the
//! [driver](super) does, to build deliberately broken hosts for the conformance harness's
//! self-test. The reference host uses [`ConformingDriver`], which changes nothing; no rule of
//! the spec is decided here.
//!
//! A driver seam decides what the driver adds around its supervisors: the
//! [supervisor seams](crate::supervisor::seams) each new supervisor gets, what `hello` says of
//! the host (DRV-4), which bundle directories are launched (LIFE-2, LIFE-3), which plugins the
//! driver still knows when a command names them (LIFE-20), and whether the descriptors the
//! process inherited are closed at startup (TRANS-4).

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use crate::bundle::{Bundle, BundleError};
use crate::supervisor::seams::{Conforming, Seams};

/// The seams of a driver (see the module documentation). Every method has a default that
/// changes nothing.
pub trait DriverSeams: fmt::Debug + Send + Sync {
    /// The seams of a new supervisor: called once for each supervisor the driver creates, so
    /// that each gets seams of its own.
    fn supervisor_seams(&self) -> Arc<dyn Seams> {
        Arc::new(Conforming)
    }

    /// Words appended, after a space, to the `host` of the `hello` reply (DRV-4).
    fn host_suffix(&self) -> Option<String> {
        None
    }

    /// The bundle the driver launches from the directory `dir` although
    /// [`Bundle::load`] refused it with `error` (LIFE-2, LIFE-3); `None`, the default, refuses
    /// the start with that error.
    fn refused_bundle(&self, dir: &Path, error: &BundleError) -> Option<Bundle> {
        let _ = (dir, error);
        None
    }

    /// Whether the driver forgets a plugin whose start failed, so that later commands naming
    /// it find no plugin (LIFE-20).
    fn forgets_failed_start(&self) -> bool {
        false
    }

    /// Whether the driver forgets a plugin once a stop has stopped it, so that later commands
    /// naming it find no plugin (LIFE-20).
    fn forgets_stopped_plugin(&self) -> bool {
        false
    }

    /// Whether [`main`](super::main) closes the descriptors the process inherited without
    /// close-on-exec before anything else runs, so that no plugin inherits them (TRANS-4).
    fn closes_inherited_descriptors(&self) -> bool {
        true
    }
}

/// The seams of the reference host's driver: nothing changed.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConformingDriver;

impl DriverSeams for ConformingDriver {}
