//! The harness as `cargo install` leaves it: alone in a `bin` directory. Its default run (no
//! subcommand) finds the reference plugin and host next to it or on PATH, and says exactly how
//! to get them when they are in neither place (exit 2).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rpcplugin_test_support::bins::{fresh_dir, reference_host, reference_plugin};
use rpcplugin_test_support::procs::output_text as text;

const BIN: &str = env!("CARGO_BIN_EXE_rpcplugin-conformance");

/// A copy of the harness alone in a fresh `bin` directory, as `cargo install --root` leaves it.
fn installed(name: &str) -> PathBuf {
    let dir = fresh_dir(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name)).join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    let exe = dir.join("rpcplugin-conformance");
    std::fs::copy(BIN, &exe).unwrap();
    exe
}

fn run(exe: &Path, path: &str, args: &[&str]) -> Output {
    Command::new(exe)
        .args(args)
        .env("PATH", path)
        .env_remove("NO_COLOR")
        .output()
        .expect("the harness runs")
}

#[test]
fn without_the_reference_binaries_the_default_run_says_how_to_get_them() {
    let exe = installed("install-alone");
    for args in [&[][..], &["self-test"][..]] {
        let out = run(&exe, "/nonexistent", args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "neither next to this program (in {})",
                exe.parent().unwrap().display()
            )) && err.contains("cargo install --path reference-plugin")
                && err.contains("cargo install --path reference-host"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
    let err = String::from_utf8_lossy(&run(&exe, "/nonexistent", &[]).stderr).to_string();
    assert!(
        err.contains("rpcplugin-conformance plugin <executable>"),
        "{err}"
    );
}

#[test]
fn the_default_run_finds_the_reference_binaries_on_path() {
    let exe = installed("install-path");
    let plugin = reference_plugin();
    let host = reference_host();
    let dirs = std::env::join_paths([plugin.parent().unwrap(), host.parent().unwrap()]).unwrap();
    let out = run(
        &exe,
        dirs.to_str().unwrap(),
        &[
            "--no-replays",
            "--color",
            "never",
            "--case",
            "plugin/hooks/activate-deactivate",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.starts_with(&format!("plugin: {}\n", plugin.display())),
        "{report}"
    );
    assert!(
        report.contains(&format!("host driver: {} driver\n", host.display())),
        "{report}"
    );
    assert!(report.contains("1 passed, 0 failed"), "{report}");
}
