//! Where things are: the workspace, its target directory, `spec/`, and the workspace's binaries
//! (`target/debug/rpcplugin-reference-plugin`, `rpcplugin-reference-host`, and the broken hosts
//! of the self-test, `rpcplugin-mutant-host`), built on demand.
//!
//! A test of one crate cannot name another crate's binary with `CARGO_BIN_EXE_*`, so it builds
//! the package with `cargo build` (once per test process) and takes the binary from the target
//! directory, where the harness finds it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace's root directory.
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The workspace's `spec/` directory.
pub fn spec_dir() -> PathBuf {
    workspace_dir().join("spec")
}

/// The target directory: `$CARGO_TARGET_DIR` (relative to the workspace when relative), or the
/// workspace's `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_dir().join(dir)
            }
        }
        None => workspace_dir().join("target"),
    }
}

/// Builds the workspace package `package` (`cargo build -q -p`, once per test process) and
/// returns the path of its binary `name` in `target/debug/`. Panics if either fails.
pub fn built(package: &str, name: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<BTreeMap<String, PathBuf>>> = OnceLock::new();
    // Held while building: concurrent tests wait for one build rather than start their own.
    let mut built = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    let key = format!("{package}/{name}");
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "-q", "-p", package])
        .current_dir(workspace_dir())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    let path = target_dir().join("debug").join(name);
    assert!(path.is_file(), "no {name} at {}", path.display());
    built.insert(key, path.clone());
    path
}

/// The reference plugin's binary, `target/debug/rpcplugin-reference-plugin`.
pub fn reference_plugin() -> PathBuf {
    built("rpcplugin-reference-plugin", "rpcplugin-reference-plugin")
}

/// The reference host's binary, `target/debug/rpcplugin-reference-host`.
pub fn reference_host() -> PathBuf {
    built("rpcplugin-reference-host", "rpcplugin-reference-host")
}

/// The broken hosts' binary, `target/debug/rpcplugin-mutant-host` (test equipment: the
/// self-test runs `rpcplugin-mutant-host driver --mutant NAME`).
pub fn mutant_host() -> PathBuf {
    built("rpcplugin-host-mutants", "rpcplugin-mutant-host")
}

/// Empties (or creates) the directory `dir` and returns it: a scratch directory for one test.
pub fn fresh_dir(dir: PathBuf) -> PathBuf {
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}
