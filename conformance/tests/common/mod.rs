//! What the integration tests share: the reference binaries, built once per test binary.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Builds `package` once and returns the path of its binary `name` (next to the harness's, so
/// that the harness finds it too).
fn built(package: &str, name: &str, cell: &'static OnceLock<PathBuf>) -> PathBuf {
    cell.get_or_init(|| {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", package])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {package} failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
        let path = target.join("debug").join(name);
        assert!(path.is_file(), "no {name} at {}", path.display());
        path
    })
    .clone()
}

/// The reference host's binary.
#[allow(dead_code)]
pub fn reference_host() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    built(
        "rpcplugin-reference-host",
        "rpcplugin-reference-host",
        &PATH,
    )
}

/// The reference plugin's binary.
#[allow(dead_code)]
pub fn reference_plugin() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    built(
        "rpcplugin-reference-plugin",
        "rpcplugin-reference-plugin",
        &PATH,
    )
}

/// The JSON document a run of the harness printed; a panic shows both outputs if it is not one.
#[allow(dead_code)]
pub fn json_stdout(out: &std::process::Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON document ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}
